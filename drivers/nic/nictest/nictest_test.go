package nictest

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/drivers/nic"
)

// t0 is the fake clock's start.
var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

// pending counts the queued datagrams of every host.
func pending(nw *Network, hosts int) []int {
	out := make([]int, hosts)
	for h := range hosts {
		out[h] = len(nw.NIC(h).Pending())
	}
	return out
}

func TestSend(t *testing.T) {
	errFull := syscall.ENOBUFS
	for _, tc := range []struct {
		name    string
		setup   func(nw *Network)
		link    int
		sends   int
		pending []int // per host afterwards
		lost    uint64
		err     error // errors.Is the error of the last Send
		sendErr bool  // the error is a *nic.SendError naming host 1
	}{
		{"everyone hears", nil, 0, 1, []int{0, 1, 1}, 0, nil, false},
		{"each send is queued", nil, 1, 3, []int{0, 3, 3}, 0, nil, false},
		{"sender without carrier", func(nw *Network) { nw.SetCarrier(0, 0, false) }, 0, 1, []int{0, 0, 0}, 2, nil, false},
		{"receiver without carrier", func(nw *Network) { nw.SetCarrier(1, 0, false) }, 0, 1, []int{0, 0, 1}, 1, nil, false},
		{"another link's carrier", func(nw *Network) { nw.SetCarrier(0, 1, false); nw.SetCarrier(1, 1, false) }, 0, 1, []int{0, 1, 1}, 0, nil, false},
		{"carrier back", func(nw *Network) { nw.SetCarrier(1, 0, false); nw.SetCarrier(1, 0, true) }, 0, 1, []int{0, 1, 1}, 0, nil, false},
		{"blocked pair", func(nw *Network) { nw.Block(1, 0, true) }, 1, 1, []int{0, 0, 1}, 1, nil, false},
		{"block between others", func(nw *Network) { nw.Block(1, 2, true) }, 0, 1, []int{0, 1, 1}, 0, nil, false},
		{"unblocked", func(nw *Network) { nw.Block(0, 1, true); nw.Block(0, 1, false) }, 0, 1, []int{0, 1, 1}, 0, nil, false},
		{"blocked from itself", func(nw *Network) { nw.Block(0, 0, true) }, 0, 1, []int{0, 1, 1}, 0, nil, false},
		{"drop the next two to host 2", func(nw *Network) { nw.DropNext(0, 2, 0, 2) }, 0, 3, []int{0, 3, 1}, 2, nil, false},
		{"drop rule of the other direction", func(nw *Network) { nw.DropNext(2, 0, 0, 2) }, 0, 1, []int{0, 1, 1}, 0, nil, false},
		{"drop rule of another link", func(nw *Network) { nw.DropNext(0, 2, 1, 2) }, 0, 1, []int{0, 1, 1}, 0, nil, false},
		{"drop rule removed", func(nw *Network) { nw.DropNext(0, 2, 0, 2); nw.DropNext(0, 2, 0, 0) }, 0, 1, []int{0, 1, 1}, 0, nil, false},
		{"drop function", func(nw *Network) {
			nw.SetDrop(func(from, to, link int, pkt []byte) bool { return to == 1 && string(pkt) == "hb" })
		}, 0, 2, []int{0, 0, 2}, 2, nil, false},
		{"drop function removed", func(nw *Network) {
			nw.SetDrop(func(int, int, int, []byte) bool { return true })
			nw.SetDrop(nil)
		}, 0, 1, []int{0, 1, 1}, 0, nil, false},
		{"receiver closed", func(nw *Network) { nw.NIC(2).Close() }, 0, 1, []int{0, 1, 0}, 1, nil, false},
		{"failing send", func(nw *Network) { nw.FailSend(0, 0, errFull) }, 0, 1, []int{0, 0, 0}, 2, errFull, true},
		{"failing send on another link", func(nw *Network) { nw.FailSend(0, 1, errFull) }, 0, 1, []int{0, 1, 1}, 0, nil, false},
		{"send failure cleared", func(nw *Network) { nw.FailSend(0, 0, errFull); nw.FailSend(0, 0, nil) }, 0, 1, []int{0, 1, 1}, 0, nil, false},
		{"unknown link", nil, 2, 1, []int{0, 0, 0}, 0, nic.ErrNoLink, false},
		{"negative link", nil, -1, 1, []int{0, 0, 0}, 0, nic.ErrNoLink, false},
		{"sender closed", func(nw *Network) { nw.NIC(0).Close() }, 0, 1, []int{0, 0, 0}, 0, nic.ErrClosed, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nw := NewNetwork(3, 2, nil)
			if tc.setup != nil {
				tc.setup(nw)
			}
			var err error
			for range tc.sends {
				err = nw.NIC(0).Send(tc.link, []byte("hb"))
			}
			if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Errorf("Send = %v, want %v", err, tc.err)
			}
			var se *nic.SendError
			if got := errors.As(err, &se); got != tc.sendErr {
				t.Errorf("Send = %v: a *nic.SendError: %v, want %v", err, got, tc.sendErr)
			} else if got && (se.Link != tc.link || se.Peer != Addr(1, tc.link)) {
				t.Errorf("SendError link %d peer %s, want link %d peer %s", se.Link, se.Peer, tc.link, Addr(1, tc.link))
			}
			if got := fmt.Sprint(pending(nw, 3)); got != fmt.Sprint(tc.pending) {
				t.Errorf("queued per host %s, want %v", got, tc.pending)
			}
			c := nw.NIC(0).Counters()
			delivered := uint64(0)
			for _, n := range tc.pending {
				delivered += uint64(n)
			}
			if c.Lost != tc.lost || c.Delivered != delivered {
				t.Errorf("counters %+v, want lost %d delivered %d", c, tc.lost, delivered)
			}
		})
	}
}

