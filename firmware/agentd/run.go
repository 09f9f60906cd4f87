package agentd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/drivers/datastore"
	"github.com/vigil-ha/vigil/drivers/hv"
	"github.com/vigil-ha/vigil/drivers/nic"
	"github.com/vigil-ha/vigil/drivers/watchdog"
	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/firmware/agent"
	"github.com/vigil-ha/vigil/firmware/config"
	"github.com/vigil-ha/vigil/hb"
)

// daemon is one running agent.
type daemon struct {
	opts  Options
	log   *slog.Logger
	cfg   *config.Config
	spec  *cluster.Spec
	self  int
	start time.Time

	node *cluster.Node
	ag   *agent.Agent

	codec    *hb.Codec // the loop's, for sending
	sendBuf  []byte
	keys     *keyState
	nics     nic.Links
	gateway  []bool
	stores   []datastore.Store
	hv       hv.Hypervisor
	guests   guests    // the QEMU VMs' guest monitoring
	services *services // the host daemons watched ([[services]]); nil: none
	wd       watchdog.Device

	events  chan cluster.Event
	calls   chan func()
	readers []*reader // per link, on the loop

	drops      hb.Counters
	sendErrors []uint64
	pets       uint64
	lastPet    time.Duration
	onceMu     sync.Mutex
	once       map[string]bool
	fatal      error // set once the agent must stop: it stops cleanly, then Run returns it

	incidents incidentLog // incidents.go: the incidents this host recorded as coordinator
	bmcs      []*bmcConn  // bmc.go: each peer's BMC, nil where none
	probeCtx  context.Context
	// held says why the host waits for an operator (resets.go); the core
	// does not run meanwhile. Loop only.
	held string
	// local is this host's own BMC when --self-fence uses it
	// (selffence.go); selfFenced once it was asked to act.
	local      localBMC
	selfFenced bool
	// petStopped says why the watchdog is no longer petted on purpose (an
	// operator's fence-self), or "".
	petStopped string
	ring       *logRing // the last log lines, for the console
	ownBMC     string   // who this host's own BMC is ("": no in-band device)

	kern    *kernel   // kernel.go: the eBPF evidence
	drainAt time.Time // when the drain in progress started
	delay   time.Duration
	readN   int // datagrams read since the last LocalHealth
}

// keyState is the cluster keyring the NIC readers decode with; SIGHUP
// reloads it.
type keyState struct {
	mu   sync.Mutex
	ring *hb.Keyring
	gen  int
}

func (k *keyState) get() (*hb.Keyring, int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.ring, k.gen
}

func (k *keyState) set(r *hb.Keyring) {
	k.mu.Lock()
	k.ring = r
	k.gen++
	k.mu.Unlock()
}

// Run runs the agent until ctx ends or SIGTERM/SIGINT, then stops cleanly:
// it stops and releases its VMs, writes the release to the datastores and
// disarms the watchdog.
func Run(ctx context.Context, opts Options) error {
	if err := opts.fill(); err != nil {
		return err
	}
	d, err := setup(opts)
	if err != nil {
		return err
	}
	defer d.close()
	return d.loop(ctx)
}

func setup(opts Options) (*daemon, error) {
	cfg, err := config.Load(opts.Config)
	if err != nil {
		// Every timing rule is checked here, before any watchdog is armed.
		return nil, fmt.Errorf("agent: %s: %w", opts.Config, err)
	}
	self, ok := cfg.HostByName(opts.Host)
	if !ok {
		return nil, fmt.Errorf("agent: host %q is not in %s: pass --host with one of the [[hosts]] names", opts.Host, opts.Config)
	}
	d := &daemon{opts: opts, cfg: cfg, spec: cfg.Spec(), self: self, start: time.Now(), once: map[string]bool{},
		events: make(chan cluster.Event, 256), calls: make(chan func())}
	d.ring = newLogRing(logLines)
	d.log = slog.New(&ringHandler{next: opts.Logger.Handler(), ring: d.ring}).With("host", opts.Host)
	ring, err := hb.LoadKeyFile(cfg.Cluster.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	d.keys = &keyState{ring: ring}
	d.codec = hb.NewCodec(hb.ClusterID(cfg.Cluster.Name), ring)
	if err := checkWatchdog(opts.Watchdog); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.State, 0o700); err != nil {
		return nil, fmt.Errorf("agent: state folder: %w", err)
	}
	if err := d.openSelfFence(opts.SelfFence, opts.IPMIDevice); err != nil {
		return nil, err
	}
	if d.held = d.checkResets(time.Now()); d.held != "" {
		d.log.Error("held: "+d.held, "component", "wd")
	}
	badSlot := func(err error) {
		d.logOnce("slot:"+err.Error(), slog.LevelWarn, "ignoring a bad datastore slot", "component", "ds", "err", err)
	}
	if err := overridePaths(cfg, opts.DatastorePaths); err != nil {
		return nil, err
	}
	for _, ds := range cfg.Datastores {
		st, err := d.openStore(ds, badSlot)
		if err != nil {
			d.closeStores()
			return nil, err
		}
		d.stores = append(d.stores, st)
	}
	d.openBMCs(opts.DialBMC)
	d.hv, err = d.openHypervisors()
	if err != nil {
		d.closeStores()
		return nil, fmt.Errorf("agent: hypervisor: %w", err)
	}
	running, err := d.hv.Running()
	if err != nil {
		d.closeStores()
		return nil, fmt.Errorf("agent: hypervisor: %w", err)
	}
	var runIdx []int
	for _, name := range running {
		if v := d.vmIndex(name); v >= 0 {
			runIdx = append(runIdx, v)
		} else {
			d.log.Warn("a VM process runs that the cluster file does not list: left alone", "component", "vm", "vm", name)
		}
	}
	inc, err := nextIncarnation(opts.State, time.Now())
	if err != nil {
		return nil, err
	}
	if err := d.openKernel(); err != nil {
		d.kern.close()
		d.hv.Close()
		d.closeStores()
		return nil, err
	}
	d.node = cluster.NewNode(cluster.Config{Spec: d.spec, Self: self, Incarnation: inc, Running: runIdx,
		WatchdogArmed: watchdogMarked(opts.State)})
	d.ag = agent.New(d.node, env{d})
	if err := d.openNICs(); err != nil {
		d.kern.close()
		d.hv.Close()
		d.closeStores()
		return nil, err
	}
	if err := d.attachStamping(); err != nil {
		if err = d.stampingFailed(err); err != nil {
			d.nics.Close()
			d.kern.close()
			d.hv.Close()
			d.closeStores()
			return nil, err
		}
	}
	d.guests.d = d
	for _, v := range runIdx {
		d.guests.start(v) // adopted: its guest is watched again
	}
	d.log.Info("agent started", "component", "agent", "incarnation", inc, "links", len(cfg.Links),
		"peers", len(cfg.Hosts)-1, "vms_running", len(runIdx), "config", opts.Config)
	return d, nil
}

