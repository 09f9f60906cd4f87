package agentd

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/vigil-ha/vigil/drivers/hv"
	"github.com/vigil-ha/vigil/drivers/watchdog"
	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/firmware/agent"
	"github.com/vigil-ha/vigil/hb"
)

// petsPerTimeout is how many pets the watchdog gets per timeout at most.
const petsPerTimeout = 8

// env is the real agent.Env. Its methods run on the loop goroutine; what
// blocks goes to workers that answer through d.events.
type env struct {
	d *daemon
}

var _ agent.Env = env{}

func (e env) Now() time.Duration { return time.Since(e.d.start) }

func (e env) Send(m *hb.Message) {
	d := e.d
	pkt, err := d.codec.Encode(d.sendBuf[:0], m)
	if err != nil {
		d.logOnce("encode", slog.LevelError, "cannot encode a heartbeat", "err", err)
		return
	}
	d.sendBuf = pkt[:0]
	if err := d.nics.Send(m.Link, pkt); err != nil {
		d.sendErrors[m.Link]++ // a NIC without carrier: the core knows from its link events
	}
}

func (e env) WriteSlot(ds int, r *cluster.Record) {
	st := e.d.stores[ds]
	go func() {
		err := st.Write(r)
		e.d.post(cluster.SlotWritten{DS: ds, Err: err})
	}()
}

func (e env) ReadSlots(ds int) {
	st := e.d.stores[ds]
	go func() {
		recs, err := st.ReadAll()
		e.d.post(cluster.SlotsRead{DS: ds, Records: recs, Err: err})
	}()
}

func (e env) ProbeGateway(link int) {
	d := e.d
	if !d.gateway[link] {
		d.post(cluster.GatewayReplied{Link: link, OK: false})
		return
	}
	go func() {
		err := d.nics.Probe(link, time.Second)
		d.post(cluster.GatewayReplied{Link: link, OK: err == nil})
	}()
}

func (e env) PetWatchdog(timeout time.Duration) {
	d := e.d
	now := e.Now()
	if d.petStopped != "" {
		return // an operator fenced this host: the watchdog resets it
	}
	if d.wd == nil {
		dev, err := watchdog.Open(d.opts.Watchdog)
		if err != nil {
			// Without a watchdog the lease proof others rely on is
			// void: give the VMs up rather than run them unguarded.
			d.failStop(fmt.Errorf("cannot arm the watchdog %s: %w", d.opts.Watchdog, err))
			return
		}
		got, err := dev.SetTimeout(timeout)
		if err != nil {
			d.logOnce("wd-set", slog.LevelError, "cannot set the watchdog timeout", "device", d.opts.Watchdog, "err", err)
		} else if got != timeout {
			d.log.Warn("the watchdog took another timeout than asked", "component", "wd", "asked", timeout, "took", got)
		}
		if err := markWatchdog(d.opts.State, true); err != nil {
			d.log.Error("cannot record that the watchdog is armed", "component", "wd", "err", err)
		}
		d.wd = dev
	} else if now-d.lastPet < timeout/petsPerTimeout {
		// The core asks every tick; the device needs far fewer. Skipping
		// pets only brings the reset closer, never later: safe.
		return
	}
	d.lastPet = now
	if err := d.wd.Pet(); err != nil {
		d.logOnce("wd-pet", slog.LevelError, "watchdog pet failed", "device", d.opts.Watchdog, "err", err)
		return
	}
	d.pets++
}

func (e env) BMC(host int, op cluster.BMCOp) { e.d.bmcRequest(host, op) }

func (e env) VM(vm int, op cluster.VMOp, seq uint64) {
	d := e.d
	spec := d.spec.VMs[vm]
	go func() {
		var err error
		switch op {
		case cluster.VMStart:
			if err = d.hv.Start(hv.VM{Name: spec.Name, CPU: spec.CPU, MemoryMiB: spec.MemoryMiB}); err == nil {
				d.guests.start(vm)
			}
		case cluster.VMStop:
			d.guests.stop(vm)
			err = d.hv.Stop(spec.Name, d.opts.VMStopTimeout)
		case cluster.VMKill:
			d.guests.stop(vm)
			err = d.hv.Kill(spec.Name)
		}
		d.post(cluster.VMDone{VM: vm, Op: op, Seq: seq, Err: err})
	}()
}

func (e env) Log(level slog.Level, component, msg string) {
	e.d.log.Log(context.Background(), level, msg, "component", component)
}

func (e env) Assigned(a cluster.Assigned) {
	d := e.d
	args := []any{"component", "assign", "vm", d.spec.VMs[a.VM].Name, "to", d.hostName(a.To), "epoch", a.Epoch}
	if a.From < 0 {
		d.log.Info("power-on assigned", args...)
		return
	}
	args = append(args, "from", d.hostName(a.From), "proof", a.Proof.Kind.String(), "detail", a.Proof.Detail)
	if a.Failed > 0 {
		args = append(args, "since_suspected", (time.Since(d.start) - a.Failed).Round(time.Millisecond).String())
	}
	d.log.Info("restart assigned", args...)
}
