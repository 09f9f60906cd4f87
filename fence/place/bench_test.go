package place

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchCluster is 64 hosts of 96 vCPU and 256 GiB, up to a third used, and
// 1000 VMs of mixed sizes and priorities (more than fits), a third in
// anti-affinity groups, a tenth with start-after dependencies.
func benchCluster() Request {
	rng := rand.New(rand.NewPCG(7, 7))
	var r Request
	for i := range 64 {
		h := used(host(i, fmt.Sprintf("h%d", i), 96, 262144), rng.IntN(32), 1024*rng.IntN(64))
		r.Hosts = append(r.Hosts, h)
	}
	r.Running = make([]bool, 2000)
	for i := range r.Running {
		r.Running[i] = rng.IntN(4) > 0
	}
	sizes := []struct{ cpu, mem int }{{1, 1024}, {2, 4096}, {4, 8192}, {8, 16384}, {16, 32768}}
	for i := range 1000 {
		s := sizes[rng.IntN(len(sizes))]
		v := vm(i, fmt.Sprintf("vm%d", i), 1+rng.IntN(3), s.cpu, s.mem)
		if rng.IntN(3) == 0 {
			v.Group = fmt.Sprintf("g%d", rng.IntN(40))
		}
		if rng.IntN(10) == 0 {
			v.After = []int{1000 + rng.IntN(1000)}
		}
		if rng.IntN(5) == 0 {
			v.Preferred = rng.IntN(64)
		}
		if rng.IntN(10) == 0 {
			v.Avoid = []int{rng.IntN(64)}
		}
		r.VMs = append(r.VMs, v)
	}
	return r
}

func BenchmarkPlan1000(b *testing.B) {
	r := benchCluster()
	var res Result
	for b.Loop() {
		res = Plan(r)
	}
	b.ReportMetric(float64(len(res.Placed)), "placed/op")
	b.ReportMetric(float64(len(res.Waiting)), "waiting/op")
	b.ReportMetric(float64(len(res.Refused)), "refused/op")
}

func BenchmarkAdmit(b *testing.B) {
	r := benchCluster()
	candidate := vm(1000, "new", 3, 4, 8192)
	for b.Loop() {
		_ = Admit(r.Hosts, r.VMs[:500], candidate, 2)
	}
}

// BenchmarkLedger2000 admits 2,000 VMs one by one, as a cluster's first
// start does.
func BenchmarkLedger2000(b *testing.B) {
	r := benchCluster()
	for b.Loop() {
		l := NewLedger(r.Hosts, nil, 1)
		for i := range 2000 {
			_ = l.Admit(vm(i, "v", 3, 1, 1024))
		}
	}
}
