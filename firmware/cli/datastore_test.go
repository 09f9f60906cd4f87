package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/drivers/datastore"
	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/hb"
)

const dsCluster = `
[cluster]
name = "unit"
key_file = "/etc/vigil/unit.key"

[[links]]
name = "mgmt"

[[datastores]]
name = "ds1"
device = %q

[[hosts]]
id = 1
name = "h1"
addresses = ["10.0.0.1"]
cpu = 8
memory = "16GiB"

[[hosts]]
id = 2
name = "h2"
addresses = ["10.0.0.2"]
cpu = 8
memory = "16GiB"

[[vms]]
name = "web"
cpu = 2
memory = "2GiB"
`

func runCLI(args ...string) (int, string, string) {
	var out, errb strings.Builder
	code := Run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestDatastoreCommands(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "ds.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 8<<20); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "cluster.toml")
	if err := os.WriteFile(cfg, []byte(strings.Replace(dsCluster, "%q", `"`+img+`"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runCLI("datastore", "init", img, "--config", cfg); code != 0 || !strings.Contains(out, "layout 2, 64 slots of 4096 bytes, 16 incident slots per host") {
		t.Fatalf("init: %d %q %q", code, out, errs)
	}
	if code, out, _ := runCLI("datastore", "init", img, "--cluster", "unit"); code != 0 || !strings.Contains(out, "left as it is") {
		t.Errorf("second init: %d %q", code, out)
	}
	if code, _, errs := runCLI("datastore", "init", img, "--cluster", "prod"); code != 1 || !strings.Contains(errs, "refusing to overwrite") {
		t.Errorf("init by another cluster: %d %q", code, errs)
	}
	small := filepath.Join(dir, "small.img")
	os.WriteFile(small, make([]byte, 1<<20), 0o600)
	if code, out, errs := runCLI("datastore", "init", small, "--cluster", "unit", "--slots", "8", "--incident-slots", "4"); code != 0 || !strings.Contains(out, "8 slots of 4096 bytes, 4 incident slots per host") {
		t.Errorf("init with 4 incident slots: %d %q %q", code, out, errs)
	}
	if code, _, errs := runCLI("datastore", "init", small, "--cluster", "unit", "--slots", "64"); code != 1 || !strings.Contains(errs, "give a larger device") {
		t.Errorf("init of a device too small: %d %q", code, errs)
	}
	if code, _, errs := runCLI("datastore", "show", img); code != 2 || !strings.Contains(errs, "--config") {
		t.Errorf("show without a config: %d %q", code, errs)
	}

	b, err := datastore.OpenBlock(img, "unit", 2)
	if err != nil {
		t.Fatal(err)
	}
	rec := &cluster.Record{Host: 0, Incarnation: 11, Counter: 5, Hears: hb.HostSet(0b11),
		Claims:      []cluster.Claim{{VM: 0, Epoch: 3, State: cluster.Running}},
		Assignments: []hb.Assignment{{VM: 0, Host: 0, Epoch: 3, From: 1, FromEpoch: 2}},
		Fenced:      []cluster.Proof{{Kind: cluster.ProofLease, Host: 1, Incarnation: 4, Detail: "lease silent 9s"}}}
	if err := b.Write(rec); err != nil {
		t.Fatal(err)
	}
	b.Close()

	code, out, errs := runCLI("datastore", "show", img, "--config", cfg)
	if code != 0 || !strings.Contains(out, "h1    11           5        ok     h1,h2  1    1        1") || !strings.Contains(out, "h2    -            -        empty") {
		t.Errorf("show: %d\n%s%s", code, out, errs)
	}
	code, out, _ = runCLI("datastore", "dump", img, "--config", cfg)
	for _, want := range []string{"claim   web epoch 3 running", "assign  web to h1 epoch 3, from h2 epoch 2", "fenced  h2 incarnation 4 by lease", "slot 1 (h2): empty"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("dump lacks %q: %d\n%s", want, code, out)
		}
	}

	// Corrupt h1's slot: show and dump say what is wrong and exit 1.
	f, _ := os.OpenFile(img, os.O_RDWR, 0)
	f.WriteAt([]byte{0xff}, datastore.SlotSize+40)
	f.Close()
	code, out, _ = runCLI("datastore", "show", img, "--config", cfg, "--json")
	var v datastoreView
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("show --json: %v\n%s", err, out)
	}
	if code != 1 || len(v.Slots) != 2 || !strings.Contains(v.Slots[0].Error, "checksum mismatch") || v.Slots[0].Record != nil || !v.Slots[1].Empty || v.Header == nil || v.Header.Slots != 64 {
		t.Errorf("show --json of a corrupt slot: %d %+v", code, v)
	}
}
