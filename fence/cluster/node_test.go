package cluster

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/hb"
)

const msec = time.Millisecond

func testSpec(hosts, vms int) *Spec {
	s := &Spec{Name: "t", Links: 2, Datastores: 1,
		Timing: Timing{Heartbeat: 100 * msec, LinkTimeout: 500 * msec, DatastoreInterval: time.Second, IOTimeout: 2 * time.Second,
			LeaseTimeout: 4 * time.Second, WatchdogTimeout: 4 * time.Second, Margin: time.Second, FenceTimeout: 20 * time.Second,
			Grace: 2 * time.Second, BMCPoll: 200 * msec},
		Policy: Policy{HostFailures: 1, RestartAttempts: 3, RestartBackoff: time.Second}}
	for i := 0; i < hosts; i++ {
		s.Hosts = append(s.Hosts, HostSpec{Name: "h" + string(rune('1'+i)), CPU: 16, MemoryMiB: 16384})
	}
	for i := 0; i < vms; i++ {
		s.VMs = append(s.VMs, VMSpec{Name: "vm" + string(rune('1'+i)), CPU: 1, MemoryMiB: 1024, Priority: Medium, Protected: true, Host: -1, Isolation: ShutDown})
	}
	return s
}

// bench drives one node against a loopback datastore that answers at once:
// slots holds every host's record, and the test plays the peers.
type bench struct {
	t       *testing.T
	n       *Node
	now     time.Duration
	slots   []*Record
	dsErr   error
	hang    bool
	pets    int
	logs    []string
	started []int
	sent    int

	incidents []*Incident // every RecordIncident, in order
	bmcOff    bool        // answer BMC requests: power-off done, power reads off
	bmcReqs   []BMC       // every BMC request, cancels included
	vmOK      bool        // answer VM starts: running
}

func newBench(t *testing.T, s *Spec, self int) *bench {
	b := &bench{t: t, n: NewNode(Config{Spec: s, Self: self, Incarnation: 1}), slots: make([]*Record, len(s.Hosts))}
	return b
}

func (b *bench) step(ev Event) {
	queue := []Event{ev}
	for len(queue) > 0 {
		ev, queue = queue[0], queue[1:]
		for _, a := range b.n.Step(b.now, ev) {
			switch x := a.(type) {
			case WriteSlot:
				if b.hang {
					continue
				}
				if b.dsErr == nil {
					b.slots[x.Record.Host] = x.Record
				}
				queue = append(queue, SlotWritten{DS: x.DS, Err: b.dsErr})
			case ReadSlots:
				if b.hang {
					continue
				}
				recs := append([]*Record(nil), b.slots...)
				queue = append(queue, SlotsRead{DS: x.DS, Records: recs, Err: b.dsErr})
			case PetWatchdog:
				b.pets++
			case Log:
				b.logs = append(b.logs, x.Component+": "+x.Msg)
			case VM:
				if x.Op == VMStart {
					b.started = append(b.started, x.VM)
					if b.vmOK {
						queue = append(queue, VMDone{VM: x.VM, Op: x.Op, Seq: x.Seq})
					}
				}
			case BMC:
				b.bmcReqs = append(b.bmcReqs, x)
				if b.bmcOff && x.Op != BMCCancel {
					queue = append(queue, BMCReplied{Host: x.Host, Op: x.Op})
				}
			case RecordIncident:
				b.incidents = append(b.incidents, x.Incident)
			case Send:
				b.sent++
			}
		}
	}
}

// run ticks every heartbeat until the given time; peers lists hosts whose
// heartbeats arrive on every tick, and whose slots advance every second.
func (b *bench) run(until time.Duration, peers ...int) {
	for b.now < until {
		b.now += 100 * msec
		for _, p := range peers {
			for l := 0; l < b.n.spec.Links; l++ {
				b.step(Received{Msg: &hb.Message{From: p, Incarnation: 1, Link: l, Coordinator: -1}})
			}
			if b.now%time.Second == 0 {
				old := b.slots[p]
				r := &Record{Host: p, Incarnation: 1, Counter: 1}
				if old != nil {
					c := *old
					c.Counter++
					r = &c
				}
				b.slots[p] = r
			}
		}
		b.step(Tick{})
	}
}

