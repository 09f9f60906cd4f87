package lab

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/firmware/config"
)

// bmcPoll bounds each wait for a BMC to read a power state: the power
// process notices a host powered off by other means at once (SIGUSR1),
// or within bmcPowerPoll.
const bmcPoll = 5 * time.Second

// ipmitool runs ipmitool over lanplus with cipher suite 3 against host's
// BMC, started inside the network namespace of from, with the user and
// password of host's bmc.cred; args are the command, retries and timeout.
func ipmitool(t *testing.T, l *Lab, from, host string, args ...string) (string, error) {
	t.Helper()
	h, err := mustState(t, l).host(host)
	if err != nil {
		t.Fatal(err)
	}
	user, password := readCred(t, h.BMC.Credentials)
	argv := append([]string{"-I", "lanplus", "-C", "3", "-H", isolationAddr(0).String(), "-p", strconv.Itoa(h.BMC.Port),
		"-U", user, "-P", password}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ipmitool", argv...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := inNS(l.HostNamespace(from), cmd.Start); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	return strings.TrimSpace(out.String()), err
}

// readCred parses a bmc.cred: "user NAME" and "password SECRET".
func readCred(t *testing.T, path string) (user, password string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		k, v, _ := strings.Cut(line, " ")
		switch k {
		case "user":
			user = v
		case "password":
			password = v
		default:
			t.Fatalf("%s: unexpected line %q", path, line)
		}
	}
	return user, password
}

// bmcPower asks host's BMC for the chassis power from h1's namespace:
// "on", "off", or the error.
func bmcPower(t *testing.T, l *Lab, host string) string {
	t.Helper()
	out, err := ipmitool(t, l, "h1", host, "-N", "1", "-R", "2", "chassis", "power", "status")
	switch {
	case err != nil:
		return fmt.Sprintf("error %v: %s", err, out)
	case out == "Chassis Power is on":
		return "on"
	case out == "Chassis Power is off":
		return "off"
	}
	return "unexpected: " + out
}

// awaitBMC polls host's BMC until it reads want.
func awaitBMC(t *testing.T, l *Lab, host, want string) {
	t.Helper()
	var got string
	if !eventually(bmcPoll, func() bool { got = bmcPower(t, l, host); return got == want }) {
		t.Fatalf("%s's BMC reads %q after %v, want %q", host, got, bmcPoll, want)
	}
}

// assertDead fails unless host's cgroup is empty and agent is gone: what
// a BMC that reads off promises.
func assertDead(t *testing.T, l *Lab, host string, agent int) {
	t.Helper()
	h, _ := mustState(t, l).host(host)
	if pids, err := cgroupPIDs(h.Agent.Cgroup); err != nil || len(pids) > 0 || alive(agent) {
		t.Fatalf("%s's BMC reads off, but its cgroup holds %v (%v) and its agent %d alive=%v", host, pids, err, agent, alive(agent))
	}
}

