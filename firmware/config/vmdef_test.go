package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseVMDefinition(t *testing.T) {
	vm := VM{Name: "web1", CPU: 2, Memory: 2048}
	d, err := ParseVMDefinition([]byte(`
name = "web1"
cpu = 2
memory = "2GiB"
machine = "pc"
kernel = "/var/lib/boot/vmlinux"
append = "console=ttyS0"
guest_agent = false
args = ["-rtc", "base=utc"]

[[disks]]
file = "disks/web1.qcow2"
format = "qcow2"
serial = "root"

[[nics]]
bridge = "br0"
mac = "52:54:00:00:01:01"

[[nics]]
user = true
`), vm)
	if err != nil {
		t.Fatal(err)
	}
	if d.Machine != "pc" || d.HasGuestAgent() || len(d.Disks) != 1 || d.Disks[0].Format != "qcow2" || len(d.NICs) != 2 || !d.NICs[1].User || len(d.Args) != 2 {
		t.Errorf("decoded %+v", d)
	}
	d.Dir = "/mnt/ds0"
	if got := d.Resolve(d.Disks[0].File); got != "/mnt/ds0/disks/web1.qcow2" {
		t.Errorf("Resolve(disk) = %s", got)
	}
	if got := d.Resolve(d.Kernel); got != "/var/lib/boot/vmlinux" {
		t.Errorf("Resolve(kernel) = %s", got)
	}
	if d2, err := ParseVMDefinition([]byte("[[disks]]\nfile = \"a.img\"\n"), vm); err != nil || !d2.HasGuestAgent() {
		t.Errorf("a minimal definition: %v; guest agent by default", err)
	}
}

func TestParseVMDefinitionProblems(t *testing.T) {
	vm := VM{Name: "web1", CPU: 2, Memory: 2048}
	for _, tc := range []struct {
		name, doc string
		want      []string // in the error
	}{
		{"unknown key", "[[disks]]\nfile = \"a.img\"\nfromat = \"raw\"\n", []string{"disks.fromat", "line 3: unknown key", "the known keys are"}},
		{"syntax", "[[disks]\n", []string{"line 1", "correct the TOML syntax"}},
		{"nothing to boot", "machine = \"q35\"\n", []string{"nothing to boot", "give a kernel or at least one [[disks]]"}},
		{"disagrees", "name = \"web2\"\ncpu = 4\nmemory = \"1GiB\"\nkernel = \"k\"\n", []string{`name: "web2" in the definition of VM web1`, "cpu: 4 vCPU, and the cluster file says 2", "memory: 1GiB, and the cluster file says 2GiB"}},
		{"disk outside", "[[disks]]\nfile = \"../other/x.img\"\n", []string{"disks[0].file", "leaves the datastore folder"}},
		{"disk absolute", "[[disks]]\nfile = \"/var/x.img\"\n", []string{"disks[0].file", "is absolute", "every host must reach the disk"}},
		{"disk format", "[[disks]]\nfile = \"x.img\"\nformat = \"vmdk\"\n", []string{"disks[0].format", `"vmdk" is not a disk format`}},
		{"comma", "[[disks]]\nfile = \"x,y.img\"\n", []string{"disks[0]", "a ','"}},
		{"two backends", "kernel = \"k\"\n[[nics]]\nbridge = \"br0\"\nuser = true\n", []string{"nics[0]", "2 backends", "exactly one of"}},
		{"bad mac", "kernel = \"k\"\n[[nics]]\nuser = true\nmac = \"52:54:00\"\n", []string{"nics[0].mac", "not a MAC address"}},
		{"multicast mac", "kernel = \"k\"\n[[nics]]\nuser = true\nmac = \"01:00:5e:00:00:01\"\n", []string{"multicast"}},
		{"initrd alone", "initrd = \"i\"\n[[disks]]\nfile = \"a\"\n", []string{"initrd", "without a kernel"}},
	} {
		_, err := ParseVMDefinition([]byte(tc.doc), vm)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v\nwant %q", tc.name, err, w)
			}
		}
	}
}

