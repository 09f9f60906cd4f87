package lab

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf/asm"
	"github.com/vigil-ha/vigil/firmware/config"
)

func TestClusterFile(t *testing.T) {
	for _, tc := range []struct {
		name      string
		o         Options
		failures  int
		vmHosts   []string // host of vm1, vm2, ...
		isolation []string // isolation_response of vm1, vm2, ...
	}{
		{name: "three hosts two links", o: Options{Name: "lab", Hosts: 3, Links: 2, VMs: 6},
			failures: 1, vmHosts: []string{"h1", "h2", "h3", "h1", "h2", "h3"}},
		{name: "one host", o: Options{Name: "solo", Hosts: 1, Links: 1, VMs: 2}, failures: 0, vmHosts: []string{"h1", "h1"}},
		{name: "largest", o: Options{Name: "big", Hosts: 16, Links: 8, VMs: 32}, failures: 1},
		{name: "no vms", o: Options{Name: "empty", Hosts: 2, Links: 1}, failures: 1},
		{name: "isolation responses", o: Options{Name: "iso", Hosts: 3, Links: 1, VMs: 4, WatchdogResets: 1, Isolation: []string{"", "poweroff", "leave-running"}},
			failures: 1, vmHosts: []string{"h1", "h2", "h3", "h1"}, isolation: []string{"", "poweroff", "leave-running", ""}},
		{name: "no bmc", o: Options{Name: "nobmc", Hosts: 2, Links: 1, VMs: 2, NoBMC: true}, failures: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := "/run/vigil-lab/" + tc.o.Name
			c, err := config.Parse([]byte(ClusterFile(tc.o, dir, "/dev/loop7")))
			if err != nil {
				t.Fatalf("invalid cluster file: %v\n%s", err, ClusterFile(tc.o, dir, "/dev/loop7"))
			}
			if c.Cluster.Name != tc.o.Name || c.Cluster.KeyFile != dir+"/cluster.key" || c.Cluster.Port != Port {
				t.Errorf("cluster = %+v", c.Cluster)
			}
			if c.Timing != config.Default().Timing {
				t.Errorf("timing = %+v, want the defaults", c.Timing)
			}
			if c.Policy.HostFailures != tc.failures {
				t.Errorf("host_failures = %d, want %d", c.Policy.HostFailures, tc.failures)
			}
			want := config.Default().Policy.WatchdogResets
			if tc.o.WatchdogResets > 0 {
				want = tc.o.WatchdogResets
			}
			if c.Policy.WatchdogResets != want {
				t.Errorf("watchdog_resets = %d, want %d", c.Policy.WatchdogResets, want)
			}
			if len(c.Links) != tc.o.Links || len(c.Hosts) != tc.o.Hosts || len(c.VMs) != tc.o.VMs {
				t.Fatalf("%d links, %d hosts, %d VMs", len(c.Links), len(c.Hosts), len(c.VMs))
			}
			last := tc.o.Links - 1
			if l := c.Links[last]; l.Name != linkName(last) || l.IsolationAddress != isolationAddr(last).String() {
				t.Errorf("last link = %+v", l)
			}
			if len(c.Datastores) != 2 || c.Datastores[0].Name != "ds0" || c.Datastores[0].Path != dir+"/store/ds0" ||
				c.Datastores[1].Name != "ds1" || c.Datastores[1].Device != "/dev/loop7" {
				t.Errorf("datastores = %+v", c.Datastores)
			}
			h := c.Hosts[tc.o.Hosts-1]
			if h.ID != tc.o.Hosts || h.Name != hostName(tc.o.Hosts) || h.CPU != 8 || h.Memory.MiB() != 16<<10 {
				t.Errorf("last host = %+v", h)
			}
			if want := hostAddr(tc.o.Hosts, last).String(); h.Addresses[last] != want {
				t.Errorf("last host's last address = %s, want %s", h.Addresses[last], want)
			}
			wantBMC, wantCred := fmt.Sprintf("10.100.0.1:%d", 6230+tc.o.Hosts), fmt.Sprintf("%s/h%d/bmc.cred", dir, tc.o.Hosts)
			if tc.o.NoBMC {
				wantBMC, wantCred = "", ""
			}
			if h.BMC != wantBMC || h.BMCCredentials != wantCred {
				t.Errorf("last host's bmc %q, credentials %q; want %q, %q", h.BMC, h.BMCCredentials, wantBMC, wantCred)
			}
			for i, want := range tc.vmHosts {
				v := c.VMs[i]
				if v.Host != want || v.CPU != 1 || v.Memory.MiB() != 1024 || v.Name != "vm"+string(rune('1'+i)) {
					t.Errorf("vm %d = %+v, want on %s", i+1, v, want)
				}
				if i < len(tc.isolation) && v.IsolationResponse != tc.isolation[i] {
					t.Errorf("vm %d isolation_response %q, want %q", i+1, v.IsolationResponse, tc.isolation[i])
				}
			}
		})
	}
}

