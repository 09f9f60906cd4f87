//go:build linux

package nic

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/tools/privtest"
)

// labPrefix starts the name of every namespace these tests create; the
// creating process's id follows, so stale namespaces of dead runs can be
// found and removed.
const labPrefix = "vnic-"

// lab is two hosts A and B in their own network namespaces, joined by two
// veth pairs: link 0 a0 10.77.0.1/24 <-> b0 10.77.0.2/24, link 1 a1
// 10.78.0.1/24 <-> b1 10.78.0.2/24.
type lab struct {
	a, b   netns.NsHandle
	ha, hb *netlink.Handle
}

var (
	labA = [2]string{"10.77.0.1", "10.78.0.1"}
	labB = [2]string{"10.77.0.2", "10.78.0.2"}
)

// newLab builds the lab for t and removes it in t.Cleanup. It waits until
// all four devices are up with carrier.
func newLab(t testing.TB) *lab {
	t.Helper()
	privtest.Require(t)
	removeStaleNamespaces(t)
	tag := fmt.Sprintf("%s%d-%06x-", labPrefix, os.Getpid(), rand.IntN(1<<24))
	l := &lab{a: newNamespace(t, tag+"a"), b: newNamespace(t, tag+"b")}
	var err error
	if l.ha, err = netlink.NewHandleAt(l.a); err != nil {
		t.Fatalf("netlink handle in A: %v", err)
	}
	t.Cleanup(l.ha.Close)
	if l.hb, err = netlink.NewHandleAt(l.b); err != nil {
		t.Fatalf("netlink handle in B: %v", err)
	}
	t.Cleanup(l.hb.Close)
	for i := range 2 {
		an, bn := "a"+strconv.Itoa(i), "b"+strconv.Itoa(i)
		// A's devices get indexes no device of B has: the kernel reports
		// the carrier of a veth whose index equals its peer's with the
		// once-a-second batching of ordinary NICs, not at once.
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: an, Index: 100 + i}, PeerName: bn, PeerNamespace: netlink.NsFd(l.b)}
		if err := l.ha.LinkAdd(veth); err != nil {
			t.Fatalf("add veth %s-%s: %v", an, bn, err)
		}
		l.addr(t, l.ha, an, labA[i])
		l.addr(t, l.hb, bn, labB[i])
	}
	for _, dev := range []struct {
		h    *netlink.Handle
		name string
	}{{l.ha, "lo"}, {l.ha, "a0"}, {l.ha, "a1"}, {l.hb, "lo"}, {l.hb, "b0"}, {l.hb, "b1"}} {
		l.setUp(t, dev.h, dev.name, true)
	}
	waitState(t, l.a, map[string]bool{"a0": true, "a1": true})
	waitState(t, l.b, map[string]bool{"b0": true, "b1": true})
	return l
}

// newNamespace creates a named network namespace and deletes it at cleanup.
func newNamespace(t testing.TB, name string) netns.NsHandle {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("read the current namespace: %v", err)
	}
	ns, err := netns.NewNamed(name)
	if serr := netns.Set(orig); serr != nil {
		t.Fatalf("return to the original namespace: %v", serr) // the thread stays locked and dies
	}
	runtime.UnlockOSThread()
	orig.Close()
	if err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		ns.Close()
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete namespace %s: %v", name, err)
		}
	})
	return ns
}

// removeStaleNamespaces deletes the lab namespaces of processes that are gone.
func removeStaleNamespaces(t testing.TB) {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), labPrefix)
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(strings.SplitN(rest, "-", 2)[0])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			continue
		}
		if err := netns.DeleteNamed(e.Name()); err != nil {
			t.Logf("remove stale namespace %s: %v", e.Name(), err)
		}
	}
}

