// Package qemu is the QEMU/KVM hypervisor driver: a VM is a QEMU process
// started from its Spec, with its monitor (QMP) on a unix socket, run and
// watched by the process supervisor of package proc (a pidfile per VM, a
// pidfd, adoption after an agent restart). KVM is used when /dev/kvm can be
// opened, software emulation (TCG) otherwise.
//
//	h, err := qemu.New("/run/vigil/qemu", qemu.Options{
//		Spec: func(vm hv.VM) (qemu.Spec, error) { ... }, // read when the VM starts
//	}, onExit)
//	err = h.Start(hv.VM{Name: "web1", CPU: 2, MemoryMiB: 2048})
//	err = h.Stop("web1", 30*time.Second) // ACPI power button, then SIGKILL
//	st, err := h.Status(ctx, "web1")     // QMP query-status: "running", ...
//
// Spec is read when the VM starts, never before: its disks are opened only
// by the host whose claim on the VM the datastore holds.
package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/drivers/hv"
	"github.com/vigil-ha/vigil/drivers/hv/proc"
	"github.com/vigil-ha/vigil/drivers/hv/qemu/qmp"
)

// DefaultBinary is the QEMU system emulator run when Options.Binary is
// empty, looked up in PATH.
const DefaultBinary = "qemu-system-x86_64"

// GuestPort is the name of the virtio-serial port on which a VM's guest
// agent (vigil guest) talks to its host's agent.
const GuestPort = "org.vigil-ha.guest.0"

// Spec is everything QEMU needs to run one VM.
type Spec struct {
	Name      string
	CPU       int
	MemoryMiB int
	// Machine is QEMU's machine type; "" is "q35".
	Machine string
	// Kernel, Initrd and Append boot a kernel directly; Kernel "" boots
	// from the first disk.
	Kernel, Initrd, Append string
	Disks                  []Disk
	NICs                   []NIC
	// GuestAgent adds the virtio-serial port of the guest agent.
	GuestAgent bool
	// Args are appended to QEMU's command line as they are.
	Args []string
}

// Disk is a virtio disk on an image file or a block device.
type Disk struct {
	Path string
	// Format is "raw" or "qcow2"; "" is raw.
	Format   string
	Serial   string // the guest's /dev/disk/by-id/virtio-SERIAL; optional
	ReadOnly bool
}

// NIC is a virtio NIC. Exactly one of Bridge, Tap, User and Socket is set.
type NIC struct {
	Bridge string // a host bridge, through qemu-bridge-helper
	Tap    string // an existing tap device
	User   bool   // QEMU's user-mode network (no host set-up; outbound only)
	Socket string // a unix datagram socket (QEMU 7.2 dgram netdev)
	MAC    string // "" lets QEMU choose
}

// Options configure a Hypervisor.
type Options struct {
	// Binary is the QEMU system emulator; "" is DefaultBinary.
	Binary string
	// Spec returns the spec of vm when it starts.
	Spec func(vm hv.VM) (Spec, error)
	// KVM: "" uses KVM when /dev/kvm opens, "on" requires it, "off"
	// never uses it.
	KVM string
	// OnEvent, if set, is called with each QMP event of a VM this
	// hypervisor started (SHUTDOWN, RESET, GUEST_PANICKED, ...).
	OnEvent func(vm string, e qmp.Event)
}

// Hypervisor runs VMs as QEMU processes. Its methods are safe for
// concurrent use.
type Hypervisor struct {
	*proc.Hypervisor
	dir    string
	binary string
	kvm    bool
	o      Options

	mu       sync.Mutex
	followed map[string]bool // VMs whose events go to OnEvent
	quit     chan struct{}   // closed by Close
	closed   bool
}

var _ hv.Hypervisor = (*Hypervisor)(nil)

