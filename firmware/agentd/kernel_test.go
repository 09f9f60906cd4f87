package agentd

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestChoose(t *testing.T) {
	unsup := errors.New("kernel too old")
	for _, tc := range []struct {
		mode    string
		support error
		open    bool
		why     string
		fail    string
	}{
		{mode: "auto", open: true},
		{mode: "on", open: true},
		{mode: "off", why: "off in the configuration"},
		{mode: "off", support: unsup, why: "off in the configuration"},
		{mode: "auto", support: unsup, why: "kernel too old"},
		{mode: "on", support: unsup, fail: `ebpf exits is "on" but this host cannot run it: kernel too old (set exits = "auto" under [ebpf] to fall back to pidfds)`},
	} {
		open, why, err := choose(FeatureExits, tc.mode, tc.support)
		if tc.fail != "" {
			if err == nil || !strings.Contains(err.Error(), tc.fail) {
				t.Errorf("%s/%v: err %v, want %q", tc.mode, tc.support, err, tc.fail)
			}
			continue
		}
		if err != nil || open != tc.open || why != tc.why {
			t.Errorf("%s/%v: open %v why %q err %v; want open %v why %q", tc.mode, tc.support, open, why, err, tc.open, tc.why)
		}
	}
}

func TestParseEBPF(t *testing.T) {
	m := map[string]string{}
	for _, ok := range []string{"stamping=off", "block_io=on", "exits=auto"} {
		if err := ParseEBPF(m, ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	if m["stamping"] != "off" || m["block_io"] != "on" || m["exits"] != "auto" {
		t.Errorf("parsed %v", m)
	}
	for bad, want := range map[string]string{
		"stamping":      "want FEATURE=MODE",
		"stamps=off":    "unknown feature",
		"exits=maybe":   "unknown mode",
		"block_io=On":   "unknown mode",
		"=off":          "unknown feature",
		"stamping=off=": "unknown mode",
	} {
		if err := ParseEBPF(m, bad); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", bad, err, want)
		}
	}
}

// TestLocalHealthUnread: the kernel's count against what the agent read,
// per peer and link: the first snapshot is a baseline; heartbeats the
// kernel counted that the agent never read are reported once; a packet the
// agent read before the kernel's count caught up is no loss; a kernel
// arrival in the last moments before the snapshot waits for the next.
func TestLocalHealthUnread(t *testing.T) {
	d := &daemon{self: 0, kern: &kernel{seen: [][]seenCount{make([]seenCount, 1), make([]seenCount, 1)}}}
	c := &d.kern.seen[1][0]
	step := func(kernel, read uint64, at, now time.Duration) uint64 {
		c.kernel, c.read, c.at = kernel, read, at
		h := d.localHealth(now)
		var n uint64
		for _, k := range h.Kernel {
			if k.Host != 1 || k.Link != 0 || k.At != at {
				t.Fatalf("kernel evidence %+v", k)
			}
			n += k.Unread
		}
		return n
	}
	if n := step(50, 0, time.Second, 2*time.Second); n != 0 {
		t.Fatalf("baseline reported %d unread", n)
	}
	if n := step(60, 10, 2*time.Second, 3*time.Second); n != 0 {
		t.Fatalf("all read: %d unread", n)
	}
	if n := step(70, 11, 3*time.Second, 4*time.Second); n != 9 {
		t.Fatalf("9 never read: reported %d", n)
	}
	if n := step(80, 21, 4*time.Second, 5*time.Second); n != 0 {
		t.Fatalf("the same loss reported again: %d", n)
	}
	if n := step(80, 22, 4*time.Second, 6*time.Second); n != 0 {
		t.Fatalf("read ahead of the count: %d", n)
	}
	if n := step(83, 22, 6*time.Second-time.Millisecond, 6*time.Second); n != 0 {
		t.Fatalf("an arrival 1ms before the snapshot judged: %d", n)
	}
	if n := step(83, 22, 6*time.Second-time.Millisecond, 7*time.Second); n != 2 {
		t.Fatalf("2 lost (83-22 against 80-21): reported %d", n)
	}
	d.delay, d.readN = 300*time.Millisecond, 7
	if h := d.localHealth(8 * time.Second); h.Delay != 300*time.Millisecond || h.Read != 7 || d.delay != 0 || d.readN != 0 {
		t.Fatalf("health %+v, then delay %v read %d", h, d.delay, d.readN)
	}
}

func TestReadFromCountsByAddress(t *testing.T) {
	k := &kernel{seen: [][]seenCount{make([]seenCount, 2), make([]seenCount, 2)},
		links: []stampLink{{hosts: map[netip.Addr]int{netip.MustParseAddr("10.0.0.2"): 1}}, {hosts: map[netip.Addr]int{netip.MustParseAddr("fd00::2"): 1}}}}
	k.readFrom(0, netip.MustParseAddr("::ffff:10.0.0.2"))
	k.readFrom(1, netip.MustParseAddr("fd00::2"))
	k.readFrom(1, netip.MustParseAddr("fd00::3")) // no peer's
	k.readFrom(5, netip.MustParseAddr("fd00::2")) // no such link
	if k.seen[1][0].read != 1 || k.seen[1][1].read != 1 || k.seen[0][0].read+k.seen[0][1].read != 0 {
		t.Fatalf("counts %+v", k.seen)
	}
}
