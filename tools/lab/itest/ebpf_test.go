package itest

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/firmware/agentd"
	"github.com/vigil-ha/vigil/tools/lab"
)

func (c *cluster) ebpf(host string) *agentd.EBPFReply {
	c.t.Helper()
	var rep agentd.EBPFReply
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := agentd.NewClient(filepath.Join(c.l.Dir(), host, "api.sock")).Get(ctx, "/v1/ebpf", &rep); err != nil {
		c.t.Fatalf("%s: GET /v1/ebpf: %v", host, err)
	}
	return &rep
}

// stampsOf maps "peer/link" to h's stamp figures.
func stampsOf(r *agentd.EBPFReply) map[string]agentd.StampStatus {
	m := map[string]agentd.StampStatus{}
	for _, s := range r.Stamps {
		m[s.Host+"/"+s.Link] = s
	}
	return m
}

func (c *cluster) features(host string, active bool) {
	c.t.Helper()
	st, err := c.status(host)
	if err != nil {
		c.t.Fatal(err)
	}
	if len(st.Kernel) != 3 {
		c.t.Fatalf("%s reports %d kernel features, want 3: %+v", host, len(st.Kernel), st.Kernel)
	}
	for _, f := range st.Kernel {
		if f.Active != active {
			c.t.Errorf("%s: kernel %s active %v, want %v (%s)", host, f.Name, f.Active, active, f.Detail)
		}
	}
}

// TestKernelStamping: each agent counts its peers' heartbeats at its NICs;
// the kernel's count and what the agent read agree, both grow ten a
// second, and a cut link stops the count on that link only.
func TestKernelStamping(t *testing.T) {
	c := newCluster(t, 3, 2)
	c.features("h1", true)
	first := stampsOf(c.ebpf("h1"))
	if len(first) != 4 {
		t.Fatalf("h1 has stamps for %d peer links, want 4: %+v", len(first), first)
	}
	for k, s := range first {
		if s.Kernel == 0 || s.Unread != 0 || s.Kernel > s.Read+3 || s.Read > s.Kernel+3 {
			t.Errorf("h1, %s: kernel %d, read %d, unread %d: want them equal give or take the heartbeats in flight", k, s.Kernel, s.Read, s.Unread)
		}
	}
	hold(2 * time.Second)
	second := stampsOf(c.ebpf("h1"))
	for k, s := range second {
		if n := s.Kernel - first[k].Kernel; n < 15 || n > 25 {
			t.Errorf("h1, %s: the kernel counted %d heartbeats in 2s, want about 20", k, n)
		}
		if s.Ago < 0 || s.Ago > 500*time.Millisecond {
			t.Errorf("h1, %s: last kernel arrival %v ago", k, s.Ago)
		}
	}
	if err := c.l.Cut("h2", "1"); err != nil {
		t.Fatal(err)
	}
	hold(time.Second) // what was in flight lands
	cut := stampsOf(c.ebpf("h1"))
	hold(time.Second)
	later := stampsOf(c.ebpf("h1"))
	if a, b := cut["h2/l1"], later["h2/l1"]; a.Host == "" || b.Kernel != a.Kernel {
		t.Errorf("h1 kept counting h2's heartbeats on the cut link: %d -> %d (%+v)", a.Kernel, b.Kernel, later)
	}
	if a, b := cut["h2/l0"], later["h2/l0"]; b.Kernel < a.Kernel+5 {
		t.Errorf("h1 stopped counting h2's heartbeats on link 0: %d -> %d", a.Kernel, b.Kernel)
	}
	if err := c.l.Heal("h2", "1"); err != nil {
		t.Fatal(err)
	}
}

