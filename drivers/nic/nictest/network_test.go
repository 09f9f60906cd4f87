package nictest

import (
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/vigil-ha/vigil/drivers/nic"
)

func TestDevice(t *testing.T) {
	c := NewNetwork(1, 3, nil).NIC(0)
	for _, tc := range []struct {
		link int
		want string
	}{{0, "fake0"}, {2, "fake2"}, {3, ""}, {-1, ""}} {
		if got := c.Device(tc.link); got != tc.want {
			t.Errorf("Device(%d) = %q, want %q", tc.link, got, tc.want)
		}
	}
}

func TestSameNIC(t *testing.T) {
	nw := NewNetwork(2, 1, nil)
	if nw.NIC(1) != nw.NIC(1) || nw.NIC(0) == nw.NIC(1) {
		t.Error("NIC(h) is not one NIC per host")
	}
}

func TestAddr(t *testing.T) {
	for _, tc := range []struct {
		host, link int
		want       string
	}{{0, 0, "10.0.0.1:5405"}, {2, 1, "10.1.0.3:5405"}, {MaxHosts - 1, nic.MaxLinks - 1, "10.7.0.250:5405"}} {
		if got := Addr(tc.host, tc.link).String(); got != tc.want {
			t.Errorf("Addr(%d, %d) = %s, want %s", tc.host, tc.link, got, tc.want)
		}
	}
}

func TestPanics(t *testing.T) {
	nw := NewNetwork(2, 2, nil)
	for _, tc := range []struct {
		name string
		call func()
		says string
	}{
		{"no host", func() { NewNetwork(0, 1, nil) }, "0 hosts: a network has 1 to 250"},
		{"too many hosts", func() { NewNetwork(MaxHosts+1, 1, nil) }, "251 hosts"},
		{"no link", func() { NewNetwork(1, 0, nil) }, "0 links: a network has 1 to 8"},
		{"nine links", func() { NewNetwork(1, 9, nil) }, "9 links"},
		{"NIC of an unknown host", func() { nw.NIC(2) }, "host 2: the network has hosts 0 to 1"},
		{"carrier of an unknown link", func() { nw.SetCarrier(0, 2, false) }, "link 2: the network has links 0 to 1"},
		{"block an unknown host", func() { nw.Block(0, -1, true) }, "host -1"},
		{"gateway of an unknown host", func() { nw.SetGateway(5, 0, true) }, "host 5"},
		{"drop on an unknown link", func() { nw.DropNext(0, 1, 3, 1) }, "link 3"},
		{"fail an unknown link", func() { nw.FailSend(0, 4, syscall.ENOBUFS) }, "link 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if s, _ := r.(string); !strings.Contains(s, tc.says) {
					t.Errorf("panic %v, want one saying %q", r, tc.says)
				}
			}()
			tc.call()
		})
	}
}

// TestConcurrent sends and drains from several goroutines at once (run it
// with -race): every datagram is either drained or still queued.
func TestConcurrent(t *testing.T) {
	const hosts, sends = 4, 200
	nw := NewNetwork(hosts, 2, nil)
	var drained [hosts]int
	var wg sync.WaitGroup
	for h := range hosts {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range sends {
				if err := nw.NIC(h).Send(i%2, []byte("hb")); err != nil {
					t.Errorf("host %d: Send: %v", h, err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range sends {
				n, err := nw.NIC(h).Drain(nil)
				if err != nil {
					t.Errorf("host %d: Drain: %v", h, err)
					return
				}
				drained[h] += n
			}
		}()
	}
	wg.Wait()
	for h := range hosts {
		c := nw.NIC(h).Counters()
		if want := (hosts - 1) * sends; drained[h]+len(nw.NIC(h).Pending()) != want || int(c.Received) != want {
			t.Errorf("host %d: drained %d + queued %d, received %d; want %d", h, drained[h], len(nw.NIC(h).Pending()), c.Received, want)
		}
	}
}
