package datastore

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/hb"
	"github.com/vigil-ha/vigil/tools/privtest"
)

func TestBlockLayoutSize(t *testing.T) {
	exact := blockSize(4, 16)
	if exact != 4096*(1+4+4*16) {
		t.Fatalf("blockSize(4, 16) = %d", exact)
	}
	p := imageFile(t, exact)
	if done, err := InitBlock(p, "lab", 4); err != nil || !done {
		t.Fatalf("init of a device of exactly the size: %v, %v", done, err)
	}
	b, err := OpenBlock(p, "lab", 4)
	if err != nil {
		t.Fatal(err)
	}
	if h := b.Header(); h.Layout != 2 || h.IncidentSlots != DefaultIncidentSlots || h.Size() != exact {
		t.Errorf("header %+v", h)
	}
	b.Close()
	short := imageFile(t, exact-SlotSize)
	if _, err := InitBlock(short, "lab", 4); err == nil || !strings.Contains(err.Error(), "16 incident slots each need") {
		t.Errorf("init of a device one slot short: %v; want the incident area named", err)
	}
	if _, err := InitBlockRing(p, "lab", 4, 0); err == nil || !strings.Contains(err.Error(), "0 incident slots") {
		t.Errorf("init with no incident slots: %v", err)
	}
	// Anything in the area the datastore takes, past the first MiB, is
	// found too.
	used := imageFile(t, 8<<20)
	f, _ := os.OpenFile(used, os.O_RDWR, 0)
	f.WriteAt([]byte{7}, 3<<20)
	f.Close()
	if _, err := InitBlock(used, "lab", 64); err == nil || !strings.Contains(err.Error(), "byte 3145728 is not zero") {
		t.Errorf("init over data in the incident area: %v", err)
	}
	// A device that shrank under its header is refused.
	if err := os.Truncate(p, exact-SlotSize); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenBlock(p, "lab", 4); err == nil || !strings.Contains(err.Error(), "shrank") {
		t.Errorf("open of a shrunk device: %v", err)
	}
}

