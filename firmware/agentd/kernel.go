package agentd

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/drivers/ebpf"
	"github.com/vigil-ha/vigil/drivers/hv/proc"
	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/firmware/config"
)

// Kernel evidence features, as vigil status and vigil ebpf name them.
const (
	FeatureStamping = "stamping"
	FeatureBlockIO  = "block_io"
	FeatureExits    = "exits"
)

// FeatureStatus is one kernel evidence feature on this host.
type FeatureStatus struct {
	Name   string // stamping, block_io, exits
	Mode   string // auto, on, off (the cluster file's, or --ebpf's)
	Active bool
	// Detail says what it watches when active, or why it is not.
	Detail string
	// Fallback is the user-space evidence that stands in (always there;
	// the only evidence when not active).
	Fallback string
}

var fallbacks = map[string]string{
	FeatureStamping: "socket receive stamps (SO_TIMESTAMPNS) and the loop's own tick gaps",
	FeatureBlockIO:  "the I/O timeout of each datastore read and write",
	FeatureExits:    "pidfds",
}

// kernel is this agent's eBPF evidence; each part is nil when its feature
// is off or unsupported. The loop owns everything but the exit and block
// I/O readers, which only post events and update their own counters.
type kernel struct {
	features  []FeatureStatus
	monoStart time.Duration // ebpf.Monotonic() at the agent's start: node time = mono - monoStart

	stamper *ebpf.Stamper
	buf     []ebpf.Stamp
	links   []stampLink
	seen    [][]seenCount // [host][link]

	blk    *ebpf.BlockIO
	blkDS  map[uint64][]int // device -> datastores on it
	blkMu  sync.Mutex
	blkEvs map[uint64]ebpf.DevEvent // last event per device

	exits   *ebpf.Exits
	exitMu  sync.Mutex
	exitN   uint64
	exitLag []time.Duration // kernel exit to agent, the last exitLagKeep
	exitLog []string

	wg sync.WaitGroup
}

// stampLink maps one link's device and peer addresses to hosts.
type stampLink struct {
	ifindex int
	dev     string
	hosts   map[netip.Addr]int
}

// seenCount is one peer's heartbeats on one link: as the kernel counted
// them and as the agent read them.
type seenCount struct {
	kernel uint64        // the kernel's count at the last snapshot
	at     time.Duration // the kernel's last arrival (node time)
	read   uint64        // datagrams the agent read from the peer's address
	hwm    int64         // the highest kernel-minus-agent gap reported so far
	base   bool          // hwm holds a baseline
	unread uint64        // heartbeats the agent never read, in all
}

const exitLagKeep = 64

// ParseEBPF parses --ebpf FEATURE=MODE into o.
func ParseEBPF(o map[string]string, v string) error {
	name, mode, ok := strings.Cut(v, "=")
	switch {
	case !ok:
		return fmt.Errorf("--ebpf %q: want FEATURE=MODE, e.g. --ebpf stamping=off", v)
	case fallbacks[name] == "":
		return fmt.Errorf("--ebpf %q: unknown feature %q: use stamping, block_io or exits", v, name)
	case mode != config.FeatureAuto && mode != config.FeatureOn && mode != config.FeatureOff:
		return fmt.Errorf("--ebpf %q: unknown mode %q: use auto, on or off", v, mode)
	}
	o[name] = mode
	return nil
}

// modes returns each feature's mode: the cluster file's, overridden by
// --ebpf.
func (d *daemon) modes() map[string]string {
	m := map[string]string{FeatureStamping: d.cfg.EBPF.Stamping, FeatureBlockIO: d.cfg.EBPF.BlockIO, FeatureExits: d.cfg.EBPF.Exits}
	for k, v := range d.opts.EBPF {
		m[k] = v
	}
	for k, v := range m {
		if v == "" {
			m[k] = config.FeatureAuto
		}
	}
	return m
}

