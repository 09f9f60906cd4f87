package cluster

import (
	"testing"
	"time"

	"github.com/vigil-ha/vigil/hb"
)

// stalledRun ticks like bench.run, but peer 1 is the only one whose
// heartbeats the agent reads; before each tick the agent reports health:
// every heartbeat it read waited delay, and, with kernel, the kernel
// received peer 2's heartbeats on both links that the agent did not read.
func (b *bench) stalledRun(until, delay time.Duration, kernel bool) {
	for b.now < until {
		b.now += 100 * msec
		for l := 0; l < b.n.spec.Links; l++ {
			b.step(Received{Msg: &hb.Message{From: 1, Incarnation: 1, Link: l, Coordinator: -1}})
		}
		if b.now%time.Second == 0 {
			for _, p := range []int{1, 2} { // both still write their slots
				c := *b.slots[p]
				c.Counter++
				b.slots[p] = &c
			}
		}
		h := LocalHealth{Delay: delay, Read: b.n.spec.Links}
		if kernel {
			for l := 0; l < b.n.spec.Links; l++ {
				h.Kernel = append(h.Kernel, KernelSeen{Host: 2, Link: l, At: b.now - 5*msec, Unread: 1})
			}
		}
		b.step(h)
		b.step(Tick{})
	}
}

func TestStallKernelEvidenceKeepsPeerHeard(t *testing.T) {
	for _, tc := range []struct {
		name   string
		delay  time.Duration
		kernel bool
		heard  bool
	}{
		// The agent is behind (its heartbeats wait 600 ms) and the kernel
		// received h3's heartbeats the agent never got to: h3 is not silent.
		{name: "stalled, kernel saw it", delay: 600 * msec, kernel: true, heard: true},
		// Not stalled, and the agent reads nothing of h3: the kernel's count
		// alone (a firewall, forged packets) keeps nobody alive.
		{name: "keeping up, kernel saw it", delay: 0, kernel: true, heard: false},
		{name: "stalled, no kernel evidence", delay: 600 * msec, kernel: false, heard: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBench(t, testSpec(3, 0), 0)
			b.run(5*time.Second, 1, 2)
			b.stalledRun(8*time.Second, tc.delay, tc.kernel)
			if got := b.n.hears.Has(2); got != tc.heard {
				t.Fatalf("h3 heard %v, want %v; rows: %v", got, tc.heard, b.n.Explain(2, b.now))
			}
			if tc.delay > 0 && !b.logged("own stall: heartbeats waited up to 600ms") {
				t.Fatalf("no own-stall log: %v", b.logs)
			}
			if tc.delay == 0 && tc.kernel && !b.logged("h3 link0: the kernel received 1 heartbeats the agent did not read") {
				t.Fatalf("no kernel-gap log: %v", b.logs)
			}
		})
	}
}

func TestStallAccusesNobody(t *testing.T) {
	b := newBench(t, testSpec(3, 0), 0)
	b.run(5*time.Second, 1, 2)
	// h3 dies (network and slot), and this host's agent is 400 ms behind.
	for b.now < 9*time.Second {
		b.now += 100 * msec
		for l := 0; l < 2; l++ {
			b.step(Received{Msg: &hb.Message{From: 1, Incarnation: 1, Link: l, Coordinator: -1}})
		}
		b.step(LocalHealth{Delay: 400 * msec, Read: 2})
		b.step(Tick{})
	}
	if v := b.n.Verdicts()[2]; v != Suspect {
		t.Fatalf("verdict on h3 %s while stalled, want suspect; rows %v", v, b.n.Explain(2, b.now))
	}
	if st := b.n.Status(b.now); !st.Local.Stalled || st.Local.Lag != 400*msec {
		t.Fatalf("status %+v: want stalled, 400ms behind", st.Local)
	}
	b.step(LocalHealth{Delay: 10 * msec, Read: 2})
	b.run(10*time.Second, 1)
	if v := b.n.Verdicts()[2]; v != Failed {
		t.Fatalf("verdict on h3 %s after the stall, want failed", v)
	}
	if st := b.n.Status(b.now); st.Local.Stalled || st.Local.Stalls != 1 || st.Local.Last < 3*time.Second {
		t.Fatalf("status %+v: want one stall of about 4s, over", st.Local)
	}
}

func TestStallPastLeaseStopsPetting(t *testing.T) {
	b := newBench(t, testSpec(3, 0), 0)
	b.run(5*time.Second, 1, 2)
	pets := b.pets
	b.stalledRun(8*time.Second, 700*msec, true)
	if b.pets <= pets {
		t.Fatalf("a 3s stall stopped the watchdog: the lease timeout is 4s")
	}
	b.stalledRun(11*time.Second, 700*msec, true)
	stopped := b.pets
	b.stalledRun(12*time.Second, 700*msec, true)
	if b.pets != stopped || !b.logged("not petting the watchdog") {
		t.Fatalf("pets %d -> %d: a 6s stall must stop petting", stopped, b.pets)
	}
	if st := b.n.Status(b.now); !st.Local.NotPetting {
		t.Fatalf("status %+v: want not petting", st.Local)
	}
	b.step(LocalHealth{Delay: 5 * msec, Read: 4})
	b.run(13*time.Second, 1, 2)
	if b.pets == stopped || !b.logged("own stall over: it lasted") {
		t.Fatalf("the stall ended but petting did not resume")
	}
}

func TestStallHoldsIsolation(t *testing.T) {
	b := newBench(t, testSpec(3, 0), 0)
	b.run(5*time.Second, 1, 2)
	for b.now < 9*time.Second {
		b.now += 100 * msec
		b.step(LocalHealth{Delay: time.Second})
		b.step(Tick{})
	}
	if b.n.Self() == SelfIsolated {
		t.Fatalf("a stalled agent declared its host isolated")
	}
	for b.now < 12*time.Second {
		b.now += 100 * msec
		b.step(LocalHealth{})
		b.step(Tick{})
	}
	if b.n.Self() != SelfIsolated {
		t.Fatalf("self %s once the agent keeps up and still hears nobody: want isolated", b.n.Self())
	}
}

func TestStoreIODownIsStorageEvidence(t *testing.T) {
	for _, down := range []bool{false, true} {
		b := newBench(t, testSpec(3, 0), 0)
		b.run(5*time.Second, 1, 2)
		if down {
			// The kernel sees this host's datastore path stuck, while reads
			// still answer from a cache: h3's stale slot is no evidence.
			b.step(StoreIO{DS: 0, Down: true, Why: "3 requests stuck for 60ms"})
		}
		b.run(12*time.Second, 1)
		want := Failed
		if down {
			want = Partitioned
		}
		if got := b.n.Verdicts()[2]; got != want {
			t.Fatalf("kernel down %v: verdict on h3 %s, want %s; rows %v", down, got, want, b.n.Explain(2, b.now))
		}
		st := b.n.Status(b.now)
		if st.Datastores[0].Down != down {
			t.Fatalf("status %+v: want down %v", st.Datastores[0], down)
		}
		if down && !b.logged("datastore 0: all paths down (kernel: 3 requests stuck for 60ms)") {
			t.Fatalf("no log of the kernel's judgement: %v", b.logs)
		}
	}
	b := newBench(t, testSpec(3, 0), 0)
	b.step(StoreIO{DS: 5, Down: true})
	b.step(StoreIO{DS: 0, Down: false})
	b.run(time.Second, 1, 2)
	if b.logged("all paths down") || b.logged("complete again") {
		t.Fatalf("an out-of-range or unchanged StoreIO was acted on: %v", b.logs)
	}
}
