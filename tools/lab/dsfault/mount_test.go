package dsfault

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/vigil-ha/vigil/drivers/datastore"
	"github.com/vigil-ha/vigil/drivers/datastore/loop"
	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/tools/privtest"
)

// hostPaths mounts n host paths to a new shared folder.
func hostPaths(t *testing.T, n int) (shared string, paths []*Path, faults []*Faults) {
	t.Helper()
	privtest.Require(t)
	dir := t.TempDir()
	shared = filepath.Join(dir, "shared")
	if err := os.Mkdir(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		point := filepath.Join(dir, "h"+string(rune('1'+i)))
		if err := os.Mkdir(point, 0o755); err != nil {
			t.Fatal(err)
		}
		f := NewFaults()
		p, err := Mount(point, shared, f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			f.Set("ds0", OK)
			f.Set("ds1", OK)
			if err := p.Unmount(); err != nil {
				t.Error(err)
			}
		})
		paths, faults = append(paths, p), append(faults, f)
	}
	return shared, paths, faults
}

// TestFolderPaths: two hosts' paths to one shared folder see each other's
// atomically replaced files at once; a failed path gives EIO to its host
// alone; a hung one answers once it is healed.
func TestFolderPaths(t *testing.T) {
	_, p, f := hostPaths(t, 2)
	ds1 := filepath.Join(p[0].Point, "ds0")
	ds2 := filepath.Join(p[1].Point, "ds0")
	if err := os.Mkdir(ds1, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, body := range []string{"first", "second"} {
		if err := writeAtomic(filepath.Join(ds1, "slot"), []byte(body)); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		got, err := os.ReadFile(filepath.Join(ds2, "slot"))
		if err != nil || string(got) != body {
			t.Fatalf("the other host read %q, %v; want %q", got, err, body)
		}
	}
	f[0].Set("ds0", Fail)
	if _, err := os.ReadFile(filepath.Join(ds1, "slot")); !errors.Is(err, syscall.EIO) {
		t.Fatalf("read on a failed path: %v; want EIO", err)
	}
	if err := writeAtomic(filepath.Join(ds1, "slot"), []byte("x")); !errors.Is(err, syscall.EIO) {
		t.Fatalf("write on a failed path: %v; want EIO", err)
	}
	if got, err := os.ReadFile(filepath.Join(ds2, "slot")); err != nil || string(got) != "second" {
		t.Fatalf("the healthy path read %q, %v", got, err)
	}
	f[0].Set("ds0", Hang)
	res := make(chan error, 1)
	go func() { res <- writeAtomic(filepath.Join(ds1, "slot"), []byte("third")) }()
	if !f[0].WaitHung("ds0", 1, nil) {
		t.Fatal("no request hung")
	}
	select {
	case err := <-res:
		t.Fatalf("a write on a hung path returned %v", err)
	default:
	}
	f[0].Set("ds0", OK)
	if err := <-res; err != nil {
		t.Fatalf("the hung write after the heal: %v", err)
	}
	if got, err := os.ReadFile(filepath.Join(ds2, "slot")); err != nil || string(got) != "third" {
		t.Fatalf("after the heal the other host read %q, %v", got, err)
	}
}

func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	fd, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = fd.Write(data)
	if err == nil {
		err = fd.Sync()
	}
	if cerr := fd.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// TestLoopPaths: loop devices attached to two hosts' views of one image
// are two paths to one LUN: a slot written through one is read through
// the other; a failed path fails its host's reads and writes alone.
func TestLoopPaths(t *testing.T) {
	shared, p, f := hostPaths(t, 2)
	if err := os.WriteFile(filepath.Join(shared, "ds1"), make([]byte, 4<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	var devs []string
	for _, hp := range p {
		d, err := loop.Attach(filepath.Join(hp.Point, "ds1"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Detach() })
		devs = append(devs, d.Path)
	}
	if _, err := datastore.InitBlock(devs[0], "lab", 8); err != nil {
		t.Fatal(err)
	}
	var bs []*datastore.Block
	for _, d := range devs {
		b, err := datastore.OpenBlock(d, "lab", 3)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		bs = append(bs, b)
	}
	for c := uint64(1); c <= 3; c++ {
		if err := bs[0].Write(&cluster.Record{Host: 0, Incarnation: 7, Counter: c}); err != nil {
			t.Fatal(err)
		}
		recs, err := bs[1].ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if recs[0] == nil || recs[0].Counter != c {
			t.Fatalf("the other path read %+v; want counter %d", recs[0], c)
		}
	}
	f[0].Set("ds1", Fail)
	if err := bs[0].Write(&cluster.Record{Host: 0, Incarnation: 7, Counter: 4}); err == nil {
		t.Fatal("a write on a failed path succeeded")
	}
	if _, err := bs[0].ReadAll(); err == nil {
		t.Fatal("a read on a failed path succeeded")
	}
	if err := bs[1].Write(&cluster.Record{Host: 1, Incarnation: 9, Counter: 1}); err != nil {
		t.Fatalf("the healthy path: %v", err)
	}
	f[0].Set("ds1", OK)
	recs, err := bs[0].ReadAll()
	if err != nil {
		t.Fatalf("after the heal: %v", err)
	}
	if recs[1] == nil || recs[1].Counter != 1 || recs[0] == nil || recs[0].Counter != 3 {
		t.Fatalf("after the heal read %+v, %+v; want h0 at 3 and h1 at 1", recs[0], recs[1])
	}
	if c := f[0].Counts("ds1"); c.Failed == 0 {
		t.Errorf("counts %+v: no failed request", c)
	}
	f[0].Set("ds1", Hang)
	res := make(chan error, 1)
	go func() { res <- bs[0].Write(&cluster.Record{Host: 0, Incarnation: 7, Counter: 5}) }()
	if !f[0].WaitHung("ds1", 1, nil) {
		t.Fatal("no request hung")
	}
	select {
	case err := <-res:
		t.Fatalf("a write on a hung path returned %v", err)
	default:
	}
	f[0].Set("ds1", OK)
	if err := <-res; err != nil {
		t.Fatalf("the hung write after the heal: %v", err)
	}
	if recs, err := bs[1].ReadAll(); err != nil || recs[0] == nil || recs[0].Counter != 5 {
		t.Fatalf("after the hung write landed the other path read %v, %v; want counter 5", recs, err)
	}
}
