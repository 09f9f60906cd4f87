//go:build linux

package guest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/drivers/appwatch"
)

func TestReader(t *testing.T) {
	in := strings.Join([]string{
		`{"type":"hello","version":"v1","apps":[{"name":"db","running":true,"pid":7}]}`,
		``,
		`not json`,
		`{"type":"reboot"}`,
		`{"type":"restart","app":"db"}`,
		`{"type":"heartbeat","seq":3,"apps":[{"name":""}]}`,
		`{"type":"done","id":4,"err":"no such app"}`,
	}, "\n") + "\n"
	r := NewReader(strings.NewReader(in))
	m, err := r.Read()
	if err != nil || m.Type != TypeHello || m.Version != "v1" || len(m.Apps) != 1 || m.Apps[0].PID != 7 {
		t.Fatalf("hello: %+v, %v", m, err)
	}
	for _, want := range []string{"invalid character", `unknown type "reboot"`, "a restart needs an id and an app", "an application name of 0 bytes"} {
		if _, err := r.Read(); !errors.Is(err, ErrBadMessage) || !strings.Contains(err.Error(), want) {
			t.Errorf("bad line: %v; want %q", err, want)
		}
	}
	if m, err := r.Read(); err != nil || m.Type != TypeDone || m.ID != 4 || m.Err != "no such app" {
		t.Errorf("done: %+v, %v", m, err)
	}
	if _, err := r.Read(); err != io.EOF {
		t.Errorf("at the end: %v", err)
	}
	long := NewReader(strings.NewReader(strings.Repeat("x", MaxLine+10) + "\n"))
	if _, err := long.Read(); !errors.Is(err, ErrBadMessage) || !strings.Contains(err.Error(), "a line over") {
		t.Errorf("a long line: %v", err)
	}
}

// rawPTY returns a pty's master and the path of its slave in raw mode: a
// character device like the guest's virtio-serial port.
func rawPTY(t testing.TB) (*os.File, string) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	path := "/dev/pts/" + strconv.Itoa(n)
	s, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Held open, so that the master reads block rather than fail while
	// the agent has the slave closed.
	t.Cleanup(func() { s.Close() })
	tio, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Cflag &^= unix.CSIZE | unix.PARENB
	tio.Cflag |= unix.CS8
	tio.Cc[unix.VMIN], tio.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(int(s.Fd()), unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
	return m, path
}

