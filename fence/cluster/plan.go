package cluster

import (
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/vigil-ha/vigil/fence/place"
	"github.com/vigil-ha/vigil/hb"
)

// candidate is a VM the coordinator wants running and the ownership it
// supersedes.
type candidate struct {
	vm    int
	from  int
	epoch uint64
	proof Proof
	first bool // never ran: admission control applies
	avoid []int
	why   Reason // why the old owner released it (proof a)
	// prefer is an operator's move target plus one (0: none).
	prefer int
}

func (c *coordinator) candidates(now time.Duration) []candidate {
	n := c.n
	pending := make(map[int]bool, len(c.assign))
	for _, a := range c.assign {
		pending[a.VM] = true
	}
	var cands []candidate
	for v := range n.spec.VMs {
		o := c.owner[v]
		if pending[v] || c.gaveUp[v] {
			continue
		}
		if n.epochMax[v] > o.epoch {
			// Assigned (by us or a coordinator before us) and not answered
			// yet: supersede it if its target was fenced or restarted before
			// answering, else make sure the target keeps hearing about it.
			la := n.lastAssign[v]
			if la.Epoch != n.epochMax[v] || la.Host < 0 {
				continue
			}
			switch {
			case la.Host != n.self && c.proven[la.Host] != nil:
				cands = append(cands, candidate{vm: v, from: la.Host, epoch: la.Epoch, proof: *c.proven[la.Host]})
			case c.restartedWithout(la):
				cands = append(cands, candidate{vm: v, from: la.Host, epoch: la.Epoch, why: Rejoined, proof: Proof{Kind: ProofReleased, Host: la.Host, At: now,
					Detail: fmt.Sprintf("%s restarted (incarnation %d) before taking it", n.name(la.Host), c.incOf(la.Host))}})
			default:
				c.assign = append(c.assign, la) // inherited: gossip it again
				n.version++
				n.bump()
				if la.Host == n.self {
					n.assigned(now, n.self, la)
				}
			}
			continue
		}
		spec := &n.spec.VMs[v]
		switch {
		case o.host < 0:
			cands = append(cands, candidate{vm: v, from: -1, first: true})
		case o.state == Released:
			target, moved := o.why.MoveTarget()
			operator := moved || o.why == StartAsked
			if o.why == Stopped || (!spec.Protected && !operator && o.why != Maintenance && o.why != AgentStop && o.why != Declined && o.why != Conflict) {
				continue
			}
			cd := candidate{vm: v, from: o.host, epoch: o.epoch, why: o.why, proof: Proof{Kind: ProofReleased, Host: o.host, At: now, Detail: n.name(o.host) + " stopped it (" + o.why.String() + ")"}}
			if moved {
				cd.prefer = target + 1
				cd.proof.Detail = n.name(o.host) + " stopped it (moved to " + n.name(target) + " by an operator)"
			}
			if o.why == StartFailed || o.why == Exited || o.why == AppFailed {
				if !c.retry(now, v, o) {
					continue
				}
				cd.avoid = []int{o.host}
			}
			cands = append(cands, cd)
		case o.host != n.self && c.proven[o.host] != nil:
			if !spec.Protected {
				c.say(v, slog.LevelInfo, "%s is not protected: not restarted after %s failed", spec.Name, n.name(o.host))
				continue
			}
			cands = append(cands, candidate{vm: v, from: o.host, epoch: o.epoch, proof: *c.proven[o.host]})
		}
	}
	return cands
}

// retry applies the restart budget and backoff to a VM whose last start
// failed or which exited.
func (c *coordinator) retry(now time.Duration, v int, o owner) bool {
	n := c.n
	if c.failedAt[v] != o.epoch {
		c.failedAt[v] = o.epoch
		c.attempts[v]++
		if c.attempts[v] > n.spec.Policy.RestartAttempts {
			c.gaveUp[v] = true
			n.logf(slog.LevelError, "coord", "%s: restart budget of %d attempts used up: operator action needed", n.vmName(v), n.spec.Policy.RestartAttempts)
			return false
		}
		c.retryAt[v] = now + n.spec.Policy.RestartBackoff<<(c.attempts[v]-1)
		n.logf(slog.LevelInfo, "coord", "%s: retry %d of %d in %s", n.vmName(v), c.attempts[v], n.spec.Policy.RestartAttempts, ms(c.retryAt[v]-now))
	}
	return now >= c.retryAt[v]
}

func (c *coordinator) say(v int, level slog.Level, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if c.said[v] != msg {
		c.said[v] = msg
		c.n.logf(level, "coord", "%s", msg)
	}
}

// eligible lists the hosts that may receive VMs, with their commitments.
func (c *coordinator) eligible() []place.Host {
	n := c.n
	var hosts []place.Host
	idx := make([]int, len(n.peers))
	for h := range n.peers {
		idx[h] = -1
		ok := h == n.self && !n.maint && n.self0 == Healthy
		if h != n.self {
			p := &n.peers[h]
			ok = n.hears.Has(h) && p.verdict == Alive && !p.maint && !n.declaredIsolated(h) && c.proven[h] == nil
		}
		if !ok {
			continue
		}
		hs := &n.spec.Hosts[h]
		idx[h] = len(hosts)
		hosts = append(hosts, place.Host{Index: h, Name: hs.Name, CPU: hs.CPU, MemoryMiB: hs.MemoryMiB})
	}
	commit := func(h, v int) {
		if h < 0 || idx[h] < 0 {
			return
		}
		ph, vs := &hosts[idx[h]], &n.spec.VMs[v]
		ph.UsedCPU += vs.CPU
		ph.UsedMemoryMiB += vs.MemoryMiB
		if vs.AntiAffinity != "" {
			ph.Groups = append(ph.Groups, vs.AntiAffinity)
		}
	}
	for v, o := range c.owner {
		if o.state != Released {
			commit(o.host, v)
		}
	}
	for _, a := range c.assign {
		commit(a.Host, a.VM)
	}
	return hosts
}