// choose decides one feature: whether to open it, or why not. An error
// means the agent cannot start (the feature is required and unavailable).
func choose(name, mode string, support error) (open bool, why string, err error) {
	switch {
	case mode == config.FeatureOff:
		return false, "off in the configuration", nil
	case support == nil:
		return true, "", nil
	case mode == config.FeatureOn:
		return false, "", fmt.Errorf("agent: ebpf %s is \"on\" but this host cannot run it: %w (set %s = \"auto\" under [ebpf] to fall back to %s)", name, support, name, fallbacks[name])
	}
	return false, support.Error(), nil
}

// openKernel probes the kernel and opens each feature its mode asks for.
// Stamping is attached later, once the NICs are open (attachStamping).
func (d *daemon) openKernel() error {
	k := &kernel{monoStart: ebpf.Monotonic() - time.Since(d.start), blkDS: map[uint64][]int{}, blkEvs: map[uint64]ebpf.DevEvent{}}
	d.kern = k
	modes := d.modes()
	var sup ebpf.Support
	if modes[FeatureStamping] != config.FeatureOff || modes[FeatureBlockIO] != config.FeatureOff || modes[FeatureExits] != config.FeatureOff {
		if err := ebpf.MountFS(); err != nil {
			d.log.Warn("cannot mount the file systems eBPF needs", "component", "ebpf", "err", err)
		}
		sup = ebpf.Probe()
	}
	for _, f := range []struct {
		name    string
		support error
		open    func() (string, error)
	}{
		{FeatureStamping, sup.Stamping, d.openStamper},
		{FeatureBlockIO, sup.BlockIO, d.openBlockIO},
		{FeatureExits, sup.Exits, d.openExits},
	} {
		fs := FeatureStatus{Name: f.name, Mode: modes[f.name], Fallback: fallbacks[f.name]}
		open, why, err := choose(f.name, fs.Mode, f.support)
		if err != nil {
			return err
		}
		if open {
			detail, err := f.open()
			switch {
			case err != nil && fs.Mode == config.FeatureOn:
				return fmt.Errorf("agent: ebpf %s: %w", f.name, err)
			case err != nil:
				why = err.Error()
			default:
				fs.Active, why = true, detail
			}
		}
		fs.Detail = why
		k.features = append(k.features, fs)
		if fs.Active {
			d.log.Info("kernel evidence on", "component", "ebpf", "feature", f.name, "detail", fs.Detail)
		} else {
			d.log.Warn("kernel evidence off: falling back", "component", "ebpf", "feature", f.name, "why", fs.Detail, "fallback", fs.Fallback)
		}
	}
	return nil
}

func (d *daemon) openStamper() (string, error) {
	s, err := ebpf.NewStamper(uint16(d.cfg.Cluster.Port))
	if err != nil {
		return "", err
	}
	d.kern.stamper = s
	return "attached once the NICs are open", nil
}

// attachStamping attaches the stamper to every link's device and maps each
// peer's address there to its host.
func (d *daemon) attachStamping() error {
	k := d.kern
	if k == nil || k.stamper == nil {
		return nil
	}
	k.seen = make([][]seenCount, len(d.cfg.Hosts))
	for h := range k.seen {
		k.seen[h] = make([]seenCount, len(d.cfg.Links))
	}
	var devs []string
	for l := range d.cfg.Links {
		dev := d.nics.Device(l)
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return fmt.Errorf("link %d: device %s: %w", l, dev, err)
		}
		if err := k.stamper.Attach(ifi.Index); err != nil {
			return err
		}
		sl := stampLink{ifindex: ifi.Index, dev: dev, hosts: map[netip.Addr]int{}}
		for h, host := range d.cfg.Hosts {
			if a, err := netip.ParseAddr(host.Addresses[l]); err == nil && h != d.self {
				sl.hosts[a.Unmap()] = h
			}
		}
		k.links = append(k.links, sl)
		devs = append(devs, dev)
	}
	k.feature(FeatureStamping).Detail = "TCX ingress on " + strings.Join(devs, ", ")
	return nil
}

