package agentd

import (
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/fence/cluster"
)

// keepIncidents is how many incidents the agent serves on GET /v1/incidents.
const keepIncidents = 32

// IncidentsReply is GET /v1/incidents: the incidents this host recorded as
// coordinator, oldest first, with the names their indexes refer to.
type IncidentsReply struct {
	Cluster   string
	Host      string
	Hosts     []string // by index
	VMs       []string // by index
	Incidents []*cluster.Incident
}

// incidentLog keeps the incidents this host recorded (the newest version
// of each) and writes every version to every datastore, best effort: one
// writer goroutine per datastore while it has versions to write, so the
// versions of one incident land in order and a hung datastore holds up
// nothing but itself. Its zero value is ready; it is safe for concurrent
// use.
type incidentLog struct {
	mu     sync.Mutex
	recent []*cluster.Incident
	wall   map[cluster.IncidentID]int64 // the wall stamp of each incident's first version
	queues []*incidentQueue             // per datastore
	busy   sync.WaitGroup               // writer goroutines running
}

// incidentQueue is one datastore's versions waiting to be written: the
// newest of each incident, in the order they came.
type incidentQueue struct {
	mu      sync.Mutex
	pending []*cluster.Incident
	running bool
}

// RecordIncident stamps the incident with the wall time of its detection,
// keeps it for the API and writes it to every datastore in the background.
func (e env) RecordIncident(x *cluster.Incident) {
	d := e.d
	d.incidents.record(d, x, time.Now().Add(x.Detected-e.Now()))
}

func (l *incidentLog) record(d *daemon, x *cluster.Incident, detected time.Time) {
	l.mu.Lock()
	if l.wall == nil {
		l.wall = map[cluster.IncidentID]int64{}
	}
	wall, ok := l.wall[x.ID]
	if !ok {
		wall = detected.UnixNano()
		l.wall[x.ID] = wall
	}
	y := *x // the core's version is never modified: stamp a copy
	y.Wall = wall
	l.keep(&y)
	for len(l.queues) < len(d.stores) {
		l.queues = append(l.queues, &incidentQueue{})
	}
	queues := l.queues
	l.mu.Unlock()
	for i, st := range d.stores {
		name := d.datastoreName(i)
		write := func(x *cluster.Incident) {
			if err := st.WriteIncident(x); err != nil {
				d.logOnce("incident:"+name, slog.LevelWarn, "cannot write an incident record to a datastore (reported once): the incident stays in the agent's memory",
					"component", "coord", "datastore", name, "err", err)
			}
		}
		queues[i].submit(&y, &l.busy, write)
	}
}

// keep replaces the incident's older version, or adds it and forgets the
// oldest closed ones beyond keepIncidents. Called with l.mu held.
func (l *incidentLog) keep(x *cluster.Incident) {
	for i, y := range l.recent {
		if y.ID == x.ID {
			if x.Version >= y.Version {
				l.recent[i] = x
			}
			return
		}
	}
	l.recent = append(l.recent, x)
	for i := 0; len(l.recent) > keepIncidents && i < len(l.recent); {
		if !l.recent[i].Closed {
			i++
			continue
		}
		delete(l.wall, l.recent[i].ID)
		l.recent = append(l.recent[:i], l.recent[i+1:]...)
	}
}

// list returns the incidents kept, oldest first.
func (l *incidentLog) list() []*cluster.Incident {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*cluster.Incident(nil), l.recent...)
}

// wait returns once no write is in flight or pending (tests).
func (l *incidentLog) wait() { l.busy.Wait() }

func (q *incidentQueue) submit(x *cluster.Incident, busy *sync.WaitGroup, write func(*cluster.Incident)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	replaced := false
	for i, y := range q.pending {
		if y.ID == x.ID {
			q.pending[i], replaced = x, true
		}
	}
	if !replaced {
		q.pending = append(q.pending, x)
	}
	if q.running {
		return
	}
	q.running = true
	busy.Add(1)
	go func() {
		defer busy.Done()
		for {
			q.mu.Lock()
			if len(q.pending) == 0 {
				q.running = false
				q.mu.Unlock()
				return
			}
			x := q.pending[0]
			q.pending = q.pending[1:]
			q.mu.Unlock()
			write(x)
		}
	}()
}

func (d *daemon) datastoreName(i int) string {
	if i >= 0 && i < len(d.cfg.Datastores) {
		return d.cfg.Datastores[i].Name
	}
	return "ds" + strconv.Itoa(i)
}

func (d *daemon) incidentsReply() IncidentsReply {
	rep := IncidentsReply{Cluster: d.cfg.Cluster.Name, Host: d.hostName(d.self), Incidents: d.incidents.list()}
	for h := range d.spec.Hosts {
		rep.Hosts = append(rep.Hosts, d.spec.Hosts[h].Name)
	}
	for v := range d.spec.VMs {
		rep.VMs = append(rep.VMs, d.spec.VMs[v].Name)
	}
	return rep
}
