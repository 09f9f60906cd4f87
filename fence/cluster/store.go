package cluster

import (
	"log/slog"

	"github.com/vigil-ha/vigil/hb"
	"time"
)

// dstore is this host's view of one datastore.
type dstore struct {
	writing    bool
	wStart     time.Duration
	wCounter   uint64
	dirty      bool          // a newer record waits for the write in flight
	counted    time.Duration // start of the last renewal that completed within io
	hasCounted bool
	okCounter  uint64 // newest counter known written (completed without error)
	reading    bool
	rStart     time.Duration
	rAfter     uint64 // okCounter when the read in flight was issued
	readAgain  bool
	lastRead   time.Duration // issue time of the last read
	lastReadOK time.Duration // start time of the last successful read
	readOK     bool
	failing    bool
	apd        bool   // the kernel sees every request stuck or failing (StoreIO)
	apdWhy     string // the kernel's reason
}

// down reports whether this host cannot use the datastore now: its last
// I/O failed, or the kernel reports it down.
func (ds *dstore) down() bool { return ds.failing || ds.apd }

// storeObs is what this host saw of one peer's slot on one datastore.
type storeObs struct {
	inc, counter uint64
	seen         time.Duration // when this counter was first seen (this host's clock)
	same         time.Duration // start of the latest read that still saw it
	valid        bool
}

type storeState uint8

const (
	storeUnknown storeState = iota
	storeAlive
	storeSilent
)

func (n *Node) storageTick(now time.Duration) {
	t := &n.spec.Timing
	every := t.DatastoreInterval
	if n.suspects > 0 || n.co.awaitingLease() {
		every = t.Heartbeat // a peer went silent: watch its slot closely
	}
	for d := range n.ds {
		ds := &n.ds[d]
		if !ds.reading && (ds.lastRead == 0 && !ds.readOK || now-ds.lastRead >= every) {
			n.read(now, d)
		}
	}
	if !n.joined {
		n.tryJoin(now)
		return
	}
	if now-n.lastBatch >= t.DatastoreInterval {
		n.writeAll(now)
	}
	n.evalLease(now)
}

func (n *Node) read(now time.Duration, d int) {
	ds := &n.ds[d]
	if ds.reading {
		ds.readAgain = true
		return
	}
	ds.reading, ds.rStart, ds.rAfter, ds.lastRead = true, now, ds.okCounter, now
	n.emit(ReadSlots{DS: d})
}

// writeAll writes a fresh record (a renewal) to every datastore.
func (n *Node) writeAll(now time.Duration) {
	n.recDirty = false
	n.lastBatch = now
	n.counter++
	n.lastRec = n.record()
	for d := range n.ds {
		ds := &n.ds[d]
		if ds.writing {
			ds.dirty = true
			continue
		}
		n.write(now, d)
	}
}

func (n *Node) write(now time.Duration, d int) {
	ds := &n.ds[d]
	ds.writing, ds.wStart, ds.wCounter, ds.dirty = true, now, n.lastRec.Counter, false
	n.emit(WriteSlot{DS: d, Record: n.lastRec})
}

func (n *Node) slotWritten(now time.Duration, e SlotWritten) {
	if e.DS < 0 || e.DS >= len(n.ds) || !n.ds[e.DS].writing {
		return
	}
	ds := &n.ds[e.DS]
	ds.writing = false
	if e.Err != nil {
		n.dsFailing(e.DS, true, "write", e.Err)
	} else {
		n.dsFailing(e.DS, false, "", nil)
		if now-ds.wStart <= n.spec.Timing.IOTimeout && (!ds.hasCounted || ds.wStart > ds.counted) {
			ds.counted, ds.hasCounted = ds.wStart, true
		}
		ds.okCounter = ds.wCounter
		if n.claimsChecking() {
			n.read(now, e.DS)
		}
	}
	if ds.dirty && n.lastRec != nil && n.lastRec.Counter > ds.wCounter {
		n.write(now, e.DS)
	}
	n.evalLease(now)
}

