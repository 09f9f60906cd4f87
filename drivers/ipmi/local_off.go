//go:build vigil_noipmilocal

package ipmi

import (
	"context"

	"github.com/vigil-ha/vigil/firmware/features"
)

// Local would be the host's own BMC through the kernel's IPMI device: this
// binary was built without CONFIG_IPMI_LOCAL, and every call fails with an
// error matching features.ErrNotBuilt.
type Local struct{ path string }

var _ BMC = (*Local)(nil)

// OpenLocal fails: the binary was built without the in-band driver.
func OpenLocal(path string, opts LocalOptions) (*Local, error) {
	if path == "" {
		path = DefaultDevice
	}
	return nil, (&Local{path: path}).err("open")
}

func (l *Local) err(op string) error {
	return &OpError{Op: op, BMC: l.path, Err: features.NotBuilt("IPMI_LOCAL")}
}

// Path is the device's path.
func (l *Local) Path() string { return l.path }

// PowerStatus fails: the binary was built without the in-band driver.
func (l *Local) PowerStatus(ctx context.Context) (bool, error) { return false, l.err("power status") }

// PowerOff fails: the binary was built without the in-band driver.
func (l *Local) PowerOff(ctx context.Context) error { return l.err("power off") }

// PowerOn fails: the binary was built without the in-band driver.
func (l *Local) PowerOn(ctx context.Context) error { return l.err("power on") }

// PowerCycle fails: the binary was built without the in-band driver.
func (l *Local) PowerCycle(ctx context.Context) error { return l.err("power cycle") }

// HardReset fails: the binary was built without the in-band driver.
func (l *Local) HardReset(ctx context.Context) error { return l.err("hard reset") }

// Probe fails: the binary was built without the in-band driver.
func (l *Local) Probe(ctx context.Context) (Info, error) { return Info{}, l.err("probe") }

// Close does nothing.
func (l *Local) Close() error { return nil }