// TestAgentStallIsItsOwn: h1's agent is stopped (SIGSTOP) for 1.5 s while
// its host's kernel goes on receiving. Resumed, it recognises its own
// stall, accuses no peer, and its kernel counts show the heartbeats that
// arrived meanwhile.
func TestAgentStallIsItsOwn(t *testing.T) {
	c := newCluster(t, 3, 2)
	pid := c.agentPIDs()[0]
	before := stampsOf(c.ebpf("h1"))
	t0 := time.Now()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	hold(1500 * time.Millisecond)
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	c.waitFor("h1's stall over", 10*time.Second, func() bool { return len(c.logged(t0, "agent", "own stall over")) > 0 })
	var own []string
	for _, l := range c.logged(t0, "agent", "own stall: ") {
		if l.Host == "h1" {
			own = append(own, l.Msg)
		}
	}
	if len(own) != 1 || !strings.Contains(own[0], "between the kernel and the agent") {
		t.Fatalf("h1's own-stall lines: %q, want one", own)
	}
	after := stampsOf(c.ebpf("h1"))
	for k, s := range after {
		if n := s.Kernel - before[k].Kernel; n < 12 {
			t.Errorf("h1, %s: the kernel counted %d heartbeats across the 1.5s stall, want 15 or more", k, n)
		}
		if s.Unread != 0 {
			t.Errorf("h1, %s: %d heartbeats never read (the socket held them all)", k, s.Unread)
		}
	}
	for _, l := range c.logs() {
		if l.Host == "h1" && !l.Time.Before(t0) && (l.Component == "verdict" || strings.Contains(l.Msg, "silent on all links")) {
			t.Errorf("h1 accused a peer over its own stall: %s", l.Msg)
		}
	}
	if f := c.logged(t0, "fence", "fencing"); len(f) > 0 {
		t.Errorf("a 1.5s stall made a fence: %s", f[0].Msg)
	}
	st, err := c.status("h1")
	if err != nil {
		t.Fatal(err)
	}
	if l := st.Status.Local; l.Stalled || l.Stalls < 1 || l.Last < time.Second {
		t.Errorf("h1's own health %+v: want one stall of about 1.5s, over", l)
	}
	c.onlyOnce(6)
}

// TestDatastoreDownSeenByKernel: h1's path to ds1 (its loop device) hangs,
// then fails. The kernel's block I/O tracing reports the datastore down
// within milliseconds, long before the 2 s I/O timeout says anything, and
// up again once healed; nothing is fenced and nothing moves.
func TestDatastoreDownSeenByKernel(t *testing.T) {
	c := newCluster(t, 3, 2)
	where := c.running(nil)
	t0 := time.Now()
	down := func() (bool, string) {
		st, err := c.status("h1")
		if err != nil || len(st.Status.Datastores) < 2 {
			return false, ""
		}
		return st.Status.Datastores[1].Down, st.Status.Datastores[1].DownWhy
	}
	for _, fault := range []struct {
		name string
		set  func() error
		why  string
	}{
		{"hang", func() error { return c.l.DSHang("h1", "ds1") }, "stuck"},
		{"fail", func() error { return c.l.DSFail("h1", "ds1") }, "error"},
	} {
		t1 := time.Now()
		if err := fault.set(); err != nil {
			t.Fatal(err)
		}
		c.waitFor("h1: ds1 down by the kernel ("+fault.name+")", 10*time.Second, func() bool { d, _ := down(); return d })
		if _, why := down(); !strings.Contains(why, fault.why) {
			t.Errorf("%s: why %q, want it to say %q", fault.name, why, fault.why)
		}
		var dev *agentd.DeviceStatus
		for _, d := range c.ebpf("h1").Devices {
			if len(d.Datastores) == 1 && d.Datastores[0] == "ds1" {
				dev = &d
			}
		}
		if dev == nil || dev.Last == nil || !dev.Last.Down {
			t.Fatalf("%s: h1's ebpf view of ds1: %+v", fault.name, dev)
		}
		t.Logf("%s: judged down %v after the first stuck or failed request", fault.name, dev.Detect)
		if fault.name == "fail" {
			// A failing path answers at once: the kernel's judgement is
			// no earlier than the failed I/O itself.
			if err := c.l.DSHeal("h1", "ds1"); err != nil {
				t.Fatal(err)
			}
			c.waitFor("h1: ds1 up again", 15*time.Second, func() bool { d, _ := down(); return !d })
			continue
		}
		// A hung path: the kernel's judgement came before the I/O timeout
		// could say anything: the agent logged the datastore down before
		// any of its own reads or writes on it failed or timed out.
		var downAt, failedAt time.Time
		for _, l := range c.logs() {
			if l.Host != "h1" || l.Time.Before(t1) {
				continue
			}
			if downAt.IsZero() && strings.Contains(l.Msg, "datastore 1: all paths down") {
				downAt = l.Time
			}
			if failedAt.IsZero() && strings.Contains(l.Msg, "datastore 1: ") && strings.Contains(l.Msg, "failed") {
				failedAt = l.Time
			}
		}
		if downAt.IsZero() || (!failedAt.IsZero() && failedAt.Before(downAt)) {
			t.Errorf("%s: kernel judgement at %v, first failed I/O at %v: want the judgement first", fault.name, downAt, failedAt)
		}
		if err := c.l.DSHeal("h1", "ds1"); err != nil {
			t.Fatal(err)
		}
		c.waitFor("h1: ds1 up again", 15*time.Second, func() bool { d, _ := down(); return !d })
	}
	c.neverFailed(t0)
	if now := c.running(nil); len(now) != len(where) {
		t.Errorf("VMs ran %v before, %v after", where, now)
	}
	for vm, h := range where {
		if c.running(nil)[vm] != h {
			t.Errorf("%s moved from %s", vm, h)
		}
	}
}

