package cluster

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/vigil-ha/vigil/hb"
)

// ClaimState is where a host stands with a VM it claimed.
type ClaimState uint8

// Claim states.
const (
	Claiming ClaimState = iota + 1 // written, waiting for the read-back check
	Running                        // running on the claimant (the hypervisor said so)
	Released                       // not running on the claimant any more
	Starting                       // checked clean; the hypervisor is starting it
)

// live reports whether the claimant may be running the VM.
func (s ClaimState) live() bool { return s == Claiming || s == Running || s == Starting }

func (s ClaimState) String() string {
	switch s {
	case Claiming:
		return "claiming"
	case Running:
		return "running"
	case Released:
		return "released"
	case Starting:
		return "starting"
	}
	return "unknown"
}

// Reason says why a claim was released.
type Reason uint8

// Release reasons.
const (
	NoReason    Reason = iota
	Isolation          // isolation response
	Maintenance        // host entered maintenance
	StartFailed        // the hypervisor could not start it
	Conflict           // another claim for the same epoch was seen
	Exited             // the VM stopped by itself
	Rejoined           // found not running when the agent started
	Stopped            // stopped by an operator: not restarted
	Declined           // assigned to a host that could not take it
	AgentStop          // the agent was stopped (shutdown): restarted elsewhere
	AppFailed          // its guest or an application in it failed past the policy: failed over
	StartAsked         // an operator started a VM they had stopped: placed anywhere
)

var reasonNames = [...]string{"", "isolation", "maintenance", "start-failed", "conflict", "exited", "rejoined", "stopped", "declined", "agent-stop", "app-failed", "start-asked"}

// moveBase + H is the reason of a VM an operator moves to host H (H below
// MaxHosts): released here, to be placed on H when it has room.
const moveBase Reason = 64

// MovedTo is the release reason of a VM an operator moves to host h.
func MovedTo(h int) Reason { return moveBase + Reason(h) }

// MoveTarget returns the host of a MovedTo reason.
func (r Reason) MoveTarget() (int, bool) {
	if r >= moveBase && r < moveBase+64 {
		return int(r - moveBase), true
	}
	return 0, false
}

// String names r; a reason this build does not know (read from a newer
// host's record) is "reason-N".
func (r Reason) String() string {
	if h, ok := r.MoveTarget(); ok {
		return fmt.Sprintf("moved-to-%d", h)
	}
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason-%d", uint8(r))
}

// Claim is one host's statement about one VM at one ownership epoch.
type Claim struct {
	VM     int
	Epoch  uint64
	State  ClaimState
	Reason Reason
}

// ProofKind names the S2 proof that a host can no longer run its VMs.
type ProofKind uint8

// Proof kinds, lettered as in the contract.
const (
	ProofReleased ProofKind = iota + 1 // (a) the owner released the VM
	ProofBMCOff                        // (b) the BMC read back "off" after a power-off
	ProofLease                         // (c) lease + watchdog deadlines passed
)

func (k ProofKind) String() string {
	switch k {
	case ProofReleased:
		return "released"
	case ProofBMCOff:
		return "bmc-off"
	case ProofLease:
		return "lease-expired"
	}
	return "none"
}

// Proof is the logged evidence that a host's incarnation can no longer run
// anything.
type Proof struct {
	Kind        ProofKind
	Host        int
	Incarnation uint64
	Counter     uint64        // the lease counter that stood still (c)
	At          time.Duration // observer's clock when the proof was complete
	Detail      string
}

// Record is one host's slot on a datastore: its heartbeat and lease counter,
// its state, its ownership claims and, from the coordinator, assignments and
// fence proofs. Only its host writes it; a record passed to WriteSlot is
// never modified afterwards.
type Record struct {
	Host          int
	Incarnation   uint64
	Counter       uint64
	Isolated      bool
	Maintenance   bool
	DatastoreLost bool
	Hears         hb.HostSet
	Claims        []Claim
	Assignments   []hb.Assignment
	Fenced        []Proof
}

// newer reports whether r is a later write of its host than o.
func (r *Record) newer(o *Record) bool {
	if o == nil {
		return true
	}
	if r.Incarnation != o.Incarnation {
		return r.Incarnation > o.Incarnation
	}
	return r.Counter > o.Counter
}

// ---- events: what the shell tells the core ----

// Event is an input to Node.Step.
type Event interface{ event() }

// Tick is the periodic logical clock: the shell sends one every heartbeat
// interval (or more often).
type Tick struct{}

