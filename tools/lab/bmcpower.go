package lab

import (
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// The power process: the startcmd of a host's BMC, so its BMC reads on
// exactly while it runs. It keeps "the BMC reads off" true only of a host
// whose processes are all dead:
//
//	event                 under the state lock                     then
//	start                 power the host on unless it is on        wait
//	SIGTERM (power off)   power-kill the host (cgroup.kill)        exit once its cgroup is empty
//	SIGUSR1, every 1 s    the host is off (lab poweroff, its       exit
//	                      watchdog) and its cgroup is empty
//	                      its ipmi_sim is no longer the host's     exit, touching nothing
//	                      BMC, or the lab is gone
//
// It never exits holding a host that runs something, and never waits for
// a command that holds the lock: the lab's commands only signal it, and
// wait for it after releasing the lock. The other direction: a host the
// lab powers on by other means (poweron, a watchdog reboot) gets its
// power process first (see powerOn), so its BMC reads on before anything
// runs in it.

// bmcPowerPoll is how often the power process checks its host without
// being told.
const bmcPowerPoll = time.Second

// errNotMine: the power process's ipmi_sim is not the host's BMC (any
// more).
var errNotMine = errors.New("this power process's ipmi_sim is not the host's BMC")

// errStillOn: the host the power process checked is on.
var errStillOn = errors.New("the host is on")

// powerProc is one BMCPower call.
type powerProc struct {
	name, host string
	self, bmc  int // this process and its parent, the ipmi_sim
	logf       func(string, ...any)
}

// BMCPower runs the power process of host in the lab called name ('vigil
// lab bmc-power'), as its BMC's startcmd: it powers the host on unless it
// is on, and returns once the host is off, after a chassis power off
// (SIGTERM) or by other means. logf nil logs to standard error, which is
// the BMC's log.
func BMCPower(name, host string, logf func(format string, args ...any)) error {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGUSR1)
	defer signal.Stop(sigs)
	if logf == nil {
		logf = log.New(os.Stderr, "bmc-power "+host+": ", log.LstdFlags|log.Lmicroseconds).Printf
	}
	p := &powerProc{name: name, host: host, self: os.Getpid(), bmc: os.Getppid(), logf: logf}
	s, err := readState(name)
	if err != nil {
		return err
	}
	h, err := s.host(host)
	if err == nil && h.BMC == nil {
		err = fmt.Errorf("%w (fix: vigil lab up without --no-bmc)", ErrNoBMC)
	}
	if err != nil {
		return fmt.Errorf("lab %q: bmc-power: %w", name, err)
	}
	// Ready: the signal handlers are set. The lab waits for this before
	// it lets the host run anything.
	tmp := filepath.Join(h.BMC.Dir, "power.ready.tmp")
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(p.self)+"\n"), 0o644); err != nil {
		return fmt.Errorf("lab %q: bmc-power: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(h.BMC.Dir, "power.ready")); err != nil {
		return fmt.Errorf("lab %q: bmc-power: %w", name, err)
	}
	if err := p.start(); err != nil {
		return fmt.Errorf("lab %q: bmc-power %s: %w", name, host, err)
	}
	tick := time.NewTicker(bmcPowerPoll)
	defer tick.Stop()
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGTERM {
				return p.powerOff()
			}
		case <-tick.C:
		}
		if p.offAlready() {
			return nil
		}
	}
}

// start records this process as the host's power and powers the host on
// unless it is on.
func (p *powerProc) start() error {
	return update(p.name, func(s *state) error {
		h, err := s.host(p.host)
		if err != nil {
			return err
		}
		if h.BMC == nil || h.BMC.PID != p.bmc {
			return errNotMine
		}
		h.BMC.PowerPID = p.self
		if !h.Off {
			p.logf("%s is on: the BMC reads on", p.host)
			return nil
		}
		if err := clearBootStatus(h); err != nil {
			return err
		}
		if err := s.powerOn(h, true); err != nil {
			return err
		}
		p.logf("chassis power on: %s is on, agent PID %d", p.host, h.Agent.PID)
		return nil
	})
}

// powerOff power-kills the host and returns once its cgroup is empty,
// trying again as long as it is not: the BMC reads on until then.
func (p *powerProc) powerOff() error {
	p.logf("chassis power off: power-killing %s", p.host)
	for {
		var sock string
		err := update(p.name, func(s *state) error {
			h, err := s.host(p.host)
			if err != nil {
				return err
			}
			if h.BMC == nil || h.BMC.PID != p.bmc {
				return errNotMine
			}
			if err := resetCgroup(h.Agent.Cgroup); err != nil {
				return err
			}
			if !h.Off {
				h.Gen++
				h.OffBy = "bmc"
			}
			h.Off, h.Frozen = true, false
			if h.BMC.PowerPID == p.self {
				h.BMC.PowerPID = 0
			}
			sock = s.Supervisor.Socket
			return nil
		})
		switch {
		case err == nil:
			if err := disarm(sock, p.host); err != nil {
				p.logf("%v", err)
			}
			p.logf("%s is off: the BMC reads off", p.host)
			return nil
		case errors.Is(err, errNotMine) || errors.Is(err, ErrNoLab):
			p.logf("%v: exiting", err)
			return nil
		}
		p.logf("power off %s: %v; the BMC reads on until it is dead, trying again in %v", p.host, err, bmcPowerPoll)
		time.Sleep(bmcPowerPoll)
	}
}

// offAlready reports whether the power process is done: its host went off
// by other means and holds no process (it clears PowerPID then), or its
// ipmi_sim is no longer the host's BMC, or the lab is gone.
func (p *powerProc) offAlready() bool {
	s, err := readState(p.name)
	if errors.Is(err, ErrNoLab) {
		p.logf("the lab is gone: exiting")
		return true
	}
	if err != nil {
		p.logf("%v", err)
		return false
	}
	h, err := s.host(p.host)
	if err != nil || h.BMC == nil || h.BMC.PID != p.bmc || os.Getppid() != p.bmc {
		p.logf("%v: exiting", errNotMine)
		return true
	}
	if !h.Off {
		return false
	}
	err = update(p.name, func(s *state) error {
		h, err := s.host(p.host)
		if err != nil {
			return err
		}
		if !h.Off {
			return errStillOn
		}
		if ev, err := cgroupEvents(h.Agent.Cgroup); err != nil || ev["populated"] != "0" {
			return fmt.Errorf("%s is off but its cgroup is not empty (%v): the BMC reads on", p.host, err)
		}
		if h.BMC != nil && h.BMC.PowerPID == p.self {
			h.BMC.PowerPID = 0
		}
		return nil
	})
	switch {
	case errors.Is(err, errStillOn):
		return false
	case err != nil:
		p.logf("%v", err)
		return false
	}
	p.logf("%s was powered off by other means: the BMC reads off", p.host)
	return true
}
