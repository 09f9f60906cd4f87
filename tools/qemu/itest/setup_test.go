package itest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/firmware/config"
	"github.com/vigil-ha/vigil/image"
	"github.com/vigil-ha/vigil/tools/privtest"
	"github.com/vigil-ha/vigil/tools/qemu"
)

// fixture is what every test boots: the kernel, the image and the vigil
// binary in it, built once per test binary.
type fixture struct {
	dir     string
	vigil   string
	kernel  *image.Kernel
	initrd  string
	buildIn time.Duration
}

var (
	fixOnce sync.Once
	fix     *fixture
	fixErr  error
	// fixSkip says why the fixture cannot be built here (not root, no
	// QEMU): the tests skip, or fail under VIGIL_REQUIRE_PRIV=1.
	fixSkip string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fix != nil {
		os.RemoveAll(fix.dir)
	}
	os.Exit(code)
}

// setup returns the fixture, building it on first use (qemu.BuildFixture).
func setup(t testing.TB) *fixture {
	t.Helper()
	privtest.Require(t)
	if _, err := exec.LookPath(qemu.DefaultBinary); err != nil {
		privtest.Unavailable(t, qemu.DefaultBinary+" is not installed (make qemu-deps installs it)")
	}
	fixOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		var f *qemu.Fixture
		f, fixSkip, fixErr = qemu.BuildFixture(ctx)
		if f != nil {
			fix = &fixture{dir: f.Dir, vigil: f.Vigil, kernel: f.Kernel, initrd: f.Initrd, buildIn: f.BuildIn}
		}
	})
	if fixSkip != "" {
		privtest.Unavailable(t, fixSkip)
	}
	if fixErr != nil {
		t.Fatalf("building the image: %v", fixErr)
	}
	return fix
}

// cluster is a cluster file for the tests: hosts h1..hN with one address
// each on link l0 (10.99.0.N), one device datastore ds0 on the virtio disk
// with serial ds0, and timing short enough for QEMU runs.
type cluster struct {
	hosts  int
	timing config.Timing
}

func newCluster(hosts int) cluster {
	t := config.Default().Timing
	// The shortest timing the rules allow with room for a slow,
	// emulated guest: io 2s, r 1s, so L >= 3s and W >= 3s.
	t.DatastoreInterval = config.Duration(time.Second)
	t.IOTimeout = config.Duration(2 * time.Second)
	t.Grace = config.Duration(time.Second)
	t.LeaseTimeout = config.Duration(4 * time.Second)
	t.WatchdogTimeout = config.Duration(3 * time.Second)
	t.Margin = config.Duration(500 * time.Millisecond)
	t.FenceTimeout = config.Duration(10 * time.Second)
	return cluster{hosts: hosts, timing: t}
}

const (
	clusterName = "qemu-itest"
	port        = 5405
)

func hostName(n int) string { return fmt.Sprintf("h%d", n) }
func hostAddr(n int) string { return fmt.Sprintf("10.99.0.%d", n) }

// toml renders the cluster file.
func (c cluster) toml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[cluster]\nname = %q\nkey_file = \"/etc/vigil/cluster.key\"\nport = %d\n\n", clusterName, port)
	d := func(v config.Duration) string { return time.Duration(v).String() }
	t := c.timing
	fmt.Fprintf(&b, "[timing]\nheartbeat = %q\nlink_timeout = %q\ndatastore_interval = %q\nio_timeout = %q\n",
		d(t.Heartbeat), d(t.LinkTimeout), d(t.DatastoreInterval), d(t.IOTimeout))
	fmt.Fprintf(&b, "lease_timeout = %q\nwatchdog_timeout = %q\nmargin = %q\nfence_timeout = %q\ngrace = %q\nbmc_poll = %q\n\n",
		d(t.LeaseTimeout), d(t.WatchdogTimeout), d(t.Margin), d(t.FenceTimeout), d(t.Grace), d(t.BMCPoll))
	fmt.Fprintf(&b, "[policy]\nhost_failures = %d\n\n", min(1, c.hosts-1))
	fmt.Fprintf(&b, "[[links]]\nname = \"l0\"\n\n[[datastores]]\nname = \"ds0\"\ndevice = \"/dev/disk/by-id/virtio-ds0\"\n")
	for n := 1; n <= c.hosts; n++ {
		fmt.Fprintf(&b, "\n[[hosts]]\nid = %d\nname = %q\naddresses = [%q]\ncpu = 2\nmemory = \"1GiB\"\n", n, hostName(n), hostAddr(n))
	}
	return b.String()
}

// files writes the cluster's files into dir: cluster.toml, cluster.key and
// the datastore ds0.img, initialised with `vigil datastore init`.
type files struct {
	toml, key, datastore string
}

