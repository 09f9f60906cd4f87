package ebpf

import (
	"encoding/binary"
	"fmt"
	"syscall"
	"time"
)

//go:generate go tool bpf2go -tags linux,!vigil_noebpf -target bpfel exits exits.c -- -O2 -g -Wall -Werror -idirafter /usr/include/x86_64-linux-gnu -idirafter /usr/include/aarch64-linux-gnu

// Exits reports the exits of watched processes, the VMs' and the
// monitored daemons', with the sched_process_exit tracepoint: a process
// is reported once, the moment its last thread exits, with the status its
// parent's wait will see.
//
//	x, err := ebpf.NewExits()
//	if errors.Is(err, ebpf.ErrUnsupported) { ... fall back to pidfds ... }
//	defer x.Close()
//	err = x.Watch(vm.Pid)
//	for e := range x.C() { ... e.Pid, e.Signaled() ... }
//
// An Exits is safe for concurrent use; read C from one goroutine.
type Exits struct {
	x *exits // per OS
}

// NewExits loads and attaches the program, mounting tracefs when it is
// missing (as MountFS does). No process is watched yet.
func NewExits() (*Exits, error) {
	x, err := newExits()
	if err != nil {
		return nil, fmt.Errorf("ebpf: exits: %w", err)
	}
	return &Exits{x: x}, nil
}

// Watch reports the exit of the process pid, a thread-group id. Its entry
// goes when the exit is reported. A process that exited before the watch
// took effect is not reported: Watch then returns an error wrapping
// os.ErrProcessDone. Watching a process twice is a no-op.
func (e *Exits) Watch(pid int) error { return e.x.watch(pid) }

// Unwatch stops watching pid; a process that is not watched is a no-op.
func (e *Exits) Unwatch(pid int) error { return e.x.unwatch(pid) }

// Watched returns the watched processes that have not exited, sorted.
func (e *Exits) Watched() []int { return e.x.watched() }

// C delivers the exits. When nobody reads it, the kernel's ring buffer
// fills and further exits are lost, counted by Lost. Close closes it.
func (e *Exits) C() <-chan Exit { return e.x.c }

// Lost counts the exits the kernel could not report, its ring buffer
// being full.
func (e *Exits) Lost() uint64 { return e.x.lost() }

// Programs describes the loaded program, for diagnostics.
func (e *Exits) Programs() []ProgramInfo { return e.x.programs() }

// Close detaches and unloads the program and closes C.
func (e *Exits) Close() error { return e.x.close() }

// Exit is a watched process's exit.
type Exit struct {
	// Pid is the process, its thread-group id.
	Pid int
	// Status is the wait status, the kernel's exit_code: the exit code
	// << 8, or the signal number, with 0x80 when it dumped core.
	Status int
	// At is when the process's last thread exited, on the clock of
	// Monotonic.
	At time.Duration
}

// Signaled says whether a signal killed the process.
func (x Exit) Signaled() bool { return x.Status&0x7f != 0 }

// Signal is the signal that killed the process, 0 when none did.
func (x Exit) Signal() syscall.Signal { return syscall.Signal(x.Status & 0x7f) }

// ExitCode is the code the process exited with, -1 when a signal killed
// it (as os.ProcessState.ExitCode).
func (x Exit) ExitCode() int {
	if x.Signaled() {
		return -1
	}
	return x.Status >> 8 & 0xff
}

// CoreDumped says whether the process dumped core.
func (x Exit) CoreDumped() bool { return x.Signaled() && x.Status&0x80 != 0 }

// String is "pid 42 exited with status 3" or "pid 42 killed by SIGKILL".
func (x Exit) String() string {
	if !x.Signaled() {
		return fmt.Sprintf("pid %d exited with status %d", x.Pid, x.ExitCode())
	}
	s := fmt.Sprintf("pid %d killed by %s", x.Pid, signalName(int(x.Signal())))
	if x.CoreDumped() {
		s += " (core dumped)"
	}
	return s
}

// signalNames are Linux's signals, by number on every system.
var signalNames = [...]string{
	1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT",
	7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2",
	13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM", 16: "SIGSTKFLT", 17: "SIGCHLD",
	18: "SIGCONT", 19: "SIGSTOP", 20: "SIGTSTP", 21: "SIGTTIN", 22: "SIGTTOU", 23: "SIGURG",
	24: "SIGXCPU", 25: "SIGXFSZ", 26: "SIGVTALRM", 27: "SIGPROF", 28: "SIGWINCH",
	29: "SIGIO", 30: "SIGPWR", 31: "SIGSYS",
}

// signalName is "SIGKILL", "SIGRTMIN+2", or "signal 32".
func signalName(sig int) string {
	switch {
	case sig > 0 && sig < len(signalNames):
		return signalNames[sig]
	case sig >= 34 && sig <= 64:
		if sig == 34 {
			return "SIGRTMIN"
		}
		return fmt.Sprintf("SIGRTMIN+%d", sig-34)
	}
	return fmt.Sprintf("signal %d", sig)
}

// exitEventSize is the size of exits.c's struct exit_event.
const exitEventSize = 16

// exitOf decodes exits.c's struct exit_event {u64 ns; u32 pid; s32 status}.
func exitOf(raw []byte) (Exit, bool) {
	if len(raw) < exitEventSize {
		return Exit{}, false
	}
	return Exit{
		Pid:    int(binary.LittleEndian.Uint32(raw[8:])),
		Status: int(int32(binary.LittleEndian.Uint32(raw[12:]))),
		At:     time.Duration(binary.LittleEndian.Uint64(raw)),
	}, true
}
