package itest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	core "github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/tools/lab"
)

// noVerdictChanges fails if any agent changed its verdict on a peer, or
// started a fence, since t.
func (c *cluster) noVerdictChanges(t time.Time) {
	c.t.Helper()
	for _, comp := range []string{"verdict", "fence"} {
		for _, l := range c.logged(t, comp, "") {
			if comp == "verdict" && strings.HasPrefix(l.Msg, "self:") {
				continue
			}
			c.t.Errorf("%s logged %q", l.Host, l.Msg)
		}
	}
}

// movedWith fails unless each of vms was restarted elsewhere since t, away
// from host from, and every such restart logged proof.
func (c *cluster) movedWith(t time.Time, from string, vms []string, proof string) {
	c.t.Helper()
	for _, vm := range vms {
		moved := false
		for _, l := range c.logged(t, "assign", "restart") {
			if l.Attrs["vm"] != vm || l.Attrs["from"] != from {
				continue
			}
			moved = true
			if l.Attrs["proof"] != proof {
				c.t.Errorf("%s moved from %s with proof %v, want %s", vm, from, l.Attrs["proof"], proof)
			}
		}
		if !moved {
			c.t.Errorf("no restart of %s from %s logged", vm, from)
		}
	}
}

// onlyOnce fails unless every VM runs as exactly one process in the lab,
// never in a host of skip.
func (c *cluster) onlyOnce(vms int, skip ...string) {
	c.t.Helper()
	procs := c.vmProcesses()
	if len(procs) != vms {
		c.t.Errorf("%d VM processes run, want %d: %v", len(procs), vms, procs)
	}
	for vm, ps := range procs {
		if len(ps) != 1 {
			c.t.Errorf("S1: %s runs as %d processes: %v", vm, len(ps), ps)
		}
		for _, p := range ps {
			if slices.Contains(skip, p.Host) {
				c.t.Errorf("%s still runs on %s", vm, p.Host)
			}
		}
	}
}

// TestOneLinkCut: a host loses one of its two links; nobody is suspected
// and the heartbeats go on over the other link.
func TestOneLinkCut(t *testing.T) {
	c := newCluster(t, 3, 2)
	t0 := time.Now()
	if err := c.l.Cut("h1", "1"); err != nil {
		t.Fatal(err)
	}
	c.waitFor("h2 sees h1's link 1 down", 5*time.Second, func() bool {
		rep, err := c.status("h2")
		return err == nil && rep.Status.Peers[0].Links[1].State == "down"
	})
	hold(3 * time.Second)
	if err := c.allAlive(""); err != nil {
		t.Fatal(err)
	}
	rep, err := c.status("h2")
	if err != nil {
		t.Fatal(err)
	}
	if p := rep.Status.Peers[0]; p.Name != "h1" || p.Links[0].State != "up" || p.Links[0].Ago > 500*time.Millisecond {
		t.Errorf("h2's view of h1 over link 0: %+v", p)
	}
	rep, err = c.status("h1")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status.Carrier[1] || !rep.Status.Carrier[0] {
		t.Errorf("h1's carrier per link: %v, want [true false]", rep.Status.Carrier)
	}
	if len(c.logged(t0, "hb", "link 1 carrier down")) != 1 {
		t.Error("h1 did not log its carrier loss once")
	}
	c.noVerdictChanges(t0)
	if err := c.l.Heal("h1", "1"); err != nil {
		t.Fatal(err)
	}
	c.waitFor("h2 hears h1 on link 1 again", 10*time.Second, func() bool {
		rep, err := c.status("h2")
		return err == nil && rep.Status.Peers[0].Links[1].State == "up"
	})
	c.onlyOnce(6)
}

// TestLossOnOneLink: 30% loss on one link for 30 s makes no false failure
// verdict.
func TestLossOnOneLink(t *testing.T) {
	c := newCluster(t, 3, 2)
	t0 := time.Now()
	if err := c.l.Loss("h2", "0", 30); err != nil {
		t.Fatal(err)
	}
	hold(30 * time.Second)
	if err := c.allAlive(""); err != nil {
		t.Fatal(err)
	}
	c.noVerdictChanges(t0)
	if err := c.l.Loss("h2", "0", 0); err != nil {
		t.Fatal(err)
	}
	c.onlyOnce(6)
}

