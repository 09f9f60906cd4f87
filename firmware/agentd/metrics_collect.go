//go:build !vigil_nometrics

package agentd

import (
	"context"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-ha/vigil/fence/cluster"
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("vigil_"+name, help, labels, nil)
}

// The agent's metrics. Every state metric lists each possible state, 1 for
// the current one, so that an alert can match the state it wants.
var (
	descBuild      = desc("build_info", "The agent's version: always 1.", "version", "goversion")
	descUptime     = desc("uptime_seconds", "Seconds since the agent started.")
	descLoop       = desc("loop_up", "1 when the agent's loop answered this scrape within 2 s; the other vigil_ metrics but build_info and uptime are missing when 0.")
	descSelf       = desc("self_state", "This host's verdict about itself: 1 for the current state.", "state")
	descHeld       = desc("held", "1 while the host waits for an operator ('vigil rejoin') and runs nothing.")
	descMaint      = desc("maintenance", "1 while this host is in maintenance.")
	descCoord      = desc("coordinator", "1 while this host is the cluster's coordinator.")
	descLease      = desc("lease_state", "This host's lease: 1 for the current state.", "state")
	descPeer       = desc("peer_state", "This host's verdict about a peer: 1 for the current state.", "peer", "state")
	descPeerSilent = desc("peer_silent_seconds", "Seconds a peer has been silent on every link (0 while heard on one).", "peer")
	descLinkUp     = desc("peer_link_up", "1 when a peer's link is up, 0 when suspect or down.", "peer", "link")
	descLinkAgo    = desc("peer_link_silence_seconds", "Seconds since the last heartbeat from a peer on a link (missing until one is heard).", "peer", "link")
	descLinkTO     = desc("peer_link_timeout_seconds", "The adaptive timeout in force on a peer's link.", "peer", "link")
	descCarrier    = desc("link_carrier", "1 when this host's NIC of a link has carrier.", "link", "device")
	descDrops      = desc("heartbeats_dropped_total", "Heartbeats received and dropped, per reason.", "reason")
	descSendErr    = desc("heartbeat_send_errors_total", "Heartbeat sends that failed, per link (a NIC without carrier).", "link")
	descPets       = desc("watchdog_pets_total", "Hardware watchdog pets since the agent started.")
	descDSUp       = desc("datastore_up", "1 when this host reads and writes a datastore, 0 when its I/O fails or hangs.", "datastore")
	descDSRenew    = desc("datastore_lease_renewal_age_seconds", "Seconds since the last counted renewal of this host's lease on a datastore (missing before the first).", "datastore")
	descVMs        = desc("vms", "VMs this host claims, per state.", "state")
	descFences     = desc("fences_total", "Fences this host completed as coordinator, per method (bmc: power-off read back off; lease: lease and watchdog deadlines passed).", "method")
	descFenceTime  = desc("fence_duration_seconds", "Seconds from a peer's failed verdict to its fence proof, of the fences this host completed as coordinator.")
	descFencing    = desc("fences_in_progress", "Fences this host started as coordinator that have no proof yet.")
	descBMCUp      = desc("bmc_up", "1 when a peer's BMC answered the last probe or request (missing before the first).", "peer")
	descKernel     = desc("kernel_feature_active", "1 when an eBPF evidence feature is active, 0 when its user-space fallback stands in.", "feature", "mode")
)

var (
	selfStates  = []string{cluster.SelfStarting.String(), cluster.Healthy.String(), cluster.SelfIsolated.String(), cluster.DatastoreLost.String()}
	leaseStates = []string{"none", "fresh", "held", "lapsed"}
	peerStates  = []string{cluster.Unknown.String(), cluster.Alive.String(), cluster.Suspect.String(), cluster.Partitioned.String(), cluster.Isolated.String(), cluster.Failed.String()}
	vmStates    = []string{cluster.Claiming.String(), cluster.Starting.String(), cluster.Running.String(), cluster.Released.String()}
)

// agentCollector gathers the agent's metrics at scrape time, through its
// loop.
type agentCollector struct {
	d      *daemon
	ctx    context.Context // the scrape's
	fences *fenceTally
}

// Describe sends every metric's description.
func (c *agentCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBuild, descUptime, descLoop, descSelf, descHeld, descMaint, descCoord, descLease,
		descPeer, descPeerSilent, descLinkUp, descLinkAgo, descLinkTO, descCarrier, descDrops, descSendErr, descPets,
		descDSUp, descDSRenew, descVMs, descFences, descFenceTime, descFencing, descBMCUp, descKernel} {
		ch <- d
	}
}

