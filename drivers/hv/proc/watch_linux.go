//go:build !vigil_nohvproc

package proc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// watch is one watched VM process.
type watch struct {
	name string
	id   procID
	f    *os.File // the pidfd, in the runtime's poller
	rc   syscall.RawConn
	cmd  *exec.Cmd     // nil when adopted
	done chan struct{} // closed once the process has exited

	stopping bool // Stop or Kill was asked; guarded by Hypervisor.mu
	gone     bool // its exit was handled (Hypervisor.gone); guarded by Hypervisor.mu
}

// watch starts watching a VM through its pidfd, which it takes over.
// Callers hold h.mu.
func (h *Hypervisor) watch(name string, id procID, pidfd int, cmd *exec.Cmd) error {
	if err := unix.SetNonblock(pidfd, true); err != nil {
		return fmt.Errorf("pidfd: %w", err)
	}
	f := os.NewFile(uintptr(pidfd), "pidfd:"+name)
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("pidfd: %w", err)
	}
	w := &watch{name: name, id: id, f: f, rc: rc, cmd: cmd, done: make(chan struct{})}
	h.vms[name] = w
	h.wg.Go(func() { h.run(w) })
	return nil
}

// run waits for w's process to exit, or for Close.
func (h *Hypervisor) run(w *watch) {
	err := w.rc.Read(func(fd uintptr) bool { return exited(int(fd)) })
	if err != nil {
		return // Close closed the pidfd
	}
	if w.cmd != nil {
		w.cmd.Wait()
	} else {
		// An adopted VM is normally another process's orphan; reap it
		// only if it happens to be a child of this one.
		w.rc.Control(func(fd uintptr) {
			unix.Waitid(unix.P_PIDFD, int(fd), nil, unix.WEXITED|unix.WNOHANG, nil)
		})
	}
	h.mu.Lock()
	notify := h.gone(w)
	h.mu.Unlock()
	w.f.Close()
	if notify {
		h.onExit(w.name)
	}
	close(w.done)
}

// signal sends sig to w's process through its pidfd: never to a process
// that reused its PID. A process that already exited is not an error.
func (w *watch) signal(sig syscall.Signal) error {
	var serr error
	err := w.rc.Control(func(fd uintptr) {
		serr = unix.PidfdSendSignal(int(fd), sig, nil, 0)
	})
	select {
	case <-w.done:
		return nil
	default:
	}
	if errors.Is(err, os.ErrClosed) || errors.Is(serr, syscall.ESRCH) {
		return nil // exited; the watcher is finishing
	}
	if err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("pidfd_send_signal %v: %w", sig, serr)
	}
	return nil
}

// exited reports whether the process of pidfd has exited.
func exited(pidfd int) bool {
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err == nil && n > 0 && fds[0].Revents&(unix.POLLIN|unix.POLLHUP) != 0
	}
}

// pidfdOpen opens a pidfd for pid.
func pidfdOpen(pid int) (int, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return -1, fmt.Errorf("pidfd_open %d: %w (pidfds need Linux 5.3 or later)", pid, err)
	}
	return fd, nil
}

// stat returns the state and start time of pid from /proc/PID/stat.
func stat(pid int) (state byte, start uint64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	return parseStat(b)
}

// alive reports whether the process id still runs: it exists with the same
// start time and is neither a zombie nor dead.
func alive(id procID) bool {
	state, start, err := stat(id.PID)
	return err == nil && start == id.Start && state != 'Z' && state != 'X'
}
