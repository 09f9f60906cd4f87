package lab

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vigil-ha/vigil/drivers/datastore"
	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/firmware/config"
)

// labLoops lists the loop devices attached to files of lab name.
func labLoops(t *testing.T, name string) []string {
	t.Helper()
	files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	var out []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err == nil && strings.HasPrefix(string(data), labDir(name)+"/") {
			out = append(out, f)
		}
	}
	return out
}

// TestLabDatastores: a lab's hosts share a folder datastore and a LUN,
// each through a path of its own that fails or hangs alone.
func TestLabDatastores(t *testing.T) {
	l := testLab(t, Options{Hosts: 2, Links: 1})
	s := mustState(t, l)
	cfg, err := config.Load(filepath.Join(s.Dir, "cluster.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Datastores) != 2 || cfg.Datastores[1].Device != s.Device || s.Device == "" {
		t.Fatalf("datastores %+v, state device %q", cfg.Datastores, s.Device)
	}
	if len(labLoops(t, l.Name())) != 3 {
		t.Errorf("loop devices %v; want the cluster file's and one per host", labLoops(t, l.Name()))
	}
	blocks := map[string]*datastore.Block{}
	folders := map[string]string{}
	for _, h := range s.Hosts {
		b, err := datastore.OpenBlock(filepath.Join(h.Dir, blockDS), l.Name(), 2)
		if err != nil {
			t.Fatalf("%s's LUN path: %v", h.Name, err)
		}
		defer b.Close()
		blocks[h.Name] = b
		folders[h.Name] = filepath.Join(hostStore(h.Dir), folderDS)
	}
	if err := blocks["h1"].Write(&cluster.Record{Host: 0, Incarnation: 3, Counter: 1}); err != nil {
		t.Fatal(err)
	}
	if recs, err := blocks["h2"].ReadAll(); err != nil || recs[0] == nil || recs[0].Counter != 1 {
		t.Fatalf("h2 read %v, %v; want h1's record", recs, err)
	}
	if err := os.WriteFile(filepath.Join(folders["h1"], "probe"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	if err := l.DSFail("h1", blockDS); err != nil {
		t.Fatal(err)
	}
	if err := l.DSFail("h2", folderDS); err != nil {
		t.Fatal(err)
	}
	if _, err := blocks["h1"].ReadAll(); err == nil {
		t.Error("h1 read the LUN through a failed path")
	}
	if _, err := blocks["h2"].ReadAll(); err != nil {
		t.Errorf("h2's LUN path: %v", err)
	}
	if _, err := os.ReadFile(filepath.Join(folders["h2"], "probe")); !errors.Is(err, syscall.EIO) {
		t.Errorf("h2 read the folder through a failed path: %v; want EIO", err)
	}
	if _, err := os.ReadFile(filepath.Join(folders["h1"], "probe")); err != nil {
		t.Errorf("h1's folder path: %v", err)
	}
	st, err := l.Status()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(st.Hosts[0].Datastores, ",") + "|" + strings.Join(st.Hosts[1].Datastores, ","); got != "ok,fail|fail,ok" {
		t.Errorf("status datastores %s; want ok,fail|fail,ok", got)
	}

	if err := l.DSHang("h1", folderDS); err != nil {
		t.Fatal(err)
	}
	read := make(chan error, 1)
	go func() {
		_, err := os.ReadFile(filepath.Join(folders["h1"], "probe"))
		read <- err
	}()
	if err := l.DSHeal("all", "all"); err != nil {
		t.Fatal(err)
	}
	if err := <-read; err != nil {
		t.Errorf("a read on a hung path after the heal: %v", err)
	}
	if _, err := blocks["h1"].ReadAll(); err != nil {
		t.Errorf("h1's LUN path after the heal: %v", err)
	}
	if st := mustState(t, l); len(st.Hosts[0].DSModes)+len(st.Hosts[1].DSModes) != 0 {
		t.Errorf("modes after healing all: %v, %v", st.Hosts[0].DSModes, st.Hosts[1].DSModes)
	}

	var ud *UnknownDatastoreError
	if err := l.DSFail("h1", "ds7"); !errors.As(err, &ud) || !strings.Contains(err.Error(), "use ds0, ds1 or all") {
		t.Errorf("ds-fail on ds7: %v; want an UnknownDatastoreError", err)
	}
	var uh *UnknownHostError
	if err := l.DSFail("h9", "ds0"); !errors.As(err, &uh) {
		t.Errorf("ds-fail on h9: %v; want an UnknownHostError", err)
	}
}
