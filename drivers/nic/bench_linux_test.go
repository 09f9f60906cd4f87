//go:build linux

package nic

import (
	"net/netip"
	"testing"
	"time"
)

// BenchmarkSend sends one heartbeat-sized datagram to one peer per op,
// across a veth pair to a host that reads them.
func BenchmarkSend(b *testing.B) {
	l := newLab(b)
	a := mustOpenIn(b, l.a, hostConfig(b, 0))
	peer := mustOpenIn(b, l.b, hostConfig(b, 1))
	peer.Run(func(int, []byte, netip.AddrPort, time.Time) {}, nil)
	pkt := make([]byte, 128)
	if err := a.Send(0, pkt); err != nil {
		b.Fatalf("Send: %v", err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = a.Send(0, pkt)
	}
}
