package datastoretest

import (
	"fmt"
	"sort"

	"github.com/vigil-ha/vigil/drivers/datastore"
	"github.com/vigil-ha/vigil/fence/cluster"
)

// WriteIncident stores a deep copy of x in its coordinator's area, as the
// real backends do: over the incident's older version (a version older
// than the stored one changes nothing), keeping the newest
// datastore.IncidentsKept incidents of that host. It refuses a nil
// incident, and one of another host than the path's with an error wrapping
// ErrWrongSlot: a host writes only its own area.
func (p *Path) WriteIncident(x *cluster.Incident) error {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	p.incWrites++
	switch {
	case x == nil:
		return fmt.Errorf("datastoretest: host %d wrote a nil incident: pass the incident", p.host)
	case x.ID.Host != p.host:
		return fmt.Errorf("datastoretest: host %d wrote an incident of host %d: set ID.Host to the writer: %w", p.host, x.ID.Host, ErrWrongSlot)
	}
	c := x.Clone()
	if err := p.enter(opWriteIncident); err != nil {
		return err
	}
	list := s.incidents[p.host]
	delete(s.badInc, c.ID)
	for i, y := range list {
		if y.ID == c.ID {
			if y.Version <= c.Version {
				list[i] = c
			}
			return nil
		}
	}
	list = append(list, c)
	sort.Slice(list, func(i, j int) bool { return list[i].ID.Less(list[j].ID) })
	if len(list) > datastore.IncidentsKept {
		list = list[len(list)-datastore.IncidentsKept:]
	}
	s.incidents[p.host] = list
	return nil
}

// ReadIncidents returns deep copies of every host's incidents, ordered by
// id, and a *datastore.IncidentError for each corrupt one, which it skips.
func (p *Path) ReadIncidents() ([]*cluster.Incident, []error, error) {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	p.incReads++
	if err := p.enter(opReadIncidents); err != nil {
		return nil, nil, err
	}
	var out []*cluster.Incident
	var bad []error
	for h, list := range s.incidents {
		for _, x := range list {
			if s.badInc[x.ID] {
				bad = append(bad, &datastore.IncidentError{Host: h, Path: "datastoretest incident " + datastore.IncidentName(x.ID), Reason: corruptReason})
				continue
			}
			out = append(out, x.Clone())
		}
	}
	return out, bad, nil
}

// CorruptIncident makes the incident id read as corrupt through every
// path until its coordinator writes it again.
func (s *Shared) CorruptIncident(id cluster.IncidentID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.badInc[id] = true
}

// Incidents returns deep copies of every stored incident, ordered by id,
// ignoring faults and corruption: for the test's assertions.
func (s *Shared) Incidents() []*cluster.Incident {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*cluster.Incident
	for _, list := range s.incidents {
		for _, x := range list {
			out = append(out, x.Clone())
		}
	}
	return out
}

// IncidentWrites and IncidentReads count the incident calls made through
// the path, failed and blocked ones included.
func (p *Path) IncidentWrites() int {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	return p.incWrites
}

func (p *Path) IncidentReads() int {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	return p.incReads
}
