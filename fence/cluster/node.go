package cluster

import "time"

// Config starts a Node.
type Config struct {
	Spec        *Spec
	Self        int    // this host's index in Spec.Hosts
	Incarnation uint64 // new at every agent start
	Running     []int  // VMs the hypervisor runs when the agent starts
}

// Node is one host's pure state machine.
type Node struct {
	spec *Spec
	self int
	out  []Action
}

// NewNode returns the state machine of host c.Self.
func NewNode(c Config) *Node { return &Node{spec: c.Spec, self: c.Self} }

// Step feeds one event at local monotonic time now and returns the actions
// to carry out. The slice is valid until the next call.
func (n *Node) Step(now time.Duration, ev Event) []Action {
	n.out = n.out[:0]
	return n.out
}