func (c cluster) write(t testing.TB, f *fixture, dir string) files {
	t.Helper()
	text := c.toml()
	if _, err := config.Parse([]byte(text)); err != nil {
		t.Fatalf("the test's cluster file is invalid: %v\n%s", err, text)
	}
	key := make([]byte, 32)
	rand.Read(key)
	fs := files{toml: text, key: hex.EncodeToString(key) + "\n", datastore: filepath.Join(dir, "ds0.img")}
	tomlPath := filepath.Join(dir, "cluster.toml")
	if err := os.WriteFile(tomlPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	// 8 slots with 16 incident slots each: 4 KiB x (1 + 8 x 17) = 548 KiB.
	if err := os.WriteFile(fs.datastore, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(fs.datastore, 1<<20); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(f.vigil, "datastore", "init", fs.datastore, "--config", tomlPath, "--slots", "8").CombinedOutput()
	if err != nil {
		t.Fatalf("vigil datastore init: %v\n%s", err, out)
	}
	return fs
}

// cmdline passes the cluster to the image's boot on the kernel command
// line: vigil.host, vigil.config (base64 of the gzipped TOML), vigil.key
// and vigil.flags.
func (fs files) cmdline(host string, flags ...string) string {
	var z bytes.Buffer
	w, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
	w.Write([]byte(fs.toml))
	w.Close()
	s := fmt.Sprintf("vigil.host=%s vigil.config=%s vigil.key=%s", host,
		base64.StdEncoding.EncodeToString(z.Bytes()), base64.StdEncoding.EncodeToString([]byte(fs.key)))
	if len(flags) > 0 {
		s += " vigil.flags=" + strings.Join(flags, ",")
	}
	return s
}

// configDisk writes the cluster for host as a config disk image: a plain
// tar of cluster.toml, cluster.key, host and agent.flags, which the image's
// boot reads from the virtio disk with serial vigil-config.
func (fs files) configDisk(t testing.TB, dir, host string, flags ...string) string {
	t.Helper()
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	for _, f := range []struct {
		name, text string
		mode       int64
	}{
		{"cluster.toml", fs.toml, 0o644},
		{"cluster.key", fs.key, 0o600},
		{"host", host + "\n", 0o644},
		{"agent.flags", strings.Join(append(flags, ""), "\n"), 0o644},
	} {
		if err := w.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.text)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(f.text))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config-"+host+".tar")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil { // tar pads to 512-byte blocks: a whole disk
		t.Fatal(err)
	}
	return path
}

// boot starts host's VM with the cluster on the kernel command line, the
// datastore disk and NICs on nets; Stop runs when the test ends, and a
// failed test gets the VM's serial log.
func boot(t testing.TB, ctx context.Context, f *fixture, fs files, host string, nets []*qemu.Network, flags ...string) *qemu.VM {
	t.Helper()
	if nets == nil {
		// A host alone still has its heartbeat NIC: the boot gives the
		// link's address to its first ethernet interface.
		nets = []*qemu.Network{network(t)}
	}
	return start(t, ctx, f, host, qemu.Options{Append: fs.cmdline(host, flags...), NICs: nets,
		Drives: []qemu.Drive{{ID: "ds0", Serial: "ds0", File: fs.datastore, Shared: true}}})
}

// start boots o with the fixture's kernel and image.
func start(t testing.TB, ctx context.Context, f *fixture, host string, o qemu.Options) *qemu.VM {
	t.Helper()
	o.Kernel, o.Initrd = f.kernel.Vmlinux, f.initrd
	o.Append = strings.TrimSpace("quiet " + o.Append)
	o.Logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	vm, err := qemu.Start(ctx, o)
	if err != nil {
		t.Fatalf("boot %s: %v", host, err)
	}
	t.Cleanup(func() {
		vm.Stop()
		if t.Failed() {
			t.Logf("serial of %s:\n%s", host, transcript(vm))
			if s := vm.Stderr(); s != "" {
				t.Logf("QEMU of %s said: %s", host, s)
			}
		}
	})
	return vm
}

// transcript renders the serial log with each line's time.
func transcript(vm *qemu.VM) string {
	var b strings.Builder
	for _, l := range vm.Serial.Lines() {
		fmt.Fprintf(&b, "%8.3fs %s\n", l.At.Seconds(), l.Text)
	}
	return b.String()
}

// testWriter sends the harness's log to the test's log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

// network makes a QEMU network in a short temporary folder.
func network(t testing.TB) *qemu.Network {
	t.Helper()
	dir, err := os.MkdirTemp("", "vqn")
	if err != nil {
		t.Fatal(err)
	}
	n, err := qemu.NewNetwork(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(); os.RemoveAll(dir) })
	return n
}

// waitAgent waits until the console is up and the agent answers its
// status, polling once a second, and returns the status.
func waitAgent(t testing.TB, ctx context.Context, vm *qemu.VM, host string) string {
	t.Helper()
	if _, err := vm.Serial.Expect(ctx, "type help"); err != nil {
		t.Fatalf("no console banner: %v", err)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		rep, err := vm.Serial.Command(ctx, "status")
		if err != nil {
			t.Fatalf("console status: %v", err)
		}
		if strings.Contains(rep, "host "+host+":") {
			return rep
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the agent of %s never answered status; the last reply:\n%s", host, rep)
		case <-tick.C:
		}
	}
}

// at is when the serial line was received, on the test's clock.
func at(vm *qemu.VM, l qemu.Line) time.Time { return vm.Started.Add(l.At) }
