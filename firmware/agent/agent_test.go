package agent

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/hb"
)

// recorder is an Env that writes down every call.
type recorder struct {
	now   time.Duration
	calls []string
}

var _ Env = (*recorder)(nil)

func (r *recorder) Now() time.Duration                    { return r.now }
func (r *recorder) Send(m *hb.Message)                    { r.add("send link=%d", m.Link) }
func (r *recorder) WriteSlot(ds int, _ *cluster.Record)   { r.add("write ds=%d", ds) }
func (r *recorder) ReadSlots(ds int)                      { r.add("read ds=%d", ds) }
func (r *recorder) ProbeGateway(link int)                 { r.add("probe link=%d", link) }
func (r *recorder) PetWatchdog(t time.Duration)           { r.add("pet %s", t) }
func (r *recorder) BMC(h int, op cluster.BMCOp)           { r.add("bmc host=%d op=%d", h, op) }
func (r *recorder) VM(v int, op cluster.VMOp, seq uint64) { r.add("vm %d op=%d seq=%d", v, op, seq) }
func (r *recorder) Log(_ slog.Level, c, msg string)       { r.add("log %s: %s", c, msg) }
func (r *recorder) Assigned(a cluster.Assigned)           { r.add("assigned vm=%d", a.VM) }

func (r *recorder) add(format string, args ...any) {
	r.calls = append(r.calls, strings.TrimSpace(fmt.Sprintf(format, args...)))
}

func spec() *cluster.Spec {
	return &cluster.Spec{Name: "t", Links: 2, Datastores: 1,
		Hosts: []cluster.HostSpec{{Name: "h1", CPU: 4, MemoryMiB: 4096}, {Name: "h2", CPU: 4, MemoryMiB: 4096}},
		Timing: cluster.Timing{Heartbeat: 100 * time.Millisecond, LinkTimeout: 500 * time.Millisecond,
			DatastoreInterval: time.Second, IOTimeout: 2 * time.Second, LeaseTimeout: 4 * time.Second,
			WatchdogTimeout: 4 * time.Second, Margin: time.Second, FenceTimeout: 20 * time.Second,
			Grace: 2 * time.Second, BMCPoll: 200 * time.Millisecond}}
}

func TestHandleCarriesOutActions(t *testing.T) {
	env := &recorder{now: 5 * time.Second}
	a := New(cluster.NewNode(cluster.Config{Spec: spec(), Self: 0, Incarnation: 1}), env)
	a.Handle(cluster.Tick{})
	want := []string{"log agent: started incarnation 1", "send link=0", "send link=1", "read ds=0"}
	if strings.Join(env.calls, "|") != strings.Join(want, "|") {
		t.Fatalf("first tick did\n  %v\nwant\n  %v", env.calls, want)
	}
	env.calls = nil
	env.now += 10 * time.Millisecond
	a.Handle(cluster.SlotsRead{DS: 0, Records: make([]*cluster.Record, 2)})
	a.Handle(cluster.Tick{})
	joined := strings.Join(env.calls, "|")
	for _, w := range []string{"log ds: joined", "write ds=0"} {
		if !strings.Contains(joined, w) {
			t.Fatalf("after the first read: %v, want a %q", env.calls, w)
		}
	}
	if a.Node() == nil {
		t.Fatal("Node() is nil")
	}
}

// TestHeartbeatAtCountsFromArrival: a heartbeat read late counts from when
// it arrived, not from when the shell got to it.
func TestHeartbeatAtCountsFromArrival(t *testing.T) {
	env := &recorder{now: 5 * time.Second}
	a := New(cluster.NewNode(cluster.Config{Spec: spec(), Self: 0, Incarnation: 1}), env)
	a.Handle(cluster.Tick{})
	m := &hb.Message{From: 1, Incarnation: 7, Link: 0, Coordinator: -1, Version: 3}
	a.HeartbeatAt(env.now, m) // a new view: the full step
	for i := 1; i <= 3; i++ {
		env.now += 100 * time.Millisecond
		m.Seq = uint64(i)
		a.HeartbeatAt(env.now-40*time.Millisecond, m) // the fast path, read 40 ms late
	}
	links := a.Node().Status(env.now).Peers[0].Links
	if links[0].Ago != 40*time.Millisecond || links[0].State != "up" {
		t.Fatalf("link 0 of h2: %+v; want last heard 40ms ago, up", links[0])
	}
	if links[1].Heard {
		t.Fatalf("link 1 heard: %+v", links[1])
	}
}
