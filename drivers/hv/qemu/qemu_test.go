package qemu

import (
	"slices"
	"strings"
	"testing"
)

func TestArgv(t *testing.T) {
	s := Spec{
		Name: "web1", CPU: 2, MemoryMiB: 512, Machine: "pc",
		Disks: []Disk{
			{Path: "/mnt/ds0/disks/web1.qcow2", Format: "qcow2", Serial: "root"},
			{Path: "/mnt/ds0/iso/tools.img", ReadOnly: true},
		},
		NICs:       []NIC{{Bridge: "br0", MAC: "52:54:00:00:00:01"}, {Tap: "vnet7"}, {User: true}, {Socket: "/run/hub.sock"}},
		GuestAgent: true,
		Args:       []string{"-rtc", "base=utc"},
	}
	got := strings.Join(s.Argv(false, "/run/q/web1.qmp", "/run/q/web1.guest", "/run/q/web1.console"), " ")
	for _, want := range []string{
		"-name web1 -machine pc -accel tcg,tb-size=64 -cpu max -smp 2 -m 512 -nodefaults",
		"-qmp unix:/run/q/web1.qmp,server=on,wait=off",
		"-chardev file,id=console,path=/run/q/web1.console -serial chardev:console",
		"-drive file=/mnt/ds0/disks/web1.qcow2,if=none,id=disk0,format=qcow2,cache=none -device virtio-blk-pci,drive=disk0,serial=root,bootindex=0",
		"-drive file=/mnt/ds0/iso/tools.img,if=none,id=disk1,format=raw,cache=none,readonly=on -device virtio-blk-pci,drive=disk1 ",
		"-netdev bridge,br=br0,id=net0 -device virtio-net-pci,netdev=net0,mac=52:54:00:00:00:01",
		"-netdev tap,ifname=vnet7,script=no,downscript=no,id=net1",
		"-netdev user,id=net2",
		"-netdev dgram,remote.type=unix,remote.path=/run/hub.sock,id=net3",
		"-chardev socket,id=guest,path=/run/q/web1.guest,server=on,wait=off -device virtserialport,chardev=guest,name=" + GuestPort,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("argv lacks %q:\n%s", want, got)
		}
	}
	if !strings.HasSuffix(got, "-rtc base=utc") {
		t.Errorf("the extra arguments are not last:\n%s", got)
	}
	if strings.Contains(got, "-kernel") {
		t.Errorf("a disk boot with -kernel:\n%s", got)
	}

	k := Spec{Name: "k", CPU: 1, MemoryMiB: 64, Kernel: "/boot/vmlinux", Initrd: "/boot/initrd", Append: "console=ttyS0"}
	argv := k.Argv(true, "m", "g", "c")
	for _, want := range [][]string{{"-machine", "q35"}, {"-accel", "kvm"}, {"-cpu", "host"}, {"-kernel", "/boot/vmlinux"}, {"-initrd", "/boot/initrd"}, {"-append", "console=ttyS0"}} {
		i := slices.Index(argv, want[0])
		if i < 0 || i+1 >= len(argv) || argv[i+1] != want[1] {
			t.Errorf("argv %q: want %s %s", argv, want[0], want[1])
		}
	}
	if slices.Contains(argv, "virtserialport") || strings.Contains(strings.Join(argv, " "), "virtio-serial") {
		t.Errorf("a guest port without GuestAgent: %q", argv)
	}
}

func TestSpecCheck(t *testing.T) {
	ok := Spec{Name: "a", CPU: 1, MemoryMiB: 64, Kernel: "/k"}
	if err := ok.check(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*Spec)
		want string
	}{
		{"no cpu", func(s *Spec) { s.CPU = 0 }, "at least 1 vCPU"},
		{"tiny memory", func(s *Spec) { s.MemoryMiB = 8 }, "16 MiB"},
		{"nothing to boot", func(s *Spec) { s.Kernel = "" }, "nothing to boot"},
		{"disk without file", func(s *Spec) { s.Disks = []Disk{{}} }, "disk 0 has no file"},
		{"bad format", func(s *Spec) { s.Disks = []Disk{{Path: "/d", Format: "vmdk"}} }, `format "vmdk": use raw or qcow2`},
		{"comma in path", func(s *Spec) { s.Disks = []Disk{{Path: "/d,x"}} }, "a ','"},
		{"two backends", func(s *Spec) { s.NICs = []NIC{{Tap: "t", User: true}} }, "exactly one of bridge, tap, user and socket"},
		{"no backend", func(s *Spec) { s.NICs = []NIC{{MAC: "52:54:00:00:00:01"}} }, "exactly one"},
	} {
		s := ok
		tc.mod(&s)
		err := s.check()
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "VM a") {
			t.Errorf("%s: %v; want an error naming VM a and %q", tc.name, err, tc.want)
		}
	}
}

func TestUseKVM(t *testing.T) {
	if on, err := useKVM("off"); on || err != nil {
		t.Errorf("off: %v %v", on, err)
	}
	if _, err := useKVM("maybe"); err == nil || !strings.Contains(err.Error(), `"on" or "off"`) {
		t.Errorf("maybe: %v", err)
	}
	auto, err := useKVM("")
	if err != nil {
		t.Fatalf("auto: %v", err)
	}
	if on, err := useKVM("on"); on != auto || (err == nil) != auto {
		t.Errorf("on: %v %v; KVM available: %v", on, err, auto)
	}
}
