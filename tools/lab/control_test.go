package lab

import (
	"context"
	"errors"
	"github.com/vigil-ha/vigil/tools/lab/dsfault"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeWatchdogs records Disarm calls and reports fixed states.
type fakeWatchdogs struct {
	mu       sync.Mutex
	disarmed []string
	ready    chan struct{}
}

func newFakeWatchdogs() *fakeWatchdogs { return &fakeWatchdogs{ready: make(chan struct{})} }

func (f *fakeWatchdogs) Serve(ctx context.Context) error {
	close(f.ready)
	<-ctx.Done()
	return nil
}
func (f *fakeWatchdogs) Ready() <-chan struct{} { return f.ready }
func (f *fakeWatchdogs) Disarm(host string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.disarmed = append(f.disarmed, host)
}
func (f *fakeWatchdogs) State(host string) (bool, time.Duration, time.Duration) {
	if host == "h1" {
		return true, 4 * time.Second, 1500 * time.Millisecond
	}
	return false, 60 * time.Second, 0
}

var _ Watchdogs = (*fakeWatchdogs)(nil)

func TestControlProtocol(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "supervisor.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wd := newFakeWatchdogs()
	ds := map[string]*dsfault.Faults{"h1": dsfault.NewFaults()}
	done := make(chan struct{})
	go func() {
		serveControl(ctx, ln, wd, ds, []string{"h1", "h2"}, t.Logf)
		close(done)
	}()

	got, err := controlCall(sock, []ctlRequest{
		{Op: "ping"},
		{Op: "state", Host: "h1"},
		{Op: "state", Host: "h2"},
		{Op: "disarm", Host: "h2"},
		{Op: "disarm", Host: "h7"},
		{Op: "reboot", Host: "h1"},
		{Op: "ds", Host: "h1", DS: "ds1", Mode: "hang"},
		{Op: "ds", Host: "h1", DS: "ds1", Mode: "broken"},
		{Op: "ds", Host: "h2", DS: "ds1", Mode: "fail"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []ctlResponse{
		{OK: true},
		{OK: true, Armed: true, TimeoutNS: int64(4 * time.Second), LeftNS: int64(1500 * time.Millisecond)},
		{OK: true, TimeoutNS: int64(60 * time.Second)},
		{OK: true},
		{Error: `unknown host "h7"`},
		{Error: `unknown op "reboot": want disarm, state, ds or ping`},
		{OK: true},
		{Error: `datastore fault "broken": want ok, fail or hang`},
		{Error: "h2 has no datastore paths"},
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("answer %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if m := ds["h1"].Mode("ds1"); m != dsfault.Hang {
		t.Errorf("h1's ds1 is %v, want hang", m)
	}
	if strings.Join(wd.disarmed, ",") != "h2" {
		t.Errorf("disarmed %v, want [h2]", wd.disarmed)
	}
	if err := disarm(sock, "h1"); err != nil {
		t.Errorf("disarm h1: %v", err)
	}
	if err := disarm(sock, "h9"); err == nil || !strings.Contains(err.Error(), `refused to disarm h9: unknown host "h9"`) {
		t.Errorf("disarm h9: %v, want a refusal", err)
	}
	if r := answer([]byte("{not json"), wd, nil, nil); r.OK || !strings.HasPrefix(r.Error, "bad request") {
		t.Errorf("bad line: %+v", r)
	}
	cancel()
	<-done
}

func TestControlWithoutSupervisor(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "supervisor.sock")
	if _, err := controlCall(sock, []ctlRequest{{Op: "ping"}}); !errors.Is(err, ErrNoSupervisor) {
		t.Errorf("no socket: %v, want ErrNoSupervisor", err)
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // the socket file stays, nobody listens
	if _, err := controlCall(sock, []ctlRequest{{Op: "ping"}}); !errors.Is(err, ErrNoSupervisor) {
		t.Errorf("stale socket: %v, want ErrNoSupervisor", err)
	}
	if err := disarm(sock, "h1"); err != nil {
		t.Errorf("disarm without a supervisor: %v, want nil", err)
	}
}

func TestWatchdogStatusString(t *testing.T) {
	for _, tc := range []struct {
		w    WatchdogStatus
		want string
	}{
		{WatchdogStatus{}, "?"},
		{WatchdogStatus{Known: true, Timeout: time.Minute}, "disarmed"},
		{WatchdogStatus{Known: true, Armed: true, Timeout: 4 * time.Second, Left: 3240 * time.Millisecond}, "armed 3.2s/4s"},
	} {
		if got := tc.w.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.w, got, tc.want)
		}
	}
}

func TestStatusTable(t *testing.T) {
	st := &Status{Name: "t", Links: []string{"l0", "l1"}, Datastores: []string{"ds0", "ds1"}, Partition: "h1|h2", SupervisorPID: 42, Hosts: []HostStatus{
		{Name: "h1", Power: PowerOn, AgentPID: 7, AgentRunning: true,
			Links: []LinkStatus{{Name: "l0"}, {Name: "l1", Cut: true}}, Datastores: []string{"ok", "fail"},
			Watchdog: WatchdogStatus{Known: true, Armed: true, Timeout: 4 * time.Second, Left: time.Second}},
		{Name: "h2", Power: PowerOff, OffBy: "watchdog", Links: []LinkStatus{{Name: "l0", Loss: 30}, {Name: "l1"}}, Datastores: []string{"hang", "ok"}},
		{Name: "h3", Power: PowerFrozen, AgentPID: 9, Links: []LinkStatus{{Name: "l0"}, {Name: "l1"}}, Datastores: []string{"ok", "ok"}},
	}}
	var b strings.Builder
	if err := st.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	want := `lab t: partition h1|h2, supervisor PID 42
HOST  POWER           AGENT       l0        l1   ds0   ds1   WATCHDOG
h1    on              7           up        cut  ok    fail  armed 1s/4s
h2    off (watchdog)  -           loss 30%  up   hang  ok    ?
h3    frozen          9 (exited)  up        up   ok    ok    ?
`
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}
