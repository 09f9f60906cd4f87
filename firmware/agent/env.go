// Package agent is vigil's shell: it owns the clock, feeds events to the pure
// core (fence/cluster) and carries out the core's actions through one
// environment interface, Env. The same Agent runs over the real drivers and
// over the simulator (tools/sim).
//
//	a := agent.New(node, env)
//	a.Handle(cluster.Tick{}) // every heartbeat interval
//	a.Handle(cluster.Received{Msg: m})
package agent

import (
	"log/slog"
	"time"

	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/hb"
)

// Env is the world as one host's agent sees it. Calls never block: each
// request that has a result delivers it later as an event to Agent.Handle
// (named beside each method). A request that hangs simply never completes.
type Env interface {
	// Now is the host's monotonic clock.
	Now() time.Duration
	// Send sends m on link m.Link to every peer. Fire and forget.
	Send(m *hb.Message)
	// WriteSlot writes the host's record to datastore ds: cluster.SlotWritten.
	WriteSlot(ds int, r *cluster.Record)
	// ReadSlots reads every slot of datastore ds: cluster.SlotsRead.
	ReadSlots(ds int)
	// ProbeGateway checks the isolation address of a link: cluster.GatewayReplied.
	ProbeGateway(link int)
	// PetWatchdog pets the hardware watchdog, arming it with timeout on the
	// first call.
	PetWatchdog(timeout time.Duration)
	// BMC sends a power request to a peer's BMC: cluster.BMCReplied.
	BMC(host int, op cluster.BMCOp)
	// VM asks the local hypervisor to start, stop or kill a VM:
	// cluster.VMDone, carrying seq back.
	VM(vm int, op cluster.VMOp, seq uint64)
	// Log writes an operator log line.
	Log(level slog.Level, component, msg string)
	// Assigned logs a recovery assignment and its proof.
	Assigned(a cluster.Assigned)
	// RecordIncident stores a new version of an incident this host keeps as
	// coordinator: on every datastore, best effort, stamped with the wall
	// time of its detection. x is never modified afterwards. Fire and
	// forget.
	RecordIncident(x *cluster.Incident)
}
