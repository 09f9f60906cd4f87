package ipmi

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/bougou/go-ipmi/pkg/types"
)

func TestCompletionError(t *testing.T) {
	tests := []struct {
		cmd  types.Command
		code uint8
		text string
		auth bool
		busy bool
	}{
		{types.CommandChassisControl, 0xcc, "Invalid data field in request", false, false},
		{types.CommandChassisControl, 0xd4, "insufficient privilege", true, false},
		{types.CommandGetChassisStatus, 0xc0, "Node busy", false, true},
		{types.CommandGetDeviceID, 0xd2, "BMC initialization in progress", false, true},
		{types.CommandSetSessionPrivilegeLevel, 0x81, "", false, false}, // command-specific
		{types.CommandGetChassisStatus, 0x85, "command-specific code", false, false},
		{types.CommandGetChassisStatus, 0x05, "device-specific (OEM) code", false, false},
		{types.CommandGetChassisStatus, 0xe0, "reserved code", false, false},
	}
	for _, tt := range tests {
		e := newCompletionError(tt.cmd, tt.code)
		want := fmt.Sprintf("%s answered completion code %#02x: ", tt.cmd.Name, tt.code)
		if !strings.HasPrefix(e.Error(), want) || !strings.Contains(e.Error(), tt.text) || e.Text == "" || strings.HasPrefix(e.Text, "0x") {
			t.Errorf("%#02x: %q, want %q...%q", tt.code, e, want, tt.text)
		}
		if errors.Is(e, ErrAuth) != tt.auth || e.Busy() != tt.busy {
			t.Errorf("%#02x: auth %v busy %v, want %v %v", tt.code, errors.Is(e, ErrAuth), e.Busy(), tt.auth, tt.busy)
		}
	}
}
