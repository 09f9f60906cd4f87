// Package nic is vigil's heartbeat network driver: one UDP socket per
// configured link, pinned to that link's device, a netlink watch on each
// device's carrier, and an ICMP echo probe of each link's isolation address.
//
//	n, err := nic.Open(nic.Config{Port: 5405, Links: links})
//	if err != nil {
//		return err
//	}
//	defer n.Close()
//	n.Run(func(link int, data []byte, from netip.AddrPort, at time.Time) {
//		// data is valid only during the call
//	}, func(e nic.LinkEvent) {
//		// the initial state of every link, then every carrier change
//	})
//	_ = n.Send(0, pkt)                     // to every peer on link 0
//	err = n.Probe(0, 500*time.Millisecond) // nil: the link's gateway answered
//
// A link is up when its device is administratively up and has carrier
// (IFF_UP, IFF_LOWER_UP and IFF_RUNNING, the last meaning operational state
// up). The kernel reports carrier changes of a veth at once; for an ordinary
// NIC it batches them, so a carrier loss may be reported up to a second
// late. Sending on a device that is up but without carrier succeeds and the
// datagram is lost: the link events, not Send's errors, tell a dead link.
//
// Open works in the network namespace of the calling OS thread: a caller
// that switches namespaces locks its thread around Open, and everything Open
// creates stays in that namespace. A device that is removed reports its
// link down for good: Close and Open again to follow a new device.
//
// The driver is Linux only; elsewhere Open returns an error wrapping
// os.ErrNotExist.
package nic

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"
)

// MaxLinks is the largest number of links a host may have.
const MaxLinks = 8

// Config describes the links of this host.
type Config struct {
	// Port is the UDP port of heartbeats, the same on every host.
	Port int
	// Links holds one entry per link; the index is the link id. 1 to
	// MaxLinks links.
	Links []LinkConfig
	// OnError receives failures that no call returns: the link monitor
	// losing its netlink subscription (it resubscribes by itself) and
	// unexpected read errors. It is never called per sent packet, and may
	// be called from several goroutines at once. Nil logs them with slog
	// under component=nic.
	OnError func(error)
}

// LinkConfig is one link of this host.
type LinkConfig struct {
	// Local is this host's address on the link (IPv4 or IPv6); the device
	// holding it is the link's device.
	Local netip.Addr
	// Peers are the peers' addresses on this link in host order, with the
	// invalid Addr in the place of this host (and of any host absent from
	// this link).
	Peers []netip.Addr
	// Gateway is the isolation address Probe pings; the invalid Addr means
	// none.
	Gateway netip.Addr
}

// LinkEvent reports the state of one link: once per link when Run starts,
// then at every change.
type LinkEvent struct {
	Link   int    // link id
	Device string // the link's device, e.g. "eth1"
	Up     bool   // administratively up and with carrier
}

// String renders the event for logs: "link 1 (eth1) down".
func (e LinkEvent) String() string {
	state := "down"
	if e.Up {
		state = "up"
	}
	return fmt.Sprintf("link %d (%s) %s", e.Link, e.Device, state)
}

// NICs is the set of open links of this host. Its methods may be called
// from any goroutine.
type NICs struct {
	s *state
}

// Open finds each link's device by its local address, opens one UDP socket
// per link bound to Local:Port and pinned to the device, opens an ICMP
// socket for each link that has a gateway, and subscribes to link events.
// Everything is created in the network namespace of the calling OS thread.
// Errors name the link, the address and the fix.
func Open(cfg Config) (*NICs, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s, err := open(cfg)
	if err != nil {
		return nil, err
	}
	return &NICs{s: s}, nil
}

// Links is what the agent uses of its heartbeat NICs: *NICs, or the fake of
// package nictest.
type Links interface {
	Run(recv func(link int, data []byte, from netip.AddrPort, at time.Time), ev func(LinkEvent))
	Drain(recv func(link int, data []byte, from netip.AddrPort, at time.Time)) (int, error)
	Send(link int, pkt []byte) error
	Probe(link int, timeout time.Duration) error
	Device(link int) string
	Close() error
}

var _ Links = (*NICs)(nil)

// Run starts one reader goroutine per link and the link monitor, and
// returns at once. recv gets each datagram on its link's goroutine: data is
// valid only during the call, at is the time the kernel received it. ev
// gets the state of every link first, then each change, on the monitor's
// goroutine. Either callback may be nil. Run may be called once; Close
// stops the goroutines and waits for them.
func (n *NICs) Run(recv func(link int, data []byte, from netip.AddrPort, at time.Time), ev func(LinkEvent)) {
	n.s.run(recv, ev)
}

