// Package cluster is vigil's pure decision core: one Node per host turns
// evidence (heartbeats, datastore slots, BMC and hypervisor answers) into
// verdicts and actions (heartbeats to send, slots to write, the watchdog pet,
// fences, VM starts, incident records). No goroutines, no clock reads, no
// I/O: the shell passes the host's monotonic time into every Step.
//
//	n := cluster.NewNode(cluster.Config{Spec: spec, Self: 0, Incarnation: inc})
//	for ev := range events {
//		for _, a := range n.Step(clock.Now(), ev) {
//			execute(a)
//		}
//	}
//
// A broken invariant panics: the agent stops petting, and the watchdog turns
// that into a self-fence.
package cluster

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/vigil-ha/vigil/fence"
	"github.com/vigil-ha/vigil/hb"
)

// Config starts a Node.
type Config struct {
	Spec        *Spec
	Self        int    // this host's index in Spec.Hosts
	Incarnation uint64 // new at every agent start, larger than the last
	Running     []int  // VMs the hypervisor runs when the agent starts
	// WatchdogArmed says an earlier incarnation left the hardware watchdog
	// armed (an agent restart): this one must keep it petted while entitled.
	WatchdogArmed bool
}

// Node is one host's pure state machine.
type Node struct {
	spec  *Spec
	self  int
	inc   uint64
	det   hb.DetectorConfig
	kOwn  int // datastores that must carry a fresh renewal (lease quorum)
	kObs  int // datastores that must show a silent lease (proof c)
	out   []Action
	names []string

	// time and network
	started   bool
	startAt   time.Duration
	lastTick  time.Duration
	seq       uint64
	version   uint64 // digest version: bumped when Hears/flags/assignments change
	carrier   []bool
	gwOK      []time.Duration // last OK answer per link (-1: none)
	gwPending []bool
	lastPeer  time.Duration // last time any peer was heard
	peers     []peer
	hot       []peerHot     // per peer, what every heartbeat touches
	nextScan  time.Duration // no peer that was up can be down before this
	watch     hb.HostSet    // peers down at the last full scan: looked at every tick
	unsettled hb.HostSet    // peers whose verdict is not Alive: judged every tick
	scanNow   bool          // evidence changed: scan the verdicts at the next tick
	digestNew bool          // a peer's digest changed: recount the acks
	hears     hb.HostSet
	acks      hb.HostSet // heard hosts whose heartbeats say they hear us
	suspects  int        // peers network-silent whose storage has not decided yet
	stall     stall      // this host's own stall (local.go)

	// datastores and lease
	ds          []dstore
	counter     uint64
	lastBatch   time.Duration // when the last record was issued
	lastRec     *Record       // the newest record issued
	joined      bool          // own previous record read and adopted
	running0    []int
	continuing  bool // the agent started under running VMs or an armed watchdog
	lease       leaseState
	hadLease    bool          // this incarnation held a fresh lease at least once
	quorumUntil time.Duration // the network majority counts until then
	wdTaken     bool          // an earlier incarnation armed the watchdog
	wdArmed     bool
	best        []*Record // newest record per host over all datastores
	recDirty    bool
	maint       bool
	shutdown    bool // the agent is stopping: release everything, take nothing
	self0       SelfVerdict
	selfSince   time.Duration
	isolated    bool

	// VMs this host claims (at most one claim per VM)
	claims     map[int]*localClaim
	deferred   []deferred // assignments that arrived before the lease
	claimOrder []int      // cached sortedClaims
	lastClaims []Claim    // claims of the last record, shared while unchanged
	vmSeq      uint64     // hypervisor requests issued

	// coordinator
	coord      int
	quorate    bool
	co         *coordinator
	epochMax   []uint64        // highest epoch seen per VM (claims and assignments)
	lastAssign []hb.Assignment // newest assignment seen per VM (Host -1: none)
}

type leaseState uint8

const (
	leaseNone   leaseState = iota // never renewed yet: watchdog not armed
	leaseFresh                    // renewed within L on enough datastores
	leaseHeld                     // datastores lost, kept by a network quorum that acknowledges us
	leaseLapsed                   // neither: no pets until a renewal lands (self-fence)
)

