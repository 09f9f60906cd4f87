package cluster

import (
	"math/bits"
	"time"
)

// Priority is a VM's restart priority: higher values restart first.
type Priority int

// Restart priorities, vSphere's three levels.
const (
	Low    Priority = 1
	Medium Priority = 2
	High   Priority = 3
)

func (p Priority) String() string {
	switch p {
	case Low:
		return "low"
	case Medium:
		return "medium"
	case High:
		return "high"
	}
	return "unknown"
}

// IsolationResponse is what an isolated host does with a VM.
type IsolationResponse int

// Isolation responses (vSphere's names).
const (
	LeaveRunning IsolationResponse = iota // keep the VM; nobody restarts it
	ShutDown                              // graceful stop, release, restart elsewhere
	PowerOff                              // hard stop, release, restart elsewhere
)

func (r IsolationResponse) String() string {
	switch r {
	case LeaveRunning:
		return "leave-running"
	case ShutDown:
		return "shutdown"
	case PowerOff:
		return "poweroff"
	}
	return "unknown"
}

// HostSpec is what the core knows of one host.
type HostSpec struct {
	Name      string
	CPU       int  // schedulable vCPUs
	MemoryMiB int  // schedulable memory
	BMC       bool // a BMC is configured for fencing
}

// VMSpec is what the core knows of one VM.
type VMSpec struct {
	Name         string
	CPU          int
	MemoryMiB    int
	Priority     Priority
	After        []int  // VM indexes that must run before this one starts
	AntiAffinity string // VMs sharing a non-empty group run on different hosts
	Protected    bool   // restarted after a failure
	Isolation    IsolationResponse
	Host         int // preferred host for the first power-on, -1 for any
}

// Timing holds every interval and timeout of the protocol. vigil check
// verifies the rules between them (see Check) before any watchdog is armed.
type Timing struct {
	Heartbeat         time.Duration // heartbeat interval per link
	LinkTimeout       time.Duration // floor of a link's adaptive timeout
	DatastoreInterval time.Duration // r: datastore heartbeat and lease renewal interval
	IOTimeout         time.Duration // io: a renewal counts only if it completed within this
	LeaseTimeout      time.Duration // L: pet the watchdog only while the lease is younger
	WatchdogTimeout   time.Duration // W: hardware watchdog timeout
	Margin            time.Duration // clock drift and scheduling margin of proof (c)
	FenceTimeout      time.Duration // a fence with no proof after this is reported stuck
	Grace             time.Duration // network silence shorter than this never fences
	BMCPoll           time.Duration // read-back interval after a BMC power-off
}

// Policy holds cluster-wide recovery policy.
type Policy struct {
	HostFailures    int           // admission control: host failures to tolerate
	RestartAttempts int           // restart budget per VM and incident
	RestartBackoff  time.Duration // first retry delay; doubles per attempt
}

// Spec is the cluster as the core sees it: hosts and VMs by index.
type Spec struct {
	Name       string
	Hosts      []HostSpec
	Links      int
	Datastores int
	Timing     Timing
	Policy     Policy
	VMs        []VMSpec
}

// StorageTimeout is how long a peer's datastore counter may stand still
// before the peer counts as storage-silent: one interval plus the I/O timeout.
func (t Timing) StorageTimeout() time.Duration { return t.DatastoreInterval + t.IOTimeout }

// QuorumHysteresis is how long a host that depends on its network majority
// rides out losing it (a peer's detector flapping) before its entitlement
// lapses for good.
func (t Timing) QuorumHysteresis() time.Duration { return t.LinkTimeout }

// QuorumLoss bounds how long a host that lost its datastores may still count
// itself entitled after the coordinator's partition stopped hearing it: a
// link detector's timeout at its ceiling (4 x link_timeout), two heartbeat
// intervals, and the hysteresis.
func (t Timing) QuorumLoss() time.Duration {
	return 4*t.LinkTimeout + 2*t.Heartbeat + t.QuorumHysteresis()
}

// ProofDelay is the longest proof (c) can take after a host was last seen
// alive (its lease counter, or the network): max(L, QuorumLoss) + W + margin.
func (t Timing) ProofDelay() time.Duration {
	return max(t.LeaseTimeout, t.QuorumLoss()) + t.WatchdogTimeout + t.Margin
}

// LeaseQuorum is how many datastores must carry a fresh renewal for a host to
// keep its lease (k_h), and how many must show a silent lease before an
// observer may rely on it (k_o). k_h + k_o > n, so the two sets always share
// a datastore: with one or two datastores a host keeps its lease on any one of
// them; with three it needs two.
func LeaseQuorum(datastores int) (own, observed int) {
	own = 1
	if datastores >= 3 {
		own = datastores/2 + 1
	}
	return own, datastores - own + 1
}

// ClaimQuorum reports whether a set of datastores (bit d for datastore d)
// is enough to check an ownership claim on, or for a coordinator to read
// before it plans: more than half of them, or exactly half including the
// first. Any two such sets share a datastore, so two claimants always meet;
// with two datastores the second may be lost without stopping restarts.
func ClaimQuorum(set uint8, datastores int) bool {
	k := bits.OnesCount8(set)
	return 2*k > datastores || (2*k == datastores && set&1 != 0)
}