func (k *kernel) feature(name string) *FeatureStatus {
	for i := range k.features {
		if k.features[i].Name == name {
			return &k.features[i]
		}
	}
	return &FeatureStatus{}
}

// stampingFailed turns stamping off after its attachment failed.
func (d *daemon) stampingFailed(err error) error {
	k := d.kern
	f := k.feature(FeatureStamping)
	if f.Mode == config.FeatureOn {
		return fmt.Errorf("agent: ebpf stamping: %w", err)
	}
	k.stamper.Close()
	k.stamper, k.links, k.seen = nil, nil, nil
	f.Active, f.Detail = false, err.Error()
	d.log.Warn("kernel evidence off: falling back", "component", "ebpf", "feature", FeatureStamping, "why", f.Detail, "fallback", f.Fallback)
	return nil
}

// readFrom counts a datagram the agent read from addr on link l.
func (k *kernel) readFrom(l int, addr netip.Addr) {
	if l >= len(k.links) {
		return
	}
	if h, ok := k.links[l].hosts[addr.Unmap()]; ok {
		k.seen[h][l].read++
	}
}

// snapshot reads the kernel's counts. It runs just before the sockets are
// drained, so that every heartbeat it counts was either queued for the
// agent by then or lost on the way.
func (d *daemon) snapshot() {
	k := d.kern
	if k == nil || k.stamper == nil {
		return
	}
	var err error
	k.buf, err = k.stamper.Read(k.buf[:0])
	if err != nil {
		d.logOnce("stamps:"+err.Error(), slog.LevelError, "reading the kernel's heartbeat stamps failed", "component", "ebpf", "err", err)
		return
	}
	for _, s := range k.buf {
		for l := range k.links {
			if k.links[l].ifindex != s.Ifindex {
				continue
			}
			if h, ok := k.links[l].hosts[s.Addr]; ok {
				c := &k.seen[h][l]
				c.kernel, c.at = s.Count, s.Last-k.monoStart
			}
		}
	}
}

// unreadSlack is how recent a kernel arrival may be and still be judged:
// a heartbeat stamped in the last moments before the snapshot may not be
// in the socket yet.
const unreadSlack = 2 * time.Millisecond

// localHealth is the report the core gets before each tick: the longest
// wait of a heartbeat read since the last one, and the heartbeats the
// kernel received that the agent did not read.
func (d *daemon) localHealth(now time.Duration) cluster.LocalHealth {
	h := cluster.LocalHealth{Delay: max(d.delay, 0), Read: d.readN}
	d.delay, d.readN = 0, 0
	k := d.kern
	if k == nil || k.seen == nil {
		return h
	}
	for host := range k.seen {
		for l := range k.seen[host] {
			c := &k.seen[host][l]
			gap := int64(c.kernel) - int64(c.read)
			switch {
			case !c.base:
				c.hwm, c.base = gap, true
			case gap > c.hwm && c.at < now-unreadSlack:
				n := uint64(gap - c.hwm)
				c.hwm, c.unread = gap, c.unread+n
				h.Kernel = append(h.Kernel, cluster.KernelSeen{Host: host, Link: l, At: c.at, Unread: n})
			}
		}
	}
	return h
}

