package config

import (
	"fmt"
	"net/netip"
	"path"
	"strings"
	"time"
)

func (c *Config) checkHosts(ps *Problems) {
	if n := len(c.Hosts); n < 1 || n > MaxHosts {
		ps.add("hosts", "list 1 to 64 [[hosts]] tables", "%s: a cluster has 1 to %d", count(n, "host", "hosts"), MaxHosts)
	}
	names := map[string]string{}
	ids := map[int]string{}
	bmcs := map[string]string{}
	addrs := make([]map[netip.Addr]string, len(c.Links)) // per link: address -> host key
	for i := range addrs {
		addrs[i] = map[netip.Addr]string{}
	}
	for i, h := range c.Hosts {
		key := fmt.Sprintf("hosts[%d]", i)
		switch {
		case h.ID < 1 || h.ID > MaxHosts:
			ps.add(key+".id", "use an id from 1 to 64", "id %d: a host id is 1 to %d (its datastore slot)", h.ID, MaxHosts)
		case ids[h.ID] != "":
			ps.add(key+".id", "give each host its own id", "id %d is also the id of %s", h.ID, ids[h.ID])
		default:
			ids[h.ID] = key
		}
		checkName(ps, key+".name", h.Name, nameRE, nameRule, names)
		c.checkAddresses(ps, key, h, addrs)
		checkBMC(ps, key, h, bmcs)
		checkCapacity(ps, key, h.CPU, h.Memory)
	}
}

func (c *Config) checkAddresses(ps *Problems, key string, h Host, seen []map[netip.Addr]string) {
	key += ".addresses"
	if len(c.Links) > 0 && len(h.Addresses) != len(c.Links) {
		ps.add(key, "list one address per [[links]] entry, in the same order",
			"%s for %s", count(len(h.Addresses), "address", "addresses"), count(len(c.Links), "link", "links"))
	}
	for j, s := range h.Addresses {
		link := fmt.Sprintf("address %d", j+1)
		if j < len(c.Links) && c.Links[j].Name != "" {
			link += fmt.Sprintf(" (link %s)", c.Links[j].Name)
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			ps.add(key, `write an IP address, like "10.0.0.1"`, "%s: %q is not an IP address", link, s)
			continue
		}
		if j >= len(seen) {
			continue
		}
		if other, dup := seen[j][a]; dup {
			ps.add(key, "give each host its own address on each link",
				"%s: %v is also the address of %s on this link", link, a, other)
			continue
		}
		seen[j][a] = strings.TrimSuffix(key, ".addresses")
	}
}

func checkBMC(ps *Problems, key string, h Host, seen map[string]string) {
	if h.BMC == "" {
		if h.BMCCredentials != "" {
			ps.add(key+".bmc_credentials", "set bmc, or remove bmc_credentials",
				"bmc_credentials is set but bmc is not")
		}
		return
	}
	host, port, err := splitBMC(h.BMC)
	if err != nil {
		ps.add(key+".bmc", `write host:port, like "10.9.0.1:623" (the port defaults to 623)`,
			"%q is not a BMC address: %v", h.BMC, err)
	} else {
		addr := fmt.Sprintf("%s:%d", host, port)
		if other, dup := seen[addr]; dup {
			ps.add(key+".bmc", "give each host its own BMC",
				"%s is also the BMC of %s: fencing one host would power off the other", addr, other)
		} else {
			seen[addr] = key
		}
	}
	switch {
	case h.BMCCredentials == "":
		ps.add(key+".bmc_credentials", `set bmc_credentials = "/etc/vigil/bmc-`+h.Name+`"`,
			"missing: a host with a bmc needs a credentials file")
	case !isAbs(h.BMCCredentials):
		ps.add(key+".bmc_credentials", "write an absolute path", "%q is not an absolute path", h.BMCCredentials)
	}
}

func checkCapacity(ps *Problems, key string, cpu int, mem Size) {
	if cpu < 1 || cpu > maxCPU {
		ps.add(key+".cpu", "set cpu to the number of vCPUs, like cpu = 4", "cpu (%d) must be 1 to %d", cpu, maxCPU)
	}
	if mem < 1 || mem > maxMemory {
		ps.add(key+".memory", `set memory with a unit, like memory = "8GiB"`, "memory (%v) must be 1MiB to 1024TiB", mem)
	}
}

