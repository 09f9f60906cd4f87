package ebpf

import (
	"errors"
	"fmt"
	"strings"
)

// Support says which of the package's programs this kernel can run: nil
// when it can, else why not, an error wrapping ErrUnsupported.
type Support struct {
	// Stamping is the Stamper: SchedCLS programs attached with TCX.
	Stamping error
	// BlockIO is the block_rq_issue and block_rq_complete tracepoints.
	BlockIO error
	// Exits is the sched_process_exit tracepoint and a ring buffer.
	Exits error
}

// Probe asks the kernel which programs it can run: it loads small test
// programs and looks the tracepoints up in tracefs, which it mounts when
// it is missing (as MountFS does). It caches nothing.
func Probe() Support { return probe() }

// String is one line, such as
// "stamping: yes; block I/O: yes; exits: no (ring buffers unsupported)".
func (s Support) String() string {
	var b strings.Builder
	for i, f := range []struct {
		name string
		err  error
	}{{"stamping", s.Stamping}, {"block I/O", s.BlockIO}, {"exits", s.Exits}} {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.name)
		if f.err == nil {
			b.WriteString(": yes")
			continue
		}
		fmt.Fprintf(&b, ": no (%s)", why(f.err))
	}
	return b.String()
}

// MountFS mounts what the programs need and a boot may leave out: tracefs
// at /sys/kernel/tracing and bpffs at /sys/fs/bpf. A file system already
// mounted is left alone.
func MountFS() error { return mountFS() }

// unsupported is an error wrapping ErrUnsupported and, when there is one,
// the error that revealed it.
type unsupported struct {
	why string // short, for Support.String
	err error  // may be nil
}

func notSupported(why string, err error) error { return &unsupported{why: why, err: err} }

func (e *unsupported) Error() string {
	if e.err == nil {
		return e.why
	}
	return e.why + ": " + e.err.Error()
}

func (e *unsupported) Unwrap() []error {
	if e.err == nil {
		return []error{ErrUnsupported}
	}
	return []error{ErrUnsupported, e.err}
}

// why is the short reason of err.
func why(err error) string {
	if u, ok := errors.AsType[*unsupported](err); ok {
		return u.why
	}
	return err.Error()
}

// ProgramInfo describes a loaded program, for diagnostics.
type ProgramInfo struct {
	// Name is the program's name in the kernel (at most 15 bytes).
	Name string
	// ID is the kernel's program ID, as bpftool shows it.
	ID uint32
	// Tag is the kernel's hash of the instructions, in hex.
	Tag string
	// Kind says how the program is attached, such as "tcx ingress".
	Kind string
	// Attached names the attachment points, such as "eth0 (ifindex 3)".
	Attached []string
}

func (p ProgramInfo) String() string {
	s := fmt.Sprintf("%s (id %d, tag %s, %s)", p.Name, p.ID, p.Tag, p.Kind)
	if len(p.Attached) == 0 {
		return s + " not attached"
	}
	return s + " on " + strings.Join(p.Attached, ", ")
}
