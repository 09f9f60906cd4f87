package agentd

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-ha/vigil/drivers/ipmi"
)

// Self-fence methods (--self-fence).
const (
	// SelfFenceWatchdog leaves the self-fence to the watchdog: it resets
	// the host W after the last pet unless a renewal lands first.
	SelfFenceWatchdog = "watchdog"
	// SelfFenceOff powers the host off through its own BMC at once.
	SelfFenceOff = "ipmi-off"
	// SelfFenceReset hard-resets the host through its own BMC at once.
	SelfFenceReset = "ipmi-reset"
)

// localBMC is the host's own BMC as the self-fence uses it.
type localBMC interface {
	PowerOff(ctx context.Context) error
	HardReset(ctx context.Context) error
	Probe(ctx context.Context) (ipmi.Info, error)
	Close() error
}

// ownBMC says who this host's own BMC is, when the in-band device answers:
// for `vigil status` and the log. Nothing is powered.
func ownBMC(ctx context.Context, l localBMC) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := l.Probe(ctx)
	if err != nil {
		return "does not answer: " + err.Error()
	}
	return fmt.Sprintf("IPMI %s, firmware %s, manufacturer %d, product %d", info.IPMIVersion, info.FirmwareRevision, info.ManufacturerID, info.ProductID)
}

// openSelfFence opens the in-band BMC that method needs ("" or watchdog:
// none). Asked for and missing, the agent does not start.
func (d *daemon) openSelfFence(method, device string) error {
	switch method {
	case "", SelfFenceWatchdog:
		// Only say who this host's BMC is, if the device is there.
		if l, err := ipmi.OpenLocal(device, ipmi.LocalOptions{}); err == nil {
			d.ownBMC = ownBMC(context.Background(), l)
			l.Close()
		}
		return nil
	case SelfFenceOff, SelfFenceReset:
	default:
		return fmt.Errorf("agent: --self-fence %q: use %s, %s or %s", method, SelfFenceWatchdog, SelfFenceOff, SelfFenceReset)
	}
	l, err := ipmi.OpenLocal(device, ipmi.LocalOptions{})
	if err != nil {
		return fmt.Errorf("agent: --self-fence %s: %w (fix: load ipmi_si and ipmi_devintf, or use --self-fence %s)", method, err, SelfFenceWatchdog)
	}
	d.local = l
	d.ownBMC = ownBMC(context.Background(), l)
	d.log.Info("this host's BMC, for the self-fence", "component", "wd", "bmc", d.ownBMC, "device", l.Path())
	return nil
}

// selfFence powers the host off, or resets it, through its own BMC once the
// core says the host lost its entitlement, rather than waiting W for the
// watchdog: its VMs stop now. Peers' proof (c) does not count on it; it
// only shortens how long a host that lost its lease keeps running. Only a
// host that armed its watchdog (it was entitled) is fenced. Loop only.
func (d *daemon) selfFence() {
	if d.local != nil {
		d.selfFenceIf(d.node.Lapsed())
	}
}

// selfFenceIf acts once lapsed says the host lost its entitlement.
func (d *daemon) selfFenceIf(lapsed bool) {
	if d.local == nil || d.selfFenced || d.wd == nil || !lapsed {
		return
	}
	d.selfFenced = true
	reset := d.opts.SelfFence == SelfFenceReset
	d.log.Error("self-fencing through this host's BMC: its lease lapsed without a network majority",
		"component", "wd", "method", d.opts.SelfFence)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		if reset {
			err = d.local.HardReset(ctx)
		} else {
			err = d.local.PowerOff(ctx)
		}
		if err != nil {
			// The watchdog still resets the host.
			d.log.Error("the in-band self-fence failed: the watchdog resets the host", "component", "wd", "err", err)
		}
	}()
}
