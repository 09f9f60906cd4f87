//go:build linux

package nic

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// readBuffer holds the largest UDP datagram.
	readBuffer = 64 << 10
	// oobBuffer holds the control messages of one datagram.
	oobBuffer = 128
	// readErrorPause keeps a reader that fails over and over from spinning.
	readErrorPause = 100 * time.Millisecond
	// maxQueueDelay bounds the kernel-to-reader delay taken from the kernel
	// timestamp; a larger one is taken as a wall-clock step and ignored.
	maxQueueDelay = 10 * time.Second
)

// read is the reader goroutine of link l: it passes every whole datagram
// to recv until the socket is closed.
func (s *state) read(l *link, recv func(int, []byte, netip.AddrPort, time.Time)) {
	defer s.wg.Done()
	buf := make([]byte, readBuffer)
	oob := make([]byte, oobBuffer)
	for {
		n, oobn, flags, from, err := l.conn.ReadMsgUDPAddrPort(buf, oob)
		now := time.Now()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.cfg.report(fmt.Errorf("nic: link %d: read on %s: %w", l.id, l.dev, err))
			select {
			case <-s.stop:
				return
			case <-time.After(readErrorPause):
			}
			continue
		}
		if flags&unix.MSG_TRUNC != 0 || recv == nil {
			continue
		}
		if z := from.Addr().Zone(); z != "" && z != l.dev {
			// The net package names zones from its own cache, which
			// may have been filled in another network namespace.
			from = netip.AddrPortFrom(from.Addr().WithZone(l.dev), from.Port())
		}
		recv(l.id, buf[:n], from, receivedAt(oob[:oobn], now))
	}
}

// receivedAt returns when the kernel received a datagram: now, moved back
// by the delay between the kernel's SO_TIMESTAMPNS stamp and now. Both are
// read from the wall clock close together, and the result keeps now's
// monotonic reading, so a wall-clock step between heartbeats does not move
// it. Without a stamp, or with an implausible delay, it returns now.
func receivedAt(oob []byte, now time.Time) time.Time {
	ns, ok := kernelStamp(oob)
	if !ok {
		return now
	}
	d := now.Sub(time.Unix(0, ns))
	if d < 0 || d > maxQueueDelay {
		return now
	}
	return now.Add(-d)
}

// kernelStamp finds the SO_TIMESTAMPNS control message in oob and returns
// its time in nanoseconds since the Unix epoch. It does not allocate.
func kernelStamp(oob []byte) (int64, bool) {
	hdr := unix.CmsgLen(0)            // aligned header size
	lenSize := unix.SizeofCmsghdr - 8 // cmsg_len is a size_t
	for len(oob) >= unix.SizeofCmsghdr {
		var n uint64
		if lenSize == 8 {
			n = binary.NativeEndian.Uint64(oob)
		} else {
			n = uint64(binary.NativeEndian.Uint32(oob))
		}
		level := int32(binary.NativeEndian.Uint32(oob[lenSize:]))
		typ := int32(binary.NativeEndian.Uint32(oob[lenSize+4:]))
		if n < uint64(hdr) || n > uint64(len(oob)) {
			return 0, false
		}
		data := oob[hdr:n]
		if level == unix.SOL_SOCKET && typ == unix.SO_TIMESTAMPNS {
			switch len(data) {
			case 16: // 64-bit time_t and long
				sec := int64(binary.NativeEndian.Uint64(data))
				nsec := int64(binary.NativeEndian.Uint64(data[8:]))
				return sec*1e9 + nsec, true
			case 8: // 32-bit time_t and long
				sec := int64(int32(binary.NativeEndian.Uint32(data)))
				nsec := int64(int32(binary.NativeEndian.Uint32(data[4:])))
				return sec*1e9 + nsec, true
			}
			return 0, false
		}
		next := unix.CmsgSpace(int(n) - hdr)
		if next > len(oob) {
			return 0, false
		}
		oob = oob[next:]
	}
	return 0, false
}
