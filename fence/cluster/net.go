package cluster

import (
	"log/slog"
	"time"

	"github.com/vigil-ha/vigil/hb"
)

// peerHot is what every heartbeat touches, kept apart in one dense table so
// that a host's whole view of the network stays in cache.
type peerHot struct {
	inc     uint64 // incarnation last heard on the network
	version uint64 // digest version last taken
	heard   bool
	net     hb.Peer
}

// peer is everything else this host knows about one other host.
type peer struct {
	h        *peerHot
	hears    hb.HostSet
	isolated bool
	maint    bool
	store    []storeObs // per datastore
	verdict  Verdict
	silentAt time.Duration // when the peer went network-silent (-1 while heard)
	lostAt   time.Duration // when this host last stopped taking the peer for alive
	// The evidence rows when the peer was last suspected (left alive) and
	// when it was last declared failed or isolated, for incidents.
	lostRows    []string
	decidedAt   time.Duration
	decidedRows []string
}

func (p *peer) init(h *peerHot, links []hb.Link, datastores int, det *hb.DetectorConfig) {
	p.h = h
	h.net.InitIn(links, det)
	p.store = make([]storeObs, datastores)
	p.silentAt = -1
}

func (n *Node) sendHeartbeats(now time.Duration) {
	n.seq++
	var assign []hb.Assignment
	if n.coord == n.self {
		assign = n.co.assign
	}
	for l := 0; l < n.spec.Links; l++ {
		n.emit(Send{Msg: &hb.Message{
			From:        n.self,
			Incarnation: n.inc,
			Seq:         n.seq,
			Link:        l,
			SentAt:      now,
			Hears:       n.hears,
			Coordinator: n.coord,
			Isolated:    n.isolated,
			Maintenance: n.maint,
			Version:     n.version,
			Assignments: assign,
		}})
	}
}

// Heard is the fast path of a received heartbeat, for the shell to try
// before a full Step: a heartbeat whose sender view this host has already
// taken (same incarnation and digest version) only feeds the failure
// detector, and Heard takes it and reports true. For any other it changes
// nothing and reports false; the shell then steps the node with Received.
// It never has actions. now may be when the heartbeat arrived (a kernel
// stamp) rather than when the shell got to it, so a little in the past.
func (n *Node) Heard(now time.Duration, m *hb.Message) bool {
	if !n.started || !n.fromPeer(m) {
		return false
	}
	ph := &n.hot[m.From]
	if !ph.heard || m.Incarnation != ph.inc || m.Version != ph.version {
		return false
	}
	ph.net.Link(m.Link).Heard(now)
	n.lastPeer = max(n.lastPeer, now)
	return true
}

// fromPeer reports whether m names a peer and a link this cluster has.
func (n *Node) fromPeer(m *hb.Message) bool {
	return m.From != n.self && m.From >= 0 && m.From < len(n.peers) && m.Link >= 0 && m.Link < n.spec.Links
}

func (n *Node) received(now time.Duration, m *hb.Message) {
	if n.Heard(now, m) {
		return // nothing new but the heartbeat itself
	}
	if !n.fromPeer(m) {
		return
	}
	ph := &n.hot[m.From]
	if m.Incarnation < ph.inc {
		return // a packet from an earlier life of the peer
	}
	if ph.heard && m.Incarnation > ph.inc {
		ph.net.Reset(&n.det) // the gap between its lives is no jitter
	}
	ph.net.Link(m.Link).Heard(now)
	n.lastPeer = max(n.lastPeer, now)
	if m.Incarnation != ph.inc || !ph.heard {
		if ph.heard {
			n.logf(slog.LevelInfo, "hb", "%s restarted (incarnation %d)", n.name(m.From), m.Incarnation)
		}
		ph.inc, ph.heard = m.Incarnation, true
		n.scanNow = true
	}
	ph.version = m.Version
	n.digestNew = true // what it hears may change the acks
	p := &n.peers[m.From]
	p.hears, p.isolated, p.maint = m.Hears, m.Isolated, m.Maintenance
	for i := range m.Assignments {
		a := &m.Assignments[i]
		n.noteAssignment(*a)
		if a.Host == n.self {
			n.assigned(now, m.From, *a)
		}
	}
}

func (n *Node) linkChanged(now time.Duration, e LinkChanged) {
	if e.Link < 0 || e.Link >= len(n.carrier) || n.carrier[e.Link] == e.Up {
		return
	}
	n.carrier[e.Link] = e.Up
	if e.Up {
		n.logf(slog.LevelInfo, "hb", "link %d carrier up", e.Link)
		return
	}
	n.logf(slog.LevelWarn, "hb", "link %d carrier down", e.Link)
	for i := range n.peers {
		n.hot[i].net.Link(e.Link).CarrierDown(now)
	}
	n.scanNow = true
}

// probeGateways asks every link's isolation address while no peer is heard.
func (n *Node) probeGateways() {
	for l := range n.gwPending {
		if !n.gwPending[l] {
			n.gwPending[l] = true
			n.emit(ProbeGateway{Link: l})
		}
	}
}

// gatewayAnswered reports whether any isolation address answered recently.
func (n *Node) gatewayAnswered(now time.Duration) bool {
	for _, t := range n.gwOK {
		if t >= 0 && now-t <= n.spec.Timing.Grace {
			return true
		}
	}
	return false
}
