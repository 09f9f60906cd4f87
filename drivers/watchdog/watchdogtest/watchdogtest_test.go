package watchdogtest

import (
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/drivers/watchdog"
)

func TestDevice(t *testing.T) {
	tests := []struct {
		name      string
		run       func(d *Device) error
		calls     string
		pets      int
		timeouts  []time.Duration
		closed    bool
		abandoned bool
		errIs     error
	}{
		{
			name:     "pets and a timeout",
			run:      func(d *Device) error { d.SetTimeout(1500 * time.Millisecond); d.Pet(); return d.Pet() },
			calls:    "settimeout 1.5s,pet,pet",
			pets:     2,
			timeouts: []time.Duration{2 * time.Second},
		},
		{
			name:   "magic close",
			run:    func(d *Device) error { d.Pet(); d.Close(); return d.Pet() },
			calls:  "pet,close,pet",
			pets:   1,
			closed: true,
			errIs:  watchdog.ErrClosed,
		},
		{
			name:      "abandon",
			run:       func(d *Device) error { return d.Abandon() },
			calls:     "abandon",
			abandoned: true,
		},
		{
			name:  "injected failure",
			run:   func(d *Device) error { d.Fail(OpPet, syscall.EIO); return d.Pet() },
			calls: "pet",
			errIs: syscall.EIO,
		},
		{
			name:  "failure cleared",
			run:   func(d *Device) error { d.Fail(OpPet, syscall.EIO); d.Pet(); d.Fail(OpPet, nil); return d.Pet() },
			calls: "pet,pet",
			pets:  1,
		},
		{
			name:  "time left unsupported",
			run:   func(d *Device) error { _, err := d.TimeLeft(); return err },
			calls: "timeleft",
			errIs: watchdog.ErrNotSupported,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d Device
			err := tc.run(&d)
			if tc.errIs == nil && err != nil || tc.errIs != nil && !errors.Is(err, tc.errIs) {
				t.Errorf("last call = %v; want %v", err, tc.errIs)
			}
			if got := strings.Join(d.Calls(), ","); got != tc.calls {
				t.Errorf("calls %s; want %s", got, tc.calls)
			}
			if d.Pets() != tc.pets || d.Closed() != tc.closed || d.Abandoned() != tc.abandoned || d.Armed() == tc.closed {
				t.Errorf("pets %d closed %v abandoned %v armed %v; want %d %v %v", d.Pets(), d.Closed(), d.Abandoned(), d.Armed(), tc.pets, tc.closed, tc.abandoned)
			}
			if got := d.Timeouts(); len(got) != len(tc.timeouts) || len(got) > 0 && got[0] != tc.timeouts[0] {
				t.Errorf("timeouts %v; want %v", got, tc.timeouts)
			}
		})
	}
}

func TestOnPetAndTimeLeft(t *testing.T) {
	d := New()
	petted := make(chan struct{}, 1)
	d.OnPet(func() { petted <- struct{}{} })
	if err := d.Pet(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-petted:
	default:
		t.Error("OnPet not called")
	}
	d.SetTimeLeft(3 * time.Second)
	if left, err := d.TimeLeft(); err != nil || left != 3*time.Second {
		t.Errorf("TimeLeft() = %v, %v; want 3s", left, err)
	}
	if to, err := d.Timeout(); err != nil || to != DefaultTimeout {
		t.Errorf("Timeout() = %v, %v; want %v", to, err, DefaultTimeout)
	}
}
