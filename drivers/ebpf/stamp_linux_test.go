//go:build linux && !vigil_noebpf

package ebpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/tools/privtest"
)

// tcxNext is TCX_NEXT as BPF_PROG_TEST_RUN returns it.
const tcxNext = 0xffffffff

// waitLimit guards every wait of these tests; they end much sooner.
const waitLimit = 10 * time.Second

// labPrefix starts the name of the namespaces of these tests; the creating
// process's id follows, so stale ones of dead runs can be removed.
const labPrefix = "vgst"

var labSeq atomic.Int32

// stampLab is two network namespaces joined by a veth pair with an MTU of
// 64 KiB: send0 (10.79.0.2, fd79::2) in send, recv0 (10.79.0.1, fd79::1,
// ifindex recvIndex) in recv.
type stampLab struct {
	recv, send netns.NsHandle
	hr, hs     *netlink.Handle
}

const recvIndex = 100 // not the peer's index: see newStampLab

var (
	recvV4 = netip.MustParseAddr("10.79.0.1")
	sendV4 = netip.MustParseAddr("10.79.0.2")
	recvV6 = netip.MustParseAddr("fd79::1")
	sendV6 = netip.MustParseAddr("fd79::2")
)

func newStampLab(t *testing.T) *stampLab {
	t.Helper()
	removeStaleNamespaces(t)
	tag := fmt.Sprintf("%s%d-%d", labPrefix, os.Getpid(), labSeq.Add(1))
	l := &stampLab{recv: newNamespace(t, tag+"a"), send: newNamespace(t, tag+"b")}
	var err error
	if l.hr, err = netlink.NewHandleAt(l.recv); err != nil {
		t.Fatalf("netlink handle in the receiving namespace: %v", err)
	}
	t.Cleanup(l.hr.Close)
	if l.hs, err = netlink.NewHandleAt(l.send); err != nil {
		t.Fatalf("netlink handle in the sending namespace: %v", err)
	}
	t.Cleanup(l.hs.Close)
	// A veth whose index equals its peer's reports its carrier late,
	// with the batching of ordinary NICs.
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: "recv0", Index: recvIndex},
		PeerName:      "send0",
		PeerNamespace: netlink.NsFd(l.send),
	}
	if err := l.hr.LinkAdd(veth); err != nil {
		t.Fatalf("add veth recv0-send0: %v", err)
	}
	recv := l.setUp(t, l.hr, "recv0", recvV4, recvV6)
	send := l.setUp(t, l.hs, "send0", sendV4, sendV6)
	// Static neighbours: no packet waits for ARP or neighbour discovery.
	for _, n := range []struct {
		h        *netlink.Handle
		dev, mac netlink.Link
		ips      []netip.Addr
	}{{l.hs, send, recv, []netip.Addr{recvV4, recvV6}}, {l.hr, recv, send, []netip.Addr{sendV4, sendV6}}} {
		for _, ip := range n.ips {
			err := n.h.NeighAdd(&netlink.Neigh{
				LinkIndex:    n.dev.Attrs().Index,
				Family:       family(ip),
				State:        netlink.NUD_PERMANENT,
				IP:           ip.AsSlice(),
				HardwareAddr: n.mac.Attrs().HardwareAddr,
			})
			if err != nil {
				t.Fatalf("add neighbour %v on %s: %v", ip, n.dev.Attrs().Name, err)
			}
		}
	}
	waitRunning(t, l.recv, "recv0")
	waitRunning(t, l.send, "send0")
	return l
}

func family(ip netip.Addr) int {
	if ip.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

// setUp gives the device its addresses (IPv6 without duplicate address
// detection, so usable at once) and brings it and lo up.
func (l *stampLab) setUp(t *testing.T, h *netlink.Handle, name string, v4, v6 netip.Addr) netlink.Link {
	t.Helper()
	dev, err := h.LinkByName(name)
	if err != nil {
		t.Fatalf("find %s: %v", name, err)
	}
	for _, a := range []*netlink.Addr{
		{IPNet: &net.IPNet{IP: v4.AsSlice(), Mask: net.CIDRMask(24, 32)}},
		{IPNet: &net.IPNet{IP: v6.AsSlice(), Mask: net.CIDRMask(64, 128)}, Flags: unix.IFA_F_NODAD},
	} {
		if err := h.AddrAdd(dev, a); err != nil {
			t.Fatalf("add %v to %s: %v", a.IPNet, name, err)
		}
	}
	// Large datagrams then leave their payload in page fragments, past the
	// linear data.
	if err := h.LinkSetMTU(dev, 65535); err != nil {
		t.Fatalf("set the MTU of %s: %v", name, err)
	}
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatalf("find lo: %v", err)
	}
	for _, d := range []netlink.Link{lo, dev} {
		if err := h.LinkSetUp(d); err != nil {
			t.Fatalf("set %s up: %v", d.Attrs().Name, err)
		}
	}
	return dev
}

