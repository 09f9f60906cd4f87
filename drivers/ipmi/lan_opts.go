package ipmi

import (
	"fmt"
	"time"
)

// LAN defaults.
const (
	// DefaultPort is the RMCP port of a BMC.
	DefaultPort = 623
	// DefaultTimeout is how long a request waits for its answer, as
	// ipmitool's lanplus interface does.
	DefaultTimeout = time.Second
	// DefaultRetries is how many more times an unanswered request is sent.
	DefaultRetries = 2
	// DefaultSessionIdle is how long a session may go unused before the
	// next request replaces it with a new one: BMCs drop sessions idle for
	// 30 to 60 s, and a request in a dropped session goes unanswered.
	DefaultSessionIdle = 20 * time.Second
	// NoRetries in LANOptions.Retries sends each request once.
	NoRetries = -1
)

// Privilege is the privilege level a session asks for.
type Privilege uint8

// Session privileges: chassis control needs operator.
const (
	PrivilegeAdministrator Privilege = 4 // IPMI 2.0 table 6-4
	PrivilegeOperator      Privilege = 3
)

func (p Privilege) String() string {
	switch p {
	case PrivilegeAdministrator:
		return "administrator"
	case PrivilegeOperator:
		return "operator"
	}
	return fmt.Sprintf("privilege(%d)", uint8(p))
}

// LANOptions tune DialLAN. The zero value is the defaults.
type LANOptions struct {
	// Timeout is how long each request waits for its answer
	// (DefaultTimeout when zero).
	Timeout time.Duration
	// Retries is how many more times an unanswered request is sent
	// (DefaultRetries when zero, none with NoRetries). An unanswered
	// request so costs (1+Retries) x Timeout, once more when an
	// established session is replaced to try again.
	Retries int
	// CipherSuites are the RMCP+ cipher suites to accept, most preferred
	// first (DefaultCipherSuites, 17 then 3, when empty). Each must
	// authenticate, check integrity and encrypt with AES: 0, 1, 2, 6, 7 and
	// 11 and the RC4 suites are refused.
	CipherSuites []int
	// Privilege is the session's privilege (PrivilegeAdministrator when
	// zero; PrivilegeOperator is enough for power control).
	Privilege Privilege
	// SessionIdle is how long the session may go unused before it is
	// replaced (DefaultSessionIdle when zero).
	SessionIdle time.Duration
}

// DefaultCipherSuites are the RMCP+ cipher suites DialLAN accepts when
// LANOptions.CipherSuites is empty, most preferred first: 17
// (HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128) and 3 (HMAC-SHA1,
// HMAC-SHA1-96, AES-CBC-128), the one every IPMI 2.0 BMC must offer.
var DefaultCipherSuites = []int{17, 3}
