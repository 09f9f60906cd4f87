// Package watchdog drives the host's watchdog: a hardware device
// (/dev/watchdogN, the Linux watchdog API) or, in the lab, a device emulated
// behind a unix socket (see tools/lab/wdemu). Opening a device arms it; the
// agent then pets it only while the host is entitled to run its VMs.
//
//	d, err := watchdog.Open("/dev/watchdog0") // or "unix:/run/vigil/wd.sock"
//	if err != nil { ... }
//	took, err := d.SetTimeout(4 * time.Second) // whole seconds, rounded up
//	...
//	err = d.Pet()   // while the host is entitled to run its VMs
//	err = d.Close() // magic close: disarms (clean shutdown only)
//
// Abandon closes the device without disarming it, as a crashed agent would:
// the watchdog keeps counting and resets the host.
package watchdog

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Device is an open watchdog. Its methods are safe for concurrent use.
type Device interface {
	// SetTimeout sets the timeout, in whole seconds rounded up, restarts
	// the countdown and returns the timeout the device took (a device may
	// round it further).
	SetTimeout(d time.Duration) (time.Duration, error)
	// Timeout returns the current timeout.
	Timeout() (time.Duration, error)
	// Pet restarts the countdown.
	Pet() error
	// TimeLeft returns the time left before the device resets the host;
	// the error wraps ErrNotSupported when the device cannot tell.
	TimeLeft() (time.Duration, error)
	// Close disarms the watchdog (magic close) and closes the device.
	Close() error
	// Abandon closes the device without disarming it: the watchdog keeps
	// counting, as after a crash.
	Abandon() error
}

// LabPrefix starts a spec that names the lab's emulated device: "unix:PATH".
const LabPrefix = "unix:"

// Open opens and arms the watchdog named by spec: "unix:PATH" is the lab's
// emulated device served on the unix socket PATH; anything else is the path
// of a device node such as /dev/watchdog0. An error is an *OpError.
func Open(spec string) (Device, error) {
	if spec == "" {
		return nil, &OpError{Op: "open", Dev: spec, Err: errors.New("no device named"), Fix: "name a device such as /dev/watchdog0 or unix:PATH"}
	}
	if path, ok := strings.CutPrefix(spec, LabPrefix); ok {
		return openLab(spec, path)
	}
	return openHW(spec)
}

// ErrNotSupported is wrapped by errors of operations the device does not
// implement (many hardware watchdogs cannot report the time left).
var ErrNotSupported = errors.New("not supported by this watchdog")

// ErrBusy is wrapped by Open's error when another process holds the device
// open: a watchdog opens once.
var ErrBusy = errors.New("watchdog device is already open")

// ErrClosed is wrapped by the errors of calls on a closed or abandoned
// Device.
var ErrClosed = errors.New("watchdog device is closed")

// OpError is the error of one operation on one device.
type OpError struct {
	Op  string // open, settimeout, timeout, pet, timeleft, close, abandon
	Dev string // the spec the device was opened with
	Err error  // the cause
	Fix string // what the operator can do about it, if known
}

func (e *OpError) Error() string {
	s := "watchdog: " + e.Op + " " + e.Dev + ": " + e.Err.Error()
	if e.Fix != "" {
		s += " (" + e.Fix + ")"
	}
	return s
}

// Unwrap returns the cause.
func (e *OpError) Unwrap() error { return e.Err }

// maxSeconds is the largest timeout the API can carry (a C int of seconds).
const maxSeconds = math.MaxInt32

// seconds converts a timeout to whole seconds, rounding up.
func seconds(d time.Duration) (int, error) {
	if d <= 0 {
		return 0, fmt.Errorf("timeout %v is not positive: give at least 1s", d)
	}
	s := d / time.Second
	if d%time.Second != 0 {
		s++
	}
	if s > maxSeconds {
		return 0, fmt.Errorf("timeout %v is longer than %ds: give a shorter one", d, maxSeconds)
	}
	return int(s), nil
}