func (b *bench) logged(sub string) bool {
	for _, l := range b.logs {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

func TestLeaseAndWatchdog(t *testing.T) {
	b := newBench(t, testSpec(3, 0), 0)
	b.run(3*time.Second, 1, 2)
	if b.n.lease != leaseFresh || b.pets == 0 {
		t.Fatalf("lease %d pets %d: want fresh and petting", b.n.lease, b.pets)
	}
	b.dsErr = errors.New("EIO")
	pets := b.pets
	b.run(5*time.Second, 1, 2)
	if b.n.lease != leaseFresh {
		t.Fatalf("a 2s datastore blip cost the lease")
	}
	b.run(9*time.Second, 1, 2)
	if b.n.lease != leaseLapsed || !b.logged("lease lapsed") {
		t.Fatalf("lease %d after 6s of failed writes: want lapsed", b.n.lease)
	}
	stopped := b.pets
	b.run(12*time.Second, 1, 2)
	if b.pets != stopped || stopped <= pets {
		t.Fatalf("pets %d -> %d -> %d: a lapsed lease must not pet while its writes fail", pets, stopped, b.pets)
	}
	if b.n.Self() != DatastoreLost {
		t.Fatalf("self verdict %s, want datastore-lost", b.n.Self())
	}
	// A renewal that lands (observers read it) entitles the host again; the
	// network alone never does (see TestLeaseHeldByNetworkQuorum).
	b.dsErr = nil
	b.run(14*time.Second, 1, 2)
	if b.n.lease != leaseFresh || b.pets == stopped {
		t.Fatalf("lease %d, pets %d -> %d: a counted renewal must entitle the host again", b.n.lease, stopped, b.pets)
	}
}

func TestLeaseProofWaitsForAReadAfterTheDeadline(t *testing.T) {
	b := newBench(t, testSpec(3, 0), 0)
	b.run(5*time.Second, 1, 2)
	b.run(6*time.Second, 1) // h3 silent on the network and on storage
	p := &b.n.peers[2]
	deadline := max(p.store[0].seen+4*time.Second, p.lostAt+b.n.spec.Timing.QuorumLoss()) + 4*time.Second
	// Reads start every second: stop just before the deadline, after a read
	// that the older rule (t_seen+L+io+r) would already have taken.
	b.run(deadline-100*msec, 1)
	if p.store[0].same < p.store[0].seen+7*time.Second {
		t.Fatalf("test set-up: last read %v does not pass t_seen+L+io+r = %v", p.store[0].same, p.store[0].seen+7*time.Second)
	}
	// The clock condition alone (a later now) must not make a proof: no read
	// has started after the deadline yet.
	if ok, _, _ := b.n.leaseProof(2, deadline+time.Hour); ok {
		t.Fatalf("proof (c) with no read started after the watchdog deadline %v (last read %v)", deadline, b.n.peers[2].store[0].same)
	}
	b.run(deadline+2*time.Second, 1)
	if ok, _, _ := b.n.leaseProof(2, b.now); !ok {
		t.Fatalf("no proof (c) at %v: deadline %v, last read %v", b.now, deadline, b.n.peers[2].store[0].same)
	}
	// Its slot advances again (a renewal landed): no proof for the new counter.
	r := *b.slots[2]
	r.Counter++
	b.slots[2] = &r
	b.run(b.now+time.Second, 1)
	if ok, _, _ := b.n.leaseProof(2, b.now); ok {
		t.Fatalf("proof (c) survived a new renewal")
	}
}

func TestVerdictTable(t *testing.T) {
	cases := []struct {
		name    string
		prep    func(b *bench)
		peers   []int // hosts still heartbeating (and writing) after 5 s
		writers []int // hosts still writing their slot but silent on the network
		want    Verdict
	}{
		{name: "heard", peers: []int{1, 2}, want: Alive},
		{name: "silent network, advancing slot", peers: []int{1}, writers: []int{2}, want: Partitioned},
		{name: "silent network, declared isolated", peers: []int{1}, writers: []int{2},
			prep: func(b *bench) { b.slots[2] = &Record{Host: 2, Incarnation: 1, Counter: 100, Isolated: true} }, want: Isolated},
		{name: "silent everywhere", peers: []int{1}, want: Failed},
		{name: "own datastore unreadable", peers: []int{1}, prep: func(b *bench) { b.dsErr = errors.New("EIO") }, want: Partitioned},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBench(t, testSpec(3, 0), 0)
			b.run(5*time.Second, 1, 2)
			if tc.prep != nil {
				tc.prep(b)
			}
			for b.now < 12*time.Second {
				b.run(b.now+100*msec, tc.peers...)
				if b.now%time.Second == 0 {
					for _, w := range tc.writers {
						c := *b.slots[w]
						c.Counter++
						b.slots[w] = &c
					}
				}
			}
			if got := b.n.Verdicts()[2]; got != tc.want {
				t.Fatalf("verdict on h3 %s, want %s; rows: %v", got, tc.want, b.n.Explain(2, b.now))
			}
		})
	}
}

