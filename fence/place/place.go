// Package place is vigil's recovery planner and admission control: pure
// functions that decide where the VMs of a failed host restart and whether a
// protected VM may power on without eating the failover reserve.
//
//	res := place.Plan(place.Request{Hosts: survivors, VMs: orphans, Running: running})
//	for _, p := range res.Placed { // in start order
//		assign(p.VM, p.Host) // ownership record first, then start
//	}
//	for _, w := range res.Waiting {
//		log.Info("recovery deferred", "vm", w.VM, "reason", w.Reason) // re-plan when a VM starts
//	}
//	for _, f := range res.Refused {
//		log.Warn("cannot restart", "vm", f.VM, "reason", f.Reason)
//	}
//
//	if err := place.Admit(hosts, protected, vm, 1); err != nil {
//		return err // admission control: powering on web3 needs 8192 MiB memory but ...
//	}
//
// Plan takes VMs by restart priority (high first) and, within a priority,
// largest memory first, then by index. A VM whose start-after dependencies
// are not all running waits; the others go to the fitting host with the most
// balanced free capacity left, honouring anti-affinity groups, a preferred host
// and hosts to avoid. Everything is deterministic: the same request gives the
// same result whatever the order of its hosts and VMs.
//
// Admit implements vSphere's "cluster resource percentage" policy: the
// capacity of the largest hosts is held back, per resource, so that every
// protected VM can restart after the given number of host failures.
package place

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Host is an eligible host (alive, healthy, not in maintenance).
type Host struct {
	Index         int      // host index in the cluster
	Name          string   // for messages
	CPU           int      // capacity in vCPU
	MemoryMiB     int      // capacity in MiB
	UsedCPU       int      // vCPU committed to running VMs and pending assignments
	UsedMemoryMiB int      // MiB committed to running VMs and pending assignments
	Groups        []string // anti-affinity groups already present on the host
}

// VM is a VM to place. Preferred is a host index, so a VM with no
// preference must say -1: the zero value prefers host 0.
type VM struct {
	Index     int
	Name      string // for messages
	CPU       int    // vCPU
	MemoryMiB int
	Priority  int    // 3 high, 2 medium, 1 low: higher places first
	After     []int  // VM indexes that must be running before this one may start
	Group     string // anti-affinity group ("" = none)
	Preferred int    // preferred host index, -1 = none
	Avoid     []int  // hosts to avoid if any other fits (e.g. where a start just failed)
}

// Request is one planning round.
type Request struct {
	Hosts   []Host // eligible hosts only
	VMs     []VM   // VMs to place now
	Running []bool // indexed by VM index: is that VM running somewhere (for After)
	// Names, indexed by VM index, names dependencies that are not in VMs in
	// waiting reasons. Optional: such a dependency is otherwise "vm N".
	Names []string
}

// Placement assigns a VM to a host (both by cluster index).
type Placement struct{ VM, Host int }

// Refusal says why a VM is not placed in this round.
type Refusal struct {
	VM     int
	Reason string
}

// Result is the outcome of Plan.
type Result struct {
	Placed  []Placement // in start order
	Waiting []Refusal   // dependencies not yet running: re-plan later
	Refused []Refusal   // no host can take it now (capacity or anti-affinity), with the reason
}

// Plan places r.VMs on r.Hosts. A dependency placed in this same plan still
// makes its dependants wait: they start only once it runs, and the caller
// plans again then.
//
// The preferred host wins when it fits, unless it is also in the VM's Avoid
// list. Otherwise hosts not in Avoid come before those in Avoid; among them
// the host left with the largest min(free CPU fraction, free memory fraction)
// after placing wins, ties going to the lowest host index.
//
// Plan panics if two hosts or two VMs share an index: the caller builds the
// request from the cluster spec, so that is a broken invariant.
func Plan(r Request) Result {
	var res Result
	if len(r.VMs) == 0 {
		return res
	}
	p := newPlanner(r)
	order := make([]int, len(r.VMs))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		va, vb := &r.VMs[a], &r.VMs[b]
		if c := cmp.Compare(vb.Priority, va.Priority); c != 0 {
			return c
		}
		if c := cmp.Compare(vb.MemoryMiB, va.MemoryMiB); c != 0 {
			return c
		}
		return cmp.Compare(va.Index, vb.Index)
	})
	for _, i := range order {
		vm := &r.VMs[i]
		if missing := p.missing(vm); missing != nil {
			res.Waiting = append(res.Waiting, Refusal{VM: vm.Index,
				Reason: "waiting for " + strings.Join(missing, ", ") + " to run"})
			continue
		}
		pos, reason := p.choose(vm)
		if pos < 0 {
			res.Refused = append(res.Refused, Refusal{VM: vm.Index, Reason: reason})
			continue
		}
		p.place(vm, pos)
		res.Placed = append(res.Placed, Placement{VM: vm.Index, Host: r.Hosts[pos].Index})
	}
	return res
}

// planner holds the free capacity of each host as the plan fills it.
type planner struct {
	r       *Request
	freeCPU []int
	freeMem []int
	groupOn map[string][]bool // group -> position in r.Hosts -> present
	names   map[int]string    // VM index -> name, for VMs in r.VMs
}

func newPlanner(r Request) *planner {
	p := &planner{
		r:       &r,
		freeCPU: make([]int, len(r.Hosts)),
		freeMem: make([]int, len(r.Hosts)),
		groupOn: make(map[string][]bool),
		names:   make(map[int]string, len(r.VMs)),
	}
	seen := make(map[int]bool, len(r.Hosts))
	for pos, h := range r.Hosts {
		if seen[h.Index] {
			panic(fmt.Sprintf("place: host index %d appears twice", h.Index))
		}
		seen[h.Index] = true
		p.freeCPU[pos] = h.CPU - h.UsedCPU
		p.freeMem[pos] = h.MemoryMiB - h.UsedMemoryMiB
		for _, g := range h.Groups {
			p.mark(g, pos)
		}
	}
	for _, vm := range r.VMs {
		if _, dup := p.names[vm.Index]; dup {
			panic(fmt.Sprintf("place: VM index %d appears twice", vm.Index))
		}
		p.names[vm.Index] = vm.Name
	}
	return p
}

