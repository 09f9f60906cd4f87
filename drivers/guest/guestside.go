//go:build linux

package guest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/drivers/appwatch"
)

// Agent is the guest's side: vigil guest.
type Agent struct {
	// Port is the channel's device (DevicePath by default).
	Port string
	// Heartbeat is the interval between heartbeats (DefaultHeartbeat).
	Heartbeat time.Duration
	// Apps watches the applications; nil watches none (the guest's own
	// heartbeat still tells the host that the guest runs).
	Apps    *appwatch.Watcher
	Version string
	Log     *slog.Logger

	changed chan struct{}
}

// Changed is the appwatch callback that has the agent send a heartbeat at
// once: pass it to appwatch.New.
func (a *Agent) Changed(appwatch.State) {
	select {
	case a.changed <- struct{}{}:
	default:
	}
}

// NewAgent returns an agent with the defaults filled in; set Apps before
// Run.
func NewAgent(port, version string, heartbeat time.Duration, log *slog.Logger) *Agent {
	if port == "" {
		port = DevicePath
	}
	if heartbeat <= 0 {
		heartbeat = DefaultHeartbeat
	}
	return &Agent{Port: port, Heartbeat: heartbeat, Version: version, Log: log, changed: make(chan struct{}, 1)}
}

// reopen is how long the agent waits before it opens the port again after
// the port failed or the host closed its end.
const reopen = time.Second

// Run talks to the host until ctx ends, opening the port again whenever it
// fails (the host agent restarted, the port is not there yet).
func (a *Agent) Run(ctx context.Context) error {
	said := ""
	for {
		err := a.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if msg := err.Error(); msg != said {
			a.Log.Warn("guest channel down: trying again every second", "port", a.Port, "err", err)
			said = msg
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(reopen):
		}
	}
}

func (a *Agent) apps() []App {
	if a.Apps == nil {
		return nil
	}
	var out []App
	for _, s := range a.Apps.States() {
		out = append(out, App{Name: s.Name, Running: s.Running, PID: s.PID, Exits: s.Exits, Detail: s.Detail})
	}
	return out
}

// findPort returns the device of the port at path: path itself, or, for
// the default path on a system without udev (no /dev/virtio-ports links),
// the /dev/vportNpM that sysfs names Port.
func findPort(path, sys string) string {
	if path != DevicePath {
		return path
	}
	if _, err := os.Stat(path); err == nil {
		return path
	}
	names, _ := filepath.Glob(filepath.Join(sys, "class", "virtio-ports", "*", "name"))
	for _, n := range names {
		if b, err := os.ReadFile(n); err == nil && strings.TrimSpace(string(b)) == Port {
			return "/dev/" + filepath.Base(filepath.Dir(n))
		}
	}
	return path
}

// session runs one opening of the port.
func (a *Agent) session(ctx context.Context) error {
	f, err := os.OpenFile(findPort(a.Port, "/sys"), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w (is the VM's guest port configured? guest_agent in its definition)", a.Port, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { <-ctx.Done(); f.Close() }()
	var wmu sync.Mutex
	send := func(m *Message) error {
		wmu.Lock()
		defer wmu.Unlock()
		return Write(f, m)
	}
	if err := send(&Message{Type: TypeHello, Version: a.Version, Apps: a.apps()}); err != nil {
		return fmt.Errorf("write %s: %w", a.Port, err)
	}
	a.Log.Info("guest channel open: heartbeats to the host", "port", a.Port, "every", a.Heartbeat)
	errc := make(chan error, 2)
	go func() {
		t := time.NewTicker(a.Heartbeat)
		defer t.Stop()
		for seq := uint64(1); ; seq++ {
			select {
			case <-ctx.Done():
				errc <- ctx.Err()
				return
			case <-t.C:
			case <-a.changed:
			}
			if err := send(&Message{Type: TypeHeartbeat, Seq: seq, Apps: a.apps()}); err != nil {
				errc <- fmt.Errorf("write %s: %w", a.Port, err)
				return
			}
		}
	}()
	go func() {
		r := NewReader(f)
		for {
			m, err := r.Read()
			if errors.Is(err, ErrBadMessage) {
				a.Log.Warn("a bad line from the host: ignored", "err", err)
				continue
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = errors.New("the host closed the channel")
				}
				errc <- err
				return
			}
			if m.Type != TypeRestart {
				continue
			}
			go func() {
				done := &Message{Type: TypeDone, ID: m.ID}
				var err error
				if a.Apps == nil {
					err = fmt.Errorf("this guest watches no application %s", m.App)
				} else {
					err = a.Apps.Restart(ctx, m.App)
				}
				if err != nil {
					done.Err = err.Error()
					a.Log.Warn("restart asked by the host failed", "app", m.App, "err", err)
				} else {
					a.Log.Info("restarted on the host's request", "app", m.App)
				}
				send(done)
			}()
		}
	}()
	return <-errc
}
