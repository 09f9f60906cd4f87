// Package fence holds the pure fencing state machine: how the coordinator
// turns "host X failed" into a proof that X can no longer run anything.
//
//	f := fence.New(hasBMC, timing)
//	reqs := f.Step(now, fence.Input{LeaseProof: ok})   // every tick
//	reqs = f.Step(now, fence.Input{Reply: &fence.Reply{Op: fence.PowerOff}})
//	if f.State() == fence.Proven { ... f.Method() ... }
//
// States:
//
//	state      | input                         | next       | request
//	-----------+-------------------------------+------------+------------------
//	Idle       | Start, lease proof holds      | Proven (c) |
//	Idle       | Start, BMC configured         | PoweringOff| power off
//	Idle       | Start, no BMC                 | Waiting    |
//	PoweringOff| power off OK                  | Verifying  | power status
//	PoweringOff| error, retry delay passed     | PoweringOff| power off
//	Verifying  | status "off"                  | Proven (b) |
//	Verifying  | status "on", poll delay passed| Verifying  | power status
//	any        | lease proof holds             | Proven (c) |
//	not Proven | FenceTimeout passed           | (same)     | Stuck reported once
//
// A BMC whose power-off "succeeds" without the status ever reading "off" is
// never taken for proof; the lease proof still completes the fence.
package fence

import "time"

// State is where a fence stands.
type State uint8

// Fence states.
const (
	Idle State = iota
	PoweringOff
	Verifying
	Waiting // no usable BMC: waiting for the lease and watchdog deadlines
	Proven
)

func (s State) String() string {
	return [...]string{"idle", "powering-off", "verifying", "waiting-for-lease", "proven"}[s]
}

// Method is how a fence was proven.
type Method uint8

// Fence methods.
const (
	None  Method = iota
	BMC          // BMC read back "off" after a power-off
	Lease        // lease + watchdog deadlines passed
)

func (m Method) String() string { return [...]string{"none", "bmc", "lease"}[m] }

// Op is a BMC request.
type Op uint8

// BMC requests.
const (
	PowerOff Op = iota + 1
	Status
)

func (o Op) String() string {
	switch o {
	case PowerOff:
		return "power-off"
	case Status:
		return "power-status"
	}
	return "none"
}

// Reply is a BMC answer.
type Reply struct {
	Op  Op
	On  bool // Status: power state read back
	Err error
}

// Input is what a fence learns at one step.
type Input struct {
	Start      bool   // begin fencing (idempotent)
	LeaseProof bool   // the lease + watchdog proof holds now
	Reply      *Reply // a BMC answer, if one arrived
}

// Attempt is one BMC request and what came of it, for the incident record.
type Attempt struct {
	Op     Op
	At     time.Duration // when the request was sent
	Done   time.Duration // when its answer came (0: none yet)
	Result string
}

// Fence is the state machine fencing one incarnation of one host.
type Fence struct {
	bmc      bool
	poll     time.Duration
	timeout  time.Duration
	state    State
	method   Method
	started  time.Duration
	provenAt time.Duration
	pending  bool          // a BMC request is in flight
	next     time.Duration // earliest time of the next BMC request
	stuck    bool
	attempts []Attempt
}

// New returns an idle fence. poll is the BMC read-back and retry interval,
// timeout the time after which an unproven fence is reported stuck.
func New(bmc bool, poll, timeout time.Duration) *Fence {
	return &Fence{bmc: bmc, poll: poll, timeout: timeout}
}

// State is the current state.
func (f *Fence) State() State { return f.state }

// Method is how the fence was proven (None until Proven).
func (f *Fence) Method() Method { return f.method }

// Started is when fencing began; ProvenAt when it completed.
func (f *Fence) Started() time.Duration  { return f.started }
func (f *Fence) ProvenAt() time.Duration { return f.provenAt }

// Attempts lists the BMC requests made so far.
func (f *Fence) Attempts() []Attempt { return f.attempts }

// Step advances the fence and returns the BMC request to send, if any (0
// for none). stuck is true exactly once, when FenceTimeout passes unproven.
func (f *Fence) Step(now time.Duration, in Input) (req Op, stuck bool) {
	if f.state == Proven {
		return 0, false
	}
	if f.state == Idle {
		if !in.Start {
			return 0, false
		}
		f.started = now
		f.state = Waiting
		if f.bmc {
			f.state = PoweringOff
		}
	}
	if r := in.Reply; r != nil && f.pending {
		f.pending = false
		f.reply(now, r)
		if f.state == Proven {
			return 0, false
		}
	}
	if in.LeaseProof {
		f.prove(now, Lease)
		return 0, false
	}
	if !f.stuck && now-f.started >= f.timeout {
		f.stuck, stuck = true, true
	}
	if f.pending || now < f.next {
		return 0, stuck
	}
	switch f.state {
	case PoweringOff:
		req = PowerOff
	case Verifying:
		req = Status
	default:
		return 0, stuck
	}
	f.pending = true
	f.attempts = append(f.attempts, Attempt{Op: req, At: now})
	return req, stuck
}

func (f *Fence) reply(now time.Duration, r *Reply) {
	a := &f.attempts[len(f.attempts)-1]
	a.Done = now
	f.next = now + f.poll
	switch {
	case r.Err != nil:
		a.Result = "error: " + r.Err.Error()
	case r.Op == PowerOff:
		a.Result = "accepted"
		f.state = Verifying
		f.next = now
	case r.Op == Status && r.On:
		a.Result = "power is on"
	case r.Op == Status:
		a.Result = "power is off"
		f.prove(now, BMC)
	}
}

func (f *Fence) prove(now time.Duration, m Method) {
	f.state, f.method, f.provenAt = Proven, m, now
}