// TestAgentOverPort: the guest agent on a character device says hello,
// heartbeats with its applications' states, reports an exit at once, and
// restarts an application on the host's request, answering with the
// outcome.
func TestAgentOverPort(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep program")
	}
	master, port := rawPTY(t)
	dir := t.TempDir()
	pidfile := dir + "/app.pid"
	app := exec.Command(sleep, "1000")
	if err := app.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Process.Kill(); app.Wait() })
	if err := os.WriteFile(pidfile, []byte(strconv.Itoa(app.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	starter := dir + "/start.sh"
	if err := os.WriteFile(starter, []byte("#!/bin/sh\n"+sleep+" 1000 </dev/null >/dev/null 2>&1 &\necho $! > "+pidfile+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	a := NewAgent(port, "test", 50*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	w, err := appwatch.New([]appwatch.App{{Name: "db", Pidfile: pidfile, Start: []string{starter}}}, 50*time.Millisecond, a.Changed)
	if err != nil {
		t.Fatal(err)
	}
	a.Apps = w
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go w.Run(ctx)
	go a.Run(ctx)

	host := NewReader(master)
	next := func(what string, ok func(*Message) bool) *Message {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			m, err := host.Read()
			if err != nil {
				t.Fatalf("waiting for %s: %v", what, err)
			}
			if ok(m) {
				return m
			}
		}
		t.Fatalf("no %s", what)
		return nil
	}
	m := next("hello", func(m *Message) bool { return m.Type == TypeHello })
	if m.Version != "test" {
		t.Errorf("hello %+v", m)
	}
	running := func(m *Message) bool {
		return m.Type == TypeHeartbeat && len(m.Apps) == 1 && m.Apps[0].Running
	}
	m = next("db running", running)
	if m.Apps[0].PID != app.Process.Pid {
		t.Fatalf("heartbeat %+v; want db at PID %d", m, app.Process.Pid)
	}
	app.Process.Kill()
	m = next("db exited", func(m *Message) bool { return m.Type == TypeHeartbeat && len(m.Apps) == 1 && !m.Apps[0].Running })
	if m.Apps[0].Exits != 1 {
		t.Errorf("exit not counted: %+v", m.Apps[0])
	}
	conn := NewConn(fileConn{master})
	id, err := conn.Restart("db")
	if err != nil {
		t.Fatal(err)
	}
	done := next("done", func(m *Message) bool { return m.Type == TypeDone })
	if done.ID != id || done.Err != "" {
		t.Fatalf("done %+v; want id %d without error", done, id)
	}
	m = next("db running again", running)
	if m.Apps[0].PID == app.Process.Pid {
		t.Fatal("the old PID again")
	}
	t.Cleanup(func() { unix.Kill(m.Apps[0].PID, unix.SIGKILL) })
	id, _ = conn.Restart("nope")
	done = next("done of an unknown app", func(m *Message) bool { return m.Type == TypeDone && m.ID == id })
	if !strings.Contains(done.Err, "no application is called nope") {
		t.Errorf("done %+v", done)
	}
}

// fileConn lets a pty master stand for the host's socket.
type fileConn struct{ *os.File }

func (fileConn) LocalAddr() net.Addr                { return nil }
func (fileConn) RemoteAddr() net.Addr               { return nil }
func (f fileConn) SetDeadline(t time.Time) error    { return nil }
func (fileConn) SetReadDeadline(t time.Time) error  { return nil }
func (fileConn) SetWriteDeadline(t time.Time) error { return nil }

func TestFindPort(t *testing.T) {
	sys := t.TempDir()
	if got := findPort("/dev/ttyS1", sys); got != "/dev/ttyS1" {
		t.Errorf("a given device: %s", got)
	}
	if got := findPort(DevicePath, sys); got != DevicePath {
		t.Errorf("nothing in sysfs: %s", got)
	}
	for dev, name := range map[string]string{"vport1p1": "org.qemu.guest_agent.0", "vport2p1": Port} {
		d := sys + "/class/virtio-ports/" + dev
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(d+"/name", []byte(name+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := findPort(DevicePath, sys); got != "/dev/vport2p1" {
		t.Errorf("found %s; want /dev/vport2p1", got)
	}
}

// BenchmarkAppRestart: an application the guest agent runs is killed; the
// host (here, the benchmark) sees its exit in a heartbeat, asks for a
// restart, and sees it running again. One op is that whole round trip
// over a character device.
func BenchmarkAppRestart(b *testing.B) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		b.Skip("no sleep program")
	}
	master, port := rawPTY(b)
	a := NewAgent(port, "bench", time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	w, err := appwatch.New([]appwatch.App{{Name: "app", Run: []string{sleep, "1000"}}}, time.Second, a.Changed)
	if err != nil {
		b.Fatal(err)
	}
	a.Apps = w
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	go a.Run(ctx)
	host := NewReader(master)
	conn := NewConn(fileConn{master})
	running := func() int {
		for {
			m, err := host.Read()
			if err != nil {
				b.Fatal(err)
			}
			if m.Type == TypeHeartbeat && len(m.Apps) == 1 && m.Apps[0].Running {
				return m.Apps[0].PID
			}
		}
	}
	pid := running()
	b.ResetTimer()
	for range b.N {
		unix.Kill(pid, unix.SIGKILL)
		for {
			m, err := host.Read()
			if err != nil {
				b.Fatal(err)
			}
			if m.Type == TypeHeartbeat && len(m.Apps) == 1 && !m.Apps[0].Running {
				break
			}
		}
		if _, err := conn.Restart("app"); err != nil {
			b.Fatal(err)
		}
		pid = running()
	}
	b.StopTimer()
	unix.Kill(pid, unix.SIGKILL)
}
