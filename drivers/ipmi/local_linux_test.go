//go:build linux && amd64 && !vigil_noipmilocal

package ipmi

import (
	"testing"
	"unsafe"
)

// TestIoctlNumbers checks the structures and ioctl numbers against the
// values of linux/ipmi.h on x86-64, as ipmitool's open interface uses them.
func TestIoctlNumbers(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof(struct ipmi_msg)", unsafe.Sizeof(ipmiMsg{}), 16},
		{"sizeof(struct ipmi_req)", unsafe.Sizeof(ipmiReq{}), 40},
		{"sizeof(struct ipmi_recv)", unsafe.Sizeof(ipmiRecv{}), 48},
		{"sizeof(struct ipmi_system_interface_addr)", unsafe.Sizeof(ipmiSystemInterfaceAddr{}), 8},
		{"sizeof(struct ipmi_addr)", unsafe.Sizeof(ipmiAddr{}), 40},
		{"IPMICTL_SEND_COMMAND", ipmictlSendCommand, 0x8028690d},
		{"IPMICTL_RECEIVE_MSG_TRUNC", ipmictlReceiveMsgTrunc, 0xc030690b},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
}