func TestDrain(t *testing.T) {
	clk := &fakeClock{now: t0}
	nw := NewNetwork(3, 2, clk.Now)
	pkt := []byte("first")
	mustSend(t, nw.NIC(1), 1, pkt)
	pkt[0] = 'F' // the queued datagram is a copy
	clk.now = t0.Add(time.Second)
	mustSend(t, nw.NIC(2), 0, []byte("second"))
	mustSend(t, nw.NIC(1), 0, []byte("third"))

	if got := len(nw.NIC(0).Pending()); got != 3 {
		t.Fatalf("host 0 has %d datagrams queued, want 3", got)
	}
	var got []string
	n, err := nw.NIC(0).Drain(func(link int, data []byte, from netip.AddrPort, at time.Time) {
		got = append(got, fmt.Sprintf("link %d from %s at +%s: %s", link, from, at.Sub(t0), data))
	})
	want := []string{ // link by link, in arrival order on each
		"link 0 from 10.0.0.3:5405 at +1s: second",
		"link 0 from 10.0.0.2:5405 at +1s: third",
		"link 1 from 10.1.0.2:5405 at +0s: first",
	}
	if err != nil || n != 3 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Drain = %d, %v, passing\n%s\nwant 3, nil, passing\n%s", n, err, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n, err := nw.NIC(0).Drain(nil); n != 0 || err != nil {
		t.Errorf("second Drain = %d, %v, want 0, nil", n, err)
	}
	if c := nw.NIC(0).Counters(); c.Drained != 3 || c.Received != 3 || c.Sent != 0 {
		t.Errorf("host 0 counters %+v, want 3 received, 3 drained, none sent", c)
	}
	if c := nw.NIC(1).Counters(); c.Sent != 2 || c.Delivered != 4 || c.Received != 1 || c.Drained != 0 {
		t.Errorf("host 1 counters %+v, want 2 sent, 4 delivered, 1 received, none drained", c)
	}
	// Host 2 discards its queue: a nil recv.
	if n, err := nw.NIC(2).Drain(nil); n != 2 || err != nil || len(nw.NIC(2).Pending()) != 0 {
		t.Errorf("Drain(nil) = %d, %v, leaving %d queued; want 2, nil, 0", n, err, len(nw.NIC(2).Pending()))
	}
}

