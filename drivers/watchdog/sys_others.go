//go:build !linux && !vigil_nowatchdoghw

package watchdog

import (
	"fmt"
	"os"
	"runtime"
)

// openSys fails: hardware watchdogs are driven on Linux only.
func openSys(path string) (syscalls, error) {
	return nil, fmt.Errorf("hardware watchdogs are not supported on %s: %w", runtime.GOOS, os.ErrNotExist)
}
