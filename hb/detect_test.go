package hb

import (
	"math"
	"testing"
	"time"
	"unsafe"
)

const ms = time.Millisecond

// testConfig: a fresh link's timeout (4 x Interval) sits below the floor, so
// a link is up for 250 ms of silence and suspect for 250 ms more.
var testConfig = DetectorConfig{Interval: 100 * ms, Floor: 500 * ms, Ceiling: 2 * time.Second}

func TestAdaptiveTimeout(t *testing.T) {
	cfg := testConfig
	for _, tc := range []struct {
		name      string
		mean, dev time.Duration
		cfg       DetectorConfig
		want      time.Duration
	}{
		{name: "steady link stays at the floor", mean: 100 * ms, dev: 0, cfg: cfg, want: 500 * ms},
		{name: "fresh link starts below the floor", mean: 100 * ms, dev: 25 * ms, cfg: cfg, want: 500 * ms},
		{name: "exactly at the floor", mean: 50 * ms, dev: 50 * ms, cfg: cfg, want: 500 * ms},
		{name: "jitter raises it", mean: 120 * ms, dev: 80 * ms, cfg: cfg, want: 880 * ms},
		{name: "slow sender raises it", mean: 400 * ms, dev: 0, cfg: cfg, want: 800 * ms},
		{name: "clamped at the ceiling", mean: 300 * ms, dev: 300 * ms, cfg: cfg, want: 2 * time.Second},
		{name: "exactly at the ceiling", mean: 600 * ms, dev: 100 * ms, cfg: cfg, want: 2 * time.Second},
		{name: "zero ceiling is 4 x floor", mean: time.Second, dev: time.Second,
			cfg: DetectorConfig{Interval: 100 * ms, Floor: 500 * ms}, want: 2 * time.Second},
		{name: "floor wins over a lower ceiling", mean: time.Second, dev: time.Second,
			cfg: DetectorConfig{Interval: 100 * ms, Floor: 500 * ms, Ceiling: 300 * ms}, want: 500 * ms},
		{name: "negative inputs count as zero", mean: -time.Second, dev: -time.Second, cfg: cfg, want: 500 * ms},
		{name: "huge mean saturates", mean: math.MaxInt64, dev: 0, cfg: cfg, want: 2 * time.Second},
		{name: "huge deviation saturates", mean: 0, dev: math.MaxInt64, cfg: cfg, want: 2 * time.Second},
		{name: "huge everything with a huge ceiling", mean: math.MaxInt64, dev: math.MaxInt64,
			cfg: DetectorConfig{Interval: 100 * ms, Floor: math.MaxInt64 / 2}, want: math.MaxInt64},
		{name: "no overflow just under a huge ceiling", mean: math.MaxInt64 / 4, dev: math.MaxInt64 / 16,
			cfg: DetectorConfig{Floor: time.Second, Ceiling: math.MaxInt64}, want: 2*(math.MaxInt64/4) + 8*(math.MaxInt64/16)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := AdaptiveTimeout(tc.mean, tc.dev, &tc.cfg); got != tc.want {
				t.Errorf("AdaptiveTimeout(%v, %v) = %v, want %v", tc.mean, tc.dev, got, tc.want)
			}
		})
	}
}

