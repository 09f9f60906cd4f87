//go:build linux

package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/drivers/appwatch"
	"github.com/vigil-ha/vigil/drivers/guest"
	"github.com/vigil-ha/vigil/firmware/config"
)

func init() {
	Register(Command{Name: "guest", Summary: "the guest agent, inside a VM: heartbeats and application states to the host", Run: runGuest})
}

// DefaultGuestConfig is vigil guest's file.
const DefaultGuestConfig = "/etc/vigil/guest.toml"

const guestUsage = `usage: vigil guest [--config FILE] [--port DEVICE]
  --config FILE  the applications to watch (default ` + DefaultGuestConfig + `; without
                 it, the guest only heartbeats)
  --port DEVICE  the virtio-serial port (default ` + guest.DevicePath + `)

Runs inside a VM: sends its host's vigil agent a heartbeat every interval
with the state of each application it watches (found by process name,
pidfile or systemd unit, or run by it), reports an exit at once, and
restarts an application when the host's policy asks.
`

func runGuest(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("guest", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	file := fs.String("config", DefaultGuestConfig, "")
	port := fs.String("port", "", "")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		fmt.Fprint(stderr, guestUsage)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("component", "guest")
	g := &config.Guest{}
	data, err := os.ReadFile(*file)
	switch {
	case errors.Is(err, os.ErrNotExist) && *file == DefaultGuestConfig:
		log.Info("no " + DefaultGuestConfig + ": watching no application, heartbeats only")
		g, _ = config.ParseGuest(nil)
	case err != nil:
		fmt.Fprintf(stderr, "vigil guest: %v\n", err)
		return 1
	default:
		if g, err = config.ParseGuest(data); err != nil {
			fmt.Fprintf(stderr, "vigil guest: %s: %v\n", *file, err)
			return 1
		}
	}
	if *port != "" {
		g.Port = *port
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := RunGuest(ctx, g, log); err != nil {
		fmt.Fprintf(stderr, "vigil guest: %v\n", err)
		return 1
	}
	return 0
}

// RunGuest runs the guest agent of g until ctx ends.
func RunGuest(ctx context.Context, g *config.Guest, log *slog.Logger) error {
	a := guest.NewAgent(g.Port, Version, time.Duration(g.Heartbeat), log)
	var apps []appwatch.App
	for _, x := range g.Apps {
		apps = append(apps, appwatch.App{Name: x.Name, Process: x.Process, Pidfile: x.Pidfile, Unit: x.Unit, Run: x.Run, Start: x.Start})
	}
	w, err := appwatch.New(apps, time.Duration(g.Scan), func(s appwatch.State) {
		log.Info("application "+stateWord(s), "app", s.Name, "pid", s.PID, "detail", s.Detail)
		a.Changed(s)
	})
	if err != nil {
		return err
	}
	a.Apps = w
	go w.Run(ctx)
	return a.Run(ctx)
}

func stateWord(s appwatch.State) string {
	if s.Running {
		return "running"
	}
	return "not running"
}
