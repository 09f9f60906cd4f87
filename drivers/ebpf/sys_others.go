//go:build !linux

package ebpf

import "time"

var boot = time.Now()

func monotonic() time.Duration { return time.Since(boot) }
