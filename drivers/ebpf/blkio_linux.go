//go:build linux && !vigil_noebpf

package ebpf

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
)

// eventsCap is the capacity of Events.
const eventsCap = 16

type blockIO struct {
	opts   BlockOptions
	objs   blkioObjects
	links  []tracepoint
	rd     *ringbuf.Reader
	events chan DevEvent

	kick chan struct{}  // a device failed or became busy (the ring buffer), or a watch began
	wake chan struct{}  // pending has events
	done chan struct{}  // closed by close
	wg   sync.WaitGroup // the poller, the ring reader and the sender

	mu      sync.Mutex
	devs    map[uint64]*devState // the watched devices
	pending []DevEvent           // undelivered, the latest per device
	closed  bool
}

// devState is what the poller decided of a watched device.
type devState struct {
	kdev uint32
	down bool
}

// tracepoint is an attached program.
type tracepoint struct {
	prog        *ebpf.Program
	progName    string // in the ELF
	group, name string
	link        link.Link
}

func newBlockIO(opts BlockOptions) (*blockIO, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("remove the memlock limit: %w", err)
	}
	b := &blockIO{
		opts:   opts,
		events: make(chan DevEvent, eventsCap),
		kick:   make(chan struct{}, 1),
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		devs:   map[uint64]*devState{},
	}
	if err := loadBlkioObjects(&b.objs, nil); err != nil {
		if errors.Is(err, ebpf.ErrNotSupported) {
			err = notSupported("the kernel cannot load the programs", err)
		}
		return nil, fmt.Errorf("load blkio: %w", err)
	}
	mountErr := mountTracefs()
	for _, tp := range []tracepoint{
		{prog: b.objs.BlkIssue, progName: blkioProgBlkIssue, group: "block", name: "block_rq_issue"},
		{prog: b.objs.BlkComplete, progName: blkioProgBlkComplete, group: "block", name: "block_rq_complete"},
	} {
		l, err := attachTracepoint(tp.group, tp.name, tp.prog, mountErr)
		if err != nil {
			b.unload()
			return nil, err
		}
		tp.link = l
		b.links = append(b.links, tp)
	}
	rd, err := ringbuf.NewReader(b.objs.Wakeups)
	if err != nil {
		b.unload()
		return nil, fmt.Errorf("read ring buffer %s: %w", blkioMapWakeups, err)
	}
	b.rd = rd
	b.wg.Go(b.readWakeups)
	b.wg.Go(b.poll)
	b.wg.Go(b.send)
	return b, nil
}

// attachTracepoint attaches prog to group/name; mountErr is why tracefs
// could not be mounted, if it could not.
func attachTracepoint(group, name string, prog *ebpf.Program, mountErr error) (link.Link, error) {
	l, err := link.Tracepoint(group, name, prog, nil)
	if err == nil {
		return l, nil
	}
	switch {
	case mountErr != nil:
		err = notSupported("tracefs not mounted", errors.Join(err, mountErr))
	case errors.Is(err, os.ErrNotExist):
		err = notSupported(fmt.Sprintf("no tracepoint %s/%s", group, name), err)
	case errors.Is(err, ebpf.ErrNotSupported):
		err = notSupported("tracepoint programs unsupported", err)
	}
	return nil, fmt.Errorf("attach to tracepoint %s/%s: %w", group, name, err)
}

// unload detaches the programs and unloads them and the maps.
func (b *blockIO) unload() error {
	var errs []error
	for _, tp := range b.links {
		errs = append(errs, tp.link.Close())
	}
	return errors.Join(append(errs, b.objs.Close())...)
}

func (b *blockIO) watch(dev uint64) error {
	kdev, err := kernelDev(dev)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return fmt.Errorf("ebpf: block I/O: watch %s: %w", blockDevName(dev), os.ErrClosed)
	}
	if _, ok := b.devs[dev]; ok {
		return nil
	}
	fresh := blkioDevStats{SinceNs: uint64(Monotonic())}
	if err := b.objs.Devices.Update(kdev, &fresh, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("ebpf: block I/O: watch %s: %w", blockDevName(dev), err)
	}
	b.devs[dev] = &devState{kdev: kdev}
	b.wakePoller() // it may be busy already
	return nil
}

