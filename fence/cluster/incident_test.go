package cluster

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/fence"
)

// incidentBench is three hosts: this one (h1, the coordinator), h2, too
// small for the VMs, and h3, which runs vm1 at epoch 1.
func incidentBench(t *testing.T, vmCPU int, bmc bool) *bench {
	s := testSpec(3, 1)
	s.Hosts[1].CPU, s.Hosts[1].MemoryMiB = 1, 512
	s.Hosts[2].BMC = bmc
	s.VMs[0].CPU = vmCPU
	b := newBench(t, s, 0)
	b.slots[2] = &Record{Host: 2, Incarnation: 1, Counter: 1, Claims: []Claim{{VM: 0, Epoch: 1, State: Running}}}
	b.vmOK = true
	b.run(5*time.Second, 1, 2)
	if len(b.incidents) != 0 {
		t.Fatalf("incidents before any failure: %+v", b.incidents[0])
	}
	return b
}

// versions checks that the emitted versions of one incident grow and
// returns the last one.
func versions(t *testing.T, xs []*Incident) *Incident {
	t.Helper()
	if len(xs) == 0 {
		t.Fatal("no incident recorded")
	}
	for i, x := range xs {
		if x.ID != xs[0].ID {
			t.Fatalf("version %d is incident %+v, the first %+v: one failure, one incident", i, x.ID, xs[0].ID)
		}
		if x.Version != uint64(i+1) {
			t.Fatalf("version %d says %d", i+1, x.Version)
		}
	}
	return xs[len(xs)-1]
}

func TestIncidentLeaseFence(t *testing.T) {
	b := incidentBench(t, 1, false)
	b.run(30*time.Second, 1) // h3 dies: silent on the network and on the datastore
	first := b.incidents[0]
	kept := first.Clone()
	x := versions(t, b.incidents)
	if !reflect.DeepEqual(first, kept) {
		t.Errorf("the first version changed after it was emitted:\n got %+v\nwant %+v", first, kept)
	}
	if x.ID != (IncidentID{Host: 0, Incarnation: 1, Seq: 1}) || x.Host != 2 || x.Incarnation != 1 || x.Kind != IncidentFailed {
		t.Errorf("incident %+v about host %d (incarnation %d), kind %s; want h1's first, about h3, failed", x.ID, x.Host, x.Incarnation, x.Kind)
	}
	if first.Fence.Plan != fence.Lease || first.Fence.Started == 0 || first.Proof.Kind != 0 || first.Closed {
		t.Errorf("first version: fence %+v, proof %s, closed %v; want a lease wait, no proof yet", first.Fence, first.Proof.Kind, first.Closed)
	}
	if !(x.Detected > 5*time.Second && x.Detected < x.Decided && x.Decided <= x.Fence.Started && x.Fence.Started < x.Proof.At) {
		t.Errorf("timings: detected %v, decided %v, fence %v, proven %v: want them in that order", x.Detected, x.Decided, x.Fence.Started, x.Proof.At)
	}
	if got := strings.Join(x.Suspect, "; "); !strings.Contains(got, "link0 down") || !strings.Contains(got, "ds0 advancing") {
		t.Errorf("suspect evidence %q", got)
	}
	if got := strings.Join(x.Verdict, "; "); !strings.Contains(got, "ds0 silent") {
		t.Errorf("verdict evidence %q", got)
	}
	if x.Proof.Kind != ProofLease || x.Proof.Host != 2 || x.Proof.Incarnation != 1 || len(x.Fence.Attempts) != 0 {
		t.Errorf("proof %+v, attempts %+v; want proof (c) of h3's incarnation 1 and no BMC request", x.Proof, x.Fence.Attempts)
	}
	want := []Placement{{VM: 0, To: 0, Epoch: 2, State: PlacementRunning, Assigned: x.Proof.At}}
	if len(x.Placements) == 1 {
		want[0].Running = x.Placements[0].Running
	}
	if !reflect.DeepEqual(x.Placements, want) || want[0].Running < want[0].Assigned {
		t.Errorf("placements %+v; want vm1 -> h1 at epoch 2, assigned with the proof, then seen running", x.Placements)
	}
	if !x.Closed || x.Outcome != "1 of 1 VMs running again" {
		t.Errorf("closed %v, outcome %q; want closed, 1 of 1", x.Closed, x.Outcome)
	}
	if got := b.n.Incidents(); len(got) != 1 || got[0] != x {
		t.Errorf("Node.Incidents() = %v; want the last version", got)
	}
}