// New returns a hypervisor keeping each VM's pidfile, log, monitor and
// guest socket in dir (created if needed), adopting the QEMU processes its
// pidfiles name. onExit is called when a VM exits without Stop or Kill
// (the guest powered off, QEMU crashed or was killed).
func New(dir string, o Options, onExit func(name string)) (*Hypervisor, error) {
	if o.Spec == nil {
		return nil, errors.New("qemu: Options.Spec is nil: the driver needs the VMs' definitions")
	}
	bin := o.Binary
	if bin == "" {
		bin = DefaultBinary
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("qemu: %s: %w (fix: apt-get install qemu-system-x86, or set the QEMU binary)", bin, err)
	}
	kvm, err := useKVM(o.KVM)
	if err != nil {
		return nil, err
	}
	h := &Hypervisor{dir: dir, binary: path, kvm: kvm, o: o, followed: map[string]bool{}, quit: make(chan struct{})}
	ph, err := proc.NewWith(dir, "", proc.Options{Command: h.command, Shutdown: h.powerdown}, onExit)
	if err != nil {
		return nil, fmt.Errorf("qemu: %w", err)
	}
	h.Hypervisor = ph
	return h, nil
}

// KVM reports whether the VMs run under KVM (else TCG).
func (h *Hypervisor) KVM() bool { return h.kvm }

// useKVM decides on KVM for the mode "", "on" or "off".
func useKVM(mode string) (bool, error) {
	switch mode {
	case "off":
		return false, nil
	case "", "on":
		err := KVMUsable()
		if err == nil {
			return true, nil
		}
		if mode == "on" {
			return false, fmt.Errorf("qemu: KVM required but %w (fix: load kvm_intel or kvm_amd, enable virtualisation in the firmware, or allow software emulation)", err)
		}
		return false, nil
	}
	return false, fmt.Errorf("qemu: KVM mode %q: use \"\" (when available), \"on\" or \"off\"", mode)
}

// KVMUsable says why KVM cannot run guests here, or nil: /dev/kvm must open
// and the CPU offer hardware virtualisation (vmx or svm). A /dev/kvm
// without either (seen in some nested VMs) accepts QEMU but never runs the
// guest.
func KVMUsable() error {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("/dev/kvm does not open: %w", err)
	}
	f.Close()
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return err
	}
	for _, f := range strings.Fields(string(b)) {
		if f == "vmx" || f == "svm" {
			return nil
		}
	}
	return errors.New("the CPU offers no hardware virtualisation (no vmx or svm in /proc/cpuinfo)")
}

// A VM has two monitors: one for short command connections, and one
// that follow keeps open for events (QEMU serves one client per monitor).
func (h *Hypervisor) monitor(name string) string { return filepath.Join(h.dir, name+".qmp") }
func (h *Hypervisor) events(name string) string  { return filepath.Join(h.dir, name+".events") }

// GuestSocket is the unix socket of name's guest agent port.
func (h *Hypervisor) GuestSocket(name string) string { return filepath.Join(h.dir, name+".guest") }

// Console is the file that records name's serial console.
func (h *Hypervisor) Console(name string) string { return filepath.Join(h.dir, name+".console") }

// command builds the QEMU command of vm from its spec.
func (h *Hypervisor) command(vm hv.VM) (*exec.Cmd, error) {
	s, err := h.o.Spec(vm)
	if err != nil {
		return nil, err
	}
	if s.Name != vm.Name {
		return nil, fmt.Errorf("qemu: the spec of %s names %q", vm.Name, s.Name)
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	for _, p := range []string{h.monitor(vm.Name), h.events(vm.Name), h.GuestSocket(vm.Name)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("qemu: %w", err)
		}
	}
	argv := s.Argv(h.kvm, h.monitor(vm.Name), h.GuestSocket(vm.Name), h.Console(vm.Name))
	argv = append(argv, "-qmp", "unix:"+h.events(vm.Name)+",server=on,wait=off")
	cmd := exec.Command(h.binary, argv...)
	h.startFollowing(vm.Name)
	return cmd, nil
}

