package place

import (
	"errors"
	"math/rand/v2"
	"testing"
)

func TestAdmit(t *testing.T) {
	three := []Host{host(0, "h0", 16, 32768), host(1, "h1", 16, 32768), host(2, "h2", 16, 32768)}
	// Largest CPU host and largest memory host differ: 24 vCPU and 49152 MiB
	// stay after reserving for one failure.
	mixed := []Host{host(0, "a", 32, 16384), host(1, "b", 8, 65536), host(2, "c", 16, 32768)}
	web3 := func(cpu, mem int) VM { return vm(3, "web3", high, cpu, mem) }
	half := []VM{vm(0, "db1", high, 8, 16384), vm(1, "db2", high, 8, 16384)}
	tests := []struct {
		name     string
		hosts    []Host
		on       []VM
		vm       VM
		failures int
		want     string // "" admits
	}{
		{"within headroom", three, half, web3(8, 16384), 1, ""},
		{"exactly the headroom", three, half, web3(16, 32768), 1, ""},
		{"memory short", three, []VM{vm(0, "db1", high, 8, 61440)}, web3(4, 8192), 1,
			"admission control: powering on web3 needs 8192 MiB memory but 4096 MiB stays free after reserving for 1 host failure"},
		{"cpu short", three, []VM{vm(0, "db1", high, 30, 1024)}, web3(4, 8192), 1,
			"admission control: powering on web3 needs 4 vCPU but 2 vCPU stays free after reserving for 1 host failure"},
		{"cpu reported before memory", three, half, web3(17, 32769), 1,
			"admission control: powering on web3 needs 17 vCPU but 16 vCPU stays free after reserving for 1 host failure"},
		{"reserve per resource: cpu fits", mixed, nil, web3(24, 49152), 1, ""},
		{"reserve per resource: cpu short", mixed, nil, web3(25, 1024), 1,
			"admission control: powering on web3 needs 25 vCPU but 24 vCPU stays free after reserving for 1 host failure"},
		{"reserve per resource: memory short", mixed, nil, web3(1, 49153), 1,
			"admission control: powering on web3 needs 49153 MiB memory but 49152 MiB stays free after reserving for 1 host failure"},
		{"two failures", three, nil, web3(16, 32769), 2,
			"admission control: powering on web3 needs 32769 MiB memory but 32768 MiB stays free after reserving for 2 host failures"},
		{"no reserve", three, nil, web3(48, 98304), 0, ""},
		{"no reserve, short", three, nil, web3(49, 1024), 0,
			"admission control: powering on web3 needs 49 vCPU but 48 vCPU stays free after reserving for 0 host failures"},
		{"negative failures count as none", three, nil, web3(49, 1024), -1,
			"admission control: powering on web3 needs 49 vCPU but 48 vCPU stays free after reserving for 0 host failures"},
		{"reserve already eaten", three, []VM{vm(0, "db1", high, 40, 1024)}, web3(1, 1024), 1,
			"admission control: powering on web3 needs 1 vCPU but 0 vCPU stays free after reserving for 1 host failure"},
		{"failures equal hosts", three, nil, web3(1, 1024), 3,
			"admission control: cannot power on web3: reserving for 3 host failures takes all 3 eligible hosts, so nothing can be admitted"},
		{"failures above hosts", three[:1], nil, web3(1, 1024), 2,
			"admission control: cannot power on web3: reserving for 2 host failures takes all 1 eligible hosts, so nothing can be admitted"},
		{"empty VM still refused when failures take every host", three, nil, web3(0, 0), 3,
			"admission control: cannot power on web3: reserving for 3 host failures takes all 3 eligible hosts, so nothing can be admitted"},
		{"no hosts", nil, nil, web3(1, 1024), 0,
			"admission control: cannot power on web3: no eligible host"},
		{"VM without a name", three, nil, vm(7, "", high, 49, 1024), 0,
			"admission control: powering on vm 7 needs 49 vCPU but 48 vCPU stays free after reserving for 0 host failures"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Admit(tt.hosts, tt.on, tt.vm, tt.failures)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Admit() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Admit() = nil, want %q", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("Admit() =\n%s\nwant\n%s", err, tt.want)
			}
			if !errors.Is(err, ErrInsufficientCapacity) {
				t.Errorf("errors.Is(%v, ErrInsufficientCapacity) = false", err)
			}
		})
	}
}