// TestVMKilledIsRestarted: a lab VM process killed with SIGKILL is seen by
// the kernel's exit tracer, released and started again, once.
func TestVMKilledIsRestarted(t *testing.T) {
	c := newCluster(t, 3, 2)
	killVMAndWait(c, "vm1")
	var seen []string
	for _, l := range c.logs() {
		if l.Component == "ebpf" && l.Msg == "kernel: VM process exited" && l.Attrs["vm"] == "vm1" {
			seen = append(seen, l.Host)
		}
	}
	if len(seen) != 1 {
		t.Errorf("the exit tracer reported vm1's death %d times (%v), want once", len(seen), seen)
	}
	if rep := c.ebpf(seen0(seen)); rep.Exits.Events == 0 || rep.Exits.Median <= 0 {
		t.Errorf("exit figures %+v", rep.Exits)
	}
}

func seen0(s []string) string {
	if len(s) == 0 {
		return "h1"
	}
	return s[0]
}

// killVMAndWait kills vm's process and waits until another runs it.
func killVMAndWait(c *cluster, vm string) {
	c.t.Helper()
	procs := c.vmProcesses()[vm]
	if len(procs) != 1 {
		c.t.Fatalf("%s runs %d times: %+v", vm, len(procs), procs)
	}
	old := procs[0]
	t0 := time.Now()
	if err := syscall.Kill(old.PID, syscall.SIGKILL); err != nil {
		c.t.Fatal(err)
	}
	c.waitFor(vm+" running again", 20*time.Second, func() bool {
		p := c.vmProcesses()[vm]
		return len(p) == 1 && p[0].PID != old.PID && c.running(nil)[vm] != ""
	})
	if len(c.logged(t0, "vm", vm+" exited unexpectedly")) != 1 {
		c.t.Errorf("%s's host did not log its unexpected exit once", vm)
	}
	c.onlyOnce(6)
}

// TestKernelEvidenceOff: with every eBPF feature off, the agents say so
// and fall back: a killed VM is restarted through its pidfd, a hung
// datastore path fails by its I/O timeout, a stalled agent still knows
// its own stall from its sockets' receive stamps.
func TestKernelEvidenceOff(t *testing.T) {
	c := newClusterWith(t, lab.Options{Hosts: 3, Links: 2,
		AgentFlags: []string{"--ebpf", "stamping=off", "--ebpf", "block_io=off", "--ebpf", "exits=off"}})
	c.features("h1", false)
	st, _ := c.status("h1")
	for _, f := range st.Kernel {
		if f.Detail != "off in the configuration" || f.Fallback == "" {
			t.Errorf("h1: kernel %s: %+v", f.Name, f)
		}
	}
	t0 := time.Now()
	killVMAndWait(c, "vm2")
	if l := c.logged(t0, "ebpf", "kernel: VM process exited"); len(l) > 0 {
		t.Errorf("the exit tracer is off, yet: %v", l[0].Msg)
	}

	if err := c.l.DSHang("h1", "ds1"); err != nil {
		t.Fatal(err)
	}
	c.waitFor("h1's renewals on ds1 no longer counted (its I/O timeout)", 15*time.Second, func() bool {
		st, err := c.status("h1")
		return err == nil && st.Status.Datastores[1].Renewed > 3*time.Second
	})
	if st, _ := c.status("h1"); st.Status.Datastores[1].Down {
		t.Errorf("h1 reports ds1 down by the kernel with block I/O tracing off")
	}
	if err := c.l.DSHeal("h1", "ds1"); err != nil {
		t.Fatal(err)
	}

	pid := c.agentPIDs()[0]
	t1 := time.Now()
	syscall.Kill(pid, syscall.SIGSTOP)
	hold(1500 * time.Millisecond)
	syscall.Kill(pid, syscall.SIGCONT)
	c.waitFor("h1's stall over", 10*time.Second, func() bool { return len(c.logged(t1, "agent", "own stall over")) > 0 })
	if f := c.logged(t0, "fence", "fencing"); len(f) > 0 {
		t.Errorf("fenced with eBPF off: %s", f[0].Msg)
	}
}
