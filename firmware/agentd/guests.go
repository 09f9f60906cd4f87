package agentd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/drivers/guest"
	"github.com/vigil-ha/vigil/drivers/hv/qemu"
	"github.com/vigil-ha/vigil/fence/appmon"
	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/firmware/config"
)

// guests monitors the guests of the QEMU VMs this host runs: one monitor
// per VM, from its start here to its stop, reading its guest agent's
// heartbeats and applying its policy (appmon).
type guests struct {
	d  *daemon
	mu sync.Mutex
	m  map[int]*guestMon
}

// guestMon is one VM's guest monitoring.
type guestMon struct {
	vm     int
	name   string
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	mon     *appmon.Monitor
	conn    *guest.Conn
	pending map[uint64]string // restart request id -> application
	status  GuestStatus
}

// GuestStatus is what the host knows of a VM's guest, for operators.
type GuestStatus struct {
	VM        string
	Connected bool
	Version   string
	Heard     time.Time // the last message
	Apps      []guest.App
	Last      string // the last decision, with its reason
}

// guestVM is what monitoring needs of a VM's hypervisor: its guest port
// and a reset (qemu.Hypervisor).
type guestVM interface {
	GuestSocket(name string) string
	Reset(ctx context.Context, name string) error
}

// guestTick is how often timeouts are checked.
const guestTick = 250 * time.Millisecond

// policyOf is VM v's monitoring policy from the cluster file, defaults
// filled in.
func policyOf(v config.VM) appmon.Policy {
	p := appmon.Policy{GuestTimeout: time.Duration(v.GuestTimeout), GuestFailure: appmon.Reset,
		BootGrace: 2 * time.Minute, MaxResets: 3, ResetWindow: time.Hour, Apps: map[string]appmon.AppPolicy{}}
	if v.GuestFailure == "failover" {
		p.GuestFailure = appmon.Failover
	}
	if v.GuestBootGrace > 0 {
		p.BootGrace = time.Duration(v.GuestBootGrace)
	}
	if v.MaxResets > 0 {
		p.MaxResets = v.MaxResets
	}
	if v.ResetWindow > 0 {
		p.ResetWindow = time.Duration(v.ResetWindow)
	}
	for _, a := range v.Apps {
		ap := appmon.DefaultApp
		if act, ok := appmon.ParseAction(a.OnFailure); ok {
			ap.OnFailure = act
		}
		if act, ok := appmon.ParseAction(a.Then); ok {
			ap.Then = act
		}
		if a.MaxRestarts > 0 {
			ap.MaxRestarts = a.MaxRestarts
		}
		if a.RestartWindow > 0 {
			ap.Window = time.Duration(a.RestartWindow)
		}
		if a.RestartTimeout > 0 {
			ap.RestartTimeout = time.Duration(a.RestartTimeout)
		}
		p.Apps[a.Name] = ap
	}
	return p
}

// start begins monitoring VM v's guest, which just started here (or was
// adopted), when it runs under QEMU.
func (g *guests) start(v int) {
	if g.d == nil {
		return // not a running agent (tests)
	}
	q, ok := g.d.hv.(*hypervisors)
	if !ok {
		return
	}
	name := g.d.cfg.VMs[v].Name
	h, ok := q.byVM[name].(*qemu.Hypervisor)
	if !ok {
		return
	}
	g.startWith(v, h)
}

// startWith monitors VM v's guest through h.
func (g *guests) startWith(v int, h guestVM) {
	name := g.d.cfg.VMs[v].Name
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil {
		g.m = map[int]*guestMon{}
	}
	if g.m[v] != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	gm := &guestMon{vm: v, name: name, cancel: cancel, done: make(chan struct{}), pending: map[uint64]string{},
		mon: appmon.New(policyOf(g.d.cfg.VMs[v]), g.d.now()), status: GuestStatus{VM: name}}
	g.m[v] = gm
	go func() {
		defer close(gm.done)
		g.run(ctx, gm, h)
	}()
}

// stop ends the monitoring of VM v (stopped, killed, exited, moved).
func (g *guests) stop(v int) {
	g.mu.Lock()
	gm := g.m[v]
	delete(g.m, v)
	g.mu.Unlock()
	if gm != nil {
		gm.cancel()
		<-gm.done
	}
}

// stopAll ends every monitoring (the agent stops).
func (g *guests) stopAll() {
	g.mu.Lock()
	var vs []int
	for v := range g.m {
		vs = append(vs, v)
	}
	g.mu.Unlock()
	for _, v := range vs {
		g.stop(v)
	}
}

// statuses lists every monitored guest, by VM name.
func (g *guests) statuses() []GuestStatus {
	g.mu.Lock()
	var out []GuestStatus
	for _, gm := range g.m {
		gm.mu.Lock()
		s := gm.status
		s.Apps = append([]guest.App(nil), s.Apps...)
		gm.mu.Unlock()
		out = append(out, s)
	}
	g.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].VM < out[j].VM })
	return out
}

func (d *daemon) now() time.Duration { return time.Since(d.start) }

