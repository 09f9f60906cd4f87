// Package proc is the lab's process hypervisor: a VM is a long-running
// process (`vigil lab-vm`) in the host's namespace with a declared CPU and
// memory size. Each VM has a pidfile holding its PID and the process start
// time, so that an agent that restarts adopts the VMs that still run and a
// reused PID is never taken for a VM.
//
//	h, err := proc.New("/run/vigil/vms", exe, func(name string) {
//		// the VM died without being asked to stop: report it
//	})
//	err = h.Start(proc.VM{Name: "web1", CPU: 2, MemoryMiB: 2048})
//	names, err := h.Running()
//	err = h.Stop("web1", 10*time.Second) // SIGTERM, then SIGKILL
//	err = h.Close()                      // stops watching; VMs keep running
//
// Every started or adopted VM is watched through a pidfd, so its exit is
// seen at once, without polling. The package works on Linux only.
package proc

import (
	"errors"
	"fmt"
	"os/exec"
	"regexp"

	"github.com/vigil-ha/vigil/drivers/hv"
)

// VM is a lab VM's definition: hv.VM.
type VM = hv.VM

// Options run another VM program than vigil lab-vm under the same
// supervision (pidfiles, pidfds, adoption after an agent restart): the
// QEMU driver runs QEMU this way.
type Options struct {
	// Command returns the unstarted command that runs vm; nil runs
	// `exe lab-vm`. Its standard output and error, working folder and
	// session are set by the hypervisor.
	Command func(vm VM) (*exec.Cmd, error)
	// Shutdown asks the VM of name, process pid, to shut down by itself
	// (an ACPI power button); nil sends SIGTERM. On an error Stop sends
	// SIGTERM instead.
	Shutdown func(name string, pid int) error
}

// ErrClosed is wrapped by the errors of calls after Close.
var ErrClosed = errors.New("process hypervisor is closed")

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// checkName reports whether name can name a VM.
func checkName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("proc: invalid VM name %q: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

// check validates vm.
func check(vm VM) error {
	if err := checkName(vm.Name); err != nil {
		return err
	}
	if vm.CPU < 1 || vm.MemoryMiB < 1 {
		return fmt.Errorf("proc: VM %s: cpu %d and memory %d MiB must both be at least 1: fix the VM's definition", vm.Name, vm.CPU, vm.MemoryMiB)
	}
	return nil
}

var _ hv.Hypervisor = (*Hypervisor)(nil)
