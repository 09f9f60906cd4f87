package nictest

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/drivers/nic"
)

// NIC is one host's fake heartbeat NICs, one per link of the network. It
// behaves as *nic.NICs does, with these differences: Run with a recv
// passes each datagram to it on the sending goroutine, before Send
// returns; Run passes the links' initial states to ev before it returns;
// Probe answers at once, as SetGateway and the carrier say.
type NIC struct {
	net  *Network
	host int
	evMu sync.Mutex // held while ev runs, so events arrive in order

	// Guarded by net.mu.
	carrier  []bool
	gateway  []bool
	sendErr  []error
	queue    [][]Datagram // per link
	recv     func(link int, data []byte, from netip.AddrPort, at time.Time)
	ev       func(nic.LinkEvent)
	ran      bool
	closed   bool
	counters Counters
}

var _ nic.Links = (*NIC)(nil)

// Run registers the callbacks, once: a later call, or one after Close,
// does nothing. With a nil recv, datagrams queue for Drain; otherwise
// each is passed to recv on the goroutine of the Send that sent it, so
// recv may run on several goroutines at once, as with the real driver's
// per-link readers. ev gets every link's state, in link order, before Run
// returns, then every change on the goroutine of the SetCarrier that made
// it. data is a copy the callee may keep.
func (c *NIC) Run(recv func(link int, data []byte, from netip.AddrPort, at time.Time), ev func(nic.LinkEvent)) {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	n := c.net
	n.mu.Lock()
	if c.closed || c.ran {
		n.mu.Unlock()
		return
	}
	c.ran, c.recv, c.ev = true, recv, ev
	states := slices.Clone(c.carrier)
	n.mu.Unlock()
	if ev == nil {
		return
	}
	for l, up := range states {
		ev(nic.LinkEvent{Link: l, Device: device(l), Up: up})
	}
}

// Drain passes every queued datagram to recv (a nil recv discards them),
// link by link and in arrival order on each, on the calling goroutine, and
// returns how many it passed. Datagrams that arrive while it runs are
// passed too. After Close it returns nic.ErrClosed.
func (c *NIC) Drain(recv func(link int, data []byte, from netip.AddrPort, at time.Time)) (int, error) {
	n := c.net
	n.mu.Lock()
	if c.closed {
		n.mu.Unlock()
		return 0, nic.ErrClosed
	}
	total := 0
	for !c.closed {
		var batch []Datagram
		for l := range c.queue {
			batch = append(batch, c.queue[l]...)
			c.queue[l] = nil
		}
		if len(batch) == 0 {
			break
		}
		c.counters.Drained += uint64(len(batch))
		total += len(batch)
		n.mu.Unlock()
		if recv != nil {
			for _, d := range batch {
				recv(d.Link, d.Data, d.From, d.At)
			}
		}
		n.mu.Lock()
	}
	n.mu.Unlock()
	return total, nil
}

// Send gives a copy of pkt, stamped with the network's clock, to every
// other host's NIC on link, except where the network loses it. Like the
// real driver, it fails only when the send itself fails (see
// Network.FailSend), with a *nic.SendError naming the first peer after
// trying them all; a lost datagram is no error. An unknown link is an
// error wrapping nic.ErrNoLink; after Close, Send returns nic.ErrClosed.
func (c *NIC) Send(link int, pkt []byte) error {
	n := c.net
	if link < 0 || link >= n.links {
		return fmt.Errorf("nictest: host %d: link %d: there are links 0 to %d: %w", c.host, link, n.links-1, nic.ErrNoLink)
	}
	type delivery struct {
		recv func(int, []byte, netip.AddrPort, time.Time)
		d    Datagram
	}
	var now []delivery
	var first error
	n.mu.Lock()
	if c.closed {
		n.mu.Unlock()
		return nic.ErrClosed
	}
	c.counters.Sent++
	at := n.clock()
	from := Addr(c.host, link)
	for r, dst := range n.nics {
		if r == c.host {
			continue
		}
		if err := c.sendErr[link]; err != nil {
			c.counters.Lost++
			if first == nil {
				first = &nic.SendError{Link: link, Peer: Addr(r, link), Err: err}
			}
			continue
		}
		if !n.arrives(c.host, r, link, pkt) {
			c.counters.Lost++
			continue
		}
		c.counters.Delivered++
		dst.counters.Received++
		d := Datagram{Link: link, From: from, Data: bytes.Clone(pkt), At: at}
		if dst.recv != nil {
			now = append(now, delivery{dst.recv, d})
		} else {
			dst.queue[link] = append(dst.queue[link], d)
		}
	}
	n.mu.Unlock()
	for _, x := range now {
		x.recv(x.d.Link, x.d.Data, x.d.From, x.d.At)
	}
	return first
}

// Probe answers at once: nil when the link has carrier and its gateway
// answers (see Network.SetGateway), an error wrapping nic.ErrNoReply
// otherwise. timeout only appears in the error. An unknown link is an
// error wrapping nic.ErrNoLink; after Close, Probe returns nic.ErrClosed.
func (c *NIC) Probe(link int, timeout time.Duration) error {
	n := c.net
	if link < 0 || link >= n.links {
		return fmt.Errorf("nictest: host %d: link %d: there are links 0 to %d: %w", c.host, link, n.links-1, nic.ErrNoLink)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if c.closed {
		return nic.ErrClosed
	}
	c.counters.Probes++
	if !c.carrier[link] {
		return fmt.Errorf("nictest: host %d: link %d has no carrier: no reply within %s: %w", c.host, link, timeout, nic.ErrNoReply)
	}
	if !c.gateway[link] {
		return fmt.Errorf("nictest: host %d: link %d: the gateway did not answer within %s: %w", c.host, link, timeout, nic.ErrNoReply)
	}
	return nil
}

// Device returns "fake" followed by the link number, or "" for a link the
// network does not have.
func (c *NIC) Device(link int) string {
	if link < 0 || link >= c.net.links {
		return ""
	}
	return device(link)
}

// Close drops the queued datagrams and unregisters the callbacks; the NIC
// then receives nothing, and Drain, Send and Probe return nic.ErrClosed.
// A callback already running is not waited for. Calls after the first
// return nil, as the real driver's do.
func (c *NIC) Close() error {
	n := c.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	c.recv, c.ev = nil, nil
	for l := range c.queue {
		c.queue[l] = nil
	}
	return nil
}

// Counters returns the NIC's counters.
func (c *NIC) Counters() Counters {
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	return c.counters
}

// Pending returns a copy of the queued datagrams, link by link and in
// arrival order on each, without taking them from the queue.
func (c *NIC) Pending() []Datagram {
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	var out []Datagram
	for _, q := range c.queue {
		for _, d := range q {
			d.Data = bytes.Clone(d.Data)
			out = append(out, d)
		}
	}
	return out
}
