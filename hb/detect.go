package hb

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// LinkState is the verdict on one peer over one link, or over all of its
// links (Peer.State). The order is meaningful: Down < Suspect < Up.
type LinkState uint8

const (
	// Down: never heard, carrier lost, or silent for longer than the timeout.
	Down LinkState = iota
	// Suspect: silent for more than half the timeout.
	Suspect
	// Up: heard within half the timeout.
	Up
)

func (s LinkState) String() string {
	switch s {
	case Down:
		return "down"
	case Suspect:
		return "suspect"
	case Up:
		return "up"
	}
	return "LinkState(" + strconv.Itoa(int(s)) + ")"
}

// DetectorConfig holds the timing of the failure detector. One value is
// shared by every link and peer; the detector only reads it.
type DetectorConfig struct {
	// Interval is the expected interval between two heartbeats of a peer
	// on a link. It is the starting point of every link's jitter estimate.
	Interval time.Duration
	// Floor is the configured link timeout: the adaptive timeout never drops
	// below it, however regular the heartbeats are.
	Floor time.Duration
	// Ceiling bounds the adaptive timeout from above, however jittery the
	// link is; 0 means 4 x Floor. A Ceiling below Floor counts as Floor.
	Ceiling time.Duration
}

// DefaultDetectorConfig returns the timing a cluster gets unless it says
// otherwise.
func DefaultDetectorConfig() DetectorConfig {
	return DetectorConfig{
		// Ten heartbeats a second on every link.
		Interval: 100 * time.Millisecond,
		// Suspect after 5 missed heartbeats, down after 10.
		Floor: time.Second,
		// 4 x Floor: a jittery link is declared down within 4 s, the
		// default lease timeout.
		Ceiling: 0,
	}
}

// Validate reports a timing the detector cannot work with.
func (c *DetectorConfig) Validate() error {
	switch {
	case c.Interval <= 0:
		return fmt.Errorf("hb: heartbeat interval %v must be positive", c.Interval)
	case c.Floor < 2*c.Interval:
		// With a shorter timeout a link turns suspect between two heartbeats
		// that are both on time.
		return fmt.Errorf("hb: link timeout %v must be at least twice the heartbeat interval %v", c.Floor, c.Interval)
	case c.Ceiling != 0 && c.Ceiling < c.Floor:
		return fmt.Errorf("hb: link timeout ceiling %v is below the floor %v", c.Ceiling, c.Floor)
	case c.Ceiling == 0 && c.Floor > math.MaxInt64/4:
		return fmt.Errorf("hb: link timeout %v is too large", c.Floor)
	}
	return nil
}

// ceiling is the effective upper bound of the adaptive timeout.
func (c *DetectorConfig) ceiling() time.Duration {
	hi := c.Ceiling
	if hi == 0 {
		hi = math.MaxInt64
		if c.Floor <= math.MaxInt64/4 {
			hi = 4 * c.Floor
		}
	}
	return max(hi, c.Floor)
}

// AdaptiveTimeout is the link timeout for a smoothed inter-arrival mean and
// mean deviation:
//
//	T = clamp(2 x (mean + 4 x dev), Floor, Ceiling)
//
// mean + 4 x dev is the TCP retransmission timeout (RFC 6298): the longest
// silence to be expected between two heartbeats on this link. A link stays up
// for that long and suspect for as long again, the time for one more late
// heartbeat. Floor wins over Ceiling when they cross. Negative inputs count
// as zero, and the result never overflows.
func AdaptiveTimeout(mean, dev time.Duration, cfg *DetectorConfig) time.Duration {
	lo, hi := cfg.Floor, cfg.ceiling()
	mean, dev = max(mean, 0), max(dev, 0)
	var t time.Duration
	if mean > hi/2 || dev > hi/8 {
		t = hi
	} else {
		// 2*mean <= hi, so hi-t does not overflow.
		t = 2 * mean
		if 8*dev > hi-t {
			t = hi
		} else {
			t += 8 * dev
		}
	}
	return max(t, lo)
}

// Link flags.
const (
	linkHeard  = 1 << iota // heard at least once: last is meaningful
	linkNoGap              // the next heartbeat restarts the silence clock only
	linkNoWire             // local carrier lost at downAt, not heard since
)

// Link tracks one peer on one link: the failure detector. It judges the peer
// from the arrival times of its heartbeats, read on the local host's
// monotonic clock and passed in; it never reads a clock and never allocates.
// It is small and meant to be held by value; Init sets the starting point of
// its jitter estimate.
//
// A link's state follows from the silence since the peer was last heard on
// it and the link's adaptive timeout T (see AdaptiveTimeout):
//
//	state    while
//	up       heard, carrier present, silence <= T/2
//	suspect  heard, carrier present, T/2 < silence <= T
//	down     never heard; or carrier lost and not heard since; or silence > T
//
// Events move a link as follows:
//
//	event           effect
//	Heard(t)        t after the last heard time: restarts the silence clock
//	                and feeds the gap to the jitter estimate; t at or before
//	                it (late, reordered, duplicate): ignored
//	CarrierDown(t)  down at once, until heard at or after t
//	Restart(t)      the local agent stalled: the silence clock restarts at t,
//	                the jitter estimate is kept
//
// A gap that spans a lost carrier or a local stall says nothing about the
// network's jitter, so the first heartbeat after either only restarts the
// silence clock.
type Link struct {
	last   time.Duration // when the silence clock started: last heard, or a Restart
	downAt time.Duration // when the carrier was lost (while linkNoWire)
	// The smoothed inter-arrival mean and mean deviation, in microseconds
	// to keep the Link small (a range of 35 minutes). mean is 0 only on a
	// Link that was never Init'ed and has no gap yet.
	mean, dev int32
	flags     uint8
}

