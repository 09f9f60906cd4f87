package sim

import (
	"github.com/vigil-ha/vigil/fence/cluster"
)

// maxIncidents bounds the incidents the world keeps per coordinator host
// (the datastores' incident area): the oldest closed ones go first.
const maxIncidents = 64

// RecordIncident keeps the newest version of each incident a host records,
// as the datastores would. It writes no log line: the golden logs already
// carry the fence, its proof and each assignment.
func (e *hostEnv) RecordIncident(x *cluster.Incident) { e.w.recordIncident(e.h, x) }

func (w *World) recordIncident(h *host, x *cluster.Incident) {
	if w.incidents == nil {
		w.incidents = make([][]*cluster.Incident, len(w.hosts))
	}
	list := w.incidents[h.id]
	for i, y := range list {
		if y.ID == x.ID {
			if x.Version > y.Version {
				list[i] = x
			}
			return
		}
	}
	list = append(list, x)
	if len(list) > maxIncidents {
		for i, y := range list {
			if y.Closed {
				list = append(list[:i], list[i+1:]...)
				break
			}
		}
	}
	w.incidents[h.id] = list
}

// Incidents returns the newest version of each incident host h recorded as
// coordinator, in the order they opened.
func (w *World) Incidents(h int) []*cluster.Incident {
	if h < 0 || h >= len(w.incidents) {
		return nil
	}
	return append([]*cluster.Incident(nil), w.incidents[h]...)
}

// incidentCovers reports whether coordinator host by recorded an incident
// about a's old host that carries a's proof and its placement.
func (w *World) incidentCovers(by int, a *cluster.Assigned) bool {
	if by < 0 || by >= len(w.incidents) {
		return false
	}
	for _, x := range w.incidents[by] {
		if x.Host != a.From || x.Proof.Kind != a.Proof.Kind {
			continue
		}
		for _, pl := range x.Placements {
			if pl.VM == a.VM && pl.To == a.To && pl.Epoch == a.Epoch {
				return true
			}
		}
	}
	return false
}
