//go:build linux && !vigil_noebpf

package ebpf

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/drivers/datastore/loop"
	"github.com/vigil-ha/vigil/tools/privtest"
)

// deadline bounds every wait of these tests; on a healthy machine it is
// never near.
const deadline = 10 * time.Second

const blockSize = 4096

// The file-system freeze ioctls, _IOWR('X', 119 and 120, int), which
// golang.org/x/sys/unix does not define.
const (
	fiFreeze = 0xc0045877
	fiThaw   = 0xc0045878
)

// requireBlockIO skips tb unless it runs as root on a kernel with the
// block tracepoints, mounting tracefs first.
func requireBlockIO(tb testing.TB) {
	tb.Helper()
	privtest.Require(tb)
	if err := MountFS(); err != nil {
		privtest.Unavailable(tb, "mount tracefs and bpffs: "+err.Error())
	}
	if err := Probe().BlockIO; err != nil {
		privtest.Unavailable(tb, "block I/O tracepoints: "+err.Error())
	}
}

func newTestBlockIO(tb testing.TB, opts BlockOptions) *BlockIO {
	tb.Helper()
	b, err := NewBlockIO(opts)
	if err != nil {
		tb.Fatalf("NewBlockIO: %v", err)
	}
	tb.Cleanup(func() {
		if err := b.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return b
}

// mountTmpfs mounts a tmpfs of the given size ("4m") on a new folder.
func mountTmpfs(tb testing.TB, size string) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size="+size); err != nil {
		tb.Fatalf("mount a tmpfs at %s: %v", dir, err)
	}
	tb.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			tb.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// sparseFile makes a file of size bytes at path, with no blocks.
func sparseFile(tb testing.TB, path string, size int64) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		tb.Fatal(err)
	}
}

// attachLoop attaches backing to a loop device, with direct I/O where its
// file system allows it, and returns the device and its number.
func attachLoop(tb testing.TB, backing string) (*loop.Device, uint64) {
	tb.Helper()
	dev, err := loop.Attach(backing)
	if err != nil {
		privtest.Unavailable(tb, "loop device: "+err.Error())
	}
	tb.Cleanup(func() {
		if err := dev.Detach(); err != nil {
			tb.Errorf("detach %s: %v", dev.Path, err)
		}
	})
	var st unix.Stat_t
	if err := unix.Stat(dev.Path, &st); err != nil {
		tb.Fatal(err)
	}
	return dev, st.Rdev
}

// openDirect opens a block device for direct I/O, bypassing its page cache.
func openDirect(tb testing.TB, path string) *os.File {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_DIRECT, 0)
	if err != nil {
		tb.Fatalf("open %s with O_DIRECT: %v", path, err)
	}
	tb.Cleanup(func() { f.Close() })
	return f
}

// alignedBlock is a block-sized buffer aligned for direct I/O.
func alignedBlock(fill byte) []byte {
	buf := make([]byte, 2*blockSize)
	off := int(-uintptr(unsafe.Pointer(&buf[0])) & (blockSize - 1))
	b := buf[off : off+blockSize]
	for i := range b {
		b[i] = fill
	}
	return b
}

// nextEvent waits for the next event of dev, skipping other devices'.
func nextEvent(tb testing.TB, events <-chan DevEvent, dev uint64) DevEvent {
	tb.Helper()
	timeout := time.After(deadline)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				tb.Fatal("Events closed")
			}
			if ev.Dev == dev {
				return ev
			}
		case <-timeout:
			tb.Fatalf("no event of %s in %v", blockDevName(dev), deadline)
		}
	}
}

func latencies(s DevStats) uint64 {
	var n uint64
	for _, c := range s.Latency {
		n += c
	}
	return n
}

