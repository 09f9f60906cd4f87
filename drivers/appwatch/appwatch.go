//go:build linux

// Package appwatch watches application processes: a host's daemons for
// the agent, a guest's applications for vigil guest. An application is
// found by process name, pidfile or systemd unit, or run by the watcher
// itself; once found its exit is seen at once through a pidfd, and a
// lookup every interval finds it again after a restart (by its own
// supervisor, or by Restart).
//
//	w := appwatch.New([]appwatch.App{{Name: "db", Process: "postgres"}}, time.Second,
//		func(s appwatch.State) { ... }) // every change: found, exited, restarted
//	go w.Run(ctx)
//	err := w.Restart(ctx, "db")
package appwatch

import (
	"context"
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

	"golang.org/x/sys/unix"
)

// App is one watched application. Exactly one of Process, Pidfile, Unit
// and Run finds it.
type App struct {
	Name string
	// Run is the application's command, which the watcher runs itself:
	// at the first lookup, and again on Restart.
	Run []string
	// Process is a process name: the kernel's comm (15 bytes at most) or
	// the base name of its executable.
	Process string
	// Pidfile holds the application's PID.
	Pidfile string
	// Unit is a systemd unit whose main process is the application.
	Unit string
	// Start starts (or restarts) the application; a unit's default is
	// systemctl restart UNIT. A command that stays in the foreground
	// is the application itself and runs as this process's child.
	Start []string
}

// Check validates a.
func (a App) Check() error {
	n := 0
	for _, s := range []string{a.Process, a.Pidfile, a.Unit, strings.Join(a.Run, " ")} {
		if s != "" {
			n++
		}
	}
	switch {
	case a.Name == "":
		return errors.New("appwatch: an application without a name: give it one")
	case n != 1:
		return fmt.Errorf("appwatch: application %s: set exactly one of process, pidfile, unit and run", a.Name)
	case a.Pidfile != "" && !filepath.IsAbs(a.Pidfile):
		return fmt.Errorf("appwatch: application %s: pidfile %q is not an absolute path", a.Name, a.Pidfile)
	}
	return nil
}

// State is what is known of one application.
type State struct {
	Name    string
	Running bool
	PID     int
	// Since is when it was last found running or seen to stop.
	Since time.Time
	// Detail says how it was found, or why it is not running.
	Detail string
	// Exits counts the exits seen since the watcher started.
	Exits int
}

// Watcher watches applications. Its methods are safe for concurrent use.
type Watcher struct {
	every    time.Duration
	onChange func(State)

	mu    sync.Mutex
	apps  map[string]*app
	order []string
	wake  chan struct{}
}

type app struct {
	App
	st      State
	watched int       // the PID a pidfd watch runs for, 0 when none
	started bool      // Run: started once
	run     *exec.Cmd // Run: the running command
}

// New returns a watcher of apps that looks for the ones not running every
// every, calling onChange (if not nil) on each change of state, from the
// watcher's goroutines.
func New(apps []App, every time.Duration, onChange func(State)) (*Watcher, error) {
	w := &Watcher{every: every, onChange: onChange, apps: map[string]*app{}, wake: make(chan struct{}, 1)}
	for _, a := range apps {
		if err := a.Check(); err != nil {
			return nil, err
		}
		if w.apps[a.Name] != nil {
			return nil, fmt.Errorf("appwatch: two applications are called %s", a.Name)
		}
		w.apps[a.Name] = &app{App: a, st: State{Name: a.Name, Detail: "not looked for yet"}}
		w.order = append(w.order, a.Name)
	}
	return w, nil
}

// States returns every application's state, in the order given to New.
func (w *Watcher) States() []State {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]State, 0, len(w.order))
	for _, n := range w.order {
		out = append(out, w.apps[n].st)
	}
	return out
}

// Run looks for the applications now and every interval, until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		w.scan(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.wake:
		}
	}
}

// scan finds every application that is not known to run.
func (w *Watcher) scan(ctx context.Context) {
	w.mu.Lock()
	var todo []*app
	for _, n := range w.order {
		if a := w.apps[n]; a.watched == 0 {
			todo = append(todo, a)
		}
	}
	w.mu.Unlock()
	for _, a := range todo {
		if len(a.Run) > 0 {
			w.mu.Lock()
			first := !a.started
			a.started = true
			w.mu.Unlock()
			if first {
				if err := w.runApp(ctx, a); err != nil {
					w.set(a, State{Running: false, Detail: err.Error()}, false)
				}
			} else if w.runPID(a) == 0 {
				w.set(a, State{Running: false, Detail: "stopped: waiting for a restart"}, false)
			}
			continue
		}
		pid, how, err := find(ctx, a.App)
		if err != nil || pid == 0 {
			why := how
			if err != nil {
				why = err.Error()
			}
			w.set(a, State{Running: false, Detail: why}, false)
			continue
		}
		w.follow(ctx, a, pid, how)
	}
}

// follow watches pid as a's process through a pidfd.
func (w *Watcher) follow(ctx context.Context, a *app, pid int, how string) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return // gone already: the next scan says so
	}
	w.mu.Lock()
	if a.watched != 0 {
		w.mu.Unlock()
		unix.Close(fd)
		return
	}
	a.watched = pid
	w.mu.Unlock()
	w.set(a, State{Running: true, PID: pid, Detail: how}, false)
	go func() {
		defer unix.Close(fd)
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			_, err := unix.Poll(fds, -1)
			if !errors.Is(err, unix.EINTR) {
				break
			}
		}
		w.mu.Lock()
		a.watched = 0
		w.mu.Unlock()
		w.set(a, State{Running: false, Detail: fmt.Sprintf("process %d exited", pid)}, true)
		select {
		case w.wake <- struct{}{}: // look for it again now: a supervisor may restart it at once
		default:
		}
	}()
}

