package cli

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/vigil-ha/vigil/fence/cluster"
)

// leaseView is one host's lease as one read of the datastore tells it.
type leaseView struct {
	Host        string `json:"host"`
	Incarnation uint64 `json:"incarnation,omitempty"`
	Counter     uint64 `json:"counter,omitempty"`
	// State is none (never written), unknown (its slot fails its checks),
	// fenced (a coordinator's record holds a fence proof for this
	// incarnation), lost (its host reports its lease lapsed or held by the
	// network only) or held (renewed when written: a second read tells
	// whether the counter still advances).
	State  string `json:"state"`
	Detail string `json:"detail,omitempty"`
}

// ownerView is a VM's newest claim over every slot.
type ownerView struct {
	VM     string `json:"vm"`
	Owner  string `json:"owner,omitempty"` // empty: never claimed
	Epoch  uint64 `json:"epoch,omitempty"`
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
}

// leases tells each host's lease from one read of its slots.
func leases(slots []slotView, nm names) []leaseView {
	var out []leaseView
	for h, s := range slots {
		l := leaseView{Host: s.Host}
		r := s.Record
		switch {
		case s.Error != "":
			l.State, l.Detail = "unknown", "its slot fails its checks"
		case r == nil:
			l.State = "none"
		default:
			l.Incarnation, l.Counter = r.Incarnation, r.Counter
			l.State, l.Detail = "held", "renewed when written; a second read tells whether the counter still advances"
			if r.DatastoreLost {
				l.State, l.Detail = "lost", "its host reports its lease lapsed, or held by its network quorum only"
			}
			if by, p, ok := fencedBy(slots, h, r.Incarnation); ok {
				l.State, l.Detail = "fenced", fmt.Sprintf("by %s: %s (%s)", nm.host(by), p.Kind, p.Detail)
			}
		}
		out = append(out, l)
	}
	return out
}

// fencedBy finds a fence proof of host h's incarnation inc in any slot.
func fencedBy(slots []slotView, h int, inc uint64) (int, cluster.Proof, bool) {
	for by, s := range slots {
		if s.Record == nil {
			continue
		}
		for _, p := range s.Record.Fenced {
			if p.Host == h && p.Incarnation == inc {
				return by, p, true
			}
		}
	}
	return 0, cluster.Proof{}, false
}

// owners finds each VM's owner as the coordinator does: the newest claim
// over every slot, a live claim winning over a release at the same epoch.
func owners(slots []slotView, nm names) []ownerView {
	type own struct {
		host int
		c    cluster.Claim
	}
	best := make([]own, len(nm.vms))
	for v := range best {
		best[v].host = -1
	}
	live := func(s cluster.ClaimState) bool { return s != cluster.Released }
	for h, s := range slots {
		if s.Record == nil {
			continue
		}
		for _, c := range s.Record.Claims {
			if c.VM < 0 || c.VM >= len(best) {
				continue
			}
			o := &best[c.VM]
			if c.Epoch > o.c.Epoch || (c.Epoch == o.c.Epoch && (o.host < 0 || o.c.State == cluster.Released) && live(c.State)) {
				*o = own{host: h, c: c}
			}
		}
	}
	out := make([]ownerView, len(best))
	for v, o := range best {
		out[v] = ownerView{VM: nm.vm(v), State: "unclaimed"}
		if o.host >= 0 {
			out[v] = ownerView{VM: nm.vm(v), Owner: nm.host(o.host), Epoch: o.c.Epoch, State: claimState(o.c.State)}
			if o.c.Reason != cluster.NoReason {
				out[v].Reason = reasonName(o.c.Reason, nm.hosts)
			}
		}
	}
	return out
}

func printLeases(w io.Writer, ls []leaseView) {
	fmt.Fprintln(w, "\nleases (one read: a second one tells whether a counter still advances)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tINCARNATION\tCOUNTER\tLEASE\tDETAIL")
	for _, l := range ls {
		inc, ctr := "-", "-"
		if l.Incarnation != 0 || l.Counter != 0 {
			inc, ctr = fmt.Sprint(l.Incarnation), fmt.Sprint(l.Counter)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", l.Host, inc, ctr, l.State, l.Detail)
	}
	tw.Flush()
}

func printOwners(w io.Writer, os []ownerView) {
	fmt.Fprintln(w, "\nVM owners (the newest claim of each VM over all slots)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VM\tOWNER\tEPOCH\tSTATE")
	for _, o := range os {
		owner, epoch := "-", "-"
		if o.Owner != "" {
			owner, epoch = o.Owner, fmt.Sprint(o.Epoch)
		}
		state := o.State
		if o.Reason != "" {
			state += " (" + o.Reason + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", o.VM, owner, epoch, state)
	}
	tw.Flush()
}

// printIncidents lists a datastore's incidents: one line each, or (full)
// each timeline; then the records that fail their checks.
func printIncidents(w io.Writer, v *datastoreView, full bool) {
	fmt.Fprintf(w, "\nincidents (%d)\n", len(v.Incidents))
	for i := range v.Incidents {
		x := &v.Incidents[i]
		if full {
			printIncident(w, x)
			continue
		}
		state := "open"
		if x.Closed {
			state = "closed: " + x.Outcome
		}
		fmt.Fprintf(w, "%s: %s\n", incidentHeadline(x), state)
	}
	for _, e := range v.BadIncidents {
		fmt.Fprintf(w, "BAD: %s\n", e)
	}
}

// reasonName names a release reason read from a datastore, which may be
// one this build does not know; a move names its target host.
func reasonName(r cluster.Reason, hosts []string) string {
	if h, ok := r.MoveTarget(); ok && h < len(hosts) {
		return "moved to " + hosts[h]
	}
	return r.String()
}
