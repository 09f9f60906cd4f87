// Package ipmitest provides test doubles of the ipmi driver: Fake, an
// in-memory ipmi.BMC with scriptable failures for unit tests of code that
// fences, and Server, an in-process IPMI 2.0 BMC on 127.0.0.1 for tests of
// code that speaks the protocol (ipmi.DialLAN against it). The real
// independent BMC, OpenIPMI's ipmi_sim, is Sim.
//
//	f := ipmitest.New()                // a host that is on
//	f.SetOffDelay(2 * time.Second)     // power goes off 2 s after the command
//	f.SetClock(clock.Now)              // ... on the test's clock
//	fence(f)
//	if f.On() { t.Error("still on") }
//	if f.Count(ipmitest.OpOff) != 1 { t.Errorf("calls: %v", f.Calls()) }
//
// The failure modes: SetUnreachable (no answer), SetAuthFailure
// (credentials refused), SetLiar (power off accepted, the power stays on),
// SetOffDelay, and Fail for any error on one operation.
package ipmitest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/drivers/ipmi"
)

// Ops are the operation names Fail, Calls and Count use.
const (
	OpStatus = "status"
	OpOff    = "off"
	OpOn     = "on"
	OpCycle  = "cycle"
	OpProbe  = "probe"
	OpClose  = "close"
)

// opNames are the operation names of the real driver's errors.
var opNames = map[string]string{
	OpStatus: "power status", OpOff: "power off", OpOn: "power on",
	OpCycle: "power cycle", OpProbe: "probe", OpClose: "close",
}

// Addr is the BMC address the Fake's errors name.
const Addr = "ipmitest"

// DefaultInfo is what a new Fake's Probe returns.
var DefaultInfo = ipmi.Info{CipherSuite: 17, DeviceID: 0x20, FirmwareRevision: "1.00", IPMIVersion: "2.0", ManufacturerID: 0xb2a0, ProductID: 1}

// Fake is an in-memory BMC. Its methods are safe for concurrent use; none
// blocks or sleeps (a canceled context fails a call at once).
type Fake struct {
	mu          sync.Mutex
	on          bool
	offAt       time.Time // when an accepted power-off takes effect
	offDelay    time.Duration
	liar        bool
	unreachable bool
	authFailure bool
	fail        map[string]error
	now         func() time.Time
	info        ipmi.Info
	calls       []string
	closed      bool
}

var _ ipmi.BMC = (*Fake)(nil)

// New returns a Fake whose host is on, that answers everything at once.
func New() *Fake { return &Fake{on: true, now: time.Now, info: DefaultInfo} }

// SetOn sets the power state, as a host that is switched by hand; it
// drops a power-off that has not taken effect yet.
func (f *Fake) SetOn(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.on, f.offAt = on, time.Time{}
}

// On is the power state now, with a delayed power-off applied once its
// time has come.
func (f *Fake) On() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state()
}

// SetLiar makes PowerOff succeed without the power ever going off, as a
// BMC whose power control is broken: only the read-back tells.
func (f *Fake) SetLiar(liar bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.liar = liar
}

// SetOffDelay makes the power go off d after an accepted PowerOff, on the
// Fake's clock, as a host whose power supply takes a while.
func (f *Fake) SetOffDelay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.offDelay = d
}

// SetClock sets the clock the off delay is measured on (time.Now by
// default), so that tests move time instead of sleeping.
func (f *Fake) SetClock(now func() time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = now
}

// SetUnreachable makes every call fail as a BMC that does not answer: the
// error matches ipmi.ErrUnreachable. The call is recorded.
func (f *Fake) SetUnreachable(unreachable bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unreachable = unreachable
}

// SetAuthFailure makes every call but Close fail as a BMC that refuses the
// credentials: the error matches ipmi.ErrAuth.
func (f *Fake) SetAuthFailure(fail bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.authFailure = fail
}

// Fail makes every later call of op (OpStatus, OpOff, ...) fail with err,
// wrapped in an *ipmi.OpError as the driver wraps its errors; a nil err
// makes op succeed again.
func (f *Fake) Fail(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail == nil {
		f.fail = map[string]error{}
	}
	if err == nil {
		delete(f.fail, op)
		return
	}
	f.fail[op] = err
}

// SetInfo sets what Probe returns.
func (f *Fake) SetInfo(info ipmi.Info) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.info = info
}

// Calls returns the operations called so far, in order.
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// Count returns how many times op was called.
func (f *Fake) Count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == op {
			n++
		}
	}
	return n
}

// Closed reports whether Close was called.
func (f *Fake) Closed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// state applies a delayed power-off that is due; f.mu is held.
func (f *Fake) state() bool {
	if !f.offAt.IsZero() && !f.now().Before(f.offAt) {
		f.on, f.offAt = false, time.Time{}
	}
	return f.on
}

// begin records op and returns the error it must fail with, if any; f.mu
// is held.
func (f *Fake) begin(ctx context.Context, op string) error {
	f.calls = append(f.calls, op)
	var err error
	switch {
	case ctx.Err() != nil:
		err = ctx.Err()
	case f.closed && op != OpClose:
		err = ipmi.ErrClosed
	case f.unreachable:
		err = fmt.Errorf("%w: no answer (ipmitest)", ipmi.ErrUnreachable)
	case f.authFailure && op != OpClose:
		err = fmt.Errorf("%w: the password does not match (ipmitest)", ipmi.ErrAuth)
	case f.fail[op] != nil:
		err = f.fail[op]
	default:
		return nil
	}
	return &ipmi.OpError{Op: opNames[op], BMC: Addr, Err: err}
}

// PowerStatus returns the power state.
func (f *Fake) PowerStatus(ctx context.Context) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, OpStatus); err != nil {
		return false, err
	}
	return f.state(), nil
}

// PowerOff powers the host off: at once, after the off delay, or never
// for a liar.
func (f *Fake) PowerOff(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, OpOff); err != nil {
		return err
	}
	switch {
	case f.liar || !f.state() || !f.offAt.IsZero():
	case f.offDelay > 0:
		f.offAt = f.now().Add(f.offDelay)
	default:
		f.on = false
	}
	return nil
}

// PowerOn powers the host on at once, dropping a pending power-off.
func (f *Fake) PowerOn(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, OpOn); err != nil {
		return err
	}
	f.on, f.offAt = true, time.Time{}
	return nil
}

// PowerCycle leaves a host that is on, on; a host that is off refuses it
// with completion code D5h, as many BMCs do.
func (f *Fake) PowerCycle(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, OpCycle); err != nil {
		return err
	}
	if !f.state() {
		return &ipmi.OpError{Op: opNames[OpCycle], BMC: Addr, Err: &ipmi.CompletionError{
			Command: "Chassis Control", Code: 0xd5,
			Text: "Cannot execute command, command or request parameters not supported in present state",
		}}
	}
	return nil
}

// Probe returns the Info set with SetInfo (DefaultInfo at first).
func (f *Fake) Probe(ctx context.Context) (ipmi.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, OpProbe); err != nil {
		return ipmi.Info{}, err
	}
	return f.info, nil
}

// Close marks the Fake closed: later calls fail with ipmi.ErrClosed.
func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(context.Background(), OpClose); err != nil {
		return err
	}
	f.closed = true
	return nil
}