// set records a's new state and reports a change.
func (w *Watcher) set(a *app, st State, exited bool) {
	w.mu.Lock()
	old := a.st
	st.Name, st.Exits, st.Since = a.Name, old.Exits, old.Since
	if exited {
		st.Exits++
	}
	changed := st.Running != old.Running || st.PID != old.PID || exited || (!st.Running && st.Detail != old.Detail)
	if changed {
		st.Since = time.Now()
	}
	a.st = st
	w.mu.Unlock()
	if changed && w.onChange != nil {
		w.onChange(st)
	}
}

// runApp starts a Run application and watches its process.
func (w *Watcher) runApp(ctx context.Context, a *app) error {
	cmd := exec.Command(a.Run[0], a.Run[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", strings.Join(a.Run, " "), err)
	}
	go cmd.Wait() // reaped whenever it ends; the pidfd reports the exit
	w.mu.Lock()
	a.run = cmd
	w.mu.Unlock()
	w.follow(ctx, a, cmd.Process.Pid, "run by this agent")
	return nil
}

// runPID is the PID of a Run application's live command, or 0.
func (w *Watcher) runPID(a *app) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if a.run == nil || a.watched == 0 {
		return 0
	}
	return a.run.Process.Pid
}

// Restart starts the application again: a Run application's command, or
// its Start command (for a unit, systemctl restart UNIT by default); and
// looks for it at once.
func (w *Watcher) Restart(ctx context.Context, name string) error {
	w.mu.Lock()
	a := w.apps[name]
	w.mu.Unlock()
	if a == nil {
		return fmt.Errorf("appwatch: no application is called %s", name)
	}
	if len(a.Run) > 0 {
		if w.runPID(a) != 0 {
			return nil // it runs
		}
		return w.runApp(ctx, a)
	}
	argv := a.Start
	if len(argv) == 0 && a.Unit != "" {
		argv = []string{"systemctl", "restart", a.Unit}
	}
	if len(argv) == 0 {
		return fmt.Errorf("appwatch: application %s has no start command: give it one", name)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("appwatch: start %s: %w", name, err)
	}
	// A command that ends is a starter (systemctl, an init script); one
	// that runs on may be the application itself, reaped whenever it ends.
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("appwatch: start %s: %s: %w", name, strings.Join(argv, " "), err)
		}
	case <-time.After(startSettle):
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return nil
}

// startSettle is how long a start command may take to return before it is
// taken for the application itself.
const startSettle = 200 * time.Millisecond

// find looks for a's process: its PID (0: not running) and how it was
// found, or why not.
func find(ctx context.Context, a App) (int, string, error) {
	switch {
	case a.Pidfile != "":
		b, err := os.ReadFile(a.Pidfile)
		if errors.Is(err, os.ErrNotExist) {
			return 0, "no pidfile " + a.Pidfile, nil
		}
		if err != nil {
			return 0, "", fmt.Errorf("read %s: %w", a.Pidfile, err)
		}
		f := strings.Fields(string(b))
		pid, err := 0, error(nil)
		if len(f) > 0 {
			pid, err = strconv.Atoi(f[0])
		}
		if len(f) == 0 || err != nil || pid <= 0 {
			return 0, "", fmt.Errorf("%s holds no PID: %.40q", a.Pidfile, b)
		}
		if !alive(pid) {
			return 0, fmt.Sprintf("the PID %d of %s is not running", pid, a.Pidfile), nil
		}
		return pid, "PID from " + a.Pidfile, nil
	case a.Unit != "":
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "systemctl", "show", "--property=MainPID", "--value", a.Unit).Output()
		if err != nil {
			return 0, "", fmt.Errorf("systemctl show %s: %w", a.Unit, err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
		if err != nil || pid == 0 {
			return 0, "unit " + a.Unit + " has no main process", nil
		}
		return pid, "main process of " + a.Unit, nil
	}
	pids := byName(a.Process)
	if len(pids) == 0 {
		return 0, "no process called " + a.Process, nil
	}
	return pids[0], "process " + a.Process, nil
}

// byName lists the PIDs of live processes called name (comm or the base
// name of the executable), oldest first.
func byName(name string) []int {
	ents, _ := os.ReadDir("/proc")
	type p struct {
		pid   int
		start uint64
	}
	var found []p
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		comm, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err != nil {
			continue
		}
		match := strings.TrimSpace(string(comm)) == name
		if !match {
			if exe, err := os.Readlink("/proc/" + e.Name() + "/exe"); err == nil {
				match = filepath.Base(exe) == name
			}
		}
		if !match {
			continue
		}
		st := stat(pid)
		if st == nil || st[0] == "Z" {
			continue
		}
		start, _ := strconv.ParseUint(st[19], 10, 64)
		found = append(found, p{pid, start})
	}
	sort.Slice(found, func(i, j int) bool { return found[i].start < found[j].start })
	out := make([]int, len(found))
	for i, f := range found {
		out[i] = f.pid
	}
	return out
}

// stat returns the fields of /proc/PID/stat after the command name, nil
// when pid is gone.
func stat(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return nil
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return nil
	}
	return f
}

// alive reports whether pid runs and is not a zombie.
func alive(pid int) bool {
	st := stat(pid)
	return st != nil && st[0] != "Z" && st[0] != "X"
}
