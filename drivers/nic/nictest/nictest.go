// Package nictest is an in-process network of fake heartbeat NICs, for
// tests of code that uses nic.Links: every host of the network gets a NIC,
// and a datagram one host sends on a link is queued at every other host's
// NIC on that link, unless a carrier is down, the two hosts are blocked
// from each other, or a loss rule drops it.
//
//	nw := nictest.NewNetwork(3, 2, clock.Now) // 3 hosts, 2 links
//	a, b := nw.NIC(0), nw.NIC(1)
//	_ = a.Send(0, pkt)           // queued at hosts 1 and 2 on link 0
//	n, _ := b.Drain(recv)        // n == 1, stamped with clock.Now()
//	nw.SetCarrier(1, 0, false)   // b's ev gets "link 0 (fake0) down" before this returns
//	nw.Block(0, 2, true)         // hosts 0 and 2 partitioned on every link
//	nw.DropNext(0, 1, 1, 3)      // lose the next 3 datagrams from 0 to 1 on link 1
//	nw.SetGateway(0, 1, false)   // a.Probe(1, time.Second) fails with nic.ErrNoReply
//	_ = a.Counters().Sent        // 1
//
// Everything is synchronous, so a test never waits: Send has queued or
// delivered every copy when it returns, and SetCarrier has called the
// host's event callback when it returns. Nothing depends on the wall clock
// but the stamps, which come from the clock given to NewNetwork.
//
// Host h's address on link l is Addr(h, l): 10.l.0.(h+1), port Port. Link
// l's device is "fake" followed by l, on every host.
package nictest

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/drivers/nic"
)

// Port is the UDP port of every fake address.
const Port = 5405

// MaxHosts is the largest network NewNetwork builds.
const MaxHosts = 250

// Datagram is one datagram queued at a NIC.
type Datagram struct {
	Link int            // the link it arrived on
	From netip.AddrPort // the sender's address, Addr(sender, Link)
	Data []byte         // a copy of what was sent
	At   time.Time      // the network's clock when it was sent
}

// Counters count what a NIC did; Network.NIC(h).Counters() reads them.
type Counters struct {
	// Sent counts Send calls that reached the network (a valid link, the
	// NIC open), whatever became of the copies.
	Sent uint64
	// Delivered counts copies of this NIC's datagrams that reached a peer.
	Delivered uint64
	// Lost counts copies of this NIC's datagrams that did not: a carrier
	// down, the hosts blocked, a loss rule, a failing send, or a closed
	// receiver.
	Lost uint64
	// Received counts datagrams that reached this NIC: queued for Drain,
	// or passed to Run's recv.
	Received uint64
	// Drained counts datagrams Drain passed to its recv.
	Drained uint64
	// Probes counts Probe calls that reached the network.
	Probes uint64
}

// Network is a set of hosts, each with one NIC on every link. Its methods
// and its NICs' are safe for concurrent use. Every carrier starts up and
// every gateway starts answering.
type Network struct {
	mu       sync.Mutex
	clock    func() time.Time
	links    int
	nics     []*NIC
	blocked  [][]bool // [a][b], kept symmetric
	drop     func(from, to, link int, pkt []byte) bool
	dropNext map[route]int
}

// route is one direction of one link.
type route struct{ from, to, link int }

// NewNetwork returns a network of hosts hosts (1 to MaxHosts) on links
// links (1 to nic.MaxLinks); datagrams are stamped with clock(), or with
// time.Now when clock is nil. It panics on sizes out of range.
func NewNetwork(hosts, links int, clock func() time.Time) *Network {
	if hosts < 1 || hosts > MaxHosts {
		panic(fmt.Sprintf("nictest: %d hosts: a network has 1 to %d", hosts, MaxHosts))
	}
	if links < 1 || links > nic.MaxLinks {
		panic(fmt.Sprintf("nictest: %d links: a network has 1 to %d", links, nic.MaxLinks))
	}
	if clock == nil {
		clock = time.Now
	}
	n := &Network{clock: clock, links: links, dropNext: map[route]int{}}
	for h := range hosts {
		c := &NIC{net: n, host: h, carrier: make([]bool, links), gateway: make([]bool, links),
			sendErr: make([]error, links), queue: make([][]Datagram, links)}
		for l := range links {
			c.carrier[l], c.gateway[l] = true, true
		}
		n.nics = append(n.nics, c)
		n.blocked = append(n.blocked, make([]bool, hosts))
	}
	return n
}

