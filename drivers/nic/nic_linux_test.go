//go:build linux

package nic

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// datagram is a copy of what recv was given.
type datagram struct {
	link int
	data string
	from netip.AddrPort
	at   time.Time
}

// collect runs n and returns the channels its callbacks feed. The callbacks
// never block: a datagram that finds the channel full is dropped.
func collect(n *NICs) (<-chan datagram, <-chan LinkEvent) {
	rx := make(chan datagram, 1024)
	ev := make(chan LinkEvent, 1024)
	n.Run(func(link int, data []byte, from netip.AddrPort, at time.Time) {
		select {
		case rx <- datagram{link, string(data), from, at}:
		default:
		}
	}, func(e LinkEvent) {
		select {
		case ev <- e:
		default:
		}
	})
	return rx, ev
}

// exchange sends payload from n on link, again every 10 ms (a link that has
// just come up may drop the first datagrams), until it arrives at rx, and
// returns it. Every datagram seen must carry its own link id in its payload
// ("link=N ...") and arrive on that link.
func exchange(t *testing.T, n *NICs, link int, rx <-chan datagram) datagram {
	t.Helper()
	payload := fmt.Sprintf("link=%d %d", link, time.Now().UnixNano())
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(waitLimit)
	_ = n.Send(link, []byte(payload))
	for {
		select {
		case d := <-rx:
			if want := fmt.Sprintf("link=%d ", d.link); !strings.HasPrefix(d.data, want) {
				t.Fatalf("datagram %q arrived on link %d", d.data, d.link)
			}
			if d.data == payload {
				return d
			}
		case <-tick.C:
			_ = n.Send(link, []byte(payload))
		case <-timeout:
			t.Fatalf("datagram on link %d did not arrive within %v", link, waitLimit)
		}
	}
}

// nextEvent waits for the next link event.
func nextEvent(t *testing.T, ev <-chan LinkEvent) LinkEvent {
	t.Helper()
	select {
	case e := <-ev:
		return e
	case <-time.After(waitLimit):
		t.Fatalf("no link event within %v", waitLimit)
		return LinkEvent{}
	}
}

func TestTraffic(t *testing.T) {
	l := newLab(t)
	a := mustOpenIn(t, l.a, hostConfig(t, 0))
	b := mustOpenIn(t, l.b, hostConfig(t, 1))
	rxA, _ := collect(a)
	rxB, _ := collect(b)
	for _, c := range []struct {
		name string
		from *NICs
		rx   <-chan datagram
		link int
		src  string
	}{
		{"A to B on link 0", a, rxB, 0, labA[0]},
		{"A to B on link 1", a, rxB, 1, labA[1]},
		{"B to A on link 0", b, rxA, 0, labB[0]},
		{"B to A on link 1", b, rxA, 1, labB[1]},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			d := exchange(t, c.from, c.link, c.rx)
			if d.link != c.link {
				t.Errorf("arrived on link %d, want %d", d.link, c.link)
			}
			if want := netip.AddrPortFrom(netip.MustParseAddr(c.src), testPort); d.from != want {
				t.Errorf("from %v, want %v", d.from, want)
			}
			if d.at.Before(start) || d.at.After(time.Now()) {
				t.Errorf("received at %v, outside the exchange (%v to now)", d.at, start)
			}
		})
	}
	if got := a.Device(1); got != "a1" {
		t.Errorf("Device(1) = %q, want a1", got)
	}
	if got := a.Device(2); got != "" {
		t.Errorf("Device(2) = %q, want empty", got)
	}
}

// carrierLimit bounds the delay of a carrier loss: the kernel reports it
// in about a millisecond.
const carrierLimit = 250 * time.Millisecond

func TestLinkEvents(t *testing.T) {
	l := newLab(t)
	a := mustOpenIn(t, l.a, hostConfig(t, 0))
	b := mustOpenIn(t, l.b, hostConfig(t, 1))
	rxA, evA := collect(a)
	collect(b)
	for _, c := range []struct {
		name   string
		change func()
		want   []LinkEvent
	}{
		{"initial state", func() {}, []LinkEvent{{0, "a0", true}, {1, "a1", true}}},
		{"far end of link 1 down", func() { l.setUp(t, l.hb, "b1", false) }, []LinkEvent{{1, "a1", false}}},
		{"far end of link 1 up", func() { l.setUp(t, l.hb, "b1", true) }, []LinkEvent{{1, "a1", true}}},
		{"near end of link 0 down", func() { l.setUp(t, l.ha, "a0", false) }, []LinkEvent{{0, "a0", false}}},
		{"near end of link 0 up", func() { l.setUp(t, l.ha, "a0", true) }, []LinkEvent{{0, "a0", true}}},
		{"link 1 removed", func() {
			dev, err := l.hb.LinkByName("b1")
			if err != nil {
				t.Fatalf("find b1: %v", err)
			}
			if err := l.hb.LinkDel(dev); err != nil {
				t.Fatalf("delete b1: %v", err)
			}
		}, []LinkEvent{{1, "a1", false}}},
	} {
		start := time.Now()
		c.change()
		for _, want := range c.want {
			if got := nextEvent(t, evA); got != want {
				t.Fatalf("%s: event %v, want %v", c.name, got, want)
			}
		}
		took := time.Since(start)
		t.Logf("%s: seen after %v", c.name, took)
		if c.name == "far end of link 1 down" {
			if took > carrierLimit {
				t.Errorf("%s: seen after %v, want within %v", c.name, took, carrierLimit)
			}
			exchange(t, b, 0, rxA) // link 0 still carries heartbeats
		}
	}
	select {
	case e := <-evA:
		t.Errorf("unexpected event %v", e)
	default:
	}
}