// TestDrainTakesLateArrivals: a datagram that arrives while Drain runs is
// passed by the same Drain.
func TestDrainTakesLateArrivals(t *testing.T) {
	nw := NewNetwork(2, 1, nil)
	mustSend(t, nw.NIC(1), 0, []byte("ping"))
	var got []string
	n, err := nw.NIC(0).Drain(func(_ int, data []byte, _ netip.AddrPort, _ time.Time) {
		got = append(got, string(data))
		if string(data) == "ping" {
			mustSend(t, nw.NIC(1), 0, []byte("late"))
		}
	})
	if n != 2 || err != nil || strings.Join(got, ",") != "ping,late" {
		t.Errorf("Drain = %d, %v, passing %q; want 2, nil, [ping late]", n, err, got)
	}
}

func TestPendingIsACopy(t *testing.T) {
	nw := NewNetwork(2, 1, nil)
	mustSend(t, nw.NIC(0), 0, []byte("hb"))
	p := nw.NIC(1).Pending()
	p[0].Data[0] = 'X'
	if got := string(nw.NIC(1).Pending()[0].Data); got != "hb" {
		t.Errorf("queued data %q after changing Pending's copy, want \"hb\"", got)
	}
}

// TestRunRecv: with a recv, a datagram is passed before Send returns and
// nothing queues.
func TestRunRecv(t *testing.T) {
	clk := &fakeClock{now: t0}
	nw := NewNetwork(3, 2, clk.Now)
	var got []string
	nw.NIC(1).Run(func(link int, data []byte, from netip.AddrPort, at time.Time) {
		got = append(got, fmt.Sprintf("link %d from %s at %s: %s", link, from, at.Format(time.TimeOnly), data))
	}, nil)
	mustSend(t, nw.NIC(0), 1, []byte("hb"))
	if want := "link 1 from 10.1.0.1:5405 at 12:00:00: hb"; strings.Join(got, "|") != want {
		t.Errorf("recv got %q, want [%s]", got, want)
	}
	if n, err := nw.NIC(1).Drain(nil); n != 0 || err != nil {
		t.Errorf("Drain with a recv = %d, %v, want 0, nil", n, err)
	}
	if got := pending(nw, 3); fmt.Sprint(got) != "[0 0 1]" {
		t.Errorf("queued per host %v, want [0 0 1]: host 2 runs without recv", got)
	}
	if c := nw.NIC(1).Counters(); c.Received != 1 || c.Drained != 0 {
		t.Errorf("host 1 counters %+v, want 1 received, none drained", c)
	}
}

// eventLog collects a NIC's link events.
type eventLog struct {
	mu  sync.Mutex
	evs []string
}

func (l *eventLog) add(e nic.LinkEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, e.String())
}

// take returns the events so far and forgets them.
func (l *eventLog) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.Join(l.evs, ", ")
	l.evs = nil
	return s
}

// TestLinkEvents: each step's events are delivered by the time the step
// returns.
func TestLinkEvents(t *testing.T) {
	nw := NewNetwork(2, 2, nil)
	nw.SetCarrier(0, 1, false) // before Run: part of the initial state
	var log eventLog
	c := nw.NIC(0)
	for _, step := range []struct {
		name string
		do   func()
		want string
	}{
		{"run reports every link", func() { c.Run(nil, log.add) }, "link 0 (fake0) up, link 1 (fake1) down"},
		{"a second run does nothing", func() { c.Run(nil, log.add) }, ""},
		{"carrier lost", func() { nw.SetCarrier(0, 0, false) }, "link 0 (fake0) down"},
		{"no change, no event", func() { nw.SetCarrier(0, 0, false) }, ""},
		{"carrier back", func() { nw.SetCarrier(0, 1, true) }, "link 1 (fake1) up"},
		{"another host's carrier", func() { nw.SetCarrier(1, 0, false) }, ""},
		{"a partition is no carrier change", func() { nw.Block(0, 1, true) }, ""},
		{"changes in order", func() { nw.SetCarrier(0, 0, true); nw.SetCarrier(0, 1, false) }, "link 0 (fake0) up, link 1 (fake1) down"},
		{"closed", func() { c.Close() }, ""},
		{"no event after close", func() { nw.SetCarrier(0, 0, false) }, ""},
	} {
		step.do()
		if got := log.take(); got != step.want {
			t.Errorf("%s: events %q, want %q", step.name, got, step.want)
		}
	}
}

