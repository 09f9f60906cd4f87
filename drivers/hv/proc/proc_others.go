//go:build !linux || vigil_nohvproc

package proc

import "time"

// Hypervisor runs lab VMs as processes; on this system, or in this build,
// it cannot: every call fails with errUnsupported.
type Hypervisor struct{}

// New fails: the process hypervisor works on Linux only, in a build with CONFIG_HV_PROC.
func New(dir, exe string, onExit func(name string)) (*Hypervisor, error) {
	return nil, errUnsupported
}

// NewWith fails: the process hypervisor works on Linux only, in a build with CONFIG_HV_PROC.
func NewWith(dir, exe string, o Options, onExit func(name string)) (*Hypervisor, error) {
	return nil, errUnsupported
}

// Start fails: the process hypervisor works on Linux only, in a build with CONFIG_HV_PROC.
func (h *Hypervisor) Start(vm VM) error { return errUnsupported }

// Stop fails: the process hypervisor works on Linux only, in a build with CONFIG_HV_PROC.
func (h *Hypervisor) Stop(name string, timeout time.Duration) error { return errUnsupported }

// Kill fails: the process hypervisor works on Linux only, in a build with CONFIG_HV_PROC.
func (h *Hypervisor) Kill(name string) error { return errUnsupported }

// Running fails: the process hypervisor works on Linux only, in a build with CONFIG_HV_PROC.
func (h *Hypervisor) Running() ([]string, error) { return nil, errUnsupported }

// Close does nothing.
func (h *Hypervisor) Close() error { return nil }

// UseExits fails: the process hypervisor works on Linux only, in a build with CONFIG_HV_PROC.
func (h *Hypervisor) UseExits(x Exits) error { return errUnsupported }

// Exited finds nothing: the process hypervisor works on Linux only, in a build with CONFIG_HV_PROC.
func (h *Hypervisor) Exited(pid int) (name string, first bool) { return "", false }
