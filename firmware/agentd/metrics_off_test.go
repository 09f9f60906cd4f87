//go:build vigil_nometrics

package agentd

import "testing"

// TestMetricsNotBuilt: an agent built without the endpoint refuses a
// metrics address with the fix, and starts without one.
func TestMetricsNotBuilt(t *testing.T) {
	d, _ := newTestDaemon(t)
	d.opts.Metrics = ":9464"
	m, err := d.serveMetrics()
	want := "vigil was built without CONFIG_METRICS: rebuild with it enabled (make menuconfig)"
	if m != nil || err == nil || err.Error() != want {
		t.Errorf("serveMetrics(%q) = %v, %v; want the error %q", d.opts.Metrics, m, err, want)
	}
	d.opts.Metrics = ""
	if m, err := d.serveMetrics(); m != nil || err != nil {
		t.Errorf("serveMetrics with no address = %v, %v; want nothing", m, err)
	}
}
