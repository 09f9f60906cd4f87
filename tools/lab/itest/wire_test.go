package itest

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/hb"
)

// inNamespace runs f on an OS thread inside the named network namespace.
// Sockets f opens stay in it.
func inNamespace(name string, f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	ns, err := netns.GetFromName(name)
	if err != nil {
		return err
	}
	defer ns.Close()
	if err := netns.Set(ns); err != nil {
		return err
	}
	defer netns.Set(orig)
	return f()
}

// capture sniffs, on the hub side of host's link 0, one heartbeat that host
// sends to dst, and returns its UDP payload.
func capture(t *testing.T, hubNS, ifname string, dst netip.Addr) []byte {
	t.Helper()
	var fd int
	err := inNamespace(hubNS, func() error {
		link, err := netlink.LinkByName(ifname)
		if err != nil {
			return err
		}
		// ETH_P_ALL: a bridge port's frames go to the bridge before any
		// per-protocol packet socket would see them.
		proto := int(htons(unix.ETH_P_ALL))
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: link.Attrs().Index})
	})
	if err != nil {
		t.Fatalf("sniffer on %s: %v", ifname, err)
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(int64(5 * time.Second))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err == unix.EINTR {
			continue // the Go runtime's preemption signal
		}
		if err != nil {
			t.Fatalf("no heartbeat seen on %s: %v", ifname, err)
		}
		p := buf[:n]
		if len(p) < 28 || p[0]>>4 != 4 || p[9] != unix.IPPROTO_UDP {
			continue
		}
		ihl := int(p[0]&0x0f) * 4
		to := netip.AddrFrom4([4]byte(p[16:20]))
		if to != dst || binary.BigEndian.Uint16(p[ihl+2:]) != 5405 {
			continue
		}
		return append([]byte(nil), p[ihl+8:]...)
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// TestForgedAndReplayedHeartbeats injects, from the hub, packets addressed
// to h1's heartbeat socket: a recorded heartbeat of h2 sent again, the same
// with one byte changed, a truncated one, garbage, one of another cluster,
// one of an earlier life of h2 and one of a later format version. h1 drops each and counts it by reason,
// and still hears the real h2.
func TestForgedAndReplayedHeartbeats(t *testing.T) {
	c := newCluster(t, 3, 2)
	t0 := time.Now()
	h1 := netip.MustParseAddr("10.100.0.11")
	real := capture(t, "vl-"+c.l.Name()+"-hub", "h2-l0", h1)

	ring, err := hb.LoadKeyFile(filepath.Join(c.l.Dir(), "cluster.key"))
	if err != nil {
		t.Fatal(err)
	}
	var m hb.Message
	if err := hb.NewCodec(hb.ClusterID(c.l.Name()), ring).Decode(real, &m, time.Now()); err != nil {
		t.Fatalf("the captured heartbeat does not decode: %v", err)
	}
	other, err := hb.NewCodec(hb.ClusterID("another-cluster"), ring).Encode(nil, &m)
	if err != nil {
		t.Fatal(err)
	}
	old := m
	old.Incarnation--
	earlier, err := hb.NewCodec(hb.ClusterID(c.l.Name()), ring).Encode(nil, &old)
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), real...)
	flipped[len(flipped)-20] ^= 0x40
	future := append([]byte(nil), real...)
	future[3]++ // the format version after the magic
	garbage := make([]byte, 120)
	for i := range garbage {
		garbage[i] = byte(i * 7)
	}
	packets := []struct {
		reason string
		data   []byte
	}{
		{"replayed", real}, {"bad-mac", flipped}, {"truncated", real[:30]}, {"bad-magic", garbage},
		{"wrong-cluster", other}, {"replayed", earlier}, {"wrong-version", future},
	}
	err = inNamespace("vl-"+c.l.Name()+"-hub", func() error {
		conn, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(h1, 5405)))
		if err != nil {
			return err
		}
		defer conn.Close()
		for _, p := range packets {
			if _, err := conn.Write(p.data); err != nil {
				return fmt.Errorf("%s: %w", p.reason, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{}
	for _, p := range packets {
		want[p.reason]++
	}
	c.waitFor("h1 counts every injected packet", 5*time.Second, func() bool {
		rep, err := c.status("h1")
		if err != nil {
			return false
		}
		for reason, n := range want {
			if rep.Drops[reason] < n {
				return false
			}
		}
		return true
	})
	rep, err := c.status("h1")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("h1's drop counters: %v", rep.Drops)
	for reason, n := range rep.Drops {
		if n > want[reason] {
			t.Errorf("%d packets dropped as %s, %d injected", n, reason, want[reason])
		}
	}
	if err := c.allAlive(""); err != nil {
		t.Fatal(err)
	}
	if r := c.logged(t0, "hb", "restarted"); len(r) > 0 {
		t.Errorf("an injected packet passed for a peer restart: %q", r[0].Msg)
	}
}