func (b *blockIO) unwatch(dev uint64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	st, ok := b.devs[dev]
	if !ok || b.closed {
		return nil
	}
	delete(b.devs, dev)
	err := b.objs.Devices.Delete(st.kdev)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		err = nil
	}
	// Entries left in flight would be ignored after another Watch (they
	// are older than it); drop them now.
	err = errors.Join(err, b.dropInFlight(st.kdev))
	if err != nil {
		return fmt.Errorf("ebpf: block I/O: unwatch %s: %w", blockDevName(dev), err)
	}
	return nil
}

// dropInFlight deletes the in-flight entries of kdev.
func (b *blockIO) dropInFlight(kdev uint32) error {
	var (
		key  blkioRqKey
		ns   uint64
		mine []blkioRqKey
	)
	it := b.objs.Inflight.Iterate()
	for it.Next(&key, &ns) {
		if key.Dev == kdev {
			mine = append(mine, key)
		}
	}
	for _, k := range mine {
		if err := b.objs.Inflight.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return err
		}
	}
	return it.Err()
}

func (b *blockIO) stats(dev uint64) (DevStats, error) {
	b.mu.Lock()
	st, ok := b.devs[dev]
	closed := b.closed
	b.mu.Unlock()
	switch {
	case closed:
		return DevStats{}, fmt.Errorf("ebpf: block I/O: stats of %s: %w", blockDevName(dev), os.ErrClosed)
	case !ok:
		return DevStats{}, fmt.Errorf("%w: %s", ErrNotWatched, blockDevName(dev))
	}
	s, err := b.read(dev, st.kdev)
	if err != nil {
		return DevStats{}, err
	}
	now := Monotonic()
	if s.InFlight > 0 {
		oldest, err := b.oldestInFlight(st.kdev, uint64(s.Since))
		if err != nil {
			return DevStats{}, fmt.Errorf("ebpf: block I/O: stats of %s: %w", blockDevName(dev), err)
		}
		if oldest > 0 && oldest < now {
			s.OldestInFlight = now - oldest
		}
	}
	s.Down, s.Why, _ = Judge(s, now, b.opts.Stuck)
	return s, nil
}

// read returns the kernel's figures of dev, not judged.
func (b *blockIO) read(dev uint64, kdev uint32) (DevStats, error) {
	var v blkioDevStats
	if err := b.objs.Devices.Lookup(kdev, &v); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return DevStats{}, fmt.Errorf("%w: %s", ErrNotWatched, blockDevName(dev))
		}
		return DevStats{}, fmt.Errorf("ebpf: block I/O: read %s: %w", blockDevName(dev), err)
	}
	return DevStats{
		Dev:          dev,
		Issued:       v.Issued,
		Completed:    v.Completed,
		Errors:       v.Errors,
		InFlight:     v.Inflight,
		LastErrno:    int(v.LastErrno),
		BusySince:    time.Duration(v.BusySinceNs),
		LastOK:       time.Duration(v.LastOkNs),
		LastErr:      time.Duration(v.LastErrNs),
		Failing:      v.FailRun,
		FailingSince: time.Duration(v.FailSinceNs),
		Since:        time.Duration(v.SinceNs),
		Latency:      v.Hist,
	}, nil
}

// oldestInFlight is the issue time of kdev's oldest request in flight
// issued since sinceNs, 0 when there is none.
func (b *blockIO) oldestInFlight(kdev uint32, sinceNs uint64) (time.Duration, error) {
	var (
		key    blkioRqKey
		ns     uint64
		oldest uint64
	)
	it := b.objs.Inflight.Iterate()
	for it.Next(&key, &ns) {
		if key.Dev == kdev && ns >= sinceNs && (oldest == 0 || ns < oldest) {
			oldest = ns
		}
	}
	return time.Duration(oldest), it.Err()
}

// wakePoller has the poller judge every device now.
func (b *blockIO) wakePoller() {
	select {
	case b.kick <- struct{}{}:
	default: // it has a wake-up queued already
	}
}