// NIC returns host's NIC, the same one at every call. It panics for a host
// outside the network.
func (n *Network) NIC(host int) *NIC {
	n.checkHost(host)
	return n.nics[host]
}

// Addr is host's address on link, the From of its datagrams.
func Addr(host, link int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(link), 0, byte(host + 1)}), Port)
}

// SetCarrier sets the carrier of host's NIC on link. When the state
// changes and the NIC runs with an event callback, SetCarrier calls it on
// the calling goroutine, and returns after it returned: a test that sets a
// carrier has its event already. The callback must not call SetCarrier for
// its own host. Without carrier, a NIC's datagrams and those sent to it are
// lost silently, as on a real device: Send does not fail.
func (n *Network) SetCarrier(host, link int, up bool) {
	n.checkHost(host)
	n.checkLink(link)
	c := n.nics[host]
	// evMu orders the callbacks as the changes they report.
	c.evMu.Lock()
	defer c.evMu.Unlock()
	n.mu.Lock()
	changed := c.carrier[link] != up
	c.carrier[link] = up
	ev := c.ev
	n.mu.Unlock()
	if changed && ev != nil {
		ev(nic.LinkEvent{Link: link, Device: device(link), Up: up})
	}
}

// Block partitions hosts a and b from each other on every link (true), or
// joins them again (false). Blocking a host from itself does nothing.
func (n *Network) Block(a, b int, blocked bool) {
	n.checkHost(a)
	n.checkHost(b)
	if a == b {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.blocked[a][b], n.blocked[b][a] = blocked, blocked
}

// SetGateway sets whether the isolation address of host's link answers
// its probes. A probe also goes unanswered while the link has no carrier.
func (n *Network) SetGateway(host, link int, answers bool) {
	n.checkHost(host)
	n.checkLink(link)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.nics[host].gateway[link] = answers
}

// DropNext makes the network lose the next count datagrams from host from
// to host to on link that would otherwise arrive (datagrams lost to a
// carrier, a block or a closed NIC do not use up the count). A count of 0
// or less removes the rule.
func (n *Network) DropNext(from, to, link, count int) {
	n.checkHost(from)
	n.checkHost(to)
	n.checkLink(link)
	n.mu.Lock()
	defer n.mu.Unlock()
	r := route{from, to, link}
	if count <= 0 {
		delete(n.dropNext, r)
		return
	}
	n.dropNext[r] = count
}

// SetDrop installs a loss function, asked about every datagram that would
// otherwise arrive, after DropNext's rules: true loses it. It runs with
// the network locked, so it must not call the network or its NICs, nor
// keep pkt. A nil f removes it. For a seeded random loss, close over a
// *rand.Rand.
func (n *Network) SetDrop(f func(from, to, link int, pkt []byte) bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.drop = f
}

// FailSend makes every later Send of host on link fail for every peer with
// err, as a full socket buffer or a device gone down administratively
// does: the copies are lost and Send returns a *nic.SendError naming the
// first peer. A nil err makes sends succeed again.
func (n *Network) FailSend(host, link int, err error) {
	n.checkHost(host)
	n.checkLink(link)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.nics[host].sendErr[link] = err
}

// arrives tells whether a datagram from -> to on link reaches to's NIC,
// using up a DropNext count when it is the reason it does not. n.mu is
// held.
func (n *Network) arrives(from, to, link int, pkt []byte) bool {
	src, dst := n.nics[from], n.nics[to]
	if !src.carrier[link] || !dst.carrier[link] || dst.closed || n.blocked[from][to] {
		return false
	}
	r := route{from, to, link}
	if left := n.dropNext[r]; left > 0 {
		if left == 1 {
			delete(n.dropNext, r)
		} else {
			n.dropNext[r] = left - 1
		}
		return false
	}
	return n.drop == nil || !n.drop(from, to, link, pkt)
}

func (n *Network) checkHost(h int) {
	if h < 0 || h >= len(n.nics) {
		panic(fmt.Sprintf("nictest: host %d: the network has hosts 0 to %d", h, len(n.nics)-1))
	}
}

func (n *Network) checkLink(l int) {
	if l < 0 || l >= n.links {
		panic(fmt.Sprintf("nictest: link %d: the network has links 0 to %d", l, n.links-1))
	}
}

// device is the device name of link l.
func device(l int) string { return fmt.Sprintf("fake%d", l) }