func (p *planner) mark(group string, pos int) {
	if group == "" {
		return
	}
	on := p.groupOn[group]
	if on == nil {
		on = make([]bool, len(p.r.Hosts))
		p.groupOn[group] = on
	}
	on[pos] = true
}

// missing names the dependencies of vm that are not running, in the order
// of vm.After, each once; nil when all run.
func (p *planner) missing(vm *VM) []string {
	var out []string
	for k, d := range vm.After {
		if d >= 0 && d < len(p.r.Running) && p.r.Running[d] {
			continue
		}
		if slices.Contains(vm.After[:k], d) {
			continue
		}
		out = append(out, p.vmName(d))
	}
	return out
}

func (p *planner) vmName(i int) string {
	if n := p.names[i]; n != "" {
		return n
	}
	if i >= 0 && i < len(p.r.Names) && p.r.Names[i] != "" {
		return p.r.Names[i]
	}
	return fmt.Sprintf("vm %d", i)
}

func hostName(h *Host) string {
	if h.Name != "" {
		return h.Name
	}
	return fmt.Sprintf("host %d", h.Index)
}

// fits reports whether the host at pos has the room for vm.
func (p *planner) fits(vm *VM, pos int) bool {
	return vm.CPU <= p.freeCPU[pos] && vm.MemoryMiB <= p.freeMem[pos]
}

// choose returns the position of the host for vm, or -1 and the reason none
// can take it.
func (p *planner) choose(vm *VM) (int, string) {
	if len(p.r.Hosts) == 0 {
		return -1, "no eligible host"
	}
	var groupOn []bool
	if vm.Group != "" {
		groupOn = p.groupOn[vm.Group]
	}
	best, bestAvoid, blocked := -1, false, false
	var bestScore ratio
	for pos := range p.r.Hosts {
		h := &p.r.Hosts[pos]
		if !p.fits(vm, pos) {
			continue
		}
		if groupOn != nil && groupOn[pos] {
			blocked = true
			continue
		}
		avoid := slices.Contains(vm.Avoid, h.Index)
		if h.Index == vm.Preferred && !avoid {
			return pos, ""
		}
		score := minRatio(
			ratio{p.freeCPU[pos] - vm.CPU, h.CPU},
			ratio{p.freeMem[pos] - vm.MemoryMiB, h.MemoryMiB})
		if best < 0 || better(avoid, score, h.Index, bestAvoid, bestScore, p.r.Hosts[best].Index) {
			best, bestAvoid, bestScore = pos, avoid, score
		}
	}
	if best >= 0 {
		return best, ""
	}
	if blocked {
		return -1, fmt.Sprintf("anti-affinity group %q already on every host with room", vm.Group)
	}
	return -1, p.shortfall(vm)
}

// better reports whether candidate (avoid, score, index) beats the best so far.
func better(avoid bool, score ratio, index int, bAvoid bool, bScore ratio, bIndex int) bool {
	if avoid != bAvoid {
		return !avoid
	}
	if c := score.cmp(bScore); c != 0 {
		return c > 0
	}
	return index < bIndex
}

// shortfall describes a VM that fits no host by capacity, naming the host
// that comes closest: the largest min(free/needed) over CPU and memory.
func (p *planner) shortfall(vm *VM) string {
	best := -1
	var bestScore ratio
	for pos := range p.r.Hosts {
		score := minRatio(cover(p.freeCPU[pos], vm.CPU), cover(p.freeMem[pos], vm.MemoryMiB))
		if best < 0 || score.cmp(bestScore) > 0 ||
			score.cmp(bestScore) == 0 && p.r.Hosts[pos].Index < p.r.Hosts[best].Index {
			best, bestScore = pos, score
		}
	}
	return fmt.Sprintf("needs %d vCPU and %d MiB; most free: %s with %d vCPU and %d MiB",
		vm.CPU, vm.MemoryMiB, hostName(&p.r.Hosts[best]),
		max(p.freeCPU[best], 0), max(p.freeMem[best], 0))
}

// cover is how much of a need the free amount covers; a need of zero is
// always covered.
func cover(free, need int) ratio {
	if need <= 0 {
		return ratio{1, 0}
	}
	return ratio{max(free, 0), need}
}

func (p *planner) place(vm *VM, pos int) {
	p.freeCPU[pos] -= vm.CPU
	p.freeMem[pos] -= vm.MemoryMiB
	p.mark(vm.Group, pos)
}

// ratio is num/den compared exactly; den <= 0 stands for +Inf when num > 0
// and for 0 otherwise, so a zero-capacity or zero-need resource never
// produces a division.
type ratio struct{ num, den int }

func (a ratio) norm() ratio {
	if a.den > 0 {
		return a
	}
	if a.num > 0 {
		return ratio{1, 0} // +Inf
	}
	return ratio{0, 1}
}

func (a ratio) cmp(b ratio) int {
	a, b = a.norm(), b.norm()
	switch {
	case a.den == 0 && b.den == 0:
		return 0
	case a.den == 0:
		return 1
	case b.den == 0:
		return -1
	}
	return cmp.Compare(int64(a.num)*int64(b.den), int64(b.num)*int64(a.den))
}

func minRatio(a, b ratio) ratio {
	if a.cmp(b) <= 0 {
		return a
	}
	return b
}
