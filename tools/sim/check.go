package sim

import (
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/fence/cluster"
)

// SettleTime is how long the cluster must be left alone after the last
// script command before the liveness check (L1) runs.
const SettleTime = 40 * time.Second

// checker watches the world for the contract's invariants:
//
//	S1 a VM never runs on two hosts at once (checked at every start)
//	S2 a VM moves to another host only after an assignment with a proof,
//	   once its old host no longer runs it, and the assigning coordinator
//	   recorded an incident that carries the proof and the placement
//	L1 SettleTime after the last command, every protected VM that ran is
//	   running again, when the usable hosts have room for them
//	L2 a host that suffered no harmful fault is never powered off by a BMC
//	   or reset by its watchdog
type checker struct {
	w          *World
	violations []string

	// S2: per VM
	last   []int             // host the VM last ran on, -1 if none
	lastAt []time.Duration   // when it started running there
	asg    [][]timedAssigned // assignments since the VM last started running
	ran    []bool            // reached running at least once (L1)
	failed []bool            // a start failed (L1 does not expect it back)

	// L2: per host
	harmEnd  []time.Duration // fencing is excused until then
	frozen   []bool
	lost     []bool // lease datastores lost
	lostAt   []time.Duration
	lostSlow []time.Duration // slowest path latency while lost: ops issued then end that much later
	isolated []bool          // every NIC cut while the lease is lost
}

// timedAssigned is an assignment, when it was made and by which host.
type timedAssigned struct {
	cluster.Assigned
	at time.Duration
	by int
}

const forever = time.Duration(1<<63 - 1)

func (c *checker) init(w *World) {
	c.w = w
	nv, nh := len(w.spec.VMs), len(w.spec.Hosts)
	c.last = make([]int, nv)
	for i := range c.last {
		c.last[i] = -1
	}
	c.lastAt = make([]time.Duration, nv)
	c.asg = make([][]timedAssigned, nv)
	c.ran = make([]bool, nv)
	c.failed = make([]bool, nv)
	c.harmEnd = make([]time.Duration, nh)
	c.frozen = make([]bool, nh)
	c.lost = make([]bool, nh)
	c.lostAt = make([]time.Duration, nh)
	c.lostSlow = make([]time.Duration, nh)
	c.isolated = make([]bool, nh)
}

func (c *checker) violate(msg string) {
	c.violations = append(c.violations, msg)
	c.w.logf(slog.LevelError, "sim", "check", msg)
}

// starting checks S1 and S2 when host b starts vm.
func (c *checker) starting(b *host, vm int) {
	w := c.w
	var others []string
	for _, h := range w.hosts {
		if h != b && h.vm[vm] != vmOff {
			others = append(others, h.name)
		}
	}
	name := w.vmName(vm)
	if len(others) > 0 {
		c.violate("S1 violated: " + name + " started on " + b.name + " while it runs on " + strings.Join(others, ","))
	}
	a := c.last[vm]
	if a < 0 || a == b.id {
		return
	}
	// Two coordinators may both assign a VM (their claims then meet on the
	// datastores and one withdraws): any assignment to b since the VM last
	// ran elsewhere counts, the newest one first.
	var g *timedAssigned
	for i := len(c.asg[vm]) - 1; i >= 0; i-- {
		if x := &c.asg[vm][i]; x.at >= c.lastAt[vm] && x.To == b.id {
			g = x
			break
		}
	}
	switch {
	case g == nil:
		c.violate("S2 violated: " + name + " started on " + b.name + " after running on " + w.hostName(a) +
			" with no assignment to " + b.name + " since")
	case g.Proof.Kind == 0:
		c.violate("S2 violated: " + name + " assigned to " + b.name + " at epoch " + utoa(g.Epoch) +
			" with no proof, after running on " + w.hostName(a))
	case g.From >= 0 && !w.incidentCovers(g.by, &g.Assigned):
		c.violate("S2 violated: " + name + " moved from " + w.hostName(g.From) + " to " + b.name + " at epoch " + utoa(g.Epoch) +
			" with proof " + g.Proof.Kind.String() + ", but no incident of " + w.hostName(g.by) + " records it")
	}
}

