package sim

import (
	"slices"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/firmware/config"
	"github.com/vigil-ha/vigil/hb"
)

// testSpec is a cluster of hosts h1..hN (the last without a BMC) and VMs
// vm1..vm4, with the default timing.
func testSpec(hosts, links, datastores int) *cluster.Spec {
	s := &cluster.Spec{Name: "t", Links: links, Datastores: datastores, Timing: config.Default().Spec().Timing}
	for i := 0; i < hosts; i++ {
		s.Hosts = append(s.Hosts, cluster.HostSpec{Name: "h" + itoa(i+1), CPU: 8, MemoryMiB: 8192, BMC: i < hosts-1})
	}
	for i := 0; i < 4; i++ {
		s.VMs = append(s.VMs, cluster.VMSpec{Name: "vm" + itoa(i+1), CPU: 1, MemoryMiB: 1024, Protected: true, Host: -1})
	}
	return s
}

type seen struct {
	at   time.Duration
	host int
	ev   cluster.Event
}

// bare is a world without agents that records what each host is handed,
// ticks aside.
type bare struct {
	*World
	t   *testing.T
	got []seen
}

func newBare(t *testing.T, hosts, links, datastores int) *bare {
	b := &bare{World: newWorld(testSpec(hosts, links, datastores), DefaultParams(), true), t: t}
	b.tap = func(h int, ev cluster.Event) {
		if _, tick := ev.(cluster.Tick); !tick {
			b.got = append(b.got, seen{b.now, h, ev})
		}
	}
	return b
}

// do applies one script command now.
func (b *bare) do(line string) {
	b.t.Helper()
	s, err := ParseScript("test", "0s "+line, b.spec, Names{}, b.p)
	if err != nil {
		b.t.Fatal(err)
	}
	b.cmds = append(b.cmds, s.Cmds[0])
	b.apply(&b.cmds[len(b.cmds)-1])
}

func (b *bare) env(h int) *hostEnv { return &b.hosts[h].env }

// take returns and forgets what has been seen so far.
func (b *bare) take() []seen {
	g := b.got
	b.got = nil
	return g
}

func TestDelivery(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup []string
		link  int
		want  []int // hosts that receive h1's heartbeat
	}{
		{"clean", nil, 0, []int{1, 2, 3}},
		{"sender cut", []string{"cut h1 0"}, 0, nil},
		{"receiver cut", []string{"cut h3 0"}, 0, []int{1, 3}},
		{"other link cut", []string{"cut h3 1"}, 0, []int{1, 2, 3}},
		{"oneway all links", []string{"oneway h1 h2"}, 0, []int{2, 3}},
		{"oneway other direction", []string{"oneway h2 h1"}, 0, []int{1, 2, 3}},
		{"oneway other link", []string{"oneway h1 h2 1"}, 0, []int{1, 2, 3}},
		{"oneway healed", []string{"oneway h1 h2", "twoway h1 h2"}, 0, []int{1, 2, 3}},
		{"partition", []string{"partition h1,h2|h3,h4"}, 1, []int{1}},
		{"unnamed join the first group", []string{"partition h3|h4"}, 0, []int{1, 2}},
		{"unpartition", []string{"partition h1|h2,h3,h4", "unpartition"}, 0, []int{1, 2, 3}},
		{"frozen receiver", []string{"freeze h2"}, 0, []int{2, 3}},
		{"powered off receiver", []string{"poweroff h3"}, 0, []int{1, 3}},
		{"full loss", []string{"loss h2 0 100"}, 0, []int{2, 3}},
		{"loss cleared", []string{"loss h2 0 100", "loss h2 0 0"}, 0, []int{1, 2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBare(t, 4, 2, 1)
			for _, l := range tc.setup {
				b.do(l)
			}
			b.take()
			m := &hb.Message{From: 0, Link: tc.link}
			b.env(0).Send(m)
			b.RunUntil(time.Millisecond)
			var hosts []int
			for _, s := range b.take() {
				r, ok := s.ev.(cluster.Received)
				if !ok || r.Msg != m {
					t.Fatalf("host %d got %#v, want the message itself", s.host, s.ev)
				}
				if s.at != 200*time.Microsecond {
					t.Errorf("delivered at %v, want 200µs", s.at)
				}
				hosts = append(hosts, s.host)
			}
			if !slices.Equal(hosts, tc.want) {
				t.Errorf("receivers %v, want %v", hosts, tc.want)
			}
		})
	}
}