// TestLabBMC drives each host's BMC with ipmitool from inside the hosts:
// power status, off and on through the BMC, the lab's own poweroff and
// poweron, a hung BMC, and down.
func TestLabBMC(t *testing.T) {
	l := testLabBMC(t, Options{Hosts: 3, Links: 1})
	s := mustState(t, l)
	m := newMesh(t, l, hosts3, 1)
	agents := map[string]int{}
	for _, h := range s.Hosts {
		agents[h.Name] = h.Agent.PID
	}

	t.Run("files and cluster file", func(t *testing.T) {
		cfg, err := config.Load(filepath.Join(s.Dir, "cluster.toml"))
		if err != nil {
			t.Fatal(err)
		}
		for i, h := range s.Hosts {
			fi, err := os.Stat(h.BMC.Credentials)
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: %v, mode %v; want mode 0600", h.BMC.Credentials, err, fi.Mode())
			}
			if user, password := readCred(t, h.BMC.Credentials); user != BMCUser || len(password) != 16 {
				t.Errorf("%s: user %q, password %q", h.BMC.Credentials, user, password)
			}
			want := fmt.Sprintf("10.100.0.1:%d", 6230+i+1)
			if c := cfg.Hosts[i]; c.BMC != want || c.BMCCredentials != filepath.Join(s.Dir, h.Name, "bmc.cred") {
				t.Errorf("cluster file: %s bmc %q credentials %q, want %s", c.Name, c.BMC, c.BMCCredentials, want)
			}
		}
	})
	t.Run("every BMC runs outside its host and reads on", func(t *testing.T) {
		for _, h := range s.Hosts {
			b := h.BMC
			if !inCgroup(b.PID, s.BMCCgroup) || !inCgroup(b.PowerPID, s.BMCCgroup) || !sameNetns(b.PID, s.HubNS) || parentOf(b.PowerPID) != b.PID {
				t.Errorf("%s's BMC %d / power process %d: not in %s and %s", h.Name, b.PID, b.PowerPID, s.BMCCgroup, s.HubNS)
			}
			for _, from := range hosts3 {
				if out, err := ipmitool(t, l, from, h.Name, "chassis", "power", "status"); err != nil || out != "Chassis Power is on" {
					t.Errorf("from %s, %s's BMC: %q, %v; want on", from, h.Name, out, err)
				}
			}
		}
		st, err := l.Status()
		if err != nil {
			t.Fatal(err)
		}
		if b := st.Hosts[1].BMC; b == nil || b.String() != "10.100.0.1:6232 ok on" {
			t.Errorf("status of h2's BMC: %v", b)
		}
	})
	t.Run("chassis power off kills that host alone, then reads off", func(t *testing.T) {
		if out, err := ipmitool(t, l, "h1", "h2", "chassis", "power", "off"); err != nil {
			t.Fatalf("power off: %v: %s", err, out)
		}
		awaitBMC(t, l, "h2", "off")
		assertDead(t, l, "h2", agents["h2"])
		for _, h := range []string{"h1", "h3"} {
			if !alive(agents[h]) {
				t.Errorf("%s's agent died with h2's power", h)
			}
		}
		if st, _ := l.Status(); st.Hosts[1].Power != PowerOff || st.Hosts[1].OffBy != "bmc" || st.Hosts[1].BMC.Power != PowerOff {
			t.Errorf("status: %+v %v", st.Hosts[1], st.Hosts[1].BMC)
		}
	})
	t.Run("chassis power on boots its agent", func(t *testing.T) {
		if out, err := ipmitool(t, l, "h3", "h2", "chassis", "power", "on"); err != nil {
			t.Fatalf("power on: %v: %s", err, out)
		}
		awaitBMC(t, l, "h2", "on")
		if !m.answers("h1", "h2", 0) {
			t.Fatal("h2's agent does not answer after chassis power on")
		}
		h := mustState(t, l).Hosts[1]
		if h.Off || h.Agent.PID == agents["h2"] || !inCgroup(h.Agent.PID, h.Agent.Cgroup) {
			t.Errorf("after power on: %+v", h)
		}
		agents["h2"] = h.Agent.PID
	})
	t.Run("lab poweroff and poweron", func(t *testing.T) {
		if err := l.PowerOff("h2"); err != nil {
			t.Fatal(err)
		}
		// PowerOff returns once the BMC reads off.
		if got := bmcPower(t, l, "h2"); got != "off" {
			t.Errorf("after lab poweroff h2's BMC reads %q, want off", got)
		}
		assertDead(t, l, "h2", agents["h2"])
		old := mustState(t, l).Hosts[1].BMC.PID
		if err := l.PowerOn("h2"); err != nil {
			t.Fatal(err)
		}
		// The BMC reads on before the host runs anything: a new ipmi_sim.
		if got := bmcPower(t, l, "h2"); got != "on" {
			t.Errorf("after lab poweron h2's BMC reads %q, want on", got)
		}
		if b := mustState(t, l).Hosts[1].BMC; b.PID == old || alive(old) || !powerRunning(mustState(t, l), &mustState(t, l).Hosts[1]) {
			t.Errorf("after poweron: BMC %+v, old ipmi_sim %d alive=%v", b, old, alive(old))
		}
		if !m.answers("h1", "h2", 0) {
			t.Fatal("h2's agent does not answer after poweron")
		}
		agents["h2"] = mustState(t, l).Hosts[1].Agent.PID
	})
	t.Run("a failed BMC times out, a healed one answers", func(t *testing.T) {
		if err := l.BMCFail("h3"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		out, err := ipmitool(t, l, "h1", "h3", "-N", "1", "-R", "1", "chassis", "power", "status")
		if err == nil {
			t.Errorf("a failed BMC answered: %s", out)
		}
		t.Logf("ipmitool against the failed BMC: %v after %v: %s", err, time.Since(start).Round(time.Millisecond), out)
		if st, _ := l.Status(); !strings.Contains(st.Hosts[2].BMC.String(), "failed on") || !alive(agents["h3"]) {
			t.Errorf("status of a failed BMC: %v; agent alive=%v", st.Hosts[2].BMC, alive(agents["h3"]))
		}
		// Power off and on behind the failed BMC: it keeps failing, and
		// reads the truth once healed.
		if err := l.PowerOff("h3"); err != nil {
			t.Fatal(err)
		}
		if err := l.PowerOn("h3"); err != nil {
			t.Fatal(err)
		}
		if b := mustState(t, l).Hosts[2].BMC; !stopped(b.PID) {
			t.Errorf("the restarted BMC of h3 is not stopped: %+v", b)
		}
		if err := l.BMCHeal("h3"); err != nil {
			t.Fatal(err)
		}
		if got := bmcPower(t, l, "h3"); got != "on" {
			t.Errorf("healed BMC reads %q, want on", got)
		}
	})
	t.Run("down leaves no BMC, also without state.json", func(t *testing.T) {
		os.Remove(statePath(l.Dir()))
		if err := l.Down(); err != nil {
			t.Fatal(err)
		}
		if left := labProcs(l.Name()); len(left) > 0 {
			t.Errorf("processes left by down: %v", left)
		}
	})
}

