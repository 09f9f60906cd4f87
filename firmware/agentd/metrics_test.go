//go:build !vigil_nometrics

package agentd

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigil-ha/vigil/drivers/nic/nictest"
	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/hb"
)

// metricsDaemon is newTestDaemon's agent with h2 heard on link 0, a fake
// NIC, a few drops, send errors and pets, two kernel features and three
// incidents: one fenced through the BMC, one through the lease, one whose
// fence is still running. Its loop runs until the test ends.
func metricsDaemon(t *testing.T) *daemon {
	t.Helper()
	d, env := newTestDaemon(t)
	d.nics = nictest.NewNetwork(3, 2, nil).NIC(0)
	hearH2(t, d, env)
	d.drops.Add(hb.BadMAC)
	d.drops.Add(hb.BadMAC)
	d.sendErrors[1] = 3
	d.pets = 7
	d.kern = &kernel{features: []FeatureStatus{{Name: FeatureStamping, Mode: "auto", Active: true}, {Name: FeatureExits, Mode: "off"}}}
	d.incidents.keep(&cluster.Incident{ID: cluster.IncidentID{Host: 1, Seq: 1}, Closed: true, Decided: time.Second,
		Proof: cluster.Proof{Kind: cluster.ProofBMCOff, At: 4 * time.Second}})
	d.incidents.keep(&cluster.Incident{ID: cluster.IncidentID{Host: 2, Seq: 2}, Closed: true, Proof: cluster.Proof{Kind: cluster.ProofLease}})
	d.incidents.keep(&cluster.Incident{ID: cluster.IncidentID{Host: 2, Seq: 3}, Fence: cluster.IncidentFence{Started: 5}})
	serve(t, d)
	return d
}

func TestMetricsCollector(t *testing.T) {
	d := metricsDaemon(t)
	c := &agentCollector{d: d, ctx: context.Background(), fences: &fenceTally{}}
	want := fmt.Sprintf(`
# HELP vigil_build_info The agent's version: always 1.
# TYPE vigil_build_info gauge
vigil_build_info{goversion=%q,version=%q} 1
# HELP vigil_loop_up 1 when the agent's loop answered this scrape within 2 s; the other vigil_ metrics but build_info and uptime are missing when 0.
# TYPE vigil_loop_up gauge
vigil_loop_up 1
# HELP vigil_self_state This host's verdict about itself: 1 for the current state.
# TYPE vigil_self_state gauge
vigil_self_state{state="datastore-lost"} 0
vigil_self_state{state="healthy"} 0
vigil_self_state{state="isolated"} 0
vigil_self_state{state="starting"} 1
# HELP vigil_peer_link_up 1 when a peer's link is up, 0 when suspect or down.
# TYPE vigil_peer_link_up gauge
vigil_peer_link_up{link="mgmt",peer="h2"} 1
vigil_peer_link_up{link="mgmt",peer="h3"} 0
vigil_peer_link_up{link="storage",peer="h2"} 0
vigil_peer_link_up{link="storage",peer="h3"} 0
# HELP vigil_heartbeat_send_errors_total Heartbeat sends that failed, per link (a NIC without carrier).
# TYPE vigil_heartbeat_send_errors_total counter
vigil_heartbeat_send_errors_total{link="mgmt"} 0
vigil_heartbeat_send_errors_total{link="storage"} 3
# HELP vigil_watchdog_pets_total Hardware watchdog pets since the agent started.
# TYPE vigil_watchdog_pets_total counter
vigil_watchdog_pets_total 7
# HELP vigil_fences_total Fences this host completed as coordinator, per method (bmc: power-off read back off; lease: lease and watchdog deadlines passed).
# TYPE vigil_fences_total counter
vigil_fences_total{method="bmc"} 1
vigil_fences_total{method="lease"} 1
# HELP vigil_fences_in_progress Fences this host started as coordinator that have no proof yet.
# TYPE vigil_fences_in_progress gauge
vigil_fences_in_progress 1
# HELP vigil_kernel_feature_active 1 when an eBPF evidence feature is active, 0 when its user-space fallback stands in.
# TYPE vigil_kernel_feature_active gauge
vigil_kernel_feature_active{feature="exits",mode="off"} 0
vigil_kernel_feature_active{feature="stamping",mode="auto"} 1
# HELP vigil_vms VMs this host claims, per state.
# TYPE vigil_vms gauge
vigil_vms{state="claiming"} 0
vigil_vms{state="released"} 0
vigil_vms{state="running"} 0
vigil_vms{state="starting"} 0
`, runtime.Version(), Version)
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "vigil_build_info", "vigil_loop_up", "vigil_self_state",
		"vigil_peer_link_up", "vigil_heartbeat_send_errors_total", "vigil_watchdog_pets_total", "vigil_fences_total",
		"vigil_fences_in_progress", "vigil_kernel_feature_active", "vigil_vms"); err != nil {
		t.Error(err)
	}
	for _, chk := range []struct {
		metric string
		labels []string // name, value pairs
		want   float64
	}{
		{"vigil_peer_state", []string{"peer", "h2", "state", "alive"}, 1},
		{"vigil_peer_state", []string{"peer", "h2", "state", "failed"}, 0},
		{"vigil_peer_state", []string{"peer", "h3", "state", "unknown"}, 1},
		{"vigil_heartbeats_dropped_total", []string{"reason", "bad-mac"}, 2},
		{"vigil_heartbeats_dropped_total", []string{"reason", "replayed"}, 0},
		{"vigil_lease_state", []string{"state", "none"}, 1},
		{"vigil_datastore_up", []string{"datastore", "ds1"}, 1},
		{"vigil_link_carrier", []string{"device", "fake0", "link", "mgmt"}, 1},
		{"vigil_coordinator", nil, 0},
		{"vigil_held", nil, 0},
	} {
		got, ok := gatherValue(t, c, chk.metric, chk.labels...)
		if !ok || got != chk.want {
			t.Errorf("%s%v = %v (found %v), want %v", chk.metric, chk.labels, got, ok, chk.want)
		}
	}
	// h3 was never heard: no silence series for it; h2's link 0 has one.
	if _, ok := gatherValue(t, c, "vigil_peer_link_silence_seconds", "link", "mgmt", "peer", "h3"); ok {
		t.Error("vigil_peer_link_silence_seconds has a series for h3, never heard")
	}
	if _, ok := gatherValue(t, c, "vigil_peer_link_silence_seconds", "link", "mgmt", "peer", "h2"); !ok {
		t.Error("vigil_peer_link_silence_seconds has no series for h2 on mgmt, heard")
	}
}