// writeLayout1 makes p look like a device initialised by an earlier vigil:
// a layout 1 header with slots slots, and host 0's slot written.
func writeLayout1(t *testing.T, p string, slots int) *cluster.Record {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := BlockHeader{Layout: 1, Slots: slots, ClusterID: hb.ClusterID("lab"), Cluster: "lab"}
	if _, err := f.WriteAt(h.encode(), 0); err != nil {
		t.Fatal(err)
	}
	rec := sample(0)
	b, _ := AppendRecord(nil, h.ClusterID, rec)
	if _, err := f.WriteAt(b, slotOffset(0)); err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestBlockUpgradeFromLayout1(t *testing.T) {
	p := imageFile(t, 1<<20)
	rec := writeLayout1(t, p, 4)
	if _, err := OpenBlock(p, "lab", 3); err == nil || !strings.Contains(err.Error(), "layout 1") || !strings.Contains(err.Error(), "vigil datastore init "+p) {
		t.Fatalf("open of a layout 1 device: %v; want the layout and the fix named", err)
	}
	if done, err := InitBlock(p, "lab", 4); err != nil || !done {
		t.Fatalf("upgrade: %v, %v", done, err)
	}
	b, err := OpenBlock(p, "lab", 3)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	recs, err := b.ReadAll()
	if err != nil || !reflect.DeepEqual(recs[0], rec) {
		t.Errorf("host 0's slot after the upgrade: %+v, %v; want it kept", recs[0], err)
	}
	if h := b.Header(); h.Layout != 2 || h.Slots != 4 || h.IncidentSlots != DefaultIncidentSlots {
		t.Errorf("header after the upgrade: %+v", h)
	}
	if done, err := InitBlock(p, "lab", 4); err != nil || done {
		t.Errorf("a second init after the upgrade: %v, %v; want nothing done", done, err)
	}

	t.Run("incident area in use", func(t *testing.T) {
		q := imageFile(t, 1<<20)
		writeLayout1(t, q, 4)
		f, _ := os.OpenFile(q, os.O_RDWR, 0)
		f.WriteAt([]byte{1}, blockSize(4, 0)+100)
		f.Close()
		if _, err := InitBlock(q, "lab", 4); err == nil || !strings.Contains(err.Error(), "refusing to upgrade") {
			t.Fatalf("upgrade over data: %v", err)
		}
	})
	t.Run("too small for the incident area", func(t *testing.T) {
		q := imageFile(t, blockSize(4, 0))
		writeLayout1(t, q, 4)
		if _, err := InitBlock(q, "lab", 4); err == nil || !strings.Contains(err.Error(), "give a larger device") {
			t.Fatalf("upgrade of a small device: %v", err)
		}
	})
}

// testBlockIncidents runs the incident checks on the block datastore at p.
func testBlockIncidents(t *testing.T, p string) {
	if _, err := InitBlockRing(p, "lab", 8, 4); err != nil {
		t.Fatal(err)
	}
	w, err := OpenBlock(p, "lab", 3)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, err := OpenBlock(p, "lab", 3) // another host's view
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	read := func() ([]*cluster.Incident, []error) {
		t.Helper()
		xs, bad, err := r.ReadIncidents()
		if err != nil {
			t.Fatal(err)
		}
		return xs, bad
	}
	if xs, bad := read(); len(xs) != 0 || len(bad) != 0 {
		t.Fatalf("fresh datastore: %v, bad %v", xs, bad)
	}
	for seq := uint64(1); seq <= 6; seq++ {
		if err := w.WriteIncident(sampleIncident(1, seq)); err != nil {
			t.Fatal(err)
		}
	}
	other := sampleIncident(2, 1)
	if err := w.WriteIncident(other); err != nil {
		t.Fatal(err)
	}
	newer := sampleIncident(1, 5)
	newer.Version, newer.Outcome = 9, "newer"
	if err := w.WriteIncident(newer); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteIncident(sampleIncident(1, 5)); err != nil { // version 3, late
		t.Fatal(err)
	}
	xs, bad := read()
	var seqs []uint64
	for _, x := range xs {
		seqs = append(seqs, x.ID.Seq)
	}
	if len(bad) != 0 || !reflect.DeepEqual(seqs, []uint64{3, 4, 5, 6, 1}) || xs[2].Version != 9 || !reflect.DeepEqual(xs[4], other) {
		t.Fatalf("ring of 4 after 6 incidents of h2 and 1 of h3: seqs %v (want 3 4 5 6 1), bad %v, seq 5 %+v", seqs, bad, xs[2])
	}
	if err := w.WriteIncident(sampleIncident(3, 1)); err == nil {
		t.Error("an incident of host 3 of 3 was written")
	}

	// A torn incident slot: half a record. It is reported, the others stay.
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	slot := make([]byte, SlotSize)
	at := w.incidentOffset(1, 0)
	if _, err := f.ReadAt(slot, at); err != nil {
		t.Fatal(err)
	}
	clear(slot[200:])
	if _, err := f.WriteAt(slot, at); err != nil {
		t.Fatal(err)
	}
	// And another host's record in h2's ring: never trusted as h2's.
	foreign, _ := AppendIncident(nil, hb.ClusterID("lab"), sampleIncident(0, 7))
	if _, err := f.WriteAt(append(foreign, make([]byte, SlotSize-len(foreign))...), w.incidentOffset(1, 1)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	xs, bad = read()
	if len(xs) != 3 || len(bad) != 2 || !errors.Is(bad[0], ErrBadIncident) {
		t.Fatalf("after a torn and a foreign slot: %d incidents, bad %v; want 3 and two reports", len(xs), bad)
	}
	if msg := bad[0].Error() + "\n" + bad[1].Error(); !strings.Contains(msg, "checksum mismatch") || !strings.Contains(msg, "incident slot 0 of host 1") ||
		!strings.Contains(msg, "holds host 0's incident, not host 1's") {
		t.Errorf("reports:\n%s", msg)
	}
	// The next incident takes a bad slot, not a good one.
	if err := w.WriteIncident(sampleIncident(1, 7)); err != nil {
		t.Fatal(err)
	}
	if xs, bad = read(); len(xs) != 4 || len(bad) != 1 {
		t.Errorf("after a new incident: %d incidents, %d bad; want the new one in place of a bad slot", len(xs), len(bad))
	}
}

func TestBlockIncidentsFile(t *testing.T) {
	testBlockIncidents(t, imageFile(t, 1<<20))
}

// TestBlockIncidentsLoop runs the same checks on a loop device, O_DIRECT.
func TestBlockIncidentsLoop(t *testing.T) {
	privtest.Require(t)
	testBlockIncidents(t, attach(t, imageFile(t, 4<<20)).Path)
}
