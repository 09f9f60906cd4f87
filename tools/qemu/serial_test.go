package qemu

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// fakeConsole plays a guest's serial console: a tty that echoes each line
// typed, and a shell that answers it and prints its prompt.
func fakeConsole(t *testing.T, answer func(line string) string) *Serial {
	t.Helper()
	host, guest := net.Pipe()
	t.Cleanup(func() { host.Close(); guest.Close() })
	s := NewSerial(host, time.Now())
	go func() {
		io.WriteString(guest, "[    1.0] Linux booting\r\nvigil console v1 on /dev/ttyS0: type help\r\nvigil h1> ")
		r := bufio.NewReader(guest)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSuffix(line, "\n")
			io.WriteString(guest, line+"\r\n") // the tty's echo
			io.WriteString(guest, answer(line)+"vigil h1> ")
		}
	}()
	return s
}

func TestSerialCommand(t *testing.T) {
	s := fakeConsole(t, func(line string) string {
		switch line {
		case "status":
			return "host h1: healthy, coordinator h1, lease held\r\nagent v1, up 3s\r\n"
		case "log":
			// Output that mentions the command and looks like a prompt
			// without being one.
			return "time=1 msg=\"status asked\" vigil boot: done\r\n"
		case "":
			return ""
		}
		return "unknown command \"" + line + "\": type help for the list\r\n"
	})
	ctx := testCtx(t)
	if _, err := s.Expect(ctx, "type help"); err != nil {
		t.Fatal(err)
	}
	got, err := s.Command(ctx, "status")
	if err != nil {
		t.Fatal(err)
	}
	if want := "host h1: healthy, coordinator h1, lease held\nagent v1, up 3s\n"; got != want {
		t.Errorf("status reply = %q, want %q", got, want)
	}
	got, err = s.Command(ctx, "log")
	if err != nil {
		t.Fatal(err)
	}
	if want := "time=1 msg=\"status asked\" vigil boot: done\n"; got != want {
		t.Errorf("log reply = %q, want %q", got, want)
	}
	got, err = s.Command(ctx, "frob")
	if err != nil || !strings.HasPrefix(got, `unknown command "frob"`) {
		t.Errorf("frob reply = %q, %v; want the unknown command message", got, err)
	}
	if l, ok := s.FindLine("Linux booting"); !ok || l.Text != "[    1.0] Linux booting" {
		t.Errorf("FindLine(Linux booting) = %+v, %v; want the first line without its CR", l, ok)
	}
}

func TestSerialLinesAndTimes(t *testing.T) {
	s := &Serial{changed: make(chan struct{})}
	s.add([]byte("first\r\nsec"), 1*time.Second)
	s.add([]byte("ond\r\nthird"), 2*time.Second)
	s.add([]byte("\n"), 3*time.Second)
	want := []Line{{1 * time.Second, "first"}, {1 * time.Second, "second"}, {2 * time.Second, "third"}}
	got := s.Lines()
	if len(got) != len(want) {
		t.Fatalf("Lines() = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d = %+v, want %+v (a line's time is when its first byte came)", i, got[i], want[i])
		}
	}
	if s.Output() != "first\r\nsecond\r\nthird\n" {
		t.Errorf("Output() = %q", s.Output())
	}
}

func TestSerialExpectCursor(t *testing.T) {
	host, guest := net.Pipe()
	defer host.Close()
	s := NewSerial(host, time.Now())
	ctx := testCtx(t)
	go io.WriteString(guest, "agent started pid 7\nagent started pid 9\n")
	if out, err := s.Expect(ctx, "pid 7"); err != nil || out != "agent started pid 7" {
		t.Fatalf("Expect(pid 7) = %q, %v", out, err)
	}
	// The cursor is past the first match: the next one is the second line.
	out, err := s.Expect(ctx, "agent started")
	if err != nil || out != "\nagent started" {
		t.Fatalf("second Expect = %q, %v; want the second line's match", out, err)
	}
	// WaitLine ignores the cursor.
	if l, err := s.WaitLine(ctx, "pid 7"); err != nil || l.Text != "agent started pid 7" {
		t.Errorf("WaitLine(pid 7) = %+v, %v", l, err)
	}
	guest.Close()
	if _, err := s.Expect(ctx, "never"); err == nil || !strings.Contains(err.Error(), "closed") || !strings.Contains(err.Error(), "agent started pid 9") {
		t.Errorf("Expect after the port closed = %v, want an error saying it closed, with the output's tail", err)
	}
}

func TestSerialExpectTimeout(t *testing.T) {
	host, guest := net.Pipe()
	defer host.Close()
	defer guest.Close()
	s := NewSerial(host, time.Now())
	ctx := testCtx(t)
	go io.WriteString(guest, "booting\n")
	if _, err := s.Expect(ctx, "booting"); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Expect(short, "vigil h1> "); err == nil || !strings.Contains(err.Error(), "booting") {
		t.Errorf("Expect with a done context = %v, want its error with the output's tail", err)
	}
}
