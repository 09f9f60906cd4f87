package itest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/tools/lab"
	"github.com/vigil-ha/vigil/tools/lab/demo"
)

// BenchmarkLabLeaseRecovery powers off, at the default timing, a host of a
// 3-host, 2-link lab without BMCs with 6 VMs that runs VMs, and measures
// from the power loss to the last of its VMs running on a survivor, read
// from the agents' logs as the demo reads its "recovered 2/2 VMs in ... ms"
// (demo.Measure). Without a BMC every restart must carry the lease and
// watchdog proof (c). After each trial the host is powered on again and
// the cluster settles (every host healthy, every peer alive, 6 VMs
// running) before the next one. It runs 3 trials, or b.N if larger
// (-benchtime 1x: 3).
//
// The figures are the median and the worst recovery (target: under 15 s),
// and the median detection (power loss to the first survivor's suspicion)
// and fence (detection to the proof).
func BenchmarkLabLeaseRecovery(b *testing.B) {
	labRecovery(b, lab.Options{Hosts: 3, Links: 2, NoBMC: true}, 3, "lease-expired")
}

// BenchmarkLabIPMIRecovery is BenchmarkLabLeaseRecovery in a lab whose
// hosts have BMCs (ipmi_sim): the coordinator powers the failed host off
// through its BMC and reads "off" back, proof (b). 10 trials (target: a
// median under 5 s).
func BenchmarkLabIPMIRecovery(b *testing.B) {
	labRecovery(b, lab.Options{Hosts: 3, Links: 2}, 10, "bmc-off")
}

// labRecovery runs trials power losses (or b.N if more) in the lab o and
// reports the recovery figures; every restart must carry proof.
func labRecovery(b *testing.B, o lab.Options, trials int, proof string) {
	c := newClusterWith(b, o)
	const vms = 6
	var recover, detect, fence []time.Duration
	for trial := range max(trials, b.N) {
		victim, lost := c.victim()
		if victim == "" {
			b.Fatalf("trial %d: no host runs a VM: %v", trial, c.running(nil))
		}
		failed := time.Now()
		if err := c.l.PowerOff(victim); err != nil {
			b.Fatal(err)
		}
		c.waitFor(victim+"'s VMs running on the survivors", 60*time.Second, func() bool {
			return len(c.running(map[string]bool{victim: true})) == vms
		})
		r := demo.Measure(c.logs(), victim, failed, lost)
		b.Logf("trial %d: %s (%s) off: recovered %d/%d VMs in %d ms (detect %d ms, fence %d ms via %s)",
			trial+1, victim, strings.Join(lost, ","), r.Recovered, r.Lost, r.Recover.Milliseconds(),
			r.Detect.Milliseconds(), r.Fence.Milliseconds(), r.Method)
		if !r.Detected || !r.Proven || r.Recovered != r.Lost {
			b.Fatalf("trial %d: the logs do not show %s's failure detected, fenced and all of %v running again: %+v", trial+1, victim, lost, r)
		}
		if r.Method != proof {
			b.Errorf("trial %d: %s's VMs moved with proof %s, want %s", trial+1, victim, r.Method, proof)
		}
		c.movedWith(failed, victim, lost, proof)
		c.onlyOnce(vms, victim)
		recover, detect, fence = append(recover, r.Recover), append(detect, r.Detect), append(fence, r.Fence)

		if err := c.l.PowerOn(victim); err != nil {
			b.Fatal(err)
		}
		c.waitFor(victim+" back and the cluster settled", 30*time.Second, func() bool {
			rep, err := c.status(victim)
			return err == nil && rep.Status.Self == "healthy" && rep.Status.Lease == "fresh" &&
				c.allAlive("") == nil && len(c.running(nil)) == vms
		})
		c.onlyOnce(vms)
	}
	b.ReportMetric(millis(medianOf(recover)), "recovery-ms/median")
	b.ReportMetric(millis(slices.Max(recover)), "recovery-ms/worst")
	b.ReportMetric(millis(medianOf(detect)), "detect-ms/median")
	b.ReportMetric(millis(medianOf(fence)), "fence-ms/median")
}

// victim picks the host to power off: of the hosts that run VMs, the one
// that runs the most and, first, one that does not coordinate, so every
// trial measures the same path (the coordinator survives and fences). It
// returns the host and its VMs, sorted.
func (c *cluster) victim() (string, []string) {
	coord := c.coordinators()
	on := map[string][]string{}
	for vm, h := range c.running(nil) {
		on[h] = append(on[h], vm)
	}
	var best string
	better := func(h string) bool {
		if best == "" {
			return true
		}
		if (coord[h] == h) != (coord[best] == best) {
			return coord[best] == best
		}
		return len(on[h]) > len(on[best])
	}
	for _, h := range c.hosts {
		if len(on[h]) > 0 && better(h) {
			best = h
		}
	}
	slices.Sort(on[best])
	return best, on[best]
}

func medianOf(d []time.Duration) time.Duration {
	s := slices.Sorted(slices.Values(d))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func millis(d time.Duration) float64 { return float64(d) / 1e6 }
