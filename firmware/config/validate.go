package config

import (
	"fmt"
	"net"
	"net/netip"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Limits of a cluster file.
const (
	MaxLinks      = 8
	MaxDatastores = 3
	MaxHosts      = 64
	maxCPU        = 1 << 16 // vCPUs of one host or VM
	maxMemory     = 1 << 30 // MiB (1 PiB) of one host or VM
)

var (
	nameRE   = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)
	vmNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
)

// Validate checks c and returns every problem found, nil when there is none.
func (c *Config) Validate() Problems {
	var ps Problems
	if !nameRE.MatchString(c.Cluster.Name) {
		ps.add("cluster.name", `set name = "lab" under [cluster]`,
			"%s: a cluster name is 1 to 32 characters of a-z, 0-9 and '-'", describe(c.Cluster.Name))
	}
	if c.Cluster.Port < 1 || c.Cluster.Port > 65535 {
		ps.add("cluster.port", "set port = 5405 under [cluster], or leave it out",
			"%d: a UDP port is 1 to 65535", c.Cluster.Port)
	}
	if c.Cluster.KeyFile == "" || !path.IsAbs(c.Cluster.KeyFile) {
		ps.add("cluster.key_file", `set key_file = "/etc/vigil/cluster.key" under [cluster], or leave it out`,
			"%s: the key file is an absolute path", describe(c.Cluster.KeyFile))
	}
	ps = append(ps, CheckTiming(c.Spec().Timing)...)
	c.checkPolicy(&ps)
	c.checkEBPF(&ps)
	c.checkHypervisor(&ps)
	c.checkLinks(&ps)
	c.checkDatastores(&ps)
	c.checkHosts(&ps)
	c.checkVMs(&ps)
	c.checkServices(&ps)
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// describe quotes a value for a message, or says it is missing.
func describe(s string) string {
	if s == "" {
		return "missing"
	}
	return strconv.Quote(s)
}

// checkName reports a missing, malformed or duplicate name. seen maps the
// names met so far to their keys.
func checkName(ps *Problems, key, name string, re *regexp.Regexp, rule string, seen map[string]string) {
	switch {
	case !re.MatchString(name):
		ps.add(key, "set a name of "+rule, "%s: a name is %s", describe(name), rule)
	case seen[name] != "":
		ps.add(key, "give each one its own name", "%q is also the name of %s", name, seen[name])
	default:
		seen[name] = strings.TrimSuffix(key, ".name")
	}
}

const nameRule = "1 to 32 characters of a-z, 0-9 and '-'"

func (c *Config) checkPolicy(ps *Problems) {
	p := c.Policy
	switch {
	case p.HostFailures < 0:
		ps.add("policy.host_failures", "set host_failures = 1", "host_failures (%d) is negative", p.HostFailures)
	case len(c.Hosts) > 0 && p.HostFailures >= len(c.Hosts):
		ps.add("policy.host_failures", fmt.Sprintf("set host_failures to %d or less", len(c.Hosts)-1),
			"host_failures (%d) must be below the number of hosts (%d): admission control keeps room on the survivors for this many failed hosts",
			p.HostFailures, len(c.Hosts))
	}
	if p.RestartAttempts < 1 {
		ps.add("policy.restart_attempts", "set restart_attempts = 3",
			"restart_attempts (%d) must be at least 1: a VM gets at least one restart", p.RestartAttempts)
	}
	if b := p.RestartBackoff.D(); b <= 0 || b > maxTiming {
		ps.add("policy.restart_backoff", `set restart_backoff = "1s"`,
			"restart_backoff (%v) must be > 0 and at most 1h", b)
	}
	if _, ok := isolationOf(p.IsolationResponse); !ok || p.IsolationResponse == "" {
		ps.add("policy.isolation_response", `use "leave-running", "shutdown" or "poweroff"`,
			"%s is not an isolation response", describe(p.IsolationResponse))
	}
	if p.WatchdogResets < 0 {
		ps.add("policy.watchdog_resets", "set watchdog_resets = 3, or 0 never to hold a host back",
			"watchdog_resets (%d) is negative", p.WatchdogResets)
	}
	if w := p.WatchdogResetWindow.D(); p.WatchdogResets > 0 && (w <= 0 || w > 168*time.Hour) {
		ps.add("policy.watchdog_reset_window", `set watchdog_reset_window = "1h"`,
			"watchdog_reset_window (%v) must be > 0 and at most 168h", w)
	}
}

func (c *Config) checkEBPF(ps *Problems) {
	e := c.EBPF
	for _, f := range []struct{ key, v string }{{"stamping", e.Stamping}, {"block_io", e.BlockIO}, {"exits", e.Exits}} {
		switch f.v {
		case FeatureAuto, FeatureOn, FeatureOff:
		default:
			ps.add("ebpf."+f.key, fmt.Sprintf(`set %s = "auto" under [ebpf], or leave it out`, f.key),
				`%s is not a feature mode: use "auto", "on" or "off"`, describe(f.v))
		}
	}
	io := c.Timing.IOTimeout.D()
	if s := e.Stuck.D(); s < 10*time.Millisecond || (io > 0 && s > io/2) {
		ps.add("ebpf.stuck", `set stuck = "50ms" under [ebpf], or leave it out`,
			"stuck (%v) must be at least 10ms and at most half the I/O timeout (%v): it exists to see a dead path before the I/O times out", s, io)
	}
}

func (c *Config) checkLinks(ps *Problems) {
	if n := len(c.Links); n < 1 || n > MaxLinks {
		ps.add("links", "list 1 to 8 [[links]] tables, one per heartbeat network",
			"%s: a cluster has 1 to %d", count(n, "link", "links"), MaxLinks)
	}
	seen := map[string]string{}
	for i, l := range c.Links {
		key := fmt.Sprintf("links[%d]", i)
		checkName(ps, key+".name", l.Name, nameRE, nameRule, seen)
		if l.IsolationAddress == "" {
			continue
		}
		a, err := netip.ParseAddr(l.IsolationAddress)
		if err != nil {
			ps.add(key+".isolation_address", "write an IP address, like \"10.0.0.254\"",
				"%q is not an IP address", l.IsolationAddress)
			continue
		}
		for j, h := range c.Hosts {
			if i < len(h.Addresses) && sameAddr(h.Addresses[i], a) {
				ps.add(key+".isolation_address", "use an address outside the cluster, like the link's gateway",
					"%v is hosts[%d]'s own address on this link: it would always answer", a, j)
			}
		}
	}
}

func sameAddr(s string, a netip.Addr) bool {
	b, err := netip.ParseAddr(s)
	return err == nil && b == a
}

func (c *Config) checkDatastores(ps *Problems) {
	if n := len(c.Datastores); n < 1 || n > MaxDatastores {
		ps.add("datastores", "list 1 to 3 [[datastores]] tables",
			"%s: a cluster has 1 to %d", count(n, "datastore", "datastores"), MaxDatastores)
	}
	names, places := map[string]string{}, map[string]string{}
	for i, d := range c.Datastores {
		key := fmt.Sprintf("datastores[%d]", i)
		checkName(ps, key+".name", d.Name, nameRE, nameRule, names)
		where, field := d.Path, "path"
		switch {
		case d.Path == "" && d.Device == "":
			ps.add(key, `set path = "/srv/vigil/ds1" (a shared directory) or device = "/dev/sdb" (a shared block device)`,
				"neither path nor device is set")
			continue
		case d.Path != "" && d.Device != "":
			ps.add(key, "keep only one of path and device", "both path and device are set")
			continue
		case d.Device != "":
			where, field = d.Device, "device"
		}
		if !isAbs(where) {
			ps.add(key+"."+field, "write an absolute path", "%q is not an absolute path", where)
			continue
		}
		clean := path.Clean(where)
		if other, dup := places[clean]; dup {
			ps.add(key+"."+field, "give each datastore its own place",
				"%q is also used by %s: two datastores on one place would count twice", where, other)
			continue
		}
		places[clean] = key
	}
}

// isAbs reports whether p is an absolute path with no NUL byte.
func isAbs(p string) bool { return path.IsAbs(p) && !strings.ContainsRune(p, 0) }

// splitBMC splits a bmc value into host and port, the port defaulting to 623.
func splitBMC(s string) (string, int, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.String(), DefaultBMCPort, nil
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		a, err := netip.ParseAddr(s[1 : len(s)-1])
		if err != nil {
			return "", 0, err
		}
		return a.String(), DefaultBMCPort, nil
	}
	host, port := s, DefaultBMCPort
	if strings.Contains(s, ":") {
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			return "", 0, err
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 || p != strconv.Itoa(n) {
			return "", 0, fmt.Errorf("bad port %q", p)
		}
		host, port = h, n
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.String(), port, nil
	}
	if !isHostname(host) {
		return "", 0, fmt.Errorf("bad host %q", host)
	}
	return strings.ToLower(host), port, nil
}

var hostnameRE = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)

func isHostname(s string) bool { return len(s) <= 253 && hostnameRE.MatchString(s) }

// BMCAddr is a host's bmc value as host:port, the port defaulting to 623
// (an IPv6 address in brackets). A value that does not parse is returned
// as it is: Load has refused it already.
func BMCAddr(s string) string {
	host, port, err := splitBMC(s)
	if err != nil {
		return s
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}