// Received is a heartbeat that passed authentication.
type Received struct{ Msg *hb.Message }

// LinkChanged is the local NIC's carrier on a link going up or down.
type LinkChanged struct {
	Link int
	Up   bool
}

// GatewayReplied answers a ProbeGateway.
type GatewayReplied struct {
	Link int
	OK   bool
}

// SlotWritten completes a WriteSlot.
type SlotWritten struct {
	DS  int
	Err error
}

// SlotsRead completes a ReadSlots: Records is indexed by host, nil where a
// slot is empty or its record failed its checks.
type SlotsRead struct {
	DS      int
	Records []*Record
	Err     error
}

// BMCReplied completes a PowerOff or PowerStatus.
type BMCReplied struct {
	Host int
	Op   BMCOp
	On   bool // power state read back (PowerStatus only)
	Err  error
}

// VMDone completes a VM request; Seq echoes the request's, so that a late
// answer to a request the core has since overtaken is recognised.
type VMDone struct {
	VM  int
	Op  VMOp
	Seq uint64
	Err error
}

// VMExited is a VM that stopped without being asked to.
type VMExited struct{ VM int }

// VMFailover: the VM's guest or an application in it failed past its
// monitoring policy: the VM is stopped and released, to be restarted on
// another host.
type VMFailover struct {
	VM  int
	Why string
}

// Command is an operator request for this host.
type Command struct {
	Name string // "maintenance-enter", "maintenance-exit", "shutdown", "vm-stop", "vm-start", "vm-move"
	VM   int    // the VM of vm-stop, vm-start and vm-move
	Host int    // the target of vm-move
}

func (Tick) event()           {}
func (Received) event()       {}
func (LinkChanged) event()    {}
func (GatewayReplied) event() {}
func (SlotWritten) event()    {}
func (SlotsRead) event()      {}
func (BMCReplied) event()     {}
func (VMDone) event()         {}
func (VMExited) event()       {}
func (VMFailover) event()     {}
func (Command) event()        {}

// ---- actions: what the core asks of the shell ----

// BMCOp is a BMC request.
type BMCOp uint8

// BMC operations.
const (
	BMCPowerOff BMCOp = iota + 1
	BMCStatus
	// BMCCancel drops every request to the host's BMC that has not gone
	// out yet: the fence that asked for them ended (proven, or abandoned
	// because the host came back). It has no reply. Without it a power-off
	// queued behind an unreachable BMC would go out once the BMC answers
	// again, and power off a host that has since rebooted and rejoined.
	BMCCancel
)

// VMOp is a hypervisor request.
type VMOp uint8

// Hypervisor operations.
const (
	VMStart VMOp = iota + 1
	VMStop
	VMKill
)

// Action is an output of Node.Step for the shell to carry out.
type Action interface{ action() }

// Send sends a heartbeat on one link to every peer.
type Send struct{ Msg *hb.Message }

// WriteSlot writes the host's record to a datastore.
type WriteSlot struct {
	DS     int
	Record *Record
}

// ReadSlots reads every slot of a datastore.
type ReadSlots struct{ DS int }

// ProbeGateway checks an isolation address on a link.
type ProbeGateway struct{ Link int }

// PetWatchdog pets (and on the first call arms) the hardware watchdog.
type PetWatchdog struct{ Timeout time.Duration }

// BMC asks a peer's BMC to power it off or to read back its power state.
type BMC struct {
	Host int
	Op   BMCOp
}

// VM asks the local hypervisor to start, stop or kill a VM. Seq numbers the
// request; its VMDone carries it back.
type VM struct {
	VM  int
	Op  VMOp
	Seq uint64
}

// Log is a line for the operator's log.
type Log struct {
	Level     slog.Level
	Component string
	Msg       string
}

// Assigned reports that the coordinator assigned a VM to a host at a new
// ownership epoch, with the proof that its old owner can no longer run it
// (Proof.Kind is zero for a VM that never ran). The simulator's invariant
// checker reads it; the agent logs it. The placement is also recorded in
// the old owner's incident (RecordIncident).
type Assigned struct {
	VM     int
	From   int // old owner, -1 for a first power-on
	To     int
	Epoch  uint64
	Proof  Proof
	Failed time.Duration // when the old owner was first suspected (observer clock)
}

func (Send) action()         {}
func (WriteSlot) action()    {}
func (ReadSlots) action()    {}
func (ProbeGateway) action() {}
func (PetWatchdog) action()  {}
func (BMC) action()          {}
func (VM) action()           {}
func (Log) action()          {}
func (Assigned) action()     {}