func TestWriteClusterFiles(t *testing.T) {
	dir := t.TempDir()
	o := Options{Name: "lab", Hosts: 2, Links: 1, VMs: 2}
	if err := writeClusterFiles(o, dir, "/dev/loop7"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "cluster.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cluster.key: %v, mode %v; want mode 0600", err, fi.Mode())
	}
	key, _ := os.ReadFile(filepath.Join(dir, "cluster.key"))
	if b, err := hex.DecodeString(strings.TrimSuffix(string(key), "\n")); err != nil || len(b) != 32 || !bytes.HasSuffix(key, []byte("\n")) {
		t.Errorf("cluster.key = %q, want one hex line of 32 bytes", key)
	}
	if _, err := config.Load(filepath.Join(dir, "cluster.toml")); err != nil {
		t.Errorf("cluster.toml: %v", err)
	}

	// A cluster file the config package refuses fails up: here a relative
	// datastore path.
	err = writeClusterFiles(o, "relative", "/dev/loop7")
	if err == nil || !strings.Contains(err.Error(), "the generated cluster.toml is invalid") || !strings.Contains(err.Error(), "datastores[0].path") {
		t.Errorf("relative folder: err = %v, want an invalid datastore path", err)
	}
}

func TestBlockKeys(t *testing.T) {
	s := newState(Options{Name: "t", Hosts: 3, Links: 2, Executable: "/v"}, "/d", "/cg")
	for i := range s.Hosts {
		for l := range s.Hosts[i].Links {
			s.Hosts[i].Links[l].HubIndex = 10*(i+1) + l // h1-l0 is 10, h3-l1 is 31
		}
	}
	got := map[blockKey]bool{}
	for _, k := range blockKeys(s, [][]string{{"h1", "h2"}, {"h3"}}) {
		got[k] = true
	}
	want := map[blockKey]bool{
		{10, [4]byte{10, 100, 0, 13}}: true, {11, [4]byte{10, 101, 0, 13}}: true, // h1 blocks h3
		{20, [4]byte{10, 100, 0, 13}}: true, {21, [4]byte{10, 101, 0, 13}}: true, // h2 blocks h3
		{30, [4]byte{10, 100, 0, 11}}: true, {31, [4]byte{10, 101, 0, 11}}: true, // h3 blocks h1
		{30, [4]byte{10, 100, 0, 12}}: true, {31, [4]byte{10, 101, 0, 12}}: true, // and h2
	}
	if len(got) != len(want) {
		t.Fatalf("got %d keys %v, want %d", len(got), got, len(want))
	}
	for k := range want {
		if !got[k] {
			t.Errorf("missing key %+v", k)
		}
	}
	if keys := blockKeys(s, [][]string{{"h1", "h2", "h3"}}); len(keys) != 0 {
		t.Errorf("one group blocks %v, want nothing", keys)
	}
}

func TestFaultProgramEncodes(t *testing.T) {
	insns := faultProgram(3, 4)
	var buf bytes.Buffer
	if err := insns.Marshal(&buf, binary.LittleEndian); err != nil {
		t.Fatalf("marshal: %v", err)
	}
	for _, ins := range insns {
		if ins.OpCode == asm.InvalidOpCode {
			t.Errorf("invalid instruction %v", ins)
		}
		if ins.OpCode.Class() == asm.StClass && ins.OpCode.Size() == asm.DWord {
			t.Errorf("%v stores a DWord immediate", ins)
		}
	}
	if n := buf.Len() / asm.InstructionSize; n < 40 {
		t.Errorf("%d instructions, want the loss and both partition lookups", n)
	}
}
