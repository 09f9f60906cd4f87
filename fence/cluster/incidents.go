package cluster

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/fence"
)

// The coordinator keeps one incident per host and kind of proof: a failed
// host's (fenced) and a releasing or isolated host's (proof a). An incident
// opens when the coordinator starts fencing a host that owns VMs, or when it
// plans the first VM a host released; it gathers every placement of that
// host's VMs and closes once each of them runs (or failed, and the failure
// is the next host's incident), nothing changed for incidentQuiet and, for
// a fenced host, every protected VM it owned has been placed. A fence
// abandoned (the host is back) or a coordinator stepping down closes it too.
//
//	event                          | incident
//	-------------------------------+----------------------------------------
//	fence of h starts              | open (failed): evidence, fence plan
//	BMC request or answer          | attempt added or completed
//	fence proven                   | proof
//	VM of h assigned               | placement (open one, proof a, if none)
//	VM of h cannot be placed       | placement waiting, with the reason
//	coordinator sees it running    | placement running
//	target released it, was fenced | placement failed
//	settled and quiet              | closed, with the outcome
//
// Each change is emitted at the end of the Step as a RecordIncident with a
// new version, a copy never modified afterwards.

const (
	// keepClosed is how many closed incidents the coordinator remembers.
	keepClosed = 16
	// incidentQuiet is how long a settled incident stays open for more of
	// its host's VMs (a maintenance releases them one by one).
	incidentQuiet = 5 * time.Second
	// maxAttempts is how many BMC requests an incident lists: the first
	// quarter and the last three quarters of them beyond it.
	maxAttempts = 32
)

// incidentBook is the coordinator's incidents.
type incidentBook struct {
	seq     uint64
	open    []*liveIncident // in the order they opened
	closed  []*Incident     // the last keepClosed, oldest first
	pending bool            // an open incident changed since the last flush
}

// liveIncident is an open incident: x is the working copy (its slices are
// owned here), snap the last version emitted.
type liveIncident struct {
	x       Incident
	changed bool
	last    time.Duration // when it last changed
	snap    *Incident
}

func (c *coordinator) touch(now time.Duration, li *liveIncident) {
	li.changed, li.last = true, now
	c.book.pending = true
}

// findIncident returns the open incident about host h with a fence
// (fenced) or a release, or nil.
func (c *coordinator) findIncident(h int, fenced bool) *liveIncident {
	for _, li := range c.book.open {
		if li.x.Host == h && (li.x.Kind == IncidentFailed) == fenced {
			return li
		}
	}
	return nil
}

// openIncident opens an incident about host h (incarnation inc), taking
// the evidence this host holds on h; row is the evidence when there is
// none (h is alive: it released a VM).
func (c *coordinator) openIncident(now time.Duration, h int, kind IncidentKind, inc uint64, row string) *liveIncident {
	n := c.n
	c.book.seq++
	li := &liveIncident{x: Incident{ID: IncidentID{Host: n.self, Incarnation: n.inc, Seq: c.book.seq}, Host: h, Incarnation: inc, Kind: kind, Detected: now}}
	if h != n.self {
		if p := &n.peers[h]; p.verdict != Alive && p.verdict != Unknown {
			li.x.Detected, li.x.Suspect = p.lostAt, p.lostRows
			if p.verdict == Failed || p.verdict == Isolated {
				li.x.Decided, li.x.Verdict = p.decidedAt, p.decidedRows
			}
		}
	}
	if li.x.Suspect == nil && row != "" {
		li.x.Suspect = []string{row}
	}
	if li.x.Suspect == nil && h != n.self {
		li.x.Suspect = n.Explain(h, now)
	}
	c.book.open = append(c.book.open, li)
	c.touch(now, li)
	return li
}

// fenceOpened records the start of a fence of h (incarnation inc).
func (c *coordinator) fenceOpened(now time.Duration, h int, inc uint64, plan fence.Method) {
	li := c.findIncident(h, true)
	if li != nil && li.x.Incarnation != inc {
		c.closeIncident(now, li, fmt.Sprintf("superseded: %s failed again as incarnation %d", c.n.name(h), inc))
		li = nil
	}
	if li == nil {
		li = c.openIncident(now, h, IncidentFailed, inc, "")
	}
	li.x.Fence = IncidentFence{Started: now, Plan: plan}
	c.touch(now, li)
}