// TestIsolatedHost: every link of h3 is cut. It finds itself isolated
// and applies each VM's isolation response: vm3 is shut down and vm6
// powered off, both released and restarted elsewhere exactly once on
// proof (a); vm9, left running, stays on h3 and nobody restarts it (h3's
// slot is alive). Nobody is fenced. Healed, h3 is healthy again.
func TestIsolatedHost(t *testing.T) {
	c := newClusterWith(t, lab.Options{Hosts: 3, Links: 2, VMs: 9,
		Isolation: []string{2: "shutdown", 5: "poweroff", 8: "leave-running"}})
	t0 := time.Now()
	if on := c.vmsOn("h3"); len(on) != 3 {
		t.Fatalf("h3 runs %v; want vm3, vm6 and vm9", on)
	}
	for _, l := range []string{"0", "1"} {
		if err := c.l.Cut("h3", l); err != nil {
			t.Fatal(err)
		}
	}
	c.waitFor("vm3 and vm6 running on h1 and h2", 40*time.Second, func() bool {
		return len(c.running(map[string]bool{"h3": true})) == 8
	})
	rep, err := c.status("h3")
	if err != nil {
		t.Fatal(err)
	}
	if on := c.vmsOn("h3"); rep.Status.Self != "isolated" || len(on) != 1 || on[0] != "vm9" {
		t.Errorf("h3 says it is %s and runs %v; want isolated and vm9 only", rep.Status.Self, on)
	}
	for vm, response := range map[string]string{"vm3": "shutting down", "vm6": "powering off", "vm9": "leaving vm9 running"} {
		if len(c.logged(t0, "vm", "isolation response: "+response)) == 0 {
			t.Errorf("h3 did not log the isolation response of %s (%q)", vm, response)
		}
	}
	c.movedWith(t0, "h3", []string{"vm3", "vm6"}, "released")
	for ds, x := range c.storedIncident("h3", core.IncidentIsolated) {
		c.checkIncident(ds, x, core.ProofReleased, []string{"vm3", "vm6"})
	}
	restarts := map[string]int{}
	for _, l := range c.logged(t0, "assign", "restart") {
		restarts[fmt.Sprint(l.Attrs["vm"])]++
	}
	if restarts["vm3"] != 1 || restarts["vm6"] != 1 || len(restarts) != 2 {
		t.Errorf("restarts %v; want vm3 and vm6 once each and nothing else", restarts)
	}
	if f := c.logged(t0, "fence", "fencing"); len(f) > 0 {
		t.Errorf("an isolated host that released its VMs was fenced: %q", f[0].Msg)
	}
	c.onlyOnce(9)
	for _, l := range []string{"0", "1"} {
		if err := c.l.Heal("h3", l); err != nil {
			t.Fatal(err)
		}
	}
	c.waitFor("h3 healthy again", 20*time.Second, func() bool {
		rep, err := c.status("h3")
		return err == nil && rep.Status.Self == "healthy"
	})
	c.onlyOnce(9)
}

