// Package hv is what the agent asks of a hypervisor, whatever runs the
// VMs: the lab's processes (package proc) or, to come, QEMU.
//
//	var h hv.Hypervisor = procHypervisor
//	err := h.Start(hv.VM{Name: "web1", CPU: 2, MemoryMiB: 2048})
//	names, err := h.Running() // what runs now, after an agent restart too
//	err = h.Stop("web1", 30*time.Second)
//
// Package hvtest holds a fake for tests.
package hv

import "time"

// VM is what a hypervisor needs to run a VM.
type VM struct {
	// Name identifies the VM: letters, digits, '.', '_' and '-', starting
	// with a letter or digit.
	Name string
	// CPU is the number of virtual CPUs.
	CPU int
	// MemoryMiB is the memory size in MiB.
	MemoryMiB int
}

// Hypervisor runs this host's VMs. A VM that exits without being asked to
// is reported to the callback its constructor took.
type Hypervisor interface {
	// Start starts vm; starting a VM that runs is not an error.
	Start(vm VM) error
	// Stop asks the VM to shut down and kills it after timeout.
	Stop(name string, timeout time.Duration) error
	// Kill powers the VM off at once.
	Kill(name string) error
	// Running lists the VMs that run, sorted by name.
	Running() ([]string, error)
	// Close stops watching the VMs; they keep running.
	Close() error
}
