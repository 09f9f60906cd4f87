package config

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/fence/cluster"
)

// minimal is the smallest valid cluster file.
const minimal = `
[cluster]
name = "one"
[policy]
host_failures = 0
[[links]]
name = "mgmt"
[[datastores]]
name = "ds1"
path = "/srv/ds1"
[[hosts]]
id = 1
name = "h1"
addresses = ["10.0.0.1"]
cpu = 4
memory = "16GiB"
`

func TestParseMinimalUsesDefaults(t *testing.T) {
	c, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if c.Timing != d.Timing {
		t.Errorf("timing = %+v, want the defaults %+v", c.Timing, d.Timing)
	}
	if c.Policy.RestartAttempts != 3 || c.Policy.IsolationResponse != "shutdown" {
		t.Errorf("policy = %+v", c.Policy)
	}
}

// TestParseProblems feeds files with decode and validation problems and
// wants the listed keys, in order, with the listed message parts.
func TestParseProblems(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // "key|part of msg"
	}{
		{"syntax error", "[cluster\n", []string{"|line 1: expected ']'"}},
		{"unknown top-level key", "colour = 1\n" + minimal, []string{"colour|line 1: unknown key"}},
		{"unknown key in array element", minimal + "[[hosts]]\nid = 2\nname = \"h2\"\naddresses = [\"10.0.0.2\"]\ncpus = 1\ncpu = 1\nmemory = 1024\n",
			[]string{"hosts[1].cpus|line 21: unknown key"}},
		{"unknown key in element of one key", minimal + "colour = 1\n", []string{"hosts[0].colour|line 17: unknown key"}},
		{"unknown table under element", minimal + "[hosts.ipmi]\nx = 1\n", []string{"hosts[0].ipmi|line 17"}},
		{"unknown key in inline table", "links = [{name = \"a\"}, {name = \"b\", mtu = 9000}]\n" + strings.Replace(minimal, "[[links]]\nname = \"mgmt\"", "", 1),
			[]string{"links[1].mtu|line 1: unknown key", "hosts[0].addresses|1 address for 2 links"}},
		{"wrong type", strings.Replace(minimal, "cpu = 4", "cpu = \"4\"", 1), []string{"hosts[0].cpu|a TOML string where an integer is expected"}},
		{"duration without unit", minimal + "[timing]\nheartbeat = 100\n", []string{"timing.heartbeat|line 18: a duration must be a string"}},
		{"duration as float", minimal + "[timing]\ngrace = 2.5\n", []string{"timing.grace|line 18: a duration must be a string"}},
		{"duration as array", minimal + "[timing]\ngrace = [1]\n", []string{"timing.grace|line 18: a duration must be a string"}},
		{"duration misspelt unit", minimal + "[timing]\ngrace = \"2secs\"\n", []string{"timing.grace|line 18: duration \"2secs\""}},
		{"size as float", strings.Replace(minimal, `"16GiB"`, "1.5", 1), []string{"hosts[0].memory|line 16: a size must be"}},
		{"size with decimal unit", strings.Replace(minimal, `"16GiB"`, `"16GB"`, 1), []string{"hosts[0].memory|line 16: size \"16GB\""}},
		{"duplicate key", minimal + "memory = \"8GiB\"\n", []string{"hosts[0].memory|already defined"}},
		{"unknown keys and validation", strings.Replace(minimal, "host_failures = 0", "host_failure = 0", 1),
			[]string{"policy.host_failure|did you mean", "policy.host_failures|below the number of hosts"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.doc))
			var ps Problems
			if !errors.As(err, &ps) || c != nil {
				t.Fatalf("Parse = %v, %v; want Problems", c, err)
			}
			if len(ps) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(ps), len(tt.want), strings.Join(lines(ps), "\n"))
			}
			for i, w := range tt.want {
				key, msg, _ := strings.Cut(w, "|")
				if ps[i].Key != key || !strings.Contains(ps[i].Msg+" (fix: "+ps[i].Fix+")", msg) {
					t.Errorf("problem %d = %q, want key %q and %q", i, ps[i], key, msg)
				}
			}
		})
	}
}

