package sim

import (
	"errors"
	"log/slog"
	"time"

	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/firmware/agent"
	"github.com/vigil-ha/vigil/hb"
)

// Errors the simulated devices return.
var (
	ErrIO          = errors.New("sim: datastore I/O error")
	ErrTimeout     = errors.New("timeout")
	ErrNoBMC       = errors.New("sim: host has no BMC")
	ErrStart       = errors.New("sim: hypervisor failed to start the VM")
	ErrInterrupted = errors.New("sim: operation superseded by a later one")
)

// Device latencies that scripts do not set.
const (
	gatewayLatency = time.Millisecond      // an isolation address answers
	gatewayTimeout = time.Second           // an unanswered probe gives up
	dsFailLatency  = time.Millisecond      // a failing path returns its error
	bmcLatency     = 50 * time.Millisecond // a BMC carries out a request
	bmcTimeout     = 2 * time.Second       // an unreachable BMC's client gives up
	vmStopLatency  = 300 * time.Millisecond
	vmKillLatency  = 10 * time.Millisecond
	vmNoopLatency  = time.Millisecond // a request with nothing to do
)

// hostEnv is one host's agent.Env, backed by the world.
type hostEnv struct {
	w *World
	h *host
}

var _ agent.Env = (*hostEnv)(nil)

func (e *hostEnv) Now() time.Duration { return e.h.clock(e.w.now) }

func (e *hostEnv) Send(m *hb.Message) { e.w.send(e.h, m) }

func (e *hostEnv) WriteSlot(ds int, r *cluster.Record) {
	e.w.dsOp(e.h, event{kind: kWrite, x: int32(ds), rec: r})
}

func (e *hostEnv) ReadSlots(ds int) { e.w.dsOp(e.h, event{kind: kRead, x: int32(ds)}) }

func (e *hostEnv) ProbeGateway(link int) {
	w, h := e.w, e.h
	ok := link >= 0 && link < w.net.links && !w.net.cut[h.id*w.net.links+link] && !w.gwOff[link]
	d := gatewayLatency
	if !ok {
		d = gatewayTimeout
	}
	w.reply(h, d, cluster.GatewayReplied{Link: link, OK: ok})
}

func (e *hostEnv) PetWatchdog(timeout time.Duration) {
	w, h := e.w, e.h
	h.wdDeadline = w.now + timeout
	if !h.wdArmed || h.wdDeadline < h.wdCheck {
		h.wdArmed = true
		h.wdCheck = h.wdDeadline
		w.after(timeout, event{kind: kWatchdog, host: int32(h.id), pgen: h.pgen})
	}
}

func (e *hostEnv) BMC(target int, op cluster.BMCOp) {
	w, h := e.w, e.h
	if target < 0 || target >= len(w.hosts) {
		w.logf(slog.LevelError, h.name, "sim", "BMC request for unknown host "+itoa(target))
		return
	}
	if op == cluster.BMCCancel {
		return // the simulated BMC takes every request at once: none waits to be dropped
	}
	t := w.hosts[target]
	switch {
	case !t.spec.BMC:
		w.reply(h, vmNoopLatency, cluster.BMCReplied{Host: target, Op: op, Err: ErrNoBMC})
	case t.bmc == bmcUnreachable:
		w.reply(h, bmcTimeout, cluster.BMCReplied{Host: target, Op: op, Err: ErrTimeout})
	default:
		w.after(bmcLatency, event{kind: kBMC, host: int32(target), x: int32(op), y: int32(h.id), gen: h.gen})
	}
}

func (e *hostEnv) VM(vm int, op cluster.VMOp, seq uint64) { e.w.vmOp(e.h, vm, op, seq) }

func (e *hostEnv) Log(level slog.Level, component, msg string) {
	e.w.logf(level, e.h.name, component, msg)
}

func (e *hostEnv) Assigned(a cluster.Assigned) {
	w := e.w
	w.chk.assigned(e.h, a)
	if w.p.Quiet && !w.trace {
		return
	}
	msg := w.vmName(a.VM) + " -> " + w.hostName(a.To) + " epoch " + utoa(a.Epoch)
	if a.From >= 0 {
		msg += " from " + w.hostName(a.From) + ", proof " + a.Proof.Kind.String()
		if a.Proof.Detail != "" {
			msg += ": " + a.Proof.Detail
		}
	}
	w.logf(slog.LevelInfo, e.h.name, "assign", msg)
}

