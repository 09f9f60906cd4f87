package datastore

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/drivers/datastore/loop"
	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/tools/privtest"
)

// imageFile makes a zeroed file of n bytes to stand in for a device.
func imageFile(t testing.TB, n int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ds.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(n); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

func TestBlockInit(t *testing.T) {
	p := imageFile(t, 4<<20)
	if done, err := InitBlock(p, "lab", 16); err != nil || !done {
		t.Fatalf("init = %v, %v", done, err)
	}
	if done, err := InitBlock(p, "lab", 8); err != nil || done {
		t.Errorf("a second init of the same cluster = %v, %v; want nothing done and no error", done, err)
	}
	for _, tc := range []struct {
		name    string
		path    string
		cluster string
		slots   int
		want    string
	}{
		{"another cluster's datastore", p, "prod", 16, `holds cluster "lab"`},
		{"more slots than it has", p, "lab", 32, "does not grow"},
		{"too small", imageFile(t, 8*SlotSize), "lab", 16, "give a larger device"},
		{"no slots", p, "lab", 0, "0 slots"},
		{"not there", filepath.Join(t.TempDir(), "missing"), "lab", 4, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := InitBlock(tc.path, tc.cluster, tc.slots); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("init: %v; want an error saying %q", err, tc.want)
			}
		})
	}
	t.Run("a device that holds something", func(t *testing.T) {
		q := imageFile(t, 4<<20)
		f, _ := os.OpenFile(q, os.O_RDWR, 0)
		f.WriteAt([]byte{0x53, 0xef}, 1024+56) // an ext4 superblock's magic
		f.Close()
		if _, err := InitBlock(q, "lab", 4); err == nil || !strings.Contains(err.Error(), "byte 1080 is not zero") {
			t.Fatalf("init over a file system: %v", err)
		}
		before, _ := os.ReadFile(q)
		if before[1080] != 0x53 {
			t.Fatal("init changed the device it refused")
		}
	})
	t.Run("a damaged header", func(t *testing.T) {
		q := imageFile(t, 1<<20)
		InitBlock(q, "lab", 4)
		f, _ := os.OpenFile(q, os.O_RDWR, 0)
		f.WriteAt([]byte("X"), 30)
		f.Close()
		if _, err := InitBlock(q, "lab", 4); err == nil || !strings.Contains(err.Error(), "damaged vigil header") {
			t.Fatalf("init over a damaged header: %v", err)
		}
		if _, err := OpenBlock(q, "lab", 4); err == nil || !strings.Contains(err.Error(), "checksum") {
			t.Fatalf("open of a damaged header: %v", err)
		}
	})
}

func TestBlockOpen(t *testing.T) {
	p := imageFile(t, 1<<20)
	if _, err := OpenBlock(p, "lab", 3); err == nil || !strings.Contains(err.Error(), "vigil datastore init") {
		t.Errorf("open before init: %v; want the init command named", err)
	}
	InitBlock(p, "lab", 4)
	if _, err := OpenBlock(p, "prod", 3); err == nil || !strings.Contains(err.Error(), `belongs to cluster "lab"`) {
		t.Errorf("open by another cluster: %v", err)
	}
	if _, err := OpenBlock(p, "lab", 5); err == nil || !strings.Contains(err.Error(), "4 slots for 5 hosts") {
		t.Errorf("open with more hosts than slots: %v", err)
	}
	b, err := OpenBlock(p, "lab", 3)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if h := b.Header(); h.Slots != 4 || h.Cluster != "lab" || h.Layout != BlockLayout {
		t.Errorf("header %+v", h)
	}
}

