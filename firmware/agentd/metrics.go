//go:build !vigil_nometrics

package agentd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// scrapeTimeout bounds how long a scrape waits for the agent's loop.
const scrapeTimeout = 2 * time.Second

// metricsServer serves the Prometheus endpoint at /metrics.
type metricsServer struct {
	ln  net.Listener
	srv *http.Server
}

// serveMetrics starts the Prometheus endpoint on d.opts.Metrics; it returns
// nil, nil when no address is set.
func (d *daemon) serveMetrics() (*metricsServer, error) {
	addr := d.opts.Metrics
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("agent: metrics endpoint: cannot listen on %s (%w): pass --metrics an address of this host with a free port, such as :9464 or 127.0.0.1:9464", addr, err)
	}
	srv := &http.Server{Handler: d.metricsHandler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("metrics endpoint stopped", "component", "metrics", "addr", addr, "err", err)
		}
	}()
	d.log.Info("serving Prometheus metrics", "component", "metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return &metricsServer{ln: ln, srv: srv}, nil
}

// Close stops the endpoint; a nil server is a no-op.
func (m *metricsServer) Close() {
	if m == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = m.srv.Shutdown(ctx)
}

// Addr is the address the endpoint listens on.
func (m *metricsServer) Addr() string { return m.ln.Addr().String() }

// metricsHandler serves /metrics: the Go and process collectors, and the
// agent's own metrics gathered from its loop with the scrape's context.
func (d *daemon) metricsHandler() http.Handler {
	base := prometheus.NewRegistry()
	base.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	fences := &fenceTally{}
	opts := promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		reg := prometheus.NewRegistry()
		reg.MustRegister(&agentCollector{d: d, ctx: r.Context(), fences: fences})
		promhttp.HandlerFor(prometheus.Gatherers{base, reg}, opts).ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "vigil agent: metrics at /metrics")
	})
	return mux
}
