package cluster

import (
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/hb"
)

// Verdict is what this host concludes about a peer.
type Verdict uint8

// Peer verdicts. The decision table (first matching row wins):
//
//	network (any link)  | storage (counter)   | declared  | verdict
//	--------------------+---------------------+-----------+-------------
//	heard, or a peer we | -                   | -         | alive
//	hear hears it       |                     |           |
//	silent              | advancing           | isolated  | isolated
//	silent              | advanced since the  | -         | partitioned
//	                    | network went silent |           |
//	silent              | not yet advanced    | -         | suspect
//	silent              | unknown (own reads  | -         | partitioned
//	                    | failing)            |           |
//	silent < grace      | silent              | -         | suspect
//	silent >= grace     | silent on every     | -         | failed
//	                    | datastore read      |           |
//
// Only "failed" leads to a fence; "partitioned" and "isolated" hosts keep
// (or release) their VMs themselves.
const (
	Unknown Verdict = iota
	Alive
	Suspect
	Partitioned
	Isolated
	Failed
)

func (v Verdict) String() string {
	return [...]string{"unknown", "alive", "suspect", "partitioned", "isolated", "failed"}[v]
}

// SelfVerdict is what this host concludes about itself.
type SelfVerdict uint8

// Self verdicts, by precedence: a lapsed lease beats isolation.
//
//	lease   | peers heard          | isolation address | verdict
//	--------+----------------------+-------------------+---------------
//	lapsed  | -                    | -                 | datastore-lost
//	-       | none for >= grace    | none answers      | isolated
//	-       | otherwise            |                   | healthy
const (
	SelfStarting SelfVerdict = iota
	Healthy
	SelfIsolated
	DatastoreLost
)

func (v SelfVerdict) String() string {
	return [...]string{"starting", "healthy", "isolated", "datastore-lost"}[v]
}

// updateVerdicts applies the decision table to the peers. A peer's verdict
// only changes once its network state is down, and a link heard at t is not
// down before t + floor (its timeout never drops below the floor). So a
// full scan happens when new evidence arrived (a digest, a carrier change,
// an agent stall) or when the stalest link that keeps a peer up may reach
// that bound; in between, only the peers that were down at the last full
// scan (the watched ones, usually none or a failed host or two) are looked at.
func (n *Node) updateVerdicts(now time.Duration) {
	full := n.scanNow || now >= n.nextScan || !n.joined
	n.scanNow = false
	hears := n.hears
	next := time.Duration(math.MaxInt64)
	all := hb.HostSet(1)<<uint(len(n.peers)) - 1
	if len(n.peers) == hb.MaxHosts {
		all = ^hb.HostSet(0)
	}
	all = all.Without(n.self)
	scan := n.watch
	if full {
		scan, n.watch = all, 0
	}
	at := n.judgeAt(now) // the network as of the agent's lag, while it is stalled
	for s := scan; s != 0; s &= s - 1 {
		h := s.Min()
		p := &n.peers[h]
		st := p.h.net.State(at, &n.det)
		if st != hb.Down {
			if full {
				var until time.Duration
				for l := range p.h.net.Links() {
					if lk := p.h.net.Link(l); lk.State(at, &n.det) != hb.Down {
						last, _ := lk.LastHeard()
						until = max(until, last+n.det.Floor)
					}
				}
				next = min(next, until+now-at)
			}
			hears = hears.With(h)
			p.silentAt = -1
			continue
		}
		n.watch = n.watch.With(h)
		hears = hears.Without(h)
		if p.silentAt < 0 {
			p.silentAt = now
			if last, ok := p.h.net.LastHeard(); ok {
				n.logf(slog.LevelInfo, "hb", "%s silent on all links (last heard %s ago)", n.name(h), ms(now-last))
			}
		}
	}
	if full {
		n.nextScan = next
	}
	if hears != n.hears || full || n.digestNew {
		n.digestNew = false
		if hears != n.hears {
			n.hears = hears
			n.version++
		}
		n.acks = 0
		for s := hears; s != 0; s &= s - 1 {
			if h := s.Min(); n.peers[h].hears.Has(n.self) {
				n.acks = n.acks.With(h)
			}
		}
	}
	n.suspects = 0
	judge := n.watch | n.unsettled
	if full {
		judge = all
	}
	for s := judge; s != 0; s &= s - 1 {
		h := s.Min()
		p := &n.peers[h]
		v := n.verdict(h, now)
		if v == Suspect {
			n.suspects++
		}
		if v != p.verdict {
			var rows []string
			if p.verdict != Unknown || v != Alive {
				rows = n.Explain(h, now)
				n.logf(levelOf(v), "verdict", "%s: %s -> %s (%s)", n.name(h), p.verdict, v, strings.Join(rows, "; "))
			}
			if p.verdict == Alive || p.verdict == Unknown {
				p.lostAt, p.lostRows = now, rows
			}
			if v == Failed || v == Isolated {
				p.decidedAt, p.decidedRows = now, rows
			}
			p.verdict = v
			n.co.dirty = true
		}
		if v == Alive {
			n.unsettled = n.unsettled.Without(h)
		} else {
			n.unsettled = n.unsettled.With(h)
		}
	}
}

