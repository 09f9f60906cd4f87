package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/firmware/agentd"
)

// sampleStatus is h1 of a three-host, two-link cluster: h2 heard on link 0
// only, h3 silent and in maintenance, one datastore failing.
func sampleStatus() *agentd.StatusReply {
	return &agentd.StatusReply{
		Version: "1.2.3",
		Uptime:  1500 * time.Millisecond,
		Pets:    7,
		Links:   []string{"eth0", "eth1"},
		Drops:   map[string]uint64{"replayed": 2, "bad-mac": 1, "truncated": 0, "unknown-key": 12},
		Status: cluster.Status{
			Host: "h1", Incarnation: 42, Self: "healthy", Coordinator: "h1", Lease: "fresh",
			Carrier: []bool{true, false},
			Peers: []cluster.PeerStatus{
				{Name: "h2", Verdict: "alive", Links: []cluster.LinkStatus{
					{State: "up", Heard: true, Ago: 12 * time.Millisecond, Timeout: 500 * time.Millisecond, Mean: 100 * time.Millisecond, Jitter: 3 * time.Millisecond},
					{State: "down", Timeout: 500 * time.Millisecond},
				}},
				{Name: "h3", Verdict: "failed", Maintenance: true, Silent: 2500 * time.Millisecond, Links: []cluster.LinkStatus{
					{State: "down", Heard: true, Ago: 2500 * time.Millisecond, Timeout: 1200 * time.Millisecond, Mean: 101 * time.Millisecond, Jitter: 40 * time.Millisecond},
					{State: "down", Heard: true, Ago: 2600 * time.Millisecond, Timeout: 500 * time.Millisecond, Mean: 99 * time.Millisecond, Jitter: 2 * time.Millisecond},
				}},
			},
			Datastores: []cluster.DatastoreStatus{{Renewed: 250 * time.Millisecond}, {Failing: true, Renewed: 4200 * time.Millisecond}},
			VMs: []cluster.VMStatus{
				{Name: "db1", Epoch: 3, State: "running"},
				{Name: "web", Epoch: 5, State: "released", Reason: "maintenance"},
			},
		},
	}
}