func (l *lab) addr(t testing.TB, h *netlink.Handle, dev, ip string) {
	t.Helper()
	link, err := h.LinkByName(dev)
	if err != nil {
		t.Fatalf("find %s: %v", dev, err)
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP(ip), Mask: net.CIDRMask(24, 32)}}
	if strings.Contains(ip, ":") { // IPv6: usable at once, without duplicate detection
		a = &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP(ip), Mask: net.CIDRMask(64, 128)}, Flags: unix.IFA_F_NODAD}
	}
	if err := h.AddrAdd(link, a); err != nil {
		t.Fatalf("add %s to %s: %v", ip, dev, err)
	}
}

// setUp sets a device administratively up or down.
func (l *lab) setUp(t testing.TB, h *netlink.Handle, dev string, up bool) {
	t.Helper()
	link, err := h.LinkByName(dev)
	if err != nil {
		t.Fatalf("find %s: %v", dev, err)
	}
	if up {
		err = h.LinkSetUp(link)
	} else {
		err = h.LinkSetDown(link)
	}
	if err != nil {
		t.Fatalf("set %s up=%v: %v", dev, up, err)
	}
}

// waitState waits until each named device of ns is up with carrier (or
// not) as want says. It subscribes with the existing links listed first, so
// no change is missed.
func waitState(t testing.TB, ns netns.NsHandle, want map[string]bool) {
	t.Helper()
	ch := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	defer func() {
		close(done)
		for range ch {
		}
	}()
	if err := netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{Namespace: &ns, ListExisting: true}); err != nil {
		t.Fatalf("subscribe to link events: %v", err)
	}
	have := make(map[string]bool, len(want))
	timeout := time.After(waitLimit)
	for {
		match := len(have) == len(want)
		for name, up := range want {
			if v, ok := have[name]; !ok || v != up {
				match = false
			}
		}
		if match {
			return
		}
		select {
		case u := <-ch:
			if _, ok := want[u.Attrs().Name]; ok {
				have[u.Attrs().Name] = isUp(u.IfInfomsg.Flags)
			}
		case <-timeout:
			t.Fatalf("devices are %v after %v, want %v", have, waitLimit, want)
		}
	}
}

// waitLimit guards every wait of these tests; the waits end much sooner.
const waitLimit = 5 * time.Second

// openIn opens NICs in namespace ns and closes them at cleanup.
func openIn(t testing.TB, ns netns.NsHandle, cfg Config) (*NICs, error) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("read the current namespace: %v", err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("enter the namespace: %v", err)
	}
	n, oerr := Open(cfg)
	if err := netns.Set(orig); err != nil {
		t.Fatalf("return to the original namespace: %v", err) // the thread stays locked and dies
	}
	runtime.UnlockOSThread()
	if oerr == nil {
		t.Cleanup(func() {
			if err := n.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
	}
	return n, oerr
}

// mustOpenIn is openIn that fails the test on an error.
func mustOpenIn(t testing.TB, ns netns.NsHandle, cfg Config) *NICs {
	t.Helper()
	n, err := openIn(t, ns, cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return n
}

// hostConfig is the configuration of host A (self 0) or B (self 1) of the
// lab. An error the NICs report through OnError fails t when t ends.
func hostConfig(t testing.TB, self int) Config {
	var (
		mu   sync.Mutex
		errs []error
	)
	t.Cleanup(func() { // runs after the NICs are closed
		mu.Lock()
		defer mu.Unlock()
		for _, err := range errs {
			t.Errorf("reported: %v", err)
		}
	})
	cfg := Config{Port: testPort, OnError: func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	}}
	for i := range 2 {
		a, b := netip.MustParseAddr(labA[i]), netip.MustParseAddr(labB[i])
		lc := LinkConfig{Local: a, Peers: []netip.Addr{{}, b}}
		if self == 1 {
			lc = LinkConfig{Local: b, Peers: []netip.Addr{a, {}}}
		}
		cfg.Links = append(cfg.Links, lc)
	}
	return cfg
}

// testPort is the heartbeat port of the lab hosts.
const testPort = 5405