func TestSilentPeerSuspectBeforeGrace(t *testing.T) {
	b := newBench(t, testSpec(3, 0), 0)
	b.run(5*time.Second, 1, 2)
	b.run(5*time.Second+1500*msec, 1)
	if got := b.n.Verdicts()[2]; got == Failed {
		t.Fatalf("failed after 1.5s of silence, grace is 2s")
	}
}

func TestClaimConflictWithdraws(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rival    *Claim
		wantRun  bool
		wantSays string
	}{
		{name: "clean claim starts", wantRun: true, wantSays: "starting vm1"},
		{name: "rival claim above the superseded epoch", rival: &Claim{VM: 0, Epoch: 5, State: Claiming}, wantSays: "withdrew claim on vm1"},
		{name: "old owner's claim at the superseded epoch", rival: &Claim{VM: 0, Epoch: 4, State: Running}, wantRun: true, wantSays: "starting vm1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBench(t, testSpec(3, 1), 2)
			b.run(5*time.Second, 0, 1)
			if tc.rival != nil {
				r := *b.slots[1]
				r.Claims = []Claim{*tc.rival}
				b.slots[1] = &r
			}
			b.step(Received{Msg: &hb.Message{From: 0, Incarnation: 1, Link: 0, Version: 99, Coordinator: 0,
				Assignments: []hb.Assignment{{VM: 0, Host: 2, Epoch: 5, From: 1, FromEpoch: 4}}}})
			b.run(b.now+2*time.Second, 0, 1)
			if ran := len(b.started) == 1; ran != tc.wantRun || !b.logged(tc.wantSays) {
				t.Fatalf("started %v, want run=%v and a log %q; logs: %v", b.started, tc.wantRun, tc.wantSays, b.logs)
			}
		})
	}
}

func TestQuorum(t *testing.T) {
	for _, tc := range []struct {
		d, own, obs int
	}{{1, 1, 1}, {2, 1, 2}, {3, 2, 2}} {
		own, obs := LeaseQuorum(tc.d)
		if own != tc.own || obs != tc.obs || own+obs <= tc.d {
			t.Errorf("%d datastores: lease %d/%d", tc.d, own, obs)
		}
	}
	for _, tc := range []struct {
		set  uint8
		d    int
		want bool
	}{
		{0b1, 1, true}, {0b0, 1, false},
		{0b01, 2, true}, {0b10, 2, false}, {0b11, 2, true},
		{0b011, 3, true}, {0b101, 3, true}, {0b110, 3, true}, {0b001, 3, false}, {0b100, 3, false},
	} {
		if got := ClaimQuorum(tc.set, tc.d); got != tc.want {
			t.Errorf("ClaimQuorum(%03b, %d) = %v, want %v", tc.set, tc.d, got, tc.want)
		}
	}
	// Any two sets that pass share a datastore.
	for d := 1; d <= 3; d++ {
		for a := uint8(0); a < 1<<d; a++ {
			for b := uint8(0); b < 1<<d; b++ {
				if ClaimQuorum(a, d) && ClaimQuorum(b, d) && a&b == 0 {
					t.Errorf("%d datastores: %03b and %03b both pass and share none", d, a, b)
				}
			}
		}
	}
}

