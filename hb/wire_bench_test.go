package hb

import (
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkWireRoundTrip is one heartbeat encoded, signed, verified and
// decoded, with no assignments and with 32.
func BenchmarkWireRoundTrip(b *testing.B) {
	for _, n := range []int{0, 32} {
		b.Run(map[int]string{0: "assignments=0", 32: "assignments=32"}[n], func(b *testing.B) {
			c := NewCodec(testCluster, testRing(b, testKey("a"), testKey("b")))
			m := randMessage(rand.New(rand.NewPCG(17, 18)), n)
			var got Message
			buf := make([]byte, 0, MaxPacket)
			wall := time.Now()
			b.ReportAllocs()
			for b.Loop() {
				m.Seq++
				pkt, err := c.Encode(buf[:0], &m)
				if err != nil {
					b.Fatal(err)
				}
				if err := c.Decode(pkt, &got, wall); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(MinPacket + n*assignmentSize))
		})
	}
}

// BenchmarkDecodeForged is the cost of refusing a packet with a bad tag:
// what a flood of forged heartbeats costs a receiver.
func BenchmarkDecodeForged(b *testing.B) {
	c := NewCodec(testCluster, testRing(b, testKey("a")))
	m := randMessage(rand.New(rand.NewPCG(19, 20)), 0)
	pkt, err := c.Encode(nil, &m)
	if err != nil {
		b.Fatal(err)
	}
	pkt[len(pkt)-1] ^= 1
	var got Message
	b.ReportAllocs()
	for b.Loop() {
		if Reason(c.Decode(pkt, &got, time.Time{})) != BadMAC {
			b.Fatal("forged packet not refused as bad-mac")
		}
	}
}

// BenchmarkReplayCheck is one in-order packet through the replay guard.
func BenchmarkReplayCheck(b *testing.B) {
	g := NewReplayGuard(MaxHosts, 2)
	var seq uint64
	b.ReportAllocs()
	for b.Loop() {
		seq++
		if g.Check(int(seq%MaxHosts), 1, 1, seq) != nil {
			b.Fatal("in-order packet refused")
		}
	}
}