// gatherValue collects c and returns the value of the series of metric
// with exactly the given label pairs.
func gatherValue(t *testing.T, c *agentCollector, metric string, labels ...string) (float64, bool) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != metric {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel())*2 != len(labels) {
				continue
			}
			for i, lp := range m.GetLabel() {
				if lp.GetName() != labels[2*i] || lp.GetValue() != labels[2*i+1] {
					continue series
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue(), true
			}
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// TestMetricsLoopDown: a scrape the loop does not answer reports
// vigil_loop_up 0 and none of the loop's metrics.
func TestMetricsLoopDown(t *testing.T) {
	d, _ := newTestDaemon(t) // no loop runs the calls
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := &agentCollector{d: d, ctx: ctx, fences: &fenceTally{}}
	if n := testutil.CollectAndCount(c, "vigil_loop_up", "vigil_peer_state", "vigil_build_info"); n != 2 {
		t.Errorf("%d series of vigil_loop_up, vigil_peer_state and vigil_build_info, want 2 (no peer states)", n)
	}
	if v, ok := gatherValue(t, c, "vigil_loop_up"); !ok || v != 0 {
		t.Errorf("vigil_loop_up = %v (found %v), want 0", v, ok)
	}
}

// TestMetricsEndpoint scrapes the endpoint over HTTP.
func TestMetricsEndpoint(t *testing.T) {
	d := metricsDaemon(t)
	d.opts.Metrics = "127.0.0.1:0"
	m, err := d.serveMetrics()
	if err != nil {
		t.Fatalf("serveMetrics: %v", err)
	}
	t.Cleanup(m.Close)
	resp, err := http.Get("http://" + m.Addr() + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s\n%s", resp.Status, body)
	}
	for _, line := range []string{
		`vigil_peer_state{peer="h2",state="alive"} 1`,
		`vigil_fences_total{method="bmc"} 1`,
		`vigil_loop_up 1`,
		`vigil_fence_duration_seconds_bucket{le="2"} 0`,
		`vigil_fence_duration_seconds_bucket{le="5"} 1`,
		`vigil_fence_duration_seconds_sum 3`,
		`go_goroutines `,
		`process_resident_memory_bytes `,
	} {
		if !strings.Contains(string(body), "\n"+line) {
			t.Errorf("the scrape has no line %q", line)
		}
	}
}

// TestMetricsBindFailure: an address in use stops the start with an error
// naming it and the flag.
func TestMetricsBindFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d, _ := newTestDaemon(t)
	d.opts.Metrics = ln.Addr().String()
	m, err := d.serveMetrics()
	if err == nil {
		m.Close()
		t.Fatal("serveMetrics on a port in use succeeded")
	}
	for _, s := range []string{"cannot listen on " + ln.Addr().String(), "address already in use", "--metrics"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	d.opts.Metrics = ""
	if m, err := d.serveMetrics(); m != nil || err != nil {
		t.Errorf("serveMetrics with no address = %v, %v; want nothing", m, err)
	}
}

// TestFenceTally: a fence counts once, and stays counted after its incident
// leaves the log.
func TestFenceTally(t *testing.T) {
	var f fenceTally
	bmc := &cluster.Incident{ID: cluster.IncidentID{Host: 1, Seq: 1}, Decided: 2 * time.Second,
		Proof: cluster.Proof{Kind: cluster.ProofBMCOff, At: 5 * time.Second}}
	released := &cluster.Incident{ID: cluster.IncidentID{Host: 2, Seq: 1}, Proof: cluster.Proof{Kind: cluster.ProofReleased}}
	for i, step := range []struct {
		list     []*cluster.Incident
		bmc      uint64
		fencing  int
		leftSeen int
	}{
		{[]*cluster.Incident{released}, 0, 0, 0},
		{[]*cluster.Incident{released, bmc}, 1, 0, 1},
		{[]*cluster.Incident{released, bmc}, 1, 0, 1},
		{nil, 1, 0, 0},
	} {
		done, fencing, took := f.update(step.list)
		if done["bmc"] != step.bmc || done["lease"] != 0 || fencing != step.fencing || len(f.seen) != step.leftSeen {
			t.Errorf("step %d: %v, %d in progress, %d remembered; want bmc %d, %d, %d", i, done, fencing, len(f.seen), step.bmc, step.fencing, step.leftSeen)
		}
		// The BMC fence took 3 s from the verdict to the proof.
		wantSum, want2, want5 := 3*float64(step.bmc), uint64(0), step.bmc
		if took.count != step.bmc || took.sum != wantSum || took.buckets[2] != want2 || took.buckets[5] != want5 || len(took.buckets) != len(fenceBuckets) {
			t.Errorf("step %d: durations %+v; want %d of 3 s", i, took, step.bmc)
		}
	}
}
