package wdemu

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// failsafe bounds every wait on the server; tests never sleep, they wait on
// channels that the server feeds.
const failsafe = 5 * time.Second

// lab runs a Server with a fake clock on sockets in a temporary folder.
type lab struct {
	t     *testing.T
	clock *fakeClock
	srv   *Server
	sock  map[string]string
	fired chan string
	logs  chan string
}

func startLab(t *testing.T, names ...string) *lab {
	t.Helper()
	l := newLab(t, names...)
	l.serve()
	return l
}

func newLab(t *testing.T, names ...string) *lab {
	t.Helper()
	dir := t.TempDir()
	l := &lab{t: t, clock: newFakeClock(), sock: map[string]string{}, fired: make(chan string, 16), logs: make(chan string, 1024)}
	var hosts []Host
	for _, n := range names {
		l.sock[n] = filepath.Join(dir, n+".wd")
		hosts = append(hosts, Host{Name: n, Socket: l.sock[n], Fire: func() { l.fired <- n }})
	}
	l.srv = New(hosts, Options{Clock: l.clock, Logf: func(format string, args ...any) {
		select {
		case l.logs <- fmt.Sprintf(format, args...):
		default:
		}
	}})
	return l
}

func (l *lab) serve() {
	l.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- l.srv.Serve(ctx) }()
	select {
	case <-l.srv.Ready():
	case err := <-errc:
		cancel()
		l.t.Fatalf("Serve: %v", err)
	}
	l.t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			l.t.Errorf("Serve: %v", err)
		}
	})
}

// waitFire waits until host's Fire runs.
func (l *lab) waitFire(host string) {
	l.t.Helper()
	select {
	case got := <-l.fired:
		if got != host {
			l.t.Fatalf("%s fired; want %s", got, host)
		}
	case <-time.After(failsafe):
		l.t.Fatalf("%s never fired", host)
	}
}

// noFire checks that nothing fired and nothing can: no countdown is pending.
func (l *lab) noFire() {
	l.t.Helper()
	select {
	case got := <-l.fired:
		l.t.Fatalf("%s fired", got)
	default:
	}
	if n := l.clock.Pending(); n != 0 {
		l.t.Fatalf("%d countdowns pending; want none", n)
	}
}

// waitLog waits for a log line containing substr.
func (l *lab) waitLog(substr string) {
	l.t.Helper()
	deadline := time.After(failsafe)
	for {
		select {
		case line := <-l.logs:
			if strings.Contains(line, substr) {
				return
			}
		case <-deadline:
			l.t.Fatalf("no log line with %q", substr)
		}
	}
}

// wantState checks the server's view of host.
func (l *lab) wantState(host string, armed bool, timeout, left time.Duration) {
	l.t.Helper()
	a, to, le := l.srv.State(host)
	if a != armed || to != timeout || le != left {
		l.t.Fatalf("State(%s) = %v, %v, %v; want %v, %v, %v", host, a, to, le, armed, timeout, left)
	}
}

// client is a raw protocol client.
type client struct {
	t    *testing.T
	conn *net.UnixConn
	r    *bufio.Reader
}

// dial connects to host's device and returns the client and the greeting.
func (l *lab) dial(host string) (*client, string) {
	l.t.Helper()
	conn, err := net.Dial("unix", l.sock[host])
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { conn.Close() })
	c := &client{t: l.t, conn: conn.(*net.UnixConn), r: bufio.NewReader(conn)}
	return c, c.read()
}

func (c *client) read() string {
	c.t.Helper()
	c.conn.SetDeadline(time.Now().Add(failsafe))
	line, err := c.r.ReadString('\n')
	if err != nil {
		return "EOF"
	}
	return strings.TrimSuffix(line, "\n")
}

func (c *client) do(req string) string {
	c.t.Helper()
	c.conn.SetDeadline(time.Now().Add(failsafe))
	if _, err := c.conn.Write([]byte(req + "\n")); err != nil {
		return "EOF"
	}
	return c.read()
}
