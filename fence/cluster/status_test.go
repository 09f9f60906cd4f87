package cluster

import (
	"testing"
	"time"

	"github.com/vigil-ha/vigil/hb"
)

// TestShutdownReleases: a stopping agent stops its VMs, publishes them
// released and only then says it is done; it takes no new assignment.
func TestShutdownReleases(t *testing.T) {
	b := newBench(t, testSpec(3, 2), 2)
	b.run(5*time.Second, 0, 1)
	b.step(Received{Msg: &hb.Message{From: 0, Incarnation: 1, Link: 0, Version: 101, Coordinator: 0,
		Assignments: []hb.Assignment{{VM: 0, Host: 2, Epoch: 1, From: -1}}}})
	b.run(b.now+500*msec, 0, 1)
	b.step(VMDone{VM: 0, Op: VMStart, Seq: b.n.claims[0].opSeq})
	if b.n.Released() {
		t.Fatal("Released before any shutdown")
	}
	b.step(Command{Name: "shutdown"})
	if b.n.Released() {
		t.Fatal("Released while its VM still runs")
	}
	b.step(VMDone{VM: 0, Op: VMStop, Seq: b.n.claims[0].opSeq})
	if !b.n.Released() {
		t.Fatalf("not Released after the VM stopped; claim %+v", b.n.claims[0].Claim)
	}
	r := b.slots[2]
	if len(r.Claims) != 1 || r.Claims[0].State != Released || r.Claims[0].Reason != AgentStop || !r.Maintenance {
		t.Fatalf("record on the datastore %+v: want vm1 released for agent-stop and the host out of placement", r)
	}
	b.step(Received{Msg: &hb.Message{From: 0, Incarnation: 1, Link: 0, Version: 102, Coordinator: 0,
		Assignments: []hb.Assignment{{VM: 1, Host: 2, Epoch: 1, From: -1}}}})
	b.run(b.now+time.Second, 0, 1)
	if len(b.started) != 1 {
		t.Fatalf("a stopping host started %v", b.started)
	}
	b.step(Command{Name: "maintenance-exit"})
	if !b.n.maint {
		t.Fatal("maintenance-exit undid a shutdown")
	}
}

func TestStatus(t *testing.T) {
	b := newBench(t, testSpec(3, 1), 2)
	b.run(5*time.Second, 0, 1)
	b.run(b.now+2*time.Second, 0) // h2 falls silent
	s := b.n.Status(b.now)
	if s.Host != "h3" || s.Self != "healthy" || s.Lease != "fresh" || len(s.Peers) != 2 || len(s.Datastores) != 1 {
		t.Fatalf("status %+v", s)
	}
	h1, h2 := s.Peers[0], s.Peers[1]
	if h1.Name != "h1" || h1.Verdict != "alive" || h1.Silent != 0 || h1.Links[0].State != "up" || h1.Links[0].Mean != 100*msec {
		t.Errorf("h1: %+v", h1)
	}
	if h2.Verdict == "alive" || h2.Silent < time.Second || h2.Links[1].State != "down" || h2.Links[1].Ago != h2.Silent {
		t.Errorf("h2: %+v", h2)
	}
	if b.n.HostIndex("h2") != 1 || b.n.HostIndex("h9") != -1 {
		t.Errorf("HostIndex")
	}
}