func TestProbe(t *testing.T) {
	l := newLab(t)
	const timeout = 300 * time.Millisecond
	for _, c := range []struct {
		name    string
		gateway string // of link 0
		link    int
		want    error
	}{
		{"gateway answers", labB[0], 0, nil},
		{"unused address", "10.77.0.9", 0, ErrNoReply},
		{"link without gateway", labB[0], 1, ErrNoGateway},
		{"no such link", labB[0], 7, ErrNoLink},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := hostConfig(t, 0)
			cfg.Links[0].Gateway = netip.MustParseAddr(c.gateway)
			a := mustOpenIn(t, l.a, cfg)
			for range 3 { // consecutive probes are told apart
				start := time.Now()
				err := a.Probe(c.link, timeout)
				if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
					t.Fatalf("Probe = %v, want %v", err, c.want)
				}
				if c.want == ErrNoReply && time.Since(start) < timeout {
					t.Fatalf("Probe gave up after %v, before the %v timeout", time.Since(start), timeout)
				}
			}
			if err := a.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			if err := a.Probe(0, timeout); !errors.Is(err, ErrClosed) {
				t.Fatalf("Probe after Close = %v, want ErrClosed", err)
			}
		})
	}
}

func TestOpenFails(t *testing.T) {
	l := newLab(t)
	for _, c := range []struct {
		name string
		cfg  func(*Config)
		want error
		text string
	}{
		{"address no interface has", func(c *Config) { c.Links[1].Local = netip.MustParseAddr("10.1.0.5") },
			ErrNoInterface, "link 1: no interface has address 10.1.0.5: check hosts.addresses in the cluster file"},
		{"port taken", func(*Config) {}, unix.EADDRINUSE, "link 0: bind 10.77.0.1:5405 on a0: another process holds the port"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.want == unix.EADDRINUSE {
				mustOpenIn(t, l.a, hostConfig(t, 0))
			}
			cfg := hostConfig(t, 0)
			c.cfg(&cfg)
			_, err := openIn(t, l.a, cfg)
			if !errors.Is(err, c.want) || err == nil || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("Open = %v, want %v saying %q", err, c.want, c.text)
			}
		})
	}
}

