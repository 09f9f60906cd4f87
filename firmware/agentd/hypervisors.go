package agentd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"time"

	"github.com/vigil-ha/vigil/drivers/hv"
	"github.com/vigil-ha/vigil/drivers/hv/proc"
	"github.com/vigil-ha/vigil/drivers/hv/qemu"
	"github.com/vigil-ha/vigil/drivers/hv/qemu/qmp"
	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/firmware/config"
)

// hypervisors runs each VM on its driver's hypervisor (config.VMDriver):
// the process driver's in VMDir, QEMU's in VMDir/qemu.
type hypervisors struct {
	byVM    map[string]hv.Hypervisor
	drivers []hv.Hypervisor // each once, the process driver first
	// unusable says, per VM, why its driver cannot run here (no QEMU
	// installed): its starts fail with it.
	unusable map[string]error
}

var _ hv.Hypervisor = (*hypervisors)(nil)

// openHypervisors opens the drivers the cluster file's VMs use. A driver
// that cannot run here does not stop the agent: it is logged, and its VMs
// fail to start on this host, so the coordinator places them elsewhere.
func (d *daemon) openHypervisors() (*hypervisors, error) {
	h := &hypervisors{byVM: map[string]hv.Hypervisor{}, unusable: map[string]error{}}
	onExit := func(name string) {
		if v := d.vmIndex(name); v >= 0 {
			go d.guests.stop(v)
			d.post(cluster.VMExited{VM: v})
		}
	}
	p, err := proc.New(d.opts.VMDir, d.opts.Exe, onExit)
	if err != nil {
		return nil, err
	}
	h.drivers = append(h.drivers, p)
	var q *qemu.Hypervisor
	var qerr error
	for v, vm := range d.cfg.VMs {
		switch d.cfg.VMDriver(v) {
		case config.DriverQEMU:
			if q == nil && qerr == nil {
				if q, qerr = d.openQEMU(onExit); qerr != nil {
					d.log.Error("this host cannot run QEMU VMs: they start on other hosts", "component", "vm", "err", qerr)
				} else {
					h.drivers = append(h.drivers, q)
				}
			}
			if q != nil {
				h.byVM[vm.Name] = q
			} else {
				h.unusable[vm.Name] = fmt.Errorf("VM %s runs on the qemu driver, which this host cannot run: %w", vm.Name, qerr)
			}
		default:
			h.byVM[vm.Name] = p
		}
	}
	return h, nil
}

func (d *daemon) openQEMU(onExit func(string)) (*qemu.Hypervisor, error) {
	kvm := d.cfg.Hypervisor.KVM
	if kvm == "auto" {
		kvm = ""
	}
	q, err := qemu.New(filepath.Join(d.opts.VMDir, "qemu"), qemu.Options{
		Binary: d.cfg.Hypervisor.QEMU,
		KVM:    kvm,
		Spec:   d.qemuSpec,
		OnEvent: func(vm string, e qmp.Event) {
			level := slog.LevelInfo
			if e.Name == "GUEST_PANICKED" {
				level = slog.LevelWarn
			}
			d.log.Log(context.Background(), level, "QEMU event "+e.Name, "component", "vm", "vm", vm, "data", string(e.Data))
		},
	}, onExit)
	if err != nil {
		return nil, err
	}
	accel := "software emulation (hypervisor.kvm = off)"
	switch {
	case q.KVM():
		accel = "KVM"
	case kvm != "off":
		accel = fmt.Sprintf("software emulation (no KVM: %v)", qemu.KVMUsable())
	}
	d.log.Info("QEMU VMs run under "+accel, "component", "vm")
	return q, nil
}

// qemuSpec reads vm's definition from the folder datastores, now that this
// host holds its claim.
func (d *daemon) qemuSpec(vm hv.VM) (qemu.Spec, error) {
	v := d.vmIndex(vm.Name)
	if v < 0 {
		return qemu.Spec{}, fmt.Errorf("VM %s is not in the cluster file", vm.Name)
	}
	var dirs []string
	for _, ds := range d.cfg.Datastores {
		if ds.Path != "" {
			dirs = append(dirs, ds.Path)
		}
	}
	def, err := d.cfg.LoadVMDefinition(dirs, v)
	if err != nil {
		return qemu.Spec{}, err
	}
	return specOf(vm, def), nil
}

// specOf turns a definition into what QEMU runs, with the cluster file's
// CPU and memory.
func specOf(vm hv.VM, def *config.VMDefinition) qemu.Spec {
	s := qemu.Spec{Name: vm.Name, CPU: vm.CPU, MemoryMiB: vm.MemoryMiB, Machine: def.Machine,
		Append: def.Append, GuestAgent: def.HasGuestAgent(), Args: def.Args}
	if def.Kernel != "" {
		s.Kernel = def.Resolve(def.Kernel)
	}
	if def.Initrd != "" {
		s.Initrd = def.Resolve(def.Initrd)
	}
	for _, disk := range def.Disks {
		s.Disks = append(s.Disks, qemu.Disk{Path: def.Resolve(disk.File), Format: disk.Format, Serial: disk.Serial, ReadOnly: disk.ReadOnly})
	}
	for _, n := range def.NICs {
		s.NICs = append(s.NICs, qemu.NIC{Bridge: n.Bridge, Tap: n.Tap, User: n.User, Socket: n.Socket, MAC: n.MAC})
	}
	return s
}

func (h *hypervisors) of(name string) (hv.Hypervisor, error) {
	if x := h.byVM[name]; x != nil {
		return x, nil
	}
	if err := h.unusable[name]; err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("VM %s is not in the cluster file", name)
}

// Start starts vm on its driver.
func (h *hypervisors) Start(vm hv.VM) error {
	x, err := h.of(vm.Name)
	if err != nil {
		return err
	}
	return x.Start(vm)
}

// Stop stops the VM on its driver.
func (h *hypervisors) Stop(name string, timeout time.Duration) error {
	x, err := h.of(name)
	if err != nil {
		return err
	}
	return x.Stop(name, timeout)
}

// Kill kills the VM on whichever driver runs it: one the cluster file no
// longer lists is killed too.
func (h *hypervisors) Kill(name string) error {
	if x := h.byVM[name]; x != nil {
		return x.Kill(name)
	}
	var errs []error
	for _, x := range h.drivers {
		errs = append(errs, x.Kill(name))
	}
	return errors.Join(errs...)
}

// Running lists the VMs every driver runs, sorted.
func (h *hypervisors) Running() ([]string, error) {
	var all []string
	var errs []error
	for _, x := range h.drivers {
		names, err := x.Running()
		all = append(all, names...)
		errs = append(errs, err)
	}
	slices.Sort(all)
	return all, errors.Join(errs...)
}

// Close closes every driver; the VMs keep running.
func (h *hypervisors) Close() error {
	var errs []error
	for _, x := range h.drivers {
		errs = append(errs, x.Close())
	}
	return errors.Join(errs...)
}

// UseExits has x watch the VM processes of every driver.
func (h *hypervisors) UseExits(x proc.Exits) error {
	var errs []error
	for _, d := range h.drivers {
		if e, ok := d.(exitHypervisor); ok {
			errs = append(errs, e.UseExits(x))
		}
	}
	return errors.Join(errs...)
}

// Exited passes the kernel's report of pid's exit to the driver that ran
// it.
func (h *hypervisors) Exited(pid int) (string, bool) {
	for _, d := range h.drivers {
		if e, ok := d.(exitHypervisor); ok {
			if name, first := e.Exited(pid); name != "" {
				return name, first
			}
		}
	}
	return "", false
}