// TestPowerOff: a host loses power; the coordinator powers it off through
// its BMC and reads "off" back, and its VMs run again on the others with
// that proof (b). Then the same with the BMC unreachable (hung): the
// fence falls back to the lease and watchdog proof (c).
func TestPowerOff(t *testing.T) {
	c := newCluster(t, 3, 2)
	for _, tc := range []struct {
		host      string
		bmcFailed bool
		proof     string
		kind      core.ProofKind
	}{
		{"h2", false, "bmc-off", core.ProofBMCOff},
		{"h3", true, "lease-expired", core.ProofLease},
	} {
		t0 := time.Now()
		lost := c.vmsOn(tc.host)
		if tc.bmcFailed {
			if err := c.l.BMCFail(tc.host); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.l.PowerOff(tc.host); err != nil {
			t.Fatal(err)
		}
		c.waitFor(tc.host+"'s VMs running on the others", 40*time.Second, func() bool {
			return len(c.running(map[string]bool{tc.host: true})) == 6
		})
		c.movedWith(t0, tc.host, lost, tc.proof)
		c.onlyOnce(6, tc.host)
		for ds, x := range c.storedIncident(tc.host, core.IncidentFailed) {
			c.checkIncident(ds, x, tc.kind, lost)
			if !tc.bmcFailed && len(x.Fence.Attempts) == 0 {
				t.Errorf("%s: the incident of %s records no BMC attempt: %+v", ds, tc.host, x.Fence)
			}
		}
		if tc.bmcFailed {
			if err := c.l.BMCHeal(tc.host); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.l.PowerOn(tc.host); err != nil {
			t.Fatal(err)
		}
		c.waitFor(tc.host+" back and healthy", 30*time.Second, func() bool { return c.selfIs(tc.host, "healthy") })
	}
	c.onlyOnce(6)
}

// TestFrozenHostFencedByIPMI: a host freezes (a hung kernel: it neither
// sends nor pets, but its VMs' processes still exist). The coordinator
// powers it off through its BMC, which kills it, frozen as it is, and
// reads "off" back; only then are its VMs restarted, with that proof. (Its
// watchdog, no longer petted, may fire at about the same time: either
// kills the host, and the BMC reads "off" only once it is dead.) Thawed,
// it runs none of its old VM processes.
func TestFrozenHostFencedByIPMI(t *testing.T) {
	c := newCluster(t, 3, 2)
	mine := c.vmsOn("h2")
	before := c.vmProcesses()
	t0 := time.Now()
	if err := c.l.Freeze("h2"); err != nil {
		t.Fatal(err)
	}
	c.waitFor("h2's VMs restarted", 40*time.Second, func() bool { return len(c.running(map[string]bool{"h2": true})) == 6 })
	c.movedWith(t0, "h2", mine, "bmc-off")
	for _, vm := range mine {
		for _, p := range c.vmProcesses()[vm] {
			if p == before[vm][0] {
				t.Errorf("%s's old process %v outlived the fence", vm, p)
			}
		}
	}
	c.onlyOnce(6, "h2")
	if err := c.l.Thaw("h2"); err != nil && !errors.Is(err, lab.ErrPoweredOff) {
		t.Fatal(err)
	}
	c.onlyOnce(6, "h2")
	if err := c.l.PowerOn("h2"); err != nil {
		t.Fatal(err)
	}
	c.waitFor("h2 back and healthy", 30*time.Second, func() bool { return c.selfIs("h2", "healthy") })
	c.onlyOnce(6)
}

// TestFreezeAndThaw: in a lab without BMCs, a host freezes (every process stopped, as a hung
// kernel) and is thawed.
//
// Frozen for less than its watchdog timeout, it resumes with its VMs and
// nobody has restarted them. Frozen for longer, its watchdog, not petted,
// resets it, and only after that do the others restart its VMs (the lease
// proof waits out the watchdog): when it is thawed, none of its old VM
// processes runs.
func TestFreezeAndThaw(t *testing.T) {
	c := newClusterWith(t, lab.Options{Hosts: 3, Links: 2, NoBMC: true})
	mine := c.vmsOn("h2")
	before := c.vmProcesses()

	t0 := time.Now()
	if err := c.l.Freeze("h2"); err != nil {
		t.Fatal(err)
	}
	hold(2 * time.Second) // under the 4 s watchdog timeout
	if err := c.l.Thaw("h2"); err != nil {
		t.Fatal(err)
	}
	c.waitFor("everyone takes h2 for alive again", 10*time.Second, func() bool { return c.allAlive("") == nil })
	if f := c.logged(t0, "fence", ""); len(f) > 0 {
		t.Errorf("a 2 s freeze led to %s: %q", f[0].Host, f[0].Msg)
	}
	if r := c.logged(t0, "assign", "restart"); len(r) > 0 {
		t.Errorf("a 2 s freeze led to a restart: %v", r[0].Text())
	}
	c.onlyOnce(6)
	for _, vm := range mine {
		if now := c.vmProcesses()[vm]; len(now) != 1 || now[0] != before[vm][0] {
			t.Errorf("%s was %v before the freeze, is %v after", vm, before[vm], now)
		}
	}

	t1 := time.Now()
	if err := c.l.Freeze("h2"); err != nil {
		t.Fatal(err)
	}
	restarted := func() bool {
		n := 0
		for _, l := range c.logged(t1, "assign", "restart") {
			if l.Attrs["from"] == "h2" {
				n++
			}
		}
		return n >= len(mine) && len(c.running(nil)) == 6
	}
	c.waitFor("h2's VMs restarted", 40*time.Second, restarted)
	fired := supervisorSaid(t, c, "watchdog fired on h2")
	if fired.IsZero() || fired.Before(t1) {
		t.Fatalf("h2's watchdog did not fire during the freeze (at %v)", fired)
	}
	for _, l := range c.logged(t1, "assign", "restart") {
		if l.Attrs["from"] == "h2" && l.Time.Before(fired) {
			t.Errorf("%v restarted at %s, before h2's watchdog fired at %s", l.Attrs["vm"], l.Time.Format(time.StampMilli), fired.Format(time.StampMilli))
		}
	}
	if err := c.l.Thaw("h2"); err != nil {
		t.Fatal(err)
	}
	c.waitFor("h2 back and healthy", 30*time.Second, func() bool {
		rep, err := c.status("h2")
		return err == nil && rep.Status.Self == "healthy"
	})
	c.onlyOnce(6)
	after := c.vmProcesses()
	for _, vm := range mine {
		if len(after[vm]) == 1 && after[vm][0] == before[vm][0] {
			t.Errorf("the thawed h2 still runs its old %s process %v", vm, before[vm][0])
		}
	}
}

// supervisorSaid returns the time of the supervisor's first log line
// containing sub, or the zero time.
func supervisorSaid(t testing.TB, c *cluster, sub string) time.Time {
	data, err := os.ReadFile(filepath.Join(c.l.Dir(), "supervisor.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.Contains(line, sub) {
			continue
		}
		// log.LstdFlags|Lmicroseconds: "2006/01/02 15:04:05.000000 msg"
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		at, err := time.ParseInLocation("2006/01/02 15:04:05.000000", f[0]+" "+f[1], time.Local)
		if err != nil {
			t.Fatalf("supervisor.log: %v", fmt.Errorf("%q: %w", line, err))
		}
		return at
	}
	return time.Time{}
}

// TestAgentStop: SIGTERM stops an agent cleanly: it stops its VMs,
// releases them (the others restart them on proof (a), fencing nobody),
// disarms its watchdog and exits 0.
func TestAgentStop(t *testing.T) {
	c := newCluster(t, 3, 2)
	t0 := time.Now()
	mine := c.vmsOn("h2")
	pid := c.agentPIDs()[1]
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	c.waitFor("h2's VMs running on h1 and h3", 30*time.Second, func() bool {
		return len(c.running(map[string]bool{"h2": true})) == 6
	})
	c.movedWith(t0, "h2", mine, "released")
	c.waitFor("h2's agent gone", 10*time.Second, func() bool { return syscall.Kill(pid, 0) != nil })
	if len(c.logged(t0, "agent", "stopped: every VM released")) != 1 || len(c.logged(t0, "wd", "watchdog disarmed")) != 1 {
		t.Error("h2 did not log its clean stop and the disarm")
	}
	st, err := c.l.Status()
	if err != nil {
		t.Fatal(err)
	}
	if w := st.Hosts[1].Watchdog; !w.Known || w.Armed {
		t.Errorf("h2's watchdog after a clean stop: %+v, want known and disarmed", w)
	}
	if f := c.logged(t0, "fence", "fencing"); len(f) > 0 {
		t.Errorf("a cleanly stopped host was fenced: %q", f[0].Msg)
	}
	c.onlyOnce(6, "h2")
}

// TestWatchdogResetLoop: in a lab whose policy holds a host back after one
// watchdog reset, a frozen host is reset by its watchdog (its VMs move on
// the lease proof) and boots held: its agent answers, says why, joins
// nothing, runs nothing and arms no watchdog, until 'vigil rejoin'; then
// it is healthy again.
func TestWatchdogResetLoop(t *testing.T) {
	c := newClusterWith(t, lab.Options{Hosts: 3, Links: 2, NoBMC: true, WatchdogResets: 1})
	t0 := time.Now()
	mine := c.vmsOn("h2")
	if err := c.l.Freeze("h2"); err != nil {
		t.Fatal(err)
	}
	c.waitFor("h2's VMs running on h1 and h3", 40*time.Second, func() bool {
		return len(c.running(map[string]bool{"h2": true})) == 6
	})
	c.movedWith(t0, "h2", mine, "lease-expired")
	c.waitFor("h2 rebooted and held", 30*time.Second, func() bool {
		rep, err := c.status("h2")
		return err == nil && rep.Held != ""
	})
	rep, err := c.status("h2")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rep.Held, "1 times within 1h0m0s") || rep.Status.Self != "starting" || len(rep.Status.VMs) != 0 || rep.Pets != 0 {
		t.Errorf("held h2: held %q, self %s, VMs %v, %d pets; want held after 1 reset, starting, nothing, no pets",
			rep.Held, rep.Status.Self, rep.Status.VMs, rep.Pets)
	}
	if err := c.allAlive("h2"); err != nil {
		t.Errorf("with h2 held: %v", err)
	}
	out, err := exec.Command(exe, "rejoin", "--api", filepath.Join(c.l.Dir(), "h2", "api.sock")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "host h2 joins again") {
		t.Fatalf("vigil rejoin: %v\n%s", err, out)
	}
	c.waitFor("h2 healthy again", 20*time.Second, func() bool { return c.selfIs("h2", "healthy") })
	if rep, err := c.status("h2"); err != nil || rep.Held != "" {
		t.Errorf("h2 after rejoin: %+v, %v", rep.Held, err)
	}
	c.onlyOnce(6)
}