func (d *daemon) openBlockIO() (string, error) {
	k := d.kern
	var watched, skipped []string
	var devs []uint64
	for i, ds := range d.cfg.Datastores {
		if ds.Device == "" {
			skipped = append(skipped, ds.Name+" (a folder: its I/O timeout)")
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(ds.Device, &st); err != nil {
			skipped = append(skipped, fmt.Sprintf("%s (%v: its I/O timeout)", ds.Name, err))
			continue
		}
		if st.Mode&unix.S_IFMT != unix.S_IFBLK {
			skipped = append(skipped, ds.Name+" (not a block device: its I/O timeout)")
			continue
		}
		if k.blkDS[st.Rdev] == nil {
			devs = append(devs, st.Rdev)
		}
		k.blkDS[st.Rdev] = append(k.blkDS[st.Rdev], i)
		watched = append(watched, fmt.Sprintf("%s (%s, %d:%d)", ds.Name, ds.Device, unix.Major(st.Rdev), unix.Minor(st.Rdev)))
	}
	if len(devs) == 0 {
		k.blkDS = map[uint64][]int{}
		return "", fmt.Errorf("no datastore is a block device here: %s", strings.Join(skipped, ", "))
	}
	b, err := ebpf.NewBlockIO(ebpf.BlockOptions{Stuck: d.cfg.EBPF.Stuck.D()})
	if err != nil {
		return "", err
	}
	for _, dev := range devs {
		if err := b.Watch(dev); err != nil {
			b.Close()
			return "", err
		}
	}
	k.blk = b
	k.wg.Go(func() { d.blockEvents(b) })
	detail := "block_rq tracepoints on " + strings.Join(watched, ", ")
	if len(skipped) > 0 {
		detail += "; not on " + strings.Join(skipped, ", ")
	}
	return detail, nil
}

// blockEvents hands the kernel's judgement of each datastore device to
// the core.
func (d *daemon) blockEvents(b *ebpf.BlockIO) {
	k := d.kern
	for ev := range b.Events() {
		k.blkMu.Lock()
		k.blkEvs[ev.Dev] = ev
		k.blkMu.Unlock()
		lag := ev.At - ev.First
		if ev.Down {
			d.log.Warn("kernel: datastore device down", "component", "ebpf", "dev", devName(ev.Dev), "why", ev.Why, "after", lag.Round(time.Millisecond))
		} else {
			d.log.Info("kernel: datastore device completes I/O again", "component", "ebpf", "dev", devName(ev.Dev))
		}
		for _, ds := range k.blkDS[ev.Dev] {
			d.post(cluster.StoreIO{DS: ds, Down: ev.Down, Why: ev.Why})
		}
	}
}

func devName(dev uint64) string { return fmt.Sprintf("%d:%d", unix.Major(dev), unix.Minor(dev)) }

// exitHypervisor is a hypervisor that takes process exits from the kernel.
type exitHypervisor interface {
	UseExits(proc.Exits) error
	Exited(pid int) (name string, first bool)
}

func (d *daemon) openExits() (string, error) {
	hv, ok := d.hv.(exitHypervisor)
	if !ok {
		return "", errors.New("the hypervisor driver watches its VMs by itself")
	}
	x, err := ebpf.NewExits()
	if err != nil {
		return "", err
	}
	if err := hv.UseExits(x); err != nil {
		x.Close()
		return "", err
	}
	d.kern.exits = x
	d.kern.wg.Go(func() { d.exitEvents(hv, x) })
	return "sched_process_exit for the VM processes, through a ring buffer", nil
}

// exitEvents hands each watched process's exit to the hypervisor, which
// reports a VM's to the core.
func (d *daemon) exitEvents(hv exitHypervisor, x *ebpf.Exits) {
	k := d.kern
	for e := range x.C() {
		lag := ebpf.Monotonic() - e.At
		name, first := hv.Exited(e.Pid)
		k.exitMu.Lock()
		k.exitN++
		k.exitLag = append(k.exitLag, lag)
		if len(k.exitLag) > exitLagKeep {
			k.exitLag = k.exitLag[1:]
		}
		by := "first"
		if !first {
			by = "after its pidfd"
		}
		line := fmt.Sprintf("%s: %s (vm %s), seen after %s, %s", time.Now().Format("15:04:05.000"), e, name, lag.Round(time.Microsecond), by)
		k.exitLog = append(k.exitLog, line)
		if len(k.exitLog) > 16 {
			k.exitLog = k.exitLog[1:]
		}
		k.exitMu.Unlock()
		if name != "" {
			d.log.Info("kernel: VM process exited", "component", "ebpf", "vm", name, "pid", e.Pid, "how", e.String(),
				"seen_after", lag.Round(time.Microsecond), "first", first)
		}
	}
}

func (k *kernel) close() {
	if k == nil {
		return
	}
	if k.stamper != nil {
		k.stamper.Close()
	}
	if k.blk != nil {
		k.blk.Close()
	}
	if k.exits != nil {
		k.exits.Close()
	}
	k.wg.Wait()
}

// EBPFReply is GET /v1/ebpf: what is loaded and attached, and the live
// figures.
type EBPFReply struct {
	Features []FeatureStatus
	Programs []ebpf.ProgramInfo
	// Stamps is, per peer and link, what the kernel counted and what the
	// agent read.
	Stamps  []StampStatus
	Devices []DeviceStatus
	Exits   ExitStatus
}

// StampStatus is one peer's heartbeats on one link.
type StampStatus struct {
	Host, Link string
	Device     string
	Kernel     uint64        // heartbeats the kernel received (since the agent started)
	Read       uint64        // datagrams the agent read from the peer's address
	Unread     uint64        // heartbeats the kernel received that the agent never read
	Ago        time.Duration // since the kernel's last arrival (-1: none)
}

// DeviceStatus is one datastore device's block I/O.
type DeviceStatus struct {
	Datastores []string
	Dev        string
	Stats      ebpf.DevStats
	Last       *ebpf.DevEvent // the last down or up judgement, nil before any
	// Detect is how long after the first stuck or failed request the last
	// down judgement came.
	Detect time.Duration
}

// ExitStatus is the process-exit tracer's figures.
type ExitStatus struct {
	Watched []int
	Events  uint64
	Lost    uint64
	// Median and Max of the time from the kernel running an exit to the
	// agent knowing, over the last exits.
	Median, Max time.Duration
	Recent      []string
}

// ebpfReply runs on the loop.
func (d *daemon) ebpfReply() EBPFReply {
	k := d.kern
	var rep EBPFReply
	if k == nil {
		return rep
	}
	rep.Features = append(rep.Features, k.features...)
	now := env{d}.Now()
	if k.stamper != nil {
		rep.Programs = append(rep.Programs, k.stamper.Program())
		for h := range k.seen {
			for l := range k.seen[h] {
				if h == d.self {
					continue
				}
				c := k.seen[h][l]
				s := StampStatus{Host: d.hostName(h), Link: d.cfg.Links[l].Name, Device: k.links[l].dev,
					Kernel: c.kernel, Read: c.read, Unread: c.unread, Ago: -1}
				if c.kernel > 0 {
					s.Ago = now - c.at
				}
				rep.Stamps = append(rep.Stamps, s)
			}
		}
	}
	if k.blk != nil {
		rep.Programs = append(rep.Programs, k.blk.Programs()...)
		devs := make([]uint64, 0, len(k.blkDS))
		for dev := range k.blkDS {
			devs = append(devs, dev)
		}
		sort.Slice(devs, func(i, j int) bool { return devs[i] < devs[j] })
		for _, dev := range devs {
			ds := DeviceStatus{Dev: devName(dev)}
			for _, i := range k.blkDS[dev] {
				ds.Datastores = append(ds.Datastores, d.cfg.Datastores[i].Name)
			}
			ds.Stats, _ = k.blk.Stats(dev)
			k.blkMu.Lock()
			if ev, ok := k.blkEvs[dev]; ok {
				ds.Last = &ev
				if ev.Down {
					ds.Detect = ev.At - ev.First
				}
			}
			k.blkMu.Unlock()
			rep.Devices = append(rep.Devices, ds)
		}
	}
	if k.exits != nil {
		rep.Programs = append(rep.Programs, k.exits.Programs()...)
		k.exitMu.Lock()
		rep.Exits = ExitStatus{Watched: k.exits.Watched(), Events: k.exitN, Lost: k.exits.Lost(), Recent: append([]string(nil), k.exitLog...)}
		if n := len(k.exitLag); n > 0 {
			lags := append([]time.Duration(nil), k.exitLag...)
			sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
			rep.Exits.Median, rep.Exits.Max = lags[n/2], lags[n-1]
		}
		k.exitMu.Unlock()
	}
	return rep
}