func (c *Config) checkVMs(ps *Problems) {
	names := map[string]string{}
	groups := map[string]int{}
	for i, v := range c.VMs {
		key := fmt.Sprintf("vms[%d]", i)
		checkName(ps, key+".name", v.Name, vmNameRE, "1 to 64 characters of letters, digits, '.', '_' and '-'", names)
		checkCapacity(ps, key, v.CPU, v.Memory)
		if _, ok := priorityOf(v.Priority); !ok {
			ps.add(key+".priority", `use "high", "medium" or "low"`, "%q is not a priority", v.Priority)
		}
		if _, ok := isolationOf(v.IsolationResponse); !ok {
			ps.add(key+".isolation_response", `use "leave-running", "shutdown" or "poweroff", or leave it out for policy.isolation_response`,
				"%q is not an isolation response", v.IsolationResponse)
		}
		if v.Host != "" {
			if _, ok := c.HostByName(v.Host); !ok {
				ps.add(key+".host", "name a host from [[hosts]] or leave host out", "no host is called %q", v.Host)
			}
		}
		if g := v.AntiAffinity; g != "" {
			groups[g]++
			if groups[g] == len(c.Hosts)+1 {
				ps.add(key+".anti_affinity", "spread the group over fewer VMs or add hosts",
					"group %q has more VMs than the cluster has hosts (%d): its VMs must run on different hosts", g, len(c.Hosts))
			}
		}
		c.checkAfter(ps, key, i, v)
		c.checkFit(ps, key, v)
		c.checkMonitoring(ps, key, v)
		if v.Driver != "" && v.Driver != DriverProcess && v.Driver != DriverQEMU {
			ps.add(key+".driver", `use "process" or "qemu", or leave it out for hypervisor.driver`, "%q is not a hypervisor driver", v.Driver)
		} else if c.VMDriver(i) == DriverQEMU && !c.hasFolderDatastore() {
			ps.add(key+".driver", "add a [[datastores]] entry with a path (NFS, CephFS, GlusterFS), or run the VM on the process driver",
				"a QEMU VM is defined in vms/%s.toml on a folder datastore, and the cluster has none (block datastores hold no files)", v.Name)
		}
	}
	for _, cyc := range c.cycles() {
		ps.add(fmt.Sprintf("vms[%d].after", cyc[0]), "remove one of these dependencies",
			"dependency cycle: %s", c.cycleString(cyc))
	}
}

// checkMonitoring checks a VM's guest and application monitoring.
func (c *Config) checkMonitoring(ps *Problems, key string, v VM) {
	if d := time.Duration(v.GuestTimeout); d != 0 && (d < time.Second || d > time.Hour) {
		ps.add(key+".guest_timeout", `write it like "10s", or leave it out`, "%s: a guest timeout is 1s to 1h", d)
	}
	if v.GuestFailure != "" && v.GuestFailure != "reset" && v.GuestFailure != "failover" {
		ps.add(key+".guest_failure", `use "reset" or "failover"`, "%q is not a response to a failed guest", v.GuestFailure)
	}
	if v.MaxResets < 0 || v.MaxResets > 100 {
		ps.add(key+".max_resets", "give 0 to 100", "%d resets", v.MaxResets)
	}
	names := map[string]bool{}
	for j, a := range v.Apps {
		ak := fmt.Sprintf("%s.apps[%d]", key, j)
		if !vmNameRE.MatchString(a.Name) {
			ps.add(ak+".name", "use 1 to 64 letters, digits, '.', '_' or '-', as the guest names it", "%s is not an application name", describe(a.Name))
		} else if names[a.Name] {
			ps.add(ak+".name", "give each application one entry", "%q twice", a.Name)
		}
		names[a.Name] = true
		switch a.OnFailure {
		case "", "restart", "reset", "failover", "none":
		default:
			ps.add(ak+".on_failure", `use "restart", "reset", "failover" or "none"`, "%q is not a response", a.OnFailure)
		}
		switch a.Then {
		case "", "reset", "failover", "none":
		default:
			ps.add(ak+".then", `use "reset", "failover" or "none"`, "%q is not a response", a.Then)
		}
		if a.MaxRestarts < 0 || a.MaxRestarts > 100 {
			ps.add(ak+".max_restarts", "give 0 to 100", "%d restarts", a.MaxRestarts)
		}
	}
}

// checkServices checks the [[services]] the agents watch.
func (c *Config) checkServices(ps *Problems) {
	names := map[string]string{}
	for i, s := range c.Services {
		key := fmt.Sprintf("services[%d]", i)
		checkName(ps, key+".name", s.Name, vmNameRE, "1 to 64 characters of letters, digits, '.', '_' and '-'", names)
		n := 0
		for _, x := range []string{s.Process, s.Pidfile, s.Unit} {
			if x != "" {
				n++
			}
		}
		if n != 1 {
			ps.add(key, `set exactly one of process = "NAME", pidfile = "/run/x.pid" and unit = "x.service"`, "%d ways to find it", n)
		}
		if s.Pidfile != "" && !path.IsAbs(s.Pidfile) {
			ps.add(key+".pidfile", "give an absolute path", "%q is relative", s.Pidfile)
		}
		if s.Unit == "" && len(s.Start) == 0 {
			ps.add(key+".start", `give the command that starts it, like ["/usr/sbin/multipathd"]`, "the agent cannot restart %s without it", s.Name)
		}
		if len(s.Start) > 0 && !path.IsAbs(s.Start[0]) {
			ps.add(key+".start", "give the program's absolute path", "%q is not an absolute path", s.Start[0])
		}
		switch s.Then {
		case "", "evacuate", "self-fence", "none":
		default:
			ps.add(key+".then", `use "evacuate", "self-fence" or "none"`, "%q is not a response", s.Then)
		}
		if s.MaxRestarts < 0 || s.MaxRestarts > 100 {
			ps.add(key+".max_restarts", "give 0 to 100", "%d restarts", s.MaxRestarts)
		}
	}
}

