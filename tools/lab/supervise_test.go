package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSupervisorFire drives the supervisor's response to a watchdog expiry
// with fake watchdogs and a captured reboot timer.
func TestSupervisorFire(t *testing.T) {
	l := testLab(t, Options{Hosts: 2, Links: 1})
	wd := newFakeWatchdogs()
	var delays []time.Duration
	var reboots []func()
	var logs []string
	sv := &supervisor{
		o: SuperviseOptions{
			Name:        l.Name(),
			RebootDelay: 2 * time.Second,
			Logf:        func(f string, a ...any) { logs = append(logs, strings.TrimSpace(fmt.Sprintf(f, a...))) },
			AfterFunc:   func(d time.Duration, f func()) { delays, reboots = append(delays, d), append(reboots, f) },
		},
		s:  mustState(t, l),
		wd: wd,
	}
	old := sv.s.Hosts[1].Agent.PID

	sv.fire("h2")
	h := mustState(t, l).Hosts[1]
	if !h.Off || h.OffBy != "watchdog" || alive(old) {
		t.Fatalf("after fire: off=%v by %q, old agent alive=%v", h.Off, h.OffBy, alive(old))
	}
	if len(wd.disarmed) != 1 || wd.disarmed[0] != "h2" {
		t.Errorf("disarmed %v, want [h2]", wd.disarmed)
	}
	if len(reboots) != 1 || delays[0] != 2*time.Second {
		t.Fatalf("reboots scheduled: %v, want one after 2s", delays)
	}
	if !strings.Contains(strings.Join(logs, "\n"), "watchdog fired on h2") {
		t.Errorf("log lacks the fire:\n%s", strings.Join(logs, "\n"))
	}
	if st, _ := l.Status(); st.Hosts[1].Power != PowerOff || st.Hosts[1].OffBy != "watchdog" {
		t.Errorf("status: %+v", st.Hosts[1])
	}

	reboots[0]()
	h = mustState(t, l).Hosts[1]
	if h.Off || h.Agent.PID == old || !alive(h.Agent.PID) || !inCgroup(h.Agent.PID, h.Agent.Cgroup) {
		t.Fatalf("after reboot: %+v", h)
	}

	// A reboot that is due after the host was powered on by hand starts
	// nothing.
	sv.fire("h2")
	if err := l.PowerOn("h2"); err != nil {
		t.Fatal(err)
	}
	manual := mustState(t, l).Hosts[1].Agent.PID
	reboots[1]()
	if pid := mustState(t, l).Hosts[1].Agent.PID; pid != manual {
		t.Errorf("a stale reboot restarted the agent: PID %d, want %d", pid, manual)
	}
	pids, _ := cgroupPIDs(h.Agent.Cgroup)
	if len(pids) != 1 {
		t.Errorf("h2 runs %v, want one agent", pids)
	}

	// Under the poweroff action the host stays off.
	sv.s.WatchdogAction = ActionPowerOff
	sv.fire("h1")
	if len(reboots) != 2 || !mustState(t, l).Hosts[0].Off {
		t.Errorf("poweroff action: %d reboots scheduled, h1 off=%v", len(reboots), mustState(t, l).Hosts[0].Off)
	}
}

// TestWatchdogEndToEnd runs the real supervisor and emulated watchdog: a
// stand-in agent that arms a 1 s watchdog and never pets it is
// power-killed, then rebooted (action reset), or left off (poweroff).
func TestWatchdogEndToEnd(t *testing.T) {
	exe, _ := os.Executable()
	for _, action := range []string{ActionReset, ActionPowerOff} {
		t.Run(action, func(t *testing.T) {
			name := testName()
			agent := func(host string) []string {
				if host == "h1" {
					return []string{exe, roleWatchdog, filepath.Join(labDir(name), "h1", "watchdog.sock")}
				}
				return []string{exe, roleEcho}
			}
			l := testLab(t, Options{Name: name, Hosts: 2, Links: 1, WatchdogAction: action, AgentCommand: agent})
			first := mustState(t, l).Hosts[0].Agent.PID
			log := filepath.Join(l.Dir(), "supervisor.log")
			fired := func() bool {
				data, _ := os.ReadFile(log)
				return strings.Contains(string(data), "watchdog fired on h1")
			}
			if !eventually(5*time.Second, fired) {
				data, _ := os.ReadFile(log)
				t.Fatalf("no watchdog fire within 5s; supervisor log:\n%s", data)
			}
			if alive(first) {
				t.Error("the hung agent survived its watchdog")
			}
			if h2 := mustState(t, l).Hosts[1]; h2.Off || !alive(h2.Agent.PID) {
				t.Error("h2 was hit by h1's watchdog")
			}
			if action == ActionPowerOff {
				if !eventually(time.Second, func() bool { return mustState(t, l).Hosts[0].OffBy == "watchdog" }) {
					t.Error("h1 is not marked off by the watchdog")
				}
				return
			}
			rebooted := func() bool {
				h := mustState(t, l).Hosts[0]
				return !h.Off && h.Agent.PID != first && h.Gen >= 2
			}
			if !eventually(5*time.Second, rebooted) {
				data, _ := os.ReadFile(log)
				t.Fatalf("h1 did not reboot; supervisor log:\n%s", data)
			}
		})
	}
}
