//go:build !vigil_noconsole

package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/firmware/agentd"
	"golang.org/x/sys/unix"
)

// consoleAgent serves the API the console reads on a unix socket.
type consoleAgent struct {
	sock    string
	fenced  atomic.Int32
	stuck   chan struct{} // closed to release a stuck /v1/status
	hang    atomic.Bool
	fenceBy atomic.Value
}

func newConsoleAgent(t *testing.T) *consoleAgent {
	dir, err := os.MkdirTemp("", "vc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	a := &consoleAgent{sock: filepath.Join(dir, "api.sock"), stuck: make(chan struct{})}
	ln, err := net.Listen("unix", a.sock)
	if err != nil {
		t.Fatal(err)
	}
	js := func(w http.ResponseWriter, v any) { json.NewEncoder(w).Encode(v) }
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		if a.hang.Load() {
			select {
			case <-a.stuck:
			case <-r.Context().Done():
			}
			return
		}
		js(w, agentd.StatusReply{Version: "v9", PID: 42, RSS: 20 << 20, Pets: 7, Status: cluster.Status{
			Host: "h1", Self: "healthy", Coordinator: "h1", Lease: "fresh",
			Peers: []cluster.PeerStatus{{Name: "h2", Verdict: "alive"}},
			VMs:   []cluster.VMStatus{{Name: "db", State: "running", Epoch: 3}},
		}})
	})
	mux.HandleFunc("GET /v1/watchdog", func(w http.ResponseWriter, r *http.Request) {
		js(w, agentd.WatchdogReply{Device: "/dev/watchdog", Timeout: 4 * time.Second, Armed: true, TimeLeft: 3 * time.Second, Pets: 7, LastBoot: "reset by the watchdog"})
	})
	mux.HandleFunc("GET /v1/bmc", func(w http.ResponseWriter, r *http.Request) {
		js(w, agentd.BMCReply{Device: "/dev/ipmi0", Identity: "IPMI 2.0", Power: "on"})
	})
	mux.HandleFunc("GET /v1/log", func(w http.ResponseWriter, r *http.Request) {
		js(w, agentd.LogReply{Lines: []string{"line " + r.URL.Query().Get("n")}})
	})
	mux.HandleFunc("POST /v1/command", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("name") == "fence-self" {
			a.fenced.Add(1)
			a.fenceBy.Store(r.URL.Query().Get("by"))
		}
		js(w, struct{ OK bool }{true})
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { close(a.stuck); srv.Close() })
	return a
}

// converse feeds the console the input lines and returns what it wrote.
func converse(t *testing.T, a *consoleAgent, input string) string {
	var out strings.Builder
	sh := &shell{api: a.sock, out: &out, timeout: 2 * time.Second}
	sh.serve(bufio.NewReader(strings.NewReader(input)))
	return out.String()
}

func TestConsoleCommands(t *testing.T) {
	a := newConsoleAgent(t)
	out := converse(t, a, "status\npeers\nvms\nwatchdog\nbmc\nlog 5\nhelp explain\nfrobnicate\nlog x\n\nexit\n")
	for _, want := range []string{
		"vigil h1> ",
		"host h1: healthy, coordinator h1, lease fresh",
		"pid 42, RSS 20.0 MiB",
		"h2    alive",
		"VM db: running (epoch 3)",
		"watchdog /dev/watchdog: armed, timeout 4s",
		"time left: 3s",
		"last boot: reset by the watchdog",
		"BMC /dev/ipmi0: IPMI 2.0\npower: on",
		"line 5",
		"explain HOST",
		`unknown command "frobnicate": type help for the list`,
		"log: usage: log [N]",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("console output lacks %q:\n%s", want, out)
		}
	}
}

func TestConsoleFenceSelfConfirmation(t *testing.T) {
	a := newConsoleAgent(t)
	out := converse(t, a, "fence-self\nh2\n")
	if a.fenced.Load() != 0 || !strings.Contains(out, "not confirmed: nothing done") {
		t.Fatalf("a wrong name fenced the host (%d) or was not refused:\n%s", a.fenced.Load(), out)
	}
	out = converse(t, a, "fence-self\nh1\n")
	if a.fenced.Load() != 1 || !strings.Contains(out, "h1 is fencing itself") || a.fenceBy.Load() != "console" {
		t.Fatalf("the right name did not fence once (%d, by %v):\n%s", a.fenced.Load(), a.fenceBy.Load(), out)
	}
}

func TestConsoleAgentNotAnswering(t *testing.T) {
	a := newConsoleAgent(t)
	a.hang.Store(true)
	var out strings.Builder
	sh := &shell{api: a.sock, out: &out, timeout: 50 * time.Millisecond}
	if sh.run("status", nil) {
		t.Fatal("status succeeded with an agent that does not answer")
	}
	if !strings.Contains(out.String(), "agent not answering on "+a.sock) && !strings.Contains(out.String(), "deadline") {
		t.Fatalf("no clear error:\n%s", out.String())
	}
	gone := &shell{api: filepath.Join(t.TempDir(), "none.sock"), out: &out, timeout: time.Second}
	if got := gone.prompt(); got != "vigil> " {
		t.Fatalf("prompt without an agent = %q", got)
	}
}

// TestConsoleOnPty serves a real pseudo-terminal: the console sets it to
// line mode at 115200 baud and answers a command typed on it.
func TestConsoleOnPty(t *testing.T) {
	a := newConsoleAgent(t)
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	defer ptmx.Close()
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	pts := "/dev/pts/" + strconv.Itoa(n)
	done := make(chan int, 1)
	var stderr strings.Builder
	go func() { done <- runConsole([]string{"--tty", pts, "--api", a.sock}, &strings.Builder{}, &stderr) }()
	r := bufio.NewReader(ptmx)
	readUntil := func(s string) string {
		var got strings.Builder
		for !strings.Contains(got.String(), s) {
			b, err := r.ReadByte()
			if err != nil {
				t.Fatalf("reading the pty: %v (so far %q)", err, got.String())
			}
			got.WriteByte(b)
		}
		return got.String()
	}
	readUntil("type help")
	readUntil("vigil h1> ")
	f, err := os.OpenFile(pts, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if tio.Lflag&unix.ICANON == 0 || tio.Lflag&unix.ECHO == 0 || tio.Oflag&unix.ONLCR == 0 || tio.Cflag&unix.CBAUD != unix.B115200 {
		t.Fatalf("the tty is not in line mode at 115200: lflag %#x oflag %#x cflag %#x", tio.Lflag, tio.Oflag, tio.Cflag)
	}
	ptmx.Write([]byte("status\n"))
	got := readUntil("vigil h1> ")
	if !strings.Contains(got, "status\r\n") || !strings.Contains(got, "host h1: healthy,") || !strings.Contains(got, "\r\n") {
		t.Fatalf("no echo or answer with CR LF:\n%q", got)
	}
	ptmx.Write([]byte("exit\n"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("console exited %d: %s", code, stderr.String())
		}
	case <-ctx.Done():
		t.Fatal("the console did not leave on exit")
	}
}