// reply delivers ev to h's current agent after d.
func (w *World) reply(h *host, d time.Duration, ev cluster.Event) {
	w.after(d, event{kind: kReply, host: int32(h.id), gen: h.gen, ev: ev})
}

// ---- datastores ----

type dsMode uint8

const (
	dsOK dsMode = iota
	dsFail
	dsHang
)

// path is one host's path to one datastore.
type path struct {
	mode dsMode
	slow time.Duration
	hung []event // operations waiting for a heal
}

type storage struct {
	hosts int
	slots [][]*cluster.Record // [ds][host]
	paths [][]path            // [ds][host]
}

func (s *storage) init(n, hosts int) {
	s.hosts = hosts
	s.slots = make([][]*cluster.Record, n)
	s.paths = make([][]path, n)
	for i := range s.slots {
		s.slots[i] = make([]*cluster.Record, hosts)
		s.paths[i] = make([]path, hosts)
	}
}

// faulty reports whether h's path to ds is failed, hung or slower than io.
func (s *storage) faulty(ds, h int, io time.Duration) bool {
	p := &s.paths[ds][h]
	return p.mode != dsOK || p.slow >= io
}

func (w *World) dsOp(h *host, e event) {
	ds := int(e.x)
	if ds < 0 || ds >= len(w.ds.paths) {
		w.logf(slog.LevelError, h.name, "sim", "I/O on unknown datastore "+itoa(ds))
		return
	}
	e.host, e.gen, e.pgen = int32(h.id), h.gen, h.pgen
	p := &w.ds.paths[ds][h.id]
	switch p.mode {
	case dsFail:
		e.y = 1
		w.after(dsFailLatency, e)
	case dsHang:
		p.hung = append(p.hung, e)
	default:
		w.after(w.p.DSLatency+p.slow, e)
	}
}

// dsDone completes a read or write: a write lands unless its host lost power
// since; the reply reaches only the agent that asked.
func (w *World) dsDone(h *host, e *event) {
	ds := int(e.x)
	failed := e.y == 1
	if e.kind == kWrite {
		if !failed && e.pgen == h.pgen {
			w.ds.slots[ds][h.id] = e.rec
		}
		if e.gen == h.gen {
			ev := cluster.SlotWritten{DS: ds}
			if failed {
				ev.Err = ErrIO
			}
			w.deliver(h, ev)
		}
		return
	}
	if e.gen != h.gen {
		return
	}
	ev := cluster.SlotsRead{DS: ds}
	if failed {
		ev.Err = ErrIO
	} else {
		ev.Records = make([]*cluster.Record, len(w.hosts))
		copy(ev.Records, w.ds.slots[ds])
	}
	w.deliver(h, ev)
}

// dsHeal clears the faults of h's path to ds (every host's when h < 0);
// hung operations complete now, in the order they were issued.
func (w *World) dsHeal(ds, h int) {
	for i := range w.ds.paths[ds] {
		if h >= 0 && i != h {
			continue
		}
		p := &w.ds.paths[ds][i]
		for _, e := range p.hung {
			w.after(0, e)
		}
		*p = path{}
	}
}

// ---- BMCs ----

type bmcMode uint8

const (
	bmcOK bmcMode = iota
	bmcUnreachable
	bmcLiar
)

// bmcDone carries out a BMC request on host t and answers its requester.
func (w *World) bmcDone(t *host, e *event) {
	op := cluster.BMCOp(e.x)
	req := w.hosts[e.y]
	on := t.powered
	switch {
	case t.bmc == bmcLiar:
		on = op == cluster.BMCStatus // a lie either way: nothing was done
	case op == cluster.BMCPowerOff:
		if t.powered {
			w.chk.fenced(t, "powered off by the BMC on request of "+req.name)
			w.powerOff(t, "powered off by BMC for "+req.name)
		}
		on = false
	}
	if e.gen == req.gen {
		w.deliver(req, cluster.BMCReplied{Host: t.id, Op: op, On: on})
	}
}

// ---- watchdogs ----

func (w *World) watchdog(h *host, e *event) {
	if e.pgen != h.pgen || !h.wdArmed || e.at != h.wdCheck {
		return // disarmed, or a check superseded by an earlier one
	}
	if w.now < h.wdDeadline {
		h.wdCheck = h.wdDeadline
		w.after(h.wdDeadline-w.now, event{kind: kWatchdog, host: int32(h.id), pgen: h.pgen})
		return
	}
	w.logf(slog.LevelError, h.name, "sim", "watchdog fired: resetting the host")
	w.chk.watchdogFired(h)
	w.powerOff(h, "reset by watchdog")
	w.powerOn(h)
}

