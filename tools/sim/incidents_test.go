package sim

import (
	"testing"

	"github.com/vigil-ha/vigil/fence/cluster"
)

// TestScenarioIncidents: the incidents the coordinators record in a few
// golden scenarios, as the datastores would hold them.
func TestScenarioIncidents(t *testing.T) {
	for _, tc := range []struct {
		scenario string
		by       string // the coordinator that records it
		host     string // the host it is about
		kind     cluster.IncidentKind
		proof    cluster.ProofKind
		running  int // placements seen running
		closed   bool
	}{
		{"power-loss", "h1", "h2", cluster.IncidentFailed, cluster.ProofBMCOff, 2, true},
		{"frozen-host-resumes", "h1", "h3", cluster.IncidentFailed, cluster.ProofLease, 2, true},
		{"all-nics-cut-isolation", "h1", "h2", cluster.IncidentIsolated, cluster.ProofReleased, 2, true},
		{"vm-crash", "h1", "h3", cluster.IncidentReleased, cluster.ProofReleased, 1, true},
		{"insufficient-capacity", "h3", "h1", cluster.IncidentFailed, cluster.ProofBMCOff, 1, false}, // batch1 waits for room
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			r, err := RunScenario("testdata/scenarios/"+tc.scenario, false)
			if err != nil {
				t.Fatal(err)
			}
			by := -1
			for _, h := range r.World.hosts {
				if h.name == tc.by {
					by = h.id
				}
			}
			var x *cluster.Incident
			for _, y := range r.World.Incidents(by) {
				if r.World.hostName(y.Host) == tc.host {
					x = y
					break
				}
			}
			if x == nil {
				t.Fatalf("%s recorded no incident about %s: %+v", tc.by, tc.host, r.World.Incidents(by))
			}
			running := 0
			for _, pl := range x.Placements {
				if pl.State == cluster.PlacementRunning && pl.Running >= pl.Assigned && pl.Assigned >= x.Proof.At {
					running++
				}
			}
			if x.Kind != tc.kind || x.Proof.Kind != tc.proof || running != tc.running || x.Closed != tc.closed || x.Detected <= 0 || len(x.Suspect) == 0 {
				t.Errorf("incident: kind %s, proof %s, %d placements running, closed %v, detected %v, evidence %q; want %s, %s, %d, closed %v",
					x.Kind, x.Proof.Kind, running, x.Closed, x.Detected, x.Suspect, tc.kind, tc.proof, tc.running, tc.closed)
			}
		})
	}
}