func TestRunAfterClose(t *testing.T) {
	nw := NewNetwork(2, 1, nil)
	c := nw.NIC(0)
	c.Close()
	var log eventLog
	c.Run(nil, log.add)
	if got := log.take(); got != "" {
		t.Errorf("Run after Close reported %q, want nothing", got)
	}
}

func TestProbe(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(nw *Network)
		link  int
		want  error
	}{
		{"gateway answers", nil, 0, nil},
		{"gateway silent", func(nw *Network) { nw.SetGateway(0, 0, false) }, 0, nic.ErrNoReply},
		{"another link's gateway silent", func(nw *Network) { nw.SetGateway(0, 1, false) }, 0, nil},
		{"another host's gateway silent", func(nw *Network) { nw.SetGateway(1, 0, false) }, 0, nil},
		{"gateway back", func(nw *Network) { nw.SetGateway(0, 1, false); nw.SetGateway(0, 1, true) }, 1, nil},
		{"no carrier", func(nw *Network) { nw.SetCarrier(0, 1, false) }, 1, nic.ErrNoReply},
		{"partition does not cut the gateway", func(nw *Network) { nw.Block(0, 1, true) }, 0, nil},
		{"unknown link", nil, 2, nic.ErrNoLink},
		{"closed", func(nw *Network) { nw.NIC(0).Close() }, 0, nic.ErrClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nw := NewNetwork(2, 2, nil)
			if tc.setup != nil {
				tc.setup(nw)
			}
			err := nw.NIC(0).Probe(tc.link, time.Second)
			if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
				t.Errorf("Probe(%d) = %v, want %v", tc.link, err, tc.want)
			}
		})
	}
}

func TestClose(t *testing.T) {
	nw := NewNetwork(2, 2, nil)
	c := nw.NIC(0)
	mustSend(t, nw.NIC(1), 0, []byte("queued before close"))
	if err := c.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	mustSend(t, nw.NIC(1), 0, []byte("sent after close")) // lost, no error
	for _, tc := range []struct {
		name string
		call func() error
		want error
	}{
		{"Send", func() error { return c.Send(0, []byte("x")) }, nic.ErrClosed},
		{"Drain", func() error { _, err := c.Drain(nil); return err }, nic.ErrClosed},
		{"Probe", func() error { return c.Probe(0, time.Second) }, nic.ErrClosed},
		{"Close again", c.Close, nil},
	} {
		if err := tc.call(); !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
			t.Errorf("%s after Close = %v, want %v", tc.name, err, tc.want)
		}
	}
	if p := c.Pending(); len(p) != 0 {
		t.Errorf("%d datagrams queued at a closed NIC, want none", len(p))
	}
	if got := c.Device(1); got != "fake1" {
		t.Errorf("Device(1) after Close = %q, want fake1", got)
	}
	if cs := nw.NIC(1).Counters(); cs.Sent != 2 || cs.Delivered != 1 || cs.Lost != 1 {
		t.Errorf("sender counters %+v, want 2 sent, 1 delivered, 1 lost", cs)
	}
}

func mustSend(t *testing.T, c *NIC, link int, pkt []byte) {
	t.Helper()
	if err := c.Send(link, pkt); err != nil {
		t.Fatalf("Send(%d): %v", link, err)
	}
}