// NewLink returns a Link that has never been heard, with its jitter estimate
// starting at cfg.Interval.
func NewLink(cfg *DetectorConfig) Link {
	var l Link
	l.Init(cfg)
	return l
}

// Init resets l to never heard, with its jitter estimate starting at a mean
// of cfg.Interval and a deviation of cfg.Interval/4, so that a freshly heard
// link is not at the edge of its timeout. A Link used without Init takes its
// first gap as the mean and a quarter of it as the deviation.
func (l *Link) Init(cfg *DetectorConfig) {
	*l = Link{
		mean: micros(max(cfg.Interval, time.Microsecond)),
		dev:  micros(cfg.Interval / 4),
	}
}

// micros converts d to whole microseconds, saturating at the int32 range.
func micros(d time.Duration) int32 {
	return int32(min(max(d/time.Microsecond, 0), math.MaxInt32))
}

// outageFactor bounds the gaps that feed the estimate: a gap over this many
// times the smoothed mean plus four deviations is an outage that healed,
// and learning it as jitter would leave the link slow to notice the next one.
const outageFactor = 10

// Heard records a heartbeat from the peer that arrived on this link at now.
func (l *Link) Heard(now time.Duration) {
	if l.flags != linkHeard || now <= l.last {
		l.heardRarely(now)
		return
	}
	// The gap feeds the estimate, TCP style: mean += (gap-mean)/8 and
	// dev += (|gap-mean|-dev)/4, in microseconds.
	g := int64(uint64(now-l.last) / uint64(time.Microsecond))
	l.last = now
	g = min(g, math.MaxInt32)
	m, d := int64(l.mean), int64(l.dev)
	if m == 0 { // never Init'ed: the first gap is the start
		l.mean, l.dev = int32(max(g, 1)), int32(g/4)
		return
	}
	if g > outageFactor*(m+4*d) {
		return // an outage (a partition that healed), not jitter: no sample
	}
	e := g - m
	// Division truncates toward zero, so with g >= 0 the mean stays >= 1.
	m += e / 8
	if e < 0 {
		e = -e
	}
	d += (e - d) / 4
	l.mean, l.dev = int32(m), int32(d)
}

// heardRarely is Heard for a heartbeat that is late, reordered or a
// duplicate (ignored), or for a link that was never heard, lost its carrier
// or was restarted: the silence clock restarts, the gap is not a sample.
func (l *Link) heardRarely(now time.Duration) {
	if l.flags&linkNoWire != 0 && now < l.downAt {
		return // sent before the carrier was lost
	}
	if l.flags&linkHeard != 0 && now <= l.last {
		return
	}
	l.last = now
	l.flags = linkHeard
}

// CarrierDown records that the local NIC of this link lost carrier at now:
// the link is down at once, until the peer is heard on it at or after now. A
// carrier loss older than the last heartbeat is stale and ignored.
func (l *Link) CarrierDown(now time.Duration) {
	if l.flags&linkHeard != 0 && now < l.last {
		return
	}
	if l.flags&linkNoWire == 0 || now > l.downAt {
		l.downAt = now
	}
	l.flags |= linkNoWire | linkNoGap
}

// Restart records that the local agent stalled and resumed at now, so that
// the silence it did not watch is not held against the peer: the silence
// clock restarts at now if the link was heard before. The jitter estimate
// is kept, and the next heartbeat is not taken as a gap sample. Heartbeats
// stamped before now that are delivered late are ignored.
func (l *Link) Restart(now time.Duration) {
	if l.flags&linkHeard == 0 || now <= l.last {
		return
	}
	l.last = now
	l.flags |= linkNoGap
}

// Reset forgets the jitter estimate (back to cfg's starting mean and
// deviation) and takes the next heartbeat as a fresh start, not as a gap
// sample; the silence clock runs on. It is for a peer that restarted: the
// gap between its two lives is no jitter, and its old gaps say nothing of
// its new one.
func (l *Link) Reset(cfg *DetectorConfig) {
	l.mean, l.dev = micros(max(cfg.Interval, time.Microsecond)), micros(cfg.Interval/4)
	if l.flags&linkHeard != 0 {
		l.flags |= linkNoGap
	}
}

