//go:build linux

package nic

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// prober pings one link's gateway through a raw ICMP socket bound to the
// link's local address and device. The socket's ICMP filter passes only
// echo replies; a reply counts when its source, identifier, sequence number
// and payload match the request.
type prober struct {
	link int
	dev  string
	gw   netip.Addr
	dst  *net.IPAddr
	conn *net.IPConn
	raw  syscall.RawConn

	mu    sync.Mutex // one probe at a time
	seq   int
	id    int
	token [16]byte
	rx    []byte
}

// newProber opens the ICMP socket of link id.
func newProber(id int, dev string, ifindex int, local, gw netip.Addr) (*prober, error) {
	network := "ip4:icmp"
	if local.Is6() {
		network = "ip6:ipv6-icmp"
	}
	local, dst := scoped(local, ifindex), scoped(gw, ifindex)
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		return control(c, func(fd int) error { return bindToDevice(fd, dev) })
	}}
	pc, err := lc.ListenPacket(context.Background(), network, local.String())
	if err != nil {
		return nil, fmt.Errorf("nic: link %d: open an ICMP socket on %s at %s (needs CAP_NET_RAW): %w", id, dev, local, err)
	}
	p := &prober{link: id, dev: dev, gw: gw, conn: pc.(*net.IPConn),
		dst: &net.IPAddr{IP: dst.AsSlice(), Zone: dst.Zone()},
		id:  rand.IntN(1 << 16), rx: make([]byte, 1500)}
	for i := range p.token {
		p.token[i] = byte(rand.Uint32())
	}
	if err := p.filter(local.Is4()); err != nil {
		p.conn.Close()
		return nil, fmt.Errorf("nic: link %d: filter the ICMP socket on %s: %w", id, dev, err)
	}
	if p.raw, err = p.conn.SyscallConn(); err != nil {
		p.conn.Close()
		return nil, fmt.Errorf("nic: link %d: ICMP socket on %s: %w", id, dev, err)
	}
	return p, nil
}

// filter makes the socket deliver only echo replies.
func (p *prober) filter(v4 bool) error {
	if v4 {
		var f ipv4.ICMPFilter
		f.SetAll(true)
		f.Accept(ipv4.ICMPTypeEchoReply)
		return ipv4.NewPacketConn(p.conn).SetICMPFilter(&f)
	}
	var f ipv6.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv6.ICMPTypeEchoReply)
	return ipv6.NewPacketConn(p.conn).SetICMPFilter(&f)
}

// probe pings the gateway once and waits up to timeout for the reply.
func (p *prober) probe(timeout time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq = (p.seq + 1) & 0xffff
	var echo, reply icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	proto := 1 // ICMP
	if p.gw.Is6() {
		echo, reply, proto = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, 58
	}
	req := icmp.Message{Type: echo, Body: &icmp.Echo{ID: p.id, Seq: p.seq, Data: p.token[:]}}
	b, err := req.Marshal(nil)
	if err != nil {
		return fmt.Errorf("nic: link %d: build the echo request: %w", p.link, err)
	}
	// Forget an error an earlier probe left on the socket (an ICMP
	// unreachable for a request that timed out).
	_ = control(p.raw, func(fd int) error {
		_, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		return err
	})
	if err := p.conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return p.fail(err)
	}
	if _, err := p.conn.WriteTo(b, p.dst); err != nil {
		return p.fail(err)
	}
	var last error // an ICMP error seen while waiting; the reply may still come
	for {
		n, from, err := p.conn.ReadFrom(p.rx)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			why := ""
			if last != nil {
				why = fmt.Sprintf(" (%v)", last)
			}
			return kindErrorf(ErrNoReply, "link %d: gateway %s did not answer a ping on %s within %v%s",
				p.link, p.gw, p.dev, timeout, why)
		}
		if errors.Is(err, net.ErrClosed) {
			return ErrClosed
		}
		if err != nil {
			last = err
			continue
		}
		if p.isReply(from, p.rx[:n], proto, reply) {
			return nil
		}
	}
}

// isReply tells whether b, from from, answers the current request.
func (p *prober) isReply(from net.Addr, b []byte, proto int, reply icmp.Type) bool {
	ipa, ok := from.(*net.IPAddr)
	if !ok {
		return false
	}
	src, ok := netip.AddrFromSlice(ipa.IP)
	if !ok || src.Unmap() != p.gw.WithZone("") {
		return false
	}
	m, err := icmp.ParseMessage(proto, b)
	if err != nil || m.Type != reply {
		return false
	}
	e, ok := m.Body.(*icmp.Echo)
	return ok && e.ID == p.id && e.Seq == p.seq && string(e.Data) == string(p.token[:])
}

// fail wraps a socket error of the probe.
func (p *prober) fail(err error) error {
	if errors.Is(err, net.ErrClosed) {
		return ErrClosed
	}
	return fmt.Errorf("nic: link %d: ping %s on %s: %w", p.link, p.gw, p.dev, err)
}

func (p *prober) close() error {
	if err := p.conn.Close(); err != nil {
		return fmt.Errorf("nic: link %d: close the ICMP socket: %w", p.link, err)
	}
	return nil
}