// running records that vm runs on h.
func (c *checker) running(h *host, vm int) {
	c.last[vm], c.lastAt[vm], c.ran[vm] = h.id, c.w.now, true
	c.asg[vm] = c.asg[vm][:0]
	if c.w.trace {
		c.w.records = append(c.w.records, record{at: c.w.now, host: h.id, vm: vm})
	}
}

// startFailed records a start the hypervisor refused.
func (c *checker) startFailed(vm int) { c.failed[vm] = true }

// assigned records a coordinator's assignment.
func (c *checker) assigned(by *host, a cluster.Assigned) {
	if a.VM < 0 || a.VM >= len(c.asg) {
		c.violate("assignment of unknown VM " + itoa(a.VM))
		return
	}
	c.asg[a.VM] = append(c.asg[a.VM], timedAssigned{a, c.w.now, by.id})
	if c.w.trace {
		c.w.records = append(c.w.records, record{at: c.w.now, vm: a.VM, asg: &a})
	}
}

// ---- L2 ----

// tail is how long after a harmful fault ends its consequences (a fence
// decided just before) are still excused.
func (c *checker) tail() time.Duration {
	t := c.w.spec.Timing
	return t.LeaseTimeout + t.WatchdogTimeout + t.Margin + t.Grace
}

// refresh updates each host's harmful conditions after a change.
func (c *checker) refresh() {
	w := c.w
	t := w.spec.Timing
	now := w.now
	own, _ := cluster.LeaseQuorum(w.spec.Datastores)
	for _, h := range w.hosts {
		i := h.id
		end := func() {
			if e := now + c.tail(); e > c.harmEnd[i] {
				c.harmEnd[i] = e
			}
		}
		if c.frozen[i] && !h.frozen && now-h.frozeAt >= t.Grace-t.Heartbeat {
			end()
		}
		c.frozen[i] = h.frozen
		bad := 0
		var slow time.Duration
		for ds := 0; ds < w.spec.Datastores; ds++ {
			if w.ds.faulty(ds, i, t.IOTimeout) {
				bad++
				slow = max(slow, w.ds.paths[ds][i].slow)
			}
		}
		lost := w.spec.Datastores-bad < own
		switch {
		case lost && !c.lost[i]:
			c.lostAt[i], c.lostSlow[i] = now, slow
		case lost:
			c.lostSlow[i] = max(c.lostSlow[i], slow)
		case c.lost[i] && now+c.lostSlow[i]-c.lostAt[i] >= t.Grace:
			end()
		}
		c.lost[i] = lost
		iso := lost && w.net.allCut(i)
		if c.isolated[i] && !iso {
			end()
		}
		c.isolated[i] = iso
	}
}

// poweredOff and poweredOn excuse fencing while a host is off by command
// and while it boots.
func (c *checker) poweredOff(h *host) { c.harmEnd[h.id] = forever }
func (c *checker) poweredOn(h *host) {
	if e := c.w.now + c.w.p.HostBoot + c.tail(); c.harmEnd[h.id] == forever || e > c.harmEnd[h.id] {
		c.harmEnd[h.id] = e
	}
}

// harmed reports whether fencing h now is excused by a harmful fault.
func (c *checker) harmed(h *host) bool {
	w, i, t := c.w, h.id, c.w.spec.Timing
	switch {
	case w.now <= c.harmEnd[i]:
		return true
	case h.frozen && w.now-h.frozeAt >= t.Grace-t.Heartbeat:
		return true
	case c.lost[i] && w.now-c.lostAt[i] >= t.Grace:
		return true
	}
	return c.isolated[i]
}

// fenced checks L2 when a BMC powers h off.
func (c *checker) fenced(h *host, how string) {
	if !c.harmed(h) {
		c.violate("L2 violated: " + h.name + " " + how + " with no harmful fault")
	}
	c.refreshAfter(h)
}

