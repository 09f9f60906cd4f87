package sim

import (
	"log/slog"
	"math/rand"
	"strconv"
	"time"

	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/firmware/agent"
)

// Params are the simulator's own parameters (a script's `set` lines).
type Params struct {
	VMBoot     time.Duration // hypervisor start to running: set vm-boot
	HostBoot   time.Duration // power-on or reset to agent up: set host-boot
	NetLatency time.Duration // heartbeat delivery latency: set net-latency
	DSLatency  time.Duration // datastore read and write latency: set ds-latency
	Seed       int64         // tick phases and packet loss: set seed
	Verbose    bool          // keep debug lines in the log
	Quiet      bool          // format no log text (fuzz, benchmarks); checks still run
}

// DefaultParams returns the defaults every scenario starts from.
func DefaultParams() Params {
	return Params{
		VMBoot:     time.Second,            // a small guest's boot
		HostBoot:   20 * time.Second,       // firmware POST and kernel to a running agent
		NetLatency: 200 * time.Microsecond, // one switch hop
		DSLatency:  time.Millisecond,       // a shared LUN or NFS round trip
		Seed:       1,
	}
}

// Stats counts the world's work, for benchmarks and profiles.
type Stats struct {
	Events    uint64 // events taken off the queue
	Sends     uint64 // heartbeats sent
	Delivered uint64 // heartbeats received
	Steps     uint64 // events handed to agents
}

// vmState is one VM's state on one host's hypervisor.
type vmState uint8

const (
	vmOff vmState = iota
	vmStarting
	vmRunning
	vmStopping
)

// host is one simulated machine: power, agent, clock, watchdog, hypervisor.
type host struct {
	id      int
	name    string
	spec    cluster.HostSpec
	env     hostEnv
	powered bool // power is on (booting or up)
	up      bool // the agent runs
	frozen  bool // the agent is stopped (SIGSTOP)
	frozeAt time.Duration
	agent   *agent.Agent
	gen     uint64 // agent generation: completions of older ones are dropped
	pgen    uint64 // power generation: effects of older ones are dropped
	inc     uint64 // agent incarnation
	pending []cluster.Event

	// clock: local = base + (now-at) * (1 + ppm/1e6)
	clkBase, clkAt time.Duration
	ppm            int64
	phase          time.Duration

	wdArmed             bool
	wdDeadline, wdCheck time.Duration

	vm     []vmState
	vmTok  []uint32
	hvFail bool
	bmc    bmcMode
	maint  bool
}

// clock is the host's monotonic clock at global time now.
func (h *host) clock(now time.Duration) time.Duration {
	d := now - h.clkAt
	if h.ppm == 0 {
		return h.clkBase + d
	}
	return h.clkBase + d + d*time.Duration(h.ppm)/1e6
}

// World is a simulated cluster: hosts running the production agent over a
// virtual clock, with NICs, datastores, BMCs, watchdogs and hypervisors that
// fail on command. It is single-threaded and deterministic for a seed.
type World struct {
	spec    *cluster.Spec
	p       Params
	now     time.Duration
	q       queue
	rng     *rand.Rand
	hosts   []*host
	net     network
	ds      storage
	gwOff   []bool
	vmBad   []bool
	chk     checker
	gens    uint64
	log     []byte
	lines   []Line
	records []record
	trace   bool
	cmds    []Cmd
	stats   Stats
	hosted  []int16 // per VM: hosts whose hypervisor has it running
	nRun    int     // VMs running on at least one host
	// incidents per coordinator host: the newest version of each
	incidents [][]*cluster.Incident

	tap  func(h int, ev cluster.Event) // tests: every event a host is handed
	bare bool                          // tests: hosts run no agent
}

// Line is one log line, kept when tracing (the demo's timeline).
type Line struct {
	At    time.Duration
	Level slog.Level
	Host  string
	Comp  string
	Msg   string
}

// New returns a world of spec's hosts, all powered and with their agents
// started at time 0 on empty hypervisors.
func New(spec *cluster.Spec, p Params) *World { return newWorld(spec, p, false) }

