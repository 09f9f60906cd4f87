package agentd

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/drivers/nic/nictest"
	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/firmware/agent/agenttest"
	"github.com/vigil-ha/vigil/hb"
)

// serve starts d's API and a goroutine that runs the calls as the loop
// would; both stop when the test ends. It returns a client of the API.
func serve(t *testing.T, d *daemon) *Client {
	t.Helper()
	api, err := d.serveAPI()
	if err != nil {
		t.Fatalf("serveAPI: %v", err)
	}
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		for f := range d.calls {
			f()
		}
	}()
	t.Cleanup(func() {
		api.Close()
		close(d.calls)
		<-loopDone
	})
	return NewClient(d.opts.API)
}

// onLoop runs f as the loop and waits for it, so the test reads the core
// without racing the API's calls.
func onLoop(t *testing.T, d *daemon, f func()) {
	t.Helper()
	if err := d.call(context.Background(), f); err != nil {
		t.Fatalf("call: %v", err)
	}
}

// hearH2 gives h1's core one heartbeat from h2 on link 0 and a tick.
func hearH2(t *testing.T, d *daemon, env *agenttest.Recorder) {
	t.Helper()
	m := hb.Message{From: 1, Incarnation: 7, Seq: 1, Link: 0, Coordinator: -1, Version: 1}
	d.newReader(0).packet(packet(t, "unit", testRing(t, testKey(1)), m), env.Clock)
	d.ag.Handle(cluster.Tick{})
}

