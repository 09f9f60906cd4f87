package itest

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/tools/qemu"
)

// deadline bounds a test's QEMU time: boots under software emulation take
// a few seconds, several at once on two CPUs take longer.
const deadline = 90 * time.Second

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	t.Cleanup(cancel)
	return ctx
}

// TestFirmware boots one image: vigil runs as the firmware, answers
// status on the serial console, and arms the i6300esb with the cluster's
// watchdog timeout.
func TestFirmware(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := testContext(t)
	c := newCluster(1)
	fs := c.write(t, f, t.TempDir())
	vm := boot(t, ctx, f, fs, "h1", nil)

	t.Run("status", func(t *testing.T) {
		status := waitAgent(t, ctx, vm, "h1")
		// A one-host cluster with its lease on ds0 is healthy once it
		// joined; it may still be starting on the first answer.
		if !regexp.MustCompile(`host h1: (starting|healthy),`).MatchString(status) {
			t.Errorf("status does not say h1 is starting or healthy:\n%s", status)
		}
		if l, ok := vm.Serial.FindLine("agent started"); ok {
			t.Logf("agent started %.2fs after QEMU started", l.At.Seconds())
		}
	})

	t.Run("watchdog", func(t *testing.T) {
		W := time.Duration(c.timing.WatchdogTimeout)
		// The agent arms the watchdog once its lease is fresh, and says so.
		armed, err := vm.Serial.WaitLine(ctx, "arming watchdog")
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("(%dms)", W.Milliseconds()); !strings.Contains(armed.Text, want) {
			t.Errorf("the agent armed the watchdog with another timeout than the cluster's %v: %q", W, armed.Text)
		}
		rep, err := vm.Serial.Command(ctx, "watchdog")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(rep, "/dev/watchdog") || !strings.Contains(rep, W.String()) {
			t.Errorf("console watchdog does not show /dev/watchdog with the timeout %v:\n%s", W, rep)
		}
		for _, e := range vm.QMP.Events() {
			if e.Name == "WATCHDOG" || e.Name == "RESET" {
				t.Errorf("QEMU reported %s while the host held its lease", e.Name)
			}
		}
	})
}

// TestLeaseLossWatchdogReset unplugs the datastore of a host that holds its
// lease and hears no network majority: the host stops petting once its
// lease lapses (L after its last counted renewal), and the i6300esb resets
// it W later. QEMU's WATCHDOG event must come within L + W + slack of the
// unplug, and not before W.
func TestLeaseLossWatchdogReset(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := testContext(t)
	// Two hosts, h2 never booted: h1 alone is no network majority, so only
	// its lease entitles it.
	c := newCluster(2)
	fs := c.write(t, f, t.TempDir())
	vm := boot(t, ctx, f, fs, "h1", nil)
	if _, err := vm.Serial.WaitLine(ctx, "arming watchdog"); err != nil {
		t.Fatal(err)
	}
	removed, err := vm.RemoveDrive(ctx, "ds0")
	if err != nil {
		t.Fatalf("unplug the datastore: %v", err)
	}
	ev, err := vm.QMP.WaitEvent(ctx, "WATCHDOG", removed)
	if err != nil {
		t.Fatalf("no WATCHDOG event after the datastore was unplugged: %v", err)
	}
	took := ev.Received.Sub(removed)
	tm := c.timing
	L, W := time.Duration(tm.LeaseTimeout), time.Duration(tm.WatchdogTimeout)
	// The slack: the margin the cluster allows for scheduling, plus one
	// datastore interval, the step at which the agent sees its renewals
	// fail.
	slack := time.Duration(tm.Margin) + time.Duration(tm.DatastoreInterval)
	if took > L+W+slack || took < W {
		t.Errorf("WATCHDOG %v after the unplug: want between W (%v) and L + W + slack (%v + %v + %v)", took, W, L, W, slack)
	}
	if l, ok := vm.Serial.FindLine("lease lapsed"); ok {
		t.Logf("unplug -> lease lapsed %v -> WATCHDOG %v (L %v, W %v, slack %v)",
			at(vm, l).Sub(removed).Round(time.Millisecond), ev.Received.Sub(at(vm, l)).Round(time.Millisecond), L, W, slack)
	} else {
		t.Errorf("the agent did not log that its lease lapsed")
	}
}

// TestSelfFenceIPMI asks the console to fence the host with --self-fence
// ipmi-off: the agent powers the host off through /dev/ipmi0, and QEMU's
// ipmi-bmc-sim powers the VM off.
func TestSelfFenceIPMI(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := testContext(t)
	fs := newCluster(1).write(t, f, t.TempDir())
	vm := boot(t, ctx, f, fs, "h1", nil, "--self-fence=ipmi-off")
	waitAgent(t, ctx, vm, "h1")
	vm.Serial.Skip()
	if err := vm.Serial.Send("fence-self"); err != nil {
		t.Fatal(err)
	}
	if _, err := vm.Serial.Expect(ctx, "type the host name to confirm:"); err != nil {
		t.Fatal(err)
	}
	asked := time.Now()
	if err := vm.Serial.Send("h1"); err != nil {
		t.Fatal(err)
	}
	ev, err := vm.QMP.WaitEvent(ctx, "SHUTDOWN", asked)
	if err != nil {
		t.Fatalf("QEMU did not power the VM off: %v", err)
	}
	if err := vm.Wait(ctx); err != nil {
		t.Errorf("QEMU exited with %v after the power-off, want success", err)
	}
	for _, e := range vm.QMP.Events() {
		if e.Name == "WATCHDOG" {
			t.Errorf("the watchdog fired: the power-off should have come first")
		}
	}
	t.Logf("powered off %v after the confirmation (%s)", ev.Received.Sub(asked).Round(time.Millisecond), ev.Data)
}

// TestTwoHostsHeartbeats boots two images on one QEMU network with a
// shared datastore disk: each host's peers shows the other alive. h1 gets
// its cluster on the kernel command line, h2 from a config disk.
func TestTwoHostsHeartbeats(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := testContext(t)
	dir := t.TempDir()
	fs := newCluster(2).write(t, f, dir)
	n := network(t)
	vms := []*qemu.VM{
		boot(t, ctx, f, fs, "h1", []*qemu.Network{n}),
		start(t, ctx, f, "h2", qemu.Options{NICs: []*qemu.Network{n}, Drives: []qemu.Drive{
			{ID: "ds0", Serial: "ds0", File: fs.datastore, Shared: true},
			{ID: "cfg", Serial: "vigil-config", File: fs.configDisk(t, dir, "h2"), ReadOnly: true},
		}}),
	}
	// Heartbeats cross the network: the hub sees one from each host.
	for i := range vms {
		src := netip.MustParseAddr(hostAddr(i + 1))
		if _, err := n.WaitFrame(ctx, time.Time{}, func(fr qemu.Frame) bool {
			s, d, _, ok := fr.UDP()
			return ok && s.Addr() == src && d.Port() == port
		}); err != nil {
			t.Fatalf("no heartbeat from %s on the network: %v", hostName(i+1), err)
		}
	}
	for i, vm := range vms {
		me, other := hostName(i+1), hostName(2-i)
		waitAgent(t, ctx, vm, me)
		alive := regexp.MustCompile(`(?m)^` + other + `\s+alive\b`)
		tick := time.NewTicker(time.Second)
		for {
			rep, err := vm.Serial.Command(ctx, "peers")
			if err != nil {
				t.Fatal(err)
			}
			if alive.MatchString(rep) {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s never saw %s alive; peers says:\n%s", me, other, rep)
			case <-tick.C:
			}
		}
		tick.Stop()
	}
}
