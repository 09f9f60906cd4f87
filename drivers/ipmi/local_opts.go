package ipmi

import "time"

// In-band defaults.
const (
	// DefaultDevice is the host's own BMC through the kernel's IPMI
	// driver (modules ipmi_si or ipmi_ssif, and ipmi_devintf).
	DefaultDevice = "/dev/ipmi0"
	// DefaultLocalTimeout bounds one in-band request; the kernel's system
	// interface driver retries by itself within it.
	DefaultLocalTimeout = 5 * time.Second
)

// LocalOptions tune OpenLocal. The zero value is the defaults.
type LocalOptions struct {
	// Timeout bounds each request (DefaultLocalTimeout when zero).
	Timeout time.Duration
}
