package cluster

import (
	"fmt"
	"log/slog"
	"math/bits"
	"time"

	"github.com/vigil-ha/vigil/fence"
	"github.com/vigil-ha/vigil/hb"
)

// coordinator is the part of a Node that acts for the whole partition: it
// fences failed hosts and assigns VMs. Only the coordinator of a quorate
// partition runs it.
type coordinator struct {
	n        *Node
	fences   []*fence.Fence
	fenceInc []uint64
	proven   []*Proof // per host: the proof for fenceInc
	proofs   []Proof  // recent proofs, written to the record
	assign   []hb.Assignment
	attempts []int
	failedAt []uint64 // epoch of the last start failure counted, per VM
	retryAt  []time.Duration
	gaveUp   []bool
	said     []string // last refusal or wait reason logged, per VM
	nextPlan time.Duration
	dirty    bool
	waitSaid time.Duration // when "recovery waits" was last logged
	since    time.Duration // when this host became coordinator
	owner    []owner
	book     incidentBook // incidents this host keeps as coordinator
}

// owner is the newest claim on a VM, over every record.
type owner struct {
	host  int
	epoch uint64
	state ClaimState
	why   Reason
}

func newCoordinator(n *Node) *coordinator {
	h, v := len(n.spec.Hosts), len(n.spec.VMs)
	return &coordinator{
		n: n, fences: make([]*fence.Fence, h), fenceInc: make([]uint64, h), proven: make([]*Proof, h),
		attempts: make([]int, v), failedAt: make([]uint64, v), retryAt: make([]time.Duration, v),
		gaveUp: make([]bool, v), said: make([]string, v), owner: make([]owner, v), dirty: true,
	}
}

func (c *coordinator) stepDown(now time.Duration) {
	c.assign = nil
	c.dirty = true
	c.closeAll(now, "handed over: "+c.n.name(c.n.self)+" stopped coordinating")
}

// ready says whether this host can act for the partition right now: its lease
// is fresh, a claim quorum of datastores was read recently, and the start-up
// settle time (grace) has passed.
func (c *coordinator) ready(now time.Duration) bool {
	n := c.n
	t := &n.spec.Timing
	if n.lease != leaseFresh || now-n.startAt < t.Grace+t.DatastoreInterval {
		return false
	}
	var fresh, settled uint8
	for d := range n.ds {
		if n.ds[d].readOK && now-n.ds[d].lastReadOK <= t.StorageTimeout() {
			fresh |= 1 << uint(d)
			if n.ds[d].lastReadOK >= c.since {
				settled |= 1 << uint(d)
			}
		}
	}
	if !ClaimQuorum(fresh, len(n.ds)) {
		if now-c.waitSaid >= waitRepeat || c.waitSaid == 0 {
			c.waitSaid = now
			n.logf(slog.LevelWarn, "coord", "recovery waits: %d of %d datastores read recently; ownership needs more than half of them (or half, the first included)", bits.OnesCount8(fresh), len(n.ds))
		}
		return false
	}
	// Newly elected: first read what a coordinator before this one did.
	return ClaimQuorum(settled, len(n.ds))
}

func (c *coordinator) tick(now time.Duration) {
	if !c.ready(now) {
		return
	}
	replan := c.dirty || now >= c.nextPlan
	if replan {
		c.dirty = false
		c.nextPlan = now + c.n.spec.Timing.DatastoreInterval
		c.owners()
		c.pruneAssignments()
		c.updateIncidents(now)
	}
	c.fenceTick(now)
	if (replan || c.dirty) && !c.fencing(now) {
		c.plan(now)
	}
}

// owners computes the newest claim on every VM from every record (this
// host's own claims from memory, the others from the datastores).
func (c *coordinator) owners() {
	n := c.n
	for v := range c.owner {
		c.owner[v] = owner{host: -1}
	}
	see := func(h int, cl Claim) {
		o := &c.owner[cl.VM]
		if cl.Epoch > o.epoch || (cl.Epoch == o.epoch && (o.host < 0 || o.state == Released) && cl.State.live()) {
			*o = owner{host: h, epoch: cl.Epoch, state: cl.State, why: cl.Reason}
		}
	}
	for h, r := range n.best {
		if h == n.self || r == nil {
			continue
		}
		for _, cl := range r.Claims {
			if cl.VM < len(c.owner) {
				see(h, cl)
			}
		}
	}
	for _, lc := range n.claims {
		see(n.self, lc.Claim)
	}
}

// pruneAssignments drops assignments their target has answered (claimed or
// declined) and those whose target was fenced or restarted before answering
// (a later incarnation ignores them): planning then supersedes them.
func (c *coordinator) pruneAssignments() {
	keep := c.assign[:0:0]
	for _, a := range c.assign {
		o := c.owner[a.VM]
		switch {
		case o.epoch >= a.Epoch:
		case c.proven[a.Host] != nil:
		case c.restartedWithout(a):
		default:
			keep = append(keep, a)
			continue
		}
		c.dirty = true
	}
	if len(keep) != len(c.assign) {
		c.assign = keep
		c.n.bump()
	}
}

