package lab

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// inNS runs fn on an OS thread set into the named network namespace, then
// sets the thread back. Sockets fn opens stay in that namespace. If the
// thread cannot be set back it stays locked and dies with the goroutine.
func inNS(name string, fn func() error) error {
	ns, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("lab: open namespace %s: %w (fix: run 'vigil lab up' again)", name, err)
	}
	defer ns.Close()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("lab: read the current namespace: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("lab: enter namespace %s: %w", name, err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		return errors.Join(ferr, fmt.Errorf("lab: leave namespace %s: %w", name, err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// newNS makes the named network namespace, leaving the calling thread
// where it was.
func newNS(name string) (netns.NsHandle, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return netns.None(), fmt.Errorf("lab: read the current namespace: %w", err)
	}
	defer orig.Close()
	ns, err := netns.NewNamed(name)
	if serr := netns.Set(orig); serr != nil {
		runtime.LockOSThread() // keep the thread out of use: it dies with the goroutine
		if err == nil {
			ns.Close()
		}
		return netns.None(), fmt.Errorf("lab: leave namespace %s: %w", name, serr)
	}
	if err != nil {
		return netns.None(), fmt.Errorf("lab: make namespace %s: %w", name, err)
	}
	return ns, nil
}

// deleteNamespaces removes every namespace of the lab called name,
// including half-made ones left by a crash.
func deleteNamespaces(name string) error {
	entries, err := os.ReadDir(netnsRoot)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("lab: list %s: %w", netnsRoot, err)
	}
	var errs []error
	for _, e := range entries {
		if !isLabNS(name, e.Name()) {
			continue
		}
		p := filepath.Join(netnsRoot, e.Name())
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("lab: unmount namespace %s: %w", p, err))
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("lab: remove namespace %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// buildNetwork makes the hub and host namespaces, bridges, veths and
// addresses of s, and fills in the hub-side ifindexes.
func buildNetwork(s *state) error {
	hub, err := newNS(s.HubNS)
	if err != nil {
		return err
	}
	defer hub.Close()
	hh, err := netlink.NewHandleAt(hub)
	if err != nil {
		return fmt.Errorf("lab: netlink in %s: %w", s.HubNS, err)
	}
	defer hh.Close()
	if err := loUp(hh, s.HubNS); err != nil {
		return err
	}
	if err := inNS(s.HubNS, plainBridges); err != nil {
		return err
	}
	bridges := make([]int, len(s.Links))
	for l, ls := range s.Links {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: ls.Bridge}}
		if err := hh.LinkAdd(br); err != nil {
			return fmt.Errorf("lab: add bridge %s in %s: %w", ls.Bridge, s.HubNS, err)
		}
		if err := addAddr(hh, br, ls.Isolation); err != nil {
			return err
		}
		if err := hh.LinkSetUp(br); err != nil {
			return fmt.Errorf("lab: set %s up: %w", ls.Bridge, err)
		}
		bridges[l] = br.Index
	}
	var hubVeths []string
	for i := range s.Hosts {
		h := &s.Hosts[i]
		if err := buildHost(s, h, hh, bridges); err != nil {
			return err
		}
		var veths []string
		for _, hl := range h.Links {
			veths = append(veths, hl.Veth)
			hubVeths = append(hubVeths, hl.HubVeth)
		}
		if err := nicThreads(h.NS, veths); err != nil {
			return err
		}
	}
	return nicThreads(s.HubNS, hubVeths)
}

// plainBridges keeps the bridged frames of the calling thread's network
// namespace away from the IP firewall hooks (br_netfilter, built into some
// kernels, is on by default): the lab's bridges are switches, and the hooks
// would add their cost to every heartbeat. A kernel without br_netfilter
// has no such settings.
func plainBridges() error {
	for _, k := range []string{"iptables", "ip6tables", "arptables"} {
		path := "/proc/sys/net/bridge/bridge-nf-call-" + k
		err := os.WriteFile(path, []byte("0\n"), 0o644)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("lab: %s: %w", path, err)
		}
	}
	return nil
}

// buildHost makes one host's namespace and its veths.
func buildHost(s *state, h *hostState, hh *netlink.Handle, bridges []int) error {
	ns, err := newNS(h.NS)
	if err != nil {
		return err
	}
	defer ns.Close()
	nh, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("lab: netlink in %s: %w", h.NS, err)
	}
	defer nh.Close()
	if err := loUp(nh, h.NS); err != nil {
		return err
	}
	for l := range h.Links {
		hl := &h.Links[l]
		v := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: hl.HubVeth, MasterIndex: bridges[l]},
			PeerName:      hl.Veth,
			PeerNamespace: netlink.NsFd(ns),
		}
		if err := hh.LinkAdd(v); err != nil {
			return fmt.Errorf("lab: add veth %s/%s for %s: %w", hl.HubVeth, hl.Veth, h.Name, err)
		}
		if err := hh.LinkSetUp(v); err != nil {
			return fmt.Errorf("lab: set %s up: %w", hl.HubVeth, err)
		}
		hl.HubIndex = v.Index
		peer, err := nh.LinkByName(hl.Veth)
		if err != nil {
			return fmt.Errorf("lab: find %s in %s: %w", hl.Veth, h.NS, err)
		}
		if err := addAddr(nh, peer, hl.Addr); err != nil {
			return err
		}
		if err := nh.LinkSetUp(peer); err != nil {
			return fmt.Errorf("lab: set %s up in %s: %w", hl.Veth, h.NS, err)
		}
	}
	return nil
}

func loUp(h *netlink.Handle, ns string) error {
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("lab: set lo up in %s: %w", ns, err)
	}
	return nil
}

func addAddr(h *netlink.Handle, link netlink.Link, addr string) error {
	ip := net.ParseIP(addr).To4()
	if ip == nil {
		return fmt.Errorf("lab: %q is not an IPv4 address", addr)
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: net.CIDRMask(24, 32)}}
	if err := h.AddrAdd(link, a); err != nil {
		return fmt.Errorf("lab: add %s/24 to %s: %w", addr, link.Attrs().Name, err)
	}
	return nil
}

// setHubVeth sets the hub side of host h's veth on link l up or down.
func setHubVeth(s *state, hl *hostLinkState, up bool) error {
	ns, err := netns.GetFromName(s.HubNS)
	if err != nil {
		return fmt.Errorf("lab: open namespace %s: %w (fix: run 'vigil lab up' again)", s.HubNS, err)
	}
	defer ns.Close()
	hh, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("lab: netlink in %s: %w", s.HubNS, err)
	}
	defer hh.Close()
	link, err := hh.LinkByName(hl.HubVeth)
	if err != nil {
		return fmt.Errorf("lab: find %s in %s: %w", hl.HubVeth, s.HubNS, err)
	}
	if up {
		err = hh.LinkSetUp(link)
	} else {
		err = hh.LinkSetDown(link)
	}
	if err != nil {
		return fmt.Errorf("lab: set %s up=%v: %w", hl.HubVeth, up, err)
	}
	return nil
}
