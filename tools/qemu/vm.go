package qemu

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	hvqemu "github.com/vigil-ha/vigil/drivers/hv/qemu"
	"github.com/vigil-ha/vigil/drivers/hv/qemu/qmp"
)

// DefaultBinary is the QEMU system emulator Start runs.
const DefaultBinary = "qemu-system-x86_64"

// Options describe one VM.
type Options struct {
	// Binary is the QEMU binary ("": DefaultBinary, found on PATH).
	Binary string
	// Accel is "tcg", "kvm", or "" for KVM when KVMUsable, falling back to
	// TCG (software emulation) when KVM does not start.
	Accel string
	// Kernel is the kernel to boot: an uncompressed vmlinux boots through
	// PVH, faster than a bzImage.
	Kernel string
	// Initrd is the initramfs.
	Initrd string
	// Append is added to the kernel command line after "console=ttyS0".
	Append string
	// MemoryMiB is the VM's memory (0: 256).
	MemoryMiB int
	// CPUs is the number of vCPUs (0: 1).
	CPUs int
	// Dir holds the VM's sockets ("": a new temporary folder that Stop
	// removes). Keep it short: unix socket paths have at most 107 bytes.
	Dir string
	// WatchdogAction is QEMU's action when the i6300esb fires: reset
	// (""), poweroff, shutdown, pause, debug, none or inject-nmi. QEMU
	// reports a WATCHDOG event in every case.
	WatchdogAction string
	// NoWatchdog leaves out the i6300esb watchdog.
	NoWatchdog bool
	// NoIPMI leaves out the in-band BMC (ipmi-bmc-sim behind an ISA KCS
	// interface, /dev/ipmi0 in the guest).
	NoIPMI bool
	// NoReboot makes a guest reset end QEMU instead.
	NoReboot bool
	// Drives are virtio-blk disks, in this order.
	Drives []Drive
	// NICs puts one virtio-net NIC on each network, in this order (the
	// guest's eth0 on NICs[0], ...).
	NICs []*Network
	// Extra arguments for QEMU, appended last.
	Extra []string
	// Logger gets the VM's life events ("": slog.Default()).
	Logger *slog.Logger
}

// Drive is a virtio-blk disk backed by a raw file.
type Drive struct {
	// ID names the device, for device_del; unique in the VM.
	ID string
	// Serial is the disk's serial number: the guest sees
	// /sys/block/vdX/serial and vigil's boot links
	// /dev/disk/by-id/virtio-SERIAL to it.
	Serial string
	// File is the raw image.
	File string
	// Shared opens the file without QEMU's image locking and with
	// cache=none (O_DIRECT), so that several VMs can use it at once as a
	// shared LUN.
	Shared bool
	// ReadOnly makes the disk read-only.
	ReadOnly bool
}

// VM is a running QEMU.
type VM struct {
	// Dir holds the VM's sockets.
	Dir string
	// Started is when the QEMU process started; Serial line times count
	// from it.
	Started time.Time
	// Serial is the VM's serial port (ttyS0).
	Serial *Serial
	// QMP is the VM's monitor.
	QMP *qmp.Client

	log     *slog.Logger
	cmd     *exec.Cmd
	stderr  *lockedBuffer
	serial  net.Conn
	ownDir  bool
	exited  chan struct{}
	exitErr error
	stop    sync.Once
}

