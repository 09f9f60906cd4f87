package agentd

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/drivers/datastore/datastoretest"
	"github.com/vigil-ha/vigil/fence/cluster"
)

// syncBuffer is a log sink the writer goroutines may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// incidentDaemon is newTestDaemon's h1 with two in-memory datastores.
func incidentDaemon(t *testing.T) (*daemon, []*datastoretest.Path, *syncBuffer) {
	d, _ := newTestDaemon(t)
	var paths []*datastoretest.Path
	for range 2 {
		p := datastoretest.NewShared(3).For(0)
		paths = append(paths, p)
		d.stores = append(d.stores, p)
	}
	d.cfg.Datastores = append(d.cfg.Datastores, d.cfg.Datastores[0])
	d.cfg.Datastores[1].Name = "ds2"
	logs := &syncBuffer{}
	d.log = slog.New(slog.NewTextHandler(logs, nil))
	return d, paths, logs
}

func coreIncident(seq, version uint64, detected time.Duration) *cluster.Incident {
	return &cluster.Incident{ID: cluster.IncidentID{Host: 0, Incarnation: 1, Seq: seq}, Version: version, Host: 1, Kind: cluster.IncidentFailed,
		Detected: detected, Placements: []cluster.Placement{{VM: 0, To: 0, Epoch: 2, State: cluster.PlacementAssigned}}}
}

func TestRecordIncident(t *testing.T) {
	d, paths, _ := incidentDaemon(t)
	e := env{d}
	detected := e.Now() - 2*time.Second
	v1 := coreIncident(1, 1, detected)
	e.RecordIncident(v1)
	v2 := coreIncident(1, 2, detected)
	v2.Closed = true
	e.RecordIncident(v2)
	d.incidents.wait()
	if v1.Wall != 0 || v2.Wall != 0 {
		t.Error("the core's incident was stamped: it must never be modified")
	}
	want := d.start.Add(detected).UnixNano()
	for i, p := range paths {
		xs, _, err := p.ReadIncidents()
		if err != nil || len(xs) != 1 || xs[0].Version != 2 || !xs[0].Closed {
			t.Fatalf("datastore %d holds %+v, %v; want version 2", i, xs, err)
		}
		if got := xs[0].Wall; got < want-int64(time.Second) || got > want+int64(time.Second) {
			t.Errorf("wall stamp %v, want about %v (the wall time of detection)", time.Unix(0, got), time.Unix(0, want))
		}
	}
	kept := d.incidents.list()
	if len(kept) != 1 || kept[0].Version != 2 || kept[0].Wall == 0 {
		t.Fatalf("kept %+v", kept)
	}
	// The second version keeps the first one's stamp, whatever the clock does.
	e.RecordIncident(coreIncident(1, 3, detected+time.Hour))
	d.incidents.wait()
	if got := d.incidents.list()[0]; got.Wall != kept[0].Wall || got.Version != 3 {
		t.Errorf("version 3 stamped %d, version 2 %d: one incident, one stamp", got.Wall, kept[0].Wall)
	}
}

// TestRecordIncidentBestEffort: a hung datastore holds up nobody, a
// failing one is reported once, and what reaches them lands in order.
func TestRecordIncidentBestEffort(t *testing.T) {
	d, paths, logs := incidentDaemon(t)
	e := env{d}
	paths[0].Hang()
	paths[1].Fail(syscall.EIO)
	e.RecordIncident(coreIncident(1, 1, 0))
	<-paths[0].Blocked()
	for v := uint64(2); v <= 5; v++ {
		e.RecordIncident(coreIncident(1, v, 0)) // returns while a write hangs
	}
	e.RecordIncident(coreIncident(2, 1, 0))
	if got := d.incidents.list(); len(got) != 2 || got[0].Version != 5 {
		t.Fatalf("kept %+v while a datastore hangs", got)
	}
	paths[0].Release()
	d.incidents.wait()
	if n := strings.Count(logs.String(), "cannot write an incident record"); n != 1 || !strings.Contains(logs.String(), "datastore=ds2") {
		t.Errorf("failure reported %d times:\n%s", n, logs.String())
	}
	// The hung datastore got version 1, then only the newest of the rest.
	if n := paths[0].IncidentWrites(); n != 3 {
		t.Errorf("%d writes to the hung datastore; want 3 (version 1, then version 5 and incident 2)", n)
	}
	if xs, _, _ := paths[0].ReadIncidents(); len(xs) != 2 || xs[0].Version != 5 {
		t.Errorf("hung datastore, released: %+v; want incident 1 at version 5 and incident 2", xs)
	}
	if xs, _, _ := paths[1].ReadIncidents(); len(xs) != 0 {
		t.Errorf("failing datastore: %+v stored", xs)
	}
	paths[1].Fail(nil) // back: the next version lands
	e.RecordIncident(coreIncident(1, 6, 0))
	d.incidents.wait()
	if xs, _, _ := paths[1].ReadIncidents(); len(xs) != 1 || xs[0].Version != 6 {
		t.Errorf("healed datastore: %+v; want incident 1 at version 6", xs)
	}
}

func TestIncidentsBounded(t *testing.T) {
	d, _, _ := incidentDaemon(t)
	d.stores = nil
	for seq := uint64(1); seq <= keepIncidents+10; seq++ {
		x := coreIncident(seq, 1, 0)
		x.Closed = seq != 3 // one stays open
		env{d}.RecordIncident(x)
	}
	got := d.incidents.list()
	if len(got) != keepIncidents || got[0].ID.Seq != 3 || got[1].ID.Seq != 12 || len(d.incidents.wall) != keepIncidents {
		t.Fatalf("%d kept, first seqs %d %d; want %d: the open one and the newest closed", len(got), got[0].ID.Seq, got[1].ID.Seq, keepIncidents)
	}
}

func TestAPIIncidents(t *testing.T) {
	d, _, _ := incidentDaemon(t)
	env{d}.RecordIncident(coreIncident(1, 1, time.Second))
	d.incidents.wait()
	c := serve(t, d)
	var rep IncidentsReply
	if err := c.Get(context.Background(), "/v1/incidents", &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Cluster != "unit" || rep.Host != "h1" || strings.Join(rep.Hosts, ",") != "h1,h2,h3" || len(rep.Incidents) != 1 ||
		rep.Incidents[0].Placements[0].Epoch != 2 || rep.Incidents[0].Wall == 0 {
		t.Fatalf("GET /v1/incidents = %+v", rep)
	}
}
