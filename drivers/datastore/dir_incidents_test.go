package datastore

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestDirIncidents(t *testing.T) {
	root := t.TempDir()
	w, _ := OpenDir(root, "lab", 3)
	r, _ := OpenDir(root, "lab", 3) // another host's view
	if xs, bad, err := r.ReadIncidents(); len(xs) != 0 || len(bad) != 0 || err != nil {
		t.Fatalf("no incident yet: %v, %v, %v", xs, bad, err)
	}
	for seq := uint64(1); seq <= IncidentsKept+3; seq++ {
		if err := w.WriteIncident(sampleIncident(1, seq)); err != nil {
			t.Fatal(err)
		}
	}
	other := sampleIncident(2, 1)
	if err := w.WriteIncident(other); err != nil {
		t.Fatal(err)
	}
	newer := sampleIncident(1, 10)
	newer.Version = 4
	if err := w.WriteIncident(newer); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteIncident(sampleIncident(1, 10)); err != nil { // version 3, late: changes nothing
		t.Fatal(err)
	}
	xs, bad, err := r.ReadIncidents()
	if err != nil || len(bad) != 0 {
		t.Fatal(err, bad)
	}
	if len(xs) != IncidentsKept+1 || xs[0].ID.Seq != 4 || xs[IncidentsKept-1].ID.Seq != IncidentsKept+3 || !reflect.DeepEqual(xs[IncidentsKept], other) {
		t.Fatalf("%d incidents, first seq %d; want h2's newest %d and h3's one", len(xs), xs[0].ID.Seq, IncidentsKept)
	}
	if x := xs[10-4]; x.ID.Seq != 10 || x.Version != 4 {
		t.Errorf("incident 10: %+v; want its second version", x.ID)
	}
	if got, _ := filepath.Glob(filepath.Join(w.Path(), "incidents", "*.tmp")); len(got) != 0 {
		t.Errorf("temporary files left behind: %v", got)
	}
	if err := w.WriteIncident(sampleIncident(3, 1)); err == nil {
		t.Error("an incident of host 3 of 3 was written")
	}
}

func TestDirBadIncidents(t *testing.T) {
	root := t.TempDir()
	d, _ := OpenDir(root, "lab", 3)
	prod, _ := OpenDir(root, "prod", 3)
	good := sampleIncident(1, 1)
	if err := d.WriteIncident(good); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(d.Path(), "incidents")
	data, _ := os.ReadFile(filepath.Join(dir, "1-7-1"))
	prod.WriteIncident(sampleIncident(1, 2))
	foreign, _ := os.ReadFile(filepath.Join(prod.Path(), "incidents", "1-7-2"))
	torn := append([]byte(nil), data...)
	clear(torn[len(torn)/2:])
	for name, b := range map[string][]byte{
		"1-7-2":        torn,        // torn
		"1-7-3":        foreign,     // another cluster's
		"2-7-1":        data,        // h2's record in an h3 file
		"1-7-4":        data,        // incident 1 under another name
		"1-7-5":        nil,         // empty
		"9-7-1":        data,        // a host the cluster does not have
		"notes.txt":    []byte("x"), // not an incident
		"1-7-6.tmp":    []byte("x"), // a write in progress: skipped
		"1-007-6":      data,        // not the canonical name
		"1-7-7-8":      data,
		"1-7-18446744": data,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	xs, bad, err := d.ReadIncidents()
	if err != nil {
		t.Fatal(err)
	}
	if len(xs) != 1 || !reflect.DeepEqual(xs[0], good) {
		t.Errorf("incidents %v; want the good one alone", xs)
	}
	var msgs []string
	for _, e := range bad {
		if !errors.Is(e, ErrBadIncident) {
			t.Errorf("%v does not match ErrBadIncident", e)
		}
		msgs = append(msgs, e.Error())
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{"1-7-2): checksum mismatch", "1-7-3): written by another cluster", "2-7-1): holds host 1's incident, not host 2's",
		"1-7-4): holds incident 1-7-1, not 1-7-4", "1-7-5): empty", "9-7-1): host 9 is not in the cluster", "notes.txt): not an incident file",
		"1-007-6): not an incident file", "1-7-7-8): not an incident file"} {
		if !strings.Contains(all, want) {
			t.Errorf("no report saying %q in:\n%s", want, all)
		}
	}
	if len(bad) != 10 {
		t.Errorf("%d reports, want 10:\n%s", len(bad), all)
	}
}

func TestParseIncidentName(t *testing.T) {
	for name, want := range map[string]bool{"0-1-1": true, "12-1796000000000000000-300": true, "-1-1-1": false, "1-1": false, "a-1-1": false, "1-+1-1": false, "01-1-1": false} {
		id, ok := parseIncidentName(name)
		if ok != want || (ok && IncidentName(id) != name) {
			t.Errorf("parseIncidentName(%q) = %+v, %v; want ok=%v", name, id, ok, want)
		}
	}
}
