package datastoretest

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/drivers/datastore"
	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/hb"
)

func sample(h int) *cluster.Record {
	return &cluster.Record{Host: h, Incarnation: 7, Counter: 42, Hears: hb.HostSet(0b101),
		Claims:      []cluster.Claim{{VM: 3, Epoch: 2, State: cluster.Running}},
		Assignments: []hb.Assignment{{VM: 3, Host: h, Epoch: 2, From: 1, FromEpoch: 1, Inc: 7}},
		Fenced:      []cluster.Proof{{Kind: cluster.ProofLease, Host: 1, Incarnation: 3, Counter: 9, At: 12 * time.Second, Detail: "lease silent"}}}
}

func TestRoundTrip(t *testing.T) {
	ds := NewShared(3)
	w, r := ds.For(2), ds.For(0)
	want := sample(2)
	if err := w.Write(want); err != nil {
		t.Fatal(err)
	}
	want = sample(2)
	want.Counter = 43 // a second write replaces the first
	want.Claims = []cluster.Claim{}
	if err := w.Write(want); err != nil {
		t.Fatal(err)
	}
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || recs[0] != nil || recs[1] != nil || !reflect.DeepEqual(recs[2], want) {
		t.Fatalf("ReadAll = %+v; want slot 2 = %+v and the others nil", recs, want)
	}
	if recs[2].Claims == nil || recs[2].Fenced == nil {
		t.Error("an empty slice read back as nil")
	}
	if w.Writes() != 2 || w.Reads() != 0 || r.Writes() != 0 || r.Reads() != 1 {
		t.Errorf("writes/reads: writer %d/%d, reader %d/%d; want 2/0 and 0/1", w.Writes(), w.Reads(), r.Writes(), r.Reads())
	}
	if ds.For(2) != w || w.Host() != 2 || ds.Hosts() != 3 {
		t.Errorf("For(2) = %p (host %d), first %p; hosts %d", ds.For(2), ds.For(2).Host(), w, ds.Hosts())
	}
	if got := ds.Slot(2); !reflect.DeepEqual(got, want) || ds.Slot(1) != nil || ds.Slot(9) != nil {
		t.Errorf("Slot(2) = %+v, Slot(1) = %+v, Slot(9) = %+v", got, ds.Slot(1), ds.Slot(9))
	}
}

func TestDeepCopy(t *testing.T) {
	ds := NewShared(2)
	p := ds.For(1)
	rec := sample(1)
	if err := p.Write(rec); err != nil {
		t.Fatal(err)
	}
	mutate := func(r *cluster.Record) {
		r.Counter = 99
		r.Claims[0].Epoch = 99
		r.Assignments[0].Host = 0
		r.Fenced[0].Detail = "changed"
		r.Claims = append(r.Claims, cluster.Claim{VM: 8})
	}
	mutate(rec)
	for i := range 2 {
		recs, err := p.ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(recs[1], sample(1)) {
			t.Fatalf("read %d: stored record changed to %+v; want %+v", i, recs[1], sample(1))
		}
		mutate(recs[1]) // must not reach the store either
	}
	if !reflect.DeepEqual(ds.Slot(1), sample(1)) {
		t.Fatalf("Slot(1) = %+v after mutations", ds.Slot(1))
	}
	if Clone(nil) != nil {
		t.Error("Clone(nil) is not nil")
	}
}

// TestCloneCoversRecord fails when cluster.Record gains a field that holds
// references Clone does not copy.
func TestCloneCoversRecord(t *testing.T) {
	copied := map[string]bool{"Claims": true, "Assignments": true, "Fenced": true}
	rt := reflect.TypeFor[cluster.Record]()
	for i := range rt.NumField() {
		f := rt.Field(i)
		if copied[f.Name] {
			if f.Type.Kind() != reflect.Slice || holdsRefs(f.Type.Elem()) {
				t.Errorf("Record.%s is %v: Clone copies it as a slice of plain values", f.Name, f.Type)
			}
			continue
		}
		if holdsRefs(f.Type) {
			t.Errorf("Record.%s (%v) holds references: deep-copy it in Clone", f.Name, f.Type)
		}
	}
}

func holdsRefs(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Chan, reflect.Func, reflect.Interface, reflect.UnsafePointer:
		return true
	case reflect.Array:
		return holdsRefs(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if holdsRefs(t.Field(i).Type) {
				return true
			}
		}
	}
	return false
}