// Collect takes a status snapshot on the loop and sends the metrics.
func (c *agentCollector) Collect(ch chan<- prometheus.Metric) {
	d := c.d
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	counter := func(desc *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descBuild, 1, Version, runtime.Version())
	gauge(descUptime, time.Since(d.start).Seconds())
	ctx, cancel := context.WithTimeout(c.ctx, scrapeTimeout)
	defer cancel()
	var rep StatusReply
	if err := d.call(ctx, func() { rep = d.statusReply() }); err != nil {
		d.log.Warn("metrics: the agent's loop did not answer the scrape", "component", "metrics", "err", err)
		gauge(descLoop, 0)
		return
	}
	gauge(descLoop, 1)
	s := rep.Status
	oneOf(gauge, descSelf, selfStates, s.Self)
	gauge(descHeld, bool01(rep.Held != ""))
	gauge(descMaint, bool01(s.Maintenance))
	gauge(descCoord, bool01(s.Coordinator == s.Host))
	oneOf(gauge, descLease, leaseStates, s.Lease)
	for _, p := range s.Peers {
		oneOf(gauge, descPeer, peerStates, p.Verdict, p.Name)
		gauge(descPeerSilent, p.Silent.Seconds(), p.Name)
		for l, ls := range p.Links {
			link := d.linkName(l)
			gauge(descLinkUp, bool01(ls.State == "up"), p.Name, link)
			gauge(descLinkTO, ls.Timeout.Seconds(), p.Name, link)
			if ls.Heard {
				gauge(descLinkAgo, ls.Ago.Seconds(), p.Name, link)
			}
		}
	}
	for l, up := range s.Carrier {
		dev := ""
		if l < len(rep.Links) {
			dev = rep.Links[l]
		}
		gauge(descCarrier, bool01(up), d.linkName(l), dev)
	}
	for _, r := range sortedKeys(rep.Drops) {
		counter(descDrops, rep.Drops[r], r)
	}
	for l, n := range rep.SendErrors {
		counter(descSendErr, n, d.linkName(l))
	}
	counter(descPets, rep.Pets)
	for i, ds := range s.Datastores {
		name := d.datastoreName(i)
		gauge(descDSUp, bool01(!ds.Failing && !ds.Down), name)
		if ds.Renewed >= 0 {
			gauge(descDSRenew, ds.Renewed.Seconds(), name)
		}
	}
	vms := map[string]int{}
	for _, v := range s.VMs {
		vms[v.State]++
	}
	for _, st := range vmStates {
		gauge(descVMs, float64(vms[st]), st)
	}
	done, fencing, took := c.fences.update(d.incidents.list())
	for _, m := range []string{"bmc", "lease"} {
		counter(descFences, done[m], m)
	}
	ch <- prometheus.MustNewConstHistogram(descFenceTime, took.count, took.sum, took.buckets)
	gauge(descFencing, float64(fencing))
	for _, b := range rep.BMCs {
		if !b.Checked.IsZero() {
			gauge(descBMCUp, bool01(b.OK), b.Host)
		}
	}
	for _, f := range rep.Kernel {
		gauge(descKernel, bool01(f.Active), f.Name, f.Mode)
	}
}

// oneOf sends desc for each of states, 1 for current and 0 for the others;
// labels come before the state label.
func oneOf(gauge func(*prometheus.Desc, float64, ...string), desc *prometheus.Desc, states []string, current string, labels ...string) {
	for _, st := range states {
		gauge(desc, bool01(st == current), append(labels[:len(labels):len(labels)], st)...)
	}
}

func (d *daemon) linkName(l int) string {
	if l >= 0 && l < len(d.cfg.Links) && d.cfg.Links[l].Name != "" {
		return d.cfg.Links[l].Name
	}
	return "link" + strconv.Itoa(l)
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func sortedKeys(m map[string]uint64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// fenceTally counts the fences this host completed as coordinator: each
// incident of its incident log whose proof is a BMC power-off or the lease
// deadlines, once. It is safe for concurrent use.
type fenceTally struct {
	mu   sync.Mutex
	seen map[cluster.IncidentID]bool // counted incidents still in the log
	done map[string]uint64           // per method
	took fenceTimes
}

// fenceBuckets are the upper bounds, in seconds, of the fence duration
// histogram: a BMC fence takes seconds, a lease proof tens of seconds.
var fenceBuckets = []float64{0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300}

// fenceTimes is the fence duration histogram.
type fenceTimes struct {
	count   uint64
	sum     float64
	buckets map[float64]uint64 // cumulative
}

func (h *fenceTimes) observe(v float64) {
	h.count++
	h.sum += v
	for _, b := range fenceBuckets {
		if v <= b {
			h.buckets[b]++
		}
	}
}

// update counts the fences of incidents not seen before and returns the
// totals, how many fences have started without a proof yet, and the
// duration histogram.
func (f *fenceTally) update(list []*cluster.Incident) (done map[string]uint64, inProgress int, took fenceTimes) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.seen == nil {
		f.seen, f.done = map[cluster.IncidentID]bool{}, map[string]uint64{}
		f.took.buckets = make(map[float64]uint64, len(fenceBuckets))
		for _, b := range fenceBuckets {
			f.took.buckets[b] = 0
		}
	}
	live := make(map[cluster.IncidentID]bool, len(list))
	for _, x := range list {
		live[x.ID] = true
		var method string
		switch x.Proof.Kind {
		case cluster.ProofBMCOff:
			method = "bmc"
		case cluster.ProofLease:
			method = "lease"
		default:
			if x.Fence.Started > 0 && !x.Closed {
				inProgress++
			}
			continue
		}
		if !f.seen[x.ID] {
			f.seen[x.ID] = true
			f.done[method]++
			if x.Decided > 0 && x.Proof.At >= x.Decided {
				f.took.observe((x.Proof.At - x.Decided).Seconds())
			}
		}
	}
	for id := range f.seen {
		if !live[id] {
			delete(f.seen, id) // gone from the log: it cannot come back
		}
	}
	out := make(map[string]uint64, len(f.done))
	for m, n := range f.done {
		out[m] = n
	}
	took = f.took
	took.buckets = make(map[float64]uint64, len(f.took.buckets))
	for b, n := range f.took.buckets {
		took.buckets[b] = n
	}
	return out, inProgress, took
}
