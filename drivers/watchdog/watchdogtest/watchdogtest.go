// Package watchdogtest provides an in-memory watchdog.Device for tests of
// code that pets a watchdog.
//
//	d := watchdogtest.New()
//	agent := newAgent(d)
//	...
//	if d.Pets() == 0 { t.Error("the watchdog was never petted") }
//	if !d.Closed() { t.Error("a clean shutdown must disarm the watchdog") }
package watchdogtest

import (
	"fmt"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/drivers/watchdog"
)

// DefaultTimeout is the timeout of a new Device, as the Linux default of
// many drivers.
const DefaultTimeout = 60 * time.Second

// Device records what is done to it. The zero value is ready, with
// DefaultTimeout; its methods are safe for concurrent use.
type Device struct {
	mu        sync.Mutex
	timeout   time.Duration
	left      time.Duration // 0: TimeLeft is not supported
	pets      int
	timeouts  []time.Duration
	calls     []string
	closed    bool
	abandoned bool
	fail      map[string]error
	onPet     func()
}

var _ watchdog.Device = (*Device)(nil)

// New returns a Device with DefaultTimeout.
func New() *Device { return &Device{} }

// Ops are the operation names Fail and Calls use.
const (
	OpSetTimeout = "settimeout"
	OpTimeout    = "timeout"
	OpPet        = "pet"
	OpTimeLeft   = "timeleft"
	OpClose      = "close"
	OpAbandon    = "abandon"
)

// Fail makes every later call of op return err (wrapped as the real driver
// wraps it); a nil err makes op succeed again.
func (d *Device) Fail(op string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail == nil {
		d.fail = map[string]error{}
	}
	if err == nil {
		delete(d.fail, op)
		return
	}
	d.fail[op] = err
}

// SetTimeLeft makes TimeLeft report left; zero makes it unsupported again.
func (d *Device) SetTimeLeft(left time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.left = left
}

// OnPet sets a function called (without the Device's lock) after each
// successful Pet, for tests that wait for a pet on a channel.
func (d *Device) OnPet(f func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.onPet = f
}

// begin records op and returns the error it must fail with, if any.
func (d *Device) begin(op, call string) error {
	d.calls = append(d.calls, call)
	if err := d.fail[op]; err != nil {
		return &watchdog.OpError{Op: op, Dev: "watchdogtest", Err: err}
	}
	if d.closed || d.abandoned {
		return &watchdog.OpError{Op: op, Dev: "watchdogtest", Err: watchdog.ErrClosed}
	}
	return nil
}

// SetTimeout records the timeout, rounded up to whole seconds.
func (d *Device) SetTimeout(t time.Duration) (time.Duration, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.begin(OpSetTimeout, fmt.Sprintf("%s %v", OpSetTimeout, t)); err != nil {
		return 0, err
	}
	if t <= 0 {
		return 0, &watchdog.OpError{Op: OpSetTimeout, Dev: "watchdogtest", Err: fmt.Errorf("timeout %v is not positive", t)}
	}
	if r := t % time.Second; r != 0 {
		t += time.Second - r
	}
	d.timeout = t
	d.timeouts = append(d.timeouts, t)
	return t, nil
}

// Timeout returns the last timeout set, or DefaultTimeout.
func (d *Device) Timeout() (time.Duration, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.begin(OpTimeout, OpTimeout); err != nil {
		return 0, err
	}
	if d.timeout == 0 {
		return DefaultTimeout, nil
	}
	return d.timeout, nil
}

// Pet counts a pet.
func (d *Device) Pet() error {
	d.mu.Lock()
	if err := d.begin(OpPet, OpPet); err != nil {
		d.mu.Unlock()
		return err
	}
	d.pets++
	f := d.onPet
	d.mu.Unlock()
	if f != nil {
		f()
	}
	return nil
}

// TimeLeft returns what SetTimeLeft set, or an error wrapping
// watchdog.ErrNotSupported.
func (d *Device) TimeLeft() (time.Duration, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.begin(OpTimeLeft, OpTimeLeft); err != nil {
		return 0, err
	}
	if d.left == 0 {
		return 0, &watchdog.OpError{Op: OpTimeLeft, Dev: "watchdogtest", Err: watchdog.ErrNotSupported}
	}
	return d.left, nil
}

// Close records a magic close.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.begin(OpClose, OpClose); err != nil {
		return err
	}
	d.closed = true
	return nil
}

// Abandon records a close without the magic character.
func (d *Device) Abandon() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.begin(OpAbandon, OpAbandon); err != nil {
		return err
	}
	d.abandoned = true
	return nil
}

// Pets returns the number of successful pets.
func (d *Device) Pets() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pets
}

// Timeouts returns every timeout set, in order.
func (d *Device) Timeouts() []time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]time.Duration(nil), d.timeouts...)
}

// Closed reports whether the device was disarmed by a magic close.
func (d *Device) Closed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closed
}

// Abandoned reports whether the device was closed without disarming.
func (d *Device) Abandoned() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.abandoned
}

// Armed reports whether the device still counts: neither closed nor
// abandoned devices are petted, but only a closed one is disarmed.
func (d *Device) Armed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.closed
}

// Calls returns every call made, failed ones included, in order, as
// "settimeout 4s", "pet", "close" and so on.
func (d *Device) Calls() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.calls...)
}
