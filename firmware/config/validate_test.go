package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func lab(t *testing.T) *Config {
	t.Helper()
	c, err := Load("testdata/valid/lab.toml")
	if err != nil {
		t.Fatalf("lab.toml: %v", err)
	}
	return c
}

// TestValidate breaks one rule per case, starting from the valid lab
// cluster, and wants a problem on the expected key.
func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		mut  func(c *Config)
		want string // a key that must be reported
		msg  string // a part of its message
	}{
		{"cluster name missing", func(c *Config) { c.Cluster.Name = "" }, "cluster.name", "missing"},
		{"cluster name upper case", func(c *Config) { c.Cluster.Name = "Lab" }, "cluster.name", "a-z"},
		{"cluster name too long", func(c *Config) { c.Cluster.Name = strings.Repeat("a", 33) }, "cluster.name", "32"},
		{"timing rule", func(c *Config) { c.Timing.WatchdogTimeout = Duration(2 * time.Second) }, "timing.watchdog_timeout", "hung renewal"},

		{"host failures not below hosts", func(c *Config) { c.Policy.HostFailures = 4 }, "policy.host_failures", "below the number of hosts (4)"},
		{"host failures negative", func(c *Config) { c.Policy.HostFailures = -1 }, "policy.host_failures", "negative"},
		{"watchdog resets negative", func(c *Config) { c.Policy.WatchdogResets = -1 }, "policy.watchdog_resets", "negative"},
		{"watchdog reset window zero", func(c *Config) { c.Policy.WatchdogResetWindow = 0 }, "policy.watchdog_reset_window", "must be > 0"},
		{"restart attempts zero", func(c *Config) { c.Policy.RestartAttempts = 0 }, "policy.restart_attempts", "at least 1"},
		{"restart backoff zero", func(c *Config) { c.Policy.RestartBackoff = 0 }, "policy.restart_backoff", "> 0"},
		{"policy isolation unknown", func(c *Config) { c.Policy.IsolationResponse = "reboot" }, "policy.isolation_response", "not an isolation response"},
		{"policy isolation empty", func(c *Config) { c.Policy.IsolationResponse = "" }, "policy.isolation_response", "missing"},

		{"no links", func(c *Config) { c.Links = nil }, "links", "0 links"},
		{"nine links", func(c *Config) {
			for len(c.Links) < 9 {
				c.Links = append(c.Links, Link{Name: "l" + string(rune('a'+len(c.Links)))})
			}
		}, "links", "9 links"},
		{"link name missing", func(c *Config) { c.Links[1].Name = "" }, "links[1].name", "missing"},
		{"link name duplicate", func(c *Config) { c.Links[1].Name = "mgmt" }, "links[1].name", "also the name of links[0]"},
		{"isolation address not an IP", func(c *Config) { c.Links[0].IsolationAddress = "gw" }, "links[0].isolation_address", "not an IP"},
		{"isolation address is a host", func(c *Config) { c.Links[0].IsolationAddress = "10.0.0.3" }, "links[0].isolation_address", "hosts[2]"},

		{"no datastores", func(c *Config) { c.Datastores = nil }, "datastores", "0 datastores"},
		{"four datastores", func(c *Config) {
			for i := 2; i <= 4; i++ {
				c.Datastores = append(c.Datastores, Datastore{Name: "ds" + string(rune('0'+i)), Path: "/srv/ds" + string(rune('0'+i))})
			}
		}, "datastores", "4 datastores"},
		{"datastore name duplicate", func(c *Config) {
			c.Datastores = append(c.Datastores, Datastore{Name: "ds1", Path: "/srv/other"})
		}, "datastores[1].name", "also the name"},
		{"datastore neither path nor device", func(c *Config) { c.Datastores[0].Path = "" }, "datastores[0]", "neither"},
		{"datastore both path and device", func(c *Config) { c.Datastores[0].Device = "/dev/sdb" }, "datastores[0]", "both"},
		{"datastore path relative", func(c *Config) { c.Datastores[0].Path = "srv/ds1" }, "datastores[0].path", "absolute"},
		{"datastore device relative", func(c *Config) { c.Datastores[0] = Datastore{Name: "ds1", Device: "sdb"} }, "datastores[0].device", "absolute"},
		{"datastore place shared", func(c *Config) {
			c.Datastores = append(c.Datastores, Datastore{Name: "ds2", Path: "/srv/vigil/ds1/"})
		}, "datastores[1].path", "also used by datastores[0]"},

		{"no hosts", func(c *Config) { c.Hosts, c.VMs = nil, nil; c.Policy.HostFailures = 0 }, "hosts", "0 hosts"},
		{"65 hosts", func(c *Config) {
			for len(c.Hosts) < 65 {
				c.Hosts = append(c.Hosts, c.Hosts[0])
			}
		}, "hosts", "65 hosts"},
		{"host id zero", func(c *Config) { c.Hosts[1].ID = 0 }, "hosts[1].id", "1 to 64"},
		{"host id 65", func(c *Config) { c.Hosts[1].ID = 65 }, "hosts[1].id", "1 to 64"},
		{"host id duplicate", func(c *Config) { c.Hosts[3].ID = 1 }, "hosts[3].id", "also the id of hosts[0]"},
		{"host name malformed", func(c *Config) { c.Hosts[2].Name = "h_3" }, "hosts[2].name", "a-z"},
		{"host name duplicate", func(c *Config) { c.Hosts[2].Name = "h1" }, "hosts[2].name", "also the name of hosts[0]"},
		{"too few addresses", func(c *Config) { c.Hosts[2].Addresses = c.Hosts[2].Addresses[:1] }, "hosts[2].addresses", "1 address for 2 links"},
		{"too many addresses", func(c *Config) { c.Hosts[2].Addresses = append(c.Hosts[2].Addresses, "10.2.0.3") }, "hosts[2].addresses", "3 addresses"},
		{"address not an IP", func(c *Config) { c.Hosts[2].Addresses[1] = "10.1.0.300" }, "hosts[2].addresses", "link storage"},
		{"address duplicate on a link", func(c *Config) { c.Hosts[2].Addresses[0] = "10.0.0.1" }, "hosts[2].addresses", "also the address of hosts[0]"},
		{"bmc malformed", func(c *Config) { c.Hosts[0].BMC = "10.9.0.1:99999" }, "hosts[0].bmc", "not a BMC address"},
		{"bmc bad host", func(c *Config) { c.Hosts[0].BMC = "bmc_1:623" }, "hosts[0].bmc", "not a BMC address"},
		{"bmc shared", func(c *Config) { c.Hosts[1].BMC = "10.9.0.1:623" }, "hosts[1].bmc", "also the BMC of hosts[0]"},
		{"bmc shared through default port", func(c *Config) { c.Hosts[0].BMC = "10.9.0.2" }, "hosts[1].bmc", "also the BMC of hosts[0]"},
		{"bmc without credentials", func(c *Config) { c.Hosts[0].BMCCredentials = "" }, "hosts[0].bmc_credentials", "needs a credentials file"},
		{"credentials relative", func(c *Config) { c.Hosts[0].BMCCredentials = "bmc-h1" }, "hosts[0].bmc_credentials", "absolute"},
		{"credentials without bmc", func(c *Config) { c.Hosts[3].BMCCredentials = "/etc/vigil/bmc-h4" }, "hosts[3].bmc_credentials", "bmc is not"},
		{"host cpu zero", func(c *Config) { c.Hosts[0].CPU = 0 }, "hosts[0].cpu", "cpu (0)"},
		{"host memory zero", func(c *Config) { c.Hosts[0].Memory = 0 }, "hosts[0].memory", "memory (0MiB)"},
		{"host memory huge", func(c *Config) { c.Hosts[0].Memory = maxMemory + 1 }, "hosts[0].memory", "1024TiB"},

		{"vm name missing", func(c *Config) { c.VMs[7].Name = "" }, "vms[7].name", "missing"},
		{"vm name with space", func(c *Config) { c.VMs[7].Name = "my vm" }, "vms[7].name", "letters"},
		{"vm name duplicate", func(c *Config) { c.VMs[7].Name = "web" }, "vms[7].name", "also the name of vms[5]"},
		{"vm cpu zero", func(c *Config) { c.VMs[0].CPU = 0 }, "vms[0].cpu", "cpu (0)"},
		{"vm memory negative", func(c *Config) { c.VMs[0].Memory = -1 }, "vms[0].memory", "memory"},
		{"vm priority unknown", func(c *Config) { c.VMs[0].Priority = "urgent" }, "vms[0].priority", "not a priority"},
		{"vm isolation unknown", func(c *Config) { c.VMs[0].IsolationResponse = "halt" }, "vms[0].isolation_response", "not an isolation response"},
		{"vm after unknown", func(c *Config) { c.VMs[5].After = []string{"app3"} }, "vms[5].after", `no VM is called "app3"`},
		{"vm after itself", func(c *Config) { c.VMs[5].After = []string{"web"} }, "vms[5].after", "depends on itself"},
		{"vm after twice", func(c *Config) { c.VMs[5].After = []string{"app1", "app1"} }, "vms[5].after", "listed twice"},
		{"protected vm after unprotected", func(c *Config) { f := false; c.VMs[0].Protected = &f }, "vms[1].after", "would wait for it for good"},
		{"vm after cycle of two", func(c *Config) { c.VMs[0].After = []string{"db1"} }, "vms[0].after", "dependency cycle: storage1 -> db1 -> storage1"},
		{"vm after long cycle", func(c *Config) { c.VMs[0].After = []string{"web"} }, "vms[0].after", "storage1 -> web -> app1 -> db1 -> storage1"},
		{"vm host unknown", func(c *Config) { c.VMs[1].Host = "h9" }, "vms[1].host", `no host is called "h9"`},
		{"vm too big on cpu", func(c *Config) { c.VMs[6].CPU = 33 }, "vms[6]", "no host has"},
		{"vm too big on memory", func(c *Config) { c.VMs[6].Memory = 257 << 10 }, "vms[6]", "no host has"},
		{"vm fits only where cpu and memory meet", func(c *Config) {
			c.Hosts[0].Memory, c.Hosts[2].CPU = 64<<10, 64
			c.VMs[6].CPU, c.VMs[6].Memory = 40, 200<<10
		}, "vms[6]", "no host has"},
		{"anti-affinity group larger than cluster", func(c *Config) {
			for i := range c.VMs {
				c.VMs[i].AntiAffinity = "all"
			}
		}, "vms[4].anti_affinity", "more VMs than the cluster has hosts"},
	}
	if ps := lab(t).Validate(); ps != nil {
		t.Fatalf("lab.toml: %v", ps)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := lab(t)
			tt.mut(c)
			ps := c.Validate()
			for _, p := range ps {
				if p.Key == tt.want && strings.Contains(p.Msg, tt.msg) {
					if p.Fix == "" {
						t.Errorf("%s has no fix", p.Key)
					}
					return
				}
			}
			t.Errorf("no problem on %s containing %q; got:\n%s", tt.want, tt.msg, strings.Join(lines(ps), "\n"))
		})
	}
}