// TestBlockIOErrors fills the tmpfs under a loop device until a write
// fails, and expects the device down, for that error, no later than the
// write failed.
func TestBlockIOErrors(t *testing.T) {
	requireBlockIO(t)
	dir := mountTmpfs(t, "4m")
	backing := filepath.Join(dir, "lun.img")
	sparseFile(t, backing, 16<<20)
	dev, rdev := attachLoop(t, backing)
	b := newTestBlockIO(t, BlockOptions{})
	if err := b.Watch(rdev); err != nil {
		t.Fatal(err)
	}
	f := openDirect(t, dev.Path)
	buf := alignedBlock(0xa5)

	var (
		werr     error
		failedAt time.Duration
		ok       int
	)
	for off := int64(0); off < 16<<20; off += blockSize {
		if _, werr = f.WriteAt(buf, off); werr != nil {
			failedAt = Monotonic()
			break
		}
		ok++
	}
	if werr == nil {
		t.Fatalf("all %d writes to %s succeeded: the tmpfs never filled", ok, dev.Path)
	}
	t.Logf("%d writes succeeded, then: %v", ok, werr)

	ev := nextEvent(t, b.Events(), rdev)
	t.Logf("event: %v (first %v)", ev, ev.First)
	if !ev.Down || !strings.Contains(ev.Why, "I/O error") || !strings.Contains(ev.Why, "(errno ") {
		t.Errorf("event %+v: want down for an I/O error naming its errno", ev)
	}
	if ev.First == 0 || ev.First > ev.At {
		t.Errorf("event First %v, At %v: want 0 < First <= At", ev.First, ev.At)
	}
	// Ordering: the kernel saw the failed completion before the write
	// returned to user space.
	if ev.First > failedAt {
		t.Errorf("the first failed completion at %v came after the write failed at %v", ev.First, failedAt)
	}

	s, err := b.Stats(rdev)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stats: %+v", s)
	if s.Issued < uint64(ok) || s.Completed < uint64(ok) || s.Errors == 0 || s.LastErrno == 0 {
		t.Errorf("stats %+v: want at least %d issued and completed, and an error with its errno", s, ok)
	}
	if latencies(s) < uint64(ok) {
		t.Errorf("latency histogram %v counts fewer than %d requests", s.Latency, ok)
	}
	if s.LastErr == 0 || s.LastErr > failedAt || s.LastOK >= s.LastErr {
		t.Errorf("stats: last error at %v, last success at %v, write failed at %v: want success < error <= failure",
			s.LastErr, s.LastOK, failedAt)
	}
	if !s.Down || s.Why != ev.Why {
		t.Errorf("stats: down %v (%q), want down as the event (%q)", s.Down, s.Why, ev.Why)
	}
	if errno, ok := errors.AsType[unix.Errno](werr); ok && int(errno) != s.LastErrno {
		t.Logf("the write returned errno %d, the completion errno %d", errno, s.LastErrno)
	}
}

// frozenDisk is a loop device (upper) over a file of an ext4 file system
// on another loop device (lower): freezing the file system blocks upper's
// requests in flight.
type frozenDisk struct {
	upper  *loop.Device
	rdev   uint64
	f      *os.File // upper, for direct I/O
	mnt    *os.File // the mount point, for FIFREEZE and FITHAW
	frozen bool
}

func newFrozenDisk(tb testing.TB) *frozenDisk {
	tb.Helper()
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		privtest.Unavailable(tb, "mkfs.ext4: "+err.Error())
	}
	dir := mountTmpfs(tb, "80m")
	img := filepath.Join(dir, "ext4.img")
	sparseFile(tb, img, 64<<20)
	lower, _ := attachLoop(tb, img)
	if out, err := exec.Command(mkfs, "-q", "-F", "-b", "4096", lower.Path).CombinedOutput(); err != nil {
		tb.Fatalf("mkfs.ext4 %s: %v\n%s", lower.Path, err, out)
	}
	mnt := tb.TempDir()
	if err := unix.Mount(lower.Path, mnt, "ext4", 0, ""); err != nil {
		privtest.Unavailable(tb, "mount ext4: "+err.Error())
	}
	tb.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			tb.Errorf("unmount %s: %v", mnt, err)
		}
	})
	backing := filepath.Join(mnt, "lun.img")
	bf, err := os.Create(backing)
	if err != nil {
		tb.Fatal(err)
	}
	err = unix.Fallocate(int(bf.Fd()), 0, 0, 8<<20)
	bf.Close()
	if err != nil {
		tb.Fatalf("fallocate %s: %v", backing, err)
	}
	d := &frozenDisk{}
	d.upper, d.rdev = attachLoop(tb, backing)
	d.f = openDirect(tb, d.upper.Path)
	if d.mnt, err = os.Open(mnt); err != nil {
		tb.Fatal(err)
	}
	// Registered last, so it runs first: thaw before anything is
	// detached or unmounted.
	tb.Cleanup(func() {
		d.thaw(tb)
		d.mnt.Close()
	})
	return d
}

func (d *frozenDisk) freeze(tb testing.TB) {
	tb.Helper()
	if err := unix.IoctlSetInt(int(d.mnt.Fd()), fiFreeze, 0); err != nil {
		tb.Fatalf("FIFREEZE: %v", err)
	}
	d.frozen = true
}

func (d *frozenDisk) thaw(tb testing.TB) {
	tb.Helper()
	if !d.frozen {
		return
	}
	if err := unix.IoctlSetInt(int(d.mnt.Fd()), fiThaw, 0); err != nil {
		tb.Errorf("FITHAW: %v", err)
		return
	}
	d.frozen = false
}

