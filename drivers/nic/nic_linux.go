//go:build linux

package nic

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// state is the Linux implementation behind NICs.
type state struct {
	cfg   Config
	ns    netns.NsHandle // the namespace Open ran in
	links []link
	mon   *monitor

	mu     sync.RWMutex // read-held by Send; write-held to start and to close
	closed bool
	ran    bool
	stop   chan struct{} // closed by close
	wg     sync.WaitGroup
	dbuf   drainBuf // Drain's buffers (one Drain at a time)
}

// link is one open link.
type link struct {
	id      int
	dev     string
	ifindex int
	conn    *net.UDPConn
	fd      int    // conn's descriptor, for allocation-free sends
	peers   []peer // valid peers only
	probe   *prober
}

// peer is a peer's address, cached in both forms Send and errors need.
type peer struct {
	ap  netip.AddrPort
	raw rawAddr
}

// Socket options of heartbeat sockets: DSCP CS6 (network control) and the
// interactive band of the default queueing discipline, so heartbeats pass
// bulk traffic on a busy NIC.
const (
	heartbeatTOS      = 0xc0
	heartbeatPriority = 6
)

func open(cfg Config) (_ *state, err error) {
	ns, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("nic: read the network namespace of the calling thread (is /proc mounted?): %w", err)
	}
	s := &state{cfg: cfg, ns: ns, stop: make(chan struct{})}
	defer func() {
		if err != nil {
			s.release()
			s.ns.Close()
		}
	}()
	devs, err := findDevices(ns, cfg.Links)
	if err != nil {
		return nil, err
	}
	s.links = make([]link, len(cfg.Links))
	for i, lc := range cfg.Links {
		l := &s.links[i]
		l.id, l.dev, l.ifindex = i, devs[i].name, devs[i].index
		if err := l.openSocket(lc.Local.Unmap(), cfg.Port); err != nil {
			return nil, err
		}
		l.setPeers(lc.Peers, cfg.Port)
		if lc.Gateway.IsValid() {
			if l.probe, err = newProber(i, l.dev, l.ifindex, lc.Local.Unmap(), lc.Gateway.Unmap()); err != nil {
				return nil, err
			}
		}
	}
	tracked := make([]trackedLink, len(devs))
	for i, d := range devs {
		tracked[i] = trackedLink{dev: d.name, index: d.index, up: d.up}
	}
	s.mon, err = newMonitor(ns, tracked, netlink.LinkSubscribeWithOptions, cfg.report, s.stop)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// device is what Open learnt about a link's device.
type device struct {
	name  string
	index int
	up    bool
}

// findDevices finds the device holding each link's local address.
func findDevices(ns netns.NsHandle, links []LinkConfig) ([]device, error) {
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("nic: open a netlink socket: %w", err)
	}
	defer h.Close()
	addrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("nic: list the interface addresses: %w", err)
	}
	devs := make([]device, len(links))
	for i, lc := range links {
		local := lc.Local.Unmap().WithZone("")
		index := 0
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == local {
				index = a.LinkIndex
				break
			}
		}
		if index == 0 {
			return nil, kindErrorf(ErrNoInterface, "link %d: no interface has address %s: check hosts.addresses in the cluster file", i, local)
		}
		l, err := h.LinkByIndex(index)
		if err != nil {
			return nil, fmt.Errorf("nic: link %d: read interface %d holding %s: %w", i, index, local, err)
		}
		devs[i] = device{name: l.Attrs().Name, index: index, up: isUp(l.Attrs().RawFlags)}
	}
	return devs, nil
}

// isUp tells from a device's flags whether it is up and has carrier.
func isUp(flags uint32) bool {
	const want = unix.IFF_UP | unix.IFF_LOWER_UP | unix.IFF_RUNNING
	return flags&want == want
}

// openSocket opens the link's UDP socket bound to local:port on its device.
func (l *link) openSocket(local netip.Addr, port int) error {
	network := "udp4"
	if local.Is6() {
		network = "udp6"
		local = scoped(local, l.ifindex)
	}
	addr := netip.AddrPortFrom(local, uint16(port))
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		return control(c, func(fd int) error {
			if err := bindToDevice(fd, l.dev); err != nil {
				return err
			}
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
				return fmt.Errorf("enable receive timestamps: %w", err)
			}
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PRIORITY, heartbeatPriority); err != nil {
				return fmt.Errorf("set the socket priority: %w", err)
			}
			if local.Is4() {
				// Don't fragment: a heartbeat fits any link's MTU, and with DF
				// set the kernel skips picking an IP ID for every packet.
				if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO); err != nil {
					return fmt.Errorf("set don't-fragment: %w", err)
				}
				return unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_TOS, heartbeatTOS)
			}
			return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_TCLASS, heartbeatTOS)
		})
	}}
	pc, err := lc.ListenPacket(context.Background(), network, addr.String())
	if err != nil {
		if errors.Is(err, unix.EADDRINUSE) {
			return fmt.Errorf("nic: link %d: bind %s on %s: another process holds the port: stop it or change cluster.port: %w", l.id, addr, l.dev, err)
		}
		return fmt.Errorf("nic: link %d: open a UDP socket on %s at %s: %w", l.id, l.dev, addr, err)
	}
	l.conn = pc.(*net.UDPConn)
	rc, err := l.conn.SyscallConn()
	if err == nil {
		err = control(rc, func(fd int) error { l.fd = fd; return nil })
	}
	if err != nil {
		return fmt.Errorf("nic: link %d: read the socket descriptor: %w", l.id, err)
	}
	return nil
}

