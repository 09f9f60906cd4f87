//go:build vigil_noipmilan

package ipmi

import (
	"context"

	"github.com/vigil-ha/vigil/firmware/features"
)

// LAN would be a BMC reached over the network: this binary was built
// without CONFIG_IPMI_LAN, and every call fails with an error matching
// features.ErrNotBuilt.
type LAN struct{ addr string }

var _ BMC = (*LAN)(nil)

// DialLAN fails: the binary was built without IPMI over LAN.
func DialLAN(ctx context.Context, addr string, cred Credentials, opts LANOptions) (*LAN, error) {
	return nil, (&LAN{addr: addr}).err("connect")
}

// CheckCipherSuite fails: the binary was built without IPMI over LAN.
func CheckCipherSuite(id int) error { return features.NotBuilt("IPMI_LAN") }

func (l *LAN) err(op string) error {
	return &OpError{Op: op, BMC: l.addr, Err: features.NotBuilt("IPMI_LAN")}
}

// Addr is the BMC's address.
func (l *LAN) Addr() string { return l.addr }

// CipherSuite is 0: there is no session.
func (l *LAN) CipherSuite() int { return 0 }

// PowerStatus fails: the binary was built without IPMI over LAN.
func (l *LAN) PowerStatus(ctx context.Context) (bool, error) { return false, l.err("power status") }

// PowerOff fails: the binary was built without IPMI over LAN.
func (l *LAN) PowerOff(ctx context.Context) error { return l.err("power off") }

// PowerOn fails: the binary was built without IPMI over LAN.
func (l *LAN) PowerOn(ctx context.Context) error { return l.err("power on") }

// PowerCycle fails: the binary was built without IPMI over LAN.
func (l *LAN) PowerCycle(ctx context.Context) error { return l.err("power cycle") }

// Probe fails: the binary was built without IPMI over LAN.
func (l *LAN) Probe(ctx context.Context) (Info, error) { return Info{}, l.err("probe") }

// Close does nothing.
func (l *LAN) Close() error { return nil }
