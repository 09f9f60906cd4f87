package agentd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/drivers/ipmi"
	"github.com/vigil-ha/vigil/drivers/watchdog"
)

// WatchdogReply is GET /v1/watchdog.
type WatchdogReply struct {
	Device   string
	Timeout  time.Duration // the cluster's watchdog_timeout
	Armed    bool          // the agent holds the device open and pets it
	Took     time.Duration // the timeout the device reports (0: unknown)
	TimeLeft time.Duration // before the device resets the host (-1: the driver does not say)
	Pets     uint64
	Stopped  string // why petting stopped on purpose ("": it did not)
	// LastBoot says whether the watchdog caused the last boot.
	LastBoot string
}

// BMCReply is GET /v1/bmc: this host's own BMC through in-band IPMI.
type BMCReply struct {
	Device   string
	Identity string // "": no in-band device
	Power    string // "on", "off", or why it is unknown
	Err      string
}

// LogReply is GET /v1/log?n=N: the agent's most recent log lines.
type LogReply struct{ Lines []string }

// logRing keeps the last lines an agent logged, for `log` on the console.
type logRing struct {
	mu    sync.Mutex
	lines []string
	next  int
	full  bool
}

func newLogRing(n int) *logRing { return &logRing{lines: make([]string, n)} }

func (r *logRing) add(s string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.lines[r.next] = s
	r.next = (r.next + 1) % len(r.lines)
	r.full = r.full || r.next == 0
	r.mu.Unlock()
}

// last returns up to n lines, oldest first.
func (r *logRing) last(n int) []string {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []string
	if r.full {
		all = append(all, r.lines[r.next:]...)
	}
	all = append(all, r.lines[:r.next]...)
	if n > 0 && n < len(all) {
		all = all[len(all)-n:]
	}
	return all
}

// ringHandler tees every record it handles into a logRing as one text
// line, then passes it on.
type ringHandler struct {
	next  slog.Handler
	ring  *logRing
	attrs []slog.Attr
}

func (h *ringHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *ringHandler) Handle(ctx context.Context, r slog.Record) error {
	line := r.Time.Format("15:04:05.000") + " " + r.Level.String() + " " + r.Message
	for _, a := range h.attrs {
		if a.Key != "host" {
			line += " " + a.String()
		}
	}
	r.Attrs(func(a slog.Attr) bool { line += " " + a.String(); return true })
	h.ring.add(line)
	return h.next.Handle(ctx, r)
}

func (h *ringHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &ringHandler{next: h.next.WithAttrs(as), ring: h.ring, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *ringHandler) WithGroup(name string) slog.Handler {
	return &ringHandler{next: h.next.WithGroup(name), ring: h.ring, attrs: h.attrs}
}

// logLines is how many log lines an agent keeps for the console.
const logLines = 500

func (d *daemon) serveConsoleAPI(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/watchdog", func(w http.ResponseWriter, r *http.Request) {
		var rep WatchdogReply
		err := d.call(r.Context(), func() { rep = d.watchdogReply() })
		if err == nil {
			rep.LastBoot = lastBoot(d.opts.Watchdog)
		}
		reply(w, rep, err)
	})
	mux.HandleFunc("GET /v1/bmc", func(w http.ResponseWriter, r *http.Request) {
		reply(w, d.bmcReply(r.Context()), nil) // an IPMI round trip: never on the loop
	})
	mux.HandleFunc("GET /v1/log", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		reply(w, LogReply{Lines: d.ring.last(n)}, nil)
	})
}

func (d *daemon) watchdogReply() WatchdogReply {
	rep := WatchdogReply{Device: d.opts.Watchdog, Timeout: time.Duration(d.cfg.Timing.WatchdogTimeout), Pets: d.pets, TimeLeft: -1, Stopped: d.petStopped}
	if d.wd != nil {
		rep.Armed = true
		if t, err := d.wd.Timeout(); err == nil {
			rep.Took = t
		}
		if t, err := d.wd.TimeLeft(); err == nil {
			rep.TimeLeft = t
		}
	}
	return rep
}

// lastBoot says what the watchdog says of the last boot.
func lastBoot(spec string) string {
	b, err := watchdog.BootStatus(spec)
	switch {
	case errors.Is(err, watchdog.ErrNotSupported):
		return "unknown: the watchdog driver does not report it"
	case err != nil:
		return "unknown: " + err.Error()
	case b.CardReset():
		return "reset by the watchdog"
	}
	return "not by the watchdog (power on, reboot or BMC)"
}

func (d *daemon) bmcReply(ctx context.Context) BMCReply {
	dev := d.opts.IPMIDevice
	rep := BMCReply{Device: dev}
	if dev == "" {
		rep.Device = ipmi.DefaultDevice
	}
	l, err := ipmi.OpenLocal(dev, ipmi.LocalOptions{})
	if err != nil {
		rep.Err = err.Error()
		return rep
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	rep.Identity = ownBMC(ctx, l)
	on, err := l.PowerStatus(ctx)
	switch {
	case err != nil:
		rep.Power = "unknown: " + err.Error()
	case on:
		rep.Power = "on"
	default:
		rep.Power = "off"
	}
	return rep
}

// fenceSelf is an operator's order to fence this host now: through its
// own BMC (power off, or reset with --self-fence ipmi-reset) when it has
// one, else by no longer petting its watchdog. Loop only.
func (d *daemon) fenceSelf(by string) error {
	reset := d.opts.SelfFence == SelfFenceReset
	l := d.local
	if l == nil {
		if o, err := ipmi.OpenLocal(d.opts.IPMIDevice, ipmi.LocalOptions{}); err == nil {
			l = o
		}
	}
	if l != nil {
		d.log.Error("self-fence ordered: powering off through this host's BMC", "component", "wd", "by", by, "reset", reset)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var err error
			if reset {
				err = l.HardReset(ctx)
			} else {
				err = l.PowerOff(ctx)
			}
			if err != nil {
				d.log.Error("the ordered self-fence through the BMC failed: the watchdog resets the host", "component", "wd", "err", err)
			}
		}()
		d.petStopped = "self-fence ordered by " + by
		return nil
	}
	if d.wd == nil {
		return fmt.Errorf("cannot fence this host: no in-band BMC (%s) and the watchdog is not armed: power it off through its BMC from another host (vigil fence)", ipmi.DefaultDevice)
	}
	d.petStopped = "self-fence ordered by " + by
	d.log.Error("self-fence ordered: the watchdog is no longer petted", "component", "wd", "by", by, "within", time.Duration(d.cfg.Timing.WatchdogTimeout))
	return nil
}