// waitRunning waits until the device in ns is up with carrier: until then
// it has no queue and drops what is sent.
func waitRunning(t *testing.T, ns netns.NsHandle, name string) {
	t.Helper()
	ch := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	defer func() {
		close(done)
		for range ch {
		}
	}()
	opts := netlink.LinkSubscribeOptions{Namespace: &ns, ListExisting: true}
	if err := netlink.LinkSubscribeWithOptions(ch, done, opts); err != nil {
		t.Fatalf("subscribe to link events: %v", err)
	}
	timeout := time.After(waitLimit)
	for {
		select {
		case u := <-ch:
			const running = unix.IFF_UP | unix.IFF_RUNNING
			if u.Attrs().Name == name && u.IfInfomsg.Flags&running == running {
				return
			}
		case <-timeout:
			t.Fatalf("%s not running after %v", name, waitLimit)
		}
	}
}

// newNamespace creates a named network namespace and deletes it at cleanup.
func newNamespace(t *testing.T, name string) netns.NsHandle {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("read the current namespace: %v", err)
	}
	defer orig.Close()
	ns, err := netns.NewNamed(name)
	if serr := netns.Set(orig); serr != nil {
		t.Fatalf("return to the original namespace: %v", serr) // the locked thread dies with the test
	}
	runtime.UnlockOSThread()
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

// removeStaleNamespaces deletes the namespaces of test processes that are
// gone.
func removeStaleNamespaces(t *testing.T) {
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

// inNS runs f on a thread inside ns, and returns the thread to its own
// namespace afterwards.
func inNS(t *testing.T, ns netns.NsHandle, f func()) {
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
	defer func() {
		if err := netns.Set(orig); err != nil {
			t.Fatalf("return to the original namespace: %v", err) // the locked thread dies with the test
		}
		runtime.UnlockOSThread()
	}()
	f()
}

// tcxPrograms counts the TCX ingress programs on the device; call it inside
// the device's namespace.
func tcxPrograms(t *testing.T, ifindex int) int {
	t.Helper()
	res, err := link.QueryPrograms(link.QueryOptions{Target: ifindex, Attach: ebpf.AttachTCXIngress})
	if err != nil {
		t.Fatalf("query the TCX programs of ifindex %d: %v", ifindex, err)
	}
	return len(res.Programs)
}

// recvAll reads n datagrams from c, failing t when they do not all arrive
// within waitLimit.
func recvAll(t *testing.T, c *net.UDPConn, n int) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(waitLimit)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	for i := range n {
		if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
			t.Fatalf("datagram %d of %d to %v: %v", i+1, n, c.LocalAddr(), err)
		}
	}
}

