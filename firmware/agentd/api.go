package agentd

import (
	"github.com/vigil-ha/vigil/drivers/appwatch"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/hb"
)

// StatusReply is GET /v1/status.
type StatusReply struct {
	Version    string
	Uptime     time.Duration
	Status     cluster.Status
	Drops      map[string]uint64 // heartbeats dropped, per reason
	SendErrors []uint64          // per link, sends that failed (a NIC without carrier)
	Pets       uint64            // watchdog pets so far
	Keys       []hb.KeyInfo      // the cluster keys in force (ids, never the keys)
	Links      []string          // local device of each link
	// Datastores names each datastore and this host's path to it, as
	// "NAME PATH".
	Datastores []string
	// BMCs are the peers' BMCs as this host last found them.
	BMCs []BMCStatus
	// Held says why the host waits for an operator ('vigil rejoin'), or "".
	Held string
	// OwnBMC says who this host's own BMC is, through /dev/ipmi0 ("":
	// no in-band device).
	OwnBMC string
	// Kernel is each eBPF evidence feature: active, or what stands in.
	Kernel []FeatureStatus
	// PID and RSS are the agent's process and resident memory (bytes).
	PID int
	RSS uint64
	// Guests are the guests of the QEMU VMs this host runs, as their
	// guest agents last reported.
	Guests []GuestStatus
	// Services are the host daemons this agent watches.
	Services []appwatch.State
}

// ExplainReply is GET /v1/explain?host=NAME.
type ExplainReply struct {
	Host    string
	Verdict string
	Rows    []string
}

// Version is the agent's version, set by the binary.
var Version = "dev"

type apiServer struct {
	ln  net.Listener
	srv *http.Server
}

func (a *apiServer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = a.srv.Shutdown(ctx)
	_ = os.Remove(a.ln.Addr().String())
}

func (d *daemon) serveAPI() (*apiServer, error) {
	path := d.opts.API
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("agent: API socket folder: %w", err)
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("agent: API socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("agent: API socket: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		var rep StatusReply
		err := d.call(r.Context(), func() { rep = d.statusReply() })
		reply(w, rep, err)
	})
	mux.HandleFunc("GET /v1/explain", func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("host")
		var rep ExplainReply
		var bad error
		err := d.call(r.Context(), func() {
			h := d.node.HostIndex(name)
			if h < 0 {
				bad = fmt.Errorf("no host %q in the cluster: run 'vigil peers' for the names", name)
				return
			}
			rep = ExplainReply{Host: name, Rows: d.node.Explain(h, env{d}.Now())}
			if h == d.self {
				rep.Verdict = d.node.Self().String()
			} else {
				rep.Verdict = d.node.Verdicts()[h].String()
			}
		})
		if err == nil && bad != nil {
			http.Error(w, bad.Error(), http.StatusNotFound)
			return
		}
		reply(w, rep, err)
	})
	mux.HandleFunc("GET /v1/ebpf", func(w http.ResponseWriter, r *http.Request) {
		var rep EBPFReply
		err := d.call(r.Context(), func() { rep = d.ebpfReply() })
		reply(w, rep, err)
	})
	mux.HandleFunc("GET /v1/incidents", func(w http.ResponseWriter, r *http.Request) {
		reply(w, d.incidentsReply(), nil) // the log has its own lock: no trip through the loop
	})
	mux.HandleFunc("POST /v1/command", func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("name")
		if name == "fence-self" {
			var bad error
			by := r.URL.Query().Get("by")
			if by == "" {
				by = "the local API"
			}
			err := d.call(r.Context(), func() { bad = d.fenceSelf(by) })
			if err == nil && bad != nil {
				http.Error(w, bad.Error(), http.StatusConflict)
				return
			}
			reply(w, struct{ OK bool }{true}, err)
			return
		}
		if name == "rejoin" {
			err := d.call(r.Context(), d.rejoin)
			reply(w, struct{ OK bool }{true}, err)
			return
		}
		if name == "vm-stop" || name == "vm-start" || name == "vm-move" {
			vm := r.URL.Query().Get("vm")
			v := d.vmIndex(vm)
			if v < 0 {
				http.Error(w, fmt.Sprintf("%s: no VM %q in the cluster file", name, vm), http.StatusNotFound)
				return
			}
			to := -1
			if name == "vm-move" {
				host := r.URL.Query().Get("host")
				if h, ok := d.cfg.HostByName(host); ok {
					to = h
				} else {
					http.Error(w, fmt.Sprintf("vm-move: no host %q in the cluster file", host), http.StatusNotFound)
					return
				}
			}
			var bad error
			err := d.call(r.Context(), func() { bad = d.vmCommand(name, v, to) })
			if err == nil && bad != nil {
				http.Error(w, bad.Error(), http.StatusConflict)
				return
			}
			reply(w, struct{ OK bool }{true}, err)
			return
		}
		if name != "maintenance-enter" && name != "maintenance-exit" {
			http.Error(w, fmt.Sprintf("unknown command %q: use maintenance-enter, maintenance-exit, vm-stop, vm-start, vm-move, rejoin or fence-self", name), http.StatusBadRequest)
			return
		}
		err := d.call(r.Context(), func() { d.ag.Handle(cluster.Command{Name: name}) })
		reply(w, struct{ OK bool }{true}, err)
	})
	d.serveConsoleAPI(mux)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return &apiServer{ln: ln, srv: srv}, nil
}

