//go:build !vigil_noboot

package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/vigil-ha/vigil/firmware/boot"
)

func init() {
	Register(Command{Name: "boot", Summary: "run as the firmware image's init: load modules, read the config, start the agent and console", Run: runBoot})
}

func runBoot(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "usage: vigil boot (as the firmware image's init; its settings come from the kernel command line or a config disk)")
		return 2
	}
	if err := boot.Run(context.Background(), boot.Options{}); err != nil {
		fmt.Fprintln(stderr, "vigil boot:", err)
		return 1
	}
	return 0
}
