package wdemu

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// listen opens every host's socket, removing a stale socket file first.
func (s *Server) listen() ([]net.Listener, error) {
	var ls []net.Listener
	fail := func(err error) ([]net.Listener, error) {
		for _, l := range ls {
			l.Close()
		}
		return nil, err
	}
	for _, d := range s.order {
		h := d.host
		if fi, err := os.Lstat(h.Socket); err == nil {
			if fi.Mode()&os.ModeSocket == 0 {
				return fail(errorf(h, "%s exists and is not a socket: remove it or choose another socket path", h.Socket))
			}
			if err := os.Remove(h.Socket); err != nil {
				return fail(errorf(h, "remove stale socket: %w", err))
			}
		}
		l, err := net.Listen("unix", h.Socket)
		if err != nil {
			return fail(errorf(h, "listen: %w (check that the socket's folder exists and is writable)", err))
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// accept serves d's connections until l is closed.
func (s *Server) accept(l net.Listener, d *dog, wg *sync.WaitGroup) {
	for {
		conn, err := l.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.opts.Logf("wdemu: %s: accept: %v", d.host.Name, err)
			}
			return
		}
		wg.Go(func() { s.handle(conn, d) })
	}
}

// handle serves one connection: it opens the device, answers requests and
// applies the close semantics when the client goes away.
func (s *Server) handle(conn net.Conn, d *dog) {
	defer conn.Close()
	name := d.host.Name

	s.mu.Lock()
	if d.conn != nil {
		s.mu.Unlock()
		s.opts.Logf("wdemu: %s: second open refused: the device is already open", name)
		io.WriteString(conn, "err busy: the watchdog of "+name+" is already open\n")
		return
	}
	d.conn = conn
	d.timeout = s.opts.DefaultTimeout
	d.magic = false
	s.arm(d)
	timeout := d.timeout
	s.mu.Unlock()
	s.opts.Logf("wdemu: %s: opened, armed with %v", name, timeout)
	if _, err := fmt.Fprintf(conn, "ok %d\n", int(timeout.Seconds())); err != nil {
		s.closed(d, conn)
		return
	}

	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		reply, ok := s.request(d, conn, sc.Text())
		if _, err := io.WriteString(conn, reply+"\n"); err != nil || !ok {
			break
		}
	}
	s.closed(d, conn)
}

// request applies one request line to d and returns the answer; ok is false
// when conn no longer holds the device (it was reset or disarmed).
func (s *Server) request(d *dog, conn net.Conn, line string) (reply string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d.conn != conn {
		return "err the device was reset: open it again", false
	}
	verb, arg, _ := strings.Cut(line, " ")
	switch verb {
	case "ping":
		s.arm(d)
		return "ok", true
	case "V":
		// Like a write to /dev/watchdog: it pings, and the V arms the
		// magic close.
		d.magic = true
		s.arm(d)
		return "ok", true
	case "timeout":
		n, err := strconv.Atoi(arg)
		if err != nil || n < 1 || n > MaxTimeout {
			return fmt.Sprintf("err invalid timeout %q: give whole seconds from 1 to %d", arg, MaxTimeout), true
		}
		d.timeout = secondsDuration(n)
		s.arm(d)
		return "ok " + strconv.Itoa(n), true
	case "gettimeout":
		return "ok " + strconv.Itoa(int(d.timeout.Seconds())), true
	case "timeleft":
		return "ok " + strconv.FormatInt(s.left(d).Milliseconds(), 10), true
	}
	return fmt.Sprintf("err unknown request %q: want ping, V, timeout N, gettimeout or timeleft", line), true
}

// closed applies the close of conn: a magic close disarms d, any other close
// leaves it counting.
func (s *Server) closed(d *dog, conn net.Conn) {
	s.mu.Lock()
	if d.conn != conn {
		s.mu.Unlock()
		return // already reset or disarmed
	}
	d.conn = nil
	name := d.host.Name
	if d.magic {
		d.stop()
		s.mu.Unlock()
		s.opts.Logf("wdemu: %s: magic close, watchdog disarmed", name)
		return
	}
	left := s.left(d)
	s.mu.Unlock()
	s.opts.Logf("wdemu: %s: unexpected close, not stopping watchdog (%v left)", name, left)
}
