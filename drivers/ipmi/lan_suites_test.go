//go:build !vigil_noipmilan

package ipmi

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"
)

func TestSplitAddr(t *testing.T) {
	tests := []struct {
		addr string
		host string
		port int
		err  string
	}{
		{addr: "10.9.0.2", host: "10.9.0.2", port: 623},
		{addr: "bmc1.oob:624", host: "bmc1.oob", port: 624},
		{addr: "bmc1.oob", host: "bmc1.oob", port: 623},
		{addr: "[fd00::9]:623", host: "fd00::9", port: 623},
		{addr: "fd00::9", host: "fd00::9", port: 623},
		{addr: "", err: "no BMC address"},
		{addr: "bmc:0", err: `port "0" is not a number from 1 to 65535`},
		{addr: "bmc:ipmi", err: `port "ipmi" is not a number`},
		{addr: "a:b:c", err: "write host, host:port or [v6addr]:port"},
	}
	for _, tt := range tests {
		host, port, err := splitAddr(tt.addr)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("splitAddr(%q) error %v, want %q", tt.addr, err, tt.err)
			}
			continue
		}
		if err != nil || host != tt.host || port != tt.port {
			t.Errorf("splitAddr(%q) = %q, %d, %v; want %q, %d", tt.addr, host, port, err, tt.host, tt.port)
		}
	}
}

func TestCheckSuite(t *testing.T) {
	for id, want := range map[int]string{
		3: "", 8: "", 12: "", 17: "",
		0:   "no authentication, no integrity check, no encryption",
		1:   "no integrity check, no encryption",
		2:   "no encryption",
		4:   "no AES encryption (its RC4 is broken)",
		7:   "no encryption",
		11:  "no encryption",
		15:  "no integrity check, no encryption",
		16:  "no encryption",
		18:  "RC4",
		20:  "not a standard suite",
		-1:  "does not exist",
		256: "does not exist",
	} {
		err := checkSuite(id)
		if want == "" {
			if err != nil {
				t.Errorf("suite %d: %v", id, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "use 17 or 3") {
			t.Errorf("suite %d: error %v, want %q and the fix", id, err, want)
		}
	}
	if got, err := resolveSuites([]int{3, 17, 3}); err != nil || fmt.Sprint(got) != "[3 17]" {
		t.Errorf("resolveSuites = %v, %v", got, err)
	}
	if got := pickSuites([]int{17, 3}, []int{0, 1, 2, 3, 17}); fmt.Sprint(got) != "[17 3]" {
		t.Errorf("pickSuites = %v", got)
	}
}

func TestClassify(t *testing.T) {
	timeout := fmt.Errorf("IPMI LAN: ...: %w", syscall.ECONNREFUSED)
	tests := []struct {
		name     string
		err      error
		answered bool
		is       []error
		isNot    []error
		msg      string
		fix      string
	}{
		{name: "no answer", err: timeout, is: []error{ErrUnreachable, syscall.ECONNREFUSED}, isNot: []error{ErrAuth},
			msg: "BMC unreachable: no answer in 3 attempt(s) of 1s (connection refused)", fix: "UDP port"},
		{name: "an answer that failed", err: errors.New("unpack"), answered: true, isNot: []error{ErrUnreachable, ErrAuth}, msg: "unpack"},
		{name: "RAKP mismatch", err: fmt.Errorf("rakp: %w", client.ErrRAKPAuthentication), answered: true, is: []error{ErrAuth, client.ErrRAKPAuthentication},
			msg: "BMC refused the credentials: its key-exchange answer does not match", fix: "user list"},
		{name: "unauthorized name", err: types.NewRmcpStatusError(0x0d), answered: true, is: []error{ErrAuth}, msg: "RMCP+ status 0x0d: Unauthorized name", fix: "credentials file"},
		{name: "privilege", err: types.NewRmcpStatusError(0x0a), answered: true, is: []error{ErrAuth}, fix: "operator is enough"},
		{name: "no suite match", err: types.NewRmcpStatusError(0x11), answered: true, is: []error{ErrCipherSuite}, isNot: []error{ErrAuth}, fix: "17 or 3"},
		{name: "no resources", err: types.NewRmcpStatusError(0x01), answered: true, isNot: []error{ErrAuth, ErrCipherSuite, ErrUnreachable}, msg: "Insufficient resources"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := opError("connect", "bmc:623", classify(tt.err, tt.answered, "in 3 attempt(s) of 1s"))
			for _, target := range tt.is {
				if !errors.Is(err, target) {
					t.Errorf("%v does not match %v", err, target)
				}
			}
			for _, target := range tt.isNot {
				if errors.Is(err, target) {
					t.Errorf("%v matches %v", err, target)
				}
			}
			if !strings.Contains(err.Error(), tt.msg) || !strings.HasPrefix(err.Error(), "ipmi: connect bmc:623: ") {
				t.Errorf("error %q, want %q", err, tt.msg)
			}
			if !strings.Contains(err.Error(), tt.fix) {
				t.Errorf("error %q lacks the fix %q", err, tt.fix)
			}
		})
	}
}