// newWorld builds a world; a bare one runs no agents (mechanics tests).
func newWorld(spec *cluster.Spec, p Params, bare bool) *World {
	w := &World{spec: spec, p: p, rng: rand.New(rand.NewSource(p.Seed)), bare: bare}
	n, links := len(w.spec.Hosts), w.spec.Links
	w.net.init(n, links)
	w.ds.init(w.spec.Datastores, n)
	w.gwOff = make([]bool, links)
	w.vmBad = make([]bool, len(w.spec.VMs))
	w.hosted = make([]int16, len(w.spec.VMs))
	w.chk.init(w)
	hbi := w.spec.Timing.Heartbeat
	for i, hs := range w.spec.Hosts {
		h := &host{id: i, name: hs.Name, spec: hs, powered: true,
			vm: make([]vmState, len(w.spec.VMs)), vmTok: make([]uint32, len(w.spec.VMs))}
		h.env = hostEnv{w: w, h: h}
		if hbi > 0 {
			h.phase = time.Duration(w.rng.Int63n(int64(hbi)))
		}
		w.hosts = append(w.hosts, h)
	}
	for _, h := range w.hosts {
		w.boot(h, nil)
	}
	return w
}

// Now is the global virtual time.
func (w *World) Now() time.Duration { return w.now }

// Stats returns the work done so far.
func (w *World) Stats() Stats { return w.stats }

// Log returns the log text so far.
func (w *World) Log() string { return string(w.log) }

// Violations is the number of invariant violations seen so far.
func (w *World) Violations() int { return len(w.chk.violations) }

// ViolationList returns the violations seen so far, in order.
func (w *World) ViolationList() []string { return w.chk.violations }

// Running returns the indexes of the hosts whose hypervisor runs (or starts)
// VM vm.
func (w *World) Running(vm int) []int {
	var hs []int
	for _, h := range w.hosts {
		if h.vm[vm] == vmStarting || h.vm[vm] == vmRunning {
			hs = append(hs, h.id)
		}
	}
	return hs
}

// RunningVMs is the number of VMs running (not starting) on some host.
func (w *World) RunningVMs() int { return w.nRun }

// setVM changes vm's state on h, keeping the running counts.
func (w *World) setVM(h *host, vm int, st vmState) {
	was := h.vm[vm] == vmRunning
	h.vm[vm] = st
	switch is := st == vmRunning; {
	case is && !was:
		if w.hosted[vm]++; w.hosted[vm] == 1 {
			w.nRun++
		}
	case was && !is:
		if w.hosted[vm]--; w.hosted[vm] == 0 {
			w.nRun--
		}
	}
}

// RunUntil carries out every event up to and including time end.
func (w *World) RunUntil(end time.Duration) {
	for w.q.len() > 0 && w.q.peek() <= end {
		e := w.q.pop()
		w.now = e.at
		w.stats.Events++
		w.dispatch(&e)
	}
	if w.now < end {
		w.now = end
	}
}

// RunWhile carries out events while cond holds, up to time end; it reports
// whether cond stopped holding.
func (w *World) RunWhile(end time.Duration, cond func() bool) bool {
	for w.q.len() > 0 && w.q.peek() <= end {
		if !cond() {
			return true
		}
		e := w.q.pop()
		w.now = e.at
		w.stats.Events++
		w.dispatch(&e)
	}
	return !cond()
}

func (w *World) after(d time.Duration, e event) {
	e.at = w.now + d
	w.q.push(e)
}

func (w *World) dispatch(e *event) {
	h := w.hosts[e.host]
	switch e.kind {
	case kTick:
		w.tick(h, e)
	case kBcast:
		w.bcast(e)
	case kDeliver:
		if h.up && !h.frozen && w.net.reach(int(e.y), h.id, int(e.x)) {
			w.receive(h, e)
		}
	case kReply:
		if e.gen == h.gen {
			w.deliver(h, e.ev)
		}
	case kWrite, kRead:
		w.dsDone(h, e)
	case kBMC:
		w.bmcDone(h, e)
	case kVMDone:
		w.vmDone(h, e)
	case kWatchdog:
		w.watchdog(h, e)
	case kBoot:
		if e.pgen == h.pgen && h.powered && !h.up {
			w.logf(slog.LevelInfo, h.name, "sim", "booted")
			w.boot(h, nil)
		}
	case kCmd:
		w.apply(&w.cmds[e.x])
	case kSettle:
		w.chk.settled()
	}
}

// deliver hands a completion to a host's agent, or holds it while the host
// is frozen.
func (w *World) deliver(h *host, ev cluster.Event) {
	if !h.up {
		return
	}
	if h.frozen {
		h.pending = append(h.pending, ev)
		return
	}
	w.handle(h, ev)
}

