//go:build !vigil_nohvproc

package proc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Hypervisor runs lab VMs as processes. Its methods are safe for concurrent
// use.
type Hypervisor struct {
	dir    string
	exe    string
	opts   Options
	onExit func(name string)
	quit   chan struct{} // closed by Close
	wg     sync.WaitGroup

	mu     sync.Mutex
	vms    map[string]*watch
	closed bool
	exits  Exits // nil: the pidfds alone
	// recent maps the PIDs of the last VM processes whose exit the pidfd
	// saw first to their VM, for the exit source's late report.
	recent map[int]string
	order  []int
}

// recentKeep is how many exits handled by pidfds Exited still recognises.
const recentKeep = 64

// UseExits has x watch every VM process: those that run now and those
// started later. It returns the first error of x.Watch, having tried all.
func (h *Hypervisor) UseExits(x Exits) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.exits = x
	var first error
	for _, w := range h.vms {
		if err := x.Watch(w.id.PID); err != nil && first == nil {
			first = fmt.Errorf("proc: watch VM %s's exit (pid %d): %w", w.name, w.id.PID, err)
		}
	}
	return first
}

// Exited is the exit source's report that process pid exited. If it ran a
// VM, the VM is handled at once as its pidfd would be a moment later:
// forgotten, its pidfile removed, and onExit called unless it was asked
// to stop. It returns the VM's name ("" for a process that ran none) and
// whether this report came first: false when the pidfd had already seen
// the exit.
func (h *Hypervisor) Exited(pid int) (name string, first bool) {
	h.mu.Lock()
	var w *watch
	for _, x := range h.vms {
		if x.id.PID == pid {
			w = x
			break
		}
	}
	if w == nil {
		name := h.recent[pid]
		h.mu.Unlock()
		return name, false
	}
	notify := h.gone(w)
	delete(h.recent, pid)
	h.mu.Unlock()
	if notify {
		h.onExit(w.name)
	}
	return w.name, true
}

// gone handles w's exit once, whoever saw it first (its pidfd or the exit
// source), and reports whether onExit is due. Callers hold h.mu.
func (h *Hypervisor) gone(w *watch) bool {
	if w.gone {
		return false
	}
	w.gone = true
	if h.vms[w.name] == w {
		delete(h.vms, w.name)
	}
	if h.exits != nil {
		if h.recent == nil {
			h.recent = map[int]string{}
		}
		h.recent[w.id.PID] = w.name
		h.order = append(h.order, w.id.PID)
		if len(h.order) > recentKeep {
			delete(h.recent, h.order[0])
			h.order = h.order[1:]
		}
	}
	removePidfile(h.dir, w.name, w.id)
	if h.exits != nil {
		_ = h.exits.Unwatch(w.id.PID) // the source forgets a process it reported by itself
	}
	return !w.stopping && !h.closed && h.onExit != nil
}

// New returns a hypervisor keeping pidfiles and logs in dir (created if
// needed) and running VMs as `exe lab-vm ...` (exe is the vigil binary). It
// adopts the VMs whose pidfiles name live processes and removes stale
// pidfiles. onExit, if not nil, is called from a watching goroutine when a
// VM exits without Stop or Kill having been asked; it may call Start but not
// Close.
func New(dir, exe string, onExit func(name string)) (*Hypervisor, error) {
	return NewWith(dir, exe, Options{}, onExit)
}

// NewWith is New for the VM program and shutdown of o; exe is only
// checked when o.Command is nil.
func NewWith(dir, exe string, o Options, onExit func(name string)) (*Hypervisor, error) {
	if o.Command == nil { // else the command names its own program
		if fi, err := os.Stat(exe); err != nil {
			return nil, fmt.Errorf("proc: VM program: %w (give the vigil binary's path)", err)
		} else if fi.IsDir() || fi.Mode()&0o111 == 0 {
			return nil, fmt.Errorf("proc: VM program %s is not an executable file: give the vigil binary's path", exe)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("proc: VM folder: %w (give a writable folder)", err)
	}
	h := &Hypervisor{dir: dir, exe: exe, opts: o, onExit: onExit, quit: make(chan struct{}), vms: map[string]*watch{}}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.scan(); err != nil {
		return nil, err
	}
	return h, nil
}

// Start starts vm unless it already runs (started here or adopted).
func (h *Hypervisor) Start(vm VM) error {
	if err := check(vm); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return fmt.Errorf("proc: start VM %s: %w", vm.Name, ErrClosed)
	}
	if h.live(vm.Name) != nil {
		return nil
	}
	return h.spawn(vm)
}

