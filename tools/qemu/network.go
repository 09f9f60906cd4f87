package qemu

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// maxFrames bounds the frames a Network keeps for WaitFrame.
const maxFrames = 1 << 16

// Frame is one Ethernet frame a VM sent on a Network.
type Frame struct {
	// At is when the hub received it.
	At time.Time
	// Data is the whole frame, from the destination MAC on.
	Data []byte
}

// UDP returns the frame's IPv4 UDP datagram, if it is one (no VLAN tag,
// not a fragment).
func (f Frame) UDP() (src, dst netip.AddrPort, payload []byte, ok bool) {
	b := f.Data
	if len(b) < 14+20+8 || binary.BigEndian.Uint16(b[12:14]) != 0x0800 {
		return
	}
	ip := b[14:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[0]>>4 != 4 || ihl < 20 || len(ip) < ihl+8 || ip[9] != 17 {
		return
	}
	if binary.BigEndian.Uint16(ip[6:8])&0x3fff != 0 { // a fragment
		return
	}
	s, _ := netip.AddrFromSlice(ip[12:16])
	d, _ := netip.AddrFromSlice(ip[16:20])
	udp := ip[ihl:]
	n := int(binary.BigEndian.Uint16(udp[4:6]))
	if n < 8 || n > len(udp) {
		return
	}
	return netip.AddrPortFrom(s, binary.BigEndian.Uint16(udp[0:2])),
		netip.AddrPortFrom(d, binary.BigEndian.Uint16(udp[2:4])), udp[8:n], true
}

// Network is an Ethernet segment between VMs: a hub in this process that
// the VMs' NICs (QEMU dgram netdevs on unix sockets) send their frames to,
// and that repeats each frame to every other NIC. It sees every frame, so a
// test can tell from outside when a VM first sent a packet. Unix sockets in
// the network's folder mean no ports to allocate and no collisions between
// test runs.
//
//	n, err := qemu.NewNetwork(dir)
//	vm, err := qemu.Start(ctx, qemu.Options{..., NICs: []*qemu.Network{n}})
//	f, err := n.WaitFrame(ctx, time.Time{}, func(f qemu.Frame) bool { ... })
type Network struct {
	dir  string
	conn *net.UnixConn

	mu      sync.Mutex
	ports   map[string]*net.UnixAddr
	seq     int
	frames  []Frame
	changed chan struct{}
	closed  bool
	stand   map[netip.Addr]net.HardwareAddr // addresses the hub answers ARP for
}

// NewNetwork makes a network whose sockets live in dir (which must exist;
// keep it short: a unix socket path has at most 107 bytes).
func NewNetwork(dir string) (*Network, error) {
	path := filepath.Join(dir, "hub.sock")
	os.Remove(path)
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("qemu network: listen on %s: %w (fix: use a shorter folder)", path, err)
	}
	n := &Network{dir: dir, conn: conn, ports: map[string]*net.UnixAddr{}, changed: make(chan struct{}), stand: map[netip.Addr]net.HardwareAddr{}}
	go n.run()
	return n, nil
}

// Path is the hub's socket, the remote end of every NIC.
func (n *Network) Path() string { return n.conn.LocalAddr().String() }

// newPort returns the socket path for a new NIC on the network and
// registers it.
func (n *Network) newPort() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.seq++
	path := filepath.Join(n.dir, fmt.Sprintf("nic%d.sock", n.seq))
	n.ports[path] = &net.UnixAddr{Name: path, Net: "unixgram"}
	return path
}

// run repeats frames until Close.
func (n *Network) run() {
	b := make([]byte, 65536)
	for {
		k, from, err := n.conn.ReadFromUnix(b)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		f := Frame{At: time.Now(), Data: append([]byte(nil), b[:k]...)}
		n.mu.Lock()
		var to []*net.UnixAddr
		for p, a := range n.ports {
			if from == nil || p != from.Name {
				to = append(to, a)
			}
		}
		if len(n.frames) < maxFrames {
			n.frames = append(n.frames, f)
			close(n.changed)
			n.changed = make(chan struct{})
		}
		n.mu.Unlock()
		for _, a := range to {
			// A NIC whose VM is not running drops the frame, as a
			// switch port without a link does.
			n.conn.WriteToUnix(f.Data, a)
		}
		if rep := n.arpReply(f.Data); rep != nil && from != nil {
			n.conn.WriteToUnix(rep, from)
		}
	}
}

// WaitFrame returns the first frame received at or after since for which
// match is true, waiting for one until ctx ends.
func (n *Network) WaitFrame(ctx context.Context, since time.Time, match func(Frame) bool) (Frame, error) {
	seen := 0
	for {
		n.mu.Lock()
		frames, changed, closed := n.frames[seen:], n.changed, n.closed
		n.mu.Unlock()
		for _, f := range frames {
			if !f.At.Before(since) && match(f) {
				return f, nil
			}
		}
		seen += len(frames)
		if closed {
			return Frame{}, errors.New("qemu network: closed")
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return Frame{}, fmt.Errorf("qemu network: waiting for a frame (%d seen): %w", seen, ctx.Err())
		}
	}
}

// Close stops the hub.
func (n *Network) Close() error {
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		close(n.changed)
		n.changed = make(chan struct{})
	}
	n.mu.Unlock()
	return n.conn.Close()
}

// StandIn makes the hub answer ARP requests for ip, as if a host with that
// address were on the network: a VM then sends its packets for ip, and
// WaitFrame sees them, although no VM has the address (a peer that is not
// booted yet, say).
func (n *Network) StandIn(ip netip.Addr) {
	n.mu.Lock()
	defer n.mu.Unlock()
	a := ip.As4()
	n.stand[ip] = net.HardwareAddr{0x52, 0x54, 0xff, a[1], a[2], a[3]}
}

// arpReply returns the reply to an ARP request for a stand-in address, or
// nil.
func (n *Network) arpReply(req []byte) []byte {
	// Ethernet (14) + ARP for IPv4 over Ethernet (28).
	if len(req) < 42 || binary.BigEndian.Uint16(req[12:14]) != 0x0806 {
		return nil
	}
	arp := req[14:42]
	if binary.BigEndian.Uint16(arp[0:2]) != 1 || binary.BigEndian.Uint16(arp[2:4]) != 0x0800 ||
		arp[4] != 6 || arp[5] != 4 || binary.BigEndian.Uint16(arp[6:8]) != 1 {
		return nil
	}
	target, _ := netip.AddrFromSlice(arp[24:28])
	n.mu.Lock()
	mac, ok := n.stand[target]
	n.mu.Unlock()
	if !ok {
		return nil
	}
	rep := make([]byte, 42)
	copy(rep[0:6], req[6:12]) // to the asker
	copy(rep[6:12], mac)
	binary.BigEndian.PutUint16(rep[12:14], 0x0806)
	r := rep[14:]
	copy(r[0:6], arp[0:6]) // htype, ptype, hlen, plen
	binary.BigEndian.PutUint16(r[6:8], 2)
	copy(r[8:14], mac)
	copy(r[14:18], arp[24:28])
	copy(r[18:24], arp[8:14])
	copy(r[24:28], arp[14:18])
	return rep
}
