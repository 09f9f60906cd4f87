package hb

// ReplayWindow is how far behind the highest sequence number seen a
// reordered packet may arrive and still be accepted once.
const ReplayWindow = 64

// Replay refusals carry a fixed detail, so that Check never allocates.
var (
	errReplayDuplicate = &DropError{Reason: Replayed, Detail: "sequence number already seen"}
	errReplayOld       = &DropError{Reason: Replayed, Detail: "sequence number older than the replay window"}
	errReplayOldInc    = &DropError{Reason: Replayed, Detail: "incarnation older than the sender's current one"}
	errReplayRange     = &DropError{Reason: Malformed, Detail: "sender or link outside the cluster"}
)

// ReplayGuard refuses heartbeats that were seen before, one sliding window
// per (sender, link), as IPsec does (RFC 4303 section 3.4.3). A packet is
// accepted when its incarnation is newer than the last one seen from that
// sender on that link (the sender restarted: the window starts over), or
// when it has the current incarnation and a sequence number not seen
// before and at most ReplayWindow-1 below the highest seen. Everything else
// is Replayed.
//
// Check only packets Decode accepted: Check moves the window, and a forged
// packet must not move it. A ReplayGuard is not safe for concurrent use.
type ReplayGuard struct {
	links int
	w     []replayWindow
}

// replayWindow is the state of one (sender, link): the current incarnation,
// the highest sequence number seen in it, and a bitmap of the ReplayWindow
// numbers at and below it (bit i set: top-i was seen).
type replayWindow struct {
	inc    uint64
	top    uint64
	seen   uint64
	active bool
}

// NewReplayGuard returns a guard for hosts senders (0..hosts-1) on links
// links (0..links-1); a negative count counts as 0.
func NewReplayGuard(hosts, links int) *ReplayGuard {
	hosts, links = max(hosts, 0), max(links, 0)
	return &ReplayGuard{links: links, w: make([]replayWindow, hosts*links)}
}

// Check accepts the packet (inc, seq) from sender from on link link, and
// records it, or refuses it with a *DropError: Replayed, or Malformed when
// the sender or link is outside the guard's range.
func (g *ReplayGuard) Check(from, link int, inc, seq uint64) error {
	if from < 0 || link < 0 || link >= g.links || from >= len(g.w)/max(g.links, 1) {
		return errReplayRange
	}
	w := &g.w[from*g.links+link]
	switch {
	case !w.active || inc > w.inc:
		*w = replayWindow{inc: inc, top: seq, seen: 1, active: true}
		return nil
	case inc < w.inc:
		return errReplayOldInc
	case seq > w.top:
		if d := seq - w.top; d < ReplayWindow {
			w.seen = w.seen<<d | 1
		} else {
			w.seen = 1
		}
		w.top = seq
		return nil
	}
	d := w.top - seq
	switch {
	case d >= ReplayWindow:
		return errReplayOld
	case w.seen&(1<<d) != 0:
		return errReplayDuplicate
	}
	w.seen |= 1 << d
	return nil
}
