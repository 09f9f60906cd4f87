package sim

import (
	"math/rand"
	"time"

	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/hb"
)

// network is the state of every NIC and the faults between hosts. Indexes
// are host*links+link.
type network struct {
	hosts, links int
	cut          []bool
	loss         []int           // percent of packets a NIC loses, each way
	delay        []time.Duration // extra latency of a NIC, each way
	block        []hb.HostSet    // from*links+link: receivers that drop from's packets
	group        []int           // partition group of each host
	clean        []bool          // per link: no fault at all, the fast path
}

func (n *network) init(hosts, links int) {
	n.hosts, n.links = hosts, links
	n.cut = make([]bool, hosts*links)
	n.loss = make([]int, hosts*links)
	n.delay = make([]time.Duration, hosts*links)
	n.block = make([]hb.HostSet, hosts*links)
	n.group = make([]int, hosts)
	n.clean = make([]bool, links)
	n.refresh()
}

// refresh recomputes the per-link fast path flags after a change.
func (n *network) refresh() {
	parted := false
	for _, g := range n.group {
		parted = parted || g != 0
	}
	for l := range n.clean {
		c := !parted
		for h := 0; h < n.hosts && c; h++ {
			i := h*n.links + l
			c = !n.cut[i] && n.loss[i] == 0 && n.delay[i] == 0 && n.block[i] == 0
		}
		n.clean[l] = c
	}
}

// faulty reports whether any network fault is in force.
func (n *network) faulty() bool {
	for _, c := range n.clean {
		if !c {
			return true
		}
	}
	return false
}

// reach reports whether a packet from a to b on link l gets through cuts,
// one-way blocks and partitions (loss and delay aside).
func (n *network) reach(a, b, l int) bool {
	ia, ib := a*n.links+l, b*n.links+l
	return !n.cut[ia] && !n.cut[ib] && !n.block[ia].Has(b) && n.group[a] == n.group[b]
}

// pass decides the fate of one packet from a to b on link l: whether it
// arrives and its extra latency.
func (n *network) pass(a, b, l int, rng *rand.Rand) (bool, time.Duration) {
	if !n.reach(a, b, l) {
		return false, 0
	}
	ia, ib := a*n.links+l, b*n.links+l
	if p := n.loss[ia]; p > 0 && rng.Intn(100) < p {
		return false, 0
	}
	if p := n.loss[ib]; p > 0 && rng.Intn(100) < p {
		return false, 0
	}
	return true, n.delay[ia] + n.delay[ib]
}

// allCut reports whether every NIC of h is cut.
func (n *network) allCut(h int) bool {
	for l := 0; l < n.links; l++ {
		if !n.cut[h*n.links+l] {
			return false
		}
	}
	return true
}

// send puts a heartbeat on the wire: one queued event for all receivers.
func (w *World) send(h *host, m *hb.Message) {
	l := m.Link
	if l < 0 || l >= w.net.links || w.net.cut[h.id*w.net.links+l] {
		return
	}
	w.stats.Sends++
	w.after(w.p.NetLatency, event{kind: kBcast, host: int32(h.id), x: int32(l), msg: m})
}

// bcast fans a heartbeat out to every powered, running, reachable host. The
// message is shared by all receivers.
func (w *World) bcast(e *event) {
	from, l := int(e.host), int(e.x)
	clean := w.net.clean[l]
	for _, r := range w.hosts {
		if r.id == from || !r.up || r.frozen {
			continue
		}
		if !clean {
			ok, extra := w.net.pass(from, r.id, l, w.rng)
			if !ok {
				continue
			}
			if extra > 0 {
				w.after(extra, event{kind: kDeliver, host: int32(r.id), x: int32(l), y: int32(from), msg: e.msg})
				continue
			}
		}
		w.receive(r, e)
	}
}

func (w *World) receive(r *host, e *event) {
	w.stats.Delivered++
	if w.tap != nil || r.agent == nil {
		w.handle(r, cluster.Received{Msg: e.msg})
		return
	}
	w.stats.Steps++
	r.agent.Heartbeat(e.msg)
}