func (n *Node) dsFailing(d int, failing bool, op string, err error) {
	ds := &n.ds[d]
	if ds.failing == failing {
		return
	}
	ds.failing = failing
	if failing {
		n.logf(slog.LevelWarn, "ds", "datastore %d: %s failed: %v", d, op, err)
	} else {
		n.logf(slog.LevelInfo, "ds", "datastore %d: I/O succeeds again", d)
	}
}

func (n *Node) slotsRead(now time.Duration, e SlotsRead) {
	if e.DS < 0 || e.DS >= len(n.ds) || !n.ds[e.DS].reading {
		return
	}
	ds := &n.ds[e.DS]
	ds.reading = false
	if e.Err != nil {
		n.dsFailing(e.DS, true, "read", e.Err)
	} else {
		n.dsFailing(e.DS, false, "", nil)
		ds.readOK, ds.lastReadOK = true, ds.rStart
		n.observe(now, e.DS, e.Records)
		if n.joined {
			n.checkClaims(now, e.DS, e.Records)
		}
	}
	if ds.readAgain {
		ds.readAgain = false
		n.read(now, e.DS)
	}
}

// observe records every slot of one datastore read.
func (n *Node) observe(now time.Duration, d int, recs []*Record) {
	rStart := n.ds[d].rStart
	for h := range n.peers {
		var r *Record
		if h < len(recs) {
			r = recs[h]
		}
		if r != nil && r.Host != h {
			r = nil // a record in the wrong slot is not trusted
		}
		if old := n.best[h]; r != nil && r.newer(old) {
			n.best[h] = r
			n.learn(now, h, r, old)
		}
		if h == n.self {
			continue
		}
		var inc, ctr uint64
		if r != nil {
			inc, ctr = r.Incarnation, r.Counter
		}
		o := &n.peers[h].store[d]
		if !o.valid || o.inc != inc || o.counter != ctr {
			*o = storeObs{inc: inc, counter: ctr, seen: now, same: rStart, valid: true}
		} else {
			o.same = rStart
		}
	}
}

// learn takes what a newer record of host h says about VMs and assignments.
// Claims and assignments unchanged since the host's previous record (the
// writer shares the slices while they do not change) are skipped.
func (n *Node) learn(now time.Duration, h int, r *Record, old *Record) {
	if old != nil && sameSlice(r.Claims, old.Claims) && sameSlice(r.Assignments, old.Assignments) && old.Incarnation == r.Incarnation {
		return
	}
	n.co.dirty = true
	for _, c := range r.Claims {
		if c.VM < len(n.epochMax) && c.Epoch > n.epochMax[c.VM] {
			n.epochMax[c.VM] = c.Epoch
		}
	}
	for _, a := range r.Assignments {
		if !n.noteAssignment(a) {
			continue
		}
		if a.Host == n.self && n.joined {
			n.assigned(now, h, a)
		}
	}
}

// noteAssignment records an assignment seen in a record or a heartbeat, so
// that a coordinator never assigns an epoch another one already gave out.
func (n *Node) noteAssignment(a hb.Assignment) bool {
	if a.VM < 0 || a.VM >= len(n.epochMax) {
		return false
	}
	if a.Epoch > n.epochMax[a.VM] {
		n.epochMax[a.VM] = a.Epoch
	}
	if a.Epoch > n.lastAssign[a.VM].Epoch {
		n.lastAssign[a.VM] = a
	}
	return true
}

// tryJoin adopts this host's previous record once the datastores answered.
func (n *Node) tryJoin(now time.Duration) {
	t := &n.spec.Timing
	var ok uint8
	done := 0
	for d := range n.ds {
		if n.ds[d].readOK {
			ok |= 1 << uint(d)
		}
		if n.ds[d].readOK || n.ds[d].down() {
			done++
		}
	}
	// Every datastore answered; or enough of them that any claim this host
	// confirmed before is among what it read; or, past the I/O timeout, any.
	switch {
	case ok == 0:
	case done == len(n.ds), ClaimQuorum(ok, len(n.ds)), now-n.startAt >= t.IOTimeout+t.DatastoreInterval:
		n.join(now)
	}
}

