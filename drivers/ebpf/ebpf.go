package ebpf

import (
	"errors"
	"time"
)

// ErrUnsupported is wrapped by the errors of features this kernel or this
// build cannot run: test for it with errors.Is and fall back.
var ErrUnsupported = errors.New("ebpf: not supported")

// Monotonic is the current CLOCK_MONOTONIC time, the clock of every kernel
// stamp in this package.
func Monotonic() time.Duration { return monotonic() }
