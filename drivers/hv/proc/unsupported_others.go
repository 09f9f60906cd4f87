//go:build !linux && !vigil_nohvproc

package proc

import (
	"errors"
	"fmt"
	"runtime"
)

var errUnsupported = fmt.Errorf("proc: the process hypervisor needs Linux (pidfds), not %s: %w", runtime.GOOS, errors.ErrUnsupported)
