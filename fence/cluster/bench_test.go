package cluster

import (
	"testing"
	"time"

	"github.com/vigil-ha/vigil/hb"
)

// BenchmarkReceive is the hot path of every host: one heartbeat from a peer
// whose view did not change.
func BenchmarkReceive(b *testing.B) {
	s := testSpec(64, 0)
	s.Links = 1
	n := NewNode(Config{Spec: s, Self: 0, Incarnation: 1})
	msgs := make([]*hb.Message, 64)
	for i := range msgs {
		msgs[i] = &hb.Message{From: i, Incarnation: 1, Version: 1, Coordinator: -1}
	}
	now := time.Second
	n.Step(now, Tick{})
	i := 1
	for b.Loop() {
		now += time.Millisecond
		n.Step(now, Received{Msg: msgs[i]})
		if i++; i == 64 {
			i = 1
		}
	}
}

// BenchmarkTick64 is one tick of a host in a steady 64-host cluster.
func BenchmarkTick64(b *testing.B) {
	s := testSpec(64, 0)
	s.Links = 1
	n := NewNode(Config{Spec: s, Self: 5, Incarnation: 1})
	now := time.Second
	for i := 0; i < 64; i++ {
		n.Step(now, Received{Msg: &hb.Message{From: i, Incarnation: 1, Version: 1, Coordinator: -1}})
	}
	for b.Loop() {
		now += 100 * time.Millisecond
		n.Step(now, Tick{})
		for i := 0; i < 64; i++ {
			n.hot[i].net.Link(0).Heard(now)
		}
	}
}