func (c *coordinator) plan(now time.Duration) {
	n := c.n
	cands := c.candidates(now)
	if len(cands) == 0 {
		return
	}
	hosts := c.eligible()
	running := make([]bool, len(n.spec.VMs))
	var on []place.VM
	for v, o := range c.owner {
		running[v] = o.state == Running && (o.host == n.self || c.proven[o.host] == nil)
		if o.host >= 0 && o.state.live() && n.spec.VMs[v].Protected {
			on = append(on, c.pvm(v, nil))
		}
	}
	for _, a := range c.assign {
		if n.spec.VMs[a.VM].Protected {
			on = append(on, c.pvm(a.VM, nil))
		}
	}
	byVM := map[int]*candidate{}
	var req []place.VM
	sort.SliceStable(cands, func(i, j int) bool {
		pi, pj := n.spec.VMs[cands[i].vm].Priority, n.spec.VMs[cands[j].vm].Priority
		return pi > pj
	})
	ledger := place.NewLedger(hosts, on, n.spec.Policy.HostFailures)
	for i := range cands {
		cd := &cands[i]
		pv := c.pvm(cd.vm, cd.avoid)
		if cd.prefer > 0 {
			pv.Preferred = cd.prefer - 1
		}
		if cd.first && n.spec.VMs[cd.vm].Protected {
			if err := ledger.Admit(pv); err != nil {
				c.say(cd.vm, slog.LevelWarn, "%v", err)
				continue
			}
		}
		byVM[cd.vm] = cd
		req = append(req, pv)
	}
	if len(req) == 0 {
		return
	}
	names := make([]string, len(n.spec.VMs))
	for v := range n.spec.VMs {
		names[v] = n.spec.VMs[v].Name
	}
	res := place.Plan(place.Request{Hosts: hosts, VMs: req, Running: running, Names: names})
	for _, p := range res.Placed {
		cd := byVM[p.VM]
		n.epochMax[p.VM]++
		a := hb.Assignment{VM: p.VM, Host: p.Host, Epoch: n.epochMax[p.VM], From: cd.from, FromEpoch: cd.epoch, Inc: c.incOf(p.Host)}
		c.assign = append(c.assign, a)
		n.lastAssign[p.VM] = a
		c.said[p.VM] = ""
		var failed time.Duration
		if cd.from >= 0 && cd.from != n.self {
			failed = n.peers[cd.from].silentAt
		}
		asg := Assigned{VM: p.VM, From: cd.from, To: p.Host, Epoch: a.Epoch, Proof: cd.proof, Failed: failed}
		n.emit(asg)
		if cd.from >= 0 {
			c.incidentPlaced(now, cd, asg)
		}
	}
	for _, w := range res.Waiting {
		c.say(w.VM, slog.LevelInfo, "%s: %s", n.vmName(w.VM), w.Reason)
		if cd := byVM[w.VM]; cd != nil && cd.from >= 0 {
			c.incidentWaiting(now, cd, w.Reason)
		}
	}
	for _, r := range res.Refused {
		c.say(r.VM, slog.LevelWarn, "cannot place %s: %s", n.vmName(r.VM), r.Reason)
		if cd := byVM[r.VM]; cd != nil && cd.from >= 0 {
			c.incidentWaiting(now, cd, r.Reason)
		}
	}
	if len(res.Placed) > 0 {
		n.version++
		n.bump()
		n.sendHeartbeats(now) // the assignments go out now, not at the next tick
	}
	for _, p := range res.Placed {
		if p.Host == n.self {
			n.assigned(now, n.self, n.lastAssign[p.VM])
		}
	}
}

// restartedWithout reports whether a's target has restarted since a was made
// and, in a record of its later incarnation, holds no live claim on the VM:
// the earlier incarnation never took it (a restarted agent adopts what it
// had claimed and still runs), and the later one ignores the assignment.
func (c *coordinator) restartedWithout(a hb.Assignment) bool {
	r := c.n.best[a.Host]
	if a.Host == c.n.self || a.Inc == 0 || r == nil || r.Incarnation <= a.Inc {
		return false
	}
	for _, cl := range r.Claims {
		if cl.VM == a.VM && cl.State.live() {
			return false
		}
	}
	return true
}

// incOf is the newest incarnation of host h this host knows.
func (c *coordinator) incOf(h int) uint64 {
	n := c.n
	if h == n.self {
		return n.inc
	}
	inc := n.hot[h].inc
	if r := n.best[h]; r != nil && r.Incarnation > inc {
		inc = r.Incarnation
	}
	return inc
}

func (c *coordinator) pvm(v int, avoid []int) place.VM {
	s := &c.n.spec.VMs[v]
	return place.VM{Index: v, Name: s.Name, CPU: s.CPU, MemoryMiB: s.MemoryMiB, Priority: int(s.Priority),
		After: s.After, Group: s.AntiAffinity, Preferred: s.Host, Avoid: avoid}
}
