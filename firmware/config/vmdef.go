package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
)

// VMDefinition is what QEMU needs to run a VM beyond the cluster file's
// [[vms]] entry: its file vms/NAME.toml lies on a folder datastore, so that
// any host can start the VM. Paths are relative to the datastore's folder
// (disks must lie in it); the kernel and initrd may also be absolute, for
// boot files every host keeps locally.
//
//	machine = "q35"
//	kernel  = "boot/vmlinuz"            # optional: a direct kernel boot
//	append  = "console=ttyS0 root=/dev/vda"
//	args    = ["-rtc", "base=utc"]      # passed to QEMU as they are
//
//	[[disks]]
//	file   = "disks/web1.qcow2"
//	format = "qcow2"
//
//	[[nics]]
//	bridge = "br0"
//	mac    = "52:54:00:00:01:01"
type VMDefinition struct {
	// Name, CPU and Memory may repeat the cluster file's; they must then
	// agree with it (admission control counts the cluster file's).
	Name    string `toml:"name,omitempty"`
	CPU     int    `toml:"cpu,omitempty"`
	Memory  Size   `toml:"memory,omitempty"`
	Machine string `toml:"machine,omitempty"`
	Kernel  string `toml:"kernel,omitempty"`
	Initrd  string `toml:"initrd,omitempty"`
	Append  string `toml:"append,omitempty"`
	// GuestAgent adds the virtio-serial port of vigil guest; nil is true.
	GuestAgent *bool    `toml:"guest_agent,omitempty"`
	Args       []string `toml:"args,omitempty"`
	Disks      []VMDisk `toml:"disks,omitempty"`
	NICs       []VMNIC  `toml:"nics,omitempty"`

	// Dir is the datastore folder the definition was read from, and File
	// the definition's path.
	Dir  string `toml:"-"`
	File string `toml:"-"`
}

// VMDisk is one disk of a VMDefinition.
type VMDisk struct {
	File     string `toml:"file"`
	Format   string `toml:"format,omitempty"` // raw (default) or qcow2
	Serial   string `toml:"serial,omitempty"`
	ReadOnly bool   `toml:"read_only,omitempty"`
}

// VMNIC is one NIC of a VMDefinition: exactly one of Bridge, Tap, User
// and Socket.
type VMNIC struct {
	Bridge string `toml:"bridge,omitempty"`
	Tap    string `toml:"tap,omitempty"`
	User   bool   `toml:"user,omitempty"`
	Socket string `toml:"socket,omitempty"`
	MAC    string `toml:"mac,omitempty"`
}

// HasGuestAgent reports whether the VM gets the guest agent's port.
func (d *VMDefinition) HasGuestAgent() bool { return d.GuestAgent == nil || *d.GuestAgent }

// VMDefinitionPath is where a folder datastore at dir holds VM name's
// definition.
func VMDefinitionPath(dir, name string) string {
	return filepath.Join(dir, "vms", name+".toml")
}

// Resolve returns the absolute path of a definition's path p.
func (d *VMDefinition) Resolve(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(d.Dir, p)
}

// LoadVMDefinition reads the definition of the cluster's VM v from the
// first folder datastore that holds one. dirs are the folder datastores'
// paths on this host, in the cluster file's order.
func (c *Config) LoadVMDefinition(dirs []string, v int) (*VMDefinition, error) {
	vm := c.VMs[v]
	var tried []string
	for _, dir := range dirs {
		p := VMDefinitionPath(dir, vm.Name)
		data, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			tried = append(tried, p)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("VM %s: read its definition: %w (fix: check that the datastore is mounted and readable)", vm.Name, err)
		}
		d, err := ParseVMDefinition(data, vm)
		if err != nil {
			return nil, fmt.Errorf("VM %s: %s: %w", vm.Name, p, err)
		}
		d.Dir, d.File = dir, p
		return d, nil
	}
	if len(tried) == 0 {
		return nil, fmt.Errorf("VM %s: no folder datastore to read its definition from (fix: add a [[datastores]] entry with a path)", vm.Name)
	}
	return nil, fmt.Errorf("VM %s: no definition: %s does not exist (fix: write the VM's definition there; see \"QEMU VMs\" in the README)", vm.Name, strings.Join(tried, " nor "))
}