// check validates s before QEMU sees it, so that a bad definition gets an
// error naming the field rather than QEMU's.
func (s *Spec) check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("qemu: VM %s: %s", s.Name, fmt.Sprintf(format, args...))
	}
	if s.CPU < 1 || s.MemoryMiB < 16 {
		return bad("cpu %d and memory %d MiB: give at least 1 vCPU and 16 MiB", s.CPU, s.MemoryMiB)
	}
	if s.Kernel == "" && len(s.Disks) == 0 {
		return bad("nothing to boot: give a kernel or at least one disk")
	}
	for i, d := range s.Disks {
		if d.Path == "" {
			return bad("disk %d has no file", i)
		}
		if d.Format != "" && d.Format != "raw" && d.Format != "qcow2" {
			return bad("disk %d (%s): format %q: use raw or qcow2", i, d.Path, d.Format)
		}
		if strings.ContainsAny(d.Path+d.Serial, ",\n") {
			return bad("disk %d: a ',' or a newline in %q", i, d.Path+" "+d.Serial)
		}
	}
	for i, n := range s.NICs {
		set := 0
		for _, b := range []bool{n.Bridge != "", n.Tap != "", n.User, n.Socket != ""} {
			if b {
				set++
			}
		}
		if set != 1 {
			return bad("nic %d: set exactly one of bridge, tap, user and socket", i)
		}
		if strings.ContainsAny(n.Bridge+n.Tap+n.Socket+n.MAC, ",\n") {
			return bad("nic %d: a ',' or a newline in its settings", i)
		}
	}
	return nil
}

// Argv is QEMU's command line for s, without the binary: the monitor,
// guest agent port and serial console on the given paths, KVM or TCG.
func (s *Spec) Argv(kvm bool, monitor, guest, console string) []string {
	machine := s.Machine
	if machine == "" {
		machine = "q35"
	}
	// TCG's translation cache may grow to 1 GiB of host memory by default,
	// sized for one big guest: 64 MiB serves a server guest and bounds
	// what each VM can take.
	accel, cpu := "tcg,tb-size=64", "max"
	if kvm {
		accel, cpu = "kvm", "host"
	}
	a := []string{
		"-name", s.Name,
		"-machine", machine, "-accel", accel, "-cpu", cpu,
		"-smp", strconv.Itoa(s.CPU), "-m", strconv.Itoa(s.MemoryMiB),
		"-nodefaults", "-no-user-config", "-display", "none",
		"-qmp", "unix:" + monitor + ",server=on,wait=off",
		"-chardev", "file,id=console,path=" + console,
		"-serial", "chardev:console",
	}
	if s.Kernel != "" {
		a = append(a, "-kernel", s.Kernel)
		if s.Initrd != "" {
			a = append(a, "-initrd", s.Initrd)
		}
		if s.Append != "" {
			a = append(a, "-append", s.Append)
		}
	}
	for i, d := range s.Disks {
		f := d.Format
		if f == "" {
			f = "raw"
		}
		// cache=none: O_DIRECT, so no page cache of this host holds a
		// write another host could miss after a failover.
		drive := fmt.Sprintf("file=%s,if=none,id=disk%d,format=%s,cache=none", d.Path, i, f)
		if d.ReadOnly {
			drive += ",readonly=on"
		}
		dev := fmt.Sprintf("virtio-blk-pci,drive=disk%d", i)
		if d.Serial != "" {
			dev += ",serial=" + d.Serial
		}
		if i == 0 && s.Kernel == "" {
			dev += ",bootindex=0"
		}
		a = append(a, "-drive", drive, "-device", dev)
	}
	for i, n := range s.NICs {
		var nd string
		switch {
		case n.Bridge != "":
			nd = "bridge,br=" + n.Bridge
		case n.Tap != "":
			nd = "tap,ifname=" + n.Tap + ",script=no,downscript=no"
		case n.User:
			nd = "user"
		case n.Socket != "":
			nd = "dgram,remote.type=unix,remote.path=" + n.Socket
		}
		dev := fmt.Sprintf("virtio-net-pci,netdev=net%d", i)
		if n.MAC != "" {
			dev += ",mac=" + n.MAC
		}
		a = append(a, "-netdev", fmt.Sprintf("%s,id=net%d", nd, i), "-device", dev)
	}
	if s.GuestAgent {
		a = append(a, "-device", "virtio-serial-pci,id=vigil-serial",
			"-chardev", "socket,id=guest,path="+guest+",server=on,wait=off",
			"-device", "virtserialport,chardev=guest,name="+GuestPort)
	}
	return append(a, s.Args...)
}