func (d *daemon) openNICs() error {
	c := nic.Config{Port: d.cfg.Cluster.Port}
	d.gateway = make([]bool, len(d.cfg.Links))
	d.sendErrors = make([]uint64, len(d.cfg.Links))
	for l, link := range d.cfg.Links {
		lc := nic.LinkConfig{Peers: make([]netip.Addr, len(d.cfg.Hosts))}
		for h, host := range d.cfg.Hosts {
			a, err := netip.ParseAddr(host.Addresses[l])
			if err != nil {
				return fmt.Errorf("agent: hosts[%d].addresses[%d]: %w", h, l, err)
			}
			if h == d.self {
				lc.Local = a
			} else {
				lc.Peers[h] = a
			}
		}
		if link.IsolationAddress != "" {
			g, err := netip.ParseAddr(link.IsolationAddress)
			if err != nil {
				return fmt.Errorf("agent: links[%d].isolation_address: %w", l, err)
			}
			lc.Gateway, d.gateway[l] = g, true
		}
		c.Links = append(c.Links, lc)
	}
	n, err := nic.Open(c)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	d.nics = n
	d.readers = make([]*reader, len(c.Links))
	for l := range d.readers {
		d.readers[l] = d.newReader(l)
	}
	// No reader goroutines: the loop drains the sockets on its own
	// schedule (see loop), so a heartbeat costs no wake-up of its own.
	n.Run(nil, func(ev nic.LinkEvent) {
		d.post(cluster.LinkChanged{Link: ev.Link, Up: ev.Up})
	})
	return nil
}

// post hands an event to the loop; workers block rather than lose one.
func (d *daemon) post(ev cluster.Event) { d.events <- ev }

func (d *daemon) vmIndex(name string) int {
	for v := range d.spec.VMs {
		if d.spec.VMs[v].Name == name {
			return v
		}
	}
	return -1
}

func (d *daemon) hostName(h int) string {
	if h < 0 || h >= len(d.spec.Hosts) {
		return "none"
	}
	return d.spec.Hosts[h].Name
}

// logOnce logs a repeating failure the first time only.
func (d *daemon) logOnce(key string, level slog.Level, msg string, args ...any) {
	d.onceMu.Lock()
	seen := d.once[key]
	d.once[key] = true
	d.onceMu.Unlock()
	if seen {
		return
	}
	d.log.Log(context.Background(), level, msg, args...)
}