// Estimate is the link's smoothed inter-arrival mean and mean deviation.
// Before its first gap, a Link that was never Init'ed reports cfg's start.
func (l *Link) Estimate(cfg *DetectorConfig) (mean, dev time.Duration) {
	if l.mean == 0 {
		return cfg.Interval, cfg.Interval / 4
	}
	return time.Duration(l.mean) * time.Microsecond, time.Duration(l.dev) * time.Microsecond
}

// Timeout is the link's current adaptive timeout.
func (l *Link) Timeout(cfg *DetectorConfig) time.Duration {
	mean, dev := l.Estimate(cfg)
	return AdaptiveTimeout(mean, dev, cfg)
}

// State is the link's state at now.
func (l *Link) State(now time.Duration, cfg *DetectorConfig) LinkState {
	if l.flags&(linkHeard|linkNoWire) != linkHeard {
		return Down
	}
	if now-l.last <= cfg.Floor/2 {
		return Up // the timeout is never below Floor
	}
	return l.stateBeyondFloor(now, cfg)
}

// stateBeyondFloor is State for a link heard, with carrier, and silent for
// more than Floor/2.
func (l *Link) stateBeyondFloor(now time.Duration, cfg *DetectorConfig) LinkState {
	silence := now - l.last
	t := l.Timeout(cfg)
	switch {
	case silence <= t/2:
		return Up
	case silence <= t:
		return Suspect
	}
	return Down
}

// LastHeard is when the link's silence clock started, the last heartbeat
// or a later Restart, and false if the peer was never heard on it.
func (l *Link) LastHeard() (time.Duration, bool) {
	return l.last, l.flags&linkHeard != 0
}

// MaxLinks is the number of links a peer can be heard on.
const MaxLinks = 8

// Peer aggregates the links on which one peer is heard. Its links may live
// in storage the caller owns (InitIn), so that a table of peers keeps all
// their links in one block of memory.
//
//	cfg := hb.DefaultDetectorConfig()
//	var p hb.Peer
//	p.Init(2, &cfg)            // the peer has two links
//	p.Link(0).Heard(now)       // a heartbeat arrived on link 0
//	p.Link(1).CarrierDown(now) // the local NIC of link 1 lost carrier
//	if p.State(now, &cfg) == hb.Down {
//		// network-silent on every link
//	}
type Peer struct {
	links []Link
}

// Init resets p to n links, none heard yet. It panics unless 0 < n <=
// MaxLinks: the configuration was validated long before.
func (p *Peer) Init(n int, cfg *DetectorConfig) {
	if n <= 0 || n > MaxLinks {
		panic("hb: peer with " + strconv.Itoa(n) + " links")
	}
	p.InitIn(make([]Link, n), cfg)
}

// InitIn is Init with the links kept in the caller's storage: one Link per
// link, 0 < len(links) <= MaxLinks.
func (p *Peer) InitIn(links []Link, cfg *DetectorConfig) {
	if len(links) == 0 || len(links) > MaxLinks {
		panic("hb: peer with " + strconv.Itoa(len(links)) + " links")
	}
	p.links = links
	for i := range links {
		links[i].Init(cfg)
	}
}

// Links are the peer's links, indexed like the cluster's links.
func (p *Peer) Links() []Link { return p.links }

// Link is the peer's link i; it panics if there is no such link.
func (p *Peer) Link(i int) *Link { return &p.links[i] }

// Restart restarts the silence clock of every link at now (see Link.Restart).
func (p *Peer) Restart(now time.Duration) {
	for i := range p.links {
		p.links[i].Restart(now)
	}
}

// Reset resets every link's estimate (see Link.Reset).
func (p *Peer) Reset(cfg *DetectorConfig) {
	for i := range p.links {
		p.links[i].Reset(cfg)
	}
}

// State is Up if any link is up, else Suspect if any link is suspect, else
// Down: a peer is network-silent only when all its links are.
func (p *Peer) State(now time.Duration, cfg *DetectorConfig) LinkState {
	// Link.State, unrolled: this is the hot path of the agent.
	s, half := Down, cfg.Floor/2
	for i := range p.links {
		l := &p.links[i]
		if l.flags&(linkHeard|linkNoWire) != linkHeard {
			continue // down
		}
		if now-l.last <= half {
			return Up
		}
		switch l.stateBeyondFloor(now, cfg) {
		case Up:
			return Up
		case Suspect:
			s = Suspect
		}
	}
	return s
}

// LastHeard is the latest LastHeard over the peer's links, and false if the
// peer was never heard on any.
func (p *Peer) LastHeard() (last time.Duration, ok bool) {
	for i := range p.links {
		if t, heard := p.links[i].LastHeard(); heard && (!ok || t > last) {
			last, ok = t, true
		}
	}
	return last, ok
}

// SilentFor is how long the peer has been silent on all links at now: 0 if
// heard at or after now, math.MaxInt64 if never heard.
func (p *Peer) SilentFor(now time.Duration) time.Duration {
	last, ok := p.LastHeard()
	switch {
	case !ok:
		return math.MaxInt64
	case now <= last:
		return 0
	}
	return now - last
}
