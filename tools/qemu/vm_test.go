package qemu

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// flagValues returns the values QEMU gets for flag, in order.
func flagValues(args []string, flag string) []string {
	var vs []string
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag {
			vs = append(vs, args[i+1])
		}
	}
	return vs
}

func TestArgs(t *testing.T) {
	dir, err := os.MkdirTemp("", "vqa")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	n, err := NewNetwork(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	args, err := Args(Options{
		Accel:  "tcg",
		Kernel: "/k/vmlinux",
		Initrd: "/k/initrd",
		Append: "vigil.host=h1",
		Drives: []Drive{{ID: "ds0", Serial: "ds0", File: "/d/ds0.img", Shared: true}, {ID: "cfg", Serial: "vigil-config", File: "/d/cfg.tar", ReadOnly: true}},
		NICs:   []*Network{n, n},
	}, "/run/vm1")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		flag string
		want []string
	}{
		{"-accel", []string{"tcg"}},
		{"-kernel", []string{"/k/vmlinux"}},
		{"-initrd", []string{"/k/initrd"}},
		{"-append", []string{"console=ttyS0 vigil.host=h1"}},
		{"-drive", []string{
			"file=/d/ds0.img,if=none,id=drv-ds0,format=raw,cache=none,file.locking=off",
			"file=/d/cfg.tar,if=none,id=drv-cfg,format=raw,readonly=on",
		}},
		{"-serial", []string{"chardev:ser0"}},
		{"-action", []string{"watchdog=reset"}},
	}
	for _, c := range checks {
		if got := flagValues(args, c.flag); !slices.Equal(got, c.want) {
			t.Errorf("%s = %q, want %q", c.flag, got, c.want)
		}
	}
	devs := strings.Join(flagValues(args, "-device"), "\n")
	for _, want := range []string{
		"i6300esb", "ipmi-bmc-sim,id=bmc0", "isa-ipmi-kcs,bmc=bmc0",
		"virtio-blk-pci,drive=drv-ds0,id=ds0,serial=ds0",
		"virtio-blk-pci,drive=drv-cfg,id=cfg,serial=vigil-config",
	} {
		if !strings.Contains(devs, want+"\n") && !strings.HasSuffix(devs, want) {
			t.Errorf("no -device %s in:\n%s", want, devs)
		}
	}
	// Two NICs with distinct MACs, each on its own socket to the hub.
	macs := regexp.MustCompile(`mac=([0-9a-f:]{17})`).FindAllStringSubmatch(devs, -1)
	if len(macs) != 2 || macs[0][1] == macs[1][1] {
		t.Errorf("NIC MACs %v: want two distinct ones", macs)
	}
	nets := flagValues(args, "-netdev")
	if len(nets) != 2 || nets[0] == nets[1] || !strings.Contains(nets[0], "remote.path="+n.Path()) {
		t.Errorf("-netdev = %q: want two dgram netdevs to the hub %s", nets, n.Path())
	}
	chardevs := strings.Join(flagValues(args, "-chardev"), " ")
	if !strings.Contains(chardevs, "path=/run/vm1/serial.sock,server=on,wait=on") || !strings.Contains(chardevs, "path=/run/vm1/qmp.sock") {
		t.Errorf("-chardev = %q: want the serial (waiting) and QMP sockets in the VM's folder", chardevs)
	}

	bare, err := Args(Options{Kernel: "/k", NoWatchdog: true, NoIPMI: true, NoReboot: true, WatchdogAction: "poweroff"}, "/d")
	if err != nil {
		t.Fatal(err)
	}
	if d := flagValues(bare, "-device"); len(d) != 0 {
		t.Errorf("NoWatchdog and NoIPMI left devices: %q", d)
	}
	if !slices.Contains(bare, "-no-reboot") {
		t.Errorf("NoReboot did not add -no-reboot: %q", bare)
	}
}

func TestArgsErrors(t *testing.T) {
	for name, o := range map[string]Options{
		"no kernel":        {},
		"bad accel":        {Kernel: "/k", Accel: "hvf"},
		"drive without ID": {Kernel: "/k", Drives: []Drive{{File: "/f"}}},
		"duplicate drive":  {Kernel: "/k", Drives: []Drive{{ID: "a", File: "/f"}, {ID: "a", File: "/g"}}},
		"comma in a path":  {Kernel: "/k", Drives: []Drive{{ID: "a", File: "/f,x"}}},
		"nil network":      {Kernel: "/k", NICs: []*Network{nil}},
	} {
		if _, err := Args(o, "/d"); err == nil {
			t.Errorf("%s: Args accepted %+v", name, o)
		}
	}
}
