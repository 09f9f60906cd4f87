//go:build !vigil_noebpf

package ebpf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

const (
	tracefsDir = "/sys/kernel/tracing"
	bpffsDir   = "/sys/fs/bpf"
)

const mountFlags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC

func mountFS() error {
	return errors.Join(mountTracefs(), mountBPFFS())
}

// mountTracefs mounts tracefs unless its events folder is already there.
func mountTracefs() error {
	if fi, err := os.Stat(filepath.Join(tracefsDir, "events")); err == nil && fi.IsDir() {
		return nil
	}
	if err := unix.Mount("tracefs", tracefsDir, "tracefs", mountFlags, ""); err != nil {
		return fmt.Errorf("ebpf: mount tracefs at %s: %w (as root: mount -t tracefs tracefs %s)",
			tracefsDir, err, tracefsDir)
	}
	return nil
}

// mountBPFFS mounts bpffs unless it is already mounted.
func mountBPFFS() error {
	var st unix.Statfs_t
	if err := unix.Statfs(bpffsDir, &st); err == nil && st.Type == unix.BPF_FS_MAGIC {
		return nil
	}
	if err := unix.Mount("bpf", bpffsDir, "bpf", mountFlags, "mode=0700"); err != nil {
		return fmt.Errorf("ebpf: mount bpffs at %s: %w (as root: mount -t bpf bpf %s)",
			bpffsDir, err, bpffsDir)
	}
	return nil
}