func (n *Node) join(now time.Duration) {
	n.joined = true
	running := map[int]bool{}
	for _, v := range n.running0 {
		running[v] = true
	}
	if own := n.best[n.self]; own != nil {
		n.counter = own.Counter
		for _, c := range own.Claims {
			lc := &localClaim{Claim: c, from: -1}
			if c.State != Released {
				if running[c.VM] {
					lc.State = Running
					n.logf(slog.LevelInfo, "vm", "kept %s (epoch %d) across the agent restart", n.vmName(c.VM), c.Epoch)
				} else {
					lc.State, lc.Reason = Released, Rejoined
				}
			}
			delete(running, c.VM)
			n.claims[c.VM] = lc
		}
	}
	for v := range n.spec.VMs {
		if running[v] {
			n.logf(slog.LevelWarn, "vm", "%s runs here without an ownership claim: killing it", n.vmName(v))
			// Listed as live until the kill is done, so that no coordinator
			// takes this host's silence about it for a release.
			n.claims[v] = &localClaim{Claim: Claim{VM: v, State: Running}, from: -1, stopping: true, pend: Rejoined}
			n.vmOp(v, VMKill)
		}
	}
	n.logf(slog.LevelInfo, "ds", "joined: read %d of %d datastores", n.readableCount(), len(n.ds))
	for h, r := range n.best {
		if r != nil && h != n.self {
			n.learn(now, h, r, nil)
		}
	}
	n.bump()
}

func (n *Node) readableCount() int {
	c := 0
	for d := range n.ds {
		if n.ds[d].readOK && !n.ds[d].down() {
			c++
		}
	}
	return c
}

// evalLease applies the lease rule. The host is entitled (pets its watchdog)
// while enough datastores carry a renewal younger than L (fresh), or, without
// them, while a network majority acknowledges it (held). Once it is neither
// (lapsed) only a new counted renewal entitles it again, never the network:
// a renewal is a write observers read, and proof (c) waits for a read that
// starts after the watchdog deadline, so a host that resumes after it is
// one that never stopped in an observer's eyes, or one already reset.
func (n *Node) evalLease(now time.Duration) {
	L := n.spec.Timing.LeaseTimeout
	fresh := 0
	for d := range n.ds {
		if n.joined && n.ds[d].hasCounted && now-n.ds[d].counted < L {
			fresh++
		}
	}
	if n.netQuorate() {
		n.quorumUntil = now + n.spec.Timing.QuorumHysteresis()
	}
	quorum := now < n.quorumUntil // a majority now, or within the hysteresis
	switch {
	case fresh < n.kOwn && n.lease == leaseNone && quorum && n.continuing:
		// The agent restarted under running VMs or an armed watchdog: the
		// network majority keeps it entitled until it renews its lease.
		n.lease = leaseHeld
		n.logf(slog.LevelWarn, "ds", "restarted without a lease yet: kept alive by a network quorum (%d of %d hosts acknowledge this one)", n.acks.Len()+1, len(n.peers))
	case fresh >= n.kOwn && n.lease == leaseNone:
		n.lease, n.hadLease = leaseFresh, true
		n.logf(slog.LevelInfo, "ds", "lease acquired on %d of %d datastores", fresh, len(n.ds))
	case fresh >= n.kOwn && n.lease != leaseFresh && !n.hadLease:
		n.lease, n.hadLease = leaseFresh, true
		n.logf(slog.LevelInfo, "ds", "lease acquired on %d of %d datastores", fresh, len(n.ds))
	case fresh >= n.kOwn && n.lease != leaseFresh:
		n.lease = leaseFresh
		n.logf(slog.LevelInfo, "ds", "lease renewed on %d of %d datastores", fresh, len(n.ds))
		n.bump()
	case fresh < n.kOwn && n.lease == leaseFresh && quorum:
		n.lease = leaseHeld
		n.logf(slog.LevelWarn, "ds", "datastore lease lost (fresh on %d of %d, need %d): kept alive by a network quorum (%d of %d hosts acknowledge this one)", fresh, len(n.ds), n.kOwn, n.acks.Len()+1, len(n.peers))
		n.bump()
	case fresh < n.kOwn && (n.lease == leaseFresh || n.lease == leaseHeld) && !quorum:
		n.lease = leaseLapsed
		n.logf(slog.LevelError, "ds", "lease lapsed (fresh on %d of %d datastores, need %d; %d of %d hosts acknowledge this one): self-fencing, the watchdog resets this host unless a renewal lands first", fresh, len(n.ds), n.kOwn, n.acks.Len()+1, len(n.peers))
		n.bump()
	}
}

