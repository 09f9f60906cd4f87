package cluster

import (
	"fmt"
	"time"

	"github.com/vigil-ha/vigil/fence"
)

// IncidentKind is what happened to the host an incident is about.
type IncidentKind uint8

// Incident kinds. A failed host is fenced (proof b or c); an isolated or
// releasing host gave its VMs up itself (proof a).
const (
	IncidentFailed   IncidentKind = iota + 1 // silent on the network and the datastores: fenced
	IncidentIsolated                         // declared itself isolated and released its VMs
	IncidentReleased                         // released VMs (maintenance, agent stop, a VM exit, a failed start, a restart)
)

func (k IncidentKind) String() string {
	switch k {
	case IncidentFailed:
		return "failed"
	case IncidentIsolated:
		return "isolated"
	case IncidentReleased:
		return "released"
	}
	return fmt.Sprintf("kind-%d", uint8(k))
}

// PlacementState is where one VM of an incident stands.
type PlacementState uint8

// Placement states.
const (
	PlacementAssigned PlacementState = iota + 1 // assigned; not seen running yet
	PlacementRunning                            // the coordinator saw it running at its epoch
	PlacementFailed                             // the target gave it up or was lost first; Reason says which
	PlacementWaiting                            // not placed yet; Reason says why
)

func (s PlacementState) String() string {
	switch s {
	case PlacementAssigned:
		return "assigned"
	case PlacementRunning:
		return "running"
	case PlacementFailed:
		return "failed"
	case PlacementWaiting:
		return "waiting"
	}
	return fmt.Sprintf("state-%d", uint8(s))
}

// IncidentID names an incident across the cluster: the coordinator that
// kept it (host index and incarnation) and its sequence number there.
type IncidentID struct {
	Host        int
	Incarnation uint64
	Seq         uint64
}

// Less orders ids by coordinator, then incarnation, then sequence: for one
// coordinator host, older incidents first.
func (a IncidentID) Less(b IncidentID) bool {
	if a.Host != b.Host {
		return a.Host < b.Host
	}
	if a.Incarnation != b.Incarnation {
		return a.Incarnation < b.Incarnation
	}
	return a.Seq < b.Seq
}

// IncidentFence is how the coordinator fenced a failed host.
type IncidentFence struct {
	Started time.Duration // coordinator's clock (0: no fence)
	// Plan is how the fence began: through the BMC (a power-off with
	// read-back), or by waiting for the lease and watchdog deadlines.
	Plan fence.Method
	// Requests is how many BMC requests the fence made; Attempts lists
	// them with their answers (beyond maxAttempts, the first and the last
	// ones).
	Requests int
	Attempts []fence.Attempt
	Stuck    bool // no proof after fence_timeout
}

// Placement is one assignment of a VM the incident moves, or why it could
// not be placed yet.
type Placement struct {
	VM       int
	To       int // -1 while not placed
	Epoch    uint64
	State    PlacementState
	Assigned time.Duration // when assigned (0: not yet)
	Running  time.Duration // when the coordinator saw it running (0: not yet)
	Reason   string        // why it waits or failed
}

// Incident is the coordinator's account of one host failure, isolation or
// release that makes VMs move: what failed and the evidence, the fence and
// its proof, each placement, and the timings. Times are on the coordinator's
// monotonic clock; the shell stamps Wall when it stores the record. The core
// emits a RecordIncident with a new version whenever an incident opens,
// changes or closes; a version passed is never modified afterwards.
type Incident struct {
	ID          IncidentID
	Version     uint64 // grows with every change: the highest wins
	Host        int    // the host the incident is about
	Incarnation uint64 // its incarnation
	Kind        IncidentKind
	Closed      bool
	Outcome     string // why it closed
	// Wall is the wall-clock time of Detected, in Unix nanoseconds, as the
	// shell that stored the record saw it (0: not stamped).
	Wall int64

	Detected time.Duration // first suspected (silent on every link), or the first release seen
	Suspect  []string      // the evidence rows (Node.Explain) at Detected
	Decided  time.Duration // the verdict became failed or isolated (0: never)
	Verdict  []string      // the evidence rows at Decided

	Fence      IncidentFence // zero unless the host was fenced
	Proof      Proof         // the proof its VMs moved with (Kind 0: none yet)
	Placements []Placement
}

// Clone returns a deep copy of x: no slice of the copy shares memory with x.
func (x *Incident) Clone() *Incident {
	c := *x
	c.Suspect = append([]string(nil), x.Suspect...)
	c.Verdict = append([]string(nil), x.Verdict...)
	c.Fence.Attempts = append([]fence.Attempt(nil), x.Fence.Attempts...)
	c.Placements = append([]Placement(nil), x.Placements...)
	return &c
}

// RecordIncident asks the shell to store a new version of an incident this
// host keeps as coordinator (on every datastore, best effort).
type RecordIncident struct{ Incident *Incident }

func (RecordIncident) action() {}