func TestPrintAgentStatus(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(r *agentd.StatusReply)
		want   []string // whole lines, in order
		absent []string // substrings no line may hold
	}{
		{"healthy", func(*agentd.StatusReply) {}, []string{
			"host h1: healthy, coordinator h1, lease fresh",
			"agent 1.2.3, up 1.5s, incarnation 42, 7 watchdog pets",
			"link 0 (eth0): carrier up",
			"link 1 (eth1): carrier DOWN",
			"datastore 0: ok, lease renewed 250ms ago",
			"datastore 1: FAILING, lease renewed 4.2s ago",
			"VM db1: running (epoch 3)",
			"VM web: released (epoch 5), maintenance",
			"heartbeats dropped: bad-mac 1, replayed 2, unknown-key 12",
		}, []string{"maintenance,", "stopping", "truncated", "VMs: none"}},
		{"never renewed", func(r *agentd.StatusReply) { r.Status.Datastores[0].Renewed = -1 }, []string{
			"datastore 0: ok, lease never renewed",
		}, []string{"never ago"}},
		{"bmcs", func(r *agentd.StatusReply) {
			r.BMCs = []agentd.BMCStatus{
				{Host: "h2", Addr: "10.9.0.2:623", Since: 12 * time.Second, OK: true, Cipher: 3},
				{Host: "h3", Addr: "10.9.0.3:623", Since: 2 * time.Second, Err: "ipmi: BMC unreachable"},
				{Host: "h4", Addr: "10.9.0.4:623", Since: -1},
				{Host: "h5", Addr: "10.9.0.5:623", Since: -1, Err: "BMC credentials of h5: mode 0644"},
			}
		}, []string{
			"BMC of h2 (10.9.0.2:623): ok (checked 12.0s ago), cipher suite 3",
			"BMC of h3 (10.9.0.3:623): FAILING (checked 2.0s ago): ipmi: BMC unreachable",
			"BMC of h4 (10.9.0.4:623): not checked yet",
			"BMC of h5 (10.9.0.5:623): FAILING: BMC credentials of h5: mode 0644",
		}, nil},
		{"own bmc", func(r *agentd.StatusReply) { r.OwnBMC = "IPMI 2.0, firmware 1.2, manufacturer 343, product 7" }, []string{
			"own BMC: IPMI 2.0, firmware 1.2, manufacturer 343, product 7",
		}, nil},
		{"held", func(r *agentd.StatusReply) { r.Held = "the watchdog reset this host 3 times within 1h0m0s" }, []string{
			"agent 1.2.3, up 1.5s, incarnation 42, 7 watchdog pets",
			"HELD: the watchdog reset this host 3 times within 1h0m0s",
			"link 0 (eth0): carrier up",
		}, nil},
		{"datastore paths", func(r *agentd.StatusReply) { r.Datastores = []string{"ds0 /mnt/shared", "lun1 /dev/sdc"} }, []string{
			"datastore 0 (ds0 /mnt/shared): ok, lease renewed 250ms ago",
			"datastore 1 (lun1 /dev/sdc): FAILING, lease renewed 4.2s ago",
		}, nil},
		{"in maintenance", func(r *agentd.StatusReply) { r.Status.Maintenance = true }, []string{
			"host h1: healthy, coordinator h1, lease fresh, in maintenance",
		}, []string{"stopping"}},
		{"stopping", func(r *agentd.StatusReply) { r.Status.Maintenance, r.Status.Stopping = true, true }, []string{
			"host h1: healthy, coordinator h1, lease fresh, stopping",
		}, []string{"in maintenance"}},
		{"no coordinator", func(r *agentd.StatusReply) {
			r.Status.Self, r.Status.Coordinator, r.Status.Lease = "isolated", "none", "lapsed"
		}, []string{"host h1: isolated, coordinator none, lease lapsed"}, nil},
		{"no VMs, no drops", func(r *agentd.StatusReply) {
			r.Status.VMs = nil
			r.Drops = map[string]uint64{"bad-mac": 0}
		}, []string{"VMs: none"}, []string{"heartbeats dropped", "VM db1"}},
		{"kernel evidence", func(r *agentd.StatusReply) {
			r.Status.Datastores[1].Down, r.Status.Datastores[1].DownWhy = true, "2 requests stuck for 60ms"
			r.Status.Local = cluster.LocalStatus{Stalled: true, For: 4500 * time.Millisecond, Lag: 700 * time.Millisecond, NotPetting: true, Stalls: 2}
			r.Kernel = []agentd.FeatureStatus{
				{Name: "stamping", Mode: "auto", Active: true, Detail: "TCX ingress on eth0, eth1", Fallback: "socket stamps"},
				{Name: "exits", Mode: "off", Detail: "off in the configuration", Fallback: "pidfds"},
			}
		}, []string{
			"datastore 1: DOWN (kernel: 2 requests stuck for 60ms), lease renewed 4.2s ago",
			"OWN STALL for 4.5s, reading heartbeats 700ms late: NOT PETTING THE WATCHDOG",
			"kernel stamping: on, TCX ingress on eth0, eth1",
			"kernel exits: off (off in the configuration): using pidfds",
		}, []string{"own stalls:"}},
		{"a past stall", func(r *agentd.StatusReply) {
			r.Status.Local = cluster.LocalStatus{Stalls: 3, Last: 1500 * time.Millisecond}
		}, []string{
			"own stalls: 3, the last lasted 1.5s",
		}, []string{"OWN STALL"}},
		{"a link without its device", func(r *agentd.StatusReply) { r.Links = r.Links[:1] }, []string{
			"link 0 (eth0): carrier up",
			"link 1: carrier DOWN",
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := sampleStatus()
			tc.change(r)
			var b bytes.Buffer
			printAgentStatus(&b, r)
			checkLines(t, b.String(), tc.want, tc.absent)
		})
	}
}

