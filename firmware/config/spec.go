package config

import "github.com/vigil-ha/vigil/fence/cluster"

// Spec converts c to the core's view of the cluster: hosts and VMs by index
// in file order, with every default resolved. Names that do not resolve (in
// a configuration that does not validate) become -1 or are left out.
func (c *Config) Spec() *cluster.Spec {
	t := c.Timing
	s := &cluster.Spec{
		Name:       c.Cluster.Name,
		Links:      len(c.Links),
		Datastores: len(c.Datastores),
		Timing: cluster.Timing{
			Heartbeat:         t.Heartbeat.D(),
			LinkTimeout:       t.LinkTimeout.D(),
			DatastoreInterval: t.DatastoreInterval.D(),
			IOTimeout:         t.IOTimeout.D(),
			LeaseTimeout:      t.LeaseTimeout.D(),
			WatchdogTimeout:   t.WatchdogTimeout.D(),
			Margin:            t.Margin.D(),
			FenceTimeout:      t.FenceTimeout.D(),
			Grace:             t.Grace.D(),
			BMCPoll:           t.BMCPoll.D(),
		},
		Policy: cluster.Policy{
			HostFailures:    c.Policy.HostFailures,
			RestartAttempts: c.Policy.RestartAttempts,
			RestartBackoff:  c.Policy.RestartBackoff.D(),
		},
	}
	for _, h := range c.Hosts {
		s.Hosts = append(s.Hosts, cluster.HostSpec{
			Name:      h.Name,
			CPU:       h.CPU,
			MemoryMiB: int(h.Memory),
			BMC:       h.BMC != "",
		})
	}
	hosts := map[string]int{}
	for i := len(c.Hosts) - 1; i >= 0; i-- {
		hosts[c.Hosts[i].Name] = i
	}
	vms := c.vmIndex()
	dflt, _ := isolationOf(c.Policy.IsolationResponse)
	for _, v := range c.VMs {
		vs := cluster.VMSpec{
			Name:         v.Name,
			CPU:          v.CPU,
			MemoryMiB:    int(v.Memory),
			AntiAffinity: v.AntiAffinity,
			Protected:    v.IsProtected(),
			Isolation:    dflt,
			Host:         -1,
		}
		vs.Priority, _ = priorityOf(v.Priority)
		if r, ok := isolationOf(v.IsolationResponse); ok && v.IsolationResponse != "" {
			vs.Isolation = r
		}
		for _, a := range v.After {
			if j, ok := vms[a]; ok {
				vs.After = append(vs.After, j)
			}
		}
		if j, ok := hosts[v.Host]; ok && v.Host != "" {
			vs.Host = j
		}
		s.VMs = append(s.VMs, vs)
	}
	return s
}

// vmIndex maps each VM name to its first index.
func (c *Config) vmIndex() map[string]int {
	m := make(map[string]int, len(c.VMs))
	for i := len(c.VMs) - 1; i >= 0; i-- {
		m[c.VMs[i].Name] = i
	}
	return m
}

// priorityOf parses a priority; "" is medium.
func priorityOf(s string) (cluster.Priority, bool) {
	switch s {
	case "high":
		return cluster.High, true
	case "", "medium":
		return cluster.Medium, true
	case "low":
		return cluster.Low, true
	}
	return cluster.Medium, false
}

// isolationOf parses an isolation response; "" is shutdown.
func isolationOf(s string) (cluster.IsolationResponse, bool) {
	switch s {
	case "leave-running":
		return cluster.LeaveRunning, true
	case "", "shutdown":
		return cluster.ShutDown, true
	case "poweroff":
		return cluster.PowerOff, true
	}
	return cluster.ShutDown, false
}
