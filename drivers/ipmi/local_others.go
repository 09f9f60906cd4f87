//go:build !(linux && (amd64 || arm64 || 386 || arm || riscv64 || loong64 || s390x)) && !vigil_noipmilocal

package ipmi

import (
	"fmt"
	"os"
	"runtime"
)

// openSys fails: the in-band device is driven on Linux only.
func openSys(path string) (syscalls, error) {
	return nil, fmt.Errorf("in-band IPMI is not supported on %s/%s: %w", runtime.GOOS, runtime.GOARCH, os.ErrNotExist)
}
