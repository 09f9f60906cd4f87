package lab

import (
	"context"
	"fmt"
	"os/exec"
	"time"

	"github.com/vigil-ha/vigil/drivers/hv/qemu"
	"github.com/vigil-ha/vigil/image"
)

// QEMUKernel returns the kernel a lab's QEMU VMs boot (Options.QEMUKernel):
// Debian's, from the image cache, fetched on first use; or why there is
// none, with the fix, when QEMU or the kernel is missing.
func QEMUKernel() (string, error) {
	if _, err := exec.LookPath(qemu.DefaultBinary); err != nil {
		return "", fmt.Errorf("QEMU VMs: %s is not installed (fix: make qemu-deps, or apt-get install qemu-system-x86)", qemu.DefaultBinary)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	k, err := image.FetchKernel(ctx, image.Cache())
	if err != nil {
		return "", fmt.Errorf("QEMU VMs: the guest kernel: %w (fix: make qemu-deps)", err)
	}
	return k.Vmlinux, nil
}
