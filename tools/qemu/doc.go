// Package qemu runs QEMU VMs for vigil's image tests: the firmware image
// on an emulated host with the devices vigil drives (an i6300esb watchdog,
// an in-band BMC, virtio disks and NICs), its serial console recorded and
// driven, and QEMU's monitor (QMP) for device hot-unplug and events.
//
//	n, _ := qemu.NewNetwork(dir)                  // a hub between VMs' NICs
//	vm, err := qemu.Start(ctx, qemu.Options{
//		Kernel: k.Vmlinux, Initrd: "initramfs.cpio",
//		Append: "vigil.host=h1 ...",
//		Drives: []qemu.Drive{{ID: "ds0", Serial: "ds0", File: "ds0.img", Shared: true}},
//		NICs:   []*qemu.Network{n},
//	})
//	defer vm.Stop()
//	reply, err := vm.Serial.Command(ctx, "status")  // the vigil console
//	removed, err := vm.RemoveDrive(ctx, "ds0")      // device_del
//	ev, err := vm.QMP.WaitEvent(ctx, "WATCHDOG", removed)
//
// QEMU runs under software emulation (TCG) unless KVM is usable. The
// serial port is a unix socket QEMU waits on, so no output is lost; every
// line is kept with its time since QEMU started. NICs are QEMU dgram
// netdevs on unix sockets to a hub in the test process, which repeats
// frames between VMs, records them (so a test sees a VM's first packet from
// outside) and can answer ARP for a host that is not booted.
package qemu
