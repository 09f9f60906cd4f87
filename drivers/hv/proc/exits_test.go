//go:build linux && !vigil_nohvproc

package proc

import (
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fakeExits records what the hypervisor asks an exit source to watch.
type fakeExits struct {
	mu      sync.Mutex
	watched []int
}

func (f *fakeExits) Watch(pid int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.watched = append(f.watched, pid)
	return nil
}

func (f *fakeExits) Unwatch(pid int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.watched = slices.DeleteFunc(f.watched, func(p int) bool { return p == pid })
	return nil
}

func (f *fakeExits) has(pid int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.watched, pid)
}

// TestExitSource: an exit source's report handles the VM at once, and the
// pidfd's wake-up for the same exit does not handle it a second time.
func TestExitSource(t *testing.T) {
	r := newRig(t)
	old := r.start("vm0") // runs before the source is given: watched by UseExits
	x := &fakeExits{}
	if err := r.h.UseExits(x); err != nil {
		t.Fatal(err)
	}
	if !x.has(old.PID) {
		t.Fatalf("UseExits did not watch the running VM (pid %d): %v", old.PID, x.watched)
	}
	id := r.start("vm1")
	if !x.has(id.PID) {
		t.Fatalf("a started VM (pid %d) is not watched: %v", id.PID, x.watched)
	}
	if got, first := r.h.Exited(999999999); got != "" || first {
		t.Fatalf("Exited(a pid no VM has) = %q, %v", got, first)
	}
	r.h.mu.Lock()
	w := r.h.vms["vm1"]
	r.h.mu.Unlock()
	// The source reports the exit before the pidfd wakes (here, before the
	// process has even died, to make the order certain).
	if got, first := r.h.Exited(id.PID); got != "vm1" || !first {
		t.Fatalf("Exited(%d) = %q, %v; want vm1, first", id.PID, got, first)
	}
	r.wantExit("vm1")
	if x.has(id.PID) {
		t.Fatalf("the reported process is still watched")
	}
	r.wantRunning("vm0")
	syscall.Kill(id.PID, syscall.SIGKILL)
	select {
	case <-w.done:
	case <-time.After(failsafe):
		t.Fatal("the pidfd watcher never finished")
	}
	r.noExit() // the pidfd saw the same exit: no second onExit
	// A VM stopped on request is no unexpected exit, whoever reports it.
	if err := r.h.Stop("vm0", time.Second); err != nil {
		t.Fatal(err)
	}
	if got, first := r.h.Exited(old.PID); got != "vm0" || first {
		t.Fatalf("Exited after Stop = %q, %v; want vm0, not first", got, first)
	}
	r.noExit()
	// The pidfd sees an exit first: the source's late report still names
	// the VM, and changes nothing.
	late := r.start("vm2")
	syscall.Kill(late.PID, syscall.SIGKILL)
	r.wantExit("vm2")
	if got, first := r.h.Exited(late.PID); got != "vm2" || first {
		t.Fatalf("late Exited = %q, %v; want vm2, not first", got, first)
	}
	r.noExit()
}