// spawn starts vm's process, writes its pidfile and watches it. Callers
// hold h.mu.
func (h *Hypervisor) spawn(vm VM) error {
	logPath := filepath.Join(h.dir, vm.Name+".log")
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("proc: start VM %s: log: %w", vm.Name, err)
	}
	var cmd *exec.Cmd
	if h.opts.Command != nil {
		if cmd, err = h.opts.Command(vm); err != nil {
			log.Close()
			return fmt.Errorf("proc: start VM %s: %w", vm.Name, err)
		}
	} else {
		cmd = exec.Command(h.exe, "lab-vm", "--name", vm.Name,
			"--cpu", strconv.Itoa(vm.CPU), "--memory-mib", strconv.Itoa(vm.MemoryMiB))
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Dir = "/"
	pidfd := -1
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, PidFD: &pidfd}
	err = cmd.Start()
	log.Close()
	if err != nil {
		return fmt.Errorf("proc: start VM %s: %w", vm.Name, err)
	}
	pid := cmd.Process.Pid
	// Until it is reaped the child keeps its PID, so what follows cannot
	// see another process.
	fail := func(err error) error {
		cmd.Process.Kill()
		cmd.Wait()
		if pidfd >= 0 {
			syscall.Close(pidfd)
		}
		return fmt.Errorf("proc: start VM %s: %w", vm.Name, err)
	}
	if pidfd < 0 {
		if pidfd, err = pidfdOpen(pid); err != nil {
			return fail(err)
		}
	}
	_, start, err := stat(pid)
	if err != nil {
		return fail(err)
	}
	id := procID{PID: pid, Start: start}
	if err := writePidfile(h.dir, vm.Name, id); err != nil {
		return fail(fmt.Errorf("pidfile: %w", err))
	}
	if err := h.watch(vm.Name, id, pidfd, cmd); err != nil {
		return fail(err)
	}
	if h.exits != nil {
		// An exit before this is the pidfd's to see.
		_ = h.exits.Watch(pid)
	}
	return nil
}

// Stop asks the VM to shut down (Options.Shutdown, or SIGTERM), then sends
// SIGKILL if it still runs after timeout,
// waits for it to exit and removes its pidfile. A VM that does not run is
// already stopped.
func (h *Hypervisor) Stop(name string, timeout time.Duration) error {
	return h.end(name, "stop", syscall.SIGTERM, timeout)
}

// Kill sends the VM SIGKILL, waits for it to exit and removes its pidfile.
func (h *Hypervisor) Kill(name string) error {
	return h.end(name, "kill", syscall.SIGKILL, 0)
}

// killWait bounds the wait for a VM's exit after SIGKILL.
const killWait = 10 * time.Second

func (h *Hypervisor) end(name, op string, sig syscall.Signal, timeout time.Duration) error {
	if err := checkName(name); err != nil {
		return err
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return fmt.Errorf("proc: %s VM %s: %w", op, name, ErrClosed)
	}
	w := h.live(name)
	if w == nil {
		h.mu.Unlock()
		return nil
	}
	w.stopping = true
	h.mu.Unlock()

	fail := func(err error) error { return fmt.Errorf("proc: %s VM %s (pid %d): %w", op, name, w.id.PID, err) }
	asked := false
	if sig == syscall.SIGTERM && h.opts.Shutdown != nil {
		asked = h.opts.Shutdown(name, w.id.PID) == nil // else SIGTERM
	}
	if !asked {
		if err := w.signal(sig); err != nil {
			return fail(err)
		}
	}
	// exited waits up to d for the VM to exit.
	exited := func(d time.Duration) (bool, error) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-w.done:
			return true, nil
		case <-h.quit:
			return false, fail(ErrClosed)
		case <-t.C:
			return false, nil
		}
	}
	if sig != syscall.SIGKILL {
		if done, err := exited(timeout); done || err != nil {
			return err
		}
		if err := w.signal(syscall.SIGKILL); err != nil {
			return fail(err)
		}
	}
	if done, err := exited(killWait); done || err != nil {
		return err
	}
	return fail(fmt.Errorf("still running %v after SIGKILL (stuck in the kernel?)", killWait))
}

// Running returns the sorted names of the VMs that run, from the pidfiles:
// it adopts live VMs it did not know and removes stale pidfiles.
func (h *Hypervisor) Running() ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, fmt.Errorf("proc: running VMs: %w", ErrClosed)
	}
	if err := h.scan(); err != nil {
		return nil, err
	}
	var names []string
	for name, w := range h.vms {
		if alive(w.id) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names, nil
}

// Close stops watching the VMs and leaves them running; onExit is not
// called after Close returns.
func (h *Hypervisor) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	close(h.quit)
	for _, w := range h.vms {
		w.f.Close()
	}
	h.mu.Unlock()
	h.wg.Wait()
	return nil
}

// live returns the watch of name's live VM, adopting it from its pidfile
// if needed, or nil. Callers hold h.mu.
func (h *Hypervisor) live(name string) *watch {
	if w := h.vms[name]; w != nil {
		if alive(w.id) {
			return w
		}
		return nil // it exited: its watcher is finishing
	}
	h.adopt(name)
	return h.vms[name]
}

// scan adopts every live VM of the pidfiles and removes stale pidfiles.
// Callers hold h.mu.
func (h *Hypervisor) scan() error {
	ents, err := os.ReadDir(h.dir)
	if err != nil {
		return fmt.Errorf("proc: read VM folder: %w", err)
	}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), pidSuffix)
		if !ok || checkName(name) != nil || h.vms[name] != nil {
			continue
		}
		h.adopt(name)
	}
	return nil
}

// adopt watches the VM of name's pidfile if it runs, and otherwise removes
// the pidfile. Callers hold h.mu.
func (h *Hypervisor) adopt(name string) {
	id, err := readPidfile(h.dir, name)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	stale := func() { os.Remove(pidPath(h.dir, name)) }
	if err != nil || !alive(id) {
		stale()
		return
	}
	fd, err := pidfdOpen(id.PID)
	if err != nil {
		stale()
		return
	}
	// The process may have died and its PID been reused before the pidfd
	// was opened: check again through the start time.
	if !alive(id) {
		syscall.Close(fd)
		stale()
		return
	}
	if err := h.watch(name, id, fd, nil); err != nil {
		syscall.Close(fd)
		return
	}
	if h.exits != nil {
		_ = h.exits.Watch(id.PID)
	}
}
