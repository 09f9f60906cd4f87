package sim

import (
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/firmware/config"
)

// fuzzCluster draws a random valid cluster of 2 to maxHosts hosts (small
// ones more often), 1 to 3 links and datastores, some hosts with a BMC, and
// VMs sized so that the survivors of one host failure have room for them.
func fuzzCluster(r *rand.Rand, seed int64, maxHosts int) *config.Config {
	c := config.Default()
	c.Cluster.Name = fmt.Sprintf("fuzz-%d", seed)
	if c.Cluster.Name[5] == '-' { // a negative seed
		c.Cluster.Name = "fuzz-m" + c.Cluster.Name[6:]
	}
	n := 2 + r.Intn(1+r.Intn(max(1, maxHosts-1)))
	links, dss := 1+r.Intn(3), 1+r.Intn(3)
	for l := 0; l < links; l++ {
		lk := config.Link{Name: fmt.Sprintf("l%d", l)}
		if r.Intn(4) > 0 {
			lk.IsolationAddress = fmt.Sprintf("10.%d.255.254", l)
		}
		c.Links = append(c.Links, lk)
	}
	for d := 0; d < dss; d++ {
		c.Datastores = append(c.Datastores, config.Datastore{Name: fmt.Sprintf("ds%d", d), Path: fmt.Sprintf("/srv/vigil/ds%d", d)})
	}
	const cpu, mem = 16, config.Size(64 * 1024)
	for h := 1; h <= n; h++ {
		hs := config.Host{ID: h, Name: fmt.Sprintf("h%d", h), CPU: cpu, Memory: mem}
		for l := 0; l < links; l++ {
			hs.Addresses = append(hs.Addresses, fmt.Sprintf("10.%d.%d.%d", l, h/250, h%250+1))
		}
		if r.Intn(10) < 6 {
			hs.BMC = fmt.Sprintf("10.99.%d.%d", h/250, h%250+1)
			hs.BMCCredentials = "/etc/vigil/bmc"
		}
		c.Hosts = append(c.Hosts, hs)
	}
	// Room: 70% of the survivors of one failure, so placement has slack.
	roomCPU, roomMem := (n-1)*cpu*7/10, int(mem)*(n-1)*7/10
	prios := []string{"high", "medium", "low", ""}
	isos := []string{"", "", "shutdown", "poweroff", "leave-running"}
	for i := 0; i < 1+r.Intn(2*n); i++ {
		v := config.VM{Name: fmt.Sprintf("vm%d", i+1), CPU: 1 + r.Intn(4), Memory: config.Size(1024 * (1 + r.Intn(8)))}
		if v.CPU > roomCPU || int(v.Memory) > roomMem {
			break
		}
		roomCPU -= v.CPU
		roomMem -= int(v.Memory)
		v.Priority = prios[r.Intn(len(prios))]
		v.IsolationResponse = isos[r.Intn(len(isos))]
		if r.Intn(10) == 0 {
			f := false
			v.Protected = &f
		}
		if n > 2 && r.Intn(4) == 0 {
			v.AntiAffinity = "g" + itoa(r.Intn(2))
		}
		if i > 0 && r.Intn(6) == 0 {
			v.After = []string{c.VMs[r.Intn(i)].Name}
		}
		if r.Intn(3) == 0 {
			v.Host = c.Hosts[r.Intn(n)].Name
		}
		c.VMs = append(c.VMs, v)
	}
	// A protected VM never waits for an unprotected one (vigil check refuses it).
	for i := range c.VMs {
		if v := &c.VMs[i]; len(v.After) > 0 && v.IsProtected() {
			if j, _ := c.VMByName(v.After[0]); !c.VMs[j].IsProtected() {
				v.After = nil
			}
		}
	}
	// Anti-affinity groups larger than the survivors cannot all run.
	count := map[string]int{}
	for i := range c.VMs {
		if g := c.VMs[i].AntiAffinity; g != "" {
			if count[g]++; count[g] > n-1 {
				c.VMs[i].AntiAffinity = ""
			}
		}
	}
	return c
}

// fault is one fault and the command that heals it.
type fault struct{ on, off string }

