package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/vigil-ha/vigil/tools/lab/dsfault"
	"github.com/vigil-ha/vigil/tools/lab/wdemu"
)

// Watchdogs is the emulated watchdog device of every host, as
// wdemu.Server provides it.
type Watchdogs interface {
	// Serve listens on every host's socket until ctx ends.
	Serve(ctx context.Context) error
	// Ready is closed once Serve listens.
	Ready() <-chan struct{}
	// Disarm stops a host's watchdog: the host was powered off or on.
	Disarm(host string)
	// State reports a host's watchdog: armed, its timeout, the time left.
	State(host string) (armed bool, timeout, left time.Duration)
}

var _ Watchdogs = (*wdemu.Server)(nil)

// SuperviseOptions configure Supervise.
type SuperviseOptions struct {
	// Name is the lab's name.
	Name string
	// Ready receives "ok" once the watchdogs and the control socket
	// listen, or "error: ..." when they cannot; nil discards.
	Ready io.Writer
	// Logf logs; nil logs to standard error with timestamps.
	Logf func(format string, args ...any)
	// RebootDelay is how long a host whose watchdog fired stays off under
	// the reset action; 0 means DefaultRebootDelay.
	RebootDelay time.Duration
	// Watchdogs makes the watchdog devices; nil means wdemu.New.
	Watchdogs func(hosts []wdemu.Host, logf func(string, ...any)) Watchdogs
	// AfterFunc schedules a reboot; nil means time.AfterFunc.
	AfterFunc func(d time.Duration, f func())
}

// supervisor is the state of one Supervise call.
type supervisor struct {
	o  SuperviseOptions
	s  *state // as read at start: names, paths and the watchdog action
	wd Watchdogs
	ds map[string]*dsfault.Faults // each host's datastore paths
}

// Supervise is the lab's supervisor daemon ('vigil lab supervise'): it
// serves every host's emulated watchdog, every host's path to the shared
// datastores (package dsfault) and the control socket until ctx ends. A watchdog that fires power-kills its host, marks it off and, under
// the reset action, starts its agent again after the reboot delay.
func Supervise(ctx context.Context, o SuperviseOptions) error {
	if o.Logf == nil {
		o.Logf = log.New(os.Stderr, "", log.LstdFlags|log.Lmicroseconds).Printf
	}
	if o.RebootDelay <= 0 {
		o.RebootDelay = DefaultRebootDelay
	}
	if o.Watchdogs == nil {
		o.Watchdogs = func(hosts []wdemu.Host, logf func(string, ...any)) Watchdogs {
			return wdemu.New(hosts, wdemu.Options{Logf: logf})
		}
	}
	if o.AfterFunc == nil {
		o.AfterFunc = func(d time.Duration, f func()) { time.AfterFunc(d, f) }
	}
	err := supervise(ctx, o)
	if err != nil && o.Ready != nil {
		fmt.Fprintf(o.Ready, "error: %v\n", err)
	}
	return err
}

func supervise(ctx context.Context, o SuperviseOptions) error {
	s, err := readState(o.Name)
	if err != nil {
		return err
	}
	sv := &supervisor{o: o, s: s}
	var hosts []wdemu.Host
	for _, h := range s.Hosts {
		name := h.Name
		hosts = append(hosts, wdemu.Host{Name: name, Socket: filepath.Join(h.Dir, "watchdog.sock"), Fire: func() { sv.fire(name) }})
	}
	sv.wd = o.Watchdogs(hosts, o.Logf)
	ds, paths, err := mountHostPaths(s)
	defer func() {
		for _, p := range paths {
			if err := p.Unmount(); err != nil {
				o.Logf("%v", err)
			}
		}
	}()
	if err != nil {
		return err
	}
	sv.ds = ds

	if err := os.Remove(s.Supervisor.Socket); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("lab: remove the stale control socket: %w", err)
	}
	ln, err := net.Listen("unix", s.Supervisor.Socket)
	if err != nil {
		return fmt.Errorf("lab: listen on %s: %w", s.Supervisor.Socket, err)
	}
	defer os.Remove(s.Supervisor.Socket)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- sv.wd.Serve(ctx) }()
	select {
	case <-sv.wd.Ready():
	case err := <-served:
		ln.Close()
		return fmt.Errorf("lab: serve the watchdogs: %w", err)
	}
	o.Logf("supervising lab %s: %d hosts, watchdog action %s", s.Name, len(s.Hosts), s.WatchdogAction)
	if o.Ready != nil {
		io.WriteString(o.Ready, "ok\n")
	}
	go serveControl(ctx, ln, sv.wd, sv.ds, s.hostNames(), o.Logf)
	select {
	case <-ctx.Done():
		<-served
		return nil
	case err := <-served:
		if err != nil {
			return fmt.Errorf("lab: serve the watchdogs: %w", err)
		}
		return nil
	}
}

// fire handles the expiry of host's watchdog: power loss, then a reboot
// unless the action is poweroff.
func (sv *supervisor) fire(host string) {
	h, err := sv.s.host(host)
	if err != nil {
		sv.o.Logf("watchdog fired on %s: %v", host, err)
		return
	}
	// Logged once the host is dead, so that whoever reads the line
	// finds its processes gone.
	if err := resetCgroup(h.Agent.Cgroup); err != nil {
		sv.o.Logf("watchdog fired on %s: power-kill: %v", host, err)
	} else {
		sv.o.Logf("watchdog fired on %s: power-killed", host)
	}
	// Like a watchdog card, the emulator remembers that it reset the host
	// (WDIOF_CARDRESET) until the host next boots by other means.
	if err := os.WriteFile(bootStatusFile(h), []byte("32\n"), 0o644); err != nil {
		sv.o.Logf("watchdog fired on %s: record the reset: %v", host, err)
	}
	sv.wd.Disarm(host)
	var gen int
	var bmc *bmcState
	err = update(sv.s.Name, func(s *state) error {
		h, err := s.host(host)
		if err != nil {
			return err
		}
		h.Off, h.OffBy, h.Frozen = true, "watchdog", false
		h.Gen++
		gen = h.Gen
		if h.BMC != nil {
			b := *h.BMC
			bmc = &b
		}
		return nil
	})
	if err != nil {
		sv.o.Logf("mark %s off: %v", host, err)
		return
	}
	if bmc != nil {
		notifyPower(*bmc) // its BMC reads off once it sees the host off
	}
	if sv.s.WatchdogAction == ActionPowerOff {
		sv.o.Logf("%s stays off (watchdog action poweroff)", host)
		return
	}
	sv.o.Logf("%s reboots in %v", host, sv.o.RebootDelay)
	sv.o.AfterFunc(sv.o.RebootDelay, func() { sv.reboot(host, gen) })
}

// reboot starts host's agent again (and its BMC's power process first)
// unless its power changed since the watchdog fired (power generation
// gen).
func (sv *supervisor) reboot(host string, gen int) {
	var pid int
	err := update(sv.s.Name, func(s *state) error {
		h, err := s.host(host)
		if err != nil {
			return err
		}
		if !h.Off || h.Gen != gen {
			return nil
		}
		if err := s.powerOn(h, false); err != nil {
			return err
		}
		pid = h.Agent.PID
		return nil
	})
	switch {
	case err != nil:
		sv.o.Logf("reboot %s: %v", host, err)
	case pid == 0:
		sv.o.Logf("%s not rebooted: its power was switched meanwhile", host)
	default:
		sv.o.Logf("%s rebooted: agent PID %d", host, pid)
	}
}
