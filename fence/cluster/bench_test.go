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

// BenchmarkTick64 is one tick of a joined host in a steady 64-host cluster
// (its datastore answers at once; every peer is heard every interval).
func BenchmarkTick64(b *testing.B) {
	s := testSpec(64, 0)
	s.Links = 1
	w := newBench(nil, s, 5)
	msgs := make([]*hb.Message, 64)
	for i := range msgs {
		msgs[i] = &hb.Message{From: i, Incarnation: 1, Version: 1, Coordinator: -1}
	}
	beat := func() {
		for _, m := range msgs {
			if !w.n.Heard(w.now, m) {
				w.step(Received{Msg: m})
			}
		}
	}
	for w.now < 5*time.Second {
		w.now += 100 * time.Millisecond
		beat()
		w.step(Tick{})
	}
	if !w.n.joined {
		b.Fatal("the node never joined")
	}
	for b.Loop() {
		w.now += 100 * time.Millisecond
		for i := range w.n.hot {
			w.n.hot[i].net.Link(0).Heard(w.now)
		}
		w.step(Tick{})
	}
}
