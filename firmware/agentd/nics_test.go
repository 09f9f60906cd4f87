package agentd

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/drivers/nic/nictest"
	"github.com/vigil-ha/vigil/firmware/agent/agenttest"
	"github.com/vigil-ha/vigil/hb"
)

// withFakeNICs gives d (host 0, h1) a fake NIC of a network of testCluster's
// three hosts on its two links, and its per-link readers as openNICs makes
// them. The network stamps datagrams with rec's clock, counted from
// d.start as the real NICs' kernel stamps are.
func withFakeNICs(d *daemon, rec *agenttest.Recorder) *nictest.Network {
	nw := nictest.NewNetwork(len(d.cfg.Hosts), len(d.cfg.Links), func() time.Time { return d.start.Add(rec.Clock) })
	d.nics = nw.NIC(d.self)
	d.readers = make([]*reader, len(d.cfg.Links))
	for l := range d.readers {
		d.readers[l] = d.newReader(l)
	}
	return nw
}

// TestDrainOverFakeNICs: a heartbeat another host sends reaches h1's core
// through drain and the link's reader, counted from when it arrived.
func TestDrainOverFakeNICs(t *testing.T) {
	const gap = 200 * time.Millisecond // from each send to h1's read
	for _, tc := range []struct {
		name     string
		setup    func(nw *nictest.Network)
		from     int // sending host
		link     int // the link it is sent on
		key      byte
		claim    int      // the link the message says; -1: the one it is sent on
		heard    string   // per link, whether h1 heard the sender: "10" = link 0 only
		drained  int      // datagrams h1 drained of the two sent
		drop     string   // drops counted, "" = none
		silentOn []string // other peers that must stay unheard
	}{
		{"h2 on link 0", nil, 1, 0, 1, -1, "10", 2, "", []string{"h3"}},
		{"h3 on link 1", nil, 2, 1, 1, -1, "01", 2, "", []string{"h2"}},
		{"h1's link 0 without carrier", func(nw *nictest.Network) { nw.SetCarrier(0, 0, false) }, 1, 0, 1, -1, "00", 0, "", nil},
		{"h2's link 0 without carrier", func(nw *nictest.Network) { nw.SetCarrier(1, 0, false) }, 1, 0, 1, -1, "00", 0, "", nil},
		{"another link without carrier", func(nw *nictest.Network) { nw.SetCarrier(0, 1, false) }, 1, 0, 1, -1, "10", 2, "", nil},
		{"h1 and h2 partitioned", func(nw *nictest.Network) { nw.Block(0, 1, true) }, 1, 0, 1, -1, "00", 0, "", nil},
		{"lost on the way", func(nw *nictest.Network) { nw.DropNext(1, 0, 0, 2) }, 1, 0, 1, -1, "00", 0, "", nil},
		{"a foreign key", nil, 1, 0, 9, -1, "00", 2, "unknown-key+2", nil},
		{"sent on another link than it says", nil, 1, 0, 1, 1, "00", 2, "malformed+2", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, rec := newTestDaemon(t)
			nw := withFakeNICs(d, rec)
			if tc.setup != nil {
				tc.setup(nw)
			}
			claim := tc.link
			if tc.claim >= 0 {
				claim = tc.claim
			}
			ring := testRing(t, testKey(tc.key))
			before := d.drops.Snapshot()
			// The first heartbeat brings the sender's view, which the core
			// steps at once; the second only refreshes the link, from the
			// time it arrived.
			var sentAt time.Duration
			for seq := uint64(1); seq <= 2; seq++ {
				m := hb.Message{From: tc.from, Incarnation: 7, Seq: seq, Link: claim, Coordinator: -1, Version: 1}
				if err := nw.NIC(tc.from).Send(tc.link, packet(t, "unit", ring, m)); err != nil {
					t.Fatalf("send from host %d: %v", tc.from, err)
				}
				sentAt = rec.Clock
				rec.Clock += gap // h1 reads late
				d.drain()
			}

			if got := nw.NIC(0).Counters().Drained; got != uint64(tc.drained) {
				t.Errorf("h1 drained %d datagrams, want %d", got, tc.drained)
			}
			if got := dropDelta(before, d.drops.Snapshot()); got != tc.drop {
				t.Errorf("drops %q, want %q", got, tc.drop)
			}
			name := d.spec.Hosts[tc.from].Name
			heard, ago := heardOn(t, d, rec, name)
			got := ""
			for l, h := range heard {
				got += map[bool]string{true: "1", false: "0"}[h]
				if h && ago[l] != rec.Clock-sentAt {
					t.Errorf("%s heard on link %d %v ago, want %v: counted from its arrival", name, l, ago[l], rec.Clock-sentAt)
				}
			}
			if got != tc.heard {
				t.Errorf("%s heard on links %s, want %s", name, got, tc.heard)
			}
			for _, other := range tc.silentOn {
				if heard, _ := heardOn(t, d, rec, other); strings.Contains(fmt.Sprint(heard), "true") {
					t.Errorf("%s heard on links %v, but it sent nothing", other, heard)
				}
			}
		})
	}
}