func TestPrintPeers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(r *agentd.StatusReply)
		want   [][]string // rows split into cells, in order
	}{
		{"two peers", func(*agentd.StatusReply) {}, [][]string{
			{"PEER", "VERDICT", "SILENT", "LINK 0", "LINK 1"},
			{"h2", "alive", "-", "up 12ms ago", "down"},
			{"h3", "failed (maintenance)", "2.5s", "down 2.5s ago", "down 2.6s ago"},
		}},
		{"one link", func(r *agentd.StatusReply) {
			r.Status.Carrier = r.Status.Carrier[:1]
			for i := range r.Status.Peers {
				r.Status.Peers[i].Links = r.Status.Peers[i].Links[:1]
			}
		}, [][]string{
			{"PEER", "VERDICT", "SILENT", "LINK 0"},
			{"h2", "alive", "-", "up 12ms ago"},
			{"h3", "failed (maintenance)", "2.5s", "down 2.5s ago"},
		}},
		{"no peers", func(r *agentd.StatusReply) { r.Status.Peers = nil }, [][]string{
			{"PEER", "VERDICT", "SILENT", "LINK 0", "LINK 1"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := sampleStatus()
			tc.change(r)
			var b bytes.Buffer
			printPeers(&b, r)
			checkTable(t, b.String(), tc.want)
		})
	}
}

func TestPrintLinks(t *testing.T) {
	var b bytes.Buffer
	printLinks(&b, sampleStatus())
	checkTable(t, b.String(), [][]string{
		{"PEER", "LINK", "STATE", "LAST HEARD", "TIMEOUT", "MEAN GAP", "JITTER"},
		{"h2", "0", "up", "12ms ago", "500ms", "100ms", "3ms"},
		{"h2", "1", "down", "never", "500ms", "0ms", "0ms"},
		{"h3", "0", "down", "2.5s ago", "1.2s", "101ms", "40ms"},
		{"h3", "1", "down", "2.6s ago", "500ms", "99ms", "2ms"},
	})
}

func TestDur(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{-1, "never"},
		{0, "0ms"},
		{999 * time.Millisecond, "999ms"},
		{time.Second, "1.0s"},
		{90 * time.Second, "90.0s"},
	} {
		if got := dur(tc.d); got != tc.want {
			t.Errorf("dur(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

// TestQueryArguments runs the commands against no agent: argument errors
// exit 2 with the usage, a missing agent exits 1 and says so.
func TestQueryArguments(t *testing.T) {
	none := filepath.Join(t.TempDir(), "none.sock")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"status with an argument", []string{"status", "h2"}, 2, "usage: vigil status [--api SOCKET] [--json]"},
		{"peers with an unknown flag", []string{"peers", "--bogus"}, 2, "usage: vigil peers [--api SOCKET] [--json]"},
		{"links without the socket", []string{"links", "--api"}, 2, "usage: vigil links [--api SOCKET] [--json]"},
		{"status, no agent", []string{"status", "--api", none}, 1, "vigil status: no agent answers"},
		{"explain without a host", []string{"explain"}, 2, "usage: vigil explain HOST [--api SOCKET] [--json]"},
		{"explain with flags only", []string{"explain", "--json", "--api", none}, 2, "usage: vigil explain HOST"},
		{"explain two hosts", []string{"explain", "h2", "h3"}, 2, "usage: vigil explain HOST"},
		{"explain two hosts around flags", []string{"explain", "h2", "--json", "h3"}, 2, "usage: vigil explain HOST"},
		{"explain with an unknown flag", []string{"explain", "h2", "--bogus"}, 2, "usage: vigil explain HOST"},
		{"explain, no agent", []string{"explain", "h2", "--api", none}, 1, "vigil explain: no agent answers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := Run(tc.args, &out, &errb); code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, errb.String())
			}
			if !strings.Contains(errb.String(), tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, errb.String())
			}
			if out.Len() > 0 {
				t.Errorf("stdout not empty:\n%s", out.String())
			}
		})
	}
}