func TestLeaseHeldByNetworkQuorum(t *testing.T) {
	b := newBench(t, testSpec(3, 0), 0)
	ack := func(until time.Duration) {
		for b.now < until {
			b.now += 100 * msec
			for _, p := range []int{1, 2} {
				b.step(Received{Msg: &hb.Message{From: p, Incarnation: 1, Link: 0, Coordinator: -1, Hears: hb.HostSet(0).With(0), Version: 1}})
			}
			b.step(Tick{})
		}
	}
	ack(3 * time.Second)
	b.dsErr = errors.New("EIO")
	ack(12 * time.Second)
	if b.n.lease != leaseHeld || b.n.Self() != DatastoreLost {
		t.Fatalf("lease %d self %s: want held by the network quorum", b.n.lease, b.n.Self())
	}
	pets := b.pets
	ack(13 * time.Second)
	if b.pets == pets {
		t.Fatalf("a host held by its network quorum must keep petting")
	}
	b.run(15*time.Second, 1) // one peer, no acknowledgements: no quorum
	if b.n.lease != leaseLapsed {
		t.Fatalf("lease %d: want lapsed once the quorum is gone", b.n.lease)
	}
}

// TestBadEventsAreIgnored: whatever the shell hands over about links,
// datastores, hosts or VMs the cluster does not have is dropped, never a
// crash.
func TestBadEventsAreIgnored(t *testing.T) {
	b := newBench(t, testSpec(3, 1), 0)
	b.run(3*time.Second, 1, 2)
	for _, ev := range []Event{
		GatewayReplied{Link: 7, OK: true}, GatewayReplied{Link: -1},
		LinkChanged{Link: 9}, SlotWritten{DS: 5}, SlotsRead{DS: -2},
		SlotsRead{DS: 0, Records: []*Record{{Host: 2}}}, // a record in the wrong slot
		BMCReplied{Host: 40}, VMDone{VM: 99, Op: VMStart}, VMExited{VM: -1},
		Received{Msg: &hb.Message{From: 17}}, Received{Msg: &hb.Message{From: 1, Link: 6}},
		Received{Msg: &hb.Message{From: 1, Incarnation: 1, Version: 7, Assignments: []hb.Assignment{{VM: 55, Host: 0, Epoch: 3}}}},
		Command{Name: "reboot-everything"},
	} {
		b.step(ev)
	}
	if !b.logged(`unknown command "reboot-everything"`) {
		t.Fatalf("an unknown command is not reported")
	}
	b.run(b.now+2*time.Second, 1, 2)
	if b.n.lease != leaseFresh {
		t.Fatalf("lease %d after bad events: the node must carry on", b.n.lease)
	}
}

// TestStaleHypervisorAnswerIgnored: a start, a stop, a new start; the first
// start's late failure must not release the VM the second start runs.
func TestStaleHypervisorAnswerIgnored(t *testing.T) {
	b := newBench(t, testSpec(3, 1), 2)
	b.run(5*time.Second, 0, 1)
	assign := func(epoch uint64) {
		b.step(Received{Msg: &hb.Message{From: 0, Incarnation: 1, Link: 0, Version: 100 + epoch, Coordinator: 0,
			Assignments: []hb.Assignment{{VM: 0, Host: 2, Epoch: epoch, From: -1, FromEpoch: epoch - 1}}}})
		b.run(b.now+500*msec, 0, 1)
	}
	assign(1)
	first := b.n.claims[0].opSeq
	b.step(Command{Name: "maintenance-enter"})
	b.step(VMDone{VM: 0, Op: VMStop, Seq: b.n.claims[0].opSeq})
	b.step(Command{Name: "maintenance-exit"})
	assign(2)
	if c := b.n.claims[0]; c.State != Starting || c.Epoch != 2 {
		t.Fatalf("claim %+v: want epoch 2 starting", c.Claim)
	}
	b.step(VMDone{VM: 0, Op: VMStart, Seq: first, Err: errors.New("superseded")})
	if c := b.n.claims[0]; c.State != Starting {
		t.Fatalf("a late answer to the first start released the second: %+v", c.Claim)
	}
	b.step(VMDone{VM: 0, Op: VMStart, Seq: b.n.claims[0].opSeq})
	if c := b.n.claims[0]; c.State != Running {
		t.Fatalf("the second start's answer did not count: %+v", c.Claim)
	}
}