func TestDetectorConfigValidate(t *testing.T) {
	def := DefaultDetectorConfig()
	for _, tc := range []struct {
		name string
		cfg  DetectorConfig
		ok   bool
	}{
		{"default", def, true},
		{"test config", testConfig, true},
		{"no interval", DetectorConfig{Floor: time.Second}, false},
		{"floor below two intervals", DetectorConfig{Interval: 100 * ms, Floor: 150 * ms}, false},
		{"ceiling below floor", DetectorConfig{Interval: 100 * ms, Floor: time.Second, Ceiling: 500 * ms}, false},
		{"ceiling equal to floor", DetectorConfig{Interval: 100 * ms, Floor: time.Second, Ceiling: time.Second}, true},
		{"implied ceiling overflows", DetectorConfig{Interval: 100 * ms, Floor: math.MaxInt64 / 2}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

func TestLinkStateString(t *testing.T) {
	for s, want := range map[LinkState]string{Down: "down", Suspect: "suspect", Up: "up", 7: "LinkState(7)"} {
		if got := s.String(); got != want {
			t.Errorf("LinkState(%d).String() = %q, want %q", s, got, want)
		}
	}
}

// op is one step of a timeline: an event on the link, or a check of it.
type op uint8

const (
	heard op = iota
	carrierDown
	restart
	expect // check the state
)

type step struct {
	at   time.Duration
	op   op
	want LinkState
}

func hear(at time.Duration) step                  { return step{at: at, op: heard} }
func check(at time.Duration, want LinkState) step { return step{at: at, op: expect, want: want} }

// every returns a heartbeat every 100 ms from start to end inclusive.
func every(start, end time.Duration) []step {
	var s []step
	for at := start; at <= end; at += 100 * ms {
		s = append(s, hear(at))
	}
	return s
}

func timeline(parts ...[]step) []step {
	var s []step
	for _, p := range parts {
		s = append(s, p...)
	}
	return s
}

func TestLinkTimeline(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"never heard is down", []step{check(0, Down), check(time.Hour, Down)}},
		{"silence walks up, suspect, down", []step{
			hear(1000 * ms),
			check(1000*ms, Up), check(1250*ms, Up),
			check(1251*ms, Suspect), check(1500*ms, Suspect),
			check(1501*ms, Down), check(time.Hour, Down),
		}},
		{"a check before the last heartbeat is up", []step{hear(time.Second), check(0, Up)}},
		{"steady heartbeats stay up", timeline(every(0, 5*time.Second), []step{
			check(5*time.Second+250*ms, Up), check(5*time.Second+251*ms, Suspect),
		})},
		{"heard again after down", []step{
			hear(0), check(600*ms, Down), hear(700 * ms), check(700*ms, Up),
		}},
		{"carrier down then heard", []step{
			hear(0), hear(100 * ms),
			{at: 150 * ms, op: carrierDown}, check(150*ms, Down), check(200*ms, Down),
			hear(3 * time.Second), check(3*time.Second, Up), check(3*time.Second+250*ms, Up),
		}},
		{"heartbeat stamped before the carrier loss does not restore it", []step{
			hear(0), {at: 150 * ms, op: carrierDown},
			hear(120 * ms), check(150*ms, Down), check(200*ms, Down),
			hear(150 * ms), check(150*ms, Up),
		}},
		{"carrier loss older than the last heartbeat is stale", []step{
			hear(0), hear(200 * ms), {at: 150 * ms, op: carrierDown}, check(200*ms, Up),
		}},
		{"carrier down on a never heard link", []step{
			{at: 100 * ms, op: carrierDown}, hear(50 * ms), check(100*ms, Down),
			hear(200 * ms), check(200*ms, Up),
		}},
		{"restart after a stall", []step{
			hear(0), hear(100 * ms),
			// The agent stalled from 100 ms to 2 s: without the restart the peer would be down.
			check(2*time.Second, Down),
			{at: 2 * time.Second, op: restart},
			check(2*time.Second, Up), check(2*time.Second+250*ms, Up),
			check(2*time.Second+251*ms, Suspect), check(2*time.Second+501*ms, Down),
		}},
		{"heartbeats queued during a stall are ignored", []step{
			hear(0), {at: 2 * time.Second, op: restart},
			hear(1900 * ms), check(2*time.Second+251*ms, Suspect),
		}},
		{"restart on a never heard link keeps it down", []step{
			{at: time.Second, op: restart}, check(time.Second, Down),
		}},
		{"restart keeps a lost carrier down", []step{
			hear(0), {at: 50 * ms, op: carrierDown}, {at: 100 * ms, op: restart},
			check(100*ms, Down), hear(80 * ms), check(100*ms, Down), hear(120 * ms), check(120*ms, Up),
		}},
		{"reordered heartbeat does not move the clock back", []step{
			hear(0), hear(100 * ms), hear(50 * ms), check(350*ms, Up), check(351*ms, Suspect),
		}},
		{"duplicate heartbeat", []step{
			hear(100 * ms), hear(100 * ms), check(350*ms, Up), check(351*ms, Suspect),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig
			l := NewLink(&cfg)
			for i, s := range tc.steps {
				switch s.op {
				case heard:
					l.Heard(s.at)
				case carrierDown:
					l.CarrierDown(s.at)
				case restart:
					l.Restart(s.at)
				case expect:
					if got := l.State(s.at, &cfg); got != s.want {
						t.Errorf("step %d: state at %v = %v, want %v (timeout %v)", i, s.at, got, s.want, l.Timeout(&cfg))
					}
				}
			}
		})
	}
}

func TestLinkLastHeard(t *testing.T) {
	cfg := testConfig
	l := NewLink(&cfg)
	if _, ok := l.LastHeard(); ok {
		t.Fatal("fresh link reports a heartbeat")
	}
	l.Heard(0) // time 0 is a valid time on the monotonic clock
	if at, ok := l.LastHeard(); !ok || at != 0 {
		t.Fatalf("LastHeard() = %v, %v, want 0, true", at, ok)
	}
	l.Heard(300 * ms)
	l.Heard(200 * ms)
	l.CarrierDown(400 * ms)
	if at, _ := l.LastHeard(); at != 300*ms {
		t.Fatalf("LastHeard() = %v, want 300ms", at)
	}
	l.Restart(time.Second)
	if at, _ := l.LastHeard(); at != time.Second {
		t.Fatalf("LastHeard() after Restart = %v, want 1s", at)
	}
}

// jittered returns n arrival times every 100 ms from start, each moved by up
// to +-150 ms, so that many arrive out of order.
func jittered(start time.Duration, n int) []time.Duration {
	offsets := []time.Duration{0, 150, -150, 90, -60, 120, -140, 30, -90, 150, -20, -150}
	at := make([]time.Duration, n)
	for i := range at {
		at[i] = start + time.Duration(i)*100*ms + offsets[i%len(offsets)]*ms
	}
	return at
}

func TestJitterAdapts(t *testing.T) {
	cfg := testConfig
	l := NewLink(&cfg)
	now := time.Duration(0)
	for ; now <= 10*time.Second; now += 100 * ms {
		l.Heard(now)
	}
	if got := l.Timeout(&cfg); got != cfg.Floor {
		t.Fatalf("steady: timeout %v, want the floor %v", got, cfg.Floor)
	}

	var highest time.Duration
	for _, at := range jittered(now, 300) {
		if s := l.State(at, &cfg); s == Down {
			t.Fatalf("jittered: down at %v, timeout %v", at, l.Timeout(&cfg))
		}
		l.Heard(at)
		now = max(now, at)
		highest = max(highest, l.Timeout(&cfg))
	}
	got := l.Timeout(&cfg)
	mean, dev := l.Estimate(&cfg)
	t.Logf("jittered: mean %v dev %v timeout %v (highest %v)", mean, dev, got, highest)
	if got <= cfg.Floor {
		t.Errorf("jittered: timeout %v, want above the floor %v", got, cfg.Floor)
	}
	if highest > cfg.Ceiling {
		t.Errorf("jittered: timeout reached %v, above the ceiling %v", highest, cfg.Ceiling)
	}

	// A very slow, irregular sender pins the timeout at the ceiling.
	for i := range 50 {
		now += time.Duration(1+i%3) * time.Second
		l.Heard(now)
	}
	if got := l.Timeout(&cfg); got != cfg.Ceiling {
		t.Errorf("slow: timeout %v, want the ceiling %v", got, cfg.Ceiling)
	}

	// Back to steady: back to the floor.
	for range 200 {
		now += 100 * ms
		l.Heard(now)
	}
	if got := l.Timeout(&cfg); got != cfg.Floor {
		t.Errorf("steady again: timeout %v, want the floor %v", got, cfg.Floor)
	}
}

// TestReorderingKeepsEstimate feeds the same heartbeats to two links, one in
// order and one with late duplicates and stale stamps mixed in: their
// estimates and states must agree throughout.
func TestReorderingKeepsEstimate(t *testing.T) {
	cfg := testConfig
	inOrder, mixed := NewLink(&cfg), NewLink(&cfg)
	var now time.Duration
	for i := range 500 {
		now += time.Duration(80+(i*37)%60) * ms
		inOrder.Heard(now)
		mixed.Heard(now)
		mixed.Heard(now)                            // duplicate
		mixed.Heard(now - time.Duration(i%7)*10*ms) // late
		mixed.Heard(now - time.Hour)                // very late
		if inOrder != mixed {
			t.Fatalf("heartbeat %d at %v: %+v in order, %+v with reordering", i, now, inOrder, mixed)
		}
	}
}

func TestRestartKeepsEstimate(t *testing.T) {
	cfg := testConfig
	l := NewLink(&cfg)
	for _, at := range jittered(0, 200) {
		l.Heard(at)
	}
	mean, dev := l.Estimate(&cfg)
	last, _ := l.LastHeard()
	stall := last + 5*time.Second
	l.Restart(stall)
	l.Heard(stall - 10*ms) // queued during the stall
	l.Heard(stall + 30*ms) // restarts the clock, no gap sample
	if m, d := l.Estimate(&cfg); m != mean || d != dev {
		t.Errorf("estimate after restart = %v, %v; want %v, %v", m, d, mean, dev)
	}
	l.Heard(stall + 130*ms) // a real gap again
	if m, _ := l.Estimate(&cfg); m == mean {
		t.Errorf("estimate did not move after the first gap following the restart")
	}
}

func TestCarrierGapIsNotASample(t *testing.T) {
	cfg := testConfig
	l := NewLink(&cfg)
	for at := time.Duration(0); at <= time.Second; at += 100 * ms {
		l.Heard(at)
	}
	mean, dev := l.Estimate(&cfg)
	l.CarrierDown(1050 * ms)
	l.Heard(30 * time.Second)
	if m, d := l.Estimate(&cfg); m != mean || d != dev {
		t.Errorf("estimate after carrier loss = %v, %v; want %v, %v", m, d, mean, dev)
	}
}

func TestLinkWithoutInit(t *testing.T) {
	cfg := testConfig
	var l Link
	if m, d := l.Estimate(&cfg); m != cfg.Interval || d != cfg.Interval/4 {
		t.Errorf("estimate before any gap = %v, %v; want the configured start", m, d)
	}
	l.Heard(0)
	l.Heard(200 * ms)
	if m, d := l.Estimate(&cfg); m != 200*ms || d != 50*ms {
		t.Errorf("estimate after one gap = %v, %v; want 200ms, 50ms", m, d)
	}
	for at := 300 * ms; at < 20*time.Second; at += 100 * ms {
		l.Heard(at)
	}
	if m, _ := l.Estimate(&cfg); m < 99*ms || m > 101*ms {
		t.Errorf("mean after steady heartbeats = %v, want about 100ms", m)
	}
	if s := l.State(20*time.Second, &cfg); s != Up {
		t.Errorf("state = %v, want up", s)
	}
}

func TestLinkIsSmall(t *testing.T) {
	if size := unsafe.Sizeof(Link{}); size > 32 {
		t.Errorf("Link is %d bytes, want at most 32", size)
	}
}

func TestHeardDoesNotAllocate(t *testing.T) {
	cfg := testConfig
	var p Peer
	p.Init(2, &cfg)
	now := time.Duration(0)
	allocs := testing.AllocsPerRun(1000, func() {
		now += 100 * ms
		p.Link(0).Heard(now)
		_ = p.State(now, &cfg)
	})
	if allocs != 0 {
		t.Errorf("Heard and State allocate %v times per run", allocs)
	}
}