func TestAPIExplain(t *testing.T) {
	d, env := newTestDaemon(t)
	hearH2(t, d, env)
	c := serve(t, d)
	for _, tc := range []struct {
		name    string
		host    string
		verdict string
		rows    []string // substrings of the rows, in order
		err     string
	}{
		{"heard peer", "h2", "alive", []string{"network: link0 up (last heard", "link1 never heard", "storage: "}, ""},
		{"silent peer", "h3", "unknown", []string{"network: link0 never heard, link1 never heard"}, ""},
		{"this host", "h1", "starting", []string{"lease: not yet", "peers heard: 1 of 2"}, ""},
		{"unknown host", "h9", "", nil, `no host "h9" in the cluster: run 'vigil peers'`},
		{"no host", "", "", nil, `no host "" in the cluster`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rep ExplainReply
			err := c.Get(context.Background(), "/v1/explain?host="+tc.host, &rep)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("explain %s: %v", tc.host, err)
			}
			if rep.Host != tc.host || rep.Verdict != tc.verdict {
				t.Errorf("explain %s = host %q verdict %q, want %q %q", tc.host, rep.Host, rep.Verdict, tc.host, tc.verdict)
			}
			joined := strings.Join(rep.Rows, "\n")
			rest := joined
			for _, w := range tc.rows {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Errorf("rows lack %q (in order):\n%s", w, joined)
					break
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

func TestAPICommand(t *testing.T) {
	d, _ := newTestDaemon(t)
	c := serve(t, d)
	for _, tc := range []struct {
		name  string
		cmd   string
		maint bool   // the node's Maintenance afterwards
		err   string // "" = accepted
	}{
		{"unknown command", "bogus", false, `unknown command "bogus": use maintenance-enter, maintenance-exit, vm-stop, vm-start, vm-move, rejoin or fence-self`},
		{"shutdown is not for the API", "shutdown", false, `unknown command "shutdown"`},
		{"enter maintenance", "maintenance-enter", true, ""},
		{"enter it again", "maintenance-enter", true, ""},
		{"leave maintenance", "maintenance-exit", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rep struct{ OK bool }
			err := c.Post(context.Background(), "/v1/command?name="+tc.cmd, &rep)
			switch {
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("error %v, want one saying %q", err, tc.err)
			case tc.err == "" && err != nil:
				t.Errorf("command %s: %v", tc.cmd, err)
			case tc.err == "" && !rep.OK:
				t.Errorf("command %s answered %+v, want OK", tc.cmd, rep)
			}
			var st cluster.Status
			onLoop(t, d, func() { st = d.node.Status(0) })
			if st.Maintenance != tc.maint || st.Stopping {
				t.Errorf("after %s: maintenance %v stopping %v, want maintenance %v, not stopping", tc.cmd, st.Maintenance, st.Stopping, tc.maint)
			}
		})
	}
	var rep struct{ OK bool }
	if err := c.Get(context.Background(), "/v1/command?name=maintenance-enter", &rep); err == nil {
		t.Error("GET /v1/command was accepted, want POST only")
	}
}

// TestAPIStatus gives the daemon a fake NIC on link 0 only, for the device
// names the reply carries.
func TestAPIStatus(t *testing.T) {
	d, env := newTestDaemon(t)
	d.nics = nictest.NewNetwork(3, 1, nil).NIC(0) // link 1 has no NIC: its device is ""
	hearH2(t, d, env)
	d.drops.Add(hb.BadMAC)
	d.sendErrors[1] = 3
	d.pets = 5
	c := serve(t, d)

	var rep StatusReply
	if err := c.Get(context.Background(), "/v1/status", &rep); err != nil {
		t.Fatalf("status: %v", err)
	}
	s := rep.Status
	for _, chk := range []struct {
		what      string
		got, want any
	}{
		{"version", rep.Version, Version},
		{"host", s.Host, "h1"},
		{"incarnation", s.Incarnation, uint64(1)},
		{"self", s.Self, "starting"},
		{"peers", len(s.Peers), 2},
		{"h2 verdict", s.Peers[0].Name + " " + s.Peers[0].Verdict, "h2 alive"},
		{"carrier", len(s.Carrier), 2},
		{"datastores", len(s.Datastores), 1},
		{"links", strings.Join(rep.Links, ","), "fake0,"},
		{"bad-mac drops", rep.Drops["bad-mac"], uint64(1)},
		{"replayed drops", rep.Drops["replayed"], uint64(0)},
		{"send errors", len(rep.SendErrors), 2},
		{"send errors on link 1", rep.SendErrors[1], uint64(3)},
		{"pets", rep.Pets, uint64(5)},
	} {
		if chk.got != chk.want {
			t.Errorf("%s = %v, want %v", chk.what, chk.got, chk.want)
		}
	}
	// Uptime is rounded to the millisecond: it may be up to half of one ahead.
	if up := time.Since(d.start) + time.Millisecond/2; rep.Uptime < 0 || rep.Uptime > up {
		t.Errorf("uptime %v outside 0..%v", rep.Uptime, up)
	}
}

// TestAPINoLoop: a call whose caller gives up while the loop is busy
// returns the caller's error.
func TestAPINoLoop(t *testing.T) {
	d, _ := newTestDaemon(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	if err := d.call(ctx, func() { ran = true }); !errors.Is(err, context.Canceled) {
		t.Errorf("call with no loop and a cancelled context = %v, want context.Canceled", err)
	}
	if ran {
		t.Error("the call ran without a loop")
	}
}

func TestClientNoAgent(t *testing.T) {
	c := NewClient(filepath.Join(t.TempDir(), "none.sock"))
	var rep StatusReply
	err := c.Get(context.Background(), "/v1/status", &rep)
	if err == nil || !strings.Contains(err.Error(), "no agent answers") || !strings.Contains(err.Error(), "--api") {
		t.Errorf("status with no agent: %v, want an error saying no agent answers and naming --api", err)
	}
}

func TestRemoveStaleSocket(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, path string)
		err     string // "" = no error
		remains bool   // the file is still there afterwards
	}{
		{"no file", func(*testing.T, string) {}, "", false},
		{"dead socket", func(t *testing.T, path string) {
			ln := listenUnix(t, path)
			ln.SetUnlinkOnClose(false)
			ln.Close()
		}, "", false},
		{"live socket", func(t *testing.T, path string) {
			ln := listenUnix(t, path)
			t.Cleanup(func() { ln.Close() })
		}, "another agent answers on PATH: stop it first, or pass another --api", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "api.sock")
			tc.prepare(t, path)
			err := removeStaleSocket(path)
			switch want := strings.ReplaceAll(tc.err, "PATH", path); {
			case want == "" && err != nil:
				t.Errorf("removeStaleSocket: %v", err)
			case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
				t.Errorf("removeStaleSocket = %v, want an error saying %q", err, want)
			}
			if _, err := os.Stat(path); (err == nil) != tc.remains {
				t.Errorf("socket file there afterwards: %v, want %v", err == nil, tc.remains)
			}
		})
	}
}

// TestServeAPIRefusesLiveSocket: a second agent on the same socket does not
// start and leaves the first one serving.
func TestServeAPIRefusesLiveSocket(t *testing.T) {
	d, _ := newTestDaemon(t)
	c := serve(t, d)
	second, _ := newTestDaemon(t)
	second.opts.API = d.opts.API
	if api, err := second.serveAPI(); err == nil {
		api.Close()
		t.Fatal("a second API started on a live socket")
	}
	var rep ExplainReply
	if err := c.Get(context.Background(), "/v1/explain?host=h2", &rep); err != nil {
		t.Errorf("the first API stopped answering: %v", err)
	}
}

func listenUnix(t *testing.T, path string) *net.UnixListener {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
