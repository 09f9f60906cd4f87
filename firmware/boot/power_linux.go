//go:build linux

package boot

import (
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Linux input event codes (linux/input-event-codes.h).
const (
	evKey    = 0x01
	keyPower = 116
)

// inputEventSize is struct input_event on 64-bit Linux: a timeval, the
// type, the code and the value.
const inputEventSize = 24

// powerPressed reads input events from r until the power key is pressed
// (true) or r ends (false).
func powerPressed(r io.Reader) bool {
	var ev [inputEventSize]byte
	for {
		if _, err := io.ReadFull(r, ev[:]); err != nil {
			return false
		}
		typ := binary.NativeEndian.Uint16(ev[16:])
		code := binary.NativeEndian.Uint16(ev[18:])
		value := int32(binary.NativeEndian.Uint32(ev[20:]))
		if typ == evKey && code == keyPower && value == 1 {
			return true
		}
	}
}

// watchPowerButton calls pressed once the power key of any input device
// (the ACPI power button QEMU's system_powerdown presses) is pressed.
// Devices that appear later (their module loads late) are found by
// looking again every second, until ctx ends.
func watchPowerButton(ctx context.Context, pressed func(dev string)) {
	seen := map[string]bool{}
	once := make(chan string, 1)
	for {
		devs, _ := filepath.Glob("/dev/input/event*")
		for _, d := range devs {
			if seen[d] {
				continue
			}
			f, err := os.Open(d)
			if err != nil {
				continue
			}
			seen[d] = true
			go func() {
				defer f.Close()
				if powerPressed(f) {
					select {
					case once <- d:
					default:
					}
				}
			}()
		}
		select {
		case <-ctx.Done():
			return
		case d := <-once:
			pressed(d)
			return
		case <-time.After(time.Second):
		}
	}
}

// powerOff syncs the file systems and powers the machine off.
func powerOff() error {
	unix.Sync()
	return unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}