// netQuorate reports whether a strict majority of hosts, this one included,
// hear this host and say so in their heartbeats. It keeps a host whose
// datastores are gone entitled to its VMs: any coordinator's partition is at
// least half the cluster, so it shares a host with this majority, and that
// host stops acknowledging us before the coordinator may call us failed.
func (n *Node) netQuorate() bool { return 2*(n.acks.Len()+1) > len(n.peers) }

// storeOf classifies a peer's slot on one datastore.
func (n *Node) storeOf(p *peer, d int, now time.Duration) storeState {
	t := &n.spec.Timing
	ds := &n.ds[d]
	if !ds.readOK || ds.apd || now-ds.lastReadOK > t.StorageTimeout()+t.DatastoreInterval {
		return storeUnknown
	}
	o := &p.store[d]
	if !o.valid {
		return storeUnknown
	}
	if o.same-o.seen >= t.StorageTimeout() {
		return storeSilent
	}
	return storeAlive
}

// storage aggregates a peer's slots: alive on any datastore is alive; silent
// needs k_o datastores; anything else is unknown.
func (n *Node) storage(p *peer, now time.Duration) (st storeState, alive, silent int) {
	for d := range n.ds {
		switch n.storeOf(p, d, now) {
		case storeAlive:
			alive++
		case storeSilent:
			silent++
		}
	}
	switch {
	case alive > 0:
		return storeAlive, alive, silent
	case silent >= n.kObs:
		return storeSilent, alive, silent
	}
	return storeUnknown, alive, silent
}

// leaseProof reports whether proof (c) holds for peer h. Its watchdog
// deadline is D = max(t_seen+L, t_lost+QuorumLoss)+W, t_seen being when
// this host first saw h's counter and t_lost when it stopped hearing h
// (directly or through a peer): h pets no later than the first term, and its
// watchdog fires by D. On k_o datastores a read that started at or after D
// (and after t_seen+L+io+r) must still show the same counter, so any renewal
// that would entitle h again landed after D, when h was already reset; and
// this host's clock must read D+margin.
func (n *Node) leaseProof(h int, now time.Duration) (ok bool, ctr uint64, inc uint64) {
	t := &n.spec.Timing
	p := &n.peers[h]
	good := 0
	for d := range n.ds {
		o := &p.store[d]
		if !o.valid {
			continue
		}
		deadline := max(o.seen+t.LeaseTimeout, p.lostAt+t.QuorumLoss()) + t.WatchdogTimeout
		if o.same >= max(deadline, o.seen+t.LeaseTimeout+t.IOTimeout+t.DatastoreInterval) && now >= deadline+t.Margin {
			good++
			ctr, inc = o.counter, o.inc
		}
	}
	return good >= n.kObs, ctr, inc
}

// sameSlice reports whether a and b are the same backing slice.
func sameSlice[T any](a, b []T) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
