package ebpf

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestStampKeyAddr(t *testing.T) {
	for _, c := range []struct {
		name string
		addr string
		key  [16]byte
		back string // what a stamp of the key shows
	}{
		{"ipv4", "10.77.0.2", [16]byte{10: 0xff, 11: 0xff, 12: 10, 13: 77, 14: 0, 15: 2}, "10.77.0.2"},
		{"ipv4-mapped ipv6", "::ffff:192.0.2.1", [16]byte{10: 0xff, 11: 0xff, 12: 192, 13: 0, 14: 2, 15: 1}, "192.0.2.1"},
		{"ipv6", "2001:db8::1", [16]byte{0: 0x20, 1: 0x01, 2: 0x0d, 3: 0xb8, 15: 1}, "2001:db8::1"},
		{"ipv6 link-local", "fe80::1", [16]byte{0: 0xfe, 1: 0x80, 15: 1}, "fe80::1"},
		{"ipv4-compatible ipv6 stays ipv6", "::10.0.0.1", [16]byte{12: 10, 15: 1}, "::a00:1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			key := keyAddr(netip.MustParseAddr(c.addr))
			if key != c.key {
				t.Errorf("keyAddr(%s) = % x, want % x", c.addr, key, c.key)
			}
			got := stampOf(7, key, 3, 42).Addr
			if want := netip.MustParseAddr(c.back); got != want {
				t.Errorf("stamp address of % x = %v, want %v", key, got, want)
			}
		})
	}
}

func TestStampOf(t *testing.T) {
	got := stampOf(3, keyAddr(netip.MustParseAddr("10.0.0.1")), 12, 1_500_000_000)
	want := Stamp{Ifindex: 3, Addr: netip.MustParseAddr("10.0.0.1"), Count: 12, Last: 1500 * time.Millisecond}
	if got != want {
		t.Errorf("stampOf = %+v, want %+v", got, want)
	}
	if !got.Addr.Is4() {
		t.Errorf("address %v is not IPv4", got.Addr)
	}
	if s, want := got.String(), "10.0.0.1 on ifindex 3: 12 heartbeats, last at 1.5s"; s != want {
		t.Errorf("String() = %q, want %q", s, want)
	}
}

func TestSortStamps(t *testing.T) {
	st := func(ifindex int, addr string) Stamp {
		return Stamp{Ifindex: ifindex, Addr: netip.MustParseAddr(addr)}
	}
	got := []Stamp{st(4, "10.0.0.1"), st(3, "2001:db8::1"), st(3, "10.0.0.9"), st(3, "10.0.0.10"), st(1, "fe80::1")}
	sortStamps(got)
	want := []Stamp{st(1, "fe80::1"), st(3, "10.0.0.9"), st(3, "10.0.0.10"), st(3, "2001:db8::1"), st(4, "10.0.0.1")}
	if !slices.Equal(got, want) {
		t.Errorf("sorted:\n%v\nwant\n%v", got, want)
	}
}

func TestDevLabel(t *testing.T) {
	for _, c := range []struct {
		name    string
		ifindex int
		want    string
	}{
		{"eth0", 3, "eth0 (ifindex 3)"},
		{"", 999999, "ifindex 999999"},
	} {
		if got := devLabel(c.name, c.ifindex); got != c.want {
			t.Errorf("devLabel(%q, %d) = %q, want %q", c.name, c.ifindex, got, c.want)
		}
	}
}

func TestSupportString(t *testing.T) {
	cause := errors.New("operation not permitted")
	for _, c := range []struct {
		name string
		s    Support
		want string
	}{
		{"all", Support{}, "stamping: yes; block I/O: yes; exits: yes"},
		{"no ring buffers", Support{Exits: notSupported("ring buffers unsupported", cause)},
			"stamping: yes; block I/O: yes; exits: no (ring buffers unsupported)"},
		{"foreign error", Support{BlockIO: fmt.Errorf("wrapped: %w", notSupported("no tracepoint block/block_rq_issue", nil)), Stamping: cause},
			"stamping: no (operation not permitted); block I/O: no (no tracepoint block/block_rq_issue); exits: yes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.s.String(); got != c.want {
				t.Errorf("String() = %q, want %q", got, c.want)
			}
		})
	}
}

func TestNotSupported(t *testing.T) {
	cause := errors.New("invalid argument")
	err := notSupported("TCX unsupported", cause)
	if !errors.Is(err, ErrUnsupported) || !errors.Is(err, cause) {
		t.Errorf("%v does not wrap both ErrUnsupported and its cause", err)
	}
	if got, want := err.Error(), "TCX unsupported: invalid argument"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	bare := notSupported("eBPF needs Linux", nil)
	if !errors.Is(bare, ErrUnsupported) || bare.Error() != "eBPF needs Linux" {
		t.Errorf("bare error %q: Is(ErrUnsupported) = %v", bare, errors.Is(bare, ErrUnsupported))
	}
}

func TestProgramInfoString(t *testing.T) {
	p := ProgramInfo{Name: "hb_stamp", ID: 42, Tag: "0123456789abcdef", Kind: "tcx ingress"}
	if got, want := p.String(), "hb_stamp (id 42, tag 0123456789abcdef, tcx ingress) not attached"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	p.Attached = []string{"eth0 (ifindex 3)", "eth1 (ifindex 4)"}
	if got, want := p.String(), "hb_stamp (id 42, tag 0123456789abcdef, tcx ingress) on eth0 (ifindex 3), eth1 (ifindex 4)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
