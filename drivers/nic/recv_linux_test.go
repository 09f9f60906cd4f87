//go:build linux

package nic

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// cmsg builds one control message as the kernel lays it out.
func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	lenSize := unix.SizeofCmsghdr - 8
	n := uint64(unix.CmsgLen(len(data)))
	if lenSize == 8 {
		binary.NativeEndian.PutUint64(b, n)
	} else {
		binary.NativeEndian.PutUint32(b, uint32(n))
	}
	binary.NativeEndian.PutUint32(b[lenSize:], uint32(level))
	binary.NativeEndian.PutUint32(b[lenSize+4:], uint32(typ))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

// timespec64 is a struct timespec with 64-bit fields.
func timespec64(sec, nsec int64) []byte {
	b := make([]byte, 16)
	binary.NativeEndian.PutUint64(b, uint64(sec))
	binary.NativeEndian.PutUint64(b[8:], uint64(nsec))
	return b
}

// timespec32 is a struct timespec with 32-bit fields.
func timespec32(sec, nsec int32) []byte {
	b := make([]byte, 8)
	binary.NativeEndian.PutUint32(b, uint32(sec))
	binary.NativeEndian.PutUint32(b[4:], uint32(nsec))
	return b
}

func TestKernelStamp(t *testing.T) {
	const sec, nsec = 1_800_000_000, 123_456_789
	stamp := cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, timespec64(sec, nsec))
	other := cmsg(unix.IPPROTO_IP, unix.IP_TTL, []byte{64, 0, 0, 0})
	for _, c := range []struct {
		name string
		oob  []byte
		want int64
		ok   bool
	}{
		{"no control message", nil, 0, false},
		{"timestamp alone", stamp, sec*1e9 + nsec, true},
		{"after another message", append(append([]byte{}, other...), stamp...), sec*1e9 + nsec, true},
		{"32-bit timespec", cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, timespec32(sec, nsec)), sec*1e9 + nsec, true},
		{"other message only", other, 0, false},
		{"truncated header", stamp[:unix.SizeofCmsghdr-1], 0, false},
		{"length past the buffer", stamp[:len(stamp)-4], 0, false},
		{"odd payload size", cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, make([]byte, 12)), 0, false},
		{"length below the header", func() []byte { b := append([]byte{}, stamp...); b[0], b[1] = 2, 0; return b }(), 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := kernelStamp(c.oob)
			if got != c.want || ok != c.ok {
				t.Fatalf("kernelStamp = %d, %v; want %d, %v", got, ok, c.want, c.ok)
			}
		})
	}
}

func TestReceivedAt(t *testing.T) {
	now := time.Now()
	stampAt := func(at time.Time) []byte {
		return cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, timespec64(at.Unix(), int64(at.Nanosecond())))
	}
	for _, c := range []struct {
		name string
		oob  []byte
		want time.Duration // result minus now
	}{
		{"no stamp", nil, 0},
		{"stamped 2ms earlier", stampAt(now.Add(-2 * time.Millisecond)), -2 * time.Millisecond},
		{"stamp in the future", stampAt(now.Add(time.Second)), 0},
		{"stamp a minute old", stampAt(now.Add(-time.Minute)), 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := receivedAt(c.oob, now)
			if d := got.Sub(now); d != c.want {
				t.Errorf("receivedAt - now = %v, want %v", d, c.want)
			}
			if !strings.Contains(got.String(), "m=") {
				t.Errorf("receivedAt lost the monotonic clock reading: %v", got)
			}
		})
	}
}

func TestKernelStampDoesNotAllocate(t *testing.T) {
	oob := append(cmsg(unix.IPPROTO_IP, unix.IP_TTL, []byte{64, 0, 0, 0}), cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, timespec64(1, 2))...)
	now := time.Now()
	if allocs := testing.AllocsPerRun(100, func() { receivedAt(oob, now) }); allocs != 0 {
		t.Errorf("receivedAt allocates %v times, want 0", allocs)
	}
}
