package ebpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// The programs use 64-bit atomic fetch-and-add (BPF v3, Linux 5.12).
//go:generate go tool bpf2go -tags linux,!vigil_noebpf -target bpfel blkio blkio.c -- -O2 -mcpu=v3 -g -Wall -Werror -idirafter /usr/include/x86_64-linux-gnu -idirafter /usr/include/aarch64-linux-gnu

// LatencyBuckets is the number of buckets of DevStats.Latency.
const LatencyBuckets = 24

// BlockOptions tunes a BlockIO; the zero value is the default.
type BlockOptions struct {
	// Stuck is how long requests may stay in flight with no completion
	// before the device is down. Default 50ms.
	Stuck time.Duration
	// Poll is how often a device that is down is looked at again, until
	// it is up. Default 5ms. A device that is up costs nothing while it is
	// idle: its first request in flight wakes the poller, which looks
	// again once that request could be stuck.
	Poll time.Duration
}

// Defaults of BlockOptions.
const (
	// DefaultStuck is far above the latency of a healthy datastore (well
	// under 10 ms for a 4 KiB direct write, even on a loaded host) and far
	// below any I/O timeout.
	DefaultStuck = 50 * time.Millisecond
	// DefaultPoll reads one map entry per device that is down 200 times
	// a second.
	DefaultPoll = 5 * time.Millisecond
)

func (o BlockOptions) withDefaults() (BlockOptions, error) {
	if o.Stuck == 0 {
		o.Stuck = DefaultStuck
	}
	if o.Poll == 0 {
		o.Poll = DefaultPoll
	}
	return o, o.validate()
}

func (o BlockOptions) validate() error {
	if o.Stuck < 0 {
		return fmt.Errorf("ebpf: block I/O: Stuck %v is negative", o.Stuck)
	}
	if o.Poll < 0 {
		return fmt.Errorf("ebpf: block I/O: Poll %v is negative", o.Poll)
	}
	return nil
}

// A BlockIO watches the requests of block devices, the datastores' LUNs,
// with the block_rq_issue and block_rq_complete tracepoints, and says when
// a device stops completing them or fails them:
//
//	b, err := ebpf.NewBlockIO(ebpf.BlockOptions{})
//	if errors.Is(err, ebpf.ErrUnsupported) { ... fall back to I/O timeouts ... }
//	defer b.Close()
//	var st unix.Stat_t
//	err = unix.Stat("/dev/sdb", &st)
//	err = b.Watch(st.Rdev)
//	for ev := range b.Events() { ... ev.Down, ev.Why ... }
//
// A device is down while (a) requests are in flight and none completed
// for Stuck, or (b) its last completion failed; it is up again once a
// completion succeeds and nothing is stuck. Judge is the rule. A failed
// completion wakes the poller at once, and so does a request issued to an
// idle device: the poller then looks again when the oldest period without
// a completion reaches Stuck, so a stuck device is down Stuck after its
// last progress, and a healthy one costs two wake-ups per busy period. A
// BlockIO is safe for concurrent use.
type BlockIO struct {
	b *blockIO // per OS
}

// ErrNotWatched is the error of Stats for a device that is not watched.
var ErrNotWatched = errors.New("ebpf: block I/O: device not watched")

// NewBlockIO loads and attaches the programs, mounting tracefs when it is
// missing (as MountFS does). No device is watched yet.
func NewBlockIO(opts BlockOptions) (*BlockIO, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	b, err := newBlockIO(opts)
	if err != nil {
		return nil, fmt.Errorf("ebpf: block I/O: %w", err)
	}
	return &BlockIO{b: b}, nil
}

// Watch starts tracking the block device dev, as in unix.Stat_t.Rdev of
// its node. Requests issued before are not counted as in flight, but
// their completions count. Watching a device twice is a no-op.
func (b *BlockIO) Watch(dev uint64) error { return b.b.watch(dev) }

// Unwatch stops tracking dev and forgets its figures; a device that is
// not watched is a no-op.
func (b *BlockIO) Unwatch(dev uint64) error { return b.b.unwatch(dev) }

// Stats returns dev's figures now, judged with Judge; ErrNotWatched when
// it is not watched.
func (b *BlockIO) Stats(dev uint64) (DevStats, error) { return b.b.stats(dev) }

// Events delivers the state changes of the watched devices: the first
// down, then up, then down again. It keeps the latest undelivered event
// per device, so a slow reader never stalls the poller, and may then see
// the same state twice. Close closes the channel.
func (b *BlockIO) Events() <-chan DevEvent { return b.b.events }

// Programs describes the loaded programs, for diagnostics.
func (b *BlockIO) Programs() []ProgramInfo { return b.b.programs() }

// Close detaches and unloads the programs, stops the poller and closes
// Events.
func (b *BlockIO) Close() error { return b.b.close() }

// DevStats is what the kernel saw of a watched device's requests. Times
// are on the clock of Monotonic; 0 is never.
type DevStats struct {
	// Dev is the device, as in unix.Stat_t.Rdev.
	Dev uint64
	// Issued counts the requests issued since the watch began.
	Issued uint64
	// Completed counts the completions, also those of requests issued
	// before the watch began; a request completed in parts may count
	// more than once.
	Completed uint64
	// Errors counts the failed completions.
	Errors uint64
	// InFlight is the number of requests issued since the watch began and
	// not completed.
	InFlight uint64
	// LastErrno is the errno of the last failed completion (positive).
	LastErrno int
	// BusySince is the start of the current period without a completion:
	// when the requests in flight went from none to one, moved to each
	// completion.
	BusySince time.Duration
	// LastOK is the last successful completion.
	LastOK time.Duration
	// LastErr is the last failed completion.
	LastErr time.Duration
	// Failing counts the failed completions since the last success, and
	// FailingSince is the first of them.
	Failing      uint64
	FailingSince time.Duration
	// Since is when the watch began.
	Since time.Duration
	// OldestInFlight is the age of the oldest request in flight now, 0
	// when none is.
	OldestInFlight time.Duration
	// Latency counts the completions of requests issued since the watch
	// began by latency: Latency[i] those of [2^i, 2^(i+1)) µs, the first
	// also those under 1 µs, the last also the longer ones.
	Latency [LatencyBuckets]uint64
	// Down and Why are Judge's verdict when the figures were read.
	Down bool
	Why  string
}