// lockedBuffer is QEMU's standard error.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Args returns QEMU's command line for o, with the VM's sockets in dir.
func Args(o Options, dir string) ([]string, error) {
	if o.Kernel == "" {
		return nil, errors.New("qemu: no kernel: set Options.Kernel to a vmlinux or bzImage")
	}
	mem, cpus := o.MemoryMiB, o.CPUs
	if mem == 0 {
		mem = 256
	}
	if cpus == 0 {
		cpus = 1
	}
	a := []string{"-nodefaults", "-no-user-config", "-M", "pc"}
	switch o.Accel {
	case "":
		if hvqemu.KVMUsable() == nil {
			a = append(a, "-accel", "kvm", "-accel", "tcg")
		} else {
			a = append(a, "-accel", "tcg")
		}
	case "tcg", "kvm":
		a = append(a, "-accel", o.Accel)
	default:
		return nil, fmt.Errorf("qemu: accelerator %q: use tcg, kvm or \"\" (kvm when /dev/kvm exists)", o.Accel)
	}
	a = append(a, "-m", fmt.Sprint(mem), "-smp", fmt.Sprint(cpus),
		"-display", "none", "-vga", "none", "-monitor", "none",
		"-chardev", "socket,id=qmp,path="+filepath.Join(dir, "qmp.sock")+",server=on,wait=off",
		"-mon", "chardev=qmp,mode=control",
		"-chardev", "socket,id=ser0,path="+filepath.Join(dir, "serial.sock")+",server=on,wait=on",
		"-serial", "chardev:ser0",
		"-kernel", o.Kernel)
	if o.Initrd != "" {
		a = append(a, "-initrd", o.Initrd)
	}
	a = append(a, "-append", strings.TrimSpace("console=ttyS0 "+o.Append))
	if o.NoReboot {
		a = append(a, "-no-reboot")
	}
	if !o.NoWatchdog {
		action := o.WatchdogAction
		if action == "" {
			action = "reset"
		}
		a = append(a, "-device", "i6300esb", "-action", "watchdog="+action)
	}
	if !o.NoIPMI {
		a = append(a, "-device", "ipmi-bmc-sim,id=bmc0", "-device", "isa-ipmi-kcs,bmc=bmc0")
	}
	ids := map[string]bool{}
	for _, d := range o.Drives {
		if d.ID == "" || d.File == "" || ids[d.ID] || strings.ContainsAny(d.ID+d.Serial+d.File, ",") {
			return nil, fmt.Errorf("qemu: drive %+v: give each drive a unique ID and a File, without commas", d)
		}
		ids[d.ID] = true
		drive := "file=" + d.File + ",if=none,id=drv-" + d.ID + ",format=raw"
		if d.Shared {
			drive += ",cache=none,file.locking=off"
		}
		if d.ReadOnly {
			drive += ",readonly=on"
		}
		dev := "virtio-blk-pci,drive=drv-" + d.ID + ",id=" + d.ID
		if d.Serial != "" {
			dev += ",serial=" + d.Serial
		}
		a = append(a, "-drive", drive, "-device", dev)
	}
	for i, n := range o.NICs {
		if n == nil {
			return nil, fmt.Errorf("qemu: NIC %d has no network", i)
		}
		mac, err := randomMAC()
		if err != nil {
			return nil, err
		}
		a = append(a,
			"-netdev", fmt.Sprintf("dgram,id=net%d,local.type=unix,local.path=%s,remote.type=unix,remote.path=%s", i, n.newPort(), n.Path()),
			"-device", fmt.Sprintf("virtio-net-pci,netdev=net%d,mac=%s", i, mac))
	}
	return append(a, o.Extra...), nil
}

// randomMAC returns a locally administered unicast MAC in QEMU's 52:54:00
// range, so that VMs on one network never share one.
func randomMAC() (string, error) {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("qemu: random MAC: %w", err)
	}
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", b[0], b[1], b[2]), nil
}

