// Package hvtest provides an in-memory hv.Hypervisor for tests of code that
// starts and stops VMs.
//
//	h := hvtest.New(func(name string) { exited <- name })
//	h.Adopt("db1")                       // runs from before the agent started
//	agent := newAgent(h)
//	...
//	h.Fail(hvtest.OpStart, errNoMemory)  // starts fail until Fail(OpStart, nil)
//	h.Exit("web1")                       // web1 dies on its own: onExit("web1")
//	calls := h.Calls()                   // "start web1", "stop web1 30s", "kill web1"
//
// Start marks a VM running, Stop and Kill mark it stopped, Running lists
// the running ones, sorted. Names are checked as the lab's hypervisor
// checks them. The methods are safe for concurrent use.
package hvtest

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/drivers/hv"
)

// Operation names, as Fail takes them and Calls reports them.
const (
	OpStart   = "start"
	OpStop    = "stop"
	OpKill    = "kill"
	OpRunning = "running"
	OpClose   = "close"
)

// ErrClosed is wrapped by the errors of calls after Close.
var ErrClosed = errors.New("hvtest: hypervisor is closed")

// ErrInvalidVM is wrapped by the error of a call with a VM name or size the
// lab's hypervisor would refuse.
var ErrInvalidVM = errors.New("hvtest: invalid VM")

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Fake is an in-memory hypervisor that records every call made to it.
type Fake struct {
	mu      sync.Mutex
	onExit  func(name string)
	vms     map[string]hv.VM // running
	calls   []string
	fail    map[string]error
	closed  bool
	started map[string]int // successful starts of a VM that was not running
}

var _ hv.Hypervisor = (*Fake)(nil)

// New returns a Fake with no VM running. onExit, which may be nil, hears
// about every VM that Exit kills, as a real hypervisor reports a VM that
// exits without being asked to.
func New(onExit func(name string)) *Fake {
	return &Fake{onExit: onExit, vms: map[string]hv.VM{}, fail: map[string]error{}, started: map[string]int{}}
}

// Fail makes every later call of op (OpStart, OpStop, ...) return an error
// wrapping err, until Fail(op, nil). A failed call changes no VM. It
// panics on an unknown op.
func (f *Fake) Fail(op string, err error) {
	switch op {
	case OpStart, OpStop, OpKill, OpRunning, OpClose:
	default:
		panic(fmt.Sprintf("hvtest: Fail(%q): the operations are %s, %s, %s, %s and %s", op, OpStart, OpStop, OpKill, OpRunning, OpClose))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.fail, op)
		return
	}
	f.fail[op] = err
}

// begin records call and returns the error op must fail with, if any.
// Callers hold f.mu.
func (f *Fake) begin(op, name, call string) error {
	f.calls = append(f.calls, call)
	what := op
	if name != "" {
		what += " VM " + name
	}
	if err := f.fail[op]; err != nil {
		return fmt.Errorf("hvtest: %s: %w", what, err)
	}
	if f.closed && op != OpClose {
		return fmt.Errorf("hvtest: %s: %w", what, ErrClosed)
	}
	if op != OpRunning && op != OpClose && !validName.MatchString(name) {
		return fmt.Errorf("hvtest: %s: name %q: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit: %w", what, name, ErrInvalidVM)
	}
	return nil
}

// Start marks vm running; starting a running VM changes nothing.
func (f *Fake) Start(vm hv.VM) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(OpStart, vm.Name, OpStart+" "+vm.Name); err != nil {
		return err
	}
	if vm.CPU < 1 || vm.MemoryMiB < 1 {
		return fmt.Errorf("hvtest: start VM %s: cpu %d and memory %d MiB must both be at least 1: %w", vm.Name, vm.CPU, vm.MemoryMiB, ErrInvalidVM)
	}
	if _, ok := f.vms[vm.Name]; !ok {
		f.vms[vm.Name] = vm
		f.started[vm.Name]++
	}
	return nil
}

// Stop marks the VM stopped at once, whatever the timeout; stopping a VM
// that does not run is not an error. onExit is not called.
func (f *Fake) Stop(name string, timeout time.Duration) error {
	return f.end(OpStop, name, fmt.Sprintf("%s %s %v", OpStop, name, timeout))
}

// Kill marks the VM stopped; killing a VM that does not run is not an
// error. onExit is not called.
func (f *Fake) Kill(name string) error {
	return f.end(OpKill, name, OpKill+" "+name)
}

func (f *Fake) end(op, name, call string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(op, name, call); err != nil {
		return err
	}
	delete(f.vms, name)
	return nil
}

// Running returns the names of the running VMs, sorted.
func (f *Fake) Running() ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(OpRunning, "", OpRunning); err != nil {
		return nil, err
	}
	return slices.Sorted(maps.Keys(f.vms)), nil
}

// Close makes every later call but Close fail with an error wrapping
// ErrClosed; the VMs keep running and onExit is not called any more.
// Closing twice is not an error.
func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(OpClose, "", OpClose); err != nil {
		return err
	}
	f.closed = true
	return nil
}