func TestLossAndDelay(t *testing.T) {
	b := newBare(t, 3, 1, 1)
	b.do("loss h2 0 50")
	b.do("delay h3 0 5ms")
	n := 0
	for i := 0; i < 1000; i++ {
		b.env(0).Send(&hb.Message{Link: 0})
		b.RunUntil(b.now + 10*time.Millisecond)
		for _, s := range b.take() {
			switch s.host {
			case 1:
				n++
			case 2:
				if want := b.now - 10*time.Millisecond + 5200*time.Microsecond; s.at != want {
					t.Fatalf("delayed delivery at %v, want %v", s.at, want)
				}
			}
		}
	}
	if n < 400 || n > 600 {
		t.Errorf("50%% loss delivered %d of 1000", n)
	}
}

func TestLinkChanged(t *testing.T) {
	b := newBare(t, 2, 2, 1)
	b.do("cut h1 1")
	b.do("cut h1 1") // already cut: no second event
	b.do("heal h1 1")
	want := []seen{{0, 0, cluster.LinkChanged{Link: 1}}, {0, 0, cluster.LinkChanged{Link: 1, Up: true}}}
	if got := b.take(); !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestDatastore(t *testing.T) {
	ms := time.Millisecond
	rec := &cluster.Record{Host: 0, Counter: 7}
	for _, tc := range []struct {
		name  string
		fault []string
		heal  string // applied at 5s
		want  []seen // host 0's completions, in order
		slot  bool   // the record is in the slot at the end
	}{
		{"ok", nil, "", []seen{{ms, 0, cluster.SlotWritten{}}}, true},
		{"fail", []string{"ds fail 0"}, "", []seen{{ms, 0, cluster.SlotWritten{Err: ErrIO}}}, false},
		{"fail other host", []string{"ds fail 0 h2"}, "", []seen{{ms, 0, cluster.SlotWritten{}}}, true},
		{"slow", []string{"ds slow 0 3s"}, "", []seen{{3*time.Second + ms, 0, cluster.SlotWritten{}}}, true},
		{"hang until heal", []string{"ds hang 0 h1"}, "ds heal 0 h1", []seen{{5 * time.Second, 0, cluster.SlotWritten{}}}, true},
		{"hang, heal all", []string{"ds hang 0"}, "ds heal 0", []seen{{5 * time.Second, 0, cluster.SlotWritten{}}}, true},
		{"hang never healed", []string{"ds hang 0"}, "", nil, false},
		{"power lost in flight", []string{"ds slow 0 10s"}, "poweroff h1", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBare(t, 2, 1, 1)
			for _, l := range tc.fault {
				b.do(l)
			}
			b.env(0).WriteSlot(0, rec)
			if tc.heal != "" {
				b.RunUntil(5*time.Second - 1)
				if len(b.got) != 0 {
					t.Fatalf("completed before the heal: %v", b.got)
				}
				b.RunUntil(5 * time.Second)
				b.do(tc.heal)
			}
			b.RunUntil(20 * time.Second)
			var got []seen
			for _, s := range b.take() {
				if s.host == 0 {
					got = append(got, s)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if in := b.ds.slots[0][0] == rec; in != tc.slot {
				t.Errorf("record in slot: %v, want %v", in, tc.slot)
			}
		})
	}
}

func TestDatastoreHealOrder(t *testing.T) {
	b := newBare(t, 2, 1, 1)
	rec := &cluster.Record{Counter: 1}
	b.do("ds hang 0 h1")
	b.env(0).ReadSlots(0)
	b.env(0).WriteSlot(0, rec)
	b.env(0).ReadSlots(0)
	b.RunUntil(time.Second)
	b.do("ds heal 0")
	b.RunUntil(2 * time.Second)
	got := b.take()
	if len(got) != 3 {
		t.Fatalf("got %v, want three completions", got)
	}
	r1, _ := got[0].ev.(cluster.SlotsRead)
	_, w := got[1].ev.(cluster.SlotWritten)
	r2, _ := got[2].ev.(cluster.SlotsRead)
	if r1.Records == nil || r1.Records[0] != nil || !w || r2.Records == nil || r2.Records[0] != rec {
		t.Errorf("want read (empty), write, read (record) in issue order; got %v", got)
	}
	for _, s := range got {
		if s.at != time.Second {
			t.Errorf("completed at %v, want at the heal (1s)", s.at)
		}
	}
	if len(r2.Records) != 2 || &r1.Records[0] == &r2.Records[0] {
		t.Errorf("each read must get its own snapshot of every host's slot")
	}
}
