package agentd

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-ha/vigil/drivers/ipmi"
	"github.com/vigil-ha/vigil/drivers/watchdog/watchdogtest"
)

// fakeLocal is a host's own BMC that records what it was asked.
type fakeLocal struct {
	mu    sync.Mutex
	calls []string
	err   error
	done  chan struct{}
}

func (f *fakeLocal) record(op string) error {
	f.mu.Lock()
	f.calls = append(f.calls, op)
	f.mu.Unlock()
	close(f.done)
	return f.err
}
func (f *fakeLocal) PowerOff(context.Context) error  { return f.record("off") }
func (f *fakeLocal) HardReset(context.Context) error { return f.record("reset") }
func (f *fakeLocal) Close() error                    { return nil }
func (f *fakeLocal) Probe(context.Context) (ipmi.Info, error) {
	return ipmi.Info{IPMIVersion: "2.0", FirmwareRevision: "1.2", ManufacturerID: 343, ProductID: 7}, nil
}

func TestOwnBMC(t *testing.T) {
	if got := ownBMC(context.Background(), &fakeLocal{}); got != "IPMI 2.0, firmware 1.2, manufacturer 343, product 7" {
		t.Errorf("ownBMC = %q", got)
	}
}

// TestSelfFence: a host that lost its entitlement powers itself off (or
// resets) through its own BMC once, and only if it had armed its watchdog.
func TestSelfFence(t *testing.T) {
	for _, method := range []string{SelfFenceOff, SelfFenceReset} {
		t.Run(method, func(t *testing.T) {
			var logs strings.Builder
			f := &fakeLocal{done: make(chan struct{})}
			d := &daemon{opts: Options{SelfFence: method}, local: f, log: slog.New(slog.NewTextHandler(&logs, nil))}
			d.selfFenceIf(true)
			if d.selfFenced {
				t.Fatal("a host that never armed its watchdog fenced itself")
			}
			d.wd = watchdogtest.New()
			d.selfFenceIf(false)
			if d.selfFenced {
				t.Fatal("an entitled host fenced itself")
			}
			d.selfFenceIf(true)
			<-f.done
			d.selfFenceIf(true) // once only
			want := map[string]string{SelfFenceOff: "off", SelfFenceReset: "reset"}[method]
			f.mu.Lock()
			defer f.mu.Unlock()
			if strings.Join(f.calls, ",") != want {
				t.Errorf("calls %v, want [%s]", f.calls, want)
			}
			if !strings.Contains(logs.String(), "self-fencing through this host's BMC") {
				t.Errorf("the self-fence was not logged:\n%s", logs.String())
			}
		})
	}
}

func TestOpenSelfFence(t *testing.T) {
	d := &daemon{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, m := range []string{"", SelfFenceWatchdog} {
		if err := d.openSelfFence(m, "/nonexistent"); err != nil || d.local != nil {
			t.Errorf("%q: %v; want the watchdog alone", m, err)
		}
	}
	if err := d.openSelfFence("reboot", ""); err == nil || !strings.Contains(err.Error(), "use watchdog, ipmi-off or ipmi-reset") {
		t.Errorf("a bad method: %v", err)
	}
	dev := filepath.Join(t.TempDir(), "ipmi0")
	if err := d.openSelfFence(SelfFenceOff, dev); err == nil || !strings.Contains(err.Error(), "ipmi_devintf") {
		t.Errorf("a missing device: %v; want the fix named", err)
	}
}
