package datastoretest

import (
	"errors"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/drivers/datastore"
	"github.com/vigil-ha/vigil/fence"
	"github.com/vigil-ha/vigil/fence/cluster"
)

func incident(h int, seq, version uint64) *cluster.Incident {
	return &cluster.Incident{ID: cluster.IncidentID{Host: h, Incarnation: 4, Seq: seq}, Version: version, Host: 2, Kind: cluster.IncidentFailed,
		Suspect: []string{"network: link0 down"}, Fence: cluster.IncidentFence{Attempts: []fence.Attempt{{Op: fence.PowerOff, At: time.Second}}},
		Placements: []cluster.Placement{{VM: 1, To: h, Epoch: 2, State: cluster.PlacementAssigned}}}
}

func TestIncidentsRoundTrip(t *testing.T) {
	ds := NewShared(3)
	w, r := ds.For(1), ds.For(0)
	for seq := uint64(1); seq <= datastore.IncidentsKept+2; seq++ {
		if err := w.WriteIncident(incident(1, seq, 1)); err != nil {
			t.Fatal(err)
		}
	}
	mine := incident(0, 1, 1)
	if err := r.WriteIncident(mine); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteIncident(incident(1, 5, 3)); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteIncident(incident(1, 5, 2)); err != nil { // late: changes nothing
		t.Fatal(err)
	}
	xs, bad, err := r.ReadIncidents()
	if err != nil || len(bad) != 0 {
		t.Fatal(err, bad)
	}
	if len(xs) != datastore.IncidentsKept+1 || !reflect.DeepEqual(xs[0], mine) || xs[1].ID.Seq != 3 || xs[3].Version != 3 {
		t.Fatalf("%d incidents: %+v ...; want h1's, then h2's newest %d with seq 5 at version 3", len(xs), xs[0].ID, datastore.IncidentsKept)
	}
	// Deep copies both ways.
	xs[3].Placements[0].VM = 99
	xs[3].Suspect[0] = "changed"
	if got := ds.Incidents()[3]; got.Placements[0].VM != 1 || got.Suspect[0] != "network: link0 down" {
		t.Errorf("a read incident shares memory with the store: %+v", got)
	}
	if w.IncidentWrites() != datastore.IncidentsKept+4 || r.IncidentReads() != 1 {
		t.Errorf("writes %d, reads %d", w.IncidentWrites(), r.IncidentReads())
	}
}

func TestIncidentFaults(t *testing.T) {
	ds := NewShared(2)
	p := ds.For(1)
	if err := p.WriteIncident(incident(0, 1, 1)); !errors.Is(err, ErrWrongSlot) {
		t.Errorf("writing h1's incident through h2's path: %v; want ErrWrongSlot", err)
	}
	if err := p.WriteIncident(nil); err == nil || !strings.Contains(err.Error(), "nil incident") {
		t.Errorf("nil incident: %v", err)
	}
	p.Fail(syscall.EIO)
	if err := p.WriteIncident(incident(1, 1, 1)); !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "write incident") {
		t.Errorf("failed path: %v", err)
	}
	if _, _, err := p.ReadIncidents(); !errors.Is(err, syscall.EIO) {
		t.Errorf("failed path read: %v", err)
	}
	p.Heal()
	if len(ds.Incidents()) != 0 {
		t.Fatal("a failed write landed")
	}
	p.Hang()
	done := make(chan error)
	go func() { done <- p.WriteIncident(incident(1, 1, 1)) }()
	<-p.Blocked()
	p.Release()
	if err := <-done; err != nil || len(ds.Incidents()) != 1 {
		t.Fatalf("released write: %v, %d stored", err, len(ds.Incidents()))
	}
	ds.CorruptIncident(cluster.IncidentID{Host: 1, Incarnation: 4, Seq: 1})
	p.WriteIncident(incident(1, 2, 1))
	xs, bad, err := ds.For(0).ReadIncidents()
	if err != nil || len(xs) != 1 || xs[0].ID.Seq != 2 || len(bad) != 1 || !errors.Is(bad[0], datastore.ErrBadIncident) {
		t.Fatalf("a corrupt incident: %v, bad %v, %v; want it reported and the other read", xs, bad, err)
	}
	p.WriteIncident(incident(1, 1, 2)) // written again: good again
	if xs, bad, _ := ds.For(0).ReadIncidents(); len(xs) != 2 || len(bad) != 0 {
		t.Errorf("rewritten incident: %d read, %d bad", len(xs), len(bad))
	}
}