// Start runs QEMU for o, connects to its serial port (QEMU waits for that
// before it boots the guest, so no output is lost) and to its monitor. ctx
// bounds the start only; Stop ends the VM.
func Start(ctx context.Context, o Options) (*VM, error) {
	bin := o.Binary
	if bin == "" {
		bin = DefaultBinary
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("qemu: %s not found: %w (fix: apt-get install qemu-system-x86, or make qemu-deps)", bin, err)
	}
	v := &VM{Dir: o.Dir, stderr: &lockedBuffer{}, exited: make(chan struct{}), log: o.Logger}
	if v.log == nil {
		v.log = slog.Default()
	}
	if v.Dir == "" {
		if v.Dir, err = os.MkdirTemp("", "vq"); err != nil {
			return nil, fmt.Errorf("qemu: make the VM's folder: %w", err)
		}
		v.ownDir = true
	}
	args, err := Args(o, v.Dir)
	if err != nil {
		v.cleanup()
		return nil, err
	}
	v.cmd = exec.Command(path, args...)
	v.cmd.Stdout = v.stderr
	v.cmd.Stderr = v.stderr
	v.Started = time.Now()
	if err := v.cmd.Start(); err != nil {
		v.cleanup()
		return nil, fmt.Errorf("qemu: start %s: %w", path, err)
	}
	v.log.Info("qemu started", "component", "qemu", "pid", v.cmd.Process.Pid, "dir", v.Dir, "args", strings.Join(args, " "))
	go func() {
		v.exitErr = v.cmd.Wait()
		close(v.exited)
	}()
	// Stop dialling when QEMU exits early (bad arguments, say).
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-v.exited:
			cancel()
		case <-dctx.Done():
		}
	}()
	if v.serial, err = qmp.DialUnix(dctx, filepath.Join(v.Dir, "serial.sock")); err != nil {
		return nil, v.startFailed("connect to the serial port", err)
	}
	v.Serial = NewSerial(v.serial, v.Started)
	if v.QMP, err = qmp.Dial(dctx, filepath.Join(v.Dir, "qmp.sock")); err != nil {
		return nil, v.startFailed("connect to the monitor", err)
	}
	return v, nil
}

func (v *VM) startFailed(what string, err error) error {
	v.Stop()
	return fmt.Errorf("qemu: %s: %w; QEMU said: %s", what, err, strings.TrimSpace(v.Stderr()))
}

// Stderr returns what QEMU wrote on its standard output and error.
func (v *VM) Stderr() string { return v.stderr.String() }

// Exited is closed once the QEMU process ended.
func (v *VM) Exited() <-chan struct{} { return v.exited }

// Wait waits until QEMU exits (the guest powered off, say) and returns its
// exit error.
func (v *VM) Wait(ctx context.Context) error {
	select {
	case <-v.exited:
		return v.exitErr
	case <-ctx.Done():
		return fmt.Errorf("qemu: waiting for the VM to exit: %w", ctx.Err())
	}
}

// RemoveDrive unplugs the drive with id from the running guest (QMP
// device_del; the guest's ACPI hotplug ejects it) and waits for QEMU's
// DEVICE_DELETED event. It returns when the unplug was requested.
func (v *VM) RemoveDrive(ctx context.Context, id string) (requested time.Time, err error) {
	requested = time.Now()
	if _, err := v.QMP.Execute(ctx, "device_del", map[string]any{"id": id}); err != nil {
		return requested, err
	}
	since := requested
	for {
		ev, err := v.QMP.WaitEvent(ctx, "DEVICE_DELETED", since)
		if err != nil {
			return requested, err
		}
		var d struct {
			Device string `json:"device"`
		}
		if json.Unmarshal(ev.Data, &d) == nil && d.Device == id {
			return requested, nil
		}
		since = ev.Received.Add(time.Nanosecond)
	}
}

// Stop ends the VM: "quit" through QMP, then SIGKILL after 5 s, and
// removes the VM's folder when Start made it. It is safe to call twice.
func (v *VM) Stop() error {
	v.stop.Do(func() {
		if v.QMP != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			v.QMP.Execute(ctx, "quit", nil)
			cancel()
		}
		if v.cmd != nil && v.cmd.Process != nil {
			select {
			case <-v.exited:
			case <-time.After(5 * time.Second):
				v.cmd.Process.Kill()
				<-v.exited
			}
		}
		if v.QMP != nil {
			v.QMP.Close()
		}
		if v.serial != nil {
			v.serial.Close()
		}
		v.cleanup()
		v.log.Info("qemu stopped", "component", "qemu", "dir", v.Dir)
	})
	return nil
}

func (v *VM) cleanup() {
	if v.ownDir {
		os.RemoveAll(v.Dir)
	}
}