// fenceNoted copies the fence's BMC attempts when they changed.
func (c *coordinator) fenceNoted(now time.Duration, h int, f *fence.Fence, stuck bool) {
	li := c.findIncident(h, true)
	if li == nil {
		return
	}
	got, have := f.Attempts(), li.x.Fence.Attempts
	if len(got) != li.x.Fence.Requests || (len(got) > 0 && got[len(got)-1] != have[len(have)-1]) {
		li.x.Fence.Requests = len(got)
		if len(got) > maxAttempts {
			// A BMC that never reads back off: keep how it began and ended.
			got = append(got[:maxAttempts/4:maxAttempts/4], got[len(got)-maxAttempts*3/4:]...)
		}
		li.x.Fence.Attempts = append(have[:0:0], got...)
		c.touch(now, li)
	}
	if stuck {
		li.x.Fence.Stuck = true
		c.touch(now, li)
	}
}

// fenceProven records the proof of h's fence.
func (c *coordinator) fenceProven(now time.Duration, h int, pr Proof) {
	if li := c.findIncident(h, true); li != nil {
		li.x.Proof = pr
		c.touch(now, li)
	}
}

// fenceAbandoned closes h's fence incident when the fence is given up.
func (c *coordinator) fenceAbandoned(now time.Duration, h int, why string) {
	if li := c.findIncident(h, true); li != nil && li.x.Proof.Kind == 0 {
		c.closeIncident(now, li, "abandoned: "+why)
	}
}

// incidentFor returns the incident a candidate's placement belongs to,
// opening one if none is open.
func (c *coordinator) incidentFor(now time.Duration, cd *candidate) *liveIncident {
	n := c.n
	fenced := cd.proof.Kind != ProofReleased
	if li := c.findIncident(cd.from, fenced); li != nil {
		return li
	}
	kind, inc, row := IncidentFailed, cd.proof.Incarnation, ""
	if !fenced {
		kind, inc = IncidentReleased, c.incOf(cd.from)
		if cd.why == Isolation || (cd.from != n.self && n.declaredIsolated(cd.from)) {
			kind = IncidentIsolated
		}
		row = fmt.Sprintf("%s released %s (%s)", n.name(cd.from), n.vmName(cd.vm), cd.why)
		if cd.why == NoReason {
			row = cd.proof.Detail
		}
	}
	li := c.openIncident(now, cd.from, kind, inc, row)
	li.x.Proof = cd.proof
	return li
}

// incidentPlaced records an assignment made for a candidate.
func (c *coordinator) incidentPlaced(now time.Duration, cd *candidate, a Assigned) {
	li := c.incidentFor(now, cd)
	pl := Placement{VM: a.VM, To: a.To, Epoch: a.Epoch, State: PlacementAssigned, Assigned: now}
	if cd.why != NoReason {
		pl.Reason = "released: " + cd.why.String()
	}
	if i := li.waiting(a.VM); i >= 0 {
		li.x.Placements[i] = pl
	} else {
		li.x.Placements = append(li.x.Placements, pl)
	}
	c.touch(now, li)
}

// incidentWaiting records why a candidate could not be placed.
func (c *coordinator) incidentWaiting(now time.Duration, cd *candidate, reason string) {
	li := c.incidentFor(now, cd)
	if i := li.waiting(cd.vm); i >= 0 {
		if li.x.Placements[i].Reason == reason {
			return
		}
		li.x.Placements[i].Reason = reason
	} else {
		li.x.Placements = append(li.x.Placements, Placement{VM: cd.vm, To: -1, State: PlacementWaiting, Reason: reason})
	}
	c.touch(now, li)
}

// waiting returns the index of vm's waiting placement, or -1.
func (li *liveIncident) waiting(vm int) int {
	for i, pl := range li.x.Placements {
		if pl.VM == vm && pl.State == PlacementWaiting {
			return i
		}
	}
	return -1
}

// incidentRunning marks this host's own placement of vm at epoch running:
// the coordinator sees its own VMs start at once.
func (c *coordinator) incidentRunning(now time.Duration, vm int, epoch uint64) {
	for _, li := range c.book.open {
		for i := range li.x.Placements {
			if pl := &li.x.Placements[i]; pl.VM == vm && pl.Epoch == epoch && pl.To == c.n.self && pl.State == PlacementAssigned {
				pl.State, pl.Running = PlacementRunning, now
				c.touch(now, li)
			}
		}
	}
}

