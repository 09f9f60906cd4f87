package config

import (
	"slices"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/fence/cluster"
)

func defaultTiming() cluster.Timing { return Default().Spec().Timing }

func TestDefaultTimingPasses(t *testing.T) {
	if ps := CheckTiming(defaultTiming()); len(ps) != 0 {
		t.Fatalf("defaults break timing rules: %v", ps)
	}
}

// TestCheckTiming breaks one rule per case, starting from the defaults, and
// wants a problem on the key that rule names (and on no other key).
func TestCheckTiming(t *testing.T) {
	const ms, s = time.Millisecond, time.Second
	tests := []struct {
		name string
		mut  func(t *cluster.Timing)
		want []string
	}{
		{"1 heartbeat zero", func(t *cluster.Timing) { t.Heartbeat = 0 }, []string{"timing.heartbeat"}},
		{"1 link timeout below 3 heartbeats", func(t *cluster.Timing) { t.LinkTimeout = 299 * ms }, []string{"timing.link_timeout"}},
		{"1 link timeout exactly 3 heartbeats", func(t *cluster.Timing) { t.LinkTimeout = 300 * ms }, nil},
		{"2 grace below link timeout", func(t *cluster.Timing) { t.Grace = 400 * ms }, []string{"timing.grace"}},
		{"3 datastore interval below heartbeat", func(t *cluster.Timing) { t.DatastoreInterval = 50 * ms; t.LeaseTimeout = 4 * s },
			[]string{"timing.datastore_interval"}},
		{"3 datastore interval zero", func(t *cluster.Timing) { t.Heartbeat = 0; t.DatastoreInterval = 0 },
			[]string{"timing.heartbeat", "timing.datastore_interval"}},
		{"3 io timeout zero", func(t *cluster.Timing) { t.IOTimeout = 0; t.WatchdogTimeout = 1 * s }, []string{"timing.io_timeout"}},
		// W >= io + r and W <= L imply L >= r + io, so rule 4's first half
		// never breaks alone.
		{"4 lease below r + io", func(t *cluster.Timing) { t.IOTimeout = 3500 * ms; t.Grace = 1 * s },
			[]string{"timing.lease_timeout", "timing.watchdog_timeout"}},
		{"4 lease below 2r + grace", func(t *cluster.Timing) { t.Grace = 3 * s }, []string{"timing.lease_timeout"}},
		{"5 watchdog below io + r", func(t *cluster.Timing) { t.WatchdogTimeout = 2 * s }, []string{"timing.watchdog_timeout"}},
		{"6 watchdog above lease", func(t *cluster.Timing) { t.WatchdogTimeout = 5 * s }, []string{"timing.watchdog_timeout"}},
		{"6 watchdog not whole seconds", func(t *cluster.Timing) { t.WatchdogTimeout = 3500 * ms }, []string{"timing.watchdog_timeout"}},
		{"6 watchdog below 1s", func(t *cluster.Timing) {
			t.DatastoreInterval, t.IOTimeout, t.WatchdogTimeout = 100*ms, 100*ms, 500*ms
		}, []string{"timing.watchdog_timeout"}},
		{"7 margin below 100ms", func(t *cluster.Timing) { t.Margin = 99 * ms }, []string{"timing.margin"}},
		{"7 margin below 1% of L + W", func(t *cluster.Timing) {
			t.LeaseTimeout, t.WatchdogTimeout, t.Margin, t.FenceTimeout = 60*s, 60*s, 1*s, 5*time.Minute
		}, []string{"timing.margin"}},
		{"8 fence timeout below L + W + margin", func(t *cluster.Timing) { t.FenceTimeout = 8 * s }, []string{"timing.fence_timeout"}},
		{"8 fence timeout exactly L + W + margin", func(t *cluster.Timing) { t.FenceTimeout = 9 * s }, nil},
		{"9 bmc poll zero", func(t *cluster.Timing) { t.BMCPoll = 0 }, []string{"timing.bmc_poll"}},
		{"9 bmc poll not below fence timeout", func(t *cluster.Timing) { t.BMCPoll = 20 * s }, []string{"timing.bmc_poll"}},
		{"negative value", func(t *cluster.Timing) { t.Grace = -s }, []string{"timing.grace"}},
		{"over an hour", func(t *cluster.Timing) { t.FenceTimeout = 2 * time.Hour }, []string{"timing.fence_timeout"}},
		{"huge values do not overflow", func(t *cluster.Timing) {
			t.LeaseTimeout, t.WatchdogTimeout, t.Margin = 1<<62, 1<<62, 1<<62
		}, []string{"timing.lease_timeout", "timing.watchdog_timeout", "timing.margin"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tm := defaultTiming()
			tt.mut(&tm)
			ps := CheckTiming(tm)
			got := slices.Compact(ps.Keys())
			if !slices.Equal(got, tt.want) {
				t.Errorf("keys = %q, want %q\n%v", got, tt.want, ps)
			}
			for _, p := range ps {
				if p.Msg == "" || p.Fix == "" {
					t.Errorf("problem without message or fix: %+v", p)
				}
			}
		})
	}
}

// TestCheckTimingQuotesRule makes sure the messages carry the reasons.
func TestCheckTimingQuotesRule(t *testing.T) {
	tm := defaultTiming()
	tm.WatchdogTimeout = 2 * time.Second
	ps := CheckTiming(tm)
	if len(ps) != 1 {
		t.Fatalf("problems = %v, want one", ps)
	}
	want := "watchdog_timeout (2s) must be at least io_timeout + datastore_interval (3s): the lease rule, a hung renewal cannot outlive the watchdog"
	if ps[0].Msg != want {
		t.Errorf("msg = %q, want %q", ps[0].Msg, want)
	}
	if ps[0].Fix != "raise watchdog_timeout to 3s or lower io_timeout" {
		t.Errorf("fix = %q", ps[0].Fix)
	}
}
