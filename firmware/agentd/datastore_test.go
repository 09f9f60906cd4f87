package agentd

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/drivers/datastore"
)

// TestSetupOpensBlockDatastores: a device datastore must have been
// initialised for this cluster before the agent starts, and one that was
// is opened (setup then goes on to the NICs, absent here).
func TestSetupOpensBlockDatastores(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "ds.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "cluster.key")
	if err := os.WriteFile(key, []byte(fmt.Sprintf("%x\n", testKey(1))), 0o600); err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf(testCluster, "unused")
	text = strings.Replace(text, `path = "unused"`, fmt.Sprintf("device = %q", img), 1)
	text = strings.Replace(text, `key_file = "/etc/vigil/unit.key"`, fmt.Sprintf("key_file = %q", key), 1)
	cfg := filepath.Join(dir, "cluster.toml")
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := Options{Config: cfg, Host: "h1", State: filepath.Join(dir, "state"), Watchdog: "/dev/null",
		VMDir: filepath.Join(dir, "vms"), API: filepath.Join(dir, "api.sock"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	_, err := setup(opts)
	if err == nil || !strings.Contains(err.Error(), "vigil datastore init "+img) {
		t.Fatalf("setup over an uninitialised device: %v; want the init command named", err)
	}
	if _, err := datastore.InitBlock(img, "unit", 3); err != nil {
		t.Fatal(err)
	}
	_, err = setup(opts)
	if err == nil || strings.Contains(err.Error(), "datastore") {
		t.Fatalf("setup over an initialised device: %v; want it past the datastores (to the missing NICs)", err)
	}
}
