//go:build linux

package nic

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// drainBuf is the buffers of Drain, kept between calls.
type drainBuf struct {
	buf, oob []byte
}

// drain reads every queued datagram of every link with non-blocking
// recvmsg calls until each socket is empty.
func (s *state) drain(recv func(int, []byte, netip.AddrPort, time.Time)) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	if s.dbuf.buf == nil {
		s.dbuf = drainBuf{buf: make([]byte, readBuffer), oob: make([]byte, oobBuffer)}
	}
	b := &s.dbuf
	total := 0
	var first error
	for i := range s.links {
		l := &s.links[i]
		for {
			n, oobn, flags, from, err := recvRaw(l.fd, b.buf, b.oob, l.dev)
			now := time.Now()
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				break
			}
			if err != nil {
				if first == nil {
					first = fmt.Errorf("nic: link %d: read on %s: %w", l.id, l.dev, err)
				}
				break
			}
			if flags&unix.MSG_TRUNC != 0 {
				continue
			}
			total++
			recv(l.id, b.buf[:n], from, receivedAt(b.oob[:oobn], now))
		}
	}
	return total, first
}
