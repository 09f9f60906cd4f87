package sim

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/fence/cluster"
)

// violations returns the checker's messages joined, for matching.
func (b *bare) violations() string { return strings.Join(b.ViolationList(), "\n") }

func TestCheckerS1(t *testing.T) {
	b := newBare(t, 3, 1, 1)
	b.env(0).VM(0, cluster.VMStart, 0)
	b.RunUntil(2 * time.Second)
	if b.Violations() != 0 {
		t.Fatalf("one start: %s", b.violations())
	}
	b.env(1).VM(0, cluster.VMStart, 0) // injected: vm1 now starts on h2 too
	if v := b.violations(); !strings.Contains(v, "S1 violated: vm1 started on h2 while it runs on h1") {
		t.Errorf("violations %q, want S1", v)
	}
	if !strings.Contains(b.Log(), "err 2.000 sim/check: S1 violated") {
		t.Errorf("log lacks the violation:\n%s", b.Log())
	}
}

func TestCheckerS2(t *testing.T) {
	bmc := cluster.Proof{Kind: cluster.ProofBMCOff, Host: 0}
	recorded := func(kind cluster.ProofKind, epoch uint64) *cluster.Incident {
		return &cluster.Incident{ID: cluster.IncidentID{Host: 2, Incarnation: 1, Seq: 1}, Version: 1, Host: 0, Kind: cluster.IncidentFailed,
			Proof: cluster.Proof{Kind: kind, Host: 0}, Placements: []cluster.Placement{{VM: 0, To: 1, Epoch: epoch, State: cluster.PlacementAssigned}}}
	}
	for _, tc := range []struct {
		name     string
		assign   *cluster.Assigned
		incident *cluster.Incident // recorded by h3, the assigning coordinator
		want     string
	}{
		{"no assignment", nil, nil, "S2 violated: vm1 started on h2 after running on h1 with no assignment to h2 since"},
		{"no proof", &cluster.Assigned{VM: 0, From: 0, To: 1, Epoch: 2}, nil, "S2 violated: vm1 assigned to h2 at epoch 2 with no proof"},
		{"assigned elsewhere", &cluster.Assigned{VM: 0, From: 0, To: 2, Epoch: 2, Proof: bmc}, recorded(cluster.ProofBMCOff, 2), "S2 violated"},
		{"proof but no incident", &cluster.Assigned{VM: 0, From: 0, To: 1, Epoch: 2, Proof: bmc}, nil,
			"S2 violated: vm1 moved from h1 to h2 at epoch 2 with proof bmc-off, but no incident of h3 records it"},
		{"an incident with another proof", &cluster.Assigned{VM: 0, From: 0, To: 1, Epoch: 2, Proof: bmc}, recorded(cluster.ProofLease, 2), "no incident of h3 records it"},
		{"an incident without the placement", &cluster.Assigned{VM: 0, From: 0, To: 1, Epoch: 2, Proof: bmc}, recorded(cluster.ProofBMCOff, 1), "no incident of h3 records it"},
		{"proof and incident", &cluster.Assigned{VM: 0, From: 0, To: 1, Epoch: 2, Proof: bmc}, recorded(cluster.ProofBMCOff, 2), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBare(t, 3, 1, 1)
			b.env(0).VM(0, cluster.VMStart, 0)
			b.RunUntil(2 * time.Second)
			b.do("poweroff h1")
			if tc.assign != nil {
				b.env(2).Assigned(*tc.assign)
			}
			if tc.incident != nil {
				b.env(2).RecordIncident(tc.incident)
			}
			b.env(1).VM(0, cluster.VMStart, 0)
			if v := b.violations(); (tc.want == "") != (v == "") || !strings.Contains(v, tc.want) {
				t.Errorf("violations %q, want %q", v, tc.want)
			}
		})
	}
}

