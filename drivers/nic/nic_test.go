package nic

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	v4 := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	link := func(local string, peers ...string) LinkConfig {
		lc := LinkConfig{Local: v4(local), Peers: []netip.Addr{{}}}
		for _, p := range peers {
			lc.Peers = append(lc.Peers, v4(p))
		}
		return lc
	}
	nine := make([]LinkConfig, 9)
	for i := range nine {
		nine[i] = link("10.0." + string(rune('0'+i)) + ".1")
	}
	for _, c := range []struct {
		name string
		cfg  Config
		want error
		text string
	}{
		{"two links", Config{Port: 5405, Links: []LinkConfig{link("10.77.0.1", "10.77.0.2"), link("10.78.0.1", "10.78.0.2")}}, nil, ""},
		{"IPv6 link with gateway", Config{Port: 5405, Links: []LinkConfig{{Local: v4("fd00::1"), Peers: []netip.Addr{{}, v4("fd00::2")}, Gateway: v4("fd00::fe")}}}, nil, ""},
		{"IPv4-mapped addresses", Config{Port: 5405, Links: []LinkConfig{{Local: v4("::ffff:10.77.0.1"), Peers: []netip.Addr{v4("10.77.0.2")}}}}, nil, ""},
		{"no link", Config{Port: 5405}, ErrLinkCount, "0 links configured"},
		{"nine links", Config{Port: 5405, Links: nine}, ErrLinkCount, "9 links configured: list 1 to 8"},
		{"port zero", Config{Port: 0, Links: []LinkConfig{link("10.77.0.1")}}, ErrConfig, "port 0: set cluster.port"},
		{"port too large", Config{Port: 70000, Links: []LinkConfig{link("10.77.0.1")}}, ErrConfig, "port 70000"},
		{"no local address", Config{Port: 5405, Links: []LinkConfig{link("10.77.0.1"), {}}}, ErrConfig, "link 1: no local address"},
		{"one address on two links", Config{Port: 5405, Links: []LinkConfig{link("10.77.0.1"), link("10.77.0.1")}}, ErrConfig, "link 1: local address 10.77.0.1 is also link 0's"},
		{"peer of the other family", Config{Port: 5405, Links: []LinkConfig{{Local: v4("10.77.0.1"), Peers: []netip.Addr{v4("fd00::2")}}}}, ErrConfig, "link 0: peer 0 address fd00::2"},
		{"gateway of the other family", Config{Port: 5405, Links: []LinkConfig{{Local: v4("fd00::1"), Gateway: v4("10.0.0.1")}}}, ErrConfig, "link 0: gateway 10.0.0.1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.validate()
			if c.want == nil {
				if err != nil {
					t.Fatalf("validate = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("validate = %v, want %v saying %q", err, c.want, c.text)
			}
		})
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	for _, c := range []struct {
		name  string
		links int
	}{{"no link", 0}, {"nine links", 9}} {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{Port: 5405, Links: make([]LinkConfig, c.links)}
			for i := range cfg.Links {
				cfg.Links[i].Local = netip.AddrFrom4([4]byte{10, byte(i), 0, 1})
			}
			if _, err := Open(cfg); !errors.Is(err, ErrLinkCount) {
				t.Fatalf("Open = %v, want ErrLinkCount", err)
			}
		})
	}
}

func TestLinkEventString(t *testing.T) {
	for _, c := range []struct {
		e    LinkEvent
		want string
	}{
		{LinkEvent{Link: 1, Device: "eth1", Up: false}, "link 1 (eth1) down"},
		{LinkEvent{Link: 0, Device: "eth0", Up: true}, "link 0 (eth0) up"},
	} {
		if got := c.e.String(); got != c.want {
			t.Errorf("%#v.String() = %q, want %q", c.e, got, c.want)
		}
	}
}

func TestSendErrorText(t *testing.T) {
	base := errors.New("network is unreachable")
	err := error(&SendError{Link: 1, Peer: netip.MustParseAddrPort("10.78.0.2:5405"), Err: base})
	if want := "nic: link 1: send to 10.78.0.2:5405: network is unreachable"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
	if !errors.Is(err, base) {
		t.Errorf("SendError does not unwrap to its cause")
	}
}