// NewNode returns the state machine of host c.Self.
func NewNode(c Config) *Node {
	s := c.Spec
	if c.Self < 0 || c.Self >= len(s.Hosts) || len(s.Hosts) > hb.MaxHosts {
		panic(fmt.Sprintf("cluster: host %d outside a cluster of %d", c.Self, len(s.Hosts)))
	}
	n := &Node{spec: s, self: c.Self, inc: c.Incarnation, coord: -1, running0: c.Running, continuing: len(c.Running) > 0 || c.WatchdogArmed, wdTaken: c.WatchdogArmed}
	n.det = hb.DetectorConfig{Interval: s.Timing.Heartbeat, Floor: s.Timing.LinkTimeout}
	n.kOwn, n.kObs = LeaseQuorum(s.Datastores)
	for _, h := range s.Hosts {
		n.names = append(n.names, h.Name)
	}
	n.carrier = make([]bool, s.Links)
	n.gwOK = make([]time.Duration, s.Links)
	n.gwPending = make([]bool, s.Links)
	for l := range n.carrier {
		n.carrier[l] = true
		n.gwOK[l] = -1
	}
	n.peers = make([]peer, len(s.Hosts))
	n.hot = make([]peerHot, len(s.Hosts))
	links := make([]hb.Link, len(s.Hosts)*s.Links)
	for i := range n.peers {
		n.peers[i].init(&n.hot[i], links[i*s.Links:(i+1)*s.Links:(i+1)*s.Links], s.Datastores, &n.det)
		if i != c.Self {
			n.unsettled = n.unsettled.With(i)
		}
	}
	n.ds = make([]dstore, s.Datastores)
	n.best = make([]*Record, len(s.Hosts))
	n.claims = map[int]*localClaim{}
	n.epochMax = make([]uint64, len(s.VMs))
	n.lastAssign = make([]hb.Assignment, len(s.VMs))
	for v := range n.lastAssign {
		n.lastAssign[v].Host = -1
	}
	n.co = newCoordinator(n)
	return n
}

// Step feeds one event at local monotonic time now and returns the actions
// to carry out. The slice is valid until the next call.
func (n *Node) Step(now time.Duration, ev Event) []Action {
	n.out = n.out[:0]
	if !n.started {
		n.started, n.startAt, n.lastTick, n.lastPeer = true, now, now, now
		for i := range n.peers {
			n.peers[i].lostAt = now // nothing heard yet: lost as of our start
		}
		n.logf(slog.LevelInfo, "agent", "started incarnation %d", n.inc)
	}
	switch e := ev.(type) {
	case Tick:
		n.tick(now)
	case Received:
		n.received(now, e.Msg)
	case LinkChanged:
		n.linkChanged(now, e)
	case GatewayReplied:
		if e.Link >= 0 && e.Link < len(n.gwOK) {
			n.gwPending[e.Link] = false
			if e.OK {
				n.gwOK[e.Link] = now
			}
		}
	case SlotWritten:
		n.slotWritten(now, e)
	case SlotsRead:
		n.slotsRead(now, e)
	case BMCReplied:
		n.co.bmcReplied(now, e)
	case VMDone:
		n.vmDone(now, e)
	case VMExited:
		n.vmExited(now, e)
	case VMFailover:
		n.vmFailover(now, e)
	case LocalHealth:
		n.localHealth(now, e)
	case StoreIO:
		n.storeIO(now, e)
	case Command:
		n.command(now, e)
	default:
		panic(fmt.Sprintf("cluster: unknown event %T", ev))
	}
	if n.recDirty && n.joined {
		n.writeAll(now)
	}
	n.co.flushIncidents()
	return n.out
}

func (n *Node) tick(now time.Duration) {
	t := &n.spec.Timing
	if gap := now - n.lastTick; gap > 3*t.Heartbeat && gap > t.LinkTimeout/2 {
		// Our own stall, not the peers' silence: restart the evidence clocks.
		n.logf(slog.LevelWarn, "agent", "agent stalled for %s: restarting evidence clocks", ms(gap))
		if n.stall.on {
			n.stall.worst = max(n.stall.worst, gap) // the same stall, seen by its late read too
		} else {
			n.stall.count++
			n.stall.last = gap
		}
		for i := range n.peers {
			n.hot[i].net.Restart(now)
		}
		n.lastPeer = now
		n.scanNow = true
		for l := range n.gwOK {
			if n.gwOK[l] >= 0 {
				n.gwOK[l] = now
			}
		}
	}
	n.lastTick = now
	n.sendHeartbeats(now)
	n.storageTick(now)
	n.updateVerdicts(now)
	n.evalLease(now)
	n.updateSelf(now)
	n.watchdog(now)
	if len(n.deferred) > 0 && !n.starting() {
		d := n.deferred
		n.deferred = nil
		for _, x := range d {
			n.assigned(now, x.by, x.a)
		}
	}
	n.updateCoordinator(now)
	if n.coord == n.self {
		n.co.tick(now)
	}
}

// watchdog pets while the host is entitled to run its VMs.
func (n *Node) watchdog(now time.Duration) {
	if n.lease != leaseFresh && n.lease != leaseHeld || n.stall.limit {
		return
	}
	if !n.wdArmed {
		n.wdArmed = true
		if n.wdTaken {
			n.logf(slog.LevelInfo, "wd", "petting the watchdog an earlier incarnation armed (%s)", ms(n.spec.Timing.WatchdogTimeout))
		} else {
			n.logf(slog.LevelInfo, "wd", "arming watchdog (%s)", ms(n.spec.Timing.WatchdogTimeout))
		}
	}
	n.emit(PetWatchdog{Timeout: n.spec.Timing.WatchdogTimeout})
}