func TestWriteChecks(t *testing.T) {
	for _, tc := range []struct {
		name      string
		rec       *cluster.Record
		wrongSlot bool
		says      []string
	}{
		{"other host", sample(0), true, []string{"host 1", "host 0"}},
		{"host too high", sample(5), true, []string{"host 1", "host 5", "slots 0 to 2"}},
		{"negative host", sample(-1), true, []string{"host 1", "host -1"}},
		{"nil record", nil, false, []string{"host 1", "nil record"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds := NewShared(3)
			p := ds.For(1)
			err := p.Write(tc.rec)
			if err == nil {
				t.Fatal("Write succeeded")
			}
			if errors.Is(err, ErrWrongSlot) != tc.wrongSlot {
				t.Errorf("errors.Is(%v, ErrWrongSlot) = %v; want %v", err, !tc.wrongSlot, tc.wrongSlot)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			for h := range 3 {
				if ds.Slot(h) != nil {
					t.Errorf("slot %d written", h)
				}
			}
			if p.Writes() != 1 {
				t.Errorf("Writes() = %d; want 1", p.Writes())
			}
		})
	}
}

func TestFail(t *testing.T) {
	for _, tc := range []struct {
		name string
		call func(p *Path) error
		op   string
	}{
		{"write", func(p *Path) error { return p.Write(sample(0)) }, "write"},
		{"read", func(p *Path) error { _, err := p.ReadAll(); return err }, "read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds := NewShared(2)
			p := ds.For(0)
			p.Fail(syscall.EIO)
			for range 2 { // every call fails, not just the next
				err := tc.call(p)
				if !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "host 0: "+tc.op) {
					t.Fatalf("failed path: %v; want an error naming host 0 and %s, wrapping EIO", err, tc.op)
				}
			}
			if ds.Slot(0) != nil {
				t.Error("a failed write landed")
			}
			if err := ds.For(1).Write(sample(1)); err != nil {
				t.Errorf("another host's path failed too: %v", err)
			}
			p.Fail(nil)
			if err := tc.call(p); err != nil {
				t.Errorf("after Fail(nil): %v", err)
			}
		})
	}
}

func TestHangRelease(t *testing.T) {
	for _, tc := range []struct {
		name    string
		callers int
		failMid bool // fail the path while the calls wait
	}{
		{"one call", 1, false},
		{"three calls", 3, false},
		{"failed while hung", 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds := NewShared(2)
			if err := ds.For(1).Write(sample(1)); err != nil {
				t.Fatal(err)
			}
			p := ds.For(0)
			p.Hang()
			p.Hang() // twice is once
			done := make(chan error, tc.callers)
			for i := range tc.callers {
				go func() {
					if i%2 == 0 {
						done <- p.Write(sample(0))
						return
					}
					recs, err := p.ReadAll()
					if err == nil && (len(recs) != 2 || recs[1] == nil) {
						err = fmt.Errorf("read %+v after release", recs)
					}
					done <- err
				}()
			}
			for range tc.callers {
				<-p.Blocked()
			}
			if n := p.Waiting(); n != tc.callers {
				t.Fatalf("Waiting() = %d; want %d", n, tc.callers)
			}
			select {
			case err := <-done:
				t.Fatalf("a call returned (%v) on a hung path", err)
			default:
			}
			if ds.Slot(0) != nil {
				t.Fatal("a hung write landed")
			}
			if err := ds.For(1).Write(sample(1)); err != nil {
				t.Fatalf("another host's path hangs too: %v", err)
			}
			if tc.failMid {
				p.Fail(syscall.EIO)
			}
			p.Release()
			if n := p.Waiting(); n != 0 {
				t.Errorf("Waiting() = %d after Release; want 0", n)
			}
			for range tc.callers {
				err := <-done
				if tc.failMid != errors.Is(err, syscall.EIO) || !tc.failMid && err != nil {
					t.Errorf("released call: %v; want failure %v", err, tc.failMid)
				}
			}
			if landed := ds.Slot(0) != nil; landed == tc.failMid {
				t.Errorf("write landed %v; want %v", landed, !tc.failMid)
			}
			if p.Writes()+p.Reads() != tc.callers {
				t.Errorf("writes %d + reads %d; want %d calls", p.Writes(), p.Reads(), tc.callers)
			}
			p.Release() // releasing a healthy path changes nothing
			if _, err := p.ReadAll(); err != nil && !tc.failMid {
				t.Errorf("ReadAll after Release: %v", err)
			}
		})
	}
}

