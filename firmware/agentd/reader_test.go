package agentd

import (
	"testing"
	"time"

	"github.com/vigil-ha/vigil/firmware/agent/agenttest"
	"github.com/vigil-ha/vigil/hb"
)

// heardOn returns, for peer name, whether each link has heard it and how
// long ago, as the node's status says at the env's time.
func heardOn(t *testing.T, d *daemon, env *agenttest.Recorder, name string) (heard []bool, ago []time.Duration) {
	t.Helper()
	for _, p := range d.node.Status(env.Clock).Peers {
		if p.Name != name {
			continue
		}
		for _, l := range p.Links {
			heard, ago = append(heard, l.Heard), append(ago, l.Ago)
		}
		return heard, ago
	}
	t.Fatalf("no peer %s in the status", name)
	return nil, nil
}

// TestReaderPacket feeds one link's reader a sequence of packets; each
// step sees the effect of the ones before it (the replay window).
func TestReaderPacket(t *testing.T) {
	d, env := newTestDaemon(t)
	ring := testRing(t, testKey(1))
	r := d.newReader(0)
	good := hb.Message{From: 1, Incarnation: 7, Seq: 1, Link: 0, Coordinator: -1, Version: 1}
	with := func(f func(m *hb.Message)) hb.Message {
		m := good
		f(&m)
		return m
	}
	flipped := packet(t, "unit", ring, with(func(m *hb.Message) { m.Seq = 2 }))
	flipped[len(flipped)-1] ^= 0x01

	for _, step := range []struct {
		name string
		pkt  []byte
		drop string // the drop counted, "" = accepted
	}{
		{"heartbeat from h2 on link 0", packet(t, "unit", ring, good), ""},
		{"the same packet again", packet(t, "unit", ring, good), "replayed+1"},
		{"claims link 1", packet(t, "unit", ring, with(func(m *hb.Message) { m.Link, m.Seq = 1, 2 })), "malformed+1"},
		{"from this host", packet(t, "unit", ring, with(func(m *hb.Message) { m.From, m.Seq = 0, 2 })), "malformed+1"},
		{"from a host outside the cluster", packet(t, "unit", ring, with(func(m *hb.Message) { m.From, m.Seq = 3, 2 })), "malformed+1"},
		{"a flipped byte", flipped, "bad-mac+1"},
		{"another cluster", packet(t, "other", ring, with(func(m *hb.Message) { m.Seq = 2 })), "wrong-cluster+1"},
		{"signed with a foreign key", packet(t, "unit", testRing(t, testKey(9)), with(func(m *hb.Message) { m.Seq = 2 })), "unknown-key+1"},
		{"truncated", packet(t, "unit", ring, good)[:10], "truncated+1"},
		{"an older incarnation", packet(t, "unit", ring, with(func(m *hb.Message) { m.Incarnation, m.Seq = 6, 9 })), "replayed+1"},
		{"the next heartbeat", packet(t, "unit", ring, with(func(m *hb.Message) { m.Seq = 2 })), ""},
	} {
		t.Run(step.name, func(t *testing.T) {
			before := d.drops.Snapshot()
			env.Clock += 100 * time.Millisecond
			r.packet(step.pkt, env.Clock)
			if got := dropDelta(before, d.drops.Snapshot()); got != step.drop {
				t.Errorf("drops %q, want %q", got, step.drop)
			}
		})
	}
	heard, _ := heardOn(t, d, env, "h2")
	if want := []bool{true, false}; len(heard) != 2 || heard[0] != want[0] || heard[1] != want[1] {
		t.Errorf("h2 heard on links %v, want %v", heard, want)
	}
	if heard, _ := heardOn(t, d, env, "h3"); heard[0] || heard[1] {
		t.Errorf("h3 heard on links %v, but it sent nothing", heard)
	}
}

// TestReaderCountsFromArrival: a heartbeat counts from the time the reader
// is given, not from when the core is stepped.
func TestReaderCountsFromArrival(t *testing.T) {
	d, env := newTestDaemon(t)
	ring := testRing(t, testKey(1))
	r := d.newReader(1)
	m := hb.Message{From: 2, Incarnation: 3, Seq: 1, Link: 1, Coordinator: -1, Version: 1}
	r.packet(packet(t, "unit", ring, m), env.Clock) // a new view: stepped at env.Clock
	env.Clock += 100 * time.Millisecond
	m.Seq = 2
	r.packet(packet(t, "unit", ring, m), env.Clock-40*time.Millisecond) // read 40 ms late
	heard, ago := heardOn(t, d, env, "h3")
	if !heard[1] || heard[0] {
		t.Fatalf("h3 heard on links %v, want only link 1", heard)
	}
	if ago[1] != 40*time.Millisecond {
		t.Errorf("h3 last heard on link 1 %v ago, want 40ms (its arrival)", ago[1])
	}
	if got := dropDelta(map[string]uint64{}, d.drops.Snapshot()); got != "" {
		t.Errorf("drops %q, want none", got)
	}
}

// TestReaderKeyReload: after the keys are replaced (SIGHUP), a reader made
// before takes the new ring at its next packet.
func TestReaderKeyReload(t *testing.T) {
	d, env := newTestDaemon(t)
	oldRing, newRing := testRing(t, testKey(1)), testRing(t, testKey(2))
	r := d.newReader(0)
	m := hb.Message{From: 1, Incarnation: 7, Seq: 1, Link: 0, Coordinator: -1, Version: 1}
	next := func() hb.Message { m.Seq++; return m }

	for _, step := range []struct {
		name   string
		reload *hb.Keyring // set before the packet
		ring   *hb.Keyring // signs the packet
		drop   string
	}{
		{"old key before the reload", nil, oldRing, ""},
		{"new key before the reload", nil, newRing, "unknown-key+1"},
		{"new key after the reload", newRing, newRing, ""},
		{"old key after the reload", nil, oldRing, "unknown-key+1"},
		{"both keys accepted", testRingOf(t, testKey(2), testKey(1)), oldRing, ""},
		{"the new one too", nil, newRing, ""},
	} {
		t.Run(step.name, func(t *testing.T) {
			if step.reload != nil {
				d.keys.set(step.reload)
			}
			before := d.drops.Snapshot()
			env.Clock += 100 * time.Millisecond
			r.packet(packet(t, "unit", step.ring, next()), env.Clock)
			if got := dropDelta(before, d.drops.Snapshot()); got != step.drop {
				t.Errorf("drops %q, want %q", got, step.drop)
			}
		})
	}
}

// testRingOf returns a ring of keys in order: the first signs.
func testRingOf(t testing.TB, keys ...[]byte) *hb.Keyring {
	t.Helper()
	var lines []hb.KeyLine
	for _, k := range keys {
		lines = append(lines, hb.KeyLine{Key: k})
	}
	ring, err := hb.NewKeyring(lines...)
	if err != nil {
		t.Fatalf("keyring: %v", err)
	}
	return ring
}