// Drain passes every datagram waiting on any link's socket to recv, on the
// calling goroutine, without blocking, and returns how many it passed. It
// is for a caller that reads on its own schedule (Run with a nil recv)
// rather than being woken by every datagram: at is still the time the
// kernel received each one, so a late read does not make a peer look
// fresher than it is.
func (n *NICs) Drain(recv func(link int, data []byte, from netip.AddrPort, at time.Time)) (int, error) {
	return n.s.drain(recv)
}

// Send sends pkt on link to every peer of that link. It tries every peer and
// returns the first error (a *SendError). It does not allocate unless a
// send fails, and never blocks: a full socket buffer is an error.
func (n *NICs) Send(link int, pkt []byte) error {
	return n.s.send(link, pkt)
}

// Probe sends one ICMP echo request to the link's gateway out of the link's
// device and waits up to timeout for the reply. Nil means the gateway
// answered; an error wrapping ErrNoReply means it did not in time,
// ErrNoGateway that the link has none. Probes of one link run one at a time.
func (n *NICs) Probe(link int, timeout time.Duration) error {
	return n.s.probe(link, timeout)
}

// Device returns the name of the link's device, or "" for a link that does
// not exist.
func (n *NICs) Device(link int) string {
	return n.s.device(link)
}

// Close stops the readers and the monitor, waits for them, and closes every
// socket. Calls after the first return nil.
func (n *NICs) Close() error {
	return n.s.close()
}

// Errors callers branch on.
var (
	// ErrLinkCount: the configuration has no link or more than MaxLinks.
	ErrLinkCount = errors.New("nic: a host has 1 to 8 links")
	// ErrConfig: a link's addresses or the port are invalid.
	ErrConfig = errors.New("nic: invalid configuration")
	// ErrNoInterface: no device in the namespace has the link's address.
	ErrNoInterface = errors.New("nic: no interface has the address")
	// ErrNoLink: a link id outside the configured links.
	ErrNoLink = errors.New("nic: no such link")
	// ErrNoGateway: Probe on a link without a gateway.
	ErrNoGateway = errors.New("nic: the link has no gateway")
	// ErrNoReply: the gateway did not answer the probe before the timeout.
	ErrNoReply = errors.New("nic: no echo reply before the timeout")
	// ErrMonitor marks a failure of the link monitor's netlink
	// subscription, reported through Config.OnError; the monitor
	// resubscribes by itself.
	ErrMonitor = errors.New("nic: link monitor")
	// ErrClosed: the NICs were closed.
	ErrClosed = errors.New("nic: closed")
)

// SendError is a failed send to one peer.
type SendError struct {
	Link int
	Peer netip.AddrPort
	Err  error
}

func (e *SendError) Error() string {
	return fmt.Sprintf("nic: link %d: send to %s: %v", e.Link, e.Peer, e.Err)
}

// Unwrap returns the system error.
func (e *SendError) Unwrap() error { return e.Err }

// validate checks what can be checked without the system.
func (c *Config) validate() error {
	if len(c.Links) == 0 || len(c.Links) > MaxLinks {
		return kindErrorf(ErrLinkCount, "%d links configured: list 1 to %d addresses per host in hosts.addresses of the cluster file",
			len(c.Links), MaxLinks)
	}
	if c.Port < 1 || c.Port > 65535 {
		return kindErrorf(ErrConfig, "port %d: set cluster.port to a UDP port from 1 to 65535 (5405 by default)", c.Port)
	}
	locals := make(map[netip.Addr]int, len(c.Links))
	for i, l := range c.Links {
		if !l.Local.IsValid() {
			return kindErrorf(ErrConfig, "link %d: no local address: give this host an address on every link in hosts.addresses", i)
		}
		local := l.Local.Unmap()
		if j, dup := locals[local]; dup {
			return kindErrorf(ErrConfig, "link %d: local address %s is also link %d's: give each link its own address and NIC", i, local, j)
		}
		locals[local] = i
		for h, p := range l.Peers {
			if p.IsValid() && p.Unmap().Is4() != local.Is4() {
				return kindErrorf(ErrConfig, "link %d: peer %d address %s and local address %s differ in family: use one IP family per link",
					i, h, p, local)
			}
		}
		if g := l.Gateway; g.IsValid() && g.Unmap().Is4() != local.Is4() {
			return kindErrorf(ErrConfig, "link %d: gateway %s and local address %s differ in family: use one IP family per link",
				i, g, local)
		}
	}
	return nil
}

// report sends an error to OnError, or logs it.
func (c *Config) report(err error) {
	if c.OnError != nil {
		c.OnError(err)
		return
	}
	slog.Error(err.Error(), "component", "nic")
}

// kindError is an error whose text says what is wrong and the fix, and
// which matches the sentinel kind with errors.Is.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// kindErrorf formats a kindError; the text gets the "nic: " prefix.
func kindErrorf(kind error, format string, args ...any) error {
	return &kindError{msg: "nic: " + fmt.Sprintf(format, args...), kind: kind}
}
