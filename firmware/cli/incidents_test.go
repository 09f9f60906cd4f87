package cli

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/drivers/datastore"
	"github.com/vigil-ha/vigil/fence"
	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/firmware/agentd"
)

// twoFolders is dsCluster with two folder datastores.
func twoFolders(t *testing.T) (cfg string, ds1, ds2 string) {
	t.Helper()
	dir := t.TempDir()
	ds1, ds2 = filepath.Join(dir, "ds1"), filepath.Join(dir, "ds2")
	text := strings.Replace(dsCluster, "device = %q", "path = "+`"`+ds1+`"`, 1)
	text = strings.Replace(text, "[[hosts]]", "[[datastores]]\nname = \"ds2\"\npath = \""+ds2+"\"\n\n[[hosts]]", 1)
	cfg = filepath.Join(dir, "cluster.toml")
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg, ds1, ds2
}

// h2Failed is h1's incident seq about h2's failure, at version v.
func h2Failed(seq, v uint64, wall time.Time) *cluster.Incident {
	x := &cluster.Incident{ID: cluster.IncidentID{Host: 0, Incarnation: 11, Seq: seq}, Version: v, Host: 1, Incarnation: 4, Kind: cluster.IncidentFailed,
		Wall: wall.UnixNano(), Detected: 20 * time.Second, Suspect: []string{"network: link0 down", "storage: ds1 advancing (counter 9)"},
		Decided: 22600 * time.Millisecond, Verdict: []string{"network: link0 down", "storage: ds1 silent 3099ms (counter 9)"},
		Fence: cluster.IncidentFence{Started: 22600 * time.Millisecond, Plan: fence.Lease}}
	if v >= 2 {
		x.Proof = cluster.Proof{Kind: cluster.ProofLease, Host: 1, Incarnation: 4, Counter: 9, At: 28500 * time.Millisecond, Detail: "lease counter 9 still"}
		x.Placements = []cluster.Placement{{VM: 0, To: 0, Epoch: 2, State: cluster.PlacementRunning, Assigned: 28500 * time.Millisecond, Running: 28507 * time.Millisecond}}
		x.Closed, x.Outcome = true, "1 of 1 VMs running again"
	}
	return x
}

func writeIncident(t *testing.T, path string, x *cluster.Incident) {
	t.Helper()
	d, err := datastore.OpenDir(path, "unit", 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WriteIncident(x); err != nil {
		t.Fatal(err)
	}
}

func TestIncidentsFromDatastores(t *testing.T) {
	cfg, ds1, ds2 := twoFolders(t)
	at := time.Date(2026, 12, 4, 21, 40, 2, 0, time.UTC)
	writeIncident(t, ds1, h2Failed(3, 2, at))
	writeIncident(t, ds2, h2Failed(3, 1, at)) // ds2 missed the last version
	released := &cluster.Incident{ID: cluster.IncidentID{Host: 1, Incarnation: 5, Seq: 1}, Version: 1, Host: 1, Kind: cluster.IncidentReleased,
		Wall: at.Add(-time.Hour).UnixNano(), Detected: time.Second, Suspect: []string{"h2 released web (maintenance)"},
		Placements: []cluster.Placement{{VM: 0, To: -1, State: cluster.PlacementWaiting, Reason: "needs 2 vCPU"}}}
	writeIncident(t, ds2, released)
	bad := filepath.Join(ds2, "unit", "incidents", "0-11-9")
	os.WriteFile(bad, []byte("VGIR and then nothing that checks out"), 0o600)

	code, out, errs := runCLI("incidents", "--config", cfg)
	if code != 1 || !strings.Contains(errs, "datastore ds2: skipped:") || !strings.Contains(errs, "0-11-9") {
		t.Errorf("exit %d, stderr %q; want 1 and the bad record named", code, errs)
	}
	want := `2026-12-04T20:40:02Z h2 released (incident h2-5-1, coordinator h2)
  +0ms  detected: h2 released web (maintenance)
        web not placed: needs 2 vCPU
        open

2026-12-04T21:40:02Z h2 failed (incident h1-11-3, coordinator h1)
  +0ms     suspected: network: link0 down; storage: ds1 advancing (counter 9)
  +2600ms  failed: network: link0 down; storage: ds1 silent 3099ms (counter 9)
  +2600ms  fence: lease wait (its lease and watchdog deadlines)
  +8500ms  fenced: lease-expired (lease counter 9 still)
  +8500ms  web -> h1 (epoch 2)
  +8507ms  web running on h1
           closed: 1 of 1 VMs running again (first VM running at +8507ms, last at +8507ms)
`
	if out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}

	code, out, _ = runCLI("incidents", "--config", cfg, "--json")
	var views []incidentView
	if err := json.Unmarshal([]byte(out), &views); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if code != 1 || len(views) != 2 || views[1].ID != "h1-11-3" || views[1].Version != 2 || strings.Join(views[1].Datastores, ",") != "ds1" ||
		views[1].Detected != "2026-12-04T21:40:02Z" || *views[1].Timeline[4].MS != 8500 || views[1].Record.Proof.Counter != 9 {
		t.Errorf("--json: exit %d, %+v", code, views)
	}
}