// DevEvent is a change of a watched device's state.
type DevEvent struct {
	// Dev is the device, as in unix.Stat_t.Rdev.
	Dev uint64
	// Down says whether the device stopped completing requests or fails
	// them; Why says which, as in "3 requests stuck, no completion for
	// 62ms" or "I/O error ENOSPC (errno 28) on the last completion, 4
	// failed since the last success".
	Down bool
	Why  string
	// First is, when down, the start of the stuck period or the first
	// failed completion after the last success; when up, the last
	// successful completion. Monotonic.
	First time.Duration
	// At is when the state was decided. Monotonic.
	At time.Duration
}

func (e DevEvent) String() string {
	if e.Down {
		return fmt.Sprintf("%s down at %v: %s", blockDevName(e.Dev), e.At, e.Why)
	}
	return fmt.Sprintf("%s up at %v: %s", blockDevName(e.Dev), e.At, e.Why)
}

// blockDevName is a device number as "major:minor".
func blockDevName(dev uint64) string { return fmt.Sprintf("%d:%d", devMajor(dev), devMinor(dev)) }

// upWhy is the Why of an up event.
const upWhy = "I/O completes again"

// Judge is the rule of a BlockIO: whether the device with figures s is
// down at now, why, and since when (the First of its DevEvent). It is
// down when requests are in flight and none completed for stuck, or when
// its last completion failed; when both hold, why names both and first is
// the earlier start.
func Judge(s DevStats, now, stuck time.Duration) (down bool, why string, first time.Duration) {
	if s.LastErr > s.LastOK {
		down = true
		first = s.FailingSince
		if first == 0 || first > s.LastErr {
			first = s.LastErr
		}
		why = fmt.Sprintf("I/O error %s on the last completion, %s", errnoText(s.LastErrno), failedText(s))
	}
	if s.InFlight > 0 && s.BusySince > 0 && now-s.BusySince >= stuck {
		stuckWhy := fmt.Sprintf("%s stuck, no completion for %v", plural(s.InFlight, "request"), roundAge(now-s.BusySince))
		if down {
			why += "; " + stuckWhy
			first = min(first, s.BusySince)
		} else {
			down, why, first = true, stuckWhy, s.BusySince
		}
	}
	return down, why, first
}

func failedText(s DevStats) string {
	n := max(s.Failing, 1)
	if s.LastOK == 0 {
		return fmt.Sprintf("%d failed, none succeeded", n)
	}
	return fmt.Sprintf("%d failed since the last success", n)
}

func plural(n uint64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// roundAge rounds d for people: to the millisecond from 10ms, else to the
// microsecond.
func roundAge(d time.Duration) time.Duration {
	if d >= 10*time.Millisecond {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Microsecond)
}

// blockErrnos names the errnos that the block layer reports
// (blk_status_to_errno), with Linux's numbers on every system.
var blockErrnos = map[int]string{
	5:   "EIO",
	11:  "EAGAIN",
	12:  "ENOMEM",
	16:  "EBUSY",
	19:  "ENODEV",
	22:  "EINVAL",
	28:  "ENOSPC",
	52:  "EBADE",
	61:  "ENODATA",
	62:  "ETIME",
	67:  "ENOLINK",
	75:  "EOVERFLOW",
	84:  "EILSEQ",
	95:  "EOPNOTSUPP",
	109: "ETOOMANYREFS",
	110: "ETIMEDOUT",
	121: "EREMOTEIO",
}

// errnoText is "ENOSPC (errno 28)", or "(errno 300)" for an unknown one.
func errnoText(errno int) string {
	if name, ok := blockErrnos[errno]; ok {
		return fmt.Sprintf("%s (errno %d)", name, errno)
	}
	return fmt.Sprintf("(errno %d)", errno)
}

// devMajor and devMinor split a device number in glibc's encoding, that
// of unix.Stat_t.Rdev (unix.Major and unix.Minor, on every system).
func devMajor(dev uint64) uint32 {
	return uint32((dev>>8)&0xfff) | uint32((dev>>32)&^0xfff)
}

func devMinor(dev uint64) uint32 {
	return uint32(dev&0xff) | uint32((dev>>12)&^0xff)
}

// kernelDev is dev in the kernel's internal encoding, that of the block
// tracepoints: major << 20 | minor, with a 12-bit major and a 20-bit minor.
func kernelDev(dev uint64) (uint32, error) {
	major, minor := devMajor(dev), devMinor(dev)
	if major >= 1<<12 || minor >= 1<<20 {
		return 0, fmt.Errorf("ebpf: block I/O: device %d:%d out of the kernel's range", major, minor)
	}
	return major<<20 | minor, nil
}

// blkEventSize is the size of blkio.c's struct blk_event.
const blkEventSize = 16

// wakeOf decodes blkio.c's struct blk_event {u64 ns; u32 dev; s32 err}:
// the kernel device number of a failed completion (err > 0), or of a
// device that just became busy (err 0).
func wakeOf(raw []byte) (kdev uint32, ok bool) {
	if len(raw) < blkEventSize {
		return 0, false
	}
	return binary.LittleEndian.Uint32(raw[8:]), true
}