// ParseVMDefinition decodes and checks the definition of vm. Every problem
// is reported, each with its key and fix.
func ParseVMDefinition(data []byte, vm VM) (*VMDefinition, error) {
	d := &VMDefinition{}
	if err := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields().Decode(d); err != nil {
		return nil, vmDefDecodeError(err, "name, cpu, memory, machine, kernel, initrd, append, guest_agent, args, [[disks]] (file, format, serial, read_only) and [[nics]] (bridge, tap, user, socket, mac)")
	}
	var ps Problems
	if d.Name != "" && d.Name != vm.Name {
		ps.add("name", "name the file after the VM, or leave name out", "%q in the definition of VM %s", d.Name, vm.Name)
	}
	if d.CPU != 0 && d.CPU != vm.CPU {
		ps.add("cpu", "make it agree with the cluster file, or leave it out", "%d vCPU, and the cluster file says %d", d.CPU, vm.CPU)
	}
	if d.Memory != 0 && d.Memory != vm.Memory {
		ps.add("memory", "make it agree with the cluster file, or leave it out", "%s, and the cluster file says %s", d.Memory, vm.Memory)
	}
	if d.Kernel == "" && len(d.Disks) == 0 {
		ps.add("", "give a kernel or at least one [[disks]] entry", "nothing to boot")
	}
	if d.Initrd != "" && d.Kernel == "" {
		ps.add("initrd", "give the kernel too, or leave initrd out", "an initrd without a kernel")
	}
	for _, k := range []struct{ key, v string }{{"kernel", d.Kernel}, {"initrd", d.Initrd}} {
		if k.v != "" && !filepath.IsAbs(k.v) {
			checkInside(&ps, k.key, k.v)
		}
	}
	for i, disk := range d.Disks {
		key := fmt.Sprintf("disks[%d]", i)
		switch {
		case disk.File == "":
			ps.add(key+".file", `give the image's path in the datastore folder, like "disks/web1.qcow2"`, "missing")
		case filepath.IsAbs(disk.File):
			ps.add(key+".file", "give a path relative to the datastore folder: every host must reach the disk", "%q is absolute", disk.File)
		default:
			checkInside(&ps, key+".file", disk.File)
		}
		if disk.Format != "" && disk.Format != "raw" && disk.Format != "qcow2" {
			ps.add(key+".format", `use "raw" or "qcow2"`, "%q is not a disk format", disk.Format)
		}
		if strings.ContainsAny(disk.File+disk.Serial, ",\n") {
			ps.add(key, "rename the file or the serial", "a ',' or a newline, which QEMU's command line cannot carry")
		}
	}
	for i, n := range d.NICs {
		key := fmt.Sprintf("nics[%d]", i)
		set := 0
		for _, b := range []bool{n.Bridge != "", n.Tap != "", n.User, n.Socket != ""} {
			if b {
				set++
			}
		}
		if set != 1 {
			ps.add(key, `set exactly one of bridge = "br0", tap = "vnet0", user = true and socket = "/path"`, "%d backends", set)
		}
		if n.MAC != "" {
			if hw, err := net.ParseMAC(n.MAC); err != nil || len(hw) != 6 {
				ps.add(key+".mac", `write it like "52:54:00:12:34:56"`, "%q is not a MAC address", n.MAC)
			} else if hw[0]&1 != 0 {
				ps.add(key+".mac", "clear the lowest bit of the first byte", "%q is a multicast address", n.MAC)
			}
		}
		if strings.ContainsAny(n.Bridge+n.Tap+n.Socket, ",\n") {
			ps.add(key, "rename the device or socket", "a ',' or a newline, which QEMU's command line cannot carry")
		}
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return d, nil
}

// checkInside reports a relative path that leaves the datastore folder.
func checkInside(ps *Problems, key, p string) {
	if c := filepath.Clean(p); c == ".." || strings.HasPrefix(c, "../") {
		ps.add(key, "keep the path inside the datastore folder", "%q leaves the datastore folder", p)
	}
}

// vmDefDecodeError turns a decode error into problems with line numbers;
// known lists the file's keys for an unknown one.
func vmDefDecodeError(err error, known string) error {
	var strict *toml.StrictMissingError
	var de *toml.DecodeError
	var ps Problems
	one := func(e *toml.DecodeError) {
		line, _ := e.Position()
		key := strings.Join(e.Key(), ".")
		msg := strings.TrimPrefix(e.Error(), "toml: ")
		fix := "correct the TOML syntax"
		if msg == "unknown field" {
			msg, fix = "unknown key", "remove it; the known keys are "+known
		}
		ps.add(key, fix, "line %d: %s", line, msg)
	}
	switch {
	case errors.As(err, &strict):
		for i := range strict.Errors {
			one(&strict.Errors[i])
		}
	case errors.As(err, &de):
		one(de)
	default:
		ps.add("", "see \"QEMU VMs\" in the README", "%v", err)
	}
	return ps
}
