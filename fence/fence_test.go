package fence

import (
	"errors"
	"testing"
	"time"
)

const ms = time.Millisecond

type step struct {
	at    time.Duration
	in    Input
	req   Op
	stuck bool
	state State
}

func TestFence(t *testing.T) {
	timeout := errors.New("timeout")
	cases := []struct {
		name    string
		bmc     bool
		steps   []step
		method  Method
		timeout time.Duration // default 20s
	}{
		{
			name: "bmc off then read back off",
			bmc:  true,
			steps: []step{
				{at: 0, in: Input{Start: true}, req: PowerOff, state: PoweringOff},
				{at: 50 * ms, in: Input{Reply: &Reply{Op: PowerOff}}, req: Status, state: Verifying},
				{at: 60 * ms, in: Input{Reply: &Reply{Op: Status, On: true}}, state: Verifying},
				{at: 100 * ms, in: Input{}, state: Verifying},
				{at: 260 * ms, in: Input{}, req: Status, state: Verifying},
				{at: 270 * ms, in: Input{Reply: &Reply{Op: Status}}, state: Proven},
			},
			method: BMC,
		},
		{
			name: "bmc unreachable falls back to lease",
			bmc:  true,
			steps: []step{
				{at: 0, in: Input{Start: true}, req: PowerOff, state: PoweringOff},
				{at: 2000 * ms, in: Input{Reply: &Reply{Op: PowerOff, Err: timeout}}, state: PoweringOff},
				{at: 2200 * ms, in: Input{}, req: PowerOff, state: PoweringOff},
				{at: 9000 * ms, in: Input{LeaseProof: true}, state: Proven},
			},
			method: Lease,
		},
		{
			name:    "liar bmc never proves; stuck reported once",
			bmc:     true,
			timeout: time.Second,
			steps: []step{
				{at: 0, in: Input{Start: true}, req: PowerOff, state: PoweringOff},
				{at: 50 * ms, in: Input{Reply: &Reply{Op: PowerOff}}, req: Status, state: Verifying},
				{at: 60 * ms, in: Input{Reply: &Reply{Op: Status, On: true}}, state: Verifying},
				{at: 1000 * ms, in: Input{}, req: Status, stuck: true, state: Verifying},
				{at: 1010 * ms, in: Input{Reply: &Reply{Op: Status, On: true}}, state: Verifying},
				{at: 1300 * ms, in: Input{}, req: Status, state: Verifying},
			},
		},
		{
			name:    "no bmc waits for the lease",
			timeout: time.Second,
			steps: []step{
				{at: 0, in: Input{Start: true}, state: Waiting},
				{at: 5000 * ms, in: Input{}, stuck: true, state: Waiting},
				{at: 9000 * ms, in: Input{LeaseProof: true}, state: Proven},
				{at: 9100 * ms, in: Input{Reply: &Reply{Op: Status}}, state: Proven},
			},
			method: Lease,
		},
		{
			name: "idle without start",
			bmc:  true,
			steps: []step{
				{at: 0, in: Input{LeaseProof: true}, state: Idle},
			},
		},
		{
			name: "stray reply is ignored",
			bmc:  true,
			steps: []step{
				{at: 0, in: Input{Start: true}, req: PowerOff, state: PoweringOff},
				{at: 10 * ms, in: Input{Reply: &Reply{Op: PowerOff}}, req: Status, state: Verifying},
				{at: 20 * ms, in: Input{Reply: &Reply{Op: Status}}, state: Proven},
			},
			method: BMC,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 20 * time.Second
			}
			f := New(tc.bmc, 200*ms, timeout)
			for i, s := range tc.steps {
				req, stuck := f.Step(s.at, s.in)
				if req != s.req || stuck != s.stuck || f.State() != s.state {
					t.Fatalf("step %d at %v: got req=%d stuck=%v state=%s, want req=%d stuck=%v state=%s",
						i, s.at, req, stuck, f.State(), s.req, s.stuck, s.state)
				}
			}
			if f.Method() != tc.method {
				t.Fatalf("method %s, want %s", f.Method(), tc.method)
			}
		})
	}
}

func TestAttemptsRecorded(t *testing.T) {
	f := New(true, 100*ms, time.Second)
	f.Step(0, Input{Start: true})
	f.Step(10*ms, Input{Reply: &Reply{Op: PowerOff, Err: errors.New("timeout")}})
	f.Step(200*ms, Input{})
	got := f.Attempts()
	if len(got) != 2 || got[0].Result != "error: timeout" || got[0].Done != 10*ms || got[1].Op != PowerOff || got[1].Done != 0 || got[1].Op.String() != "power-off" {
		t.Fatalf("attempts %+v", got)
	}
}