// TestBMCWatchdog: a host whose watchdog fires (action poweroff) reads off
// at its BMC once dead, and on again after poweron.
func TestBMCWatchdog(t *testing.T) {
	exe, _ := os.Executable()
	name := testName()
	l := testLabBMC(t, Options{Name: name, Hosts: 2, Links: 1, WatchdogAction: ActionPowerOff,
		AgentCommand: func(host string) []string {
			if host == "h2" {
				return []string{exe, roleWatchdog, filepath.Join(labDir(name), "h2", "watchdog.sock")}
			}
			return []string{exe, roleEcho}
		}})
	agent := mustState(t, l).Hosts[1].Agent.PID
	awaitBMC(t, l, "h2", "off")
	assertDead(t, l, "h2", agent)
	if h := mustState(t, l).Hosts[1]; !h.Off || h.OffBy != "watchdog" {
		t.Errorf("h2 after its watchdog fired: %+v", h)
	}
	if err := l.PowerOn("h2"); err != nil {
		t.Fatal(err)
	}
	if got := bmcPower(t, l, "h2"); got != "on" {
		t.Errorf("after poweron h2's BMC reads %q, want on", got)
	}
}

// TestUpWithoutIPMISim: without ipmi_sim, up fails and says how to fix it,
// unless the lab has no BMCs.
func TestUpWithoutIPMISim(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Up(Options{Name: testName(), Hosts: 1, Links: 1, Executable: "/bin/true"})
	if err == nil || !strings.Contains(err.Error(), "apt-get install openipmi") || !strings.Contains(err.Error(), "--no-bmc") {
		t.Errorf("up without ipmi_sim: %v, want the fix", err)
	}
}

// labProcs lists the processes whose command line names lab name's
// folder or its power processes.
func labProcs(name string) []string {
	var out []string
	dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range dirs {
		data, err := os.ReadFile(f)
		if err != nil || len(data) == 0 {
			continue
		}
		cmd := strings.ReplaceAll(string(bytes.TrimRight(data, "\x00")), "\x00", " ")
		if strings.Contains(cmd, labDir(name)+"/") || (strings.Contains(cmd, roleBMCPower) && strings.Contains(cmd, " "+name+" ")) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
			if alive(pid) {
				out = append(out, cmd)
			}
		}
	}
	return out
}
