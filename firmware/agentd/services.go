package agentd

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/drivers/appwatch"
	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/firmware/config"
)

// services watches the cluster file's [[services]] on this host: a
// service that stops is restarted after a backoff; past its budget the
// host is evacuated (maintenance), self-fenced, or only logged.
type services struct {
	d   *daemon
	w   *appwatch.Watcher
	cfg map[string]config.Service

	mu       sync.Mutex
	restarts map[string][]time.Time // restarts within the window, per service
	spent    map[string]bool        // its budget was spent and Then applied
	timers   map[string]*time.Timer
	ctx      context.Context
}

// serviceBackoff is the first restart's delay; each further restart in the
// window doubles it, up to serviceBackoffMax.
const (
	serviceBackoff    = time.Second
	serviceBackoffMax = 30 * time.Second
)

// openServices starts watching the services, if the cluster file lists
// any.
func (d *daemon) openServices(ctx context.Context) error {
	if len(d.cfg.Services) == 0 {
		return nil
	}
	s := &services{d: d, cfg: map[string]config.Service{}, restarts: map[string][]time.Time{},
		spent: map[string]bool{}, timers: map[string]*time.Timer{}, ctx: ctx}
	var apps []appwatch.App
	for _, c := range d.cfg.Services {
		s.cfg[c.Name] = c
		apps = append(apps, appwatch.App{Name: c.Name, Process: c.Process, Pidfile: c.Pidfile, Unit: c.Unit, Start: c.Start})
	}
	w, err := appwatch.New(apps, time.Second, s.changed)
	if err != nil {
		return fmt.Errorf("agent: services: %w", err)
	}
	s.w = w
	d.services = s
	go w.Run(ctx)
	return nil
}

// changed is the watcher's report of a service's change.
func (s *services) changed(st appwatch.State) {
	log := s.d.log.With("component", "service", "service", st.Name)
	if st.Running {
		log.Info("service running", "pid", st.PID, "detail", st.Detail)
		return
	}
	if st.Exits == 0 {
		log.Warn("service not running", "detail", st.Detail)
		// A service that never ran here is not restarted by the agent:
		// its own start-up (systemd, init) is in charge until it first ran.
		return
	}
	c := s.cfg[st.Name]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.spent[st.Name] || s.timers[st.Name] != nil {
		return
	}
	max, window := c.MaxRestarts, time.Duration(c.RestartWindow)
	if max == 0 {
		max = 3
	}
	if window == 0 {
		window = 10 * time.Minute
	}
	now := time.Now()
	keep := s.restarts[st.Name][:0]
	for _, t := range s.restarts[st.Name] {
		if now.Sub(t) < window {
			keep = append(keep, t)
		}
	}
	s.restarts[st.Name] = keep
	if len(keep) >= max {
		s.spent[st.Name] = true
		log.Error("service keeps failing: "+thenText(c.Then), "detail", st.Detail, "restarts", len(keep), "window", window)
		go s.then(c, fmt.Sprintf("service %s failed %d times in %s", st.Name, len(keep)+1, window))
		return
	}
	delay := serviceBackoff << len(keep)
	if delay > serviceBackoffMax {
		delay = serviceBackoffMax
	}
	log.Warn("service stopped: restarting it", "detail", st.Detail, "in", delay, "restart", len(keep)+1, "of", max)
	s.timers[st.Name] = time.AfterFunc(delay, func() {
		s.mu.Lock()
		delete(s.timers, st.Name)
		s.restarts[st.Name] = append(s.restarts[st.Name], time.Now())
		s.mu.Unlock()
		if err := s.w.Restart(s.ctx, st.Name); err != nil {
			log.Error("service restart failed", "err", err)
		}
	})
}

func thenText(then string) string {
	switch then {
	case "self-fence":
		return "self-fencing this host"
	case "none":
		return "leaving it (then = none)"
	}
	return "evacuating this host (maintenance: its VMs move away)"
}

// then applies a spent service's Then.
func (s *services) then(c config.Service, why string) {
	d := s.d
	switch c.Then {
	case "none":
	case "self-fence":
		var bad error
		if err := d.call(s.ctx, func() { bad = d.fenceSelf(why) }); err != nil || bad != nil {
			d.log.Error("self-fence failed", "component", "service", "err", fmt.Sprint(err, bad))
		}
	default:
		if err := d.call(s.ctx, func() { d.ag.Handle(cluster.Command{Name: "maintenance-enter"}) }); err != nil {
			d.log.Error("cannot enter maintenance", "component", "service", "err", err)
			return
		}
		d.log.Warn("this host is in maintenance: its VMs move away; 'vigil maintenance exit' once the service is mended", "component", "service", "service", c.Name)
	}
}

// states lists every service's state, for operators.
func (s *services) states() []appwatch.State {
	if s == nil {
		return nil
	}
	return s.w.States()
}

// close stops pending restarts.
func (s *services) close() {
	if s == nil {
		return
	}
	s.mu.Lock()
	for _, t := range s.timers {
		t.Stop()
	}
	s.mu.Unlock()
}
