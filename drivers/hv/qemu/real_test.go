//go:build linux && !vigil_nohvproc

package qemu

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/drivers/hv"
	"github.com/vigil-ha/vigil/drivers/hv/qemu/qmp"
	"github.com/vigil-ha/vigil/image"
	"github.com/vigil-ha/vigil/tools/privtest"
)

// failsafe bounds every wait on a real QEMU.
const failsafe = 60 * time.Second

// realRig runs real QEMU VMs under software emulation: Debian's kernel
// (from the image cache, as make qemu-deps fetches it) without a root
// file system, so the guest panics and then either stays up (panic=0) or
// reboots, which -no-reboot turns into QEMU's exit (panic=1).
type realRig struct {
	t      *testing.T
	dir    string
	kernel string
	h      *Hypervisor
	exits  chan string
	events chan string // "VM EVENT"
}

func newRealRig(t *testing.T) *realRig {
	t.Helper()
	privtest.Require(t)
	if _, err := exec.LookPath(DefaultBinary); err != nil {
		privtest.Unavailable(t, DefaultBinary+" is not installed (make qemu-deps installs it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	k, err := image.FetchKernel(ctx, image.Cache())
	if err != nil {
		privtest.Unavailable(t, "no kernel for the guest: "+err.Error()+" (make qemu-deps fetches it)")
	}
	r := &realRig{t: t, dir: t.TempDir(), kernel: k.Vmlinux, exits: make(chan string, 8), events: make(chan string, 64)}
	r.open()
	return r
}

func (r *realRig) open() {
	r.t.Helper()
	h, err := New(r.dir, Options{KVM: "off", Spec: r.spec, OnEvent: func(vm string, e qmp.Event) {
		select {
		case r.events <- vm + " " + e.Name:
		default:
		}
	}}, func(name string) { r.exits <- name })
	if err != nil {
		r.t.Fatal(err)
	}
	r.h = h
	r.t.Cleanup(func() {
		if names, err := h.Running(); err == nil {
			for _, n := range names {
				h.Kill(n)
			}
		}
		h.Close()
	})
}

// spec boots the kernel; a VM named exit* reboots at its panic, which
// ends QEMU.
func (r *realRig) spec(vm hv.VM) (Spec, error) {
	s := Spec{Name: vm.Name, CPU: vm.CPU, MemoryMiB: vm.MemoryMiB, Kernel: r.kernel, Append: "console=ttyS0 panic=0", GuestAgent: true}
	if strings.HasPrefix(vm.Name, "exit") {
		s.Append = "console=ttyS0 panic=1"
		s.Args = []string{"-no-reboot"}
	}
	return s, nil
}

func (r *realRig) start(name string) {
	r.t.Helper()
	if err := r.h.Start(hv.VM{Name: name, CPU: 1, MemoryMiB: 256}); err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), failsafe)
	defer cancel()
	st, err := r.h.Status(ctx, name)
	if err != nil || st != "running" {
		r.t.Fatalf("status of %s: %q, %v; want running", name, st, err)
	}
}

// wait waits for "VM EVENT" from a VM's event monitor.
func (r *realRig) wait(want string) {
	r.t.Helper()
	deadline := time.After(failsafe)
	for {
		select {
		case e := <-r.events:
			if e == want {
				return
			}
		case <-deadline:
			r.t.Fatalf("no QMP event %q", want)
		}
	}
}

func (r *realRig) wantExit(name string) {
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

func (r *realRig) noExit() {
	r.t.Helper()
	select {
	case got := <-r.exits:
		r.t.Fatalf("unexpected onExit(%s)", got)
	default:
	}
}

func (r *realRig) wantRunning(want ...string) {
	r.t.Helper()
	got, err := r.h.Running()
	if err != nil {
		r.t.Fatal(err)
	}
	if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		r.t.Fatalf("Running() = %q; want %q", got, want)
	}
}

func (r *realRig) pid(name string) int {
	r.t.Helper()
	b, err := os.ReadFile(filepath.Join(r.dir, name+".pid"))
	if err != nil {
		r.t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.Fields(string(b))[0])
	if err != nil {
		r.t.Fatal(err)
	}
	return pid
}

// TestQEMUStartStop: a VM runs under QEMU with its monitor, guest port and
// console in the hypervisor's folder; Stop presses the ACPI power button
// (the POWERDOWN event), and kills a guest that ignores it once the
// timeout passes; neither Stop nor Kill reports an exit.
func TestQEMUStartStop(t *testing.T) {
	r := newRealRig(t)
	r.start("web1")
	r.start("db1")
	r.wantRunning("db1", "web1")
	if err := r.h.Reset(context.Background(), "db1"); err != nil {
		t.Fatal(err)
	}
	r.wait("db1 RESET")
	for _, f := range []string{"web1.qmp", "web1.events", "web1.guest"} {
		if fi, err := os.Stat(filepath.Join(r.dir, f)); err != nil || fi.Mode()&os.ModeSocket == 0 {
			t.Errorf("%s: %v; want a socket", f, err)
		}
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(r.pid("web1")) + "/cmdline")
	if err != nil || !strings.Contains(string(cmdline), "-accel\x00tcg,tb-size=64") {
		t.Errorf("web1's command line %q (%v): want TCG", cmdline, err)
	}
	if err := r.h.Stop("web1", 500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	r.wait("web1 POWERDOWN")
	r.wantRunning("db1")
	if err := r.h.Kill("db1"); err != nil {
		t.Fatal(err)
	}
	r.wantRunning()
	r.noExit()
	console, err := os.ReadFile(r.h.Console("web1"))
	if err != nil || !strings.Contains(string(console), "Linux version") {
		t.Errorf("web1's console holds %d bytes (%v); want the kernel's boot messages", len(console), err)
	}
}

// TestQEMUExits: a guest that ends QEMU (a reboot under -no-reboot) and a
// QEMU killed from outside are both reported through onExit.
func TestQEMUExits(t *testing.T) {
	r := newRealRig(t)
	r.start("exit1")
	r.wait("exit1 SHUTDOWN")
	r.wantExit("exit1")
	r.start("web2")
	if err := syscall.Kill(r.pid("web2"), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r.wantExit("web2")
	r.wantRunning()
}

// TestQEMUAdoption: a new hypervisor on the same folder (an agent that
// restarted) adopts the running QEMU, follows its events again, and can
// stop it.
func TestQEMUAdoption(t *testing.T) {
	r := newRealRig(t)
	r.start("web3")
	pid := r.pid("web3")
	if err := r.h.Close(); err != nil {
		t.Fatal(err)
	}
	r.open()
	r.wantRunning("web3")
	if r.pid("web3") != pid {
		t.Fatal("the adopted VM has another PID")
	}
	ctx, cancel := context.WithTimeout(context.Background(), failsafe)
	defer cancel()
	if st, err := r.h.Status(ctx, "web3"); err != nil || st != "running" {
		t.Fatalf("status after adoption: %q, %v", st, err)
	}
	if err := r.h.Stop("web3", 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	r.wait("web3 POWERDOWN") // from the event monitor followed after adoption
	r.wantRunning()
	r.noExit()
}