func TestHeardFastPath(t *testing.T) {
	b := newBench(t, testSpec(3, 0), 0)
	m := &hb.Message{From: 1, Incarnation: 1, Link: 0, Version: 5, Coordinator: -1}
	if b.n.Heard(b.now, m) {
		t.Fatalf("fast path before the node started")
	}
	b.run(time.Second, 1, 2)
	if b.n.Heard(b.now, m) {
		t.Fatalf("fast path for a digest version the node never took")
	}
	b.step(Received{Msg: m})
	last, _ := b.n.hot[1].net.Link(0).LastHeard()
	b.now += 50 * msec
	if !b.n.Heard(b.now, m) {
		t.Fatalf("no fast path for an unchanged heartbeat")
	}
	if l, _ := b.n.hot[1].net.Link(0).LastHeard(); l != b.now || l == last {
		t.Fatalf("the fast path did not feed the detector: last heard %v", l)
	}
	for _, bad := range []*hb.Message{
		{From: 1, Incarnation: 2, Link: 0, Version: 5}, // a restart
		{From: 1, Incarnation: 1, Link: 0, Version: 6}, // a new view
		{From: 0, Incarnation: 1, Link: 0, Version: 5}, // ourselves
		{From: 7, Incarnation: 1, Link: 0, Version: 5}, // no such host
		{From: 1, Incarnation: 1, Link: 9, Version: 5}, // no such link
	} {
		if b.n.Heard(b.now, bad) {
			t.Errorf("fast path taken for %+v", *bad)
		}
	}
}

// TestVMFailover: a VM whose guest failed past its policy is stopped and
// released with reason app-failed; a failover of a VM not running here,
// or one already stopping, does nothing.
func TestVMFailover(t *testing.T) {
	b := newBench(t, testSpec(3, 1), 2)
	b.run(5*time.Second, 0, 1)
	b.step(Received{Msg: &hb.Message{From: 0, Incarnation: 1, Link: 0, Version: 101, Coordinator: 0,
		Assignments: []hb.Assignment{{VM: 0, Host: 2, Epoch: 1, From: -1}}}})
	b.run(b.now+500*msec, 0, 1)
	b.step(VMDone{VM: 0, Op: VMStart, Seq: b.n.claims[0].opSeq})
	if c := b.n.claims[0]; c.State != Running {
		t.Fatalf("claim %+v: want running", c.Claim)
	}
	b.step(VMFailover{VM: 5, Why: "no such VM"})
	b.step(VMFailover{VM: 0, Why: "db: 3 restarts in 10m0s are spent"})
	if !b.logged("failing vm1 over to another host: db: 3 restarts in 10m0s are spent") {
		t.Fatalf("no log line: %q", b.logs)
	}
	c := b.n.claims[0]
	if !c.stopping || c.pend != AppFailed {
		t.Fatalf("claim %+v stopping %v pend %v; want a stop pending app-failed", c.Claim, c.stopping, c.pend)
	}
	seq := c.opSeq
	b.step(VMFailover{VM: 0, Why: "again"})
	if b.n.claims[0].opSeq != seq {
		t.Fatal("a second failover asked for another stop")
	}
	b.step(VMDone{VM: 0, Op: VMStop, Seq: seq})
	if c := b.n.claims[0]; c.State != Released || c.Reason != AppFailed || c.Reason.String() != "app-failed" {
		t.Fatalf("claim %+v; want released, app-failed", c.Claim)
	}
	if got := Reason(200).String(); got != "reason-200" {
		t.Errorf("an unknown reason: %q", got)
	}
}