// asyncWrite is a write to the device in a goroutine, which may block.
type asyncWrite struct {
	done     chan error
	err      error
	returned bool
}

// writeAsync writes a block to the device in a goroutine. The caller must
// wait for it before the test ends.
func (d *frozenDisk) writeAsync(buf []byte) *asyncWrite {
	w := &asyncWrite{done: make(chan error, 1)}
	go func() {
		_, err := d.f.WriteAt(buf, 0)
		w.done <- err
	}()
	return w
}

// pending says whether the write is still blocked.
func (w *asyncWrite) pending() bool {
	if w.returned {
		return false
	}
	select {
	case w.err = <-w.done:
		w.returned = true
		return false
	default:
		return true
	}
}

// wait waits for the write to return, and returns its error.
func (w *asyncWrite) wait(tb testing.TB) error {
	tb.Helper()
	if w.returned {
		return w.err
	}
	select {
	case w.err = <-w.done:
		w.returned = true
		return w.err
	case <-time.After(deadline):
		tb.Fatalf("the write did not return in %v", deadline)
		return nil
	}
}

// TestBlockIOStuck freezes the file system under a loop device while a
// write is in flight: the device is down while the write is blocked, and
// up once it completes.
func TestBlockIOStuck(t *testing.T) {
	requireBlockIO(t)
	d := newFrozenDisk(t)
	b := newTestBlockIO(t, BlockOptions{})
	if err := b.Watch(d.rdev); err != nil {
		t.Fatal(err)
	}
	buf := alignedBlock(0x5a)
	if _, err := d.f.WriteAt(buf, 0); err != nil {
		t.Fatalf("write before the freeze: %v", err)
	}

	d.freeze(t)
	w := d.writeAsync(buf)
	t.Cleanup(func() {
		d.thaw(t)
		w.wait(t)
	})
	ev := nextEvent(t, b.Events(), d.rdev)
	if !w.pending() {
		t.Fatalf("the write returned (%v) before the down event %v", w.err, ev)
	}
	t.Logf("event: %v (first %v)", ev, ev.First)
	if !ev.Down || !strings.Contains(ev.Why, "1 request stuck") {
		t.Errorf("event %+v: want down with 1 request stuck", ev)
	}
	if ev.First == 0 || ev.At-ev.First < DefaultStuck {
		t.Errorf("event First %v, At %v: want a stuck period of at least %v", ev.First, ev.At, DefaultStuck)
	}
	s, err := b.Stats(d.rdev)
	if err != nil {
		t.Fatal(err)
	}
	if s.InFlight != 1 || s.OldestInFlight < DefaultStuck || !s.Down {
		t.Errorf("stats %+v: want 1 request in flight for over %v, down", s, DefaultStuck)
	}

	d.thaw(t)
	if err := w.wait(t); err != nil {
		t.Fatalf("the write after the thaw: %v", err)
	}
	up := nextEvent(t, b.Events(), d.rdev)
	t.Logf("event: %v", up)
	if up.Down || up.At < ev.At {
		t.Errorf("event %+v after %+v: want up", up, ev)
	}
	if s, err = b.Stats(d.rdev); err != nil {
		t.Fatal(err)
	}
	if s.InFlight != 0 || s.OldestInFlight != 0 || s.Down || s.Errors != 0 {
		t.Errorf("stats after the thaw %+v: want nothing in flight, no error, up", s)
	}
}

