package config

import (
	"fmt"
	"time"

	"github.com/vigil-ha/vigil/fence/cluster"
)

// maxTiming bounds every interval and timeout, so that no sum of them can
// overflow and no mistyped unit ("4h" for "4s") passes unnoticed.
const maxTiming = time.Hour

// CheckTiming checks the timing rules that keep the safety contract true and
// returns every rule t breaks. The defaults pass. The agent runs it again
// before it arms a watchdog, so a bad timing never causes a reboot loop.
//
//  1. heartbeat > 0; link_timeout >= 3 x heartbeat
//  2. grace >= link_timeout
//  3. datastore_interval >= heartbeat; io_timeout > 0
//  4. lease_timeout >= datastore_interval + io_timeout and
//     lease_timeout >= 2 x datastore_interval + grace
//  5. watchdog_timeout >= io_timeout + datastore_interval
//  6. watchdog_timeout <= lease_timeout, whole seconds, >= 1s
//  7. margin >= 100ms and margin >= (lease_timeout + watchdog_timeout)/100
//  8. fence_timeout >= max(lease_timeout, 5 x link_timeout + 2 x heartbeat)
//     + watchdog_timeout + margin
//  9. 0 < bmc_poll < fence_timeout
//
// Every value must also lie in [0, 1h]; a rule whose inputs do not is not
// checked.
func CheckTiming(t cluster.Timing) Problems {
	var ps Problems
	fields := []struct {
		name string
		v    time.Duration
	}{
		{"heartbeat", t.Heartbeat},
		{"link_timeout", t.LinkTimeout},
		{"datastore_interval", t.DatastoreInterval},
		{"io_timeout", t.IOTimeout},
		{"lease_timeout", t.LeaseTimeout},
		{"watchdog_timeout", t.WatchdogTimeout},
		{"margin", t.Margin},
		{"fence_timeout", t.FenceTimeout},
		{"grace", t.Grace},
		{"bmc_poll", t.BMCPoll},
	}
	out := map[string]bool{}
	for _, f := range fields {
		switch {
		case f.v < 0:
			out[f.name] = true
			ps.add("timing."+f.name, "use a positive duration, like \"1s\"", "%s (%v) is negative", f.name, f.v)
		case f.v > maxTiming:
			out[f.name] = true
			ps.add("timing."+f.name, "use a duration of at most 1h; check the unit", "%s (%v) is over the 1h limit", f.name, f.v)
		}
	}
	ok := func(names ...string) bool {
		for _, n := range names {
			if out[n] {
				return false
			}
		}
		return true
	}
	hb, lt, r, io := t.Heartbeat, t.LinkTimeout, t.DatastoreInterval, t.IOTimeout
	L, W, m, ft, g, bp := t.LeaseTimeout, t.WatchdogTimeout, t.Margin, t.FenceTimeout, t.Grace, t.BMCPoll

	// 1. Link failure detection.
	if ok("heartbeat") && hb == 0 {
		ps.add("timing.heartbeat", `set heartbeat = "100ms"`,
			"heartbeat must be > 0: peers are watched through their heartbeats")
	}
	if ok("heartbeat", "link_timeout") && hb > 0 && lt < 3*hb {
		ps.add("timing.link_timeout", fmt.Sprintf("raise link_timeout to %v or lower heartbeat", 3*hb),
			"link_timeout (%v) must be at least 3 x heartbeat (%v): a link is down only after three lost heartbeats, so the timeout must exceed link jitter",
			lt, 3*hb)
	}
	// 2. Grace.
	if ok("grace", "link_timeout") && g < lt {
		ps.add("timing.grace", fmt.Sprintf("raise grace to %v or more", lt),
			"grace (%v) must be at least link_timeout (%v): a silence shorter than the grace never fences, and no silence is seen before a link times out",
			g, lt)
	}
	// 3. Datastore interval and I/O timeout.
	if ok("datastore_interval", "heartbeat") && r < hb && hb > 0 {
		ps.add("timing.datastore_interval", fmt.Sprintf("raise datastore_interval to %v or more", hb),
			"datastore_interval (%v) must be at least heartbeat (%v): the shared datastore is written no more often than the network carries heartbeats",
			r, hb)
	} else if ok("datastore_interval") && r == 0 {
		ps.add("timing.datastore_interval", `set datastore_interval = "1s"`,
			"datastore_interval must be > 0: the lease is renewed every datastore_interval")
	}
	if ok("io_timeout") && io == 0 {
		ps.add("timing.io_timeout", `set io_timeout = "2s"`,
			"io_timeout must be > 0: a renewal counts only if its write completed within io_timeout")
	}
	// 4. Lease timeout.
	if ok("lease_timeout", "datastore_interval", "io_timeout") && L < r+io {
		ps.add("timing.lease_timeout", fmt.Sprintf("raise lease_timeout to %v or more", r+io),
			"lease_timeout (%v) must be at least datastore_interval + io_timeout (%v): a renewal that uses its whole I/O timeout must land before the lease runs out",
			L, r+io)
	}
	if ok("lease_timeout", "datastore_interval", "grace") && L < 2*r+g {
		ps.add("timing.lease_timeout", fmt.Sprintf("raise lease_timeout to %v or more, or lower grace", 2*r+g),
			"lease_timeout (%v) must be at least 2 x datastore_interval + grace (%v): a datastore blip shorter than the grace never costs the lease",
			L, 2*r+g)
	}
	// 5. The lease rule.
	if ok("watchdog_timeout", "io_timeout", "datastore_interval") && W < io+r {
		ps.add("timing.watchdog_timeout", fmt.Sprintf("raise watchdog_timeout to %v or lower io_timeout", ceilSecond(io+r)),
			"watchdog_timeout (%v) must be at least io_timeout + datastore_interval (%v): the lease rule, a hung renewal cannot outlive the watchdog",
			W, io+r)
	}
	// 6. Watchdog against lease; whole seconds.
	if ok("watchdog_timeout", "lease_timeout") && W > L {
		ps.add("timing.watchdog_timeout", fmt.Sprintf("lower watchdog_timeout to %v or raise lease_timeout", L),
			"watchdog_timeout (%v) must not exceed lease_timeout (%v): a host that lost its lease must be reset within one more lease period, or recovery waits on the watchdog",
			W, L)
	}
	if ok("watchdog_timeout") && (W < time.Second || W%time.Second != 0) {
		ps.add("timing.watchdog_timeout", fmt.Sprintf("set watchdog_timeout = %q", ceilSecond(W).String()),
			"watchdog_timeout (%v) must be a whole number of seconds, at least 1s: Linux watchdogs take their timeout in seconds",
			W)
	}
	// 7. Margin.
	if ok("margin", "lease_timeout", "watchdog_timeout") {
		drift := (L + W) / 100
		if need := max(100*time.Millisecond, drift); m < need {
			ps.add("timing.margin", fmt.Sprintf("raise margin to %v or more", need),
				"margin (%v) must be at least 100ms and at least (lease_timeout + watchdog_timeout)/100 (%v): it covers clock-rate drift and scheduling delay",
				m, drift)
		}
	}
	// 8. Fence timeout.
	if ok("fence_timeout", "lease_timeout", "watchdog_timeout", "margin", "link_timeout", "heartbeat") && ft < t.ProofDelay() {
		ps.add("timing.fence_timeout", fmt.Sprintf("raise fence_timeout to %v or more", t.ProofDelay()),
			"fence_timeout (%v) must be at least max(lease_timeout, 5 x link_timeout + 2 x heartbeat) + watchdog_timeout + margin (%v): the lease+watchdog proof is due before a fence is reported stuck",
			ft, t.ProofDelay())
	}
	// 9. BMC poll.
	if ok("bmc_poll", "fence_timeout") && (bp == 0 || bp >= ft) {
		ps.add("timing.bmc_poll", `set bmc_poll = "200ms"`,
			"bmc_poll (%v) must be > 0 and below fence_timeout (%v): the power state is read back until it shows off, well before the fence is reported stuck",
			bp, ft)
	}
	return ps
}

// ceilSecond rounds d up to a whole number of seconds, at least 1s.
func ceilSecond(d time.Duration) time.Duration {
	if d <= time.Second {
		return time.Second
	}
	return (d + time.Second - 1) / time.Second * time.Second
}