// TestVMStopStart: an operator's stop of a VM running here stops it and
// releases it as stopped (never restarted); a start of it marks the
// release start-asked, for the coordinator to place; either of a VM not
// held here is refused with a log line.
func TestVMStopStart(t *testing.T) {
	b := newBench(t, testSpec(3, 1), 2)
	b.run(5*time.Second, 0, 1)
	b.step(Command{Name: "vm-start", VM: 0})
	if !b.logged("start of vm1 asked, but this host holds no operator's stop of it") {
		t.Fatalf("a start of a VM not stopped here: %q", b.logs)
	}
	b.step(Received{Msg: &hb.Message{From: 0, Incarnation: 1, Link: 0, Version: 101, Coordinator: 0,
		Assignments: []hb.Assignment{{VM: 0, Host: 2, Epoch: 1, From: -1}}}})
	b.run(b.now+500*msec, 0, 1)
	b.step(VMDone{VM: 0, Op: VMStart, Seq: b.n.claims[0].opSeq})
	b.step(Command{Name: "vm-stop", VM: 7})
	b.step(Command{Name: "vm-stop", VM: 0})
	if c := b.n.claims[0]; !c.stopping || c.pend != Stopped {
		t.Fatalf("claim %+v: want a stop pending, stopped", c.Claim)
	}
	b.step(VMDone{VM: 0, Op: VMStop, Seq: b.n.claims[0].opSeq})
	if c := b.n.claims[0]; c.State != Released || c.Reason != Stopped {
		t.Fatalf("claim %+v; want released, stopped", c.Claim)
	}
	b.step(Command{Name: "vm-stop", VM: 0})
	if !b.logged("stop of vm1 asked, but it does not run here") {
		t.Errorf("a second stop: %q", b.logs)
	}
	b.step(Command{Name: "vm-start", VM: 0})
	if c := b.n.claims[0]; c.State != Released || c.Reason != StartAsked || c.Reason.String() != "start-asked" {
		t.Fatalf("claim %+v; want released, start-asked", c.Claim)
	}
}

// TestVMMove: an operator's move of a VM running here stops it and
// releases it as moved to the target host, which the coordinator prefers;
// a move to this host, or of a VM not running here, is refused.
func TestVMMove(t *testing.T) {
	b := newBench(t, testSpec(3, 1), 2)
	b.run(5*time.Second, 0, 1)
	b.step(Received{Msg: &hb.Message{From: 0, Incarnation: 1, Link: 0, Version: 101, Coordinator: 0,
		Assignments: []hb.Assignment{{VM: 0, Host: 2, Epoch: 1, From: -1}}}})
	b.run(b.now+500*msec, 0, 1)
	b.step(VMDone{VM: 0, Op: VMStart, Seq: b.n.claims[0].opSeq})
	b.step(Command{Name: "vm-move", VM: 0, Host: 2})
	if !b.logged("move of vm1 to h3 asked, but it does not run here, or runs there already") || b.n.claims[0].stopping {
		t.Fatalf("a move to this host: %q", b.logs)
	}
	b.step(Command{Name: "vm-move", VM: 0, Host: 1})
	b.step(VMDone{VM: 0, Op: VMStop, Seq: b.n.claims[0].opSeq})
	c := b.n.claims[0]
	if h, ok := c.Reason.MoveTarget(); c.State != Released || !ok || h != 1 || c.Reason.String() != "moved-to-1" {
		t.Fatalf("claim %+v; want released, moved to host 1", c.Claim)
	}
	if _, ok := Stopped.MoveTarget(); ok {
		t.Error("a plain reason read as a move")
	}
}