// testBlock runs the read and write checks on the block datastore at p.
func testBlock(t *testing.T, p string) {
	if _, err := InitBlock(p, "lab", 8); err != nil {
		t.Fatal(err)
	}
	w, err := OpenBlock(p, "lab", 3)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, err := OpenBlock(p, "lab", 3) // another host's view of the device
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var bad []error
	r.BadSlot = func(err error) { bad = append(bad, err) }

	recs, err := r.ReadAll()
	if err != nil || len(recs) != 3 || recs[0] != nil || recs[1] != nil || recs[2] != nil || len(bad) != 0 {
		t.Fatalf("fresh datastore: %+v, %v, bad %v; want 3 empty slots", recs, err, bad)
	}
	want := sample(2)
	if err := w.Write(want); err != nil {
		t.Fatal(err)
	}
	small := &cluster.Record{Host: 2, Incarnation: 8, Counter: 1} // shorter: the old tail must not linger
	if err := w.Write(small); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(sample(0)); err != nil {
		t.Fatal(err)
	}
	recs, err = r.ReadAll()
	if err != nil || !reflect.DeepEqual(recs[2], small) || !reflect.DeepEqual(recs[0], sample(0)) || recs[1] != nil || len(bad) != 0 {
		t.Fatalf("ReadAll = %+v, %v, bad %v", recs, err, bad)
	}
	if err := w.Write(sample(3)); err == nil {
		t.Error("a write to slot 3 of 3 succeeded")
	}

	// A torn slot: half a new record over an old one.
	big := sample(1)
	big.Fenced[0].Detail = strings.Repeat("d", 3000)
	if err := w.Write(big); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	torn := make([]byte, SlotSize)
	if _, err := f.ReadAt(torn, slotOffset(1)); err != nil {
		t.Fatal(err)
	}
	copy(torn[2048:], make([]byte, 2048)) // the second half never made it
	if _, err := f.WriteAt(torn, slotOffset(1)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	recs, err = r.ReadAll()
	if err != nil || recs[1] != nil || len(bad) != 1 || !errors.Is(bad[0], ErrBadSlot) || !strings.Contains(bad[0].Error(), "checksum mismatch") || !strings.Contains(bad[0].Error(), "slot 1") {
		t.Fatalf("torn slot read as %+v (err %v), reported %v; want nil and one checksum error for slot 1", recs[1], err, bad)
	}
	if recs[0] == nil || recs[2] == nil {
		t.Error("one torn slot lost the others")
	}
}

func TestBlockFile(t *testing.T) {
	testBlock(t, imageFile(t, 1<<20))
}

// TestBlockLoop runs the same checks on a real loop device, with O_DIRECT.
func TestBlockLoop(t *testing.T) {
	privtest.Require(t)
	dev := attach(t, imageFile(t, 4<<20))
	testBlock(t, dev.Path)
	b, err := OpenBlock(dev.Path, "lab", 3)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !b.Direct() {
		t.Error("a loop device was opened without O_DIRECT")
	}
}

func attach(t testing.TB, backing string) *loop.Device {
	t.Helper()
	dev, err := loop.Attach(backing)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := dev.Detach(); err != nil {
			t.Error(err)
		}
	})
	return dev
}

// BenchmarkBlockSlotRoundTrip writes this host's slot and reads it back on a
// loop device, O_DIRECT and O_DSYNC (target: under 2 ms).
func BenchmarkBlockSlotRoundTrip(b *testing.B) {
	privtest.Require(b)
	dev := attach(b, imageFile(b, 4<<20))
	if _, err := InitBlock(dev.Path, "lab", 1); err != nil {
		b.Fatal(err)
	}
	ds, err := OpenBlock(dev.Path, "lab", 1)
	if err != nil {
		b.Fatal(err)
	}
	defer ds.Close()
	r := sample(0)
	for b.Loop() {
		r.Counter++
		if err := ds.Write(r); err != nil {
			b.Fatal(err)
		}
		recs, err := ds.ReadAll()
		if err != nil || recs[0] == nil || recs[0].Counter != r.Counter {
			b.Fatalf("read back %+v, %v", recs, err)
		}
	}
}

// BenchmarkBlockSweep256 reads 256 written host slots in one sweep on a loop
// device (target: under 20 ms).
func BenchmarkBlockSweep256(b *testing.B) {
	privtest.Require(b)
	dev := attach(b, imageFile(b, 32<<20))
	if _, err := InitBlock(dev.Path, "lab", 256); err != nil {
		b.Fatal(err)
	}
	ds, err := OpenBlock(dev.Path, "lab", 256)
	if err != nil {
		b.Fatal(err)
	}
	defer ds.Close()
	for h := range 256 {
		if err := ds.Write(sample(h)); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		recs, err := ds.ReadAll()
		if err != nil || recs[255] == nil {
			b.Fatalf("sweep: %v", err)
		}
	}
}
