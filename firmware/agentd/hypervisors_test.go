//go:build linux && !vigil_nohvproc

package agentd

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/drivers/hv"
	"github.com/vigil-ha/vigil/drivers/hv/proc"
	"github.com/vigil-ha/vigil/firmware/config"
)

// hvDaemon is a test daemon whose cluster file adds a process VM (tool1)
// and a QEMU VM (web1), with QEMU at qemuBin.
func hvDaemon(t *testing.T, qemuBin string) (*daemon, *bytes.Buffer) {
	t.Helper()
	d, _ := newTestDaemon(t)
	dir := d.cfg.Datastores[0].Path
	doc := fmt.Sprintf(testCluster, dir) + fmt.Sprintf(`
[hypervisor]
qemu = %q

[[vms]]
name = "tool1"
cpu = 1
memory = "64MiB"

[[vms]]
name = "web1"
cpu = 2
memory = "512MiB"
driver = "qemu"
`, qemuBin)
	cfg, err := config.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	d.cfg, d.spec = cfg, cfg.Spec()
	d.opts.VMDir, d.opts.Exe = filepath.Join(d.opts.State, "vms"), exe
	d.log = slog.New(slog.NewTextHandler(&logs, nil))
	return d, &logs
}

// TestHypervisorsRouting: each VM goes to its driver; a host without QEMU
// still starts, says so once, and fails the QEMU VM's start with the
// reason, so that the coordinator places it elsewhere.
func TestHypervisorsRouting(t *testing.T) {
	d, logs := hvDaemon(t, "/nonexistent/qemu-system-x86_64")
	h, err := d.openHypervisors()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, ok := h.byVM["tool1"].(*proc.Hypervisor); !ok {
		t.Errorf("tool1 runs on %T; want the process driver", h.byVM["tool1"])
	}
	if len(h.drivers) != 1 {
		t.Errorf("%d drivers open; want the process driver alone", len(h.drivers))
	}
	err = h.Start(hv.VM{Name: "web1", CPU: 2, MemoryMiB: 512})
	if err == nil || !strings.Contains(err.Error(), "VM web1 runs on the qemu driver, which this host cannot run") || !strings.Contains(err.Error(), "/nonexistent/qemu-system-x86_64") {
		t.Errorf("starting web1 without QEMU: %v", err)
	}
	if !strings.Contains(logs.String(), "this host cannot run QEMU VMs") {
		t.Errorf("no log line about QEMU:\n%s", logs)
	}
	if err := h.Start(hv.VM{Name: "nope", CPU: 1, MemoryMiB: 1}); err == nil || !strings.Contains(err.Error(), "not in the cluster file") {
		t.Errorf("starting an unknown VM: %v", err)
	}
	if names, err := h.Running(); err != nil || len(names) != 0 {
		t.Errorf("Running() = %q, %v", names, err)
	}
	if err := h.Kill("gone"); err != nil {
		t.Errorf("killing a VM no driver runs: %v", err)
	}
}

// TestQEMUSpecOf: a QEMU VM's spec comes from vms/NAME.toml on the folder
// datastore, its paths resolved there, its size from the cluster file.
func TestQEMUSpecOf(t *testing.T) {
	d, _ := hvDaemon(t, "qemu-system-x86_64")
	dir := d.cfg.Datastores[0].Path
	vm := hv.VM{Name: "web1", CPU: 2, MemoryMiB: 512}
	if _, err := d.qemuSpec(vm); err == nil || !strings.Contains(err.Error(), "VM web1: no definition") {
		t.Fatalf("without a definition: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "vms"), 0o755); err != nil {
		t.Fatal(err)
	}
	def := "machine = \"pc\"\nkernel = \"boot/vmlinux\"\nappend = \"console=ttyS0\"\n[[disks]]\nfile = \"disks/web1.img\"\nserial = \"root\"\n[[nics]]\nsocket = \"/run/hub.sock\"\nmac = \"52:54:00:00:00:09\"\n"
	if err := os.WriteFile(config.VMDefinitionPath(dir, "web1"), []byte(def), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := d.qemuSpec(vm)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "web1" || s.CPU != 2 || s.MemoryMiB != 512 || s.Machine != "pc" || s.Kernel != filepath.Join(dir, "boot/vmlinux") ||
		len(s.Disks) != 1 || s.Disks[0].Path != filepath.Join(dir, "disks/web1.img") || s.Disks[0].Serial != "root" ||
		len(s.NICs) != 1 || s.NICs[0].Socket != "/run/hub.sock" || !s.GuestAgent {
		t.Errorf("spec %+v", s)
	}
}