// TestQueryOutput runs the commands against a stand-in for the agent's API
// that answers with fixed replies.
func TestQueryOutput(t *testing.T) {
	sock := fakeAgent(t)
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout []string // whole lines, in order
		stderr string
	}{
		{"status", []string{"status", "--api", sock}, 0, []string{"host h1: healthy, coordinator h1, lease fresh"}, ""},
		{"status as JSON", []string{"status", "--json", "--api", sock}, 0, []string{`  "Version": "1.2.3",`}, ""},
		{"peers", []string{"peers", "--api", sock}, 0, []string{"PEER  VERDICT               SILENT  LINK 0         LINK 1"}, ""},
		{"explain, host first", []string{"explain", "h2", "--api", sock}, 0, []string{"h2: alive", "  network: link0 up (last heard 12ms ago, timeout 500ms)"}, ""},
		{"explain, host last", []string{"explain", "--api", sock, "h2"}, 0, []string{"h2: alive", "  storage: ds0 alive"}, ""},
		{"explain as JSON", []string{"explain", "--api", sock, "--json", "h2"}, 0, []string{`  "Verdict": "alive",`}, ""},
		{"explain an unknown host", []string{"explain", "h9", "--api", sock}, 1, nil, `vigil explain: agent: no host "h9"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := Run(tc.args, &out, &errb); code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, errb.String())
			}
			checkLines(t, out.String(), tc.stdout, nil)
			if !strings.Contains(errb.String(), tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, errb.String())
			}
		})
	}
}

// fakeAgent serves sampleStatus and an explanation of h2 on a unix socket
// until the test ends, and returns the socket.
func fakeAgent(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(sampleStatus())
	})
	mux.HandleFunc("GET /v1/explain", func(w http.ResponseWriter, r *http.Request) {
		if h := r.URL.Query().Get("host"); h != "h2" {
			http.Error(w, `no host "`+h+`" in the cluster`, http.StatusNotFound)
			return
		}
		json.NewEncoder(w).Encode(agentd.ExplainReply{Host: "h2", Verdict: "alive",
			Rows: []string{"network: link0 up (last heard 12ms ago, timeout 500ms)", "storage: ds0 alive"}})
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return sock
}

// checkLines fails unless text holds the want lines in order (each a
// whole line) and no line holds one of absent.
func checkLines(t *testing.T, text string, want, absent []string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	i := 0
	for _, w := range want {
		for i < len(lines) && lines[i] != w {
			i++
		}
		if i == len(lines) {
			t.Errorf("no line %q (in order) in:\n%s", w, text)
			return
		}
	}
	for _, a := range absent {
		if strings.Contains(text, a) {
			t.Errorf("output holds %q:\n%s", a, text)
		}
	}
}

// cellSep splits a tabwriter row: cells are padded with two spaces or more,
// while a cell holds single spaces at most.
var cellSep = regexp.MustCompile(`\s{2,}`)

// checkTable fails unless text is exactly the rows, each split into cells,
// and every row's cells start in the header's columns.
func checkTable(t *testing.T, text string, want [][]string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d rows, want %d:\n%s", len(lines), len(want), text)
	}
	var cols []int
	for _, loc := range cellSep.FindAllStringIndex(lines[0], -1) {
		cols = append(cols, loc[1])
	}
	for i, line := range lines {
		cells := cellSep.Split(strings.TrimRight(line, " "), -1)
		if strings.Join(cells, "|") != strings.Join(want[i], "|") {
			t.Errorf("row %d cells %q, want %q:\n%s", i, cells, want[i], text)
			continue
		}
		for c, at := range cols {
			if i > 0 && c+1 < len(cells) && (at >= len(line) || line[at-2:at] != "  " || line[at] == ' ') {
				t.Errorf("row %d: cell %d does not start at column %d:\n%s", i, c+1, at, text)
			}
		}
	}
}