// A call must not stay blocked when nobody receives from Blocked.
func TestReleaseUnwatched(t *testing.T) {
	ds := NewShared(1)
	p := ds.For(0)
	p.Hang()
	done := make(chan error)
	go func() { done <- p.Write(sample(0)) }()
	p.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ds.Slot(0) == nil {
		t.Error("the released write did not land")
	}
}

func TestCorrupt(t *testing.T) {
	for _, tc := range []struct {
		name    string
		corrupt func(ds *Shared)
		heal    func(ds *Shared)
		all     bool // every path reads the slot as bad, not only host 0's
	}{
		{"torn slot until its host writes", func(ds *Shared) { ds.Corrupt(1) }, func(ds *Shared) { ds.For(1).Write(sample(1)) }, true},
		{"one path until Repair", func(ds *Shared) { ds.For(0).Corrupt(1) }, func(ds *Shared) { ds.For(0).Repair(1) }, false},
		{"one path until Heal", func(ds *Shared) { ds.For(0).Corrupt(1) }, func(ds *Shared) { ds.For(0).Heal() }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds := NewShared(3)
			for h := range 3 {
				if err := ds.For(h).Write(sample(h)); err != nil {
					t.Fatal(err)
				}
			}
			var bad []error
			ds.For(0).OnBadSlot(func(err error) { bad = append(bad, err) })
			tc.corrupt(ds)
			ds.For(0).Corrupt(7) // no such slot: ignored
			ds.Corrupt(-1)
			for h, want := range []bool{true, tc.all, tc.all} {
				recs, err := ds.For(h).ReadAll()
				if err != nil {
					t.Fatal(err)
				}
				if isNil := recs[1] == nil; isNil != want || recs[0] == nil || recs[2] == nil {
					t.Errorf("host %d reads %+v; want slot 1 nil %v and slots 0, 2 set", h, recs, want)
				}
			}
			if len(bad) != 1 || !errors.Is(bad[0], datastore.ErrBadSlot) || !strings.Contains(bad[0].Error(), "checksum") {
				t.Errorf("bad slots reported %v; want one checksum error matching ErrBadSlot", bad)
			}
			var se *datastore.SlotError
			if len(bad) == 1 && (!errors.As(bad[0], &se) || se.Host != 1) {
				t.Errorf("reported %#v; want a SlotError of host 1", bad[0])
			}
			tc.heal(ds)
			recs, err := ds.For(0).ReadAll()
			if err != nil || !reflect.DeepEqual(recs[1], sample(1)) {
				t.Errorf("after healing: %+v, %v; want slot 1 back", recs, err)
			}
		})
	}
}

func TestHeal(t *testing.T) {
	ds := NewShared(1)
	p := ds.For(0)
	p.Fail(syscall.EIO)
	p.Hang()
	p.Corrupt(0)
	p.Heal()
	if err := p.Write(sample(0)); err != nil {
		t.Fatal(err)
	}
	if recs, err := p.ReadAll(); err != nil || recs[0] == nil {
		t.Fatalf("healed path reads %+v, %v", recs, err)
	}
}

func TestPanics(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"no hosts", func() { NewShared(0) }},
		{"negative host", func() { NewShared(2).For(-1) }},
		{"host too high", func() { NewShared(2).For(2) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tc.f()
		})
	}
}

// TestConcurrent is for the race detector: writers, readers and faults at
// once.
func TestConcurrent(t *testing.T) {
	const hosts, rounds = 4, 200
	ds := NewShared(hosts)
	var wg sync.WaitGroup
	for h := range hosts {
		p := ds.For(h)
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range rounds {
				r := sample(h)
				r.Counter = uint64(i)
				p.Write(r)
			}
		}()
		go func() {
			defer wg.Done()
			for range rounds {
				recs, _ := p.ReadAll()
				for _, r := range recs {
					if r != nil {
						r.Claims[0].Epoch++ // a reader's copy is its own
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range rounds {
			p := ds.For(i % hosts)
			p.Fail(syscall.EIO)
			p.Corrupt((i + 1) % hosts)
			ds.Corrupt(i % hosts)
			p.Heal()
		}
	}()
	wg.Wait()
	// The fault goroutine may have corrupted a slot after its host's last
	// write: write every slot once more, then check that what readers did
	// to their copies never reached the store.
	for h := range hosts {
		p := ds.For(h)
		p.Heal()
		if err := p.Write(sample(h)); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := ds.For(0).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		r.Claims[0].Epoch++
	}
	for h := range hosts {
		if r := ds.Slot(h); r == nil || r.Claims[0].Epoch != 2 {
			t.Errorf("slot %d = %+v after the run", h, r)
		}
	}
}
