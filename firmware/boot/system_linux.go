//go:build linux

package boot

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// LoadModules loads every module named in dir/load-order, in order, with
// finit_module. A module already loaded or built in counts as loaded; one
// that fails is reported and the rest still load.
func LoadModules(dir string) (loaded int, errs []error) {
	list, err := os.ReadFile(filepath.Join(dir, "load-order"))
	if err != nil {
		return 0, []error{fmt.Errorf("boot: modules: %w", err)}
	}
	for _, name := range strings.Fields(string(list)) {
		if err := loadModule(filepath.Join(dir, name)); err != nil {
			errs = append(errs, err)
			continue
		}
		loaded++
	}
	return loaded, errs
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("boot: module %s: %w", filepath.Base(path), err)
	}
	defer f.Close()
	err = unix.FinitModule(int(f.Fd()), "", 0)
	if errors.Is(err, unix.ENODEV) || errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("boot: module %s: no device of its kind here (%v): skipped", filepath.Base(path), err)
	}
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("boot: module %s: finit_module: %w", filepath.Base(path), err)
	}
	return nil
}

// LinkDisks makes /dev/disk/by-id/virtio-SERIAL links for the virtio
// disks that have a serial number, as udev would, and returns them:
// serial → device.
func LinkDisks(sys, dev string) (map[string]string, error) {
	m := map[string]string{}
	blocks, _ := filepath.Glob(filepath.Join(sys, "block", "*", "serial"))
	byID := filepath.Join(dev, "disk", "by-id")
	if err := os.MkdirAll(byID, 0o755); err != nil {
		return nil, err
	}
	for _, s := range blocks {
		b, err := os.ReadFile(s)
		serial := strings.TrimSpace(string(b))
		if err != nil || serial == "" {
			continue
		}
		name := filepath.Base(filepath.Dir(s))
		target := filepath.Join(dev, name)
		m[serial] = target
		link := filepath.Join(byID, "virtio-"+serial)
		os.Remove(link)
		if err := os.Symlink(target, link); err != nil {
			return m, err
		}
	}
	return m, nil
}

// ConfigureNICs gives link i of the host the i-th ethernet interface
// (sorted by name) unless over names one, brings it up with the host's
// address (a /24 unless the address says its prefix), and brings up lo.
// It returns one line per link for the boot log.
func ConfigureNICs(links []string, addrs []string, over map[string]string) ([]string, error) {
	if lo, err := netlink.LinkByName("lo"); err == nil {
		netlink.LinkSetUp(lo)
	}
	all, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("boot: listing NICs: %w", err)
	}
	var eths []string
	for _, l := range all {
		if l.Type() == "device" && l.Attrs().Name != "lo" && len(l.Attrs().HardwareAddr) == 6 {
			eths = append(eths, l.Attrs().Name)
		}
	}
	sort.Strings(eths)
	var out []string
	for i, link := range links {
		if i >= len(addrs) {
			break
		}
		ifname := over[link]
		if ifname == "" {
			if i >= len(eths) {
				return out, fmt.Errorf("boot: link %s has no NIC: the host has %d ethernet interfaces (%s) (fix: add a NIC, or name one with vigil.nic.%s=IFNAME)", link, len(eths), strings.Join(eths, ", "), link)
			}
			ifname = eths[i]
		}
		nl, err := netlink.LinkByName(ifname)
		if err != nil {
			return out, fmt.Errorf("boot: link %s: NIC %s: %w (fix: vigil.nic.%s=IFNAME with one of %s)", link, ifname, err, link, strings.Join(eths, ", "))
		}
		a := addrs[i]
		if !strings.Contains(a, "/") {
			if ip := net.ParseIP(a); ip != nil && ip.To4() == nil {
				a += "/64"
			} else {
				a += "/24"
			}
		}
		addr, err := netlink.ParseAddr(a)
		if err != nil {
			return out, fmt.Errorf("boot: link %s: address %s: %w", link, a, err)
		}
		if err := netlink.AddrReplace(nl, addr); err != nil {
			return out, fmt.Errorf("boot: link %s: %s on %s: %w", link, a, ifname, err)
		}
		if err := netlink.LinkSetUp(nl); err != nil {
			return out, fmt.Errorf("boot: link %s: %s up: %w", link, ifname, err)
		}
		out = append(out, fmt.Sprintf("NIC %s link %s %s", ifname, link, a))
	}
	return out, nil
}