// ---- hypervisors ----

const failBit = 1 << 4

func (w *World) vmOp(h *host, vm int, op cluster.VMOp, seq uint64) {
	if vm < 0 || vm >= len(w.spec.VMs) {
		w.logf(slog.LevelError, h.name, "sim", "hypervisor request for unknown VM "+itoa(vm))
		return
	}
	st := h.vm[vm]
	e := event{kind: kVMDone, host: int32(h.id), x: int32(vm), y: int32(op), gen: h.gen, pgen: h.pgen, op: seq}
	var d time.Duration
	switch {
	case op == cluster.VMStart && (st == vmOff || st == vmStopping):
		d = w.p.VMBoot
		if w.vmBad[vm] || h.hvFail {
			e.y |= failBit // and a stop in progress goes on
			w.after(d, e)
			return
		}
		if !w.fits(h, vm) {
			// Placement never over-commits a host: a refusal here is a bug.
			w.chk.violate("placement over capacity: " + w.vmName(vm) + " does not fit on " + h.name)
			e.y |= failBit
			w.after(d, e)
			return
		}
		w.chk.starting(h, vm)
		w.setVM(h, vm, vmStarting)
	case (op == cluster.VMStop || op == cluster.VMKill) && st != vmOff:
		d = vmStopLatency
		if op == cluster.VMKill {
			d = vmKillLatency
		}
		w.setVM(h, vm, vmStopping)
	case op == cluster.VMStart || op == cluster.VMStop || op == cluster.VMKill:
		w.reply(h, vmNoopLatency, cluster.VMDone{VM: vm, Op: op, Seq: seq}) // nothing to do
		return
	default:
		w.logf(slog.LevelError, h.name, "sim", "unknown hypervisor operation "+itoa(int(op)))
		return
	}
	h.vmTok[vm]++
	e.tok = h.vmTok[vm]
	w.after(d, e)
}

// fits reports whether h's hypervisor has the CPU and memory to start vm
// beside the VMs it runs, starts or stops.
func (w *World) fits(h *host, vm int) bool {
	cpu, mem := w.spec.VMs[vm].CPU, w.spec.VMs[vm].MemoryMiB
	for v, st := range h.vm {
		if st != vmOff && v != vm {
			cpu += w.spec.VMs[v].CPU
			mem += w.spec.VMs[v].MemoryMiB
		}
	}
	return cpu <= h.spec.CPU && mem <= h.spec.MemoryMiB
}

// vmDone completes a hypervisor operation unless a later one superseded it
// or the host lost power since.
func (w *World) vmDone(h *host, e *event) {
	if e.pgen != h.pgen {
		return
	}
	vm, op, failed := int(e.x), cluster.VMOp(e.y&^failBit), e.y&failBit != 0
	ev := cluster.VMDone{VM: vm, Op: op, Seq: e.op}
	switch {
	case failed:
		ev.Err = ErrStart
		w.chk.startFailed(vm)
		w.logf(slog.LevelWarn, h.name, "sim", w.vmName(vm)+" failed to start")
	case e.tok != h.vmTok[vm]:
		ev.Err = ErrInterrupted
	case op == cluster.VMStart && h.vm[vm] == vmStarting:
		w.setVM(h, vm, vmRunning)
		w.chk.running(h, vm)
		w.logf(slog.LevelInfo, h.name, "sim", w.vmName(vm)+" running")
	case op != cluster.VMStart && h.vm[vm] == vmStopping:
		w.setVM(h, vm, vmOff)
		w.logf(slog.LevelInfo, h.name, "sim", w.vmName(vm)+" stopped")
	}
	if e.gen == h.gen {
		w.deliver(h, ev)
	}
}

// crash makes a running VM exit on every host that runs it.
func (w *World) crash(vm int) {
	for _, h := range w.hosts {
		if h.vm[vm] == vmRunning {
			w.setVM(h, vm, vmOff)
			h.vmTok[vm]++
			w.logf(slog.LevelWarn, h.name, "sim", w.vmName(vm)+" crashed")
			w.deliver(h, cluster.VMExited{VM: vm})
		}
	}
}

func (w *World) vmName(vm int) string {
	if vm >= 0 && vm < len(w.spec.VMs) {
		return w.spec.VMs[vm].Name
	}
	return "vm#" + itoa(vm)
}

func (w *World) hostName(h int) string {
	if h >= 0 && h < len(w.hosts) {
		return w.hosts[h].name
	}
	return "host#" + itoa(h)
}