func TestRefusedErrorFields(t *testing.T) {
	three := []Host{host(0, "h0", 16, 32768), host(1, "h1", 16, 32768), host(2, "h2", 16, 32768)}
	tests := []struct {
		name     string
		on       []VM
		vm       VM
		failures int
		want     RefusedError
	}{
		{"memory", []VM{vm(0, "db1", high, 8, 61440)}, vm(3, "web3", high, 4, 8192), 1,
			RefusedError{VM: "web3", Resource: "memory", Need: 8192, Free: 4096, Failures: 1}},
		{"cpu", nil, vm(3, "web3", high, 17, 1024), 2,
			RefusedError{VM: "web3", Resource: "cpu", Need: 17, Free: 16, Failures: 2}},
		{"hosts", nil, vm(3, "web3", high, 1, 1024), 4,
			RefusedError{VM: "web3", Resource: "hosts", Need: 5, Free: 3, Failures: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var re *RefusedError
			if err := Admit(three, tt.on, tt.vm, tt.failures); !errors.As(err, &re) {
				t.Fatalf("Admit() = %v, want a *RefusedError", err)
			}
			if *re != tt.want {
				t.Errorf("RefusedError = %+v, want %+v", *re, tt.want)
			}
		})
	}
}

func TestHeadroom(t *testing.T) {
	mixed := []Host{host(0, "a", 32, 16384), host(1, "b", 8, 65536), host(2, "c", 16, 32768)}
	on := []VM{vm(0, "db1", high, 4, 4096), vm(1, "db2", high, 2, 1024)}
	tests := []struct {
		name     string
		hosts    []Host
		on       []VM
		failures int
		cpu, mem int
	}{
		{"no hosts", nil, nil, 1, 0, 0},
		{"no reserve", mixed, nil, 0, 56, 114688},
		{"one failure, per resource", mixed, nil, 1, 24, 49152},
		{"two failures", mixed, nil, 2, 8, 16384},
		{"all hosts reserved", mixed, nil, 3, 0, 0},
		{"more failures than hosts", mixed, nil, 5, 0, 0},
		{"negative failures", mixed, nil, -2, 56, 114688},
		{"running VMs counted", mixed, on, 1, 18, 44032},
		{"overcommitted goes negative", mixed, on, 3, -6, -5120},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cpu, mem := Headroom(tt.hosts, tt.on, tt.failures)
			if cpu != tt.cpu || mem != tt.mem {
				t.Errorf("Headroom() = %d vCPU, %d MiB; want %d, %d", cpu, mem, tt.cpu, tt.mem)
			}
		})
	}
}

func TestHeadroomKeepsHosts(t *testing.T) {
	hosts := []Host{host(0, "a", 32, 16384), host(1, "b", 8, 65536)}
	Headroom(hosts, nil, 1)
	if hosts[0].Index != 0 || hosts[0].CPU != 32 || hosts[1].CPU != 8 {
		t.Errorf("Headroom reordered or changed its input: %+v", hosts)
	}
}

// TestLedgerMatchesAdmit: a ledger fed a run of power-ons answers exactly as
// Admit does with every VM it admitted so far in on.
func TestLedgerMatchesAdmit(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	admitted, refused := 0, 0
	for round := 0; round < 200; round++ {
		var hosts []Host
		for i := range rng.IntN(5) {
			hosts = append(hosts, host(i, "h", 4+rng.IntN(28), 4096+rng.IntN(60000)))
		}
		failures := rng.IntN(3) - 1
		var on []VM
		for i := range rng.IntN(4) {
			on = append(on, vm(i, "on", high, 1+rng.IntN(8), 512+rng.IntN(8192)))
		}
		l := NewLedger(hosts, on, failures)
		for i := range 30 {
			v := vm(100+i, "v", high, 1+rng.IntN(8), 512+rng.IntN(8192))
			want := Admit(hosts, on, v, failures)
			got := l.Admit(v)
			if (want == nil) != (got == nil) || want != nil && want.Error() != got.Error() {
				t.Fatalf("round %d VM %d: ledger says %v, Admit says %v", round, i, got, want)
			}
			if got == nil {
				on = append(on, v)
				admitted++
			} else {
				refused++
			}
		}
	}
	if admitted == 0 || refused == 0 {
		t.Fatalf("the runs admitted %d and refused %d: both paths must be exercised", admitted, refused)
	}
}