func TestSuggestFix(t *testing.T) {
	_, err := Parse([]byte(minimal + "[timing]\nwatchdog_timout = \"4s\"\n"))
	ps, _ := err.(Problems)
	if len(ps) == 0 || ps[0].Fix != `did you mean "watchdog_timeout"?` {
		t.Errorf("problems = %v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/no-such-file.toml")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load error = %v, want one wrapping os.ErrNotExist", err)
	}
}

func TestSpec(t *testing.T) {
	c := lab(t)
	s := c.Spec()
	if s.Name != "lab" || len(s.Hosts) != 4 || len(s.VMs) != 8 || s.Links != 2 || s.Datastores != 1 {
		t.Fatalf("spec = %+v", s)
	}
	if got, want := s.Hosts[3], (cluster.HostSpec{Name: "h4", CPU: 16, MemoryMiB: 131072}); got != want {
		t.Errorf("hosts[3] = %+v, want %+v", got, want)
	}
	if !s.Hosts[1].BMC {
		t.Errorf("hosts[1] has a bmc")
	}
	want := []cluster.VMSpec{
		{Name: "db1", CPU: 4, MemoryMiB: 8192, Priority: cluster.High, After: []int{0}, AntiAffinity: "db", Protected: true, Isolation: cluster.PowerOff, Host: 0},
		{Name: "app2", CPU: 2, MemoryMiB: 4096, Priority: cluster.Medium, After: []int{1, 2}, AntiAffinity: "app", Protected: true, Isolation: cluster.ShutDown, Host: -1},
		{Name: "batch", CPU: 8, MemoryMiB: 32768, Priority: cluster.Low, Protected: true, Isolation: cluster.LeaveRunning, Host: -1},
		{Name: "scratch", CPU: 1, MemoryMiB: 512, Priority: cluster.Low, Protected: false, Isolation: cluster.ShutDown, Host: -1},
	}
	for i, vm := range []int{1, 4, 6, 7} {
		if !reflect.DeepEqual(s.VMs[vm], want[i]) {
			t.Errorf("vms[%d] = %+v, want %+v", vm, s.VMs[vm], want[i])
		}
	}
	if s.Timing != defaultTiming() {
		t.Errorf("timing = %+v", s.Timing)
	}
	if s.Policy != (cluster.Policy{HostFailures: 1, RestartAttempts: 3, RestartBackoff: 1e9}) {
		t.Errorf("policy = %+v", s.Policy)
	}
}

func TestLookups(t *testing.T) {
	c := lab(t)
	if i, ok := c.HostByName("h3"); !ok || i != 2 {
		t.Errorf("HostByName(h3) = %d, %v", i, ok)
	}
	if _, ok := c.HostByName("h9"); ok {
		t.Errorf("HostByName(h9) found")
	}
	if i, ok := c.VMByName("web"); !ok || i != 5 {
		t.Errorf("VMByName(web) = %d, %v", i, ok)
	}
	if _, ok := c.VMByName("nope"); ok {
		t.Errorf("VMByName(nope) found")
	}
	if i, ok := c.HostByID(4); !ok || i != 3 {
		t.Errorf("HostByID(4) = %d, %v", i, ok)
	}
	if i, ok := c.LinkByName("storage"); !ok || i != 1 {
		t.Errorf("LinkByName(storage) = %d, %v", i, ok)
	}
	if got := c.Hosts[1].BMCAddress(); got != "10.9.0.2:623" {
		t.Errorf("BMCAddress = %q", got)
	}
	if got := (Host{BMC: "fd00::9"}).BMCAddress(); got != "[fd00::9]:623" {
		t.Errorf("BMCAddress = %q", got)
	}
	if got := c.Hosts[3].BMCAddress(); got != "" {
		t.Errorf("BMCAddress without bmc = %q", got)
	}
}
