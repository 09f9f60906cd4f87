package hb

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func TestReplayGuard(t *testing.T) {
	type pkt struct {
		from, link int
		inc, seq   uint64
		want       DropReason // 0: accepted
	}
	tests := []struct {
		name  string
		steps []pkt
	}{
		{"in order", []pkt{{0, 0, 1, 1, 0}, {0, 0, 1, 2, 0}, {0, 0, 1, 3, 0}}},
		{"first packet at any sequence", []pkt{{0, 0, 5, math.MaxUint64, 0}, {0, 0, 5, math.MaxUint64 - 1, 0}}},
		{"duplicate", []pkt{{0, 0, 1, 1, 0}, {0, 0, 1, 1, Replayed}}},
		{"reorder inside the window passes once", []pkt{
			{0, 0, 1, 10, 0}, {0, 0, 1, 12, 0}, {0, 0, 1, 11, 0}, {0, 0, 1, 11, Replayed}, {0, 0, 1, 12, Replayed},
		}},
		{"gap then the missing ones", []pkt{
			{0, 0, 1, 1, 0}, {0, 0, 1, 5, 0}, {0, 0, 1, 4, 0}, {0, 0, 1, 2, 0}, {0, 0, 1, 3, 0}, {0, 0, 1, 4, Replayed},
		}},
		{"window edge", []pkt{
			{0, 0, 1, 100, 0}, {0, 0, 1, 100 - ReplayWindow + 1, 0}, {0, 0, 1, 100 - ReplayWindow, Replayed},
		}},
		{"zero sequence at the edge", []pkt{{0, 0, 1, ReplayWindow - 1, 0}, {0, 0, 1, 0, 0}, {0, 0, 1, 0, Replayed}}},
		{"jump of exactly the window", []pkt{
			{0, 0, 1, 1, 0}, {0, 0, 1, 1 + ReplayWindow, 0}, {0, 0, 1, 2, 0}, {0, 0, 1, 1, Replayed},
		}},
		{"far jump forgets the old window", []pkt{
			{0, 0, 1, 7, 0}, {0, 0, 1, 1000, 0}, {0, 0, 1, 7, Replayed}, {0, 0, 1, 999, 0}, {0, 0, 1, 1000, Replayed},
		}},
		{"bitmap shifts with the top", []pkt{
			{0, 0, 1, 1, 0}, {0, 0, 1, 3, 0}, {0, 0, 1, 40, 0}, {0, 0, 1, 3, Replayed}, {0, 0, 1, 2, 0}, {0, 0, 1, 1, Replayed},
		}},
		{"new incarnation resets", []pkt{
			{0, 0, 1, 500, 0}, {0, 0, 2, 1, 0}, {0, 0, 2, 2, 0}, {0, 0, 2, 1, Replayed},
		}},
		{"old incarnation", []pkt{{0, 0, 2, 1, 0}, {0, 0, 1, 9, Replayed}, {0, 0, 1, 1000, Replayed}, {0, 0, 2, 2, 0}}},
		{"links are apart", []pkt{{0, 0, 1, 1, 0}, {0, 1, 1, 1, 0}, {0, 1, 1, 1, Replayed}, {0, 0, 1, 2, 0}}},
		{"senders are apart", []pkt{{0, 0, 1, 1, 0}, {2, 0, 1, 1, 0}, {2, 0, 1, 1, Replayed}, {0, 0, 1, 1, Replayed}}},
		{"out of range", []pkt{
			{-1, 0, 1, 1, Malformed}, {3, 0, 1, 1, Malformed}, {0, -1, 1, 1, Malformed}, {0, 2, 1, 1, Malformed},
			{2, 1, 1, 1, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewReplayGuard(3, 2)
			for i, p := range tt.steps {
				if err := g.Check(p.from, p.link, p.inc, p.seq); Reason(err) != p.want {
					t.Fatalf("step %d: Check(%d, %d, %d, %d) = %v, want reason %v", i, p.from, p.link, p.inc, p.seq, err, p.want)
				}
			}
		})
	}
}

func TestReplayGuardEmpty(t *testing.T) {
	for _, size := range [][2]int{{0, 0}, {0, 2}, {3, 0}, {-1, -1}} {
		g := NewReplayGuard(size[0], size[1])
		if err := g.Check(0, 0, 1, 1); Reason(err) != Malformed {
			t.Errorf("NewReplayGuard(%d, %d).Check(0, 0, 1, 1) = %v, want malformed", size[0], size[1], err)
		}
	}
}

// replayModel is the rule ReplayGuard implements, written plainly: every
// sequence number seen in the current incarnation is remembered.
type replayModel struct {
	active bool
	inc    uint64
	top    uint64
	seen   map[uint64]bool
}

func (m *replayModel) check(inc, seq uint64) bool {
	switch {
	case !m.active || inc > m.inc:
		*m = replayModel{active: true, inc: inc, top: seq, seen: map[uint64]bool{seq: true}}
		return true
	case inc < m.inc, m.seen[seq], seq < m.top && m.top-seq >= ReplayWindow:
		return false
	}
	m.seen[seq] = true
	m.top = max(m.top, seq)
	return true
}

// TestReplayGuardModel compares the guard with the model on seeded random
// streams of reordered, duplicated and restarted senders.
func TestReplayGuardModel(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 99))
			g := NewReplayGuard(1, 1)
			var m replayModel
			inc, seq := uint64(1), uint64(0)
			for i := range 5000 {
				switch x := r.IntN(100); {
				case x < 2:
					inc++ // sender restarts
					seq = r.Uint64N(10)
				case x < 4:
					inc = max(inc, 1) - 1 // an old life's packet
				case x < 60:
					seq++
				case x < 70:
					seq += r.Uint64N(2 * ReplayWindow)
				default:
					seq -= min(seq, r.Uint64N(ReplayWindow+10))
				}
				want := m.check(inc, seq)
				if err := g.Check(0, 0, inc, seq); (err == nil) != want {
					t.Fatalf("packet %d (inc %d, seq %d): Check = %v, model accepts: %v", i, inc, seq, err, want)
				}
			}
		})
	}
}

func TestReplayGuardAllocs(t *testing.T) {
	g := NewReplayGuard(4, 2)
	var seq uint64
	allocs := testing.AllocsPerRun(100, func() {
		seq++
		if g.Check(1, 1, 1, seq) != nil || g.Check(1, 1, 1, seq) == nil || g.Check(9, 0, 1, 1) == nil {
			t.Fatal("accept, replay, range: wrong verdict")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per check, want 0", allocs)
	}
}
