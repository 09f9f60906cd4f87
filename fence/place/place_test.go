package place

import (
	"reflect"
	"testing"
)

// host returns an idle host.
func host(index int, name string, cpu, mem int, groups ...string) Host {
	return Host{Index: index, Name: name, CPU: cpu, MemoryMiB: mem, Groups: groups}
}

// used returns h with cpu and mem already committed.
func used(h Host, cpu, mem int) Host {
	h.UsedCPU, h.UsedMemoryMiB = cpu, mem
	return h
}

// vm returns a VM without dependencies, group or host preferences.
func vm(index int, name string, prio, cpu, mem int) VM {
	return VM{Index: index, Name: name, Priority: prio, CPU: cpu, MemoryMiB: mem, Preferred: -1}
}

func after(v VM, deps ...int) VM  { v.After = deps; return v }
func group(v VM, g string) VM     { v.Group = g; return v }
func prefer(v VM, h int) VM       { v.Preferred = h; return v }
func avoid(v VM, hosts ...int) VM { v.Avoid = hosts; return v }
func placed(pairs ...int) []Placement {
	var out []Placement
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, Placement{VM: pairs[i], Host: pairs[i+1]})
	}
	return out
}

const (
	low    = 1
	medium = 2
	high   = 3
)

func TestPlan(t *testing.T) {
	big := host(0, "h0", 16, 65536)
	tests := []struct {
		name string
		req  Request
		want Result
	}{
		{"empty request", Request{}, Result{}},
		{"no VMs", Request{Hosts: []Host{big}}, Result{}},
		{"no eligible host",
			Request{VMs: []VM{vm(0, "web", high, 1, 1024)}},
			Result{Refused: []Refusal{{0, "no eligible host"}}}},

		// Order.
		{"high priority first",
			Request{Hosts: []Host{big}, VMs: []VM{
				vm(0, "batch", low, 1, 1024), vm(1, "web", high, 1, 1024), vm(2, "cache", medium, 1, 1024)}},
			Result{Placed: placed(1, 0, 2, 0, 0, 0)}},
		{"high priority takes the last room",
			Request{Hosts: []Host{host(0, "h0", 4, 8192)}, VMs: []VM{
				vm(0, "batch", low, 4, 8192), vm(1, "web", high, 4, 8192)}},
			Result{Placed: placed(1, 0), Refused: []Refusal{
				{0, "needs 4 vCPU and 8192 MiB; most free: h0 with 0 vCPU and 0 MiB"}}}},
		{"priority before size",
			Request{Hosts: []Host{big}, VMs: []VM{
				vm(0, "batch", low, 1, 32768), vm(1, "web", high, 1, 1024)}},
			Result{Placed: placed(1, 0, 0, 0)}},
		{"larger memory first packs better",
			Request{Hosts: []Host{host(0, "h0", 16, 8192), host(1, "h1", 16, 8192)}, VMs: []VM{
				vm(0, "a", medium, 1, 4096), vm(1, "b", medium, 1, 4096), vm(2, "c", medium, 1, 8192)}},
			Result{Placed: placed(2, 0, 0, 1, 1, 1)}},
		{"equal size by index",
			Request{Hosts: []Host{big}, VMs: []VM{
				vm(5, "e", medium, 1, 1024), vm(3, "c", medium, 1, 1024), vm(4, "d", medium, 1, 1024)}},
			Result{Placed: placed(3, 0, 4, 0, 5, 0)}},

		// Start-after dependencies.
		{"waiting for one dependency",
			Request{Hosts: []Host{big}, Running: []bool{true, false}, Names: []string{"db1", "db2"},
				VMs: []VM{after(vm(2, "app", high, 1, 1024), 0, 1)}},
			Result{Waiting: []Refusal{{2, "waiting for db2 to run"}}}},
		{"waiting for several dependencies, each named once",
			Request{Hosts: []Host{big}, Names: []string{"db1", "db2"},
				VMs: []VM{after(vm(2, "app", high, 1, 1024), 0, 1, 0)}},
			Result{Waiting: []Refusal{{2, "waiting for db1, db2 to run"}}}},
		{"dependency placed in the same plan still waits",
			Request{Hosts: []Host{big}, Running: make([]bool, 2), VMs: []VM{
				after(vm(1, "app", high, 1, 1024), 0), vm(0, "db", high, 1, 512)}},
			Result{Placed: placed(0, 0), Waiting: []Refusal{{1, "waiting for db to run"}}}},
		{"dependency without a name",
			Request{Hosts: []Host{big}, Running: make([]bool, 3),
				VMs: []VM{after(vm(1, "app", high, 1, 1024), 7)}},
			Result{Waiting: []Refusal{{1, "waiting for vm 7 to run"}}}},
		{"all dependencies running",
			Request{Hosts: []Host{big}, Running: []bool{true, true},
				VMs: []VM{after(vm(2, "app", high, 1, 1024), 0, 1)}},
			Result{Placed: placed(2, 0)}},
		{"waiting comes before capacity",
			Request{Names: []string{"db"}, VMs: []VM{after(vm(1, "app", high, 1, 1024), 0)}},
			Result{Waiting: []Refusal{{1, "waiting for db to run"}}}},

		// Anti-affinity.
		{"group already on the emptiest host",
			Request{Hosts: []Host{host(0, "h0", 16, 65536, "db"), host(1, "h1", 4, 8192)},
				VMs: []VM{group(vm(0, "db2", high, 1, 1024), "db")}},
			Result{Placed: placed(0, 1)}},
		{"group already on every host with room",
			Request{Hosts: []Host{host(0, "h0", 16, 65536, "web", "db"), host(1, "h1", 1, 512)},
				VMs: []VM{group(vm(0, "db2", high, 2, 1024), "db")}},
			Result{Refused: []Refusal{{0, `anti-affinity group "db" already on every host with room`}}}},
		{"group spread within the plan",
			Request{Hosts: []Host{host(0, "h0", 16, 65536), host(1, "h1", 16, 65536)}, VMs: []VM{
				group(vm(0, "db1", high, 1, 1024), "db"), group(vm(1, "db2", high, 1, 1024), "db"),
				group(vm(2, "db3", high, 1, 1024), "db"), vm(3, "web", high, 1, 1024)}},
			Result{Placed: placed(0, 0, 1, 1, 3, 0), Refused: []Refusal{
				{2, `anti-affinity group "db" already on every host with room`}}}},
		{"other groups do not conflict",
			Request{Hosts: []Host{host(0, "h0", 16, 65536, "web"), host(1, "h1", 4, 8192)},
				VMs: []VM{group(vm(0, "db1", high, 1, 1024), "db")}},
			Result{Placed: placed(0, 0)}},

		// Preferred host.
		{"preferred host wins when it fits",
			Request{Hosts: []Host{big, host(1, "h1", 4, 8192)},
				VMs: []VM{prefer(vm(0, "web", high, 1, 1024), 1)}},
			Result{Placed: placed(0, 1)}},
		{"preferred host without room",
			Request{Hosts: []Host{big, host(1, "h1", 1, 512)},
				VMs: []VM{prefer(vm(0, "web", high, 2, 2048), 1)}},
			Result{Placed: placed(0, 0)}},
		{"preferred host holding the group",
			Request{Hosts: []Host{big, host(1, "h1", 4, 8192, "db")},
				VMs: []VM{prefer(group(vm(0, "db2", high, 1, 1024), "db"), 1)}},
			Result{Placed: placed(0, 0)}},
		{"preferred host also avoided",
			Request{Hosts: []Host{big, host(1, "h1", 4, 8192)},
				VMs: []VM{avoid(prefer(vm(0, "web", high, 1, 1024), 1), 1)}},
			Result{Placed: placed(0, 0)}},

		// Avoid list.
		{"avoid the emptiest host",
			Request{Hosts: []Host{big, host(1, "h1", 8, 16384)},
				VMs: []VM{avoid(vm(0, "web", high, 1, 1024), 0)}},
			Result{Placed: placed(0, 1)}},
		{"avoided host when nothing else fits",
			Request{Hosts: []Host{big, host(1, "h1", 1, 512)},
				VMs: []VM{avoid(vm(0, "web", high, 2, 2048), 0)}},
			Result{Placed: placed(0, 0)}},
		{"emptiest of the avoided hosts",
			Request{Hosts: []Host{host(0, "h0", 8, 8192), host(1, "h1", 16, 65536), host(2, "h2", 1, 512)},
				VMs: []VM{avoid(vm(0, "web", high, 2, 2048), 0, 1)}},
			Result{Placed: placed(0, 1)}},

		// Choice by balanced free capacity.
		{"most balanced host wins",
			Request{Hosts: []Host{used(host(0, "h0", 16, 16384), 0, 14336), used(host(1, "h1", 16, 16384), 8, 8192)},
				VMs: []VM{vm(0, "web", high, 1, 1024)}},
			Result{Placed: placed(0, 1)}},
		{"fractions, not absolute free",
			Request{Hosts: []Host{used(host(0, "h0", 64, 262144), 48, 196608), host(1, "h1", 8, 16384)},
				VMs: []VM{vm(0, "web", high, 1, 1024)}},
			Result{Placed: placed(0, 1)}},
		{"identical hosts tie to the lowest index",
			Request{Hosts: []Host{host(2, "h2", 8, 8192), host(0, "h0", 8, 8192), host(1, "h1", 8, 8192)},
				VMs: []VM{vm(0, "web", high, 1, 1024)}},
			Result{Placed: placed(0, 0)}},
		{"equal fractions on different sizes tie to the lowest index",
			Request{Hosts: []Host{used(host(3, "h3", 8, 8192), 4, 4096), used(host(1, "h1", 16, 16384), 10, 10240)},
				VMs: []VM{vm(0, "web", high, 2, 2048)}},
			Result{Placed: placed(0, 1)}},

		// Capacity refusals.
		{"refusal names the host closest to fitting",
			Request{Hosts: []Host{used(host(1, "h1", 8, 32768), 7, 0), used(host(3, "h3", 8, 32768), 6, 16384)},
				VMs: []VM{vm(0, "big", high, 4, 8192)}},
			Result{Refused: []Refusal{{0, "needs 4 vCPU and 8192 MiB; most free: h3 with 2 vCPU and 16384 MiB"}}}},
		{"refusal counts this plan's placements",
			Request{Hosts: []Host{host(0, "h0", 8, 16384)}, VMs: []VM{
				vm(0, "db", high, 6, 4096), vm(1, "app", medium, 4, 8192)}},
			Result{Placed: placed(0, 0), Refused: []Refusal{
				{1, "needs 4 vCPU and 8192 MiB; most free: h0 with 2 vCPU and 12288 MiB"}}}},
		{"overcommitted host reads as nothing free",
			Request{Hosts: []Host{used(host(0, "h0", 8, 16384), 10, 1024)},
				VMs: []VM{vm(0, "web", high, 1, 1024)}},
			Result{Refused: []Refusal{{0, "needs 1 vCPU and 1024 MiB; most free: h0 with 0 vCPU and 15360 MiB"}}}},
		{"host without a name",
			Request{Hosts: []Host{host(2, "", 2, 2048)}, VMs: []VM{vm(0, "web", high, 4, 1024)}},
			Result{Refused: []Refusal{{0, "needs 4 vCPU and 1024 MiB; most free: host 2 with 2 vCPU and 2048 MiB"}}}},
		{"closest hosts tie to the lowest index",
			Request{Hosts: []Host{host(5, "h5", 2, 2048), host(2, "h2", 2, 2048)}, VMs: []VM{vm(0, "web", high, 4, 1024)}},
			Result{Refused: []Refusal{{0, "needs 4 vCPU and 1024 MiB; most free: h2 with 2 vCPU and 2048 MiB"}}}},
		{"memory shortfall",
			Request{Hosts: []Host{host(0, "h0", 32, 4096), host(1, "h1", 2, 6144)}, VMs: []VM{vm(0, "db", high, 2, 8192)}},
			Result{Refused: []Refusal{{0, "needs 2 vCPU and 8192 MiB; most free: h1 with 2 vCPU and 6144 MiB"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Plan(tt.req)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Plan() =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestPlanPanicsOnDuplicateIndex(t *testing.T) {
	tests := []struct {
		name string
		req  Request
	}{
		{"host", Request{Hosts: []Host{host(1, "a", 1, 1), host(1, "b", 1, 1)}, VMs: []VM{vm(0, "x", high, 1, 1)}}},
		{"VM", Request{Hosts: []Host{host(1, "a", 1, 1)}, VMs: []VM{vm(0, "x", high, 1, 1), vm(0, "y", high, 1, 1)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("Plan did not panic")
				}
			}()
			Plan(tt.req)
		})
	}
}