// TestBlockIOUnwatched does I/O on a device that is not watched, which
// changes nothing, then on the watched one, which does.
func TestBlockIOUnwatched(t *testing.T) {
	requireBlockIO(t)
	dir := mountTmpfs(t, "32m")
	sparseFile(t, filepath.Join(dir, "a.img"), 8<<20)
	sparseFile(t, filepath.Join(dir, "b.img"), 8<<20)
	devA, rdevA := attachLoop(t, filepath.Join(dir, "a.img"))
	devB, rdevB := attachLoop(t, filepath.Join(dir, "b.img"))
	b := newTestBlockIO(t, BlockOptions{})
	for range 2 { // twice: a no-op
		if err := b.Watch(rdevA); err != nil {
			t.Fatal(err)
		}
	}
	before, err := b.Stats(rdevA)
	if err != nil {
		t.Fatal(err)
	}
	io := func(path string) {
		f := openDirect(t, path)
		buf := alignedBlock(1)
		for i := range int64(16) {
			if _, err := f.WriteAt(buf, i*blockSize); err != nil {
				t.Fatal(err)
			}
			if _, err := f.ReadAt(buf, i*blockSize); err != nil {
				t.Fatal(err)
			}
		}
	}
	io(devB.Path)

	after, err := b.Stats(rdevA)
	if err != nil {
		t.Fatal(err)
	}
	if before.Issued != after.Issued || before.Completed != after.Completed || before.Latency != after.Latency {
		t.Errorf("I/O on %s changed %s's stats: %+v, then %+v", devB.Path, devA.Path, before, after)
	}
	if _, err := b.Stats(rdevB); !errors.Is(err, ErrNotWatched) {
		t.Errorf("Stats of the unwatched %s: %v, want ErrNotWatched", devB.Path, err)
	}
	kdevB, _ := kernelDev(rdevB)
	var v blkioDevStats
	if err := b.b.objs.Devices.Lookup(kdevB, &v); !errors.Is(err, ebpf.ErrKeyNotExist) {
		t.Errorf("the devices map has an entry for %s: %+v, %v", devB.Path, v, err)
	}
	if n := inFlightEntries(t, b, kdevB); n != 0 {
		t.Errorf("%d in-flight entries of the unwatched %s", n, devB.Path)
	}

	io(devA.Path)
	after, err = b.Stats(rdevA)
	if err != nil {
		t.Fatal(err)
	}
	if after.Issued < before.Issued+32 || after.Completed < before.Completed+32 || after.InFlight != 0 {
		t.Errorf("stats of %s after 32 requests: %+v, before %+v", devA.Path, after, before)
	}

	if err := b.Unwatch(rdevA); err != nil {
		t.Fatal(err)
	}
	if err := b.Unwatch(rdevA); err != nil {
		t.Errorf("second Unwatch: %v", err)
	}
	if _, err := b.Stats(rdevA); !errors.Is(err, ErrNotWatched) {
		t.Errorf("Stats after Unwatch: %v, want ErrNotWatched", err)
	}
}

// TestBlockIOFlushes writes with O_DSYNC, so that flushes follow the
// writes: block_rq_complete reports a flush's sector unlike
// block_rq_issue, and each write completes once more after its flush;
// nothing may stay in flight.
func TestBlockIOFlushes(t *testing.T) {
	requireBlockIO(t)
	dir := mountTmpfs(t, "16m")
	sparseFile(t, filepath.Join(dir, "lun.img"), 8<<20)
	dev, rdev := attachLoop(t, filepath.Join(dir, "lun.img"))
	b := newTestBlockIO(t, BlockOptions{})
	if err := b.Watch(rdev); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(dev.Path, os.O_RDWR|unix.O_DIRECT|unix.O_DSYNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const writes = 32
	buf := alignedBlock(2)
	for i := range int64(writes) {
		// Half of them at sector 0, where a flush's entry would be.
		if _, err := f.WriteAt(buf, (i%2)*i*blockSize); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	s, err := b.Stats(rdev)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stats: %+v", s)
	if s.Issued <= writes {
		privtest.Unavailable(t, fmt.Sprintf("%s issued %d requests for %d O_DSYNC writes: no flushes", dev.Path, s.Issued, writes))
	}
	kdev, _ := kernelDev(rdev)
	if n := inFlightEntries(t, b, kdev); s.InFlight != 0 || n != 0 || s.Down {
		t.Errorf("after the writes and flushes: %d in flight, %d in-flight entries, down %v (%s): want none, up",
			s.InFlight, n, s.Down, s.Why)
	}
	if latencies(s) != s.Issued {
		t.Errorf("%d latencies for %d requests issued", latencies(s), s.Issued)
	}
}

func inFlightEntries(t *testing.T, b *BlockIO, kdev uint32) int {
	t.Helper()
	var (
		key blkioRqKey
		ns  uint64
		n   int
	)
	it := b.b.objs.Inflight.Iterate()
	for it.Next(&key, &ns) {
		if key.Dev == kdev {
			n++
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBlockIOPrograms checks the diagnostics and that Close closes Events.
func TestBlockIOPrograms(t *testing.T) {
	requireBlockIO(t)
	b, err := NewBlockIO(BlockOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ps := b.Programs()
	want := map[string]string{"blk_issue": "block/block_rq_issue", "blk_complete": "block/block_rq_complete"}
	if len(ps) != len(want) {
		t.Fatalf("Programs() = %v, want %d", ps, len(want))
	}
	for _, p := range ps {
		if p.ID == 0 || p.Tag == "" || p.Kind != "tracepoint" || len(p.Attached) != 1 || p.Attached[0] != want[p.Name] {
			t.Errorf("program %+v", p)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-b.Events(); ok {
		t.Error("Events is open after Close")
	}
	if err := b.Watch(7 << 8); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Watch after Close: %v, want os.ErrClosed", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
