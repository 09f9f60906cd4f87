package hvtest

import (
	"slices"
	"strings"

	"github.com/vigil-ha/vigil/drivers/hv"
)

// Adopt marks VMs running without a call, as VMs left running by an agent
// that restarted; their size is unknown (zero). Adopting a running VM
// changes nothing. It is not recorded in Calls.
func (f *Fake) Adopt(names ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range names {
		if _, ok := f.vms[n]; !ok {
			f.vms[n] = hv.VM{Name: n}
		}
	}
}

// Exit simulates the VM dying on its own: it marks it stopped and calls
// onExit(name) on the caller's goroutine, without the Fake's lock, unless
// the Fake is closed. It reports whether the VM was running; a VM that was
// not is left alone and onExit is not called. It is not recorded in Calls.
func (f *Fake) Exit(name string) bool {
	f.mu.Lock()
	_, ok := f.vms[name]
	delete(f.vms, name)
	cb := f.onExit
	if f.closed {
		cb = nil
	}
	f.mu.Unlock()
	if ok && cb != nil {
		cb(name)
	}
	return ok
}

// IsRunning reports whether the VM runs, without recording a call.
func (f *Fake) IsRunning(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.vms[name]
	return ok
}

// VMs returns the running VMs as they were started (an adopted VM has only
// its name), sorted by name, without recording a call.
func (f *Fake) VMs() []hv.VM {
	f.mu.Lock()
	defer f.mu.Unlock()
	vms := make([]hv.VM, 0, len(f.vms))
	for _, vm := range f.vms {
		vms = append(vms, vm)
	}
	slices.SortFunc(vms, func(a, b hv.VM) int { return strings.Compare(a.Name, b.Name) })
	return vms
}

// Starts returns how many times a Start call started the VM from stopped:
// a Start of a running VM does not count, nor does Adopt.
func (f *Fake) Starts(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.started[name]
}

// Closed reports whether Close succeeded.
func (f *Fake) Closed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// Calls returns every call made, failed ones included, in order: "start
// web1", "stop web1 30s", "kill web1", "running", "close".
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}