// run connects to the VM's guest port, again whenever the connection
// ends, and applies the policy to what arrives and to the time.
func (g *guests) run(ctx context.Context, gm *guestMon, h guestVM) {
	log := g.d.log.With("component", "guest", "vm", gm.name)
	msgs := make(chan *guest.Message, 16)
	t := time.NewTicker(guestTick)
	defer t.Stop()
	connect := make(chan *guest.Conn, 1)
	// QEMU makes the socket as it starts; a VM without a guest port
	// (guest_agent = false) never has one, and its guest is never heard.
	dial := func() {
		c, err := guest.Dial(ctx, h.GuestSocket(gm.name))
		if err != nil {
			return
		}
		connect <- c
	}
	go dial()
	for {
		var ds []appmon.Decision
		select {
		case <-ctx.Done():
			gm.mu.Lock()
			if gm.conn != nil {
				gm.conn.Close()
			}
			gm.mu.Unlock()
			return
		case c := <-connect:
			gm.mu.Lock()
			gm.conn, gm.status.Connected = c, true
			gm.mu.Unlock()
			go func() {
				for {
					m, err := c.Read()
					if errors.Is(err, guest.ErrBadMessage) {
						log.Warn("a bad line from the guest: ignored", "err", err)
						continue
					}
					if err != nil {
						select {
						case msgs <- nil: // the connection ended
						case <-ctx.Done():
						}
						return
					}
					select {
					case msgs <- m:
					case <-ctx.Done():
						return
					}
				}
			}()
		case m := <-msgs:
			if m == nil {
				gm.mu.Lock()
				gm.conn.Close()
				gm.conn, gm.status.Connected = nil, false
				gm.mu.Unlock()
				go func() {
					select {
					case <-ctx.Done():
					case <-time.After(time.Second):
						dial()
					}
				}()
				continue
			}
			ds = g.received(gm, m, log)
		case <-t.C:
			gm.mu.Lock()
			ds = gm.mon.Tick(g.d.now())
			gm.mu.Unlock()
		}
		g.act(ctx, gm, h, ds, log)
	}
}

// received applies one guest message.
func (g *guests) received(gm *guestMon, m *guest.Message, log *slog.Logger) []appmon.Decision {
	gm.mu.Lock()
	defer gm.mu.Unlock()
	now := g.d.now()
	gm.status.Heard = time.Now()
	switch m.Type {
	case guest.TypeHello, guest.TypeHeartbeat:
		if m.Type == guest.TypeHello {
			gm.status.Version = m.Version
			log.Info("guest agent says hello", "version", m.Version, "apps", len(m.Apps))
		}
		for _, a := range m.Apps {
			var old *guest.App
			for i := range gm.status.Apps {
				if gm.status.Apps[i].Name == a.Name {
					old = &gm.status.Apps[i]
				}
			}
			if old == nil || old.Running != a.Running {
				state := "not running"
				if a.Running {
					state = "running"
				}
				log.Info("guest application "+state, "app", a.Name, "pid", a.PID, "detail", a.Detail)
			}
		}
		gm.status.Apps = m.Apps
		states := make([]appmon.AppState, len(m.Apps))
		for i, a := range m.Apps {
			states[i] = appmon.AppState{Name: a.Name, Running: a.Running, Detail: a.Detail}
		}
		return gm.mon.Report(now, states)
	case guest.TypeDone:
		app := gm.pending[m.ID]
		delete(gm.pending, m.ID)
		if app == "" {
			return nil
		}
		var err error
		if m.Err != "" {
			err = errors.New(m.Err)
			log.Warn("the guest could not restart an application", "app", app, "err", m.Err)
		}
		return gm.mon.RestartDone(now, app, err)
	}
	return nil
}

// act carries out the policy's decisions.
func (g *guests) act(ctx context.Context, gm *guestMon, h guestVM, ds []appmon.Decision, log *slog.Logger) {
	for _, dc := range ds {
		gm.mu.Lock()
		gm.status.Last = dc.Action.String() + ": " + dc.Why
		conn := gm.conn
		gm.mu.Unlock()
		switch dc.Action {
		case appmon.Restart:
			log.Warn("restarting a guest application", "app", dc.App, "why", dc.Why)
			if conn == nil {
				log.Warn("the guest is not connected: the restart waits for its timeout", "app", dc.App)
				continue
			}
			id, err := conn.Restart(dc.App)
			if err != nil {
				log.Warn("cannot ask the guest", "err", err)
				continue
			}
			gm.mu.Lock()
			gm.pending[id] = dc.App
			gm.mu.Unlock()
		case appmon.Reset:
			log.Warn("resetting the VM", "app", dc.App, "why", dc.Why)
			if err := h.Reset(ctx, gm.name); err != nil {
				log.Error("reset failed", "err", err)
			}
		case appmon.Failover:
			log.Warn("failing the VM over", "app", dc.App, "why", dc.Why)
			why := dc.Why
			if dc.App != "" {
				why = fmt.Sprintf("%s: %s", dc.App, dc.Why)
			}
			g.d.post(cluster.VMFailover{VM: gm.vm, Why: why})
		case appmon.None:
			log.Warn("guest application failed; the policy does nothing", "app", dc.App, "why", dc.Why)
		}
	}
}
