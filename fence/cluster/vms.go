package cluster

import (
	"log/slog"
	"sort"
	"time"

	"github.com/vigil-ha/vigil/hb"
)

// localClaim is this host's claim on one VM and where it stands.
type localClaim struct {
	Claim
	from      int
	fromEpoch uint64
	counter   uint64 // first record counter that carried the claim (0: not yet written)
	checked   uint8  // datastores on which the read-back check passed
	stopping  bool
	pend      Reason // release reason once the stop completes
	opSeq     uint64 // the hypervisor request whose answer counts
}

// assigned handles an assignment for this host, from gossip or a record.
func (n *Node) assigned(now time.Duration, coord int, a hb.Assignment) {
	if a.VM < 0 || a.VM >= len(n.spec.VMs) || (a.Inc != 0 && a.Inc != n.inc) {
		return
	}
	if n.starting() {
		n.deferred = append(n.deferred, deferred{a, coord}) // taken up once joined with a lease
		return
	}
	if lc := n.claims[a.VM]; lc != nil && lc.Epoch >= a.Epoch {
		return
	}
	if a.Epoch < n.epochMax[a.VM] {
		return // superseded
	}
	n.epochMax[a.VM] = a.Epoch
	name := n.vmName(a.VM)
	if lc := n.claims[a.VM]; lc != nil && lc.State != Released && !lc.stopping {
		// Already ours: take the new epoch, never a second start.
		lc.Epoch, lc.from, lc.fromEpoch = a.Epoch, a.From, a.FromEpoch
		n.logf(slog.LevelInfo, "vm", "%s already runs here: now at epoch %d", name, a.Epoch)
		n.bump()
		return
	}
	if n.maint || n.isolated || n.lease != leaseFresh {
		n.claims[a.VM] = &localClaim{Claim: Claim{VM: a.VM, Epoch: a.Epoch, State: Released, Reason: Declined}, from: a.From, fromEpoch: a.FromEpoch}
		n.logf(slog.LevelInfo, "vm", "declined %s (epoch %d): host is %s", name, a.Epoch, n.self0)
		n.bump()
		return
	}
	n.claims[a.VM] = &localClaim{Claim: Claim{VM: a.VM, Epoch: a.Epoch, State: Claiming}, from: a.From, fromEpoch: a.FromEpoch}
	n.logf(slog.LevelInfo, "vm", "claiming %s (epoch %d, assigned by %s)", name, a.Epoch, n.name(coord))
	n.bump()
}

// deferred is an assignment that arrived while this host was starting.
type deferred struct {
	a  hb.Assignment
	by int // the coordinator that sent it
}

// starting reports whether this incarnation has yet to join and take its
// first lease.
func (n *Node) starting() bool {
	return !n.joined || n.lease == leaseNone || (n.lease == leaseHeld && !n.hadLease)
}

func (n *Node) claimsChecking() bool {
	for _, lc := range n.claims {
		if lc.State == Claiming {
			return true
		}
	}
	return false
}

// checkClaims runs the read-back check of claims written before this read
// was issued: any other live claim on the VM above the superseded epoch is a
// conflict and the claim is withdrawn. A claim checked clean on a majority
// of datastores starts its VM.
func (n *Node) checkClaims(now time.Duration, d int, recs []*Record) {
	if !n.claimsChecking() {
		return
	}
	ds := &n.ds[d]
	for _, v := range n.sortedClaims() {
		lc := n.claims[v]
		if lc.State != Claiming || lc.counter == 0 || lc.counter > ds.rAfter || lc.checked&(1<<uint(d)) != 0 {
			continue
		}
		if h := conflict(recs, n.self, lc); h >= 0 {
			lc.State, lc.Reason = Released, Conflict
			n.logf(slog.LevelWarn, "vm", "withdrew claim on %s (epoch %d): %s claims it too", n.vmName(v), lc.Epoch, n.name(h))
			n.bump()
			continue
		}
		lc.checked |= 1 << uint(d)
		if ClaimQuorum(lc.checked, len(n.ds)) {
			lc.State = Starting
			n.logf(slog.LevelInfo, "vm", "starting %s (epoch %d)", n.vmName(v), lc.Epoch)
			n.vmOp(v, VMStart)
			n.bump()
		}
	}
}

// vmOp asks the hypervisor for op on v and remembers the request, so that
// only its answer counts.
func (n *Node) vmOp(v int, op VMOp) {
	n.vmSeq++
	if lc := n.claims[v]; lc != nil {
		lc.opSeq = n.vmSeq
	}
	n.emit(VM{VM: v, Op: op, Seq: n.vmSeq})
}

func conflict(recs []*Record, self int, lc *localClaim) int {
	for h, r := range recs {
		if h == self || r == nil || r.Host != h {
			continue
		}
		for _, c := range r.Claims {
			if c.VM == lc.VM && c.State != Released && c.Epoch > lc.fromEpoch {
				return h
			}
		}
	}
	return -1
}