func TestLoadVMDefinition(t *testing.T) {
	c := &Config{VMs: []VM{{Name: "web1", CPU: 1, Memory: 512}, {Name: "db1", CPU: 1, Memory: 512}}}
	a, b := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(b, "vms"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(VMDefinitionPath(b, "web1"), []byte("[[disks]]\nfile = \"disks/web1.img\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := c.LoadVMDefinition([]string{a, b}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if d.Dir != b || d.File != filepath.Join(b, "vms", "web1.toml") || d.Resolve(d.Disks[0].File) != filepath.Join(b, "disks/web1.img") {
		t.Errorf("read from %s (%s)", d.Dir, d.File)
	}
	_, err = c.LoadVMDefinition([]string{a, b}, 1)
	if err == nil || !strings.Contains(err.Error(), "VM db1: no definition") || !strings.Contains(err.Error(), filepath.Join(a, "vms", "db1.toml")) {
		t.Errorf("a missing definition: %v", err)
	}
	if _, err := c.LoadVMDefinition(nil, 1); err == nil || !strings.Contains(err.Error(), "no folder datastore") {
		t.Errorf("no folder datastores: %v", err)
	}
	if err := os.WriteFile(VMDefinitionPath(b, "db1"), []byte("cpu = 8\nkernel = \"k\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.LoadVMDefinition([]string{b}, 1); err == nil || !strings.Contains(err.Error(), "db1.toml") || !strings.Contains(err.Error(), "cpu: 8 vCPU") {
		t.Errorf("a bad definition: %v; want its file and problem", err)
	}
}

func TestHypervisorConfig(t *testing.T) {
	c := &Config{Hypervisor: Hypervisor{Driver: "qemu"}, VMs: []VM{{Name: "a"}, {Name: "b", Driver: "process"}}}
	if c.VMDriver(0) != DriverQEMU || c.VMDriver(1) != DriverProcess {
		t.Errorf("drivers %s %s", c.VMDriver(0), c.VMDriver(1))
	}
	c.Hypervisor.Driver = ""
	if c.VMDriver(0) != DriverProcess {
		t.Errorf("default driver %s", c.VMDriver(0))
	}
	var ps Problems
	c = &Config{Hypervisor: Hypervisor{Driver: "xen", KVM: "maybe", QEMU: "bin/qemu"}}
	c.checkHypervisor(&ps)
	if got := strings.Join(ps.Keys(), " "); got != "hypervisor.driver hypervisor.kvm hypervisor.qemu" {
		t.Errorf("problems %v", ps)
	}
}

func TestParseGuest(t *testing.T) {
	g, err := ParseGuest([]byte("[[apps]]\nname = \"db\"\nprocess = \"postgres\"\nstart = [\"systemctl\", \"start\", \"postgresql\"]\n\n[[apps]]\nname = \"web\"\nrun = [\"/usr/bin/web\", \"-p\", \"80\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if g.Heartbeat.String() != "500ms" || g.Scan.String() != "1s" || len(g.Apps) != 2 || g.Apps[1].Run[2] != "80" {
		t.Errorf("parsed %+v", g)
	}
	for _, tc := range []struct{ doc, want string }{
		{"heartbeat = \"1ms\"\n", "heartbeat: 1ms"},
		{"[[apps]]\nname = \"a\"\n", "0 ways to find it"},
		{"[[apps]]\nname = \"a\"\nprocess = \"x\"\nunit = \"x.service\"\n", "2 ways to find it"},
		{"[[apps]]\nname = \"a\"\nprocess = \"x\"\n", "cannot have a restarted without it"},
		{"[[apps]]\nname = \"a\"\npidfile = \"x.pid\"\n", "apps[0].pidfile"},
		{"[[apps]]\nname = \"a\"\nrun = [\"web\"]\n", "apps[0].run"},
		{"[[apps]]\nname = \"a b\"\nunit = \"x\"\n", "is not an application name"},
		{"[[apps]]\nname = \"a\"\nunit = \"x\"\n[[apps]]\nname = \"a\"\nunit = \"y\"\n", `"a" twice`},
		{"[[apps]]\nname = \"a\"\nunit = \"x\"\nrestart = []\n", "line 4: unknown key"},
	} {
		if _, err := ParseGuest([]byte(tc.doc)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v; want %q", tc.doc, err, tc.want)
		}
	}
}
