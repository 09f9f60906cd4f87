//go:build linux && !vigil_noebpf

package ebpf

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// tracefsRoots are where tracefs may be: its own mount point, and the one
// the kernel mounts inside debugfs.
var tracefsRoots = []string{tracefsDir, "/sys/kernel/debug/tracing"}

func probe() Support {
	if err := rlimit.RemoveMemlock(); err != nil {
		err = notSupported("cannot remove the memlock limit", err)
		return Support{Stamping: err, BlockIO: err, Exits: err}
	}
	// The tracepoint probes read tracefs; a failure shows as missing
	// tracepoints below, with the reason.
	mountErr := mountTracefs()
	return Support{
		Stamping: probeStamping(),
		BlockIO: firstErr(
			haveProgramType(ebpf.TracePoint, "tracepoint programs unsupported"),
			haveTracepoint(mountErr, "block", "block_rq_issue"),
			haveTracepoint(mountErr, "block", "block_rq_complete"),
		),
		Exits: firstErr(
			haveProgramType(ebpf.TracePoint, "tracepoint programs unsupported"),
			haveMapType(ebpf.RingBuf, "ring buffers unsupported"),
			haveTracepoint(mountErr, "sched", "sched_process_exit"),
		),
	}
}

func probeStamping() error {
	if err := haveProgramType(ebpf.SchedCLS, "SchedCLS programs unsupported"); err != nil {
		return err
	}
	return haveTCX()
}

// haveTCX runs cilium's own TCX probe, which it keeps internal but runs
// when an attach fails: attaching to a device index that cannot exist
// fails with ErrNotSupported on a kernel without TCX, and with ENODEV on
// one that has it.
func haveTCX() error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:    "vigil_tcx_probe",
		Type:    ebpf.SchedCLS,
		License: "Dual BSD/GPL",
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R0, -1), // TCX_NEXT
			asm.Return(),
		},
	})
	if err != nil {
		return notSupported("cannot load a SchedCLS program", err)
	}
	defer prog.Close()
	l, err := link.AttachTCX(link.TCXOptions{
		Interface: math.MaxInt32,
		Program:   prog,
		Attach:    ebpf.AttachTCXIngress,
	})
	switch {
	case err == nil:
		l.Close()
		return nil
	case errors.Is(err, unix.ENODEV):
		return nil
	case errors.Is(err, ebpf.ErrNotSupported):
		return notSupported("TCX unsupported", err)
	default:
		return notSupported("TCX probe failed", err)
	}
}

func haveProgramType(t ebpf.ProgramType, why string) error {
	if err := features.HaveProgramType(t); err != nil {
		return notSupported(why, err)
	}
	return nil
}

func haveMapType(t ebpf.MapType, why string) error {
	if err := features.HaveMapType(t); err != nil {
		return notSupported(why, err)
	}
	return nil
}

// haveTracepoint checks that tracefs lists the tracepoint group/name;
// mountErr is why tracefs could not be mounted, if it could not.
func haveTracepoint(mountErr error, group, name string) error {
	for _, root := range tracefsRoots {
		if _, err := os.Stat(filepath.Join(root, "events", group, name, "id")); err == nil {
			return nil
		}
	}
	if mountErr != nil {
		return notSupported("tracefs not mounted", mountErr)
	}
	return notSupported(fmt.Sprintf("no tracepoint %s/%s", group, name), nil)
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
