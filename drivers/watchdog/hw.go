//go:build !vigil_nowatchdoghw

package watchdog

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

// syscalls is the Linux watchdog API on one open device node: the seam
// between the device logic (hwDevice) and the kernel, faked in tests.
type syscalls interface {
	// setTimeout is WDIOC_SETTIMEOUT: it returns the seconds the device took.
	setTimeout(s int) (int, error)
	// getTimeout is WDIOC_GETTIMEOUT, in seconds.
	getTimeout() (int, error)
	// getTimeLeft is WDIOC_GETTIMELEFT, in seconds.
	getTimeLeft() (int, error)
	// keepalive is WDIOC_KEEPALIVE.
	keepalive() error
	// write writes to the device (the magic close character).
	write(b []byte) error
	// close closes the file descriptor.
	close() error
}

// magic is the character that, written before close, disarms the watchdog.
var magic = []byte("V")

// hwDevice is a device node driven through the Linux watchdog API.
type hwDevice struct {
	path string

	mu  sync.Mutex
	sys syscalls // nil once closed or abandoned
}

var _ Device = (*hwDevice)(nil)

func (d *hwDevice) op(op string, err error) error {
	if err == nil {
		return nil
	}
	return &OpError{Op: op, Dev: d.path, Err: classify(err)}
}

// do runs f on the open device, or fails with ErrClosed.
func (d *hwDevice) do(op string, f func(sys syscalls) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sys == nil {
		return &OpError{Op: op, Dev: d.path, Err: ErrClosed, Fix: "open the device again"}
	}
	return d.op(op, f(d.sys))
}

func (d *hwDevice) SetTimeout(t time.Duration) (time.Duration, error) {
	s, err := seconds(t)
	if err != nil {
		return 0, &OpError{Op: "settimeout", Dev: d.path, Err: err}
	}
	var took int
	err = d.do("settimeout", func(sys syscalls) (err error) {
		took, err = sys.setTimeout(s)
		return err
	})
	return time.Duration(took) * time.Second, err
}

func (d *hwDevice) Timeout() (time.Duration, error) {
	var s int
	err := d.do("timeout", func(sys syscalls) (err error) {
		s, err = sys.getTimeout()
		return err
	})
	return time.Duration(s) * time.Second, err
}

func (d *hwDevice) Pet() error {
	return d.do("pet", func(sys syscalls) error { return sys.keepalive() })
}

func (d *hwDevice) TimeLeft() (time.Duration, error) {
	var s int
	err := d.do("timeleft", func(sys syscalls) (err error) {
		s, err = sys.getTimeLeft()
		return err
	})
	return time.Duration(s) * time.Second, err
}

// Close writes the magic character and closes the device. The descriptor is
// closed even when the write fails; the watchdog then stays armed.
func (d *hwDevice) Close() error {
	return d.release("close", true)
}

// Abandon closes the descriptor without the magic character.
func (d *hwDevice) Abandon() error {
	return d.release("abandon", false)
}

func (d *hwDevice) release(op string, disarm bool) error {
	return d.do(op, func(sys syscalls) error {
		d.sys = nil
		var werr error
		if disarm {
			if werr = sys.write(magic); werr != nil {
				werr = fmt.Errorf("magic close failed, the watchdog stays armed: %w", werr)
			}
		}
		return errors.Join(werr, sys.close())
	})
}

// openHW opens and arms the device node at path.
func openHW(path string) (Device, error) {
	sys, err := openSys(path)
	if err != nil {
		return nil, &OpError{Op: "open", Dev: path, Err: classify(err), Fix: openFix(err)}
	}
	return &hwDevice{path: path, sys: sys}, nil
}

// classify adds the package's sentinels to kernel errors callers branch on.
func classify(err error) error {
	switch {
	case errors.Is(err, syscall.ENOTTY), errors.Is(err, syscall.EOPNOTSUPP), errors.Is(err, syscall.ENOSYS):
		return fmt.Errorf("%w: %w", ErrNotSupported, err)
	case errors.Is(err, syscall.EBUSY):
		return fmt.Errorf("%w: %w", ErrBusy, err)
	}
	return err
}

// openFix says what an operator can do about a failed open.
func openFix(err error) string {
	switch {
	case errors.Is(err, ErrBusy), errors.Is(err, syscall.EBUSY):
		return "another process holds the watchdog open: stop any watchdog daemon (watchdog, wdmd, systemd RuntimeWatchdogSec)"
	case errors.Is(err, os.ErrNotExist):
		return "load the watchdog's driver module (e.g. i6300esb, iTCO_wdt, softdog) or name the right device in the cluster file"
	case errors.Is(err, os.ErrPermission):
		return "run the agent as root"
	}
	return ""
}
