package qemu

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"
)

// udpFrame builds an Ethernet frame holding an IPv4 UDP datagram.
func udpFrame(src, dst netip.AddrPort, payload []byte) []byte {
	f := make([]byte, 14+20+8+len(payload))
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	ip[8], ip[9] = 64, 17
	s, d := src.Addr().As4(), dst.Addr().As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	udp := ip[20:]
	binary.BigEndian.PutUint16(udp[0:], src.Port())
	binary.BigEndian.PutUint16(udp[2:], dst.Port())
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	copy(udp[8:], payload)
	return f
}

func TestFrameUDP(t *testing.T) {
	src, dst := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:5405")
	f := udpFrame(src, dst, []byte("VGL1"))
	s, d, p, ok := Frame{Data: f}.UDP()
	if !ok || s != src || d != dst || string(p) != "VGL1" {
		t.Errorf("UDP() = %v %v %q %v, want %v %v VGL1", s, d, p, ok, src, dst)
	}
	arp := append([]byte(nil), f...)
	binary.BigEndian.PutUint16(arp[12:], 0x0806)
	tcp := append([]byte(nil), f...)
	tcp[14+9] = 6
	frag := append([]byte(nil), f...)
	binary.BigEndian.PutUint16(frag[14+6:], 0x2000) // more fragments
	for name, b := range map[string][]byte{"arp": arp, "tcp": tcp, "fragment": frag, "short": f[:30]} {
		if _, _, _, ok := (Frame{Data: b}).UDP(); ok {
			t.Errorf("%s: UDP() accepted a frame that is not a whole UDP datagram", name)
		}
	}
}

// TestNetworkRepeats plays two VMs' NICs: a frame one sends reaches the
// other, not itself, and the hub records it.
func TestNetworkRepeats(t *testing.T) {
	dir, err := os.MkdirTemp("", "vqn")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	n, err := NewNetwork(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	nic := func() *net.UnixConn {
		path := n.newPort()
		c, err := net.DialUnix("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"}, &net.UnixAddr{Name: n.Path(), Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	a, b := nic(), nic()
	ctx := testCtx(t)
	start := time.Now()
	hb := udpFrame(netip.MustParseAddrPort("10.0.0.1:5405"), netip.MustParseAddrPort("10.0.0.2:5405"), []byte("heartbeat"))
	if _, err := a.Write(hb); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 2048)
	b.SetReadDeadline(time.Now().Add(10 * time.Second))
	k, err := b.Read(got)
	if err != nil || !bytes.Equal(got[:k], hb) {
		t.Fatalf("the other NIC read %q, %v; want the frame", got[:k], err)
	}
	f, err := n.WaitFrame(ctx, start, func(f Frame) bool {
		_, d, _, ok := f.UDP()
		return ok && d.Port() == 5405
	})
	if err != nil || !bytes.Equal(f.Data, hb) || f.At.Before(start) {
		t.Fatalf("WaitFrame = %+v, %v; want the heartbeat frame", f, err)
	}
	// The sender does not get its own frame back: the next frame it reads
	// is b's.
	if _, err := b.Write([]byte("from b")); err != nil {
		t.Fatal(err)
	}
	a.SetReadDeadline(time.Now().Add(10 * time.Second))
	k, err = a.Read(got)
	if err != nil || string(got[:k]) != "from b" {
		t.Errorf("the sender read %q, %v; want only b's frame", got[:k], err)
	}
}

func TestNetworkStandIn(t *testing.T) {
	dir, err := os.MkdirTemp("", "vqn")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	n, err := NewNetwork(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	path := n.newPort()
	c, err := net.DialUnix("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"}, &net.UnixAddr{Name: n.Path(), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n.StandIn(netip.MustParseAddr("10.99.0.2"))
	asker := net.HardwareAddr{0x52, 0x54, 0, 1, 2, 3}
	request := func(target string) []byte {
		f := make([]byte, 42)
		copy(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
		copy(f[6:12], asker)
		binary.BigEndian.PutUint16(f[12:], 0x0806)
		a := f[14:]
		binary.BigEndian.PutUint16(a[0:], 1)
		binary.BigEndian.PutUint16(a[2:], 0x0800)
		a[4], a[5] = 6, 4
		binary.BigEndian.PutUint16(a[6:], 1)
		copy(a[8:14], asker)
		copy(a[14:18], []byte{10, 99, 0, 1})
		ip := netip.MustParseAddr(target).As4()
		copy(a[24:28], ip[:])
		return f
	}
	// No answer for an address nobody stands in for; the next frame the
	// NIC reads is the answer for 10.99.0.2.
	for _, target := range []string{"10.99.0.3", "10.99.0.2"} {
		if _, err := c.Write(request(target)); err != nil {
			t.Fatal(err)
		}
	}
	got := make([]byte, 2048)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	k, err := c.Read(got)
	if err != nil {
		t.Fatal(err)
	}
	rep := got[:k]
	if k != 42 || !bytes.Equal(rep[0:6], asker) || binary.BigEndian.Uint16(rep[20:22]) != 2 ||
		!bytes.Equal(rep[28:32], []byte{10, 99, 0, 2}) || !bytes.Equal(rep[32:38], asker) || !bytes.Equal(rep[38:42], []byte{10, 99, 0, 1}) {
		t.Errorf("ARP reply = % x, want a reply to %v saying who has 10.99.0.2", rep, asker)
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
