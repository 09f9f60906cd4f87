//go:build linux && !vigil_nohvproc

package proc

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// failsafe bounds every wait; tests wait on channels, never sleep.
const failsafe = 10 * time.Second

// rig is a Hypervisor on a temporary folder with the test binary as the VM
// program, recording onExit calls.
type rig struct {
	t     *testing.T
	dir   string
	h     *Hypervisor
	exits chan string
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{t: t, dir: t.TempDir()}
	r.open()
	return r
}

// open starts a new Hypervisor on the rig's folder.
func (r *rig) open() {
	r.t.Helper()
	exe, err := os.Executable()
	if err != nil {
		r.t.Fatal(err)
	}
	exits := make(chan string, 16)
	h, err := New(r.dir, exe, func(name string) { exits <- name })
	if err != nil {
		r.t.Fatal(err)
	}
	r.h, r.exits = h, exits
	r.t.Cleanup(func() {
		// Leave no VM behind: kill what still runs (never this process,
		// which a broken PID check could take for a VM).
		if names, err := h.Running(); err == nil {
			for _, n := range names {
				if id, err := readPidfile(r.dir, n); err == nil && id.PID != os.Getpid() {
					h.Kill(n)
				}
			}
		}
		h.Close()
	})
}

// start starts a VM and waits until it is ready.
func (r *rig) start(name string) procID {
	r.t.Helper()
	if err := r.h.Start(VM{Name: name, CPU: 1, MemoryMiB: 64}); err != nil {
		r.t.Fatal(err)
	}
	r.wait(name + " ready")
	return r.pidfile(name)
}

// wait waits for a VM's report.
func (r *rig) wait(event string) {
	r.t.Helper()
	deadline := time.After(failsafe)
	for {
		select {
		case e := <-events:
			if e == event {
				return
			}
		case <-deadline:
			r.t.Fatalf("no %q from the VM", event)
		}
	}
}

func (r *rig) pidfile(name string) procID {
	r.t.Helper()
	id, err := readPidfile(r.dir, name)
	if err != nil {
		r.t.Fatal(err)
	}
	return id
}

func (r *rig) wantRunning(want ...string) {
	r.t.Helper()
	got, err := r.h.Running()
	if err != nil {
		r.t.Fatal(err)
	}
	if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		r.t.Fatalf("Running() = %q; want %q", got, want)
	}
}

func (r *rig) wantExit(name string) {
	r.t.Helper()
	select {
	case got := <-r.exits:
		if got != name {
			r.t.Fatalf("onExit(%s); want onExit(%s)", got, name)
		}
	case <-time.After(failsafe):
		r.t.Fatalf("no onExit(%s)", name)
	}
}

// noExit checks that onExit was not called. Stop and Kill return only
// after any onExit of their VM, so this needs no wait.
func (r *rig) noExit() {
	r.t.Helper()
	select {
	case got := <-r.exits:
		r.t.Fatalf("unexpected onExit(%s)", got)
	default:
	}
}

func gone(id procID) bool { return !alive(id) }

func TestStart(t *testing.T) {
	r := newRig(t)
	id := r.start("web1")
	if !alive(id) {
		t.Fatalf("pidfile %v names no live process", id)
	}
	if err := r.h.Start(VM{Name: "web1", CPU: 1, MemoryMiB: 64}); err != nil {
		t.Fatal(err)
	}
	if again := r.pidfile("web1"); again != id {
		t.Errorf("second Start replaced the VM: pidfile %v, was %v", again, id)
	}
	r.wantRunning("web1")
	log, err := os.ReadFile(filepath.Join(r.dir, "web1.log"))
	if err != nil || !strings.Contains(string(log), "lab-vm web1: --cpu 1 --memory-mib 64") {
		t.Errorf("log %q, %v; want the VM's line with its size", log, err)
	}
	// The VM leads its own session.
	if sid, err := unix.Getsid(id.PID); err != nil || sid != id.PID {
		t.Errorf("VM session %d, %v; want %d", sid, err, id.PID)
	}
}

