package sim

import (
	"runtime"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/firmware/config"
	"github.com/vigil-ha/vigil/hb"
)

// bigSpec is a cluster of hosts with BMCs and vms one-vCPU VMs, one link,
// one datastore.
func bigSpec(hosts, vms int) *cluster.Spec {
	s := &cluster.Spec{Name: "big", Links: 1, Datastores: 1, Timing: config.Default().Spec().Timing,
		Policy: cluster.Policy{HostFailures: 1, RestartAttempts: 3, RestartBackoff: time.Second}}
	for i := 0; i < hosts; i++ {
		s.Hosts = append(s.Hosts, cluster.HostSpec{Name: "h" + itoa(i+1), CPU: 128, MemoryMiB: 256 << 10, BMC: true})
	}
	for i := 0; i < vms; i++ {
		s.VMs = append(s.VMs, cluster.VMSpec{Name: "vm" + itoa(i+1), CPU: 1, MemoryMiB: 1024,
			Priority: cluster.Medium, Protected: true, Host: i % hosts})
	}
	return s
}

// allRunning reports whether every VM runs somewhere.
func allRunning(w *World) bool { return w.RunningVMs() == len(w.spec.VMs) }

// BenchmarkHostFailure64: a 64-host, 2000-VM cluster loses one host; the
// clock runs from the power loss until every VM runs again. sim-x is
// simulated seconds per real second. Two timings: the defaults (heartbeat
// 100 ms), and one scaled for a large cluster (heartbeat 1 s, link timeout
// 3 s), as corosync scales its token timeout with the number of nodes.
func BenchmarkHostFailure64(b *testing.B) {
	large := config.Default().Spec().Timing
	large.Heartbeat, large.LinkTimeout, large.Grace = time.Second, 3*time.Second, 3*time.Second
	large.LeaseTimeout, large.FenceTimeout = 5*time.Second, 30*time.Second
	if ps := config.CheckTiming(large); len(ps) > 0 {
		b.Fatal(ps)
	}
	for _, c := range []struct {
		name   string
		timing cluster.Timing
	}{{"default-timing", config.Default().Spec().Timing}, {"1s-heartbeat", large}} {
		b.Run(c.name, func(b *testing.B) {
			spec := bigSpec(64, 2000)
			spec.Timing = c.timing
			var simulated, real time.Duration
			for b.Loop() {
				b.StopTimer()
				p := DefaultParams()
				p.Quiet = true
				w := New(spec, p)
				if !w.RunWhile(2*time.Minute, func() bool { return !allRunning(w) }) {
					b.Fatal("the VMs never all ran")
				}
				w.RunUntil(w.now + 5*time.Second)
				s, _ := ParseScript("bench", "0s poweroff h7", spec, Names{}, p)
				s.Cmds[0].At = w.now
				w.Schedule(s)
				runtime.GC() // the set-up's garbage is not the failure's cost
				b.StartTimer()
				t0, start := w.now, time.Now()
				recovered := w.RunWhile(w.now+5*time.Minute, func() bool { return w.now == t0 || !allRunning(w) })
				real += time.Since(start)
				simulated += w.now - t0
				if !recovered {
					b.Fatal("the failed host's VMs never ran again")
				}
				if w.Violations() > 0 {
					b.Fatal(w.ViolationList()[0])
				}
			}
			b.ReportMetric(simulated.Seconds()/real.Seconds(), "sim-x")
			b.ReportMetric(simulated.Seconds()/float64(b.N), "sim-s/op")
		})
	}
}

// BenchmarkWorldOnly64 is the world's own cost: 64 hosts with no core, each
// broadcasting a heartbeat per tick, as the agents of
// BenchmarkHostFailure64 do. sim-x here bounds what any core can reach.
func BenchmarkWorldOnly64(b *testing.B) {
	spec := bigSpec(64, 2000)
	w := newWorld(spec, DefaultParams(), true)
	msgs := make([]*hb.Message, len(spec.Hosts))
	for i := range msgs {
		msgs[i] = &hb.Message{From: i}
	}
	w.tap = func(h int, ev cluster.Event) {
		if _, ok := ev.(cluster.Tick); ok {
			w.hosts[h].env.Send(msgs[h])
		}
	}
	start := time.Now()
	for b.Loop() {
		w.RunUntil(w.now + time.Second)
	}
	b.ReportMetric(w.now.Seconds()/time.Since(start).Seconds(), "sim-x")
	b.ReportMetric(float64(w.stats.Delivered)/w.now.Seconds(), "deliveries/sim-s")
}

// BenchmarkRecovery measures, in simulated time at the default timing, a
// host power loss on the demo cluster: detection, fence and the last VM
// running again (with 1 s of VM boot), with a BMC and with the lease and
// watchdog proof alone.
func BenchmarkRecovery(b *testing.B) {
	for _, c := range []struct{ name, cmds string }{
		{"bmc", "20s poweroff h2\nrun 60s\n"},
		{"lease-only", "10s bmc h2 unreachable\n20s poweroff h2\nrun 60s\n"},
	} {
		b.Run(c.name, func(b *testing.B) {
			var r Recovery
			for b.Loop() {
				d, err := runDemo(c.cmds)
				if err != nil {
					b.Fatal(err)
				}
				if r = d.r; r.Recovered != r.Lost || r.Lost == 0 {
					b.Fatalf("recovered %d of %d VMs", r.Recovered, r.Lost)
				}
			}
			b.ReportMetric(float64(r.Detect.Milliseconds()), "detect-ms")
			b.ReportMetric(float64(r.Fence.Milliseconds()), "fence-ms")
			b.ReportMetric(float64(r.Recover.Milliseconds()), "recover-ms")
		})
	}
}