func TestStamperCounts(t *testing.T) {
	privtest.Require(t)
	const port = 15405 // not the default: the load-time constant is rewritten
	s, err := NewStamper(port)
	if err != nil {
		t.Fatalf("NewStamper: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	l := newStampLab(t)

	var hb, other *net.UDPConn
	var tl net.Listener
	inNS(t, l.recv, func() {
		for range 2 { // the second is a no-op
			if err := s.Attach(recvIndex); err != nil {
				t.Fatalf("Attach: %v", err)
			}
		}
		if n := tcxPrograms(t, recvIndex); n != 1 {
			t.Fatalf("%d TCX ingress programs on recv0 after two Attach, want 1", n)
		}
		if hb, err = net.ListenUDP("udp", &net.UDPAddr{Port: port}); err != nil {
			t.Fatal(err)
		}
		if other, err = net.ListenUDP("udp", &net.UDPAddr{Port: port + 1}); err != nil {
			t.Fatal(err)
		}
		if tl, err = net.Listen("tcp", fmt.Sprintf(":%d", port)); err != nil {
			t.Fatal(err)
		}
	})
	t.Cleanup(func() { hb.Close(); other.Close(); tl.Close() })
	if got := s.Attached(); !slices.Equal(got, []int{recvIndex}) {
		t.Errorf("Attached() = %v, want [%d]", got, recvIndex)
	}
	p := s.Program()
	if p.Name != "hb_stamp" || p.Kind != "tcx ingress" || p.ID == 0 || len(p.Tag) != 16 ||
		!slices.Equal(p.Attached, []string{fmt.Sprintf("recv0 (ifindex %d)", recvIndex)}) {
		t.Errorf("Program() = %+v", p)
	}

	var snd *net.UDPConn
	var tc net.Conn
	inNS(t, l.send, func() {
		if snd, err = net.ListenUDP("udp", &net.UDPAddr{}); err != nil {
			t.Fatal(err)
		}
		if tc, err = net.DialTimeout("tcp", netip.AddrPortFrom(recvV4, port).String(), waitLimit); err != nil {
			t.Fatalf("connect over TCP: %v", err)
		}
	})
	t.Cleanup(func() { snd.Close(); tc.Close() })
	send := func(to netip.Addr, port uint16, payload string, n int) {
		t.Helper()
		for range n {
			if _, err := snd.WriteToUDPAddrPort([]byte(payload), netip.AddrPortFrom(to, port)); err != nil {
				t.Fatalf("send to %v port %d: %v", to, port, err)
			}
		}
	}
	heartbeat := "VGL" + strings.Repeat("\x00", 77)

	const n4, n6 = 7, 5
	before := Monotonic()
	send(recvV4, port, heartbeat, n4-1)
	send(recvV6, port, heartbeat, n6-1)
	// Non-linear packets, whose magic the program copies out.
	big := heartbeat + strings.Repeat("\x00", 40000)
	send(recvV4, port, big, 1)
	send(recvV6, port, big, 1)
	// Not heartbeats: another port, another magic, too short.
	send(recvV4, port+1, heartbeat, 1)
	send(recvV6, port+1, heartbeat, 1)
	send(recvV4, port, "XGL"+heartbeat[3:], 1)
	send(recvV6, port, "VGX", 1)
	send(recvV4, port, "VG", 1)
	send(recvV6, port, "", 1)
	if _, err := tc.Write([]byte(heartbeat)); err != nil {
		t.Fatalf("send over TCP: %v", err)
	}
	recvAll(t, hb, n4+n6+4)
	recvAll(t, other, 2)
	tconn, err := tl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer tconn.Close()
	tconn.SetReadDeadline(time.Now().Add(waitLimit))
	if _, err := io.ReadFull(tconn, make([]byte, len(heartbeat))); err != nil {
		t.Fatalf("receive over TCP: %v", err)
	}
	after := Monotonic()

	stamps, err := s.Read(nil)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	want := []Stamp{{Ifindex: recvIndex, Addr: sendV4, Count: n4}, {Ifindex: recvIndex, Addr: sendV6, Count: n6}}
	if len(stamps) != len(want) {
		t.Fatalf("Read() = %v, want %v", stamps, want)
	}
	for i, st := range stamps {
		w := want[i]
		if st.Ifindex != w.Ifindex || st.Addr != w.Addr || st.Count != w.Count {
			t.Errorf("stamp %d = %v, want %d heartbeats from %v on ifindex %d", i, st, w.Count, w.Addr, w.Ifindex)
		}
		if st.Last < before || st.Last > after {
			t.Errorf("stamp %d: last at %v, not within the sends [%v, %v]", i, st.Last, before, after)
		}
	}
	// Read appends.
	again, err := s.Read(slices.Clone(stamps[:1]))
	if err != nil || len(again) != 3 || again[0] != stamps[0] || again[1] != stamps[0] {
		t.Errorf("Read(one stamp) = %v, %v; want that stamp then both", again, err)
	}

	// Detached, the device's heartbeats go uncounted.
	if err := s.Detach(recvIndex); err != nil {
		t.Fatalf("Detach: %v", err)
	}
	if err := s.Detach(recvIndex); err != nil {
		t.Errorf("second Detach: %v", err)
	}
	if got := s.Attached(); len(got) != 0 {
		t.Errorf("Attached() after Detach = %v", got)
	}
	inNS(t, l.recv, func() {
		if n := tcxPrograms(t, recvIndex); n != 0 {
			t.Errorf("%d TCX ingress programs on recv0 after Detach, want 0", n)
		}
	})
	send(recvV4, port, heartbeat, 3)
	recvAll(t, hb, 3)
	detached, err := s.Read(nil)
	if err != nil {
		t.Fatalf("Read after Detach: %v", err)
	}
	if !slices.Equal(detached, stamps) {
		t.Errorf("Read after Detach = %v, want %v unchanged", detached, stamps)
	}

	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := s.Read(nil); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Read after Close: %v, want os.ErrClosed", err)
	}
	if err := s.Attach(recvIndex); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Attach after Close: %v, want os.ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestStamperCloseDetaches(t *testing.T) {
	privtest.Require(t)
	s, err := NewStamper(DefaultPort)
	if err != nil {
		t.Fatalf("NewStamper: %v", err)
	}
	l := newStampLab(t)
	inNS(t, l.recv, func() {
		if err := s.Attach(recvIndex); err != nil {
			t.Fatalf("Attach: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if n := tcxPrograms(t, recvIndex); n != 0 {
			t.Errorf("%d TCX ingress programs on recv0 after Close, want 0", n)
		}
	})
	if got := s.Attached(); len(got) != 0 {
		t.Errorf("Attached() after Close = %v", got)
	}
}

func TestStamperAttachMissingDevice(t *testing.T) {
	privtest.Require(t)
	s, err := NewStamper(DefaultPort)
	if err != nil {
		t.Fatalf("NewStamper: %v", err)
	}
	defer s.Close()
	const bad = 999999
	err = s.Attach(bad)
	if err == nil {
		t.Fatalf("Attach(%d) succeeded", bad)
	}
	if !strings.Contains(err.Error(), "ifindex 999999") || !errors.Is(err, unix.ENODEV) {
		t.Errorf("Attach(%d) = %q, want the device index and ENODEV", bad, err)
	}
	t.Logf("Attach(%d): %v", bad, err)
	if got := s.Attached(); len(got) != 0 {
		t.Errorf("Attached() = %v after a failed Attach", got)
	}
}

// Frames for BPF_PROG_TEST_RUN.

var (
	frameDstMAC = []byte{0x02, 0, 0, 0, 0, 1}
	frameSrcMAC = []byte{0x02, 0, 0, 0, 0, 2}
	frameDst4   = netip.MustParseAddr("10.79.0.1")
	frameDst6   = netip.MustParseAddr("fd79::1")
)

const (
	ethIPv4 = 0x0800
	ethIPv6 = 0x86dd
	ethVLAN = 0x8100
	ethARP  = 0x0806
)

// frame is an Ethernet frame carrying an IP packet from src with an L4
// header of protocol proto (8 bytes for UDP, 20 for TCP) to dport, then
// payload.
type frame struct {
	src      netip.Addr
	proto    byte
	dport    uint16
	payload  string
	vlans    int    // 802.1Q tags
	udpLen   int    // if not 0, the UDP length field
	fragOff  uint16 // IPv4 flags and fragment offset
	options  int    // IPv4 option bytes (a multiple of 4)
	hopByHop bool   // IPv6: a hop-by-hop header before the L4 header
	trailer  string // bytes after the IP packet (Ethernet padding)
}

func (f frame) bytes() []byte {
	l4 := make([]byte, 8)
	if f.proto == unix.IPPROTO_TCP {
		l4 = make([]byte, 20)
		l4[12] = 5 << 4
	}
	binary.BigEndian.PutUint16(l4[0:], 40000)
	binary.BigEndian.PutUint16(l4[2:], f.dport)
	l4 = append(l4, f.payload...)
	if f.proto == unix.IPPROTO_UDP {
		n := len(l4)
		if f.udpLen != 0 {
			n = f.udpLen
		}
		binary.BigEndian.PutUint16(l4[4:], uint16(n))
	}

	var ip []byte
	etype := uint16(ethIPv6)
	if f.src.Is4() {
		etype = ethIPv4
		hl := 20 + f.options
		ip = make([]byte, hl)
		ip[0] = 4<<4 | byte(hl/4)
		binary.BigEndian.PutUint16(ip[2:], uint16(hl+len(l4)))
		binary.BigEndian.PutUint16(ip[6:], f.fragOff)
		ip[8] = 64
		ip[9] = f.proto
		copy(ip[12:], f.src.AsSlice())
		copy(ip[16:], frameDst4.AsSlice())
		for i := 20; i < hl; i++ {
			ip[i] = 1 // NOP
		}
	} else {
		next := f.proto
		if f.hopByHop {
			// 8 bytes: next header, length 0, a PadN option of 4 bytes.
			l4 = append([]byte{f.proto, 0, 1, 4, 0, 0, 0, 0}, l4...)
			next = 0
		}
		ip = make([]byte, 40)
		ip[0] = 6 << 4
		binary.BigEndian.PutUint16(ip[4:], uint16(len(l4)))
		ip[6] = next
		ip[7] = 64
		copy(ip[8:], f.src.AsSlice())
		copy(ip[24:], frameDst6.AsSlice())
	}

	b := append(append([]byte{}, frameDstMAC...), frameSrcMAC...)
	for range f.vlans {
		b = binary.BigEndian.AppendUint16(b, ethVLAN)
		b = binary.BigEndian.AppendUint16(b, 42)
	}
	b = binary.BigEndian.AppendUint16(b, etype)
	b = append(b, ip...)
	b = append(b, l4...)
	return append(b, f.trailer...)
}

// arpFrame is an ARP request, no IP at all.
func arpFrame() []byte {
	b := append(append([]byte{}, frameDstMAC...), frameSrcMAC...)
	b = binary.BigEndian.AppendUint16(b, ethARP)
	return append(b, make([]byte, 28)...)
}

// TestStampFrames runs the program on crafted frames with
// BPF_PROG_TEST_RUN, which hands it the loopback device (ifindex 1).
func TestStampFrames(t *testing.T) {
	privtest.Require(t)
	const port = 6000
	s, err := NewStamper(port)
	if err != nil {
		t.Fatalf("NewStamper: %v", err)
	}
	defer s.Close()
	const udp, tcp = unix.IPPROTO_UDP, unix.IPPROTO_TCP
	a := netip.MustParseAddr
	hb := "VGL\x01rest of the heartbeat"
	udpShaped := frame{src: a("10.0.1.8"), proto: udp, dport: port, payload: hb}.bytes()
	udpShaped[14+9] = tcp
	for _, c := range []struct {
		name  string
		f     frame
		raw   []byte // if not nil, the frame instead of f's
		count bool
	}{
		{"ipv4", frame{src: a("10.0.0.1"), proto: udp, dport: port, payload: hb}, nil, true},
		{"ipv6", frame{src: a("2001:db8::1"), proto: udp, dport: port, payload: hb}, nil, true},
		{"vlan ipv4", frame{src: a("10.0.0.2"), proto: udp, dport: port, payload: hb, vlans: 1}, nil, true},
		{"vlan ipv6", frame{src: a("2001:db8::2"), proto: udp, dport: port, payload: hb, vlans: 1}, nil, true},
		{"ipv4 options", frame{src: a("10.0.0.3"), proto: udp, dport: port, payload: hb, options: 8}, nil, true},
		{"ipv4 first fragment", frame{src: a("10.0.0.4"), proto: udp, dport: port, payload: hb, fragOff: 0x2000}, nil, true},
		{"magic only", frame{src: a("10.0.0.5"), proto: udp, dport: port, payload: "VGL"}, nil, true},
		{"ipv4 later fragment", frame{src: a("10.0.1.1"), proto: udp, dport: port, payload: hb, fragOff: 0x2000 | 100}, nil, false},
		{"default port", frame{src: a("10.0.1.2"), proto: udp, dport: DefaultPort, payload: hb}, nil, false},
		{"wrong magic", frame{src: a("10.0.1.3"), proto: udp, dport: port, payload: "VGX" + hb[3:]}, nil, false},
		{"short payload", frame{src: a("10.0.1.4"), proto: udp, dport: port, payload: "VG"}, nil, false},
		{"short payload and padding", frame{src: a("10.0.1.5"), proto: udp, dport: port, payload: "VG", trailer: "L" + strings.Repeat("\x00", 15)}, nil, false},
		{"empty payload", frame{src: a("10.0.1.6"), proto: udp, dport: port}, nil, false},
		{"tcp to the port", frame{src: a("10.0.1.7"), proto: tcp, dport: port, payload: hb}, nil, false},
		{"udp header, tcp protocol", frame{}, udpShaped, false},
		{"ipv6 hop-by-hop", frame{src: a("2001:db8::1:1"), proto: udp, dport: port, payload: hb, hopByHop: true}, nil, false},
		{"two vlan tags", frame{src: a("10.0.1.9"), proto: udp, dport: port, payload: hb, vlans: 2}, nil, false},
		// BPF_PROG_TEST_RUN refuses a short IPv4 packet, not a tagged one.
		{"truncated ipv4 header", frame{}, frame{src: a("10.0.1.10"), proto: udp, dport: port, payload: hb, vlans: 1}.bytes()[:18+12], false},
		{"truncated udp header", frame{}, frame{src: a("10.0.1.11"), proto: udp, dport: port, payload: hb}.bytes()[:14+20+4], false},
		{"arp", frame{}, arpFrame(), false},
	} {
		data := c.raw
		if data == nil {
			data = c.f.bytes()
		}
		t.Run(c.name, func(t *testing.T) {
			before := Monotonic()
			for i := range 2 { // insert, then add
				ret, err := s.s.objs.HbStamp.Run(&ebpf.RunOptions{Data: data})
				if err != nil {
					t.Fatalf("run %d: %v", i, err)
				}
				if ret != tcxNext {
					t.Errorf("run %d returned %#x, want TCX_NEXT", i, ret)
				}
			}
			after := Monotonic()
			stamps, err := s.Read(nil)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			// Each counted case adds its own source.
			var got *Stamp
			for i, st := range stamps {
				if st.Last >= before {
					if got != nil {
						t.Fatalf("more than one new stamp: %v", stamps)
					}
					got = &stamps[i]
				}
			}
			switch {
			case !c.count && got != nil:
				t.Errorf("counted: %v", *got)
			case c.count && got == nil:
				t.Errorf("not counted; stamps: %v", stamps)
			case c.count:
				if got.Ifindex != 1 || got.Addr != c.f.src || got.Count != 2 || got.Last > after {
					t.Errorf("stamp %v, want 2 heartbeats from %v on ifindex 1 no later than %v", *got, c.f.src, after)
				}
			}
		})
	}

	// Iterating, for kernels without batch lookups, reads the same.
	batch, err := s.Read(nil)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	s.s.noBatch = true
	iterated, err := s.Read(nil)
	if err != nil {
		t.Fatalf("Read by iteration: %v", err)
	}
	if len(batch) != 7 || !slices.Equal(iterated, batch) {
		t.Errorf("Read by iteration = %v, by batch %v; want the same 7 stamps", iterated, batch)
	}
}

// BenchmarkStampPacket measures the program per packet in the kernel
// (BPF_PROG_TEST_RUN), on a heartbeat and on a packet it lets by.
func BenchmarkStampPacket(b *testing.B) {
	privtest.Require(b)
	s, err := NewStamper(DefaultPort)
	if err != nil {
		b.Fatalf("NewStamper: %v", err)
	}
	defer s.Close()
	src := netip.MustParseAddr("10.0.0.1")
	payload := "VGL" + strings.Repeat("\x00", 77)
	for _, c := range []struct {
		name  string
		frame []byte
	}{
		{"heartbeat", frame{src: src, proto: unix.IPPROTO_UDP, dport: DefaultPort, payload: payload}.bytes()},
		{"heartbeat-ipv6", frame{src: netip.MustParseAddr("2001:db8::1"), proto: unix.IPPROTO_UDP, dport: DefaultPort, payload: payload}.bytes()},
		{"other-port", frame{src: src, proto: unix.IPPROTO_UDP, dport: 53, payload: payload}.bytes()},
		{"tcp", frame{src: src, proto: unix.IPPROTO_TCP, dport: 22, payload: payload}.bytes()},
	} {
		b.Run(c.name, func(b *testing.B) {
			ret, per, err := s.s.objs.HbStamp.Benchmark(c.frame, b.N, b.ResetTimer)
			if err != nil {
				b.Fatal(err)
			}
			if ret != tcxNext {
				b.Fatalf("returned %#x, want TCX_NEXT", ret)
			}
			b.ReportMetric(float64(per.Nanoseconds()), "ns/pkt")
		})
	}
}