// fenceTick fences every failed host that owns live claims or pending
// assignments, and forgets fences of hosts that came back.
func (c *coordinator) fenceTick(now time.Duration) {
	n := c.n
	for h := range n.peers {
		if h == n.self {
			continue
		}
		p := &n.peers[h]
		inc := p.h.inc
		if r := n.best[h]; r != nil && r.Incarnation > inc {
			inc = r.Incarnation
		}
		if c.fences[h] != nil && inc != c.fenceInc[h] {
			c.fenceAbandoned(now, h, fmt.Sprintf("%s restarted (incarnation %d) before its fence was proven", n.name(h), inc))
			c.endFence(h)
			c.fences[h], c.proven[h] = nil, nil // a new life: the old fence is moot
		}
		f := c.fences[h]
		if p.verdict != Failed {
			if f != nil && f.State() != fence.Proven {
				n.logf(slog.LevelInfo, "fence", "%s is %s again: fence abandoned", n.name(h), p.verdict)
				c.fenceAbandoned(now, h, fmt.Sprintf("%s is %s again", n.name(h), p.verdict))
				c.endFence(h)
				c.fences[h] = nil
			}
			continue
		}
		if f == nil {
			if !c.owns(h) {
				continue
			}
			f = fence.New(n.spec.Hosts[h].BMC, n.spec.Timing.BMCPoll, n.spec.Timing.FenceTimeout)
			c.fences[h], c.fenceInc[h] = f, inc
			how, plan := "waiting for its lease and watchdog deadlines", fence.Lease
			if ok, _, _ := n.leaseProof(h, now); ok {
				how = "its lease and watchdog deadlines have already passed"
			} else if n.spec.Hosts[h].BMC {
				how, plan = "powering it off through its BMC", fence.BMC
			}
			n.logf(slog.LevelWarn, "fence", "fencing %s (incarnation %d): %s", n.name(h), inc, how)
			c.fenceOpened(now, h, inc, plan)
		}
		c.stepFence(now, h, nil)
	}
}

// waitRepeat is how often "recovery waits" is repeated while it holds.
const waitRepeat = 30 * time.Second

// fenceBatch is how long restarts wait for BMC fences still in progress, so
// that the VMs of hosts that failed together are placed together, by priority.
const fenceBatch = 2 * time.Second

// fencing reports whether a BMC fence started less than fenceBatch ago is
// still in progress.
func (c *coordinator) fencing(now time.Duration) bool {
	for _, f := range c.fences {
		if f == nil || now-f.Started() >= fenceBatch {
			continue
		}
		if s := f.State(); s == fence.PoweringOff || s == fence.Verifying {
			return true
		}
	}
	return false
}

// awaitingLease reports whether a fence waits for proof (c).
func (c *coordinator) awaitingLease() bool {
	if c.n.coord != c.n.self {
		return false
	}
	for _, f := range c.fences {
		if f != nil && f.State() != fence.Proven {
			return true
		}
	}
	return false
}

func (c *coordinator) owns(h int) bool {
	for v := range c.owner {
		if o := c.owner[v]; o.host == h && o.state != Released {
			return true
		}
	}
	for v, a := range c.n.lastAssign {
		if a.Host == h && a.Epoch > c.owner[v].epoch {
			return true
		}
	}
	return false
}

func (c *coordinator) stepFence(now time.Duration, h int, r *fence.Reply) {
	n := c.n
	f := c.fences[h]
	if f == nil || f.State() == fence.Proven {
		return
	}
	lease, ctr, _ := n.leaseProof(h, now)
	req, stuck := f.Step(now, fence.Input{Start: true, LeaseProof: lease, Reply: r})
	c.fenceNoted(now, h, f, stuck)
	if stuck {
		n.logf(slog.LevelError, "fence", "fence of %s has no proof after %s: check its BMC; still waiting for its lease to expire", n.name(h), ms(n.spec.Timing.FenceTimeout))
	}
	switch req {
	case fence.PowerOff:
		n.emit(BMC{Host: h, Op: BMCPowerOff})
	case fence.Status:
		n.emit(BMC{Host: h, Op: BMCStatus})
	}
	if f.State() != fence.Proven {
		return
	}
	pr := Proof{Host: h, Incarnation: c.fenceInc[h], At: now}
	if f.Method() == fence.BMC {
		pr.Kind = ProofBMCOff
		pr.Detail = fmt.Sprintf("BMC read back power off after %d request(s)", len(f.Attempts()))
	} else {
		pr.Kind, pr.Counter = ProofLease, ctr
		t := &n.spec.Timing
		pr.Detail = fmt.Sprintf("lease counter %d still, and W+margin=%s past both its lease and its network quorum", ctr, ms(t.WatchdogTimeout+t.Margin))
	}
	c.proven[h] = &pr
	c.endFence(h)
	c.fenceProven(now, h, pr)
	c.proofs = append(c.proofs, pr)
	if len(c.proofs) > 8 {
		c.proofs = c.proofs[len(c.proofs)-8:]
	}
	n.logf(slog.LevelWarn, "fence", "fenced %s in %s: %s (%s)", n.name(h), ms(now-f.Started()), pr.Kind, pr.Detail)
	c.dirty = true
	n.bump()
}

// endFence drops the BMC requests of h's fence that have not gone out:
// once the fence is proven by its lease or abandoned, none of them may
// power h off any more. A fence that never used the BMC has none, and one
// the BMC proved has its last answer.
func (c *coordinator) endFence(h int) {
	f := c.fences[h]
	if f != nil && len(f.Attempts()) > 0 && (f.State() != fence.Proven || f.Method() != fence.BMC) {
		c.n.emit(BMC{Host: h, Op: BMCCancel})
	}
}

func (c *coordinator) bmcReplied(now time.Duration, e BMCReplied) {
	if e.Host < 0 || e.Host >= len(c.fences) {
		return
	}
	op := fence.PowerOff
	if e.Op == BMCStatus {
		op = fence.Status
	}
	c.stepFence(now, e.Host, &fence.Reply{Op: op, On: e.On, Err: e.Err})
	if c.dirty && c.ready(now) && !c.fencing(now) {
		c.dirty = false
		c.owners()
		c.pruneAssignments()
		c.plan(now)
	}
}

// Assignments lists the coordinator's outstanding assignments (none unless
// this host coordinates).
func (n *Node) Assignments() []hb.Assignment {
	return append([]hb.Assignment(nil), n.co.assign...)
}