// qmpWait bounds a monitor connection and one command.
const qmpWait = 5 * time.Second

// powerdown presses the VM's ACPI power button (system_powerdown): a guest
// that handles it shuts down, and QEMU exits.
func (h *Hypervisor) powerdown(name string, _ int) error {
	ctx, cancel := context.WithTimeout(context.Background(), qmpWait)
	defer cancel()
	q, err := qmp.Dial(ctx, h.monitor(name))
	if err != nil {
		return err
	}
	defer q.Close()
	_, err = q.Execute(ctx, "system_powerdown", nil)
	return err
}

// Reset resets the VM (system_reset): a hardware reset, the guest boots
// again in the same QEMU, which keeps its disks open.
func (h *Hypervisor) Reset(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, qmpWait)
	defer cancel()
	q, err := qmp.Dial(ctx, h.monitor(name))
	if err != nil {
		return fmt.Errorf("qemu: reset %s: %w", name, err)
	}
	defer q.Close()
	if _, err := q.Execute(ctx, "system_reset", nil); err != nil {
		return fmt.Errorf("qemu: reset %s: %w", name, err)
	}
	return nil
}

// Status returns the VM's run state as QMP's query-status says it
// ("running", "paused", "shutdown", "guest-panicked", ...).
func (h *Hypervisor) Status(ctx context.Context, name string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, qmpWait)
	defer cancel()
	q, err := qmp.Dial(ctx, h.monitor(name))
	if err != nil {
		return "", fmt.Errorf("qemu: status of %s: %w", name, err)
	}
	defer q.Close()
	ret, err := q.Execute(ctx, "query-status", nil)
	if err != nil {
		return "", fmt.Errorf("qemu: status of %s: %w", name, err)
	}
	var st struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(ret, &st); err != nil {
		return "", fmt.Errorf("qemu: status of %s: %w", name, err)
	}
	return st.Status, nil
}

// Running lists the VMs that run, adopting those it did not know (after
// an agent restart) and following their events.
func (h *Hypervisor) Running() ([]string, error) {
	names, err := h.Hypervisor.Running()
	for _, n := range names {
		h.startFollowing(n)
	}
	return names, err
}

// startFollowing has name's events go to OnEvent unless they already do.
func (h *Hypervisor) startFollowing(name string) {
	if h.o.OnEvent == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.followed[name] || h.closed {
		return
	}
	h.followed[name] = true
	go h.follow(name)
}

// follow passes the events of name's event monitor to OnEvent until QEMU
// exits.
func (h *Hypervisor) follow(name string) {
	defer func() {
		h.mu.Lock()
		delete(h.followed, name)
		h.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), followWait)
	q, err := qmp.Dial(ctx, h.events(name))
	cancel()
	if err != nil {
		return // QEMU did not start: the supervisor reports its exit
	}
	defer q.Close()
	q.OnEvent(func(e qmp.Event) { h.o.OnEvent(name, e) })
	select {
	case <-q.Done():
	case <-h.quit:
	}
}

// Close stops watching the VMs and following their events; they keep
// running.
func (h *Hypervisor) Close() error {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		close(h.quit)
	}
	h.mu.Unlock()
	return h.Hypervisor.Close()
}

// followWait bounds the wait for a starting QEMU's event monitor.
const followWait = 30 * time.Second