// updateIncidents follows each open incident's placements through the
// owners just computed, and closes the incidents that settled.
func (c *coordinator) updateIncidents(now time.Duration) {
	n := c.n
	for i := 0; i < len(c.book.open); i++ {
		li := c.book.open[i]
		for j := range li.x.Placements {
			pl := &li.x.Placements[j]
			if pl.State != PlacementAssigned {
				continue
			}
			o := c.owner[pl.VM]
			switch {
			case o.epoch == pl.Epoch && o.host == pl.To && o.state == Running:
				pl.State, pl.Running = PlacementRunning, now
			case o.epoch == pl.Epoch && o.host == pl.To && o.state == Released:
				pl.State, pl.Reason = PlacementFailed, fmt.Sprintf("%s gave it up (%s)", n.name(pl.To), o.why)
			case o.epoch > pl.Epoch || n.epochMax[pl.VM] > pl.Epoch:
				pl.State, pl.Reason = PlacementFailed, fmt.Sprintf("superseded at epoch %d", max(o.epoch, n.epochMax[pl.VM]))
			case pl.To != n.self && c.proven[pl.To] != nil:
				pl.State, pl.Reason = PlacementFailed, n.name(pl.To)+" was fenced before it ran"
			default:
				continue
			}
			c.touch(now, li)
		}
		if c.settled(li) && now-li.last >= incidentQuiet {
			c.closeIncident(now, li, c.outcome(&li.x))
			i--
		}
	}
}

// settled reports whether an incident has nothing left to do: its fence
// (if any) is proven, every placement ran or failed, and a fenced host has
// no protected VM left to place.
func (c *coordinator) settled(li *liveIncident) bool {
	for _, pl := range li.x.Placements {
		if pl.State == PlacementAssigned || pl.State == PlacementWaiting {
			return false
		}
	}
	if li.x.Kind != IncidentFailed {
		return true
	}
	if li.x.Proof.Kind == 0 {
		return false
	}
	n, h := c.n, li.x.Host
	for v := range c.owner {
		o := c.owner[v]
		la := n.lastAssign[v]
		ours := (o.host == h && o.state.live()) || (la.Host == h && la.Epoch > o.epoch)
		if ours && n.spec.VMs[v].Protected && !c.gaveUp[v] && !li.has(v) {
			return false
		}
	}
	return true
}

func (li *liveIncident) has(vm int) bool {
	for _, pl := range li.x.Placements {
		if pl.VM == vm {
			return true
		}
	}
	return false
}

// outcome sums up a settled incident: how many of its VMs run again, and
// those whose restart budget is spent.
func (c *coordinator) outcome(x *Incident) string {
	if len(x.Placements) == 0 {
		return "no protected VM to restart"
	}
	last := map[int]PlacementState{}
	var vms []int
	for _, pl := range x.Placements {
		if _, ok := last[pl.VM]; !ok {
			vms = append(vms, pl.VM)
		}
		last[pl.VM] = pl.State
	}
	run := 0
	var spent []string
	for _, v := range vms {
		switch {
		case last[v] == PlacementRunning:
			run++
		case c.gaveUp[v]:
			spent = append(spent, c.n.vmName(v))
		}
	}
	s := fmt.Sprintf("%d of %d VMs running again", run, len(vms))
	if len(spent) > 0 {
		s += fmt.Sprintf("; restart budget used up: %s (operator action needed)", strings.Join(spent, ", "))
	}
	return s
}

// closeIncident closes an open incident, emits its last version and keeps
// it among the closed ones.
func (c *coordinator) closeIncident(now time.Duration, li *liveIncident, why string) {
	li.x.Closed, li.x.Outcome = true, why
	c.emitIncident(li)
	b := &c.book
	if i := slices.Index(b.open, li); i >= 0 {
		b.open = slices.Delete(b.open, i, i+1)
	}
	b.closed = append(b.closed, li.snap)
	if len(b.closed) > keepClosed {
		b.closed = slices.Delete(b.closed, 0, len(b.closed)-keepClosed)
	}
}

// closeAll closes every open incident: this host stopped coordinating.
func (c *coordinator) closeAll(now time.Duration, why string) {
	for len(c.book.open) > 0 {
		c.closeIncident(now, c.book.open[0], why)
	}
}

func (c *coordinator) emitIncident(li *liveIncident) {
	li.x.Version++
	li.changed = false
	li.snap = li.x.Clone()
	c.n.emit(RecordIncident{Incident: li.snap})
}

// flushIncidents emits a new version of every open incident that changed.
func (c *coordinator) flushIncidents() {
	if !c.book.pending {
		return
	}
	c.book.pending = false
	for _, li := range c.book.open {
		if li.changed {
			c.emitIncident(li)
		}
	}
}

// Incidents returns the last version of the incidents this host keeps as
// coordinator: the last closed ones, then the open ones, oldest first.
func (n *Node) Incidents() []*Incident {
	b := &n.co.book
	out := append([]*Incident(nil), b.closed...)
	for _, li := range b.open {
		if li.snap != nil {
			out = append(out, li.snap)
		}
	}
	slices.SortFunc(out, func(a, b *Incident) int {
		switch {
		case a.ID.Less(b.ID):
			return -1
		case b.ID.Less(a.ID):
			return 1
		}
		return 0
	})
	return out
}