func TestCheckerL2(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault []string // at 1s
		fence time.Duration
		want  bool // a violation
	}{
		{"healthy host", nil, 5 * time.Second, true},
		{"one NIC cut", []string{"cut h2 0"}, 5 * time.Second, true},
		{"short freeze", []string{"freeze h2"}, 2 * time.Second, true},
		{"long freeze", []string{"freeze h2"}, 5 * time.Second, false},
		{"lease lost long", []string{"ds fail 0 h2"}, 5 * time.Second, false},
		{"lease lost briefly", []string{"ds hang 0 h2"}, 2 * time.Second, true},
		{"isolated without storage", []string{"cut h2 0", "ds fail 0 h2"}, 1500 * time.Millisecond, false},
		{"powered off and booting", []string{"reset h2"}, 10 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBare(t, 3, 1, 1)
			b.RunUntil(time.Second)
			for _, f := range tc.fault {
				b.do(f)
			}
			b.RunUntil(tc.fence)
			b.env(0).BMC(1, cluster.BMCPowerOff)
			b.RunUntil(tc.fence + time.Second)
			if got := strings.Contains(b.violations(), "L2 violated: h2 powered off by the BMC"); got != tc.want {
				t.Errorf("L2 violation: %v, want %v (%s)", got, tc.want, b.violations())
			}
		})
	}
}

func TestCheckerL2Watchdog(t *testing.T) {
	b := newBare(t, 2, 1, 1)
	b.env(0).PetWatchdog(4 * time.Second) // and never again: a core that stops petting
	b.RunUntil(5 * time.Second)
	if !strings.Contains(b.violations(), "L2 violated: h1 reset by its watchdog") {
		t.Errorf("violations %q, want L2", b.violations())
	}
	b = newBare(t, 2, 1, 1)
	b.env(0).PetWatchdog(4 * time.Second)
	b.do("freeze h1") // its own stall: the reset is deserved
	b.RunUntil(5 * time.Second)
	if b.Violations() != 0 {
		t.Errorf("violations %q, want none", b.violations())
	}
}

func TestCheckerL1(t *testing.T) {
	for _, tc := range []struct {
		name, cmds string
		want       string
	}{
		{"not restarted", "3s crash vm1\nrun 60s", "L1 violated: vm1 not running"},
		{"run too short", "3s crash vm1\nrun 30s", ""},
		{"fault in force", "3s crash vm1\n4s cut h2 0\nrun 60s", ""},
		{"a failed start excuses", "2s vmfail vm1\n3s crash vm1\n4s vmok vm1\nrun 60s", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBare(t, 2, 1, 1)
			s, err := ParseScript("cmds", tc.cmds, b.spec, Names{}, b.p)
			if err != nil {
				t.Fatal(err)
			}
			b.Schedule(s)
			b.env(0).VM(0, cluster.VMStart, 0)
			if strings.Contains(tc.name, "failed start") {
				b.RunUntil(3 * time.Second)
				b.env(0).VM(0, cluster.VMStart, 0) // under vmfail: fails
			}
			b.RunUntil(s.End)
			if v := b.violations(); (tc.want == "") != (v == "") || !strings.Contains(v, tc.want) {
				t.Errorf("violations %q, want %q", v, tc.want)
			}
		})
	}
}

func TestCheckerCapacity(t *testing.T) {
	b := newBare(t, 2, 1, 1)
	h := b.hosts[0]
	h.spec.CPU = b.spec.VMs[0].CPU + b.spec.VMs[1].CPU // room for exactly two
	b.env(0).VM(0, cluster.VMStart, 0)
	b.env(0).VM(1, cluster.VMStart, 0)
	b.RunUntil(2 * time.Second)
	if b.Violations() != 0 {
		t.Fatalf("two VMs within capacity: %s", b.violations())
	}
	b.env(0).VM(2, cluster.VMStart, 0) // injected: a third does not fit
	b.RunUntil(4 * time.Second)
	if v := b.violations(); !strings.Contains(v, "placement over capacity: vm3 does not fit on h1") {
		t.Errorf("violations %q, want the capacity violation", v)
	}
	if h.vm[2] != vmOff {
		t.Errorf("vm3 started on a full host")
	}
}
