package datastore

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/hb"
)

func sample(h int) *cluster.Record {
	return &cluster.Record{Host: h, Incarnation: 7, Counter: 42, Hears: hb.HostSet(0b101),
		Claims:      []cluster.Claim{{VM: 3, Epoch: 2, State: cluster.Running}},
		Assignments: []hb.Assignment{{VM: 3, Host: h, Epoch: 2, From: 1, FromEpoch: 1, Inc: 7}},
		Fenced:      []cluster.Proof{{Kind: cluster.ProofLease, Host: 1, Incarnation: 3, Counter: 9, At: 12 * time.Second, Detail: "lease silent"}}}
}

func TestDirRoundTrip(t *testing.T) {
	d, err := OpenDir(t.TempDir(), "lab", 3)
	if err != nil {
		t.Fatal(err)
	}
	want := sample(2)
	if err := d.Write(want); err != nil {
		t.Fatal(err)
	}
	want.Counter = 43 // a second write replaces the first
	if err := d.Write(want); err != nil {
		t.Fatal(err)
	}
	recs, err := d.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || recs[0] != nil || recs[1] != nil || !reflect.DeepEqual(recs[2], want) {
		t.Fatalf("ReadAll = %+v, want slot 2 = %+v", recs, want)
	}
	if _, err := os.Stat(filepath.Join(d.Path(), "slot-2.tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left behind: %v", err)
	}
}

func TestDirBadSlots(t *testing.T) {
	root := t.TempDir()
	d, _ := OpenDir(root, "lab", 2)
	other, _ := OpenDir(root, "lab", 2)
	for _, tc := range []struct {
		name   string
		mangle func(path string, data []byte) []byte
		want   string
	}{
		{"garbage", func(string, []byte) []byte { return []byte("not a record, but long enough to have a header") }, "no record magic"},
		{"empty file", func(string, []byte) []byte { return nil }, "empty"},
		{"torn record", func(_ string, b []byte) []byte { b[len(b)-3] ^= 0x40; return b }, "checksum mismatch"},
		{"cut short", func(_ string, b []byte) []byte { return b[:len(b)-5] }, "torn"},
		{"other cluster", func(p string, _ []byte) []byte {
			prod, _ := OpenDir(filepath.Dir(filepath.Dir(p)), "prod", 2)
			if err := prod.Write(sample(1)); err != nil {
				panic(err)
			}
			b, _ := os.ReadFile(filepath.Join(prod.Path(), "slot-1"))
			return b
		}, "another cluster"},
		{"newer format", func(_ string, b []byte) []byte { b[4] = 9; return b }, "format 9"},
		{"wrong slot", func(p string, _ []byte) []byte {
			if err := d.Write(sample(0)); err != nil {
				panic(err)
			}
			b, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "slot-0"))
			return b
		}, "holds host 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := d.Write(sample(1)); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(d.Path(), "slot-1")
			data, _ := os.ReadFile(p)
			if err := os.WriteFile(p, tc.mangle(p, data), 0o600); err != nil {
				t.Fatal(err)
			}
			var bad []error
			other.BadSlot = func(err error) { bad = append(bad, err) }
			recs, err := other.ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if recs[1] != nil || len(bad) != 1 || !errors.Is(bad[0], ErrBadSlot) || !strings.Contains(bad[0].Error(), tc.want) {
				t.Fatalf("slot read as %+v, reports %v; want nil and one error saying %q", recs[1], bad, tc.want)
			}
		})
	}
}

func TestDirErrors(t *testing.T) {
	if _, err := OpenDir("relative/dir", "lab", 2); err == nil || !strings.Contains(err.Error(), "absolute path") {
		t.Errorf("relative path: %v", err)
	}
	root := t.TempDir()
	d, _ := OpenDir(root, "lab", 2)
	if err := d.Write(sample(5)); err == nil {
		t.Error("a write to slot 5 of 2 succeeded")
	}
	if err := os.RemoveAll(d.Path()); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ReadAll(); err == nil {
		t.Error("ReadAll of a vanished datastore succeeded")
	}
}

// TestOpen: Open picks the backend by which of device and path is set and
// hands the slot checks' reports to badSlot.
func TestOpen(t *testing.T) {
	dir := t.TempDir()
	st, closeDS, err := Open("", dir, "lab", 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.(*Dir); !ok {
		t.Errorf("a path opened as %T", st)
	}
	if err := closeDS(); err != nil {
		t.Error(err)
	}
	img := filepath.Join(dir, "ds.img")
	if err := os.WriteFile(img, make([]byte, 8<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Open(img, "", "lab", 3, nil); err == nil || !strings.Contains(err.Error(), "vigil datastore init") {
		t.Fatalf("an uninitialised device: %v", err)
	}
	if _, err := InitBlock(img, "lab", 8); err != nil {
		t.Fatal(err)
	}
	var bad []error
	st, closeDS, err = Open(img, "/ignored", "lab", 3, func(err error) { bad = append(bad, err) })
	if err != nil {
		t.Fatal(err)
	}
	defer closeDS()
	if _, ok := st.(*Block); !ok {
		t.Fatalf("a device opened as %T", st)
	}
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteAt([]byte("VGSR torn"), slotOffset(1))
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.ReadAll(); err != nil || len(bad) != 1 {
		t.Errorf("a bad slot: %v, reports %v; want one report", err, bad)
	}
}
