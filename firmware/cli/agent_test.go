package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestAgentMetricsFlag: --metrics takes HOST:PORT or :PORT; a valid one
// reaches the agent (which here stops at the missing cluster file).
func TestAgentMetricsFlag(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.toml")
	for _, tc := range []struct {
		addr string
		code int
		err  string
	}{
		{"9464", 2, `--metrics "9464": want HOST:PORT or :PORT, such as :9464`},
		{"localhost", 2, `--metrics "localhost": want HOST:PORT`},
		{":9464", 1, "none.toml"},
		{"127.0.0.1:9464", 1, "none.toml"},
		{"[::1]:9464", 1, "none.toml"},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			code, _, stderr := runCLI("agent", "--config", missing, "--host", "h1", "--metrics", tc.addr)
			if code != tc.code || !strings.Contains(stderr, tc.err) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, tc.code, tc.err)
			}
		})
	}
	if code, _, stderr := runCLI("agent", "--config", missing, "--host", "h1", "--metrics"); code != 2 || !strings.Contains(stderr, "flag needs an argument: -metrics") {
		t.Errorf("--metrics without a value: exit %d, stderr %q; want a usage error", code, stderr)
	}
}