func TestIncidentBMCFence(t *testing.T) {
	b := incidentBench(t, 1, true)
	b.bmcOff = true
	b.run(20*time.Second, 1)
	x := versions(t, b.incidents)
	f := x.Fence
	if f.Plan != fence.BMC || f.Requests != 2 || len(f.Attempts) != 2 || f.Attempts[0].Op != fence.PowerOff || f.Attempts[0].Result != "accepted" ||
		f.Attempts[1].Op != fence.Status || f.Attempts[1].Result != "power is off" || f.Attempts[1].Done == 0 {
		t.Errorf("fence %+v; want a power-off accepted, then a status read back off", f)
	}
	if x.Proof.Kind != ProofBMCOff || !x.Closed || len(x.Placements) != 1 || x.Placements[0].State != PlacementRunning {
		t.Errorf("proof %s, closed %v, placements %+v", x.Proof.Kind, x.Closed, x.Placements)
	}
}

func TestIncidentFenceAbandoned(t *testing.T) {
	b := incidentBench(t, 1, true) // a BMC that never answers
	b.run(9*time.Second, 1)
	if len(b.incidents) == 0 || b.incidents[len(b.incidents)-1].Closed {
		t.Fatalf("no open incident while h3 is fenced: %v", b.incidents)
	}
	b.run(12*time.Second, 1, 2) // h3 is heard again
	x := versions(t, b.incidents)
	if !x.Closed || x.Outcome != "abandoned: h3 is alive again" || x.Proof.Kind != 0 || len(x.Placements) != 0 || x.Fence.Requests != 1 {
		t.Errorf("incident %+v; want closed as abandoned, one unanswered power-off, no proof, nothing placed", x)
	}
}

func TestIncidentWaitsForRoom(t *testing.T) {
	b := incidentBench(t, 12, false) // vm1 fits on h1 only beside nothing else
	b.n.spec.Hosts[0].CPU = 8
	b.run(60*time.Second, 1)
	x := versions(t, b.incidents)
	if x.Closed || len(x.Placements) != 1 || x.Placements[0].State != PlacementWaiting || x.Placements[0].To != -1 ||
		!strings.Contains(x.Placements[0].Reason, "needs 12 vCPU") {
		t.Errorf("incident %+v; want it open, vm1 waiting for room with the reason", x)
	}
	n := len(b.incidents)
	b.run(70*time.Second, 1)
	if len(b.incidents) != n {
		t.Errorf("%d more versions with nothing new: the same reason must not make a new version", len(b.incidents)-n)
	}
}

func TestIncidentRelease(t *testing.T) {
	b := incidentBench(t, 1, false)
	r := *b.slots[2]
	r.Counter++
	r.Claims = []Claim{{VM: 0, Epoch: 1, State: Released, Reason: Maintenance}}
	b.slots[2] = &r
	b.run(20*time.Second, 1, 2)
	x := versions(t, b.incidents)
	if x.Kind != IncidentReleased || x.Host != 2 || x.Proof.Kind != ProofReleased || x.Fence.Started != 0 ||
		strings.Join(x.Suspect, "") != "h3 released vm1 (maintenance)" || x.Decided != 0 {
		t.Errorf("incident %+v; want h3's release with proof (a), no fence", x)
	}
	if len(x.Placements) != 1 || x.Placements[0].Reason != "released: maintenance" || x.Placements[0].State != PlacementRunning || !x.Closed {
		t.Errorf("placements %+v, closed %v", x.Placements, x.Closed)
	}
}

func TestIncidentStepDown(t *testing.T) {
	b := incidentBench(t, 1, false)
	b.run(9*time.Second, 1)
	b.run(12 * time.Second) // h1 hears nobody: no quorum, no coordinator
	x := versions(t, b.incidents)
	if !x.Closed || x.Outcome != "handed over: h1 stopped coordinating" {
		t.Errorf("closed %v, outcome %q; want it handed over", x.Closed, x.Outcome)
	}
}