func TestStartInvalid(t *testing.T) {
	r := newRig(t)
	tests := []struct {
		name string
		vm   VM
		want string
	}{
		{name: "empty name", vm: VM{CPU: 1, MemoryMiB: 1}, want: "invalid VM name"},
		{name: "path in name", vm: VM{Name: "../x", CPU: 1, MemoryMiB: 1}, want: "invalid VM name"},
		{name: "hidden name", vm: VM{Name: ".x", CPU: 1, MemoryMiB: 1}, want: "invalid VM name"},
		{name: "no cpu", vm: VM{Name: "x", MemoryMiB: 1}, want: "at least 1"},
		{name: "no memory", vm: VM{Name: "x", CPU: 1}, want: "at least 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := r.h.Start(tc.vm)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Start(%+v) = %v; want %q", tc.vm, err, tc.want)
			}
		})
	}
	r.wantRunning()
}

func TestStop(t *testing.T) {
	tests := []struct {
		name    string
		vm      string
		timeout time.Duration
		term    bool // the VM sees SIGTERM
		end     func(h *Hypervisor, name string) error
	}{
		{name: "stop", vm: "db1", timeout: failsafe, term: true, end: func(h *Hypervisor, n string) error { return h.Stop(n, failsafe) }},
		{name: "stop escalates to SIGKILL", vm: "stubborn1", term: true, end: func(h *Hypervisor, n string) error { return h.Stop(n, 300*time.Millisecond) }},
		{name: "kill", vm: "db2", end: (*Hypervisor).Kill},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			id := r.start(tc.vm)
			r.start("other")
			if err := tc.end(r.h, tc.vm); err != nil {
				t.Fatal(err)
			}
			if !gone(id) {
				t.Fatalf("VM %v still runs", id)
			}
			if tc.term {
				r.wait(tc.vm + " term")
			}
			if _, err := os.Stat(pidPath(r.dir, tc.vm)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("pidfile left: %v", err)
			}
			r.noExit()
			r.wantRunning("other")
			if err := tc.end(r.h, tc.vm); err != nil {
				t.Errorf("second stop of a stopped VM: %v", err)
			}
		})
	}
}

func TestOnExit(t *testing.T) {
	tests := []struct {
		name string
		run  func(r *rig) string
	}{
		{name: "killed from outside", run: func(r *rig) string {
			id := r.start("vm1")
			syscall.Kill(id.PID, syscall.SIGKILL)
			return "vm1"
		}},
		{name: "exits at once", run: func(r *rig) string {
			if err := r.h.Start(VM{Name: "crash1", CPU: 1, MemoryMiB: 1}); err != nil {
				r.t.Fatal(err)
			}
			return "crash1"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			name := tc.run(r)
			r.wantExit(name)
			if _, err := os.Stat(pidPath(r.dir, name)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("pidfile of the dead VM left: %v", err)
			}
			r.wantRunning()
			// The agent restarts it.
			r.start("vm2")
			r.wantRunning("vm2")
		})
	}
}

func TestAdoption(t *testing.T) {
	r := newRig(t)
	a := r.start("a")
	b := r.start("b")
	first := r.h
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := first.Running(); !errors.Is(err, ErrClosed) {
		t.Errorf("Running after Close = %v; want ErrClosed", err)
	}
	if !alive(a) || !alive(b) {
		t.Fatal("Close stopped the VMs")
	}

	r.open() // the agent restarted
	r.wantRunning("a", "b")
	if err := r.h.Start(VM{Name: "a", CPU: 1, MemoryMiB: 64}); err != nil {
		t.Fatal(err)
	}
	if got := r.pidfile("a"); got != a {
		t.Errorf("Start of an adopted VM replaced it: %v, was %v", got, a)
	}
	syscall.Kill(a.PID, syscall.SIGKILL)
	r.wantExit("a")
	if err := r.h.Stop("b", failsafe); err != nil {
		t.Fatal(err)
	}
	r.wait("b term")
	if !gone(b) {
		t.Error("adopted VM b still runs after Stop")
	}
	r.noExit()
	r.wantRunning()
}

