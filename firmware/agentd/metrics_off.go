//go:build vigil_nometrics

package agentd

import "errors"

// errNoMetrics is what an agent built without the Prometheus endpoint
// answers to a metrics address.
var errNoMetrics = errors.New("vigil was built without CONFIG_METRICS: rebuild with it enabled (make menuconfig)")

// metricsServer stands in for the Prometheus endpoint this build lacks.
type metricsServer struct{}

// serveMetrics fails when a metrics address is set: this build has no
// Prometheus endpoint.
func (d *daemon) serveMetrics() (*metricsServer, error) {
	if d.opts.Metrics != "" {
		return nil, errNoMetrics
	}
	return nil, nil
}

// Close does nothing.
func (m *metricsServer) Close() {}

// Addr is "": there is no endpoint.
func (m *metricsServer) Addr() string { return "" }
