package place

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

var propGroups = []string{"", "a", "b", "c", "d"}

// randomRequest builds a cluster of up to 8 hosts and 30 VMs; VM indexes
// come from 0..39 and every host starts within its capacity.
func randomRequest(rng *rand.Rand) Request {
	var r Request
	for _, i := range rng.Perm(12)[:rng.IntN(9)] {
		h := host(i, "", 1+rng.IntN(32), 512*(2+rng.IntN(127)))
		h = used(h, rng.IntN(h.CPU+1), rng.IntN(h.MemoryMiB+1))
		for _, g := range propGroups[1:] {
			if rng.IntN(4) == 0 {
				h.Groups = append(h.Groups, g)
			}
		}
		r.Hosts = append(r.Hosts, h)
	}
	r.Running = make([]bool, 40)
	for i := range r.Running {
		r.Running[i] = rng.IntN(3) > 0
	}
	for _, i := range rng.Perm(40)[:rng.IntN(31)] {
		v := vm(i, "", 1+rng.IntN(3), rng.IntN(9), 256*rng.IntN(65))
		v.Group = propGroups[rng.IntN(len(propGroups))]
		for range rng.IntN(3) {
			v.After = append(v.After, rng.IntN(40))
		}
		if rng.IntN(3) == 0 {
			v.Preferred = rng.IntN(12)
		}
		for range rng.IntN(3) {
			v.Avoid = append(v.Avoid, rng.IntN(12))
		}
		r.VMs = append(r.VMs, v)
	}
	return r
}

func TestPlanInvariants(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 2000 {
		r := randomRequest(rng)
		res := Plan(r)
		checkResult(t, n, r, res)

		shuffled := r
		shuffled.Hosts = slices.Clone(r.Hosts)
		shuffled.VMs = slices.Clone(r.VMs)
		rng.Shuffle(len(shuffled.Hosts), func(i, j int) {
			shuffled.Hosts[i], shuffled.Hosts[j] = shuffled.Hosts[j], shuffled.Hosts[i]
		})
		rng.Shuffle(len(shuffled.VMs), func(i, j int) {
			shuffled.VMs[i], shuffled.VMs[j] = shuffled.VMs[j], shuffled.VMs[i]
		})
		if again := Plan(shuffled); !reflect.DeepEqual(again, res) {
			t.Fatalf("case %d: result depends on input order:\n%+v\nthen\n%+v", n, res, again)
		}
	}
}

func checkResult(t *testing.T, n int, r Request, res Result) {
	t.Helper()
	vms := make(map[int]VM)
	for _, v := range r.VMs {
		vms[v.Index] = v
	}
	hosts := make(map[int]Host)
	cpu, mem := make(map[int]int), make(map[int]int)
	groups := make(map[int]map[string]bool)
	for _, h := range r.Hosts {
		hosts[h.Index] = h
		cpu[h.Index], mem[h.Index] = h.UsedCPU, h.UsedMemoryMiB
		groups[h.Index] = make(map[string]bool)
		for _, g := range h.Groups {
			groups[h.Index][g] = true
		}
	}
	depsRun := func(v VM) bool {
		for _, d := range v.After {
			if !r.Running[d] {
				return false
			}
		}
		return true
	}
	seen := make(map[int]bool)
	see := func(i int) {
		if _, ok := vms[i]; !ok || seen[i] {
			t.Fatalf("case %d: VM %d unknown or reported twice: %+v", n, i, res)
		}
		seen[i] = true
	}
	prio := 4
	for _, p := range res.Placed {
		see(p.VM)
		v, h := vms[p.VM], hosts[p.Host]
		if _, ok := hosts[p.Host]; !ok {
			t.Fatalf("case %d: VM %d placed on unknown host %d", n, p.VM, p.Host)
		}
		if !depsRun(v) {
			t.Fatalf("case %d: VM %d placed before its dependencies %v run", n, p.VM, v.After)
		}
		if v.Priority > prio {
			t.Fatalf("case %d: VM %d of priority %d placed after priority %d", n, p.VM, v.Priority, prio)
		}
		prio = v.Priority
		cpu[p.Host] += v.CPU
		mem[p.Host] += v.MemoryMiB
		if cpu[p.Host] > h.CPU || mem[p.Host] > h.MemoryMiB {
			t.Fatalf("case %d: host %d over capacity: %d/%d vCPU, %d/%d MiB",
				n, p.Host, cpu[p.Host], h.CPU, mem[p.Host], h.MemoryMiB)
		}
		if v.Group != "" {
			if groups[p.Host][v.Group] {
				t.Fatalf("case %d: group %q twice on host %d", n, v.Group, p.Host)
			}
			groups[p.Host][v.Group] = true
		}
	}
	for _, w := range res.Waiting {
		see(w.VM)
		if depsRun(vms[w.VM]) {
			t.Fatalf("case %d: VM %d waits although its dependencies run", n, w.VM)
		}
	}
	// Free capacity only shrinks during a plan, so a refused VM fits no
	// host at the end either.
	for _, f := range res.Refused {
		see(f.VM)
		v := vms[f.VM]
		if !depsRun(v) {
			t.Fatalf("case %d: VM %d refused instead of waiting", n, f.VM)
		}
		for _, h := range r.Hosts {
			if v.CPU <= h.CPU-cpu[h.Index] && v.MemoryMiB <= h.MemoryMiB-mem[h.Index] &&
				(v.Group == "" || !groups[h.Index][v.Group]) {
				t.Fatalf("case %d: VM %d refused (%s) but fits host %d", n, f.VM, f.Reason, h.Index)
			}
		}
	}
	if len(seen) != len(vms) {
		t.Fatalf("case %d: %d of %d VMs reported", n, len(seen), len(vms))
	}
}
