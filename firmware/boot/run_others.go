//go:build !linux

package boot

import (
	"context"
	"errors"
)

// Options are where the boot finds and puts things.
type Options struct{}

// Run fails: the firmware image is Linux.
func Run(ctx context.Context, o Options) error {
	return errors.New("boot: vigil boot runs only as the init of a Linux firmware image")
}
