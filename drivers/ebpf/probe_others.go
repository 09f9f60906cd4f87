//go:build !linux || vigil_noebpf

package ebpf

import (
	"fmt"
	"runtime"
)

// noEBPF is the error of everything in a build without the programs.
func noEBPF() error {
	if runtime.GOOS == "linux" {
		return notSupported("built without eBPF (vigil_noebpf)", nil)
	}
	return notSupported("eBPF needs Linux", nil)
}

func probe() Support {
	err := noEBPF()
	return Support{Stamping: err, BlockIO: err, Exits: err}
}

func mountFS() error { return fmt.Errorf("ebpf: mount file systems: %w", noEBPF()) }
