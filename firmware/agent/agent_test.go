package agent_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/firmware/agent"
	"github.com/vigil-ha/vigil/firmware/agent/agenttest"
	"github.com/vigil-ha/vigil/hb"
)

func spec() *cluster.Spec {
	return &cluster.Spec{Name: "t", Links: 2, Datastores: 1,
		Hosts: []cluster.HostSpec{{Name: "h1", CPU: 4, MemoryMiB: 4096}, {Name: "h2", CPU: 4, MemoryMiB: 4096}},
		Timing: cluster.Timing{Heartbeat: 100 * time.Millisecond, LinkTimeout: 500 * time.Millisecond,
			DatastoreInterval: time.Second, IOTimeout: 2 * time.Second, LeaseTimeout: 4 * time.Second,
			WatchdogTimeout: 4 * time.Second, Margin: time.Second, FenceTimeout: 20 * time.Second,
			Grace: 2 * time.Second, BMCPoll: 200 * time.Millisecond}}
}

func TestHandleCarriesOutActions(t *testing.T) {
	env := &agenttest.Recorder{Clock: 5 * time.Second}
	a := agent.New(cluster.NewNode(cluster.Config{Spec: spec(), Self: 0, Incarnation: 1}), env)
	a.Handle(cluster.Tick{})
	want := []string{"log agent: started incarnation 1", "send link=0", "send link=1", "read ds=0"}
	if strings.Join(env.Calls, "|") != strings.Join(want, "|") {
		t.Fatalf("first tick did\n  %v\nwant\n  %v", env.Calls, want)
	}
	env.Calls = nil
	env.Clock += 10 * time.Millisecond
	a.Handle(cluster.SlotsRead{DS: 0, Records: make([]*cluster.Record, 2)})
	a.Handle(cluster.Tick{})
	joined := strings.Join(env.Calls, "|")
	for _, w := range []string{"log ds: joined", "write ds=0"} {
		if !strings.Contains(joined, w) {
			t.Fatalf("after the first read: %v, want a %q", env.Calls, w)
		}
	}
	if a.Node() == nil {
		t.Fatal("Node() is nil")
	}
}

// TestHeartbeatAtCountsFromArrival: a heartbeat read late counts from when
// it arrived, not from when the shell got to it.
func TestHeartbeatAtCountsFromArrival(t *testing.T) {
	env := &agenttest.Recorder{Clock: 5 * time.Second}
	a := agent.New(cluster.NewNode(cluster.Config{Spec: spec(), Self: 0, Incarnation: 1}), env)
	a.Handle(cluster.Tick{})
	m := &hb.Message{From: 1, Incarnation: 7, Link: 0, Coordinator: -1, Version: 3}
	a.HeartbeatAt(env.Clock, m) // a new view: the full step
	for i := 1; i <= 3; i++ {
		env.Clock += 100 * time.Millisecond
		m.Seq = uint64(i)
		a.HeartbeatAt(env.Clock-40*time.Millisecond, m) // the fast path, read 40 ms late
	}
	links := a.Node().Status(env.Clock).Peers[0].Links
	if links[0].Ago != 40*time.Millisecond || links[0].State != "up" {
		t.Fatalf("link 0 of h2: %+v; want last heard 40ms ago, up", links[0])
	}
	if links[1].Heard {
		t.Fatalf("link 1 heard: %+v", links[1])
	}
}