// removeStaleSocket removes a socket file no agent answers on; a live one
// means another agent runs on this host.
func removeStaleSocket(path string) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return fmt.Errorf("agent: another agent answers on %s: stop it first, or pass another --api", path)
	}
	return os.Remove(path)
}

// call runs f on the loop goroutine and waits for it.
func (d *daemon) call(ctx context.Context, f func()) error {
	done := make(chan struct{})
	select {
	case d.calls <- func() { f(); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(5 * time.Second):
		return errStopped
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// vmCommand hands an operator's vm-stop, vm-start or vm-move (to host to)
// of VM v to the core, after checking that this host holds what it needs:
// a running VM to stop or move, an operator's stop to undo.
func (d *daemon) vmCommand(name string, v, to int) error {
	vm := d.cfg.VMs[v].Name
	var st *cluster.VMStatus
	for _, s := range d.node.Status(env{d}.Now()).VMs {
		if s.Name == vm {
			st = &s
		}
	}
	switch {
	case (name == "vm-stop" || name == "vm-move") && (st == nil || (st.State != "running" && st.State != "starting")):
		return fmt.Errorf("%s does not run on this host: %s it on the host that runs it (vigil vm list)", vm, strings.TrimPrefix(name, "vm-"))
	case name == "vm-move" && to == d.self:
		return fmt.Errorf("%s runs on this host already", vm)
	case name == "vm-start" && (st == nil || st.State != "released" || st.Reason != "stopped"):
		return fmt.Errorf("this host holds no operator's stop of %s: start it on the host where it was stopped (vigil vm list)", vm)
	}
	d.ag.Handle(cluster.Command{Name: name, VM: v, Host: to})
	return nil
}

func (d *daemon) statusReply() StatusReply {
	rep := StatusReply{Version: Version, Uptime: time.Since(d.start).Round(time.Millisecond), Status: d.node.Status(env{d}.Now()),
		Keys: d.codecKeys(), Drops: d.drops.Snapshot(), SendErrors: append([]uint64(nil), d.sendErrors...), Pets: d.pets}
	for l := range d.cfg.Links {
		rep.Links = append(rep.Links, d.nics.Device(l))
	}
	for _, ds := range d.cfg.Datastores {
		rep.Datastores = append(rep.Datastores, ds.Name+" "+ds.Path+ds.Device)
	}
	rep.BMCs = d.bmcStatuses()
	rep.Held = d.held
	rep.OwnBMC = d.ownBMC
	rep.PID, rep.RSS = os.Getpid(), selfRSS()
	rep.Guests = d.guests.statuses()
	rep.Services = d.services.states()
	if d.kern != nil {
		rep.Kernel = append(rep.Kernel, d.kern.features...)
	}
	return rep
}

func (d *daemon) codecKeys() []hb.KeyInfo {
	ring, _ := d.keys.get()
	return ring.Info()
}

func reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Client reads an agent's local API.
type Client struct {
	hc *http.Client
}

// NewClient returns a client for the agent listening on socket.
func NewClient(socket string) *Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "unix", socket)
	}}
	return &Client{hc: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// Get fetches path (such as "/v1/status") into v.
func (c *Client) Get(ctx context.Context, path string, v any) error { return c.do(ctx, "GET", path, v) }

// Post posts to path and decodes the answer into v.
func (c *Client) Post(ctx context.Context, path string, v any) error {
	return c.do(ctx, "POST", path, v)
}

func (c *Client) do(ctx context.Context, method, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://vigil"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("no agent answers (%w): is 'vigil agent' running, and is --api the socket it serves?", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("agent: %s", bytesTrim(msg))
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func bytesTrim(b []byte) string {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return string(b)
}

// selfRSS is this process's resident memory, from /proc/self/status (0:
// unknown).
func selfRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb uint64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
			return kb << 10
		}
	}
	return 0
}