// watchdogFired checks L2 when h's watchdog resets it. An agent stopped
// for good (frozen) is its own harmful fault.
func (c *checker) watchdogFired(h *host) {
	if !h.frozen && !c.harmed(h) {
		c.violate("L2 violated: " + h.name + " reset by its watchdog with no harmful fault")
	}
	c.refreshAfter(h)
}

// refreshAfter excuses the consequences of a fence of h: the host reboots
// as a new incarnation its peers may still be fencing.
func (c *checker) refreshAfter(h *host) {
	if e := c.w.now + c.w.p.HostBoot + c.tail(); e > c.harmEnd[h.id] {
		c.harmEnd[h.id] = e
	}
}

// ---- L1 ----

// settled checks L1, unless a fault that rightly blocks recovery is still
// in force.
func (c *checker) settled() {
	w := c.w
	if w.net.faulty() {
		return
	}
	for ds := range w.ds.paths {
		for i := range w.ds.paths[ds] {
			if w.ds.faulty(ds, i, w.spec.Timing.IOTimeout) {
				return
			}
		}
	}
	// A VM is expected back if it is protected, ran, never failed to start,
	// and every VM it must start after is running or expected back.
	expect := make([]int8, len(w.spec.VMs)) // 0 unknown, 1 yes, -1 no, 2 visiting
	var expected func(vm int) bool
	expected = func(vm int) bool {
		switch expect[vm] {
		case 1:
			return true
		case -1, 2:
			return false
		}
		expect[vm] = 2
		v := w.spec.VMs[vm]
		ok := v.Protected && c.ran[vm] && !c.failed[vm] && !w.vmBad[vm]
		for _, d := range v.After {
			ok = ok && d >= 0 && d < len(expect) && (len(w.Running(d)) > 0 || expected(d))
		}
		expect[vm] = -1
		if ok {
			expect[vm] = 1
		}
		return ok
	}
	var need, missing []int
	for vm := range w.spec.VMs {
		if !expected(vm) {
			continue
		}
		need = append(need, vm)
		if len(w.Running(vm)) == 0 {
			missing = append(missing, vm)
		}
	}
	if len(missing) == 0 {
		return
	}
	if !c.fits(need) {
		w.logf(slog.LevelInfo, "sim", "check", "L1 not checked: the usable hosts lack room for the protected VMs")
		return
	}
	names := make([]string, len(missing))
	for i, vm := range missing {
		names[i] = w.vmName(vm)
	}
	c.violate("L1 violated: " + strings.Join(names, ",") + " not running " +
		SettleTime.String() + " after the last fault, with room for them")
}

// fits reports whether the VMs in need, plus the unprotected VMs running
// now, fit on the usable hosts (first fit decreasing, honouring
// anti-affinity).
func (c *checker) fits(need []int) bool {
	w := c.w
	type bin struct {
		cpu, mem int
		groups   map[string]bool
	}
	var bins []*bin
	for _, h := range w.hosts {
		if !h.up || h.frozen || h.maint || h.hvFail {
			continue
		}
		b := &bin{cpu: h.spec.CPU, mem: h.spec.MemoryMiB, groups: map[string]bool{}}
		for vm, st := range h.vm {
			if v := w.spec.VMs[vm]; st != vmOff && !v.Protected {
				b.cpu -= v.CPU
				b.mem -= v.MemoryMiB
			}
		}
		bins = append(bins, b)
	}
	vms := append([]int(nil), need...)
	sort.SliceStable(vms, func(i, j int) bool {
		a, b := w.spec.VMs[vms[i]], w.spec.VMs[vms[j]]
		return a.MemoryMiB+64*a.CPU > b.MemoryMiB+64*b.CPU
	})
	for _, vm := range vms {
		v := w.spec.VMs[vm]
		placed := false
		for _, b := range bins {
			if b.cpu >= v.CPU && b.mem >= v.MemoryMiB && (v.AntiAffinity == "" || !b.groups[v.AntiAffinity]) {
				b.cpu -= v.CPU
				b.mem -= v.MemoryMiB
				if v.AntiAffinity != "" {
					b.groups[v.AntiAffinity] = true
				}
				placed = true
				break
			}
		}
		if !placed {
			return false
		}
	}
	return true
}