func (w *World) handle(h *host, ev cluster.Event) {
	w.stats.Steps++
	if w.tap != nil {
		w.tap(h.id, ev)
	}
	if h.agent != nil {
		h.agent.Handle(ev)
	}
}

func (w *World) tick(h *host, e *event) {
	if e.pgen != h.pgen || !h.powered {
		return // a tick chain of an older power cycle
	}
	if h.up && !h.frozen {
		w.handle(h, cluster.Tick{})
	}
	iv := w.spec.Timing.Heartbeat
	if h.ppm != 0 {
		iv = iv * 1e6 / time.Duration(1e6+h.ppm)
	}
	w.after(iv, event{kind: kTick, host: int32(h.id), pgen: h.pgen})
}

// boot starts a new agent incarnation on h; running lists the VMs its
// hypervisor already runs.
func (w *World) boot(h *host, running []int) {
	first := !h.up
	h.up, h.frozen, h.pending = true, false, nil
	h.inc++
	w.gens++
	h.gen = w.gens
	if !w.bare {
		node := cluster.NewNode(cluster.Config{Spec: w.spec, Self: h.id, Incarnation: h.inc, Running: running, WatchdogArmed: h.wdArmed})
		h.agent = agent.New(node, &h.env)
	}
	if first && w.spec.Timing.Heartbeat > 0 {
		w.after(h.phase, event{kind: kTick, host: int32(h.id), pgen: h.pgen})
	}
}

// powerOff cuts h's power: its VMs die, its agent stops, its watchdog
// disarms, and whatever it had in flight is lost.
func (w *World) powerOff(h *host, why string) {
	if !h.powered {
		return
	}
	b := []byte(why)
	n := 0
	for vm, st := range h.vm {
		if st != vmOff {
			if n == 0 {
				b = append(b, ", lost"...)
			}
			b = append(b, ' ')
			n++
			b = append(b, w.spec.VMs[vm].Name...)
			w.setVM(h, vm, vmOff)
			h.vmTok[vm]++
		}
	}
	w.logf(slog.LevelInfo, h.name, "sim", string(b))
	h.powered, h.up, h.frozen = false, false, false
	h.agent, h.pending, h.wdArmed = nil, nil, false
	w.gens++
	h.gen = w.gens
	h.pgen++
	w.chk.refresh()
}

// powerOn powers h on; its agent comes up after the boot delay.
func (w *World) powerOn(h *host) {
	if h.powered {
		return
	}
	h.powered = true
	w.logf(slog.LevelInfo, h.name, "sim", "power on, booting")
	w.after(w.p.HostBoot, event{kind: kBoot, host: int32(h.id), pgen: h.pgen})
}

// logf writes one log line: `LEVEL TIME HOST/COMPONENT: MESSAGE`.
func (w *World) logf(level slog.Level, who, comp, msg string) {
	if level < slog.LevelInfo && !w.p.Verbose {
		return
	}
	if w.trace {
		w.lines = append(w.lines, Line{At: w.now, Level: level, Host: who, Comp: comp, Msg: msg})
	}
	if w.p.Quiet {
		return
	}
	w.log = appendLine(w.log, w.now, level, who, comp, msg)
}

func appendLine(b []byte, at time.Duration, level slog.Level, who, comp, msg string) []byte {
	switch {
	case level >= slog.LevelError:
		b = append(b, "err "...)
	case level >= slog.LevelWarn:
		b = append(b, "warn "...)
	case level >= slog.LevelInfo:
		b = append(b, "info "...)
	default:
		b = append(b, "debug "...)
	}
	b = appendTime(b, at)
	b = append(b, ' ')
	b = append(b, who...)
	b = append(b, '/')
	b = append(b, comp...)
	b = append(b, ": "...)
	b = append(b, msg...)
	return append(b, '\n')
}

// appendTime writes d as seconds with three decimals.
func appendTime(b []byte, d time.Duration) []byte {
	ms := d.Milliseconds()
	if ms < 0 {
		b = append(b, '-')
		ms = -ms
	}
	b = strconv.AppendInt(b, ms/1000, 10)
	b = append(b, '.')
	f := ms % 1000
	if f < 100 {
		b = append(b, '0')
	}
	if f < 10 {
		b = append(b, '0')
	}
	return strconv.AppendInt(b, f, 10)
}
