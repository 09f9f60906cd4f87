package ipmi

import (
	"errors"
	"fmt"

	"github.com/bougou/go-ipmi/pkg/types"
)

// OpError is the error of one operation on one BMC.
type OpError struct {
	Op  string // connect, power status, power off, power on, power cycle, hard reset, probe, close
	BMC string // the BMC: host:port over LAN, the device path in-band
	Err error  // the cause: matches ErrUnreachable, ErrAuth, ... or wraps a *CompletionError
	Fix string // what the operator can do about it, if known
}

func (e *OpError) Error() string {
	s := "ipmi: " + e.Op + " " + e.BMC + ": " + e.Err.Error()
	if e.Fix != "" {
		s += " (fix: " + e.Fix + ")"
	}
	return s
}

// Unwrap returns the cause.
func (e *OpError) Unwrap() error { return e.Err }

// CompletionError is an answer whose IPMI completion code is not 00h
// (normal): the BMC received the request and refused or failed it.
type CompletionError struct {
	Command string // the IPMI command, as "Chassis Control"
	Code    uint8  // the completion code
	Text    string // the code's meaning for this command, from the IPMI spec
}

func (e *CompletionError) Error() string {
	return fmt.Sprintf("%s answered completion code %#02x: %s", e.Command, e.Code, e.Text)
}

// Is matches ErrAuth for D4h (insufficient privilege level or another
// security restriction).
func (e *CompletionError) Is(target error) bool {
	return target == ErrAuth && e.Code == uint8(types.CodeInsufficientPrivilege)
}

// Busy reports whether the code says the BMC could not do it now but may
// later (node busy, timeout, response not available, initialising, ...):
// a retry may succeed.
func (e *CompletionError) Busy() bool {
	switch types.CompletionCode(e.Code) {
	case types.CodeNodeBusy, types.CodeProcessTimeout, types.CodeCannotProvideResponse,
		types.CodeCannotProvideResponseSDRRInUpdate, types.CodeCannotProvideResponseFirmwareUpdate,
		types.CodeCannotProvideResponseBMCInitialize:
		return true
	}
	return false
}

// newCompletionError names code for cmd, command-specific codes included.
func newCompletionError(cmd types.Command, code uint8) *CompletionError {
	text := types.StrCC(cmd, code)
	if text == fmt.Sprintf("0x%02x", code) {
		switch {
		case code >= 0x01 && code <= 0x7e:
			text = "device-specific (OEM) code"
		case code >= 0x80 && code <= 0xbe:
			text = "command-specific code"
		default:
			text = "reserved code"
		}
	}
	return &CompletionError{Command: cmd.Name, Code: code, Text: text}
}

// StatusError is an RMCP+ status code other than 00h in a session-setup
// answer (Open Session or RAKP), as IPMI 2.0 table 13-15 defines them.
type StatusError struct {
	Code uint8
	Text string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("session setup refused with RMCP+ status %#02x: %s", e.Code, e.Text)
}

// Is matches ErrAuth for a refused name, role, privilege or key (0Ah, 0Dh,
// 0Eh, 0Fh) and ErrCipherSuite for unsupported algorithms (04h to 07h, 10h,
// 11h).
func (e *StatusError) Is(target error) bool {
	switch target {
	case ErrAuth:
		return e.Code == 0x09 || e.Code == 0x0a || e.Code == 0x0d || e.Code == 0x0e || e.Code == 0x0f
	case ErrCipherSuite:
		return (e.Code >= 0x04 && e.Code <= 0x07) || e.Code == 0x10 || e.Code == 0x11
	}
	return false
}

// causeError reads "kind: msg" and matches both kind and the error of the
// library below, whose own text is too long to be read.
type causeError struct {
	kind error
	msg  string
	err  error
}

func (e *causeError) Error() string   { return e.kind.Error() + ": " + e.msg }
func (e *causeError) Unwrap() []error { return []error{e.kind, e.err} }

// fixFor is the operator's fix for an error class, or "".
func fixFor(err error) string {
	var ce *CompletionError
	var se *StatusError
	switch {
	case errors.Is(err, ErrClosed):
		return ""
	case errors.Is(err, ErrCipherSuite):
		return "enable cipher suite 17 or 3 (authentication, integrity and AES encryption) on the BMC's LAN channel"
	case errors.As(err, &se) && (se.Code == 0x09 || se.Code == 0x0a):
		return "ask for a privilege the BMC user has (operator is enough for power control), or raise the user's privilege on the LAN channel"
	case errors.As(err, &ce) && errors.Is(err, ErrAuth):
		return "give the BMC user the operator or administrator privilege on the LAN channel (ipmitool channel setaccess 1 ID privilege=4)"
	case errors.Is(err, ErrAuth):
		return "check the user and password in the credentials file against the BMC's users (ipmitool user list 1), and that the user may log in over LAN"
	case errors.Is(err, ErrUnreachable):
		return "check the BMC's address and UDP port (623 by default), that it is powered and reachable from this host, and that IPMI over LAN is enabled on it"
	case errors.As(err, &ce) && ce.Busy():
		return "the BMC is busy or starting: try again"
	}
	return ""
}

// opError wraps err as the error of op on bmc, with its fix.
func opError(op, bmc string, err error) error {
	if err == nil {
		return nil
	}
	var oe *OpError
	if errors.As(err, &oe) {
		return err
	}
	return &OpError{Op: op, BMC: bmc, Err: err, Fix: fixFor(err)}
}
