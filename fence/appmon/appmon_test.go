package appmon

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const s = time.Second

var policy = Policy{GuestTimeout: 3 * s, GuestFailure: Reset, BootGrace: 60 * s, MaxResets: 2, ResetWindow: time.Hour,
	Apps: map[string]AppPolicy{
		"db":    {OnFailure: Restart, MaxRestarts: 2, Window: time.Minute, Then: Failover, RestartTimeout: 5 * s, StartGrace: 10 * s},
		"cache": {OnFailure: Reset, Then: Failover},
		"batch": {OnFailure: None},
	}}

func up(names ...string) []AppState {
	var out []AppState
	for _, n := range names {
		out = append(out, AppState{Name: n, Running: true})
	}
	return out
}

func down(name, detail string) []AppState { return []AppState{{Name: name, Detail: detail}} }

func want(t *testing.T, got []Decision, act Action, app, why string) {
	t.Helper()
	if len(got) != 1 || got[0].Action != act || got[0].App != app || !strings.Contains(got[0].Why, why) {
		t.Fatalf("decisions %+v; want one %s of %q saying %q", got, act, app, why)
	}
}

func nothing(t *testing.T, got []Decision) {
	t.Helper()
	if len(got) != 0 {
		t.Fatalf("decisions %+v; want none", got)
	}
}

// TestRestartBudget: an application that stops is restarted at once, up to
// its budget in the window; the next failure fails the VM over, and then
// nothing more is decided.
func TestRestartBudget(t *testing.T) {
	m := New(policy, 0)
	nothing(t, m.Report(1*s, up("db")))
	want(t, m.Report(2*s, down("db", "process 7 exited")), Restart, "db", "stopped: process 7 exited (restart 1 of 2 in 1m0s)")
	nothing(t, m.Report(2*s+100*time.Millisecond, down("db", "still down"))) // being handled
	nothing(t, m.Report(3*s, up("db")))
	want(t, m.Report(4*s, down("db", "exited")), Restart, "db", "restart 2 of 2")
	nothing(t, m.Report(5*s, up("db")))
	want(t, m.Report(6*s, down("db", "exited")), Failover, "db", "2 restarts in 1m0s are spent")
	nothing(t, m.Report(7*s, down("db", "exited")))
	nothing(t, m.Tick(100*s))
}

// TestRestartWindow: restarts older than the window no longer count.
func TestRestartWindow(t *testing.T) {
	m := New(policy, 0)
	m.Report(0, up("db"))
	for _, at := range []time.Duration{1 * s, 45 * s, 90 * s} { // at 90s, the one at 1s is out of the window
		want(t, m.Report(at, down("db", "x")), Restart, "db", "restart")
		nothing(t, m.Report(at+s, up("db")))
	}
	want(t, m.Report(100*s, down("db", "x")), Failover, "db", "spent") // 45s and 90s are within the minute
}

// TestRestartTimeoutAndFailure: a restart that does not bring the
// application back in time, or that the guest reports failed, counts as
// another failure.
func TestRestartTimeoutAndFailure(t *testing.T) {
	quiet := policy
	quiet.GuestTimeout = 0 // no heartbeats in between here
	m := New(quiet, 0)
	m.Report(0, up("db"))
	want(t, m.Report(s, down("db", "x")), Restart, "db", "restart 1")
	nothing(t, m.Tick(5*s))
	want(t, m.Tick(6*s), Restart, "db", "not running 5s after its restart (restart 2")
	want(t, m.RestartDone(7*s, "db", errors.New("no such unit")), Failover, "db", "its restart failed: no such unit")
	m2 := New(quiet, 0)
	m2.Report(0, up("db"))
	m2.Report(s, down("db", "x"))
	nothing(t, m2.RestartDone(2*s, "db", nil))
	nothing(t, m2.RestartDone(2*s, "other", errors.New("x")))
}

// TestStartGrace: an application never seen running is a failure only
// after its start grace.
func TestStartGrace(t *testing.T) {
	m := New(policy, 0)
	nothing(t, m.Report(s, down("db", "no process called postgres")))
	nothing(t, m.Report(10*s, down("db", "no process called postgres")))
	want(t, m.Report(11*s, down("db", "no process called postgres")), Restart, "db", "not running 10s after the guest first reported it")
}

// TestResetsAndGuest: a reset policy resets the VM within the reset
// budget (any cause counts), then fails it over; a guest that falls
// silent, or is never heard after the VM starts, is reset the same way.
func TestResetsAndGuest(t *testing.T) {
	m := New(policy, 0)
	m.Report(s, up("cache"))
	want(t, m.Report(2*s, down("cache", "x")), Reset, "cache", "reset 1 of 2 in 1h0m0s")
	nothing(t, m.Tick(30*s)) // boot grace after the reset
	want(t, m.Tick(62*s), Reset, "", "no guest heartbeat 1m0s after the VM started (reset 2 of 2")
	m.Report(70*s, up("cache"))
	nothing(t, m.Tick(72*s))
	want(t, m.Tick(73*s), Failover, "", "the guest agent is silent for 3s (timeout 3s), and 2 resets in 1h0m0s are spent")

	n := New(Policy{GuestTimeout: 3 * s, GuestFailure: Failover, BootGrace: 10 * s, MaxResets: 3, ResetWindow: time.Hour}, 0)
	nothing(t, n.Tick(9*s))
	want(t, n.Tick(10*s), Failover, "", "no guest heartbeat")

	// A guest never heard: reset when its boot grace passes, and again
	// after the reset's own boot grace, until the resets are spent.
	r := New(Policy{GuestTimeout: 2 * s, GuestFailure: Reset, BootGrace: 4 * s, MaxResets: 1, ResetWindow: time.Hour}, 0)
	want(t, r.Tick(4*s), Reset, "", "no guest heartbeat 4s after the VM started (reset 1 of 1")
	nothing(t, r.Tick(7*s))
	want(t, r.Tick(8*s), Failover, "", "1 resets in 1h0m0s are spent")

	q := New(Policy{}, 0) // guest heartbeats unwatched
	nothing(t, q.Tick(time.Hour))
}

// TestNonePolicy: a policy of none only reports.
func TestNonePolicy(t *testing.T) {
	m := New(policy, 0)
	m.Report(0, up("batch"))
	want(t, m.Report(s, down("batch", "done")), None, "batch", "policy: none")
	nothing(t, m.Report(2*s, down("batch", "done")))
}

func TestParseAction(t *testing.T) {
	for _, a := range []Action{None, Restart, Reset, Failover} {
		if got, ok := ParseAction(a.String()); !ok || got != a {
			t.Errorf("%s: %v %v", a, got, ok)
		}
	}
	if _, ok := ParseAction("reboot"); ok {
		t.Error("reboot parsed")
	}
}
