package watchdog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Boot is what a watchdog says of the host's last boot.
type Boot struct {
	// Flags are the Linux watchdog API's WDIOF_* flags
	// (WDIOC_GETBOOTSTATUS).
	Flags uint32
	// ID names this boot (the kernel's boot_id; in the lab, when the
	// emulator last reset the host), so that an agent restarted within one
	// boot does not count its reset twice.
	ID string
}

// cardReset is WDIOF_CARDRESET: the last reboot was caused by the
// watchdog.
const cardReset = 0x0020

// CardReset reports whether the watchdog reset the host last.
func (b Boot) CardReset() bool { return b.Flags&cardReset != 0 }

// BootSuffix ends the name of the file beside a lab watchdog's socket that
// holds its boot status: the emulator's memory of having reset the host.
const BootSuffix = ".bootstatus"

// Where the kernel lists watchdogs and names the boot; tests move them.
var (
	sysfsWatchdog = "/sys/class/watchdog"
	bootIDFile    = "/proc/sys/kernel/random/boot_id"
)

// BootStatus reads what the watchdog named by spec says of the last boot,
// without opening it (opening arms it): a device's
// /sys/class/watchdog/NAME/bootstatus, or the lab emulator's PATH.bootstatus
// file (absent: a cold boot). A driver that does not report it gives an
// error wrapping ErrNotSupported.
func BootStatus(spec string) (Boot, error) {
	path := filepath.Join(sysfsWatchdog, devName(spec), "bootstatus")
	if sock, ok := strings.CutPrefix(spec, LabPrefix); ok {
		path = sock + BootSuffix
	}
	data, err := os.ReadFile(path)
	lab := strings.HasPrefix(spec, LabPrefix)
	switch {
	case errors.Is(err, fs.ErrNotExist) && lab:
		return Boot{}, nil
	case errors.Is(err, fs.ErrNotExist):
		return Boot{}, &OpError{Op: "bootstatus", Dev: spec, Err: fmt.Errorf("%w: no %s", ErrNotSupported, path),
			Fix: "the kernel lists no boot status for this watchdog (CONFIG_WATCHDOG_SYSFS)"}
	case err != nil:
		return Boot{}, &OpError{Op: "bootstatus", Dev: spec, Err: err}
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(data)), 0, 32)
	if err != nil {
		return Boot{}, &OpError{Op: "bootstatus", Dev: spec, Err: fmt.Errorf("%s holds %q, not a number", path, strings.TrimSpace(string(data)))}
	}
	b := Boot{Flags: uint32(v)}
	if lab {
		if fi, err := os.Stat(path); err == nil {
			b.ID = "lab-" + strconv.FormatInt(fi.ModTime().UnixNano(), 10)
		}
	} else if id, err := os.ReadFile(bootIDFile); err == nil {
		b.ID = strings.TrimSpace(string(id))
	}
	return b, nil
}

// devName is the sysfs name of a watchdog device node: /dev/watchdog is
// the first watchdog, watchdog0.
func devName(path string) string {
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	name := filepath.Base(path)
	if name == "watchdog" {
		return "watchdog0"
	}
	return name
}