func (n *Node) command(now time.Duration, c Command) {
	switch c.Name {
	case "maintenance-enter":
		if n.maint {
			return
		}
		n.maint = true
		n.bump()
		n.logf(slog.LevelInfo, "vm", "entering maintenance: moving VMs away")
		n.releaseAll(now, Maintenance, VMStop)
	case "maintenance-exit":
		if !n.maint || n.shutdown {
			return
		}
		n.maint = false
		n.bump()
		n.logf(slog.LevelInfo, "vm", "leaving maintenance")
	case "shutdown":
		if n.shutdown {
			return
		}
		n.shutdown, n.maint = true, true
		n.bump()
		n.logf(slog.LevelWarn, "agent", "stopping: stopping this host's VMs and releasing them for restart elsewhere")
		n.releaseAll(now, AgentStop, VMStop)
	case "vm-stop":
		if c.VM < 0 || c.VM >= len(n.spec.VMs) {
			return
		}
		lc := n.claims[c.VM]
		if lc == nil || !lc.State.live() || lc.stopping {
			n.logf(slog.LevelWarn, "vm", "stop of %s asked, but it does not run here", n.vmName(c.VM))
			return
		}
		n.logf(slog.LevelInfo, "vm", "stopping %s on an operator's request: it stays stopped until started again", n.vmName(c.VM))
		n.release(c.VM, Stopped, VMStop)
	case "vm-start":
		if c.VM < 0 || c.VM >= len(n.spec.VMs) {
			return
		}
		lc := n.claims[c.VM]
		if lc == nil || lc.State != Released || lc.Reason != Stopped {
			n.logf(slog.LevelWarn, "vm", "start of %s asked, but this host holds no operator's stop of it", n.vmName(c.VM))
			return
		}
		lc.Reason = StartAsked
		n.logf(slog.LevelInfo, "vm", "start of %s asked: the coordinator places it", n.vmName(c.VM))
		n.bump()
	case "vm-move":
		if c.VM < 0 || c.VM >= len(n.spec.VMs) || c.Host < 0 || c.Host >= len(n.spec.Hosts) || c.Host >= 64 {
			return
		}
		lc := n.claims[c.VM]
		if lc == nil || !lc.State.live() || lc.stopping || c.Host == n.self {
			n.logf(slog.LevelWarn, "vm", "move of %s to %s asked, but it does not run here, or runs there already", n.vmName(c.VM), n.name(c.Host))
			return
		}
		n.logf(slog.LevelInfo, "vm", "moving %s to %s on an operator's request: stopping it here", n.vmName(c.VM), n.name(c.Host))
		n.release(c.VM, MovedTo(c.Host), VMStop)
	default:
		n.logf(slog.LevelWarn, "agent", "unknown command %q ignored: known are maintenance-enter, maintenance-exit, shutdown, vm-stop, vm-start, vm-move", c.Name)
	}
}

// Released reports whether a shutdown has finished: every VM this host
// claimed is stopped and released, and the record saying so is written
// to every datastore that answers (a failing one cannot hold it up). The
// shell may then disarm the watchdog and exit: peers restart the VMs with
// proof (a).
func (n *Node) Released() bool {
	if !n.shutdown || n.recDirty {
		return false
	}
	for _, v := range n.sortedClaims() {
		if lc := n.claims[v]; lc.State != Released || lc.stopping {
			return false
		}
	}
	if n.lastRec == nil {
		return true
	}
	for d := range n.ds {
		ds := &n.ds[d]
		if !ds.down() && (ds.writing || ds.okCounter < n.lastRec.Counter) {
			return false
		}
	}
	return true
}

// bump marks the digest and the record changed.
func (n *Node) bump() {
	n.version++
	n.recDirty = true
}

func (n *Node) emit(a Action) { n.out = append(n.out, a) }

func (n *Node) logf(level slog.Level, component, format string, args ...any) {
	n.emit(Log{Level: level, Component: component, Msg: fmt.Sprintf(format, args...)})
}

func (n *Node) name(h int) string {
	if h < 0 || h >= len(n.names) {
		return "none"
	}
	return n.names[h]
}

func (n *Node) vmName(v int) string { return n.spec.VMs[v].Name }

// ms formats a duration in milliseconds, for deterministic logs.
func ms(d time.Duration) string { return fmt.Sprintf("%dms", d.Milliseconds()) }

// Fence is exported for status displays: the fence state of host h, if any.
func (n *Node) Fence(h int) *fence.Fence { return n.co.fences[h] }