// detach replaces the link's socket by a duplicate the runtime's poller
// does not watch (closing the original unregisters it), for Drain.
func (l *link) detach() error {
	fd, err := unix.FcntlInt(uintptr(l.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("nic: link %d: duplicate the socket: %w", l.id, err)
	}
	if err := l.conn.Close(); err != nil {
		unix.Close(fd)
		return fmt.Errorf("nic: link %d: close the polled socket: %w", l.id, err)
	}
	l.conn, l.fd = nil, fd
	return nil
}

// setPeers caches the socket address of every valid peer.
func (l *link) setPeers(addrs []netip.Addr, port int) {
	for _, a := range addrs {
		if !a.IsValid() {
			continue
		}
		a = a.Unmap()
		var zone uint32
		if a.Is6() && a.IsLinkLocalUnicast() {
			zone = uint32(l.ifindex)
			a = a.WithZone(l.dev)
		}
		l.peers = append(l.peers, peer{ap: netip.AddrPortFrom(a, uint16(port)), raw: newRawAddr(a.WithZone(""), port, zone)})
	}
}

// scoped gives a link-local IPv6 address the zone of device ifindex, by
// number: the net package resolves zone names in its own cache, which may
// have been filled in another network namespace.
func scoped(a netip.Addr, ifindex int) netip.Addr {
	if a.Is6() && a.IsLinkLocalUnicast() {
		return a.WithZone(strconv.Itoa(ifindex))
	}
	return a
}

// bindToDevice pins a socket to a device.
func bindToDevice(fd int, dev string) error {
	if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, dev); err != nil {
		return fmt.Errorf("bind to device %s (needs CAP_NET_RAW): %w", dev, err)
	}
	return nil
}

// control runs f on the descriptor of c and returns its error.
func control(c syscall.RawConn, f func(fd int) error) error {
	var ferr error
	if err := c.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

func (s *state) link(id int) (*link, error) {
	if id < 0 || id >= len(s.links) {
		return nil, kindErrorf(ErrNoLink, "link %d: there are links 0 to %d", id, len(s.links)-1)
	}
	return &s.links[id], nil
}

func (s *state) device(id int) string {
	if id < 0 || id >= len(s.links) {
		return ""
	}
	return s.links[id].dev
}

func (s *state) send(id int, pkt []byte) error {
	l, err := s.link(id)
	if err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	var first error
	for i := range l.peers {
		p := &l.peers[i]
		if err := sendRaw(l.fd, pkt, &p.raw); err != nil && first == nil {
			first = &SendError{Link: id, Peer: p.ap, Err: err}
		}
	}
	return first
}

func (s *state) probe(id int, timeout time.Duration) error {
	l, err := s.link(id)
	if err != nil {
		return err
	}
	if l.probe == nil {
		return kindErrorf(ErrNoGateway, "link %d: no gateway to probe: set an isolation address for the link in the cluster file", id)
	}
	return l.probe.probe(timeout)
}

func (s *state) run(recv func(int, []byte, netip.AddrPort, time.Time), ev func(LinkEvent)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.ran {
		return
	}
	s.ran = true
	for i := range s.links {
		if recv == nil {
			// The caller drains the sockets itself: take them out of
			// the runtime's poller, which would otherwise wake the
			// process for every datagram only to find nobody waiting.
			if err := s.links[i].detach(); err != nil {
				s.cfg.report(err)
			}
			continue
		}
		s.wg.Add(1)
		go s.read(&s.links[i], recv)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.mon.run(ev)
	}()
}

func (s *state) close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.stop)
	ran := s.ran
	s.mu.Unlock()
	if !ran {
		s.mon.shutdown()
	}
	err := s.release()
	s.wg.Wait()
	if nerr := s.ns.Close(); nerr != nil {
		err = errors.Join(err, fmt.Errorf("nic: close the namespace handle: %w", nerr))
	}
	return err
}

// release closes every socket, which stops the readers. The monitor stops
// through s.stop.
func (s *state) release() error {
	var errs []error
	for i := range s.links {
		l := &s.links[i]
		if l.conn != nil {
			if err := l.conn.Close(); err != nil {
				errs = append(errs, fmt.Errorf("nic: link %d: close the socket: %w", i, err))
			}
		} else if l.fd > 0 {
			if err := unix.Close(l.fd); err != nil {
				errs = append(errs, fmt.Errorf("nic: link %d: close the socket: %w", i, err))
			}
		}
		if l.probe != nil {
			if err := l.probe.close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
