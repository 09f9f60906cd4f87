package agentd

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/drivers/datastore"
	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/firmware/config"
)

// TestOpenStoreLate: a datastore that cannot be reached at start does not
// stop the agent; it fails until it can be opened, then works. One that
// answers but is not this cluster's stops it.
func TestOpenStoreLate(t *testing.T) {
	dir := t.TempDir()
	cfg := &config.Config{Cluster: config.Cluster{Name: "unit"}, Hosts: make([]config.Host, 3)}
	d := &daemon{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil))}

	// A folder behind a file stands for an export that is not mounted.
	shared := filepath.Join(dir, "shared")
	if err := os.WriteFile(shared, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := d.openStore(config.Datastore{Name: "ds0", Path: shared}, nil)
	if err != nil {
		t.Fatalf("an unreachable folder stopped the agent: %v", err)
	}
	if _, ok := st.(*lateStore); !ok {
		t.Fatalf("store %T; want a lateStore", st)
	}
	rec := &cluster.Record{Host: 1, Incarnation: 5, Counter: 9}
	if err := st.Write(rec); err == nil {
		t.Fatal("a write to an unreachable folder succeeded")
	}
	if _, err := st.ReadAll(); err == nil {
		t.Fatal("a read of an unreachable folder succeeded")
	}
	if err := os.Remove(shared); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(shared, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := st.Write(rec); err != nil {
		t.Fatalf("the write once the folder is there: %v", err)
	}
	recs, err := st.ReadAll()
	if err != nil || recs[1] == nil || recs[1].Counter != 9 {
		t.Fatalf("read back %v, %v; want counter 9 in slot 1", recs, err)
	}

	// A device without a header answers: the operator must init it.
	img := filepath.Join(dir, "ds.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.openStore(config.Datastore{Name: "ds1", Device: img}, nil); err == nil || !strings.Contains(err.Error(), "vigil datastore init") {
		t.Fatalf("an uninitialised device: %v; want the agent stopped with the init command", err)
	}
	// A device that is missing at start is opened once it appears.
	late := filepath.Join(dir, "late.img")
	st, err = d.openStore(config.Datastore{Name: "ds1", Device: late}, nil)
	if err != nil {
		t.Fatalf("a missing device stopped the agent: %v", err)
	}
	if _, err := st.ReadAll(); err == nil {
		t.Fatal("a read of a missing device succeeded")
	}
	if err := os.WriteFile(late, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := datastore.InitBlock(late, "unit", 3); err != nil {
		t.Fatal(err)
	}
	if err := st.Write(rec); err != nil {
		t.Fatalf("the write once the device is there: %v", err)
	}
	st.(*lateStore).Close()
}