// checkHypervisor checks the [hypervisor] table.
func (c *Config) checkHypervisor(ps *Problems) {
	h := c.Hypervisor
	if h.Driver != "" && h.Driver != DriverProcess && h.Driver != DriverQEMU {
		ps.add("hypervisor.driver", `use "process" or "qemu"`, "%q is not a hypervisor driver", h.Driver)
	}
	switch h.KVM {
	case "", "auto", "on", "off":
	default:
		ps.add("hypervisor.kvm", `use "auto", "on" or "off"`, "%q is not a KVM mode", h.KVM)
	}
	if h.QEMU != "" && !path.IsAbs(h.QEMU) && strings.Contains(h.QEMU, "/") {
		ps.add("hypervisor.qemu", "give an absolute path, or a bare program name looked up in PATH", "%q is a relative path", h.QEMU)
	}
}

func (c *Config) hasFolderDatastore() bool {
	for _, d := range c.Datastores {
		if d.Path != "" {
			return true
		}
	}
	return false
}

func (c *Config) checkAfter(ps *Problems, key string, i int, v VM) {
	seen := map[string]bool{}
	for _, a := range v.After {
		j, ok := c.VMByName(a)
		switch {
		case !ok:
			ps.add(key+".after", "name VMs from [[vms]]", "no VM is called %q", a)
		case j == i:
			ps.add(key+".after", "remove "+a+" from its own after", "%q depends on itself", a)
		case seen[a]:
			ps.add(key+".after", "list each VM once", "%q is listed twice", a)
		case v.IsProtected() && !c.VMs[j].IsProtected():
			ps.add(key+".after", "protect "+a+" or drop it from after",
				"protected VM %q starts after unprotected VM %q, which is not restarted after a failure: %q would wait for it for good", v.Name, a, v.Name)
		}
		seen[a] = true
	}
}

// checkFit reports a VM that fits on no host.
func (c *Config) checkFit(ps *Problems, key string, v VM) {
	if len(c.Hosts) == 0 || v.CPU < 1 || v.Memory < 1 {
		return
	}
	cpu, mem := 0, Size(0)
	for _, h := range c.Hosts {
		if h.CPU >= v.CPU && h.Memory >= v.Memory {
			return
		}
		cpu, mem = max(cpu, h.CPU), max(mem, h.Memory)
	}
	ps.add(key, "lower its cpu or memory, or add a bigger host",
		"needs %d vCPUs and %v, which no host has (the most any host has: %d vCPUs, %v)", v.CPU, v.Memory, cpu, mem)
}

// cycles returns every dependency cycle among the VMs as VM indexes, each
// starting at its lowest index, in file order.
func (c *Config) cycles() [][]int {
	const (
		white = iota
		grey
		black
	)
	color := make([]int, len(c.VMs))
	var stack []int
	var out [][]int
	seen := map[string]bool{}
	index := c.vmIndex()
	var visit func(i int)
	visit = func(i int) {
		color[i] = grey
		stack = append(stack, i)
		for _, a := range c.VMs[i].After {
			j, ok := index[a]
			if !ok || j == i {
				continue
			}
			switch color[j] {
			case white:
				visit(j)
			case grey:
				k := len(stack) - 1
				for stack[k] != j {
					k--
				}
				cyc := rotateMin(stack[k:])
				if s := fmt.Sprint(cyc); !seen[s] {
					seen[s] = true
					out = append(out, cyc)
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[i] = black
	}
	for i := range c.VMs {
		if color[i] == white {
			visit(i)
		}
	}
	return out
}

func rotateMin(s []int) []int {
	m := 0
	for i := range s {
		if s[i] < s[m] {
			m = i
		}
	}
	return append(append([]int{}, s[m:]...), s[:m]...)
}

// cycleString writes a cycle as "db -> app -> db".
func (c *Config) cycleString(cyc []int) string {
	var b strings.Builder
	for _, i := range cyc {
		b.WriteString(c.VMs[i].Name)
		b.WriteString(" -> ")
	}
	b.WriteString(c.VMs[cyc[0]].Name)
	return b.String()
}

// count writes "1 link" or "2 links".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
