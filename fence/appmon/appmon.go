// Package appmon is the pure policy of guest and application monitoring:
// what a host does when a VM's guest agent stops heartbeating, or an
// application inside the guest stops. It reads reports and the time, and
// decides: restart the application in the guest, reset the VM, or fail the
// VM over to another host, within restart and reset budgets per window.
//
//	m := appmon.New(policy, now)              // the VM started
//	ds := m.Report(now, states)               // each guest heartbeat
//	ds = m.Tick(now)                          // every tick: timeouts
//	ds = m.RestartDone(now, "db", err)        // the guest's answer
//	for _, d := range ds { ... d.Action, d.App, d.Why }
//
// vSphere's VM monitoring resets a VM whose VMware Tools heartbeats stop,
// at most 3 times an hour, and needs 30 s at its most sensitive; it does
// not see an application die inside a running guest. Here an
// application's exit reaches the host in the next heartbeat, and the
// default is to restart it in the guest at once.
package appmon

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// Action is what the host does about a failure.
type Action uint8

// Actions.
const (
	None     Action = iota // log it and do nothing
	Restart                // restart the application in the guest
	Reset                  // reset the VM (a hardware reset)
	Failover               // stop the VM and restart it on another host
)

func (a Action) String() string {
	switch a {
	case None:
		return "none"
	case Restart:
		return "restart"
	case Reset:
		return "reset"
	case Failover:
		return "failover"
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// ParseAction parses "none", "restart", "reset" or "failover".
func ParseAction(s string) (Action, bool) {
	for _, a := range []Action{None, Restart, Reset, Failover} {
		if a.String() == s {
			return a, true
		}
	}
	return None, false
}

// AppPolicy is what a failure of one application does.
type AppPolicy struct {
	// OnFailure is the first response: Restart, Reset, Failover or None.
	OnFailure Action
	// MaxRestarts restarts within Window; past them, Then.
	MaxRestarts int
	Window      time.Duration
	// Then is what follows when the restarts are spent, or a restart does
	// not bring the application back: Reset, Failover or None.
	Then Action
	// RestartTimeout is how long a restart may take to show the
	// application running again.
	RestartTimeout time.Duration
	// StartGrace is how long an application may be reported not running
	// after the guest first reports it, before that is a failure.
	StartGrace time.Duration
}

// DefaultApp is the policy of an application the host has none for:
// restarted in the guest at once, 3 times in 10 minutes, then failed over.
var DefaultApp = AppPolicy{OnFailure: Restart, MaxRestarts: 3, Window: 10 * time.Minute, Then: Failover,
	RestartTimeout: 10 * time.Second, StartGrace: 30 * time.Second}

// Policy is one VM's monitoring policy.
type Policy struct {
	// GuestTimeout: a guest heard before and silent this long has failed;
	// 0 leaves the guest's heartbeats unwatched (its applications are
	// still watched while it reports).
	GuestTimeout time.Duration
	// GuestFailure is the response to a failed guest: Reset or Failover.
	GuestFailure Action
	// BootGrace: a guest not heard this long after the VM started (or was
	// reset) has failed, when GuestTimeout is set.
	BootGrace time.Duration
	// MaxResets resets within ResetWindow, for any cause; past them the VM
	// fails over.
	MaxResets   int
	ResetWindow time.Duration
	// Apps holds the policy of each application by name; others get
	// DefaultApp.
	Apps map[string]AppPolicy
}

// AppState is an application as the guest reports it.
type AppState struct {
	Name    string
	Running bool
	Detail  string
}

// Decision is one thing the host must do now.
type Decision struct {
	Action Action
	App    string // the application (Restart; the cause of a Reset or Failover, if any)
	Why    string
}

// Monitor is the monitoring of one VM on the host that runs it.
type Monitor struct {
	p       Policy
	since   time.Duration // the VM started, or was last reset
	heard   bool          // a report arrived since
	last    time.Duration // the last report
	apps    map[string]*app
	resets  []time.Duration
	done    bool // failed over: nothing more to decide
	guestOK bool // the guest's failure was already handled
}

type app struct {
	seen, running bool
	firstSeen     time.Duration
	failed        bool // a failure is being handled
	restarts      []time.Duration
	pending       bool // a restart was asked and has not shown it running
	pendingSince  time.Duration
	detail        string
}

// New starts monitoring a VM that started at now.
func New(p Policy, now time.Duration) *Monitor {
	return &Monitor{p: p, since: now, apps: map[string]*app{}}
}

func (m *Monitor) policy(name string) AppPolicy {
	if p, ok := m.p.Apps[name]; ok {
		return p
	}
	return DefaultApp
}

// Report takes one guest heartbeat (or hello) with its applications.
func (m *Monitor) Report(now time.Duration, apps []AppState) []Decision {
	if m.done {
		return nil
	}
	m.heard, m.last, m.guestOK = true, now, false
	var out []Decision
	for _, s := range apps {
		a := m.apps[s.Name]
		if a == nil {
			a = &app{firstSeen: now}
			m.apps[s.Name] = a
		}
		a.detail = s.Detail
		wasRunning := a.running
		a.seen, a.running = true, s.Running
		if s.Running {
			a.failed, a.pending = false, false
			continue
		}
		p := m.policy(s.Name)
		switch {
		case a.failed:
			// Being handled: a restart's timeout, or the escalation, decides.
		case wasRunning:
			out = append(out, m.appFailed(now, s.Name, a, p, "stopped: "+s.Detail)...)
		case now-a.firstSeen >= p.StartGrace:
			out = append(out, m.appFailed(now, s.Name, a, p, fmt.Sprintf("not running %s after the guest first reported it: %s", p.StartGrace, s.Detail))...)
		}
		if m.done {
			break
		}
	}
	return out
}

// appFailed applies p to a's failure.
func (m *Monitor) appFailed(now time.Duration, name string, a *app, p AppPolicy, why string) []Decision {
	a.failed = true
	switch p.OnFailure {
	case Restart:
		return m.restart(now, name, a, p, why)
	case None:
		return []Decision{{Action: None, App: name, Why: why + " (policy: none)"}}
	}
	return m.escalate(now, p.OnFailure, name, why)
}

// restart asks for a restart within the budget, or escalates.
func (m *Monitor) restart(now time.Duration, name string, a *app, p AppPolicy, why string) []Decision {
	a.restarts = within(a.restarts, now, p.Window)
	if len(a.restarts) >= p.MaxRestarts {
		return m.escalate(now, p.Then, name, fmt.Sprintf("%s, and %d restarts in %s are spent", why, p.MaxRestarts, p.Window))
	}
	a.restarts = append(a.restarts, now)
	a.pending, a.pendingSince = true, now
	return []Decision{{Action: Restart, App: name, Why: fmt.Sprintf("%s (restart %d of %d in %s)", why, len(a.restarts), p.MaxRestarts, p.Window)}}
}

// escalate resets the VM within its budget, or fails it over.
func (m *Monitor) escalate(now time.Duration, act Action, name, why string) []Decision {
	switch act {
	case None:
		return []Decision{{Action: None, App: name, Why: why + " (policy: none)"}}
	case Reset:
		m.resets = within(m.resets, now, m.p.ResetWindow)
		if len(m.resets) < m.p.MaxResets {
			m.resets = append(m.resets, now)
			// The guest boots again: its boot grace starts over.
			m.since, m.heard, m.guestOK, m.apps = now, false, false, map[string]*app{}
			return []Decision{{Action: Reset, App: name, Why: fmt.Sprintf("%s (reset %d of %d in %s)", why, len(m.resets), m.p.MaxResets, m.p.ResetWindow)}}
		}
		why = fmt.Sprintf("%s, and %d resets in %s are spent", why, m.p.MaxResets, m.p.ResetWindow)
	}
	m.done = true
	return []Decision{{Action: Failover, App: name, Why: why}}
}

// Tick applies the timeouts: a silent guest, and restarts that did not
// bring their application back.
func (m *Monitor) Tick(now time.Duration) []Decision {
	if m.done {
		return nil
	}
	if t := m.p.GuestTimeout; t > 0 && !m.guestOK {
		var why string
		switch {
		case m.heard && now-m.last >= t:
			why = fmt.Sprintf("the guest agent is silent for %s (timeout %s)", round(now-m.last), t)
		case !m.heard && now-m.since >= m.p.BootGrace:
			why = fmt.Sprintf("no guest heartbeat %s after the VM started", m.p.BootGrace)
		}
		if why != "" {
			m.guestOK = true // handled once until the guest is heard again
			act := m.p.GuestFailure
			if act != Reset {
				act = Failover
			}
			return m.escalate(now, act, "", why)
		}
	}
	var out []Decision
	for _, name := range slices.Sorted(maps.Keys(m.apps)) {
		a := m.apps[name]
		p := m.policy(name)
		if a.pending && now-a.pendingSince >= p.RestartTimeout {
			a.pending = false
			out = append(out, m.restart(now, name, a, p, fmt.Sprintf("not running %s after its restart", p.RestartTimeout))...)
			if m.done {
				break
			}
		}
	}
	return out
}

// RestartDone takes the guest's answer to a restart: a failed restart is
// another failure.
func (m *Monitor) RestartDone(now time.Duration, name string, err error) []Decision {
	a := m.apps[name]
	if m.done || a == nil || !a.pending || err == nil {
		return nil
	}
	a.pending = false
	return m.restart(now, name, a, m.policy(name), "its restart failed: "+err.Error())
}

// within keeps the times of ts within window before now.
func within(ts []time.Duration, now, window time.Duration) []time.Duration {
	keep := ts[:0]
	for _, t := range ts {
		if now-t < window {
			keep = append(keep, t)
		}
	}
	return keep
}

func round(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
