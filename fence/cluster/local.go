package cluster

import (
	"fmt"
	"log/slog"
	"time"
)

// LocalHealth is the agent's report on its own receive path, sent just
// before each Tick. It is how the node tells its own stall from its peers'
// silence: a heartbeat that waited long between its kernel arrival stamp
// and the agent, or heartbeats the kernel received while the agent read
// none, mean the agent is behind, not that the peers went quiet.
type LocalHealth struct {
	// Delay is the longest any heartbeat read since the last report waited
	// between its kernel arrival stamp and the agent reading it.
	Delay time.Duration
	// Read is how many datagrams the agent read since the last report, on
	// every link (good or not).
	Read int
	// Kernel lists, per peer and link, the heartbeats the kernel received
	// since the last report that the agent has not read (kernel stamping
	// only; nil without it).
	Kernel []KernelSeen
}

// KernelSeen is the kernel's evidence of one peer on one link: Unread
// heartbeats reached this host's NIC that the agent did not read, the last
// at At (the node's clock).
type KernelSeen struct {
	Host, Link int
	At         time.Duration
	Unread     uint64
}

// StoreIO is the kernel's judgement of one datastore's block device
// (block-layer tracing): Down when every request in flight is stuck, or the
// latest failed, long before a read or write times out. It is storage
// evidence: while a datastore is down this host's reads of it say nothing
// about its peers.
type StoreIO struct {
	DS   int
	Down bool
	Why  string
}

func (LocalHealth) event() {}
func (StoreIO) event()     {}

// stall is this host's own stall: the agent running behind its heartbeats.
type stall struct {
	on     bool
	since  time.Duration
	lag    time.Duration // how far behind the agent reads (the last Delay)
	worst  time.Duration // the longest lag or tick gap of this stall
	limit  bool          // stalled past the lease timeout: not petting the watchdog
	count  int           // stalls since the start
	last   time.Duration // how long the last stall lasted
	kernel uint64        // heartbeats the kernel received that the agent did not read, during this stall
	gaps   map[[2]int]bool
}

// stallThreshold is how late a heartbeat may be read before the agent
// counts as stalled: the bound of the tick-gap rule, so both agree.
func (t *Timing) stallThreshold() time.Duration { return max(3*t.Heartbeat, t.LinkTimeout/2) }

// localHealth applies a LocalHealth report. While the agent is stalled:
// heartbeats the kernel received and the agent did not read restart their
// links' silence clocks (the peer is not silent), the network is judged
// as of now-lag (the timeouts widen by the agent's lag), no peer is
// declared failed and the host does not declare itself isolated. Stalled
// for as long as a lease lasts, it stops petting its watchdog rather than
// act on evidence it cannot keep up with.
func (n *Node) localHealth(now time.Duration, e LocalHealth) {
	t := &n.spec.Timing
	var unread uint64
	for _, k := range e.Kernel {
		unread += k.Unread
	}
	kernelOnly := unread > 0 && e.Read == 0
	s := &n.stall
	if e.Delay <= t.stallThreshold() && !kernelOnly {
		if s.on {
			// A stall that froze the agent shows as one late read: it lasted
			// that long, however soon the agent caught up.
			s.on, s.limit, s.lag, s.last = false, false, 0, max(now-s.since, s.worst)
			n.logf(slog.LevelInfo, "agent", "own stall over: it lasted %s", ms(s.last))
			n.scanNow = true
		}
		n.kernelGaps(e.Kernel)
		return
	}
	if !s.on {
		s.on, s.since, s.kernel, s.worst = true, now, 0, 0
		s.count++
		why := fmt.Sprintf("heartbeats waited up to %s between the kernel and the agent", ms(e.Delay))
		if kernelOnly {
			why = fmt.Sprintf("the kernel received %d heartbeats and the agent read none", unread)
		}
		n.logf(slog.LevelWarn, "agent", "own stall: %s; peers are not accused meanwhile", why)
	}
	s.lag, s.kernel, s.worst = e.Delay, s.kernel+unread, max(s.worst, e.Delay)
	for _, k := range e.Kernel {
		if k.Host == n.self || k.Host < 0 || k.Host >= len(n.peers) || k.Link < 0 || k.Link >= n.spec.Links || k.At > now {
			continue
		}
		n.hot[k.Host].net.Link(k.Link).Restart(k.At)
		n.lastPeer = max(n.lastPeer, k.At)
		n.scanNow = true
	}
	if !s.limit && now-s.since >= t.LeaseTimeout {
		s.limit = true
		n.logf(slog.LevelError, "wd", "own stall for %s (the lease timeout): not petting the watchdog (the kernel received %d heartbeats the agent did not read)", ms(now-s.since), s.kernel)
	}
}

// kernelGaps logs, once per peer and link, heartbeats the kernel received
// that the agent never read while it was keeping up: something between the
// NIC and the socket drops them.
func (n *Node) kernelGaps(ks []KernelSeen) {
	for _, k := range ks {
		if k.Unread == 0 || k.Host < 0 || k.Host >= len(n.peers) {
			continue
		}
		key := [2]int{k.Host, k.Link}
		if n.stall.gaps[key] {
			continue
		}
		if n.stall.gaps == nil {
			n.stall.gaps = map[[2]int]bool{}
		}
		n.stall.gaps[key] = true
		n.logf(slog.LevelWarn, "hb", "%s link%d: the kernel received %d heartbeats the agent did not read (a firewall rule, or a full socket buffer)", n.name(k.Host), k.Link, k.Unread)
	}
}

// judgeAt is the time the network is judged at: now, or now less the
// agent's lag while it is stalled.
func (n *Node) judgeAt(now time.Duration) time.Duration {
	if n.stall.on {
		return max(now-n.stall.lag, n.startAt)
	}
	return now
}

// storeIO applies the kernel's judgement of datastore e.DS.
func (n *Node) storeIO(now time.Duration, e StoreIO) {
	if e.DS < 0 || e.DS >= len(n.ds) {
		return
	}
	ds := &n.ds[e.DS]
	if ds.apd == e.Down {
		return
	}
	ds.apd, ds.apdWhy = e.Down, e.Why
	if e.Down {
		n.logf(slog.LevelWarn, "ds", "datastore %d: all paths down (kernel: %s)", e.DS, e.Why)
	} else {
		n.logf(slog.LevelInfo, "ds", "datastore %d: the kernel sees its I/O complete again", e.DS)
	}
	n.scanNow = true
}

// LocalStatus is this host's own health, for operators.
type LocalStatus struct {
	Stalled bool
	// For is how long the current stall has lasted (while Stalled).
	For time.Duration
	// Lag is how late the agent reads its heartbeats in the current stall.
	Lag time.Duration
	// NotPetting: stalled past the lease timeout, the watchdog is no
	// longer petted.
	NotPetting bool
	Stalls     int           // stalls since the start
	Last       time.Duration // how long the last finished stall lasted
}

func (n *Node) localStatus(now time.Duration) LocalStatus {
	s := &n.stall
	ls := LocalStatus{Stalled: s.on, Lag: s.lag, NotPetting: s.limit, Stalls: s.count, Last: s.last}
	if s.on {
		ls.For = now - s.since
	}
	return ls
}
