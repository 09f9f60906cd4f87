package hb

import (
	"testing"
	"time"
)

// BenchmarkHeard is one heartbeat arriving on a link that is heard steadily,
// with a little jitter so that the estimate keeps moving.
func BenchmarkHeard(b *testing.B) {
	cfg := DefaultDetectorConfig()
	l := NewLink(&cfg)
	var now time.Duration
	var i int
	b.ReportAllocs()
	for b.Loop() {
		now += 100*time.Millisecond + time.Duration(i&15)*time.Millisecond
		l.Heard(now)
		i++
	}
}

// BenchmarkPeerState is the verdict on a peer, with n links.
func BenchmarkPeerState(b *testing.B) {
	for _, bc := range []struct {
		name string
		n    int
		cut  int // links whose carrier is lost
	}{
		{"2links/up", 2, 0},
		{"2links/one-cut", 2, 1},
		{"8links/seven-cut", 8, 7},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := DefaultDetectorConfig()
			var p Peer
			p.Init(bc.n, &cfg)
			for at := time.Duration(0); at <= time.Second; at += 100 * time.Millisecond {
				for i := range p.Links() {
					p.Link(i).Heard(at)
				}
			}
			for i := range bc.cut {
				p.Link(i).CarrierDown(time.Second)
			}
			now := time.Second
			var up int
			b.ReportAllocs()
			for b.Loop() {
				now += time.Millisecond
				if now > 1500*time.Millisecond {
					now = time.Second
				}
				if p.State(now, &cfg) == Up {
					up++
				}
			}
			if up == 0 {
				b.Fatal("peer never up")
			}
		})
	}
}