func TestIncidentsUsage(t *testing.T) {
	cfg, _, _ := twoFolders(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
		errs string
	}{
		{"an argument", []string{"incidents", "--config", cfg, "h2"}, 2, `unexpected argument "h2"`},
		{"an unknown flag", []string{"incidents", "--host", "h2"}, 2, "flag provided but not defined: -host"},
		{"no cluster file", []string{"incidents", "--config", filepath.Join(t.TempDir(), "none.toml")}, 1, "fix: pass --config"},
		{"no agent", []string{"incidents", "--api", filepath.Join(t.TempDir(), "api.sock")}, 1, "no agent answers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := runCLI(tc.args...)
			if code != tc.code || !strings.Contains(errs, tc.errs) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errs, tc.code, tc.errs)
			}
		})
	}
	code, out, _ := runCLI("incidents", "--config", cfg)
	if code != 0 || out != "no incidents recorded\n" {
		t.Errorf("no incident: %d %q", code, out)
	}
}

func TestIncidentsFromAgent(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	rep := agentd.IncidentsReply{Cluster: "unit", Host: "a", Hosts: []string{"a", "b"}, VMs: []string{"db"},
		Incidents: []*cluster.Incident{h2Failed(1, 2, time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC))}}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/incidents" {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(rep)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	code, out, errs := runCLI("incidents", "--api", sock)
	if code != 0 || !strings.Contains(out, "2026-12-04T00:00:00Z b failed (incident a-11-1, coordinator a)") || !strings.Contains(out, "+8500ms  db -> a (epoch 2)") {
		t.Errorf("exit %d\n%s%s", code, out, errs)
	}
}

func TestDatastoreShowLeasesOwnersIncidents(t *testing.T) {
	cfg, ds1, _ := twoFolders(t)
	d, _ := datastore.OpenDir(ds1, "unit", 2)
	d.Write(&cluster.Record{Host: 0, Incarnation: 11, Counter: 30, Claims: []cluster.Claim{{VM: 0, Epoch: 2, State: cluster.Running}},
		Fenced: []cluster.Proof{{Kind: cluster.ProofLease, Host: 1, Incarnation: 4, Detail: "lease counter 9 still"}}})
	d.Write(&cluster.Record{Host: 1, Incarnation: 4, Counter: 9, Claims: []cluster.Claim{{VM: 0, Epoch: 1, State: cluster.Running}}})
	d.WriteIncident(h2Failed(3, 2, time.Date(2026, 12, 4, 21, 40, 2, 0, time.UTC)))

	code, out, errs := runCLI("datastore", "show", ds1, "--config", cfg)
	for _, want := range []string{
		"h1    11           30       held    renewed when written",
		"h2    4            9        fenced  by h1: lease-expired (lease counter 9 still)",
		"web  h1     2      running",
		"incidents (1)\n2026-12-04T21:40:02Z h2 failed (incident h1-11-3, coordinator h1): closed: 1 of 1 VMs running again",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("show lacks %q: exit %d\n%s%s", want, code, out, errs)
		}
	}
	_, out, _ = runCLI("datastore", "dump", ds1, "--config", cfg)
	if !strings.Contains(out, "  +8507ms  web running on h1") {
		t.Errorf("dump lacks the timeline:\n%s", out)
	}
	// A torn incident record: reported, and the exit status says so.
	f := filepath.Join(ds1, "unit", "incidents", "0-11-3")
	b, _ := os.ReadFile(f)
	os.WriteFile(f, b[:len(b)/2], 0o600)
	code, out, _ = runCLI("datastore", "show", ds1, "--config", cfg, "--json")
	var v datastoreView
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("show --json: %v\n%s", err, out)
	}
	if code != 1 || len(v.Incidents) != 0 || len(v.BadIncidents) != 1 || !strings.Contains(v.BadIncidents[0], "torn") ||
		v.Leases[1].State != "fenced" || v.Owners[0].Owner != "h1" || v.Owners[0].Epoch != 2 {
		t.Errorf("show --json with a torn incident: exit %d, %+v", code, v)
	}
}
