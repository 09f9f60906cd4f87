package agent

import (
	"time"

	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/hb"
)

// Agent couples one host's core to its environment.
type Agent struct {
	node *cluster.Node
	env  Env
}

// New returns an agent that drives node over env.
func New(node *cluster.Node, env Env) *Agent { return &Agent{node: node, env: env} }

// Node is the agent's core, for status queries.
func (a *Agent) Node() *cluster.Node { return a.node }

// Heartbeat hands over a received heartbeat: one that carries nothing new
// but itself takes the core's fast path (Node.Heard), any other a full step.
func (a *Agent) Heartbeat(m *hb.Message) { a.HeartbeatAt(a.env.Now(), m) }

// HeartbeatAt is Heartbeat for a heartbeat that arrived at at (the
// environment's clock, earlier than Now when the shell read it late): the
// detector counts it from its arrival.
func (a *Agent) HeartbeatAt(at time.Duration, m *hb.Message) {
	if !a.node.Heard(at, m) {
		a.Handle(cluster.Received{Msg: m})
	}
}

// Handle feeds one event to the core at the environment's current time and
// carries out the actions it returns.
func (a *Agent) Handle(ev cluster.Event) {
	for _, act := range a.node.Step(a.env.Now(), ev) {
		a.do(act)
	}
}

func (a *Agent) do(act cluster.Action) {
	switch x := act.(type) {
	case cluster.Send:
		a.env.Send(x.Msg)
	case cluster.WriteSlot:
		a.env.WriteSlot(x.DS, x.Record)
	case cluster.ReadSlots:
		a.env.ReadSlots(x.DS)
	case cluster.ProbeGateway:
		a.env.ProbeGateway(x.Link)
	case cluster.PetWatchdog:
		a.env.PetWatchdog(x.Timeout)
	case cluster.BMC:
		a.env.BMC(x.Host, x.Op)
	case cluster.VM:
		a.env.VM(x.VM, x.Op, x.Seq)
	case cluster.Log:
		a.env.Log(x.Level, x.Component, x.Msg)
	case cluster.Assigned:
		a.env.Assigned(x)
	case cluster.RecordIncident:
		a.env.RecordIncident(x.Incident)
	default:
		panic("agent: unknown action")
	}
}
