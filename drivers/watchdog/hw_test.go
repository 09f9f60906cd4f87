//go:build !vigil_nowatchdoghw

package watchdog

import (
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeSys is the syscalls seam in memory: a device that takes timeouts in
// steps of step seconds and records every call.
type fakeSys struct {
	step    int
	timeout int
	left    int
	calls   []string
	errs    map[string]error // by call name
}

func newFake() *fakeSys { return &fakeSys{step: 1, timeout: 60, left: 60, errs: map[string]error{}} }

func (f *fakeSys) call(name string) error {
	f.calls = append(f.calls, name)
	return f.errs[name]
}

func (f *fakeSys) setTimeout(s int) (int, error) {
	if err := f.call("settimeout"); err != nil {
		return 0, err
	}
	f.timeout = (s + f.step - 1) / f.step * f.step
	f.left = f.timeout
	return f.timeout, nil
}

func (f *fakeSys) getTimeout() (int, error)  { return f.timeout, f.call("gettimeout") }
func (f *fakeSys) getTimeLeft() (int, error) { return f.left, f.call("gettimeleft") }
func (f *fakeSys) keepalive() error          { return f.call("keepalive") }
func (f *fakeSys) close() error              { return f.call("close") }

func (f *fakeSys) write(b []byte) error { return f.call("write " + string(b)) }

const path = "/dev/watchdog7"

func TestSetTimeoutRounds(t *testing.T) {
	tests := []struct {
		name    string
		step    int
		in      time.Duration
		want    time.Duration
		wantSec string // the call the device saw
		wantErr string
	}{
		{name: "whole seconds", step: 1, in: 4 * time.Second, want: 4 * time.Second},
		{name: "fraction rounds up", step: 1, in: 1500 * time.Millisecond, want: 2 * time.Second},
		{name: "one nanosecond is one second", step: 1, in: time.Nanosecond, want: time.Second},
		{name: "device rounds further", step: 5, in: 6 * time.Second, want: 10 * time.Second},
		{name: "zero refused", step: 1, in: 0, wantErr: "not positive"},
		{name: "negative refused", step: 1, in: -time.Second, wantErr: "not positive"},
		{name: "too long refused", step: 1, in: 1 << 62, wantErr: "longer than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.step = tc.step
			d := &hwDevice{path: path, sys: f}
			got, err := d.SetTimeout(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("SetTimeout(%v) = %v, %v; want an error naming %s and %q", tc.in, got, err, path, tc.wantErr)
				}
				if len(f.calls) != 0 {
					t.Errorf("device saw %v; want no call", f.calls)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("SetTimeout(%v) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
			if now, err := d.Timeout(); err != nil || now != tc.want {
				t.Errorf("Timeout() = %v, %v; want %v", now, err, tc.want)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	errno := func(call string, e syscall.Errno) func(*fakeSys) {
		return func(f *fakeSys) { f.errs[call] = e }
	}
	tests := []struct {
		name   string
		setup  func(*fakeSys)
		run    func(d *hwDevice) error
		is     []error
		op     string
		substr string
	}{
		{
			name:  "time left not supported",
			setup: errno("gettimeleft", syscall.EOPNOTSUPP),
			run:   func(d *hwDevice) error { _, err := d.TimeLeft(); return err },
			is:    []error{ErrNotSupported, syscall.EOPNOTSUPP},
			op:    "timeleft",
		},
		{
			name:  "not a watchdog",
			setup: errno("keepalive", syscall.ENOTTY),
			run:   func(d *hwDevice) error { return d.Pet() },
			is:    []error{ErrNotSupported, syscall.ENOTTY},
			op:    "pet",
		},
		{
			name:  "pet fails",
			setup: errno("keepalive", syscall.EIO),
			run:   func(d *hwDevice) error { return d.Pet() },
			is:    []error{syscall.EIO},
			op:    "pet",
		},
		{
			name:  "timeout not settable",
			setup: errno("settimeout", syscall.EOPNOTSUPP),
			run:   func(d *hwDevice) error { _, err := d.SetTimeout(time.Second); return err },
			is:    []error{ErrNotSupported},
			op:    "settimeout",
		},
		{
			name:   "magic write fails",
			setup:  errno("write V", syscall.EIO),
			run:    func(d *hwDevice) error { return d.Close() },
			is:     []error{syscall.EIO},
			op:     "close",
			substr: "stays armed",
		},
		{
			name:  "pet after close",
			setup: func(*fakeSys) {},
			run: func(d *hwDevice) error {
				if err := d.Close(); err != nil {
					return err
				}
				return d.Pet()
			},
			is: []error{ErrClosed},
			op: "pet",
		},
		{
			name:  "abandon after close",
			setup: func(*fakeSys) {},
			run: func(d *hwDevice) error {
				if err := d.Close(); err != nil {
					return err
				}
				return d.Abandon()
			},
			is: []error{ErrClosed},
			op: "abandon",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			tc.setup(f)
			err := tc.run(&hwDevice{path: path, sys: f})
			if err == nil {
				t.Fatal("no error")
			}
			for _, target := range tc.is {
				if !errors.Is(err, target) {
					t.Errorf("error %q is not %v", err, target)
				}
			}
			var oe *OpError
			if !errors.As(err, &oe) || oe.Op != tc.op || oe.Dev != path {
				t.Errorf("error %q: want an *OpError for %s on %s", err, tc.op, path)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.substr) {
				t.Errorf("error %q does not name %s and %q", err, path, tc.substr)
			}
		})
	}
}

func TestCloseAndAbandon(t *testing.T) {
	tests := []struct {
		name  string
		run   func(d *hwDevice) error
		calls []string
	}{
		{name: "close writes the magic character", run: (*hwDevice).Close, calls: []string{"write V", "close"}},
		{name: "abandon does not", run: (*hwDevice).Abandon, calls: []string{"close"}},
		{name: "close after a failed magic write still closes", run: func(d *hwDevice) error {
			d.sys.(*fakeSys).errs["write V"] = syscall.EIO
			d.Close()
			return nil
		}, calls: []string{"write V", "close"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			d := &hwDevice{path: path, sys: f}
			if err := d.Pet(); err != nil {
				t.Fatal(err)
			}
			if err := tc.run(d); err != nil {
				t.Fatal(err)
			}
			got := strings.Join(f.calls[1:], ",")
			if want := strings.Join(tc.calls, ","); got != want {
				t.Errorf("device calls after pet = %s; want %s", got, want)
			}
			if err := d.Pet(); !errors.Is(err, ErrClosed) {
				t.Errorf("Pet after release = %v; want ErrClosed", err)
			}
		})
	}
}

func TestTimeLeft(t *testing.T) {
	f := newFake()
	f.left = 3
	d := &hwDevice{path: path, sys: f}
	if got, err := d.TimeLeft(); err != nil || got != 3*time.Second {
		t.Fatalf("TimeLeft() = %v, %v; want 3s", got, err)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		is   error
	}{
		{name: "busy", err: syscall.EBUSY, is: ErrBusy},
		{name: "no ioctl", err: syscall.ENOTTY, is: ErrNotSupported},
		{name: "no op", err: syscall.EOPNOTSUPP, is: ErrNotSupported},
		{name: "other kept", err: syscall.EIO, is: syscall.EIO},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(tc.err)
			if !errors.Is(got, tc.is) || !errors.Is(got, tc.err) {
				t.Errorf("classify(%v) = %v; want it to be %v and %v", tc.err, got, tc.is, tc.err)
			}
		})
	}
}
