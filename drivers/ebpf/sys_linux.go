//go:build linux

package ebpf

import (
	"time"

	"golang.org/x/sys/unix"
)

func monotonic() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic("ebpf: CLOCK_MONOTONIC: " + err.Error())
	}
	return time.Duration(ts.Nano())
}