func TestStalePidfile(t *testing.T) {
	self, err := readSelf()
	if err != nil {
		t.Fatal(err)
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		content string
	}{
		{name: "dead pid", content: string(formatPidfile(procID{PID: dead.Process.Pid, Start: self.Start}))},
		{name: "reused pid", content: string(formatPidfile(procID{PID: self.PID, Start: self.Start + 1}))},
		{name: "garbage", content: "not a pidfile\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(pidPath(dir, "old"), []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			r := &rig{t: t, dir: dir}
			r.open()
			r.wantRunning()
			if _, err := os.Stat(pidPath(dir, "old")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("stale pidfile left: %v", err)
			}
			if err := r.h.Stop("old", time.Second); err != nil {
				t.Errorf("Stop of a stale VM: %v", err)
			}
			id := r.start("old")
			if id.PID == self.PID {
				t.Error("Start took the reused PID for the VM")
			}
			r.wantRunning("old")
		})
	}
}

// TestStaleAtStart: a pidfile that goes stale while the hypervisor runs is
// ignored by Start, which starts the VM again.
func TestStaleAtStart(t *testing.T) {
	r := newRig(t)
	self, err := readSelf()
	if err != nil {
		t.Fatal(err)
	}
	if err := writePidfile(r.dir, "late", procID{PID: self.PID, Start: self.Start + 1}); err != nil {
		t.Fatal(err)
	}
	id := r.start("late")
	if id.PID == self.PID || !alive(id) {
		t.Errorf("VM %v: want a new live process", id)
	}
}

func readSelf() (procID, error) {
	_, start, err := stat(os.Getpid())
	return procID{PID: os.Getpid(), Start: start}, err
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	tests := []struct {
		name, dir, exe, want string
	}{
		{name: "no program", dir: dir, exe: filepath.Join(dir, "nope"), want: "vigil binary"},
		{name: "program not executable", dir: dir, exe: file, want: "not an executable"},
		{name: "folder is a file", dir: file, exe: "/bin/sh", want: "writable folder"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := New(tc.dir, tc.exe, nil)
			if err == nil {
				h.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v; want %q", err, tc.want)
			}
		})
	}
}

// TestNewWith: a hypervisor with its own VM command and shutdown runs the
// command under the same supervision, asks Shutdown first on Stop, and
// falls back to SIGTERM when Shutdown fails.
func TestNewWith(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	type asked struct {
		name string
		pid  int
	}
	shut := make(chan asked, 4)
	o := Options{
		Command: func(vm VM) (*exec.Cmd, error) {
			if vm.Name == "refused" {
				return nil, errors.New("no definition for refused")
			}
			return exec.Command(exe, "lab-vm", "--name", vm.Name, "--cpu", "7", "--memory-mib", "9"), nil
		},
		Shutdown: func(name string, pid int) error {
			shut <- asked{name, pid}
			if name == "nobutton" {
				return errors.New("no ACPI button")
			}
			return syscall.Kill(pid, syscall.SIGINT) // the VM's own way down
		},
	}
	h, err := NewWith(dir, "/nonexistent", o, nil)
	if err != nil {
		t.Fatalf("NewWith with a command needs no exe: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	if err := h.Start(VM{Name: "refused", CPU: 1, MemoryMiB: 1}); err == nil || !strings.Contains(err.Error(), "no definition for refused") {
		t.Fatalf("Start with a failing command: %v", err)
	}
	r := &rig{t: t, dir: dir, h: h}
	for _, name := range []string{"web1", "nobutton"} {
		if err := h.Start(VM{Name: name, CPU: 1, MemoryMiB: 64}); err != nil {
			t.Fatal(err)
		}
		r.wait(name + " ready")
		id := r.pidfile(name)
		log, err := os.ReadFile(filepath.Join(dir, name+".log"))
		if err != nil || !strings.Contains(string(log), "lab-vm "+name+": --cpu 7 --memory-mib 9") {
			t.Fatalf("%s's log %q (%v): want the command's arguments", name, log, err)
		}
		if err := h.Stop(name, failsafe); err != nil {
			t.Fatal(err)
		}
		if a := <-shut; a != (asked{name, id.PID}) {
			t.Fatalf("Shutdown(%s, %d); want (%s, %d)", a.name, a.pid, name, id.PID)
		}
		r.wait(name + " term") // SIGINT from Shutdown, or the SIGTERM fallback
		if !gone(id) {
			t.Fatalf("%s still runs", name)
		}
	}
	if err := h.Kill("web1"); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-shut:
		t.Fatalf("Shutdown(%s) on a kill of a stopped VM", a.name)
	default:
	}
}
