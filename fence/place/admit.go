package place

import (
	"errors"
	"fmt"
	"slices"
)

// ErrInsufficientCapacity matches every admission refusal (a *RefusedError).
var ErrInsufficientCapacity = errors.New("admission control: insufficient failover capacity")

// RefusedError is an admission refusal.
type RefusedError struct {
	VM string // the VM refused
	// Resource is "cpu" or "memory" (Need and Free in vCPU or MiB), or
	// "hosts" when the failures to tolerate take every eligible host (Need is
	// failures+1 hosts, Free the number of eligible hosts).
	Resource string
	Need     int
	Free     int // what stays free after the reserve, never below 0
	Failures int // host failures reserved for
}

func (e *RefusedError) Error() string {
	switch e.Resource {
	case "hosts":
		if e.Free == 0 {
			return fmt.Sprintf("admission control: cannot power on %s: no eligible host", e.VM)
		}
		return fmt.Sprintf("admission control: cannot power on %s: reserving for %s takes all %d eligible hosts, so nothing can be admitted",
			e.VM, hostFailures(e.Failures), e.Free)
	case "cpu":
		return fmt.Sprintf("admission control: powering on %s needs %d vCPU but %d vCPU stays free after reserving for %s",
			e.VM, e.Need, e.Free, hostFailures(e.Failures))
	}
	return fmt.Sprintf("admission control: powering on %s needs %d MiB %s but %d MiB stays free after reserving for %s",
		e.VM, e.Need, e.Resource, e.Free, hostFailures(e.Failures))
}

// Is makes errors.Is(err, ErrInsufficientCapacity) hold.
func (e *RefusedError) Is(target error) bool { return target == ErrInsufficientCapacity }

func hostFailures(n int) string {
	if n == 1 {
		return "1 host failure"
	}
	return fmt.Sprintf("%d host failures", n)
}

// Admit reports whether powering on vm keeps enough capacity to restart every
// protected VM after `failures` host failures. hosts: eligible hosts with their
// capacity; on: protected VMs already powered on (or assigned), not including vm.
//
// Per resource separately, the capacity of the `failures` largest hosts is
// reserved; vm is admitted iff the sum of on plus vm fits in what remains,
// for both CPU and memory (CPU is checked first). When failures is at least
// the number of hosts nothing can be admitted. A negative failures counts as 0.
// A refusal is a *RefusedError.
func Admit(hosts []Host, on []VM, vm VM, failures int) error {
	l := NewLedger(hosts, on, failures)
	return l.check(vm)
}

// Ledger answers a run of admission questions against one set of hosts in
// constant time each: it keeps the headroom and takes every admitted VM off
// it, as Admit would with the VM appended to on.
type Ledger struct {
	hosts, failures int
	cpu, memMiB     int
}

// NewLedger starts a ledger with the VMs in on already counted.
func NewLedger(hosts []Host, on []VM, failures int) *Ledger {
	failures = max(failures, 0)
	cpu, mem := Headroom(hosts, on, failures)
	return &Ledger{hosts: len(hosts), failures: failures, cpu: cpu, memMiB: mem}
}

// Admit is Admit for vm; an admitted vm is counted from then on.
func (l *Ledger) Admit(vm VM) error {
	if err := l.check(vm); err != nil {
		return err
	}
	l.cpu -= vm.CPU
	l.memMiB -= vm.MemoryMiB
	return nil
}

func (l *Ledger) check(vm VM) error {
	name := vm.Name
	if name == "" {
		name = fmt.Sprintf("vm %d", vm.Index)
	}
	if l.failures >= l.hosts {
		return &RefusedError{VM: name, Resource: "hosts", Need: l.failures + 1, Free: l.hosts, Failures: l.failures}
	}
	if vm.CPU > l.cpu {
		return &RefusedError{VM: name, Resource: "cpu", Need: vm.CPU, Free: max(l.cpu, 0), Failures: l.failures}
	}
	if vm.MemoryMiB > l.memMiB {
		return &RefusedError{VM: name, Resource: "memory", Need: vm.MemoryMiB, Free: max(l.memMiB, 0), Failures: l.failures}
	}
	return nil
}

// Headroom returns the CPU and memory left for new protected VMs once the
// `failures` largest hosts (per resource) are reserved and the VMs in on are
// counted. It is negative when on already eats into the reserve.
func Headroom(hosts []Host, on []VM, failures int) (cpu, memMiB int) {
	cpus := make([]int, len(hosts))
	mems := make([]int, len(hosts))
	for i, h := range hosts {
		cpus[i], mems[i] = h.CPU, h.MemoryMiB
	}
	cpu, memMiB = unreserved(cpus, failures), unreserved(mems, failures)
	for _, v := range on {
		cpu -= v.CPU
		memMiB -= v.MemoryMiB
	}
	return cpu, memMiB
}

// unreserved sums caps without its n largest values; it sorts caps.
func unreserved(caps []int, n int) int {
	slices.Sort(caps)
	sum := 0
	for _, c := range caps[:len(caps)-min(max(n, 0), len(caps))] {
		sum += c
	}
	return sum
}
