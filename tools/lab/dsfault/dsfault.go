// Package dsfault gives each lab host its own path to the lab's shared
// datastores, so that one host's path can fail or hang while the others
// keep working, as a host's NFS mount or its paths to a shared LUN can in
// production. Each host's path is a FUSE mount passing every request
// through to the shared folder; a fault mode per (host, datastore) decides
// what a request gets first:
//
//	mode  what a request on that datastore gets
//	ok    passed through
//	fail  EIO at once (an I/O error, as a dead path gives)
//	hang  no answer until the mode changes (a hung NFS server or array)
//
// A datastore is a top-level entry of the shared folder: a folder (a
// folder datastore) or an image file that a loop device attached to the
// host's FUSE view turns into the host's own block device. Files are
// opened for direct I/O, so no host reads another's writes from a cache.
//
//	f := dsfault.NewFaults()
//	m, err := dsfault.Mount("/run/vigil-lab/lab/h1/store", "/run/vigil-lab/lab/store", f)
//	f.Set("ds1", dsfault.Fail) // h1's path to ds1 now fails
//	defer m.Unmount()
package dsfault

import (
	"fmt"
	"sync"
)

// Mode is what the requests on one datastore path get.
type Mode uint8

// Fault modes.
const (
	OK Mode = iota
	Fail
	Hang
)

func (m Mode) String() string {
	switch m {
	case OK:
		return "ok"
	case Fail:
		return "fail"
	case Hang:
		return "hang"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// ParseMode parses "ok", "fail" or "hang".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "ok":
		return OK, nil
	case "fail":
		return Fail, nil
	case "hang":
		return Hang, nil
	}
	return OK, fmt.Errorf("datastore fault %q: want ok, fail or hang", s)
}

// Faults holds one host's fault mode per datastore. Its methods may be
// called from any goroutine.
type Faults struct {
	mu      sync.Mutex
	modes   map[string]Mode
	changed chan struct{} // closed and replaced at every change
	counts  map[string]*Counts
}

// Counts are the requests one datastore path got.
type Counts struct {
	Passed, Failed, Hung uint64
}

// NewFaults returns faults with every datastore ok.
func NewFaults() *Faults {
	return &Faults{modes: map[string]Mode{}, changed: make(chan struct{}), counts: map[string]*Counts{}}
}

// Set sets datastore ds's mode; requests hanging on it go on under the
// new mode.
func (f *Faults) Set(ds string, m Mode) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.modes[ds] == m {
		return
	}
	f.modes[ds] = m
	close(f.changed)
	f.changed = make(chan struct{})
}

// Mode returns datastore ds's mode.
func (f *Faults) Mode(ds string) Mode {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.modes[ds]
}

// Counts returns what the requests on datastore ds got so far.
func (f *Faults) Counts(ds string) Counts {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.counts[ds]; c != nil {
		return *c
	}
	return Counts{}
}

// WaitHung waits until n requests in all have hung on datastore ds, or
// done is closed; it reports whether they have.
func (f *Faults) WaitHung(ds string, n uint64, done <-chan struct{}) bool {
	for {
		f.mu.Lock()
		ch := f.changed
		var hung uint64
		if c := f.counts[ds]; c != nil {
			hung = c.Hung
		}
		f.mu.Unlock()
		if hung >= n {
			return true
		}
		select {
		case <-ch:
		case <-done:
			return false
		}
	}
}

// gate is what a request on ds gets: nil to go on, or the error to
// answer. Under Hang it waits until the mode changes or done is closed
// (the kernel interrupted the request), then answers errInterrupted.
func (f *Faults) gate(ds string, done <-chan struct{}) error {
	if ds == "" {
		return nil // the mount's root is no datastore
	}
	hung := false
	for {
		f.mu.Lock()
		m, ch := f.modes[ds], f.changed
		c := f.counts[ds]
		if c == nil {
			c = &Counts{}
			f.counts[ds] = c
		}
		switch {
		case m == Hang && !hung:
			c.Hung++
			hung = true
			close(f.changed) // wake WaitHung
			f.changed = make(chan struct{})
			ch = f.changed
		case m == OK:
			c.Passed++
		case m == Fail:
			c.Failed++
		}
		f.mu.Unlock()
		switch m {
		case OK:
			return nil
		case Fail:
			return errIO
		}
		select {
		case <-ch:
		case <-done:
			return errInterrupted
		}
	}
}
