package agentd

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/firmware/agent"
	"github.com/vigil-ha/vigil/firmware/agent/agenttest"
	"github.com/vigil-ha/vigil/firmware/config"
	"github.com/vigil-ha/vigil/hb"
)

// testCluster is three hosts on two links with one folder datastore; %q is
// the datastore's folder.
const testCluster = `
[cluster]
name = "unit"
key_file = "/etc/vigil/unit.key"

[[links]]
name = "mgmt"

[[links]]
name = "storage"

[[datastores]]
name = "ds1"
path = %q

[[hosts]]
id = 1
name = "h1"
addresses = ["10.0.0.1", "10.1.0.1"]
cpu = 8
memory = "16GiB"

[[hosts]]
id = 2
name = "h2"
addresses = ["10.0.0.2", "10.1.0.2"]
cpu = 8
memory = "16GiB"

[[hosts]]
id = 3
name = "h3"
addresses = ["10.0.0.3", "10.1.0.3"]
cpu = 8
memory = "16GiB"
`

// testKey returns a key of hb.MinKeySize bytes, all b.
func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, hb.MinKeySize) }

// testRing returns a ring that signs with key and accepts only it.
func testRing(t testing.TB, key []byte) *hb.Keyring {
	t.Helper()
	ring, err := hb.NewKeyring(hb.KeyLine{Key: key})
	if err != nil {
		t.Fatalf("keyring: %v", err)
	}
	return ring
}

// newTestDaemon returns the daemon of host h1 of testCluster, with keys
// testKey(1), its core driven over a recEnv, and no NICs, datastores,
// hypervisor or watchdog. The API socket and the state folder are in a
// fresh temporary folder.
func newTestDaemon(t testing.TB) (*daemon, *agenttest.Recorder) {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Parse(fmt.Appendf(nil, testCluster, dir))
	if err != nil {
		t.Fatalf("cluster file: %v", err)
	}
	self, ok := cfg.HostByName("h1")
	if !ok {
		t.Fatal("h1 is not in the cluster file")
	}
	ring := testRing(t, testKey(1))
	d := &daemon{
		opts:   Options{API: dir + "/api.sock", State: dir},
		log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		cfg:    cfg,
		spec:   cfg.Spec(),
		self:   self,
		start:  time.Now(),
		keys:   &keyState{ring: ring},
		codec:  hb.NewCodec(hb.ClusterID(cfg.Cluster.Name), ring),
		events: make(chan cluster.Event, 16),
		calls:  make(chan func()),
		once:   map[string]bool{},
	}
	d.sendErrors = make([]uint64, len(cfg.Links))
	d.node = cluster.NewNode(cluster.Config{Spec: d.spec, Self: self, Incarnation: 1})
	env := &agenttest.Recorder{Clock: 10 * time.Second}
	d.ag = agent.New(d.node, env)
	return d, env
}

// packet encodes m for the named cluster, signed with ring's first key.
func packet(t testing.TB, clusterName string, ring *hb.Keyring, m hb.Message) []byte {
	t.Helper()
	pkt, err := hb.NewCodec(hb.ClusterID(clusterName), ring).Encode(nil, &m)
	if err != nil {
		t.Fatalf("encode %+v: %v", m, err)
	}
	return pkt
}

// dropDelta lists the drop reasons whose count grew between two snapshots
// as "reason+n", sorted; "" when none did.
func dropDelta(before, after map[string]uint64) string {
	var out []string
	for r, n := range after {
		if n != before[r] {
			out = append(out, fmt.Sprintf("%s+%d", r, n-before[r]))
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}