// fuzzFault draws one fault on cluster c.
func fuzzFault(r *rand.Rand, c *config.Config) fault {
	host := func() string { return c.Hosts[r.Intn(len(c.Hosts))].Name }
	link := func() string { return c.Links[r.Intn(len(c.Links))].Name }
	ds := func() string { return c.Datastores[r.Intn(len(c.Datastores))].Name }
	vm := func() string { return c.VMs[r.Intn(len(c.VMs))].Name }
	switch k := r.Intn(40); {
	case k < 4:
		h := host()
		return fault{"poweroff " + h, "poweron " + h}
	case k < 5:
		return fault{"reset " + host(), ""}
	case k < 8:
		h := host()
		return fault{"freeze " + h, "thaw " + h}
	case k < 9:
		return fault{"restart " + host(), ""}
	case k < 13:
		h, l := host(), link()
		return fault{"cut " + h + " " + l, "heal " + h + " " + l}
	case k < 15: // every NIC of one host
		h := host()
		var on, off []string
		for _, l := range c.Links {
			on = append(on, "cut "+h+" "+l.Name)
			off = append(off, "heal "+h+" "+l.Name)
		}
		return fault{strings.Join(on, "\n"), strings.Join(off, "\n")}
	case k < 17:
		a, b, l := host(), host(), ""
		if r.Intn(2) == 0 {
			l = " " + link()
		}
		if a == b {
			return fault{"restart " + a, ""}
		}
		return fault{"oneway " + a + " " + b + l, "twoway " + a + " " + b + l}
	case k < 19:
		h, l := host(), link()
		return fault{fmt.Sprintf("loss %s %s %d", h, l, 10*(1+r.Intn(10))), "loss " + h + " " + l + " 0"}
	case k < 20:
		h, l := host(), link()
		return fault{fmt.Sprintf("delay %s %s %dms", h, l, 1+r.Intn(400)), "delay " + h + " " + l + " 0s"}
	case k < 23:
		var a, b []string
		for _, h := range c.Hosts {
			if r.Intn(2) == 0 {
				a = append(a, h.Name)
			} else {
				b = append(b, h.Name)
			}
		}
		if len(a) == 0 || len(b) == 0 {
			return fault{"restart " + host(), ""}
		}
		return fault{"partition " + strings.Join(a, ",") + "|" + strings.Join(b, ","), "unpartition"}
	case k < 24:
		l := link()
		return fault{"gateway " + l + " down", "gateway " + l + " up"}
	case k < 30:
		d, who := ds(), ""
		if r.Intn(2) == 0 {
			who = " " + host()
		}
		mode := []string{"fail", "hang", "slow 3s", "slow 300ms"}[r.Intn(4)]
		if strings.HasPrefix(mode, "slow") {
			return fault{"ds slow " + d + mode[4:] + who, "ds heal " + d + who}
		}
		return fault{"ds " + mode + " " + d + who, "ds heal " + d + who}
	case k < 33:
		h := host()
		return fault{"bmc " + h + []string{" unreachable", " liar"}[r.Intn(2)], "bmc " + h + " ok"}
	case k < 34:
		h := host()
		return fault{"hvfail " + h, "hvok " + h}
	case k < 35:
		v := vm()
		return fault{"vmfail " + v, "vmok " + v}
	case k < 37:
		return fault{"crash " + vm(), ""}
	case k < 38:
		h := host()
		return fault{"maintenance enter " + h, "maintenance exit " + h}
	default:
		h := host()
		return fault{fmt.Sprintf("drift %s %d", h, r.Intn(401)-200), "drift " + h + " 0"}
	}
}

// fuzzScript draws a fault schedule: one to three bursts of one to three
// faults, each burst healed at its end, then every host powered on and the
// cluster left alone for SettleTime.
func fuzzScript(r *rand.Rand, seed int64, c *config.Config) string {
	type timed struct {
		at  time.Duration
		cmd string
	}
	var lines []timed
	add := func(at time.Duration, cmds string) {
		for _, cmd := range strings.Split(cmds, "\n") {
			if cmd != "" {
				lines = append(lines, timed{at, cmd})
			}
		}
	}
	ms := func(lo, hi int) time.Duration { return time.Duration(lo+r.Intn(hi-lo+1)) * time.Millisecond }
	t := ms(8000, 15000)
	for burst := 0; burst < 1+r.Intn(3); burst++ {
		d := ms(300, 15000)
		fs := make([]fault, 1+r.Intn(3))
		for i := range fs {
			fs[i] = fuzzFault(r, c)
			add(t+ms(0, int(d/time.Millisecond)/2), fs[i].on)
		}
		t += d
		for i := len(fs) - 1; i >= 0; i-- {
			add(t, fs[i].off)
		}
		t += ms(2000, 20000)
	}
	for _, h := range c.Hosts {
		add(t, "poweron "+h.Name)
	}
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].at < lines[j].at })
	var b strings.Builder
	fmt.Fprintf(&b, "set seed %d\n", seed)
	for _, l := range lines {
		fmt.Fprintf(&b, "%v %s\n", l.at, l.cmd)
	}
	fmt.Fprintf(&b, "run %v\n", t+SettleTime+5*time.Second)
	return b.String()
}