// poll judges every watched device when woken (a failed completion, a
// device that became busy, a new watch) and when the earliest of their
// next looks is due, and sleeps otherwise: an idle device costs nothing.
func (b *blockIO) poll() {
	var devs []uint64
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-b.done:
			timer.Stop()
			return
		case <-timer.C:
		case <-b.kick:
		}
		b.mu.Lock()
		devs = devs[:0]
		for dev := range b.devs {
			devs = append(devs, dev)
		}
		b.mu.Unlock()
		next := time.Duration(-1)
		for _, dev := range devs {
			if after, ok := b.judge(dev); ok && (next < 0 || after < next) {
				next = after
			}
		}
		timer.Stop()
		if next >= 0 {
			timer.Reset(next)
		}
	}
}

// judge reads dev's figures, posts an event when its state changed, and
// says when to look at it again (ok false: not before it is woken): Poll
// while it is down, when its requests could be stuck while some are in
// flight.
func (b *blockIO) judge(dev uint64) (after time.Duration, ok bool) {
	b.mu.Lock()
	st := b.devs[dev]
	b.mu.Unlock()
	if st == nil {
		return 0, false
	}
	s, err := b.read(dev, st.kdev)
	if err != nil {
		return 0, false // unwatched meanwhile
	}
	now := Monotonic()
	down, why, first := Judge(s, now, b.opts.Stuck)
	switch {
	case down:
		after, ok = b.opts.Poll, true
	case s.InFlight > 0:
		after, ok = max(s.BusySince+b.opts.Stuck-now, time.Millisecond), true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.devs[dev] != st || down == st.down {
		return after, ok
	}
	st.down = down
	if !down {
		why, first = upWhy, s.LastOK
	}
	b.post(DevEvent{Dev: dev, Down: down, Why: why, First: first, At: now})
	return after, ok
}

// post queues ev for Events in place of dev's undelivered one, if any.
// b.mu is held.
func (b *blockIO) post(ev DevEvent) {
	replaced := false
	for i := range b.pending {
		if b.pending[i].Dev == ev.Dev {
			b.pending[i], replaced = ev, true
			break
		}
	}
	if !replaced {
		b.pending = append(b.pending, ev)
	}
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// send moves the pending events to Events.
func (b *blockIO) send() {
	var batch []DevEvent
	for {
		select {
		case <-b.done:
			return
		case <-b.wake:
		}
		b.mu.Lock()
		batch, b.pending = b.pending, batch[:0]
		b.mu.Unlock()
		for _, ev := range batch {
			select {
			case b.events <- ev:
			case <-b.done:
				return
			}
		}
	}
}

// readWakeups wakes the poller for each failed completion and each device
// that became busy.
func (b *blockIO) readWakeups() {
	var rec ringbuf.Record
	for {
		if err := b.rd.ReadInto(&rec); err != nil {
			if errors.Is(err, ringbuf.ErrFlushed) {
				continue
			}
			return // closed
		}
		if _, ok := wakeOf(rec.RawSample); ok {
			b.wakePoller()
		}
	}
}

func (b *blockIO) programs() []ProgramInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	var ps []ProgramInfo
	for _, tp := range b.links {
		p := tp.info()
		if !b.closed {
			p = programInfo(tp.prog, p)
		}
		ps = append(ps, p)
	}
	return ps
}

// info describes tp without asking the kernel.
func (tp tracepoint) info() ProgramInfo {
	return ProgramInfo{Name: tp.progName, Kind: "tracepoint", Attached: []string{tp.group + "/" + tp.name}}
}

// programInfo fills p's name, ID and tag from the kernel.
func programInfo(prog *ebpf.Program, p ProgramInfo) ProgramInfo {
	info, err := prog.Info()
	if err != nil {
		return p
	}
	p.Name, p.Tag = info.Name, info.Tag
	if id, ok := info.ID(); ok {
		p.ID = uint32(id)
	}
	return p
}

func (b *blockIO) close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	close(b.done)
	var errs []error
	for _, tp := range b.links {
		errs = append(errs, tp.link.Close())
	}
	errs = append(errs, b.rd.Close())
	b.wg.Wait()
	close(b.events)
	errs = append(errs, b.objs.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ebpf: block I/O: close: %w", err)
	}
	return nil
}