func (d *daemon) loop(ctx context.Context) error {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	api, err := d.serveAPI()
	if err != nil {
		return err
	}
	defer api.Close()
	metrics, err := d.serveMetrics()
	if err != nil {
		return err
	}
	defer metrics.Close()
	probes, stopProbes := context.WithCancel(ctx)
	defer stopProbes()
	d.probeCtx = probes
	d.probeBMCs(probes, d.opts.BMCProbe)
	if err := d.openServices(probes); err != nil {
		return err
	}
	defer d.services.close()
	// The loop wakes drainsPerTick times a heartbeat interval to take the
	// heartbeats queued in the sockets (their kernel stamps keep the
	// detector exact), and ticks the core on every drainsPerTick-th.
	drain := time.NewTicker(d.spec.Timing.Heartbeat / drainsPerTick)
	defer drain.Stop()
	if d.held == "" {
		d.ag.Handle(cluster.Tick{})
	}
	var stopBy time.Time
	done := ctx.Done()
	for n := 1; ; {
		select {
		case <-drain.C:
			if d.held != "" {
				continue // nothing runs until an operator lets the host rejoin
			}
			n++
			tick := n%drainsPerTick == 0
			if tick {
				d.snapshot() // the kernel's counts, before the sockets are drained
			}
			d.drain()
			if tick {
				d.ag.Handle(d.localHealth(env{d}.Now()))
				d.ag.Handle(cluster.Tick{})
				d.warmBMCs()
				d.selfFence()
			}
		case ev := <-d.events:
			d.ag.Handle(ev)
		case f := <-d.calls:
			f()
		case s := <-sigs:
			if s == syscall.SIGHUP {
				d.reloadKeys()
				continue
			}
			if d.held != "" {
				d.log.Info("stopped while held: nothing ran", "component", "agent", "signal", s.String())
				return nil
			}
			if stopBy.IsZero() {
				d.log.Info("stop requested", "component", "agent", "signal", s.String())
				stopBy = time.Now().Add(d.opts.StopTimeout)
				d.ag.Handle(cluster.Command{Name: "shutdown"})
			}
		case <-done:
			if d.held != "" {
				return nil
			}
			done = nil
			if stopBy.IsZero() {
				stopBy = time.Now().Add(d.opts.StopTimeout)
				d.ag.Handle(cluster.Command{Name: "shutdown"})
			}
		}
		if d.fatal != nil && stopBy.IsZero() {
			stopBy = time.Now().Add(d.opts.StopTimeout)
			d.ag.Handle(cluster.Command{Name: "shutdown"})
		}
		if stopBy.IsZero() {
			continue
		}
		if d.node.Released() {
			d.disarm()
			d.log.Info("stopped: every VM released", "component", "agent")
			if d.fatal != nil {
				return fmt.Errorf("agent: %w", d.fatal)
			}
			return nil
		}
		if time.Now().After(stopBy) {
			d.abandon()
			return fmt.Errorf("agent: could not release its VMs within %s: exiting with the watchdog armed, so the host is reset and peers restart its VMs after the lease proof", d.opts.StopTimeout)
		}
	}
}

// drainsPerTick is how many times per heartbeat interval the loop reads
// the sockets: a new view (an assignment) waits at most a quarter interval.
const drainsPerTick = 1

func (d *daemon) drain() {
	d.drainAt = time.Now()
	if _, err := d.nics.Drain(d.packet); err != nil {
		d.logOnce("drain:"+err.Error(), slog.LevelError, "reading heartbeats failed", "component", "hb", "err", err)
	}
}

func (d *daemon) packet(link int, data []byte, from netip.AddrPort, at time.Time) {
	d.readN++
	d.delay = max(d.delay, d.drainAt.Sub(at))
	if d.kern != nil && d.kern.seen != nil {
		d.kern.readFrom(link, from.Addr())
	}
	d.readers[link].packet(data, at.Sub(d.start))
}

// failStop has the agent stop cleanly because of err: the loop, once back
// from the step in progress, has the core release every VM, and Run returns
// err once the release is written.
func (d *daemon) failStop(err error) {
	if d.fatal != nil {
		return
	}
	d.fatal = err
	d.log.Error("stopping: this host cannot run VMs safely", "component", "agent", "err", err)
}

func (d *daemon) reloadKeys() {
	ring, err := hb.LoadKeyFile(d.cfg.Cluster.KeyFile)
	if err != nil {
		d.log.Error("key reload failed: keeping the current keys", "component", "hb", "err", err)
		return
	}
	d.keys.set(ring)
	d.codec.SetKeyring(ring)
	d.log.Info("cluster keys reloaded", "component", "hb", "keys", ring.Len())
}

func (d *daemon) disarm() {
	if d.wd == nil {
		return
	}
	if err := d.wd.Close(); err != nil {
		d.log.Error("watchdog disarm failed: the host may be reset", "component", "wd", "err", err)
		return
	}
	d.wd = nil
	if err := markWatchdog(d.opts.State, false); err != nil {
		d.log.Error("cannot clear the watchdog marker", "component", "wd", "err", err)
	}
	d.log.Info("watchdog disarmed", "component", "wd")
}

func (d *daemon) abandon() {
	if d.wd != nil {
		_ = d.wd.Abandon()
		d.wd = nil
	}
}

func (d *daemon) close() {
	if d.nics != nil {
		d.nics.Close()
	}
	if d.wd != nil {
		d.abandon()
	}
	d.kern.close()
	d.guests.stopAll()
	d.hv.Close()
	d.closeStores()
	d.closeBMCs()
	if d.local != nil {
		d.local.Close()
	}
}

// closeStores releases the datastores that hold a device open.
func (d *daemon) closeStores() {
	for _, st := range d.stores {
		if c, ok := st.(interface{ Close() error }); ok {
			c.Close()
		}
	}
}

// errStopped is returned by API calls once the loop is gone.
var errStopped = errors.New("agent: stopping")
