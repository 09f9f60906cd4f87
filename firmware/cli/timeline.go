package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/fence"
	"github.com/vigil-ha/vigil/fence/cluster"
)

// names turns the host and VM indexes of records into names.
type names struct{ hosts, vms []string }

func (nm names) host(i int) string { return name(nm.hosts, i) }
func (nm names) vm(i int) string   { return name(nm.vms, i) }

// incidentID is how an incident is named to operators:
// COORDINATOR-INCARNATION-SEQ.
func (nm names) incidentID(id cluster.IncidentID) string {
	return fmt.Sprintf("%s-%d-%d", nm.host(id.Host), id.Incarnation, id.Seq)
}

// timelineRow is one line of an incident's timeline.
type timelineRow struct {
	// MS is the time since detection; absent for rows without a time (a
	// VM still waiting to be placed).
	MS   *int64 `json:"ms,omitempty"`
	What string `json:"what"`
	at   time.Duration
	none bool // no time: printed after the timed rows
}

// incidentView is one incident as `vigil incidents` and `vigil datastore
// show|dump` print it.
type incidentView struct {
	ID          string            `json:"id"`
	Coordinator string            `json:"coordinator"`
	Host        string            `json:"host"`
	Kind        string            `json:"kind"`
	Detected    string            `json:"detected,omitempty"` // wall clock, RFC 3339 UTC
	Version     uint64            `json:"version"`
	Closed      bool              `json:"closed"`
	Outcome     string            `json:"outcome,omitempty"`
	Datastores  []string          `json:"datastores,omitempty"` // that hold this version
	Timeline    []timelineRow     `json:"timeline"`
	Record      *cluster.Incident `json:"record"`
}

func viewIncident(x *cluster.Incident, nm names, datastores []string) incidentView {
	v := incidentView{ID: nm.incidentID(x.ID), Coordinator: nm.host(x.ID.Host), Host: nm.host(x.Host), Kind: x.Kind.String(),
		Version: x.Version, Closed: x.Closed, Outcome: x.Outcome, Datastores: datastores, Timeline: timeline(x, nm), Record: x}
	if x.Wall != 0 {
		v.Detected = time.Unix(0, x.Wall).UTC().Format(time.RFC3339)
	}
	return v
}

// sortIncidents orders incidents oldest first: by the wall time of their
// detection (those without one first), then by id.
func sortIncidents(xs []*cluster.Incident) {
	sort.Slice(xs, func(i, j int) bool {
		if a, b := xs[i], xs[j]; a.Wall != b.Wall {
			return a.Wall < b.Wall
		}
		return xs[i].ID.Less(xs[j].ID)
	})
}

// timeline lists what happened in an incident, in time order, each row
// timed from the detection.
func timeline(x *cluster.Incident, nm names) []timelineRow {
	var rows []timelineRow
	add := func(at time.Duration, format string, args ...any) {
		ms := (at - x.Detected).Milliseconds()
		rows = append(rows, timelineRow{MS: &ms, What: fmt.Sprintf(format, args...), at: at})
	}
	first := "suspected"
	if x.Kind == cluster.IncidentReleased {
		first = "detected"
	}
	add(x.Detected, "%s: %s", first, strings.Join(x.Suspect, "; "))
	if x.Decided != 0 {
		add(x.Decided, "%s: %s", x.Kind, strings.Join(x.Verdict, "; "))
	}
	if f := &x.Fence; f.Started != 0 {
		how := "lease wait (its lease and watchdog deadlines)"
		if f.Plan == fence.BMC {
			how = "power off through its BMC"
		}
		if f.Stuck {
			how += "; no proof after fence_timeout"
		}
		add(f.Started, "fence: %s", how)
		for i, a := range f.Attempts {
			res := "no answer"
			if a.Done != 0 {
				res = fmt.Sprintf("%s (answered in %dms)", a.Result, (a.Done - a.At).Milliseconds())
			}
			add(a.At, "bmc %s: %s", a.Op, res)
			if i == len(f.Attempts)/4-1 && f.Requests > len(f.Attempts) {
				add(a.At, "... %d more BMC requests ...", f.Requests-len(f.Attempts))
			}
		}
	}
	switch p := &x.Proof; {
	case p.Kind == 0, x.Kind == cluster.IncidentReleased: // a release is its own proof: the first row says it
	case x.Kind == cluster.IncidentFailed:
		add(p.At, "fenced: %s (%s)", p.Kind, p.Detail)
	default:
		add(p.At, "proof: %s (%s)", p.Kind, p.Detail)
	}
	for _, pl := range x.Placements {
		switch {
		case pl.State == cluster.PlacementWaiting:
			rows = append(rows, timelineRow{What: fmt.Sprintf("%s not placed: %s", nm.vm(pl.VM), pl.Reason), none: true})
			continue
		case pl.State == cluster.PlacementFailed:
			add(pl.Assigned, "%s -> %s (epoch %d): failed: %s", nm.vm(pl.VM), nm.host(pl.To), pl.Epoch, pl.Reason)
		case pl.Reason != "":
			add(pl.Assigned, "%s -> %s (epoch %d; %s)", nm.vm(pl.VM), nm.host(pl.To), pl.Epoch, pl.Reason)
		default:
			add(pl.Assigned, "%s -> %s (epoch %d)", nm.vm(pl.VM), nm.host(pl.To), pl.Epoch)
		}
		if pl.Running != 0 {
			add(pl.Running, "%s running on %s", nm.vm(pl.VM), nm.host(pl.To))
		}
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].none != rows[j].none {
			return !rows[i].none
		}
		return rows[i].at < rows[j].at
	})
	end := "open"
	if x.Closed {
		end = "closed: " + x.Outcome
	}
	if lo, hi, ok := runningSpan(x); ok {
		end += fmt.Sprintf(" (first VM running at +%dms, last at +%dms)", (lo - x.Detected).Milliseconds(), (hi - x.Detected).Milliseconds())
	}
	return append(rows, timelineRow{What: end, none: true})
}

// runningSpan is when the first and the last VM of the incident were seen
// running.
func runningSpan(x *cluster.Incident) (lo, hi time.Duration, ok bool) {
	for _, pl := range x.Placements {
		if pl.Running == 0 {
			continue
		}
		if !ok || pl.Running < lo {
			lo = pl.Running
		}
		if !ok || pl.Running > hi {
			hi = pl.Running
		}
		ok = true
	}
	return lo, hi, ok
}

// incidentHeadline is an incident's first line: when, what, which.
func incidentHeadline(v *incidentView) string {
	when := v.Detected
	if when == "" {
		when = "(no wall time)"
	}
	return fmt.Sprintf("%s %s %s (incident %s, coordinator %s)", when, v.Host, v.Kind, v.ID, v.Coordinator)
}

// printIncident prints an incident's headline and timeline.
func printIncident(w io.Writer, v *incidentView) {
	fmt.Fprintln(w, incidentHeadline(v))
	width := 0
	for _, r := range v.Timeline {
		if r.MS != nil {
			width = max(width, len(fmt.Sprintf("+%dms", *r.MS)))
		}
	}
	for _, r := range v.Timeline {
		at := ""
		if r.MS != nil {
			at = fmt.Sprintf("+%dms", *r.MS)
		}
		fmt.Fprintf(w, "  %-*s  %s\n", width, at, r.What)
	}
}
