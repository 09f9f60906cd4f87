package wdemu

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/drivers/watchdog"
)

// TestLabDevice drives the emulator through the driver the agent uses.
func TestLabDevice(t *testing.T) {
	l := startLab(t, "h1")
	spec := watchdog.LabPrefix + l.sock["h1"]
	d, err := watchdog.Open(spec)
	if err != nil {
		t.Fatal(err)
	}
	l.wantState("h1", true, DefaultTimeout, DefaultTimeout)

	if got, err := d.SetTimeout(1500 * time.Millisecond); err != nil || got != 2*time.Second {
		t.Fatalf("SetTimeout(1.5s) = %v, %v; want 2s", got, err)
	}
	if got, err := d.Timeout(); err != nil || got != 2*time.Second {
		t.Fatalf("Timeout() = %v, %v; want 2s", got, err)
	}
	l.clock.Advance(1500 * time.Millisecond)
	if got, err := d.TimeLeft(); err != nil || got != 500*time.Millisecond {
		t.Fatalf("TimeLeft() = %v, %v; want 500ms", got, err)
	}
	if err := d.Pet(); err != nil {
		t.Fatal(err)
	}
	if got, err := d.TimeLeft(); err != nil || got != 2*time.Second {
		t.Fatalf("TimeLeft() after Pet = %v, %v; want 2s", got, err)
	}
	if _, err := d.SetTimeout(0); err == nil {
		t.Error("SetTimeout(0) succeeded")
	}
	if _, err := d.SetTimeout(100000 * time.Second); err == nil || !strings.Contains(err.Error(), "invalid timeout") {
		t.Errorf("SetTimeout(100000s) = %v; want the emulator's refusal", err)
	}
	if err := d.Pet(); err != nil {
		t.Fatalf("Pet after a refused request: %v", err)
	}

	if d2, err := watchdog.Open(spec); !errors.Is(err, watchdog.ErrBusy) {
		if d2 != nil {
			d2.Close()
		}
		t.Fatalf("second Open = %v; want ErrBusy", err)
	}

	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	l.wantState("h1", false, 2*time.Second, 0) // Close returns once disarmed
	l.clock.Advance(time.Hour)
	l.noFire()
	if err := d.Pet(); !errors.Is(err, watchdog.ErrClosed) {
		t.Errorf("Pet after Close = %v; want ErrClosed", err)
	}
}

func TestLabDeviceAbandon(t *testing.T) {
	l := startLab(t, "h1")
	d, err := watchdog.Open(watchdog.LabPrefix + l.sock["h1"])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.SetTimeout(4 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := d.Abandon(); err != nil {
		t.Fatal(err)
	}
	l.waitLog("unexpected close")
	l.wantState("h1", true, 4*time.Second, 4*time.Second)
	l.clock.Advance(4 * time.Second)
	l.waitFire("h1")
	l.noFire()
}

// TestLabDeviceReset: when the emulator resets the host, the open device
// reports a broken connection and stays broken until opened again.
func TestLabDeviceReset(t *testing.T) {
	l := startLab(t, "h1")
	spec := watchdog.LabPrefix + l.sock["h1"]
	d, err := watchdog.Open(spec)
	if err != nil {
		t.Fatal(err)
	}
	l.clock.Advance(DefaultTimeout)
	l.waitFire("h1")
	err = d.Pet()
	if err == nil || !strings.Contains(err.Error(), spec) || !strings.Contains(err.Error(), "closed the connection") {
		t.Fatalf("Pet after the reset = %v; want an error naming %s and the closed connection", err, spec)
	}
	if err := d.Pet(); err == nil || !strings.Contains(err.Error(), "connection broken") {
		t.Errorf("second Pet = %v; want connection broken", err)
	}
	if err := d.Abandon(); err != nil {
		t.Errorf("Abandon of a broken device = %v", err)
	}
	d2, err := watchdog.Open(spec)
	if err != nil {
		t.Fatalf("reopen after the reset: %v", err)
	}
	if err := d2.Close(); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkLabDevicePet measures one pet of the lab device: a request and
// its answer over the unix socket, on the real clock.
func BenchmarkLabDevicePet(b *testing.B) {
	sock := b.TempDir() + "/h1.wd"
	s := New([]Host{{Name: "h1", Socket: sock}}, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Serve(ctx)
	<-s.Ready()
	d, err := watchdog.Open(watchdog.LabPrefix + sock)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	for b.Loop() {
		if err := d.Pet(); err != nil {
			b.Fatal(err)
		}
	}
}