func TestClose(t *testing.T) {
	l := newLab(t)
	cfg := hostConfig(t, 0)
	cfg.Links[0].Gateway = netip.MustParseAddr(labB[0])
	a, err := openIn(t, l.a, cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	// More link events than the monitor buffers, never read: Close must
	// still end the subscription.
	for range updateBuffer {
		l.setUp(t, l.hb, "b1", false)
		l.setUp(t, l.hb, "b1", true)
	}
	closed := make(chan error)
	go func() { closed <- a.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close = %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatalf("Close without Run did not return within %v", waitLimit)
	}
	for _, c := range []struct {
		name string
		call func() error
		want error
	}{
		{"Send", func() error { return a.Send(0, []byte("x")) }, ErrClosed},
		{"Probe", func() error { return a.Probe(0, time.Second) }, ErrClosed},
		{"Close again", a.Close, nil},
	} {
		if err := c.call(); !errors.Is(err, c.want) || (err == nil) != (c.want == nil) {
			t.Errorf("%s after Close = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestSendDoesNotAllocate(t *testing.T) {
	l := newLab(t)
	a := mustOpenIn(t, l.a, hostConfig(t, 0))
	b := mustOpenIn(t, l.b, hostConfig(t, 1))
	rxB, _ := collect(b)
	exchange(t, a, 0, rxB) // resolve the peer's hardware address first
	pkt := []byte("link=0 heartbeat")
	var err error
	if allocs := testing.AllocsPerRun(200, func() { err = a.Send(0, pkt) }); allocs != 0 {
		t.Errorf("Send allocates %v times per call, want 0", allocs)
	}
	if err != nil {
		t.Errorf("Send = %v", err)
	}
}

func TestSendErrors(t *testing.T) {
	l := newLab(t)
	a := mustOpenIn(t, l.a, hostConfig(t, 0))
	l.setUp(t, l.ha, "a1", false)
	for _, c := range []struct {
		name string
		link int
		want error
	}{
		{"no such link", 9, ErrNoLink},
		{"negative link", -1, ErrNoLink},
		{"device down", 1, unix.ENETUNREACH},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := a.Send(c.link, []byte("x"))
			if !errors.Is(err, c.want) {
				t.Fatalf("Send = %v, want %v", err, c.want)
			}
			var se *SendError
			if errors.As(err, &se) && se.Peer != netip.AddrPortFrom(netip.MustParseAddr(labB[1]), testPort) {
				t.Errorf("error names peer %v, want %s:%d", se.Peer, labB[1], testPort)
			}
		})
	}
}

func TestIPv6(t *testing.T) {
	l := newLab(t)
	for _, c := range []struct {
		name string
		a, b string // addresses on link 0
	}{
		{"unique local", "fd77::1", "fd77::2"},
		{"link-local", "fe80::77:1", "fe80::77:2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			l.addr(t, l.ha, "a0", c.a)
			l.addr(t, l.hb, "b0", c.b)
			a6, b6 := netip.MustParseAddr(c.a), netip.MustParseAddr(c.b)
			cfgA, cfgB := hostConfig(t, 0), hostConfig(t, 1)
			cfgA.Links = []LinkConfig{{Local: a6, Peers: []netip.Addr{{}, b6}, Gateway: b6}}
			cfgB.Links = []LinkConfig{{Local: b6, Peers: []netip.Addr{a6, {}}}}
			a := mustOpenIn(t, l.a, cfgA)
			b := mustOpenIn(t, l.b, cfgB)
			collect(a)
			rxB, _ := collect(b)
			d := exchange(t, a, 0, rxB)
			want := netip.AddrPortFrom(a6, testPort)
			if a6.IsLinkLocalUnicast() {
				want = netip.AddrPortFrom(a6.WithZone("b0"), testPort)
			}
			if d.from != want {
				t.Errorf("from %v, want %v", d.from, want)
			}
			if err := a.Probe(0, waitLimit); err != nil {
				t.Errorf("Probe = %v", err)
			}
		})
	}
}

// TestDrain: with no reader (Run with a nil recv), datagrams wait in the
// sockets until Drain passes them on, each on its own link, stamped with
// the kernel's receive time rather than the time of the Drain.
func TestDrain(t *testing.T) {
	l := newLab(t)
	a := mustOpenIn(t, l.a, hostConfig(t, 0))
	b := mustOpenIn(t, l.b, hostConfig(t, 1))
	a.Run(nil, nil)
	rxB, _ := collect(b)
	exchange(t, a, 0, rxB) // the links carry traffic
	exchange(t, a, 1, rxB)
	if n, err := a.Drain(func(int, []byte, netip.AddrPort, time.Time) {}); err != nil {
		t.Fatalf("Drain of idle sockets: %d, %v", n, err)
	}
	sent := time.Now()
	for link := range 2 {
		for i := range 3 {
			if err := b.Send(link, fmt.Appendf(nil, "link=%d #%d", link, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	var got []datagram
	deadline := time.After(waitLimit)
	for len(got) < 6 {
		select {
		case <-deadline:
			t.Fatalf("drained %d of 6 datagrams: %v", len(got), got)
		case <-time.After(20 * time.Millisecond): // let the kernel queue them: the point of Drain
		}
		_, err := a.Drain(func(link int, data []byte, from netip.AddrPort, at time.Time) {
			got = append(got, datagram{link, string(data), from, at})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	drained := time.Now()
	for _, d := range got {
		if !strings.HasPrefix(d.data, fmt.Sprintf("link=%d ", d.link)) {
			t.Errorf("%q drained as link %d", d.data, d.link)
		}
		if d.from.Addr() != netip.MustParseAddr(labB[d.link]) {
			t.Errorf("%q from %v", d.data, d.from)
		}
		if d.at.Before(sent) || !d.at.Before(drained) {
			t.Errorf("%q stamped %v: not between the send (%v) and the drain (%v)", d.data, d.at, sent, drained)
		}
	}
	a.Close()
	if _, err := a.Drain(func(int, []byte, netip.AddrPort, time.Time) {}); !errors.Is(err, ErrClosed) {
		t.Errorf("Drain after Close: %v, want ErrClosed", err)
	}
}
