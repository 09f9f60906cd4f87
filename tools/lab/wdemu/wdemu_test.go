package wdemu

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

func TestArmOnOpen(t *testing.T) {
	l := startLab(t, "h1", "h2")
	l.wantState("h1", false, DefaultTimeout, 0)
	_, hello := l.dial("h1")
	if hello != "ok 60" {
		t.Fatalf("greeting %q; want ok 60", hello)
	}
	l.wantState("h1", true, DefaultTimeout, DefaultTimeout)
	l.wantState("h2", false, DefaultTimeout, 0)
}

func TestPingKeepsAlive(t *testing.T) {
	l := startLab(t, "h1")
	c, _ := l.dial("h1")
	if got := c.do("timeout 4"); got != "ok 4" {
		t.Fatalf("timeout 4: %q", got)
	}
	for range 5 {
		l.clock.Advance(3 * time.Second)
		if got := c.do("ping"); got != "ok" {
			t.Fatalf("ping: %q", got)
		}
	}
	l.clock.Advance(3 * time.Second)
	l.wantState("h1", true, 4*time.Second, time.Second)
	select {
	case h := <-l.fired:
		t.Fatalf("%s fired while petted", h)
	default:
	}
	l.clock.Advance(time.Second)
	l.waitFire("h1")
	l.wantState("h1", false, 4*time.Second, 0)
	l.noFire()
	l.clock.Advance(time.Hour)
	l.noFire()
	if got := c.read(); got != "EOF" {
		t.Errorf("after the reset the connection answered %q; want it closed", got)
	}
}

func TestMagicClose(t *testing.T) {
	l := startLab(t, "h1")
	c, _ := l.dial("h1")
	if got := c.do("V"); got != "ok" {
		t.Fatalf("V: %q", got)
	}
	c.conn.CloseWrite()
	if got := c.read(); got != "EOF" {
		t.Fatalf("after the magic close: %q; want the connection closed", got)
	}
	l.wantState("h1", false, DefaultTimeout, 0)
	l.clock.Advance(time.Hour)
	l.noFire()
	l.waitLog("magic close")
}

func TestUnexpectedCloseStillFires(t *testing.T) {
	tests := []struct {
		name string
		reqs []string
	}{
		{name: "plain close", reqs: []string{"ping"}},
		{name: "after a new timeout", reqs: []string{"ping", "timeout 2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := startLab(t, "h1")
			c, _ := l.dial("h1")
			for _, r := range tc.reqs {
				if got := c.do(r); !strings.HasPrefix(got, "ok") {
					t.Fatalf("%s: %q", r, got)
				}
			}
			_, timeout, _ := l.srv.State("h1")
			c.conn.Close()
			l.waitLog("unexpected close, not stopping watchdog")
			l.wantState("h1", true, timeout, timeout)
			l.clock.Advance(timeout)
			l.waitFire("h1")
			l.noFire()
		})
	}
}

func TestSecondOpenRefused(t *testing.T) {
	l := startLab(t, "h1")
	c, _ := l.dial("h1")
	c2, hello := l.dial("h1")
	if !strings.HasPrefix(hello, "err busy") {
		t.Fatalf("second open greeted %q; want err busy", hello)
	}
	if got := c2.read(); got != "EOF" {
		t.Errorf("refused connection answered %q; want it closed", got)
	}
	if got := c.do("ping"); got != "ok" {
		t.Errorf("first connection after the refusal: %q", got)
	}
}

func TestDisarm(t *testing.T) {
	l := startLab(t, "h1")
	c, _ := l.dial("h1")
	l.srv.Disarm("h1")
	l.srv.Disarm("nosuchhost")
	l.wantState("h1", false, DefaultTimeout, 0)
	if got := c.read(); got != "EOF" {
		t.Errorf("after Disarm the connection answered %q; want it closed", got)
	}
	l.clock.Advance(time.Hour)
	l.noFire()
	// The host came back: its agent opens the device again.
	if _, hello := l.dial("h1"); hello != "ok 60" {
		t.Errorf("reopen greeted %q", hello)
	}
	l.wantState("h1", true, DefaultTimeout, DefaultTimeout)
}

func TestReopenAfterFire(t *testing.T) {
	l := startLab(t, "h1")
	c, _ := l.dial("h1")
	c.do("timeout 5")
	l.clock.Advance(5 * time.Second)
	l.waitFire("h1")
	if _, hello := l.dial("h1"); hello != "ok 60" {
		t.Fatalf("reopen after the reset greeted %q; want ok 60", hello)
	}
	l.wantState("h1", true, DefaultTimeout, DefaultTimeout)
}

func TestRequests(t *testing.T) {
	tests := []struct {
		name    string
		advance time.Duration
		req     string
		want    string
	}{
		{name: "get timeout", req: "gettimeout", want: "ok 60"},
		{name: "time left", req: "timeleft", want: "ok 60000"},
		{name: "time left counts down", advance: 1500 * time.Millisecond, req: "timeleft", want: "ok 58500"},
		{name: "zero timeout", req: "timeout 0", want: "err invalid timeout"},
		{name: "timeout too long", req: "timeout 65536", want: "err invalid timeout"},
		{name: "timeout not a number", req: "timeout 4s", want: "err invalid timeout"},
		{name: "unknown", req: "reboot", want: "err unknown request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := startLab(t, "h1")
			c, _ := l.dial("h1")
			l.clock.Advance(tc.advance)
			if got := c.do(tc.req); !strings.HasPrefix(got, tc.want) {
				t.Errorf("%s: %q; want %q", tc.req, got, tc.want)
			}
			if got := c.do("ping"); got != "ok" {
				t.Errorf("ping after %s: %q", tc.req, got)
			}
		})
	}
}

func TestStaleSocket(t *testing.T) {
	l := newLab(t, "h1")
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: l.sock["h1"], Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ul.SetUnlinkOnClose(false)
	ul.Close()
	l.serve()
	if _, hello := l.dial("h1"); hello != "ok 60" {
		t.Errorf("greeting %q", hello)
	}
}

func TestNotASocket(t *testing.T) {
	l := newLab(t, "h1")
	if err := os.WriteFile(l.sock["h1"], []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := l.srv.Serve(context.Background())
	if err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Serve = %v; want an error saying the path is not a socket", err)
	}
	if b, _ := os.ReadFile(l.sock["h1"]); string(b) != "keep" {
		t.Error("Serve removed a file that is not a socket")
	}
}

func TestServeEnds(t *testing.T) {
	l := newLab(t, "h1")
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- l.srv.Serve(ctx) }()
	<-l.srv.Ready()
	c, _ := l.dial("h1")
	if err := l.srv.Serve(ctx); !errors.Is(err, ErrServing) {
		t.Errorf("second Serve = %v; want ErrServing", err)
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Serve = %v; want nil", err)
		}
	case <-time.After(failsafe):
		t.Fatal("Serve did not return")
	}
	if got := c.read(); got != "EOF" {
		t.Errorf("connection answered %q after Serve ended", got)
	}
	l.wantState("h1", false, DefaultTimeout, 0)
	l.noFire()
	if _, err := os.Lstat(l.sock["h1"]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
}
