package ebpf

import (
	"encoding/binary"
	"testing"
	"time"
)

func TestJudge(t *testing.T) {
	const (
		stuck = 50 * time.Millisecond
		now   = 10 * time.Second
		ms    = time.Millisecond
	)
	for _, c := range []struct {
		name  string
		s     DevStats
		stuck time.Duration // 0: stuck
		down  bool
		why   string
		first time.Duration
	}{
		{name: "idle", s: DevStats{}},
		{name: "idle after completions",
			s: DevStats{Issued: 9, Completed: 9, BusySince: now - time.Second, LastOK: now - time.Second}},
		{name: "in flight under stuck",
			s: DevStats{InFlight: 3, BusySince: now - stuck + time.Microsecond}},
		{name: "in flight for stuck",
			s:    DevStats{InFlight: 3, BusySince: now - stuck},
			down: true, why: "3 requests stuck, no completion for 50ms", first: now - stuck},
		{name: "one request",
			s:    DevStats{InFlight: 1, BusySince: now - 62400*time.Microsecond},
			down: true, why: "1 request stuck, no completion for 62ms", first: now - 62400*time.Microsecond},
		{name: "in flight with no start",
			s: DevStats{InFlight: 2}},
		{name: "last completion failed",
			s: DevStats{Errors: 4, LastErrno: 28, LastOK: now - 2*time.Second, LastErr: now - ms,
				Failing: 4, FailingSince: now - 5*ms, BusySince: now - ms},
			down: true, why: "I/O error ENOSPC (errno 28) on the last completion, 4 failed since the last success",
			first: now - 5*ms},
		{name: "failed from the start",
			s:    DevStats{Errors: 1, LastErrno: 5, LastErr: now - ms, Failing: 1, FailingSince: now - ms},
			down: true, why: "I/O error EIO (errno 5) on the last completion, 1 failed, none succeeded", first: now - ms},
		{name: "unknown errno, no run start",
			s:    DevStats{Errors: 1, LastErrno: 300, LastErr: now - ms},
			down: true, why: "I/O error (errno 300) on the last completion, 1 failed, none succeeded", first: now - ms},
		{name: "failed then succeeded",
			s: DevStats{Errors: 2, LastErrno: 28, LastErr: now - 2*ms, LastOK: now - ms, BusySince: now - ms}},
		{name: "failing and stuck",
			s: DevStats{InFlight: 2, BusySince: now - 80*ms, Errors: 1, LastErrno: 110, LastErr: now - 80*ms,
				LastOK: now - 90*ms, Failing: 1, FailingSince: now - 80*ms},
			down: true, why: "I/O error ETIMEDOUT (errno 110) on the last completion, 1 failed since the last success; " +
				"2 requests stuck, no completion for 80ms",
			first: now - 80*ms},
		{name: "stuck since before the failures",
			s: DevStats{InFlight: 1, BusySince: now - 3*stuck, Errors: 1, LastErrno: 5, LastErr: now - 2*ms,
				Failing: 1, FailingSince: now - 2*ms},
			down: true, why: "I/O error EIO (errno 5) on the last completion, 1 failed, none succeeded; " +
				"1 request stuck, no completion for 150ms",
			first: now - 3*stuck},
		{name: "sub-millisecond stuck", stuck: ms,
			s:    DevStats{InFlight: 1, BusySince: now - 1234*time.Microsecond},
			down: true, why: "1 request stuck, no completion for 1.234ms", first: now - 1234*time.Microsecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := stuck
			if c.stuck != 0 {
				st = c.stuck
			}
			down, why, first := Judge(c.s, now, st)
			if down != c.down || why != c.why || first != c.first {
				t.Errorf("Judge = %v, %q, %v; want %v, %q, %v", down, why, first, c.down, c.why, c.first)
			}
		})
	}
}

func TestBlockOptions(t *testing.T) {
	o, err := BlockOptions{}.withDefaults()
	if err != nil || o.Stuck != DefaultStuck || o.Poll != DefaultPoll {
		t.Errorf("defaults: %+v, %v", o, err)
	}
	o, err = BlockOptions{Stuck: time.Second, Poll: time.Millisecond}.withDefaults()
	if err != nil || o.Stuck != time.Second || o.Poll != time.Millisecond {
		t.Errorf("set: %+v, %v", o, err)
	}
	for _, bad := range []BlockOptions{{Stuck: -1}, {Poll: -time.Millisecond}} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

// mkdev is glibc's makedev, the encoding of unix.Stat_t.Rdev.
func mkdev(major, minor uint64) uint64 {
	return minor&0xff | (major&0xfff)<<8 | (minor&^0xff)<<12 | (major&^0xfff)<<32
}

func TestKernelDev(t *testing.T) {
	for _, c := range []struct {
		major, minor uint64
		name         string
		ok           bool
	}{
		{7, 3, "7:3", true},
		{8, 16, "8:16", true},
		{259, 65536, "259:65536", true},
		{4095, 1<<20 - 1, "4095:1048575", true},
		{4096, 0, "4096:0", false},
		{8, 1 << 20, "8:1048576", false},
	} {
		dev := mkdev(c.major, c.minor)
		if got := blockDevName(dev); got != c.name {
			t.Errorf("blockDevName(%#x) = %q, want %q", dev, got, c.name)
		}
		kdev, err := kernelDev(dev)
		if (err == nil) != c.ok {
			t.Errorf("kernelDev(%s): %v", c.name, err)
			continue
		}
		if want := uint32(c.major<<20 | c.minor); c.ok && kdev != want {
			t.Errorf("kernelDev(%s) = %#x, want %#x", c.name, kdev, want)
		}
	}
}

func TestFailureOf(t *testing.T) {
	raw := binary.LittleEndian.AppendUint64(nil, 123456789)
	raw = binary.LittleEndian.AppendUint32(raw, 7<<20|3)
	raw = binary.LittleEndian.AppendUint32(raw, 28)
	if kdev, ok := wakeOf(raw); !ok || kdev != 7<<20|3 {
		t.Errorf("wakeOf = %#x, %v", kdev, ok)
	}
	if _, ok := wakeOf(raw[:12]); ok {
		t.Error("wakeOf accepts a short record")
	}
}

func TestDevEventString(t *testing.T) {
	for _, c := range []struct {
		ev   DevEvent
		want string
	}{
		{DevEvent{Dev: mkdev(7, 1), Down: true, Why: "1 request stuck, no completion for 55ms", At: 2 * time.Second},
			"7:1 down at 2s: 1 request stuck, no completion for 55ms"},
		{DevEvent{Dev: mkdev(7, 1), Why: upWhy, At: 3 * time.Second}, "7:1 up at 3s: I/O completes again"},
	} {
		if got := c.ev.String(); got != c.want {
			t.Errorf("String() = %q, want %q", got, c.want)
		}
	}
}
