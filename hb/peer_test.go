package hb

import (
	"math"
	"testing"
	"time"
)

func TestPeer(t *testing.T) {
	cfg := testConfig
	var p Peer
	p.Init(2, &cfg)
	if s := p.State(0, &cfg); s != Down {
		t.Fatalf("never heard peer is %v, want down", s)
	}
	if _, ok := p.LastHeard(); ok {
		t.Fatal("never heard peer reports a heartbeat")
	}
	if d := p.SilentFor(time.Hour); d != math.MaxInt64 {
		t.Fatalf("never heard peer silent for %v, want MaxInt64", d)
	}

	for at := time.Duration(0); at <= time.Second; at += 100 * ms {
		p.Link(0).Heard(at)
		p.Link(1).Heard(at + 10*ms)
	}
	// Link 1 is cut: its NIC loses carrier, link 0 still carries heartbeats.
	p.Link(1).CarrierDown(1050 * ms)
	for at := 1100 * ms; at <= 3*time.Second; at += 100 * ms {
		p.Link(0).Heard(at)
		if s := p.Link(1).State(at, &cfg); s != Down {
			t.Fatalf("cut link is %v at %v", s, at)
		}
		if s := p.State(at, &cfg); s != Up {
			t.Fatalf("peer is %v at %v with one link up", s, at)
		}
	}
	if at, _ := p.LastHeard(); at != 3*time.Second {
		t.Errorf("LastHeard() = %v, want 3s (latest over links)", at)
	}

	// Link 0 goes silent too: the peer follows its best link.
	for _, tc := range []struct {
		at     time.Duration
		want   LinkState
		silent time.Duration
	}{
		{3 * time.Second, Up, 0},
		{2 * time.Second, Up, 0}, // before the last heartbeat
		{3*time.Second + 250*ms, Up, 250 * ms},
		{3*time.Second + 251*ms, Suspect, 251 * ms},
		{3*time.Second + 501*ms, Down, 501 * ms},
	} {
		if s := p.State(tc.at, &cfg); s != tc.want {
			t.Errorf("peer at %v is %v, want %v", tc.at, s, tc.want)
		}
		if d := p.SilentFor(tc.at); d != tc.silent {
			t.Errorf("peer at %v silent for %v, want %v", tc.at, d, tc.silent)
		}
	}

	// One link suspect, the other down: suspect.
	p.Link(1).Heard(3*time.Second + 100*ms)
	if s := p.State(3*time.Second+400*ms, &cfg); s != Suspect {
		t.Errorf("peer with a suspect and a down link is %v, want suspect", s)
	}

	// The local agent stalls: every link's silence clock restarts.
	p.Restart(10 * time.Second)
	if s := p.State(10*time.Second, &cfg); s != Up {
		t.Errorf("peer after restart is %v, want up (the link restored after its carrier loss)", s)
	}
	if got := len(p.Links()); got != 2 {
		t.Errorf("len(Links()) = %d, want 2", got)
	}
}

func TestPeerInitPanics(t *testing.T) {
	cfg := testConfig
	for _, n := range []int{0, -1, MaxLinks + 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Init(%d) did not panic", n)
				}
			}()
			var p Peer
			p.Init(n, &cfg)
		}()
	}
	var p Peer
	p.Init(MaxLinks, &cfg)
	if len(p.Links()) != MaxLinks {
		t.Errorf("Init(MaxLinks) gave %d links", len(p.Links()))
	}
}

// FuzzLink drives a link with arbitrary events and checks its invariants:
// the silence clock never runs backwards, the timeout stays within its
// bounds, and the state agrees with the silence and the timeout.
func FuzzLink(f *testing.F) {
	f.Add([]byte{0, 10, 0, 10, 1, 5, 0, 3, 2, 40, 0, 50})
	f.Add([]byte{0, 255, 0, 1, 0, 255, 3, 0, 0, 7})
	f.Fuzz(func(t *testing.T, script []byte) {
		cfg := testConfig
		l := NewLink(&cfg)
		var now time.Duration
		for i := 0; i+1 < len(script); i += 2 {
			// Events at now plus or minus up to 1.27 s, in 10 ms steps.
			at := now + time.Duration(int8(script[i+1]))*10*ms
			now = max(now, at)
			before, wasHeard := l.LastHeard()
			switch script[i] % 4 {
			case 0:
				l.Heard(at)
			case 1:
				l.CarrierDown(at)
			case 2:
				l.Restart(at)
			case 3:
				l.Init(&cfg)
				wasHeard = false
			}
			last, heard := l.LastHeard()
			if wasHeard && (!heard || last < before) {
				t.Fatalf("event %d: silence clock went back from %v to %v", i/2, before, last)
			}
			to := l.Timeout(&cfg)
			if to < cfg.Floor || to > cfg.Ceiling {
				t.Fatalf("event %d: timeout %v out of [%v, %v]", i/2, to, cfg.Floor, cfg.Ceiling)
			}
			s := l.State(now, &cfg)
			switch silence := now - last; {
			case !heard && s != Down:
				t.Fatalf("event %d: never heard but %v", i/2, s)
			case s == Up && silence > to/2, s == Suspect && (silence <= to/2 || silence > to):
				t.Fatalf("event %d: %v after %v of silence with timeout %v", i/2, s, silence, to)
			}
		}
	})
}

func TestOutageIsNotJitter(t *testing.T) {
	cfg := DetectorConfig{Interval: 100 * time.Millisecond, Floor: 500 * time.Millisecond}
	var l Link
	l.Init(&cfg)
	now := time.Duration(0)
	for i := 0; i < 50; i++ {
		now += 100 * time.Millisecond
		l.Heard(now)
	}
	before := l.Timeout(&cfg)
	now += 20 * time.Second // a partition, then it heals
	for i := 0; i < 3; i++ {
		l.Heard(now)
		now += 100 * time.Millisecond
	}
	if after := l.Timeout(&cfg); after != before {
		t.Fatalf("timeout %v after a healed 20s outage, %v before: the outage was learnt as jitter", after, before)
	}
}

// TestResetForgetsTheGap: after a Reset (the peer restarted), the gap
// between the last heartbeat of the old life and the first of the new is no
// sample, and the estimate starts afresh.
func TestResetForgetsTheGap(t *testing.T) {
	cfg := &DetectorConfig{Interval: 100 * time.Millisecond, Floor: 500 * time.Millisecond}
	for _, reset := range []bool{false, true} {
		var l Link
		l.Init(cfg)
		now := time.Duration(0)
		for i := 0; i < 50; i++ {
			now += 100 * time.Millisecond
			l.Heard(now)
		}
		if reset {
			l.Reset(cfg)
		}
		now += 900 * time.Millisecond // the restart: under the outage bound, so a sample unless reset
		l.Heard(now)
		mean, _ := l.Estimate(cfg)
		if learnt := mean > 150*time.Millisecond; learnt == reset {
			t.Errorf("reset=%v: mean %v after a 900 ms gap", reset, mean)
		}
		if st := l.State(now+400*time.Millisecond, cfg); st == Down {
			t.Errorf("reset=%v: down 400 ms after a heartbeat", reset)
		}
	}
}
