// Package ipmi fences hosts through their BMCs: chassis power status, off,
// on and cycle over IPMI, and a health probe that checks a BMC answers and
// takes its credentials without touching the power.
//
//	cred, warnings, err := ipmi.LoadCredentials("/etc/vigil/bmc-h2")
//	bmc, err := ipmi.DialLAN(ctx, "10.9.0.2:623", cred, ipmi.LANOptions{})
//	defer bmc.Close()
//	err = bmc.PowerOff(ctx)
//	on, err := bmc.PowerStatus(ctx) // the read-back: "off" is the proof
//
// Two kinds of BMC implement BMC: a peer's BMC over the network (DialLAN,
// IPMI 2.0 RMCP+ sessions with an authenticated, integrity-checked and
// encrypted cipher suite, every answer's integrity code checked) and the host's own BMC through the kernel's IPMI
// device (OpenLocal, /dev/ipmi0), for a self-fence that does not wait for
// the watchdog. Package ipmitest has a fake BMC for unit tests of code that
// fences, and an in-process BMC server for tests that need real packets.
//
// Errors are *OpError values naming the operation and the BMC; they match
// ErrUnreachable (no answer in time), ErrAuth (credentials or privilege
// refused), ErrCipherSuite (no acceptable cipher suite) or ErrClosed with
// errors.Is, and carry a *CompletionError (IPMI completion code) or a
// *StatusError (RMCP+ session-setup status) with readable text when the BMC
// answered with one.
package ipmi

import (
	"context"
	"errors"
)

// BMC is one BMC as the agent uses it. Every method is bounded by ctx and
// by the client's own timeouts and retries.
type BMC interface {
	// PowerStatus reads the chassis power state back: on or off.
	PowerStatus(ctx context.Context) (on bool, err error)
	// PowerOff asks for a hard power-off. Its success only means the BMC
	// accepted the command: only a PowerStatus that reads off proves it.
	PowerOff(ctx context.Context) error
	// PowerOn asks for power on.
	PowerOn(ctx context.Context) error
	// PowerCycle asks for a power cycle. A BMC may answer before the host
	// went off: never a proof of anything.
	PowerCycle(ctx context.Context) error
	// Probe checks that the BMC answers and accepts the credentials, and
	// says who it is; nothing is powered.
	Probe(ctx context.Context) (Info, error)
	// Close ends the session.
	Close() error
}

// Info is what a probe learnt of a BMC.
type Info struct {
	// CipherSuite is the RMCP+ cipher suite the session uses (over LAN):
	// 17 or 3 by default. It is 0 in-band, where there is no session.
	CipherSuite int
	// DeviceID, FirmwareRevision and IPMIVersion come from Get Device ID.
	DeviceID         uint8
	FirmwareRevision string // "major.minor", minor in BCD as the BMC sends it: "1.02"
	IPMIVersion      string // "2.0" or "1.5"
	ManufacturerID   uint32 // IANA enterprise number
	ProductID        uint16
}

// ErrUnreachable matches errors of a BMC that did not answer in time.
var ErrUnreachable = errors.New("BMC unreachable")

// ErrAuth matches errors of a BMC that refused the credentials.
var ErrAuth = errors.New("BMC refused the credentials")

// ErrCipherSuite matches errors of a BMC that offers none of the cipher
// suites the client accepts (by default 17 and 3).
var ErrCipherSuite = errors.New("no acceptable cipher suite")

// ErrClosed matches errors of calls on a closed BMC.
var ErrClosed = errors.New("BMC closed")

// Chassis Control actions (IPMI 2.0 section 28.3).
const (
	controlPowerDown = 0x00
	controlPowerUp   = 0x01
	controlCycle     = 0x02
	controlHardReset = 0x03
)

// controlName is how an operation names a Chassis Control action.
func controlName(action uint8) string {
	switch action {
	case controlPowerDown:
		return "power off"
	case controlPowerUp:
		return "power on"
	case controlCycle:
		return "power cycle"
	case controlHardReset:
		return "hard reset"
	}
	return "chassis control"
}
