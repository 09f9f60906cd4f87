package datastoretest

import "github.com/vigil-ha/vigil/fence/cluster"

// Fail makes every later call through the path return an error wrapping
// err, as an I/O error on a dead path would; Fail(nil) heals it. A failed
// Write leaves the slot as it was.
func (p *Path) Fail(err error) {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	p.err = err
}

// Hang makes later calls through the path block until Release, as I/O on a
// frozen filesystem or an all-paths-down LUN does. Hanging a hung path
// changes nothing.
func (p *Path) Hang() {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	if p.release == nil {
		p.release = make(chan struct{})
	}
}

// Release unblocks every call waiting on the path and stops hanging new
// ones. A released call then completes as if it had been made at that
// moment: a Write lands unless the path has been failed meanwhile.
func (p *Path) Release() {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	if p.release != nil {
		close(p.release)
		p.release = nil
		p.waiting = 0
	}
}

// Waiting returns the number of calls blocked on the path now.
func (p *Path) Waiting() int {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	return p.waiting
}

// Blocked returns a channel that receives once for every call that blocks
// on the hung path, so that a test waits for the call to block without
// sleeping:
//
//	p.Hang()
//	go func() { done <- p.Write(rec) }()
//	<-p.Blocked()
//	p.Release()
//	err := <-done
//
// A call that is released before anyone receives from the channel does not
// send.
func (p *Path) Blocked() <-chan struct{} { return p.blocked }

// Corrupt makes host's slot read as nil through this path only, as a bad
// checksum would, until Repair(host) or Heal. The stored record is not
// touched: other paths still read it.
func (p *Path) Corrupt(host int) {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	if host >= 0 && host < len(p.bad) {
		p.bad[host] = true
	}
}

// Repair undoes Corrupt(host) on this path.
func (p *Path) Repair(host int) {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	if host >= 0 && host < len(p.bad) {
		p.bad[host] = false
	}
}

// Heal clears every fault of the path: the failure, the hang (as Release
// does) and corrupt slots. Slots corrupted through Shared.Corrupt stay
// corrupt until their host writes.
func (p *Path) Heal() {
	p.Fail(nil)
	p.Release()
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	clear(p.bad)
}

// OnBadSlot sets a function that hears about every corrupt slot a ReadAll
// through the path skips, with a *datastore.SlotError (which matches
// datastore.ErrBadSlot), as *datastore.Dir's BadSlot does. It is called
// without the datastore's lock, on the reading goroutine.
func (p *Path) OnBadSlot(f func(error)) {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	p.onBad = f
}

// Writes returns the number of Write calls made through the path, failed,
// refused and blocked ones included.
func (p *Path) Writes() int {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	return p.writes
}

// Reads returns the number of ReadAll calls made through the path, failed
// and blocked ones included.
func (p *Path) Reads() int {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	return p.reads
}

// Clone returns a deep copy of r (nil for nil): no slice of the copy shares
// memory with r, and nil slices stay nil.
func Clone(r *cluster.Record) *cluster.Record {
	if r == nil {
		return nil
	}
	c := *r
	c.Claims = cloneSlice(r.Claims)
	c.Assignments = cloneSlice(r.Assignments)
	c.Fenced = cloneSlice(r.Fenced)
	return &c
}

// cloneSlice copies a slice of plain values, keeping nil and empty apart.
func cloneSlice[T any](s []T) []T {
	if s == nil {
		return nil
	}
	return append(make([]T, 0, len(s)), s...)
}
