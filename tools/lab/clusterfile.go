package lab

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigil-ha/vigil/firmware/config"
)

// ClusterFile returns the cluster.toml of a lab with options o (defaults
// filled in) whose folder is dir: cluster o.Name, the key file and port,
// default timing, one link lL per link with the bridge as its isolation
// address, the folder datastore ds0 in dir/store and the block datastore
// ds1 on device, hosts h1..hN with 8 CPUs and 16 GiB (and, unless
// o.NoBMC, hN's BMC at 10.100.0.1:6230+N with its credentials in
// dir/hN/bmc.cred), and VMs vm1..vmM of 1 CPU and 1 GiB spread round-robin over the hosts.
func ClusterFile(o Options, dir, device string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# The lab %q: %d hosts, %d links, written by 'vigil lab up'.\n\n", o.Name, o.Hosts, o.Links)
	fmt.Fprintf(&b, "[cluster]\nname = %q\nkey_file = %q\nport = %d\n\n", o.Name, filepath.Join(dir, "cluster.key"), Port)
	failures := 1
	if o.Hosts == 1 {
		failures = 0 // host_failures must stay below the number of hosts
	}
	if o.QEMUKernel != "" {
		b.WriteString("[hypervisor]\ndriver = \"qemu\"\nkvm = \"off\"\n\n")
	}
	fmt.Fprintf(&b, "[policy]\nhost_failures = %d\n", failures)
	if o.WatchdogResets > 0 {
		fmt.Fprintf(&b, "watchdog_resets = %d\n", o.WatchdogResets)
	}
	for l := 0; l < o.Links; l++ {
		fmt.Fprintf(&b, "\n[[links]]\nname = %q\nisolation_address = %q\n", linkName(l), isolationAddr(l))
	}
	fmt.Fprintf(&b, "\n[[datastores]]\nname = %q\npath = %q\n", folderDS, filepath.Join(dir, storeDir, folderDS))
	fmt.Fprintf(&b, "\n[[datastores]]\nname = %q\ndevice = %q\n", blockDS, device)
	for n := 1; n <= o.Hosts; n++ {
		addrs := make([]string, o.Links)
		for l := range addrs {
			addrs[l] = fmt.Sprintf("%q", hostAddr(n, l))
		}
		fmt.Fprintf(&b, "\n[[hosts]]\nid = %d\nname = %q\naddresses = [%s]\ncpu = 8\nmemory = \"16GiB\"\n",
			n, hostName(n), strings.Join(addrs, ", "))
		if !o.NoBMC {
			fmt.Fprintf(&b, "bmc = %q\nbmc_credentials = %q\n", bmcAddr(n), bmcCredentials(filepath.Join(dir, hostName(n))))
		}
	}
	for i := 1; i <= o.VMs; i++ {
		mem := "1GiB"
		if o.QEMUKernel != "" {
			mem = "256MiB" // what QEMU gives the guest
		}
		fmt.Fprintf(&b, "\n[[vms]]\nname = \"vm%d\"\ncpu = 1\nmemory = %q\nhost = %q\n", i, mem, hostName((i-1)%o.Hosts+1))
		if i <= len(o.Isolation) && o.Isolation[i-1] != "" {
			fmt.Fprintf(&b, "isolation_response = %q\n", o.Isolation[i-1])
		}
		if o.VMPolicy != "" {
			b.WriteString(strings.TrimRight(o.VMPolicy, "\n") + "\n")
		}
	}
	return b.String()
}

// qemuDiskSize is the size of each QEMU VM's raw disk (sparse).
const qemuDiskSize = 1 << 20

// VMDefinition is the definition of a QEMU lab VM (vms/NAME.toml on ds0):
// the kernel, which panics without a root file system and then idles
// (panic=0), or, with an initrd, boots vigil's image as a guest running
// vigil guest with the guest file guestConfig; and its raw disk, which
// QEMU opens on the host that owns the VM.
func VMDefinition(name, kernel, initrd, guestConfig string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# The lab VM %s, written by 'vigil lab up'.\nkernel = %q\n", name, kernel)
	if initrd == "" {
		b.WriteString("append = \"console=ttyS0 panic=0\"\n")
	} else {
		arg := "1"
		if guestConfig != "" {
			var z bytes.Buffer
			w, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
			w.Write([]byte(guestConfig))
			w.Close()
			arg = base64.StdEncoding.EncodeToString(z.Bytes())
		}
		fmt.Fprintf(&b, "initrd = %q\nappend = \"console=ttyS0 vigil.guest=%s\"\n", initrd, arg)
	}
	fmt.Fprintf(&b, "\n[[disks]]\nfile = \"disks/%s.img\"\nserial = \"root\"\n", name)
	return b.String()
}

// writeVMDefinitions writes every QEMU lab VM's definition and disk into
// the folder datastore ds0 of the shared folder.
func writeVMDefinitions(o Options, dir string) error {
	ds := filepath.Join(dir, storeDir, folderDS)
	for _, sub := range []string{"vms", "disks"} {
		if err := os.MkdirAll(filepath.Join(ds, sub), 0o755); err != nil {
			return fmt.Errorf("lab: %w", err)
		}
	}
	for i := 1; i <= o.VMs; i++ {
		name := fmt.Sprintf("vm%d", i)
		def := VMDefinition(name, o.QEMUKernel, o.QEMUInitrd, o.GuestConfig)
		if err := os.WriteFile(config.VMDefinitionPath(ds, name), []byte(def), 0o644); err != nil {
			return fmt.Errorf("lab: write %s's definition: %w", name, err)
		}
		f, err := os.Create(filepath.Join(ds, "disks", name+".img"))
		if err == nil {
			err = errors.Join(f.Truncate(qemuDiskSize), f.Close())
		}
		if err != nil {
			return fmt.Errorf("lab: make %s's disk: %w", name, err)
		}
	}
	return nil
}

// writeClusterFiles validates and writes cluster.toml and a new
// cluster.key (mode 0600, 32 random bytes in hex) into dir.
func writeClusterFiles(o Options, dir, device string) error {
	text := ClusterFile(o, dir, device)
	if _, err := config.Parse([]byte(text)); err != nil {
		return fmt.Errorf("lab: the generated cluster.toml is invalid: %w (fix: change --hosts, --links or --vms)", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("lab: make the cluster key: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cluster.key"), []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		return fmt.Errorf("lab: write the cluster key: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cluster.toml"), []byte(text), 0o644); err != nil {
		return fmt.Errorf("lab: write cluster.toml: %w", err)
	}
	if o.QEMUKernel != "" {
		return writeVMDefinitions(o, dir)
	}
	return nil
}
