package lab

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestLabPower freezes, thaws, powers off and on a host running a stand-in
// agent.
func TestLabPower(t *testing.T) {
	l := testLab(t, Options{Hosts: 2, Links: 1})
	m := newMesh(t, l, []string{"h1", "h2"}, 1)
	cg := mustState(t, l).Hosts[0].Agent.Cgroup
	if !m.answers("h2", "h1", 0) {
		t.Fatal("h1's agent does not answer")
	}

	if err := l.Freeze("h1"); err != nil {
		t.Fatal(err)
	}
	if ev, err := cgroupEvents(cg); err != nil || ev["frozen"] != "1" {
		t.Errorf("cgroup.events after freeze: %v %v, want frozen 1", ev, err)
	}
	if m.echoes("h2", "h1", 0, 300*time.Millisecond) {
		t.Error("a frozen agent answered")
	}
	agent := mustState(t, l).Hosts[0].Agent.PID
	if !frozenInProc(agent) {
		t.Errorf("agent %d: /proc does not show every thread in the freezer trap", agent)
	}
	if st, _ := l.Status(); st.Hosts[0].Power != PowerFrozen {
		t.Errorf("power = %s, want frozen", st.Hosts[0].Power)
	}
	if err := l.Thaw("h1"); err != nil {
		t.Fatal(err)
	}
	if ev, _ := cgroupEvents(cg); ev["frozen"] != "0" {
		t.Errorf("cgroup.events after thaw: %v, want frozen 0", ev)
	}
	if !m.answers("h2", "h1", 0) {
		t.Error("a thawed agent does not answer")
	}
	if frozenInProc(agent) {
		t.Errorf("agent %d: /proc still shows every thread in the freezer trap after thaw", agent)
	}

	old := mustState(t, l).Hosts[0].Agent.PID
	if err := l.PowerOff("h1"); err != nil {
		t.Fatal(err)
	}
	if pids, _ := cgroupPIDs(cg); len(pids) != 0 || alive(old) {
		t.Errorf("after poweroff: cgroup holds %v, agent %d alive=%v", pids, old, alive(old))
	}
	if st, _ := l.Status(); st.Hosts[0].Power != PowerOff || st.Hosts[0].AgentPID != 0 {
		t.Errorf("status after poweroff = %+v", st.Hosts[0])
	}
	if err := l.Freeze("h1"); !errors.Is(err, ErrPoweredOff) {
		t.Errorf("freeze of an off host: %v, want ErrPoweredOff", err)
	}
	if _, err := l.Exec("h1", "true"); err == nil {
		t.Error("exec on an off host worked")
	}
	if err := l.PowerOn("h1"); err != nil {
		t.Fatal(err)
	}
	h := mustState(t, l).Hosts[0]
	if h.Off || h.Agent.PID == old || !alive(h.Agent.PID) || !inCgroup(h.Agent.PID, cg) {
		t.Errorf("after poweron: %+v (old agent %d)", h, old)
	}
	if !m.answers("h2", "h1", 0) {
		t.Error("the powered-on agent does not answer")
	}

	// A frozen host powers off too, and comes back thawed.
	if err := l.Freeze("h1"); err != nil {
		t.Fatal(err)
	}
	if err := l.PowerOff("h1"); err != nil {
		t.Fatal(err)
	}
	if err := l.PowerOn("h1"); err != nil {
		t.Fatal(err)
	}
	if ev, _ := cgroupEvents(cg); ev["frozen"] != "0" {
		t.Errorf("powered on frozen: %v", ev)
	}
	if !m.answers("h2", "h1", 0) {
		t.Error("the agent does not answer after a frozen poweroff")
	}
}

// TestLabExec runs a command inside a host.
func TestLabExec(t *testing.T) {
	l := testLab(t, Options{Hosts: 2, Links: 1})
	cmd, err := l.Exec("h2", "sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	h := mustState(t, l).Hosts[1]
	if !sameNetns(cmd.Process.Pid, h.NS) || !inCgroup(cmd.Process.Pid, h.Agent.Cgroup) {
		t.Errorf("exec'd process is not in %s and %s", h.NS, h.Agent.Cgroup)
	}
	if got := l.HostNamespace("h2"); got != h.NS || l.HostNamespace("h9") != "" {
		t.Errorf("HostNamespace = %q", got)
	}
	// Powering the host off kills what runs in it.
	if err := l.PowerOff("h2"); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("exec'd process after poweroff: %v, want killed", err)
	}
}

// frozenInProc reports whether every thread of pid waits in the cgroup
// freezer's trap, as /proc/PID/task/*/wchan shows it.
func frozenInProc(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, task := range tasks {
		w, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/wchan", pid, task.Name()))
		if err != nil || (string(w) != "get_signal" && string(w) != "do_freezer_trap") {
			return false
		}
	}
	return true
}