// TestSendOverFakeNICs: a heartbeat the core sends through env reaches the
// other hosts' NICs encoded with the cluster's codec.
func TestSendOverFakeNICs(t *testing.T) {
	for _, tc := range []struct {
		name       string
		setup      func(nw *nictest.Network)
		link       int
		seqs       []uint64 // heartbeats sent, in order
		at         []int    // hosts that get them
		sendErrors uint64   // counted on the link
	}{
		{"on link 0", nil, 0, []uint64{5}, []int{1, 2}, 0},
		{"on link 1", nil, 1, []uint64{5}, []int{1, 2}, 0},
		{"two in a row", nil, 0, []uint64{5, 6}, []int{1, 2}, 0},
		{"h3 partitioned", func(nw *nictest.Network) { nw.Block(0, 2, true) }, 0, []uint64{5}, []int{1}, 0},
		{"h2's link without carrier", func(nw *nictest.Network) { nw.SetCarrier(1, 1, false) }, 1, []uint64{5}, []int{2}, 0},
		{"h1's link without carrier: lost, no error", func(nw *nictest.Network) { nw.SetCarrier(0, 0, false) }, 0, []uint64{5}, nil, 0},
		{"the send fails", func(nw *nictest.Network) { nw.FailSend(0, 1, syscall.ENOBUFS) }, 1, []uint64{5, 6}, nil, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, rec := newTestDaemon(t)
			nw := withFakeNICs(d, rec)
			if tc.setup != nil {
				tc.setup(nw)
			}
			var sent []hb.Message
			for _, seq := range tc.seqs {
				m := hb.Message{From: d.self, Incarnation: 1, Seq: seq, Link: tc.link, SentAt: rec.Clock,
					Hears: hb.HostSet(0).With(1), Coordinator: 1, Version: 3}
				env{d}.Send(&m)
				sent = append(sent, m)
			}
			if got := d.sendErrors[tc.link]; got != tc.sendErrors {
				t.Errorf("send errors on link %d: %d, want %d", tc.link, got, tc.sendErrors)
			}
			codec := hb.NewCodec(hb.ClusterID("unit"), testRing(t, testKey(1)))
			for h := 1; h < len(d.cfg.Hosts); h++ {
				want := 0
				for _, a := range tc.at {
					if a == h {
						want = len(sent)
					}
				}
				got := nw.NIC(h).Pending()
				if len(got) != want {
					t.Errorf("host %d has %d datagrams queued, want %d", h, len(got), want)
					continue
				}
				for i, dg := range got {
					if dg.Link != tc.link || dg.From != nictest.Addr(d.self, tc.link) {
						t.Errorf("host %d datagram %d: link %d from %s, want link %d from %s", h, i, dg.Link, dg.From, tc.link, nictest.Addr(d.self, tc.link))
					}
					var m hb.Message
					if err := codec.Decode(dg.Data, &m, time.Now()); err != nil {
						t.Errorf("host %d datagram %d does not decode: %v", h, i, err)
						continue
					}
					if g, w := summary(&m), summary(&sent[i]); g != w {
						t.Errorf("host %d decodes\n%s\nwant\n%s", h, g, w)
					}
				}
			}
		})
	}
}

// summary renders the fields of a heartbeat the tests send.
func summary(m *hb.Message) string {
	return fmt.Sprintf("from=%d inc=%d seq=%d link=%d sent=%v hears=%b coord=%d version=%d assignments=%d",
		m.From, m.Incarnation, m.Seq, m.Link, m.SentAt, m.Hears, m.Coordinator, m.Version, len(m.Assignments))
}