func (n *Node) vmDone(now time.Duration, e VMDone) {
	lc := n.claims[e.VM]
	if lc == nil || (e.Seq != 0 && e.Seq != lc.opSeq) {
		return // no claim, or the answer to a request overtaken since
	}
	name := n.vmName(e.VM)
	switch {
	case e.Op == VMStart && e.Err != nil:
		if lc.State == Starting {
			lc.State, lc.Reason = Released, StartFailed
			n.logf(slog.LevelError, "vm", "%s failed to start: %v", name, e.Err)
			n.bump()
		}
	case e.Op == VMStart:
		if lc.stopping || lc.State != Starting {
			return
		}
		lc.State = Running
		n.logf(slog.LevelInfo, "vm", "%s running", name)
		if n.coord == n.self {
			n.co.incidentRunning(now, e.VM, lc.Epoch)
		}
		n.bump()
	case e.Err != nil && e.Op == VMStop:
		n.logf(slog.LevelWarn, "vm", "stopping %s failed (%v): killing it", name, e.Err)
		n.vmOp(e.VM, VMKill)
	case e.Err != nil:
		n.logf(slog.LevelError, "vm", "killing %s failed: %v; it stays claimed", name, e.Err)
	case lc.stopping:
		lc.stopping = false
		lc.State, lc.Reason = Released, lc.pend
		n.logf(slog.LevelInfo, "vm", "%s stopped and released (%s)", name, lc.pend)
		n.bump()
	}
}

func (n *Node) vmExited(now time.Duration, e VMExited) {
	if !n.joined {
		// Not adopted yet: it no longer runs, so there is nothing to keep.
		for i, v := range n.running0 {
			if v == e.VM {
				n.running0 = append(n.running0[:i:i], n.running0[i+1:]...)
				break
			}
		}
		return
	}
	lc := n.claims[e.VM]
	if lc == nil || (lc.State != Running && lc.State != Starting) || lc.stopping {
		return
	}
	lc.State, lc.Reason = Released, Exited
	n.logf(slog.LevelWarn, "vm", "%s exited unexpectedly: released for restart", n.vmName(e.VM))
	n.bump()
}

// vmFailover stops a VM whose guest or application failed past its policy
// and releases it, for the coordinator to restart on another host.
func (n *Node) vmFailover(now time.Duration, e VMFailover) {
	if e.VM < 0 || e.VM >= len(n.spec.VMs) {
		return
	}
	lc := n.claims[e.VM]
	if lc == nil || !lc.State.live() || lc.stopping {
		return
	}
	n.logf(slog.LevelWarn, "vm", "failing %s over to another host: %s", n.vmName(e.VM), e.Why)
	n.release(e.VM, AppFailed, VMStop)
}

// releaseAll stops every VM this host runs and releases it once stopped.
func (n *Node) releaseAll(now time.Duration, why Reason, op VMOp) {
	for _, v := range n.sortedClaims() {
		n.release(v, why, op)
	}
}

func (n *Node) release(v int, why Reason, op VMOp) {
	lc := n.claims[v]
	switch {
	case lc.State == Claiming:
		lc.State, lc.Reason = Released, why
		n.bump()
	case (lc.State == Running || lc.State == Starting) && !lc.stopping:
		lc.stopping, lc.pend = true, why
		n.vmOp(v, op)
	}
}

// isolationResponse applies each VM's isolation response.
func (n *Node) isolationResponse(now time.Duration) {
	for _, v := range n.sortedClaims() {
		switch n.spec.VMs[v].Isolation {
		case ShutDown:
			n.logf(slog.LevelWarn, "vm", "isolation response: shutting down %s", n.vmName(v))
			n.release(v, Isolation, VMStop)
		case PowerOff:
			n.logf(slog.LevelWarn, "vm", "isolation response: powering off %s", n.vmName(v))
			n.release(v, Isolation, VMKill)
		default:
			if n.claims[v].State.live() {
				n.logf(slog.LevelInfo, "vm", "isolation response: leaving %s running", n.vmName(v))
			}
		}
	}
}

// sortedClaims lists the VMs this host claims, in VM order. The list is
// cached until a VM is added to or removed from the claims.
func (n *Node) sortedClaims() []int {
	if n.claimOrder != nil && len(n.claimOrder) == len(n.claims) {
		return n.claimOrder
	}
	vs := make([]int, 0, len(n.claims))
	for v := range n.claims {
		vs = append(vs, v)
	}
	sort.Ints(vs)
	n.claimOrder = vs
	return vs
}

// record builds the next slot record.
func (n *Node) record() *Record {
	r := &Record{
		Host:          n.self,
		Incarnation:   n.inc,
		Counter:       n.counter,
		Isolated:      n.isolated,
		Maintenance:   n.maint,
		DatastoreLost: n.lease == leaseLapsed || n.lease == leaseHeld,
		Hears:         n.hears,
	}
	same := len(n.lastClaims) == len(n.claims)
	for i, v := range n.sortedClaims() {
		lc := n.claims[v]
		if lc.counter == 0 {
			lc.counter = n.counter
		}
		same = same && n.lastClaims[i] == lc.Claim
	}
	if !same {
		// A fresh slice only when a claim changed: readers skip claims
		// they have already seen by the slice's identity.
		cs := make([]Claim, 0, len(n.claims))
		for _, v := range n.sortedClaims() {
			cs = append(cs, n.claims[v].Claim)
		}
		n.lastClaims = cs
	}
	r.Claims = n.lastClaims
	if n.coord == n.self {
		r.Assignments = n.co.assign
		r.Fenced = n.co.proofs
	}
	return r
}

// Claims returns this host's claims, by VM.
func (n *Node) Claims() []Claim {
	var cs []Claim
	for _, v := range n.sortedClaims() {
		cs = append(cs, n.claims[v].Claim)
	}
	return cs
}