func TestIncidentsBounded(t *testing.T) {
	b := newBench(t, testSpec(3, 1), 0)
	c := b.n.co
	for i := 0; i < keepClosed+5; i++ {
		c.closeIncident(0, c.openIncident(0, 1, IncidentReleased, 1, "test"), "done")
	}
	c.openIncident(0, 2, IncidentReleased, 1, "test")
	c.flushIncidents()
	got := b.n.Incidents()
	if len(got) != keepClosed+1 || got[0].ID.Seq != 6 || got[keepClosed].ID.Seq != keepClosed+6 || got[keepClosed].Closed {
		t.Fatalf("%d incidents kept, first seq %d; want the last %d closed and the open one", len(got), got[0].ID.Seq, keepClosed)
	}
}

func TestIncidentsDeterministic(t *testing.T) {
	run := func() []*Incident {
		b := incidentBench(t, 1, true)
		b.bmcOff = true
		b.run(20*time.Second, 1)
		return b.incidents
	}
	if a, b := run(), run(); !reflect.DeepEqual(a, b) {
		t.Fatalf("two runs of the same events differ:\n%+v\n%+v", a, b)
	}
}

func TestIncidentAttemptsCapped(t *testing.T) {
	b := newBench(t, testSpec(3, 1), 0)
	c := b.n.co
	c.fenceOpened(0, 2, 1, fence.BMC)
	f := fence.New(true, time.Millisecond, time.Hour)
	for i := 0; i < 100; i++ {
		now := time.Duration(i+1) * time.Millisecond
		f.Step(now, fence.Input{Start: true, Reply: &fence.Reply{Op: fence.Status, On: true}})
		c.fenceNoted(now, 2, f, false)
	}
	x := c.findIncident(2, true).x
	if x.Fence.Requests != len(f.Attempts()) || len(x.Fence.Attempts) != maxAttempts ||
		x.Fence.Attempts[0] != f.Attempts()[0] || x.Fence.Attempts[maxAttempts-1] != f.Attempts()[len(f.Attempts())-1] {
		t.Fatalf("%d requests, %d attempts kept (first %+v, last %+v); want %d, the first and the last of %d", x.Fence.Requests, len(x.Fence.Attempts),
			x.Fence.Attempts[0], x.Fence.Attempts[len(x.Fence.Attempts)-1], maxAttempts, len(f.Attempts()))
	}
}

// cancels lists the BMCCancel requests for host h in reqs, and whether a
// power-off for h came before the first of them.
func cancels(reqs []BMC, h int) (n int, offBefore bool) {
	off := false
	for _, r := range reqs {
		switch {
		case r.Host != h:
		case r.Op == BMCPowerOff && n == 0:
			off = true
		case r.Op == BMCCancel:
			if n == 0 {
				offBefore = off
			}
			n++
		}
	}
	return n, offBefore
}

// TestFenceEndDropsBMCRequests: a fence that sent a power-off to a BMC that
// never answers drops what it queued once it ends, whether abandoned (the
// host is heard again) or proven by the lease; a fence the BMC proved, or
// one without a BMC, has nothing to drop.
func TestFenceEndDropsBMCRequests(t *testing.T) {
	b := incidentBench(t, 1, true) // a BMC that never answers
	b.run(9*time.Second, 1)
	if n, _ := cancels(b.bmcReqs, 2); n != 0 {
		t.Fatalf("%d cancels while the fence runs", n)
	}
	b.run(12*time.Second, 1, 2) // h3 is heard again: abandoned
	if n, off := cancels(b.bmcReqs, 2); n != 1 || !off {
		t.Errorf("abandoned fence: %d cancels, a power-off before: %v; want 1 after the power-off (%+v)", n, off, b.bmcReqs)
	}

	b = incidentBench(t, 1, true)
	b.run(30*time.Second, 1) // h3 stays silent: the lease proves the fence
	x := versions(t, b.incidents)
	if x.Proof.Kind != ProofLease {
		t.Fatalf("proof %s; want the lease", x.Proof.Kind)
	}
	if n, off := cancels(b.bmcReqs, 2); n != 1 || !off {
		t.Errorf("fence proven by the lease: %d cancels, a power-off before: %v; want 1 after the power-off (%+v)", n, off, b.bmcReqs)
	}

	b = incidentBench(t, 1, true)
	b.bmcOff = true
	b.run(20*time.Second, 1)
	if n, _ := cancels(b.bmcReqs, 2); n != 0 {
		t.Errorf("fence proven by the BMC: %d cancels; want none", n)
	}
	b = incidentBench(t, 1, false)
	b.run(30*time.Second, 1)
	if len(b.bmcReqs) != 0 {
		t.Errorf("fence without a BMC: requests %+v; want none", b.bmcReqs)
	}
}
