// Package datastoretest provides an in-memory datastore shared by the hosts
// of a test, with the faults the lab and the simulator inject on one host's
// path to it: I/O errors, hangs and corrupt slots.
//
//	ds := datastoretest.NewShared(3)
//	p := ds.For(0)                  // host 0's path: a datastore.Store
//	agent := newAgent(p)
//	...
//	p.Fail(syscall.EIO)             // every call through p fails
//	p.Hang()                        // calls through p block ...
//	<-p.Blocked()                   // ... here is one
//	p.Release()                     // ... and now they complete
//	ds.Corrupt(1)                   // host 1's slot is torn until it writes again
//	ds.CorruptIncident(id)          // so is that incident record
//	if p.Writes() == 0 { t.Error("host 0 never renewed its lease") }
//
// Write stores a deep copy of the record and ReadAll returns deep copies, so
// neither the code under test nor the test can change a stored record
// behind the datastore's back. Everything is safe for concurrent use.
package datastoretest

import (
	"errors"
	"fmt"
	"sync"

	"github.com/vigil-ha/vigil/drivers/datastore"
	"github.com/vigil-ha/vigil/fence/cluster"
)

// ErrWrongSlot is wrapped by the error of a Write whose record is not the
// writing host's: a host writes only its own slot.
var ErrWrongSlot = errors.New("datastoretest: a host writes only its own slot")

// Operation names, as errors name them.
const (
	opWrite         = "write"
	opReadAll       = "read"
	opWriteIncident = "write incident"
	opReadIncidents = "read incidents"
)

// corruptReason is how a corrupt slot is reported, as *datastore.Dir
// reports a bad checksum.
const corruptReason = "checksum mismatch: the record is torn or corrupt"

// Shared is one datastore that every host of a test reaches through its
// own Path.
type Shared struct {
	mu    sync.Mutex
	slots []*cluster.Record // by host; owned, never handed out
	bad   []bool            // torn slots, until their host writes again
	paths []*Path

	incidents [][]*cluster.Incident       // by writer host, newest last; owned
	badInc    map[cluster.IncidentID]bool // corrupt incident records, until written again
}

// NewShared returns an empty datastore with one slot per host. It panics
// if hosts is not positive.
func NewShared(hosts int) *Shared {
	if hosts < 1 {
		panic(fmt.Sprintf("datastoretest: NewShared(%d): a datastore needs at least one host slot", hosts))
	}
	s := &Shared{slots: make([]*cluster.Record, hosts), bad: make([]bool, hosts), paths: make([]*Path, hosts),
		incidents: make([][]*cluster.Incident, hosts), badInc: map[cluster.IncidentID]bool{}}
	for h := range s.paths {
		s.paths[h] = &Path{s: s, host: h, bad: make([]bool, hosts), blocked: make(chan struct{})}
	}
	return s
}

// Hosts returns the number of slots.
func (s *Shared) Hosts() int { return len(s.slots) }

// For returns host's path to the datastore; every call for one host returns
// the same Path. It panics if host has no slot.
func (s *Shared) For(host int) *Path {
	if host < 0 || host >= len(s.paths) {
		panic(fmt.Sprintf("datastoretest: For(%d): the datastore has slots 0 to %d", host, len(s.paths)-1))
	}
	return s.paths[host]
}

// Slot returns a deep copy of host's stored record, or nil if the slot is
// empty or host has no slot. It ignores faults and counts nothing: it is
// for the test's assertions, not for the code under test.
func (s *Shared) Slot(host int) *cluster.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	if host < 0 || host >= len(s.slots) {
		return nil
	}
	return Clone(s.slots[host])
}

// Corrupt makes host's slot read as nil through every path, as a torn
// write or a bad checksum would, until host writes its slot again.
func (s *Shared) Corrupt(host int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if host >= 0 && host < len(s.bad) {
		s.bad[host] = true
	}
}

// Path is one host's path to a Shared datastore: a datastore.Store whose
// faults touch this host only.
type Path struct {
	s    *Shared
	host int

	// guarded by s.mu
	err       error
	release   chan struct{} // non-nil while hung; closed by Release
	waiting   int
	bad       []bool // slots this path reads as corrupt
	writes    int
	reads     int
	incWrites int
	incReads  int
	onBad     func(error)

	blocked chan struct{} // receives once per call that starts waiting
}

var _ datastore.Store = (*Path)(nil)

// Host returns the host whose path this is.
func (p *Path) Host() int { return p.host }

// Write replaces the path's host's slot with a deep copy of r. It refuses
// a nil record, and a record of another host or of a host with no slot
// with an error wrapping ErrWrongSlot.
func (p *Path) Write(r *cluster.Record) error {
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	p.writes++
	switch {
	case r == nil:
		return fmt.Errorf("datastoretest: host %d wrote a nil record: pass the host's record", p.host)
	case r.Host < 0 || r.Host >= len(s.slots):
		return fmt.Errorf("datastoretest: host %d wrote a record of host %d, and the datastore has slots 0 to %d: %w", p.host, r.Host, len(s.slots)-1, ErrWrongSlot)
	case r.Host != p.host:
		return fmt.Errorf("datastoretest: host %d wrote a record of host %d: set Record.Host to the writer: %w", p.host, r.Host, ErrWrongSlot)
	}
	c := Clone(r) // the record as it was when the write was issued
	if err := p.enter(opWrite); err != nil {
		return err
	}
	s.slots[r.Host] = c
	s.bad[r.Host] = false
	return nil
}

// ReadAll returns deep copies of every slot, indexed by host; an empty or
// corrupt slot is nil, and each corrupt one is reported to the OnBadSlot
// function.
func (p *Path) ReadAll() ([]*cluster.Record, error) {
	s := p.s
	s.mu.Lock()
	p.reads++
	if err := p.enter(opReadAll); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	recs := make([]*cluster.Record, len(s.slots))
	var bad []error
	for h, r := range s.slots {
		if s.bad[h] || p.bad[h] {
			bad = append(bad, &datastore.SlotError{Host: h, Path: fmt.Sprintf("datastoretest slot %d", h), Reason: corruptReason})
			continue
		}
		recs[h] = Clone(r)
	}
	f := p.onBad
	s.mu.Unlock()
	if f != nil {
		for _, err := range bad {
			f(err)
		}
	}
	return recs, nil
}

// enter waits while the path hangs, then returns the injected failure, if
// any, wrapped with op. Callers hold s.mu; enter may release it while it
// waits and holds it again when it returns.
func (p *Path) enter(op string) error {
	if rel := p.release; rel != nil {
		p.waiting++
		p.s.mu.Unlock()
		select {
		case p.blocked <- struct{}{}:
			<-rel
		case <-rel:
		}
		p.s.mu.Lock()
	}
	if p.err != nil {
		return fmt.Errorf("datastoretest: host %d: %s: %w", p.host, op, p.err)
	}
	return nil
}