func levelOf(v Verdict) slog.Level {
	if v == Failed {
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

// verdict applies the decision table to peer h.
func (n *Node) verdict(h int, now time.Duration) Verdict {
	p := &n.peers[h]
	if n.hears.Has(h) || n.heardVia(h) >= 0 {
		return Alive
	}
	st, alive, silent := n.storage(p, now)
	if st == storeUnknown && alive == 0 && silent > 0 {
		// Silent on every datastore this host can read: enough to fence
		// through a BMC; proof (c) still needs k_o of them.
		st = storeSilent
	}
	switch st {
	case storeAlive:
		if r := n.best[h]; (r != nil && r.Isolated) || p.isolated {
			return Isolated
		}
		if n.advancedSince(p, p.silentAt) {
			return Partitioned
		}
		return Suspect
	case storeUnknown:
		if _, heard := p.h.net.LastHeard(); !heard {
			return Unknown
		}
		return Partitioned
	}
	if p.h.net.SilentFor(n.judgeAt(now)) < n.spec.Timing.Grace || now-n.startAt < n.spec.Timing.Grace {
		return Suspect
	}
	if n.stall.on {
		return Suspect // this host's own stall: it accuses nobody meanwhile
	}
	return Failed
}

// advancedSince reports whether the peer's slot counter moved after t on any
// datastore: positive evidence that a network-silent peer is alive.
func (n *Node) advancedSince(p *peer, t time.Duration) bool {
	for d := range p.store {
		if o := &p.store[d]; o.valid && o.seen > t && o.counter != 0 {
			return true
		}
	}
	return false
}

// heardVia returns a peer this host hears that reports hearing h, or -1.
func (n *Node) heardVia(h int) int {
	for q := range n.peers {
		if q != h && q != n.self && n.hears.Has(q) && n.peers[q].hears.Has(h) {
			return q
		}
	}
	return -1
}

// Explain lists the evidence rows behind the verdict on peer h.
func (n *Node) Explain(h int, now time.Duration) []string {
	if h == n.self {
		return n.explainSelf(now)
	}
	p := &n.peers[h]
	var rows []string
	var links []string
	for l := range p.h.net.Links() {
		lk := p.h.net.Link(l)
		st := lk.State(now, &n.det)
		if last, ok := lk.LastHeard(); ok {
			links = append(links, fmt.Sprintf("link%d %s (last heard %s ago, timeout %s)", l, st, ms(now-last), ms(lk.Timeout(&n.det))))
		} else {
			links = append(links, fmt.Sprintf("link%d never heard", l))
		}
	}
	rows = append(rows, "network: "+strings.Join(links, ", "))
	if q := n.heardVia(h); q >= 0 && !n.hears.Has(h) {
		rows = append(rows, "network: "+n.name(q)+" hears it")
	}
	var ds []string
	for d := range n.ds {
		o := &p.store[d]
		switch n.storeOf(p, d, now) {
		case storeUnknown:
			if n.ds[d].apd {
				ds = append(ds, fmt.Sprintf("ds%d unknown (this host's path is down: %s)", d, n.ds[d].apdWhy))
			} else {
				ds = append(ds, fmt.Sprintf("ds%d unknown", d))
			}
		case storeAlive:
			ds = append(ds, fmt.Sprintf("ds%d advancing (counter %d)", d, o.counter))
		case storeSilent:
			ds = append(ds, fmt.Sprintf("ds%d silent %s (counter %d)", d, ms(o.same-o.seen), o.counter))
		}
	}
	rows = append(rows, "storage: "+strings.Join(ds, ", "))
	if r := n.best[h]; (r != nil && r.Isolated) || p.isolated {
		rows = append(rows, "declared isolated")
	}
	if n.stall.on {
		rows = append(rows, fmt.Sprintf("this host's agent is stalled (%s behind for %s): no peer is declared failed meanwhile", ms(n.stall.lag), ms(now-n.stall.since)))
	}
	return rows
}

func (n *Node) explainSelf(now time.Duration) []string {
	fresh := 0
	for d := range n.ds {
		if n.ds[d].hasCounted && now-n.ds[d].counted < n.spec.Timing.LeaseTimeout {
			fresh++
		}
	}
	rows := []string{
		fmt.Sprintf("lease: %s, fresh on %d of %d datastores (need %d)", [...]string{"not yet", "fresh", "held by network quorum", "lapsed"}[n.lease], fresh, len(n.ds), n.kOwn),
		fmt.Sprintf("peers heard: %d of %d, %d acknowledge this host", n.hears.Len(), len(n.peers)-1, n.acks.Len()),
	}
	switch {
	case n.hears != 0:
	case n.gatewayAnswered(now):
		rows = append(rows, "an isolation address answers")
	default:
		rows = append(rows, fmt.Sprintf("no peer heard for %s and no isolation address answers", ms(now-n.lastPeer)))
	}
	if n.stall.on {
		rows = append(rows, fmt.Sprintf("own stall for %s, %s behind", ms(now-n.stall.since), ms(n.stall.lag)))
	}
	for d := range n.ds {
		if n.ds[d].apd {
			rows = append(rows, fmt.Sprintf("ds%d down: %s", d, n.ds[d].apdWhy))
		}
	}
	return rows
}

func (n *Node) updateSelf(now time.Duration) {
	v := Healthy
	switch {
	case n.lease == leaseHeld && !n.hadLease && now-n.startAt < n.spec.Timing.LeaseTimeout:
		v = SelfStarting // restarted: the first renewal is on its way
	case n.lease == leaseLapsed || n.lease == leaseHeld:
		v = DatastoreLost
	case n.hears != 0:
	case now-n.lastPeer >= n.spec.Timing.LinkTimeout:
		n.probeGateways()
		if now-n.lastPeer >= n.spec.Timing.Grace && !n.gatewayAnswered(now) && len(n.peers) > 1 {
			v = SelfIsolated
		}
	}
	if !n.joined {
		v = SelfStarting
	}
	if v == SelfIsolated && n.self0 != SelfIsolated && n.stall.on {
		v = n.self0 // its own stall, not the network's silence
	}
	if v == n.self0 {
		return
	}
	n.logf(map[bool]slog.Level{true: slog.LevelWarn, false: slog.LevelInfo}[v != Healthy], "verdict", "self: %s -> %s (%s)", n.self0, v, strings.Join(n.explainSelf(now), "; "))
	n.self0, n.selfSince = v, now
	iso := v == SelfIsolated
	if iso != n.isolated {
		n.isolated = iso
		n.bump()
		if iso {
			n.isolationResponse(now)
		}
	}
}

// updateCoordinator elects the coordinator of this host's partition: the
// lowest host of a quorate partition. A partition of exactly half the hosts
// is quorate only if it holds the lowest host that is not known dead (heard,
// or storage-alive or unknown, and not declared isolated): the datastore
// breaks the tie.
func (n *Node) updateCoordinator(now time.Duration) {
	part := n.hears.With(n.self)
	total := len(n.peers)
	quorate := 2*part.Len() > total
	if !quorate && 2*part.Len() == total {
		low := part.Min()
		for h := 0; h < low; h++ {
			p := &n.peers[h]
			if st, _, _ := n.storage(p, now); st != storeSilent && !n.declaredIsolated(h) {
				low = h
				break
			}
		}
		quorate = part.Has(low)
	}
	coord := -1
	if quorate && n.self0 == Healthy {
		coord = part.Min()
	}
	n.quorate = quorate
	if coord != n.coord {
		switch {
		case coord == n.self:
			n.logf(slog.LevelInfo, "coord", "this host is now the coordinator (%d of %d hosts in partition)", part.Len(), total)
		case coord < 0 && n.coord == n.self:
			n.logf(slog.LevelWarn, "coord", "no longer coordinator (partition of %d of %d hosts, quorate=%v)", part.Len(), total, quorate)
		}
		if n.coord == n.self {
			n.co.stepDown(now)
		}
		if coord == n.self {
			n.co.since = now
			for d := range n.ds {
				n.read(now, d)
			}
		}
		n.coord = coord
		n.version++
	}
}

func (n *Node) declaredIsolated(h int) bool {
	r := n.best[h]
	return (r != nil && r.Isolated) || n.peers[h].isolated
}

// Verdicts returns the current verdict on every host (self is Unknown).
func (n *Node) Verdicts() []Verdict {
	v := make([]Verdict, len(n.peers))
	for h := range n.peers {
		v[h] = n.peers[h].verdict
	}
	return v
}

// Lapsed reports whether this host lost its entitlement: its lease lapsed
// without a network majority, so it no longer pets its watchdog (the
// self-fence) until a renewal lands.
func (n *Node) Lapsed() bool { return n.lease == leaseLapsed }

// Verdict returns the current verdict on host h (Unknown for this host).
func (n *Node) Verdict(h int) Verdict { return n.peers[h].verdict }

// Self is this host's verdict on itself; Coordinator the host it takes for
// coordinator (-1 none).
func (n *Node) Self() SelfVerdict { return n.self0 }
func (n *Node) Coordinator() int  { return n.coord }