func lines(ps Problems) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

// TestValidateCollectsAll breaks several rules at once and wants them all.
func TestValidateCollectsAll(t *testing.T) {
	c := lab(t)
	c.Cluster.Name = ""
	c.Timing.Margin = 0
	c.Hosts[1].Addresses = nil
	c.VMs[2].Priority = "top"
	want := []string{"cluster.name", "timing.margin", "hosts[1].addresses", "vms[2].priority"}
	if got := c.Validate().Keys(); !slices.Equal(got, want) {
		t.Errorf("keys = %q, want %q", got, want)
	}
}

func TestVMDefaultsNeedNoValue(t *testing.T) {
	c := lab(t)
	c.VMs[0].Priority, c.VMs[0].IsolationResponse, c.VMs[0].Protected = "", "", nil
	if ps := c.Validate(); ps != nil {
		t.Fatal(ps)
	}
}

func TestBMCAddr(t *testing.T) {
	for in, want := range map[string]string{
		"10.9.0.1":      "10.9.0.1:623",
		"10.9.0.1:6231": "10.9.0.1:6231",
		"[fd00::9]:624": "[fd00::9]:624",
		"fd00::9":       "[fd00::9]:623",
		"bmc1.oob":      "bmc1.oob:623",
	} {
		if got := BMCAddr(in); got != want {
			t.Errorf("BMCAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
