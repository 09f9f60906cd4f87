// Package demo runs vigil's lab demonstration: a real three-host cluster in
// network namespaces loses one link of one host (nothing is fenced), then
// one host's path to one of the two shared datastores (nothing is fenced,
// the host keeps its lease on the other), then one host's power, and the
// survivors' logs are printed as a timeline that ends with
//
//	recovered N/N VMs in T ms (detect X ms, fence Y ms via METHOD)
//
// It needs root (namespaces, cgroups, eBPF) and removes the lab when it
// ends, also when interrupted.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/firmware/agentd"
	"github.com/vigil-ha/vigil/tools/lab"
)

// Options tune the demo.
type Options struct {
	Name  string // lab name ("demo")
	Exe   string // the vigil binary ("" = this one)
	Out   io.Writer
	Hosts int // 3
	Links int // 2
	VMs   int // 6
	// QEMUKernel, when set, makes the VMs QEMU VMs booting this kernel
	// (see lab.Options.QEMUKernel).
	QEMUKernel string
	// Incidents, when set, renders the incidents recorded on the
	// datastores of the cluster file at clusterFile as 'vigil incidents'
	// prints them, and counts the open ones. Once the failed host's VMs
	// run again, the demo prints them when they are all closed.
	Incidents func(clusterFile string) (text string, open int, err error)
}

// Result is what the demo measured.
type Result struct {
	Recovery Recovery
	CutOK    bool // the link cut fenced nothing and every peer stayed alive
	// DSOK: the lost datastore path fenced nothing, every peer stayed
	// alive and the host kept its lease on the other datastore.
	DSOK bool
}

// Run runs the demo; it returns once the lab is down again.
func Run(ctx context.Context, o Options) (res Result, err error) {
	if o.Name == "" {
		o.Name = "demo"
	}
	if o.Hosts == 0 {
		o.Hosts, o.Links, o.VMs = 3, 2, 6
	}
	out := o.Out
	fmt.Fprintf(out, "building lab %q: %d hosts in network namespaces, %d links, %d VMs\n", o.Name, o.Hosts, o.Links, o.VMs)
	l, err := lab.Up(lab.Options{Name: o.Name, Hosts: o.Hosts, Links: o.Links, VMs: o.VMs, Executable: o.Exe, QEMUKernel: o.QEMUKernel})
	if err != nil {
		return res, err
	}
	defer func() {
		if derr := l.Down(); derr != nil && err == nil {
			err = derr
		}
		fmt.Fprintf(out, "lab %q removed\n", o.Name)
	}()
	c := newCluster(l)
	start := time.Now()
	placed, err := c.waitRunning(ctx, o.VMs, nil, 30*time.Second)
	if err != nil {
		return res, err
	}
	fmt.Fprintf(out, "all %d VMs running after %s: %s\n", o.VMs, ms(time.Since(start)), placement(placed))

	// One link of one host.
	fmt.Fprintf(out, "\n== cut h1's link l1 for 3 s ==\n")
	t0 := time.Now()
	if err := l.Cut("h1", "1"); err != nil {
		return res, err
	}
	if err := sleep(ctx, 3*time.Second); err != nil {
		return res, err
	}
	res.CutOK, err = c.allAlive(ctx)
	if err != nil {
		return res, err
	}
	views := c.viewsOf(ctx, "h1")
	if err := l.Heal("h1", "1"); err != nil {
		return res, err
	}
	lines, err := c.logs()
	if err != nil {
		return res, err
	}
	printTimeline(out, lines, t0, time.Now(), "")
	for _, v := range views {
		fmt.Fprintf(out, "  after 3 s %s\n", v)
	}
	if res.CutOK && !fenced(lines, t0) {
		fmt.Fprintln(out, "every peer stayed alive over link l0; nothing was fenced")
	} else {
		res.CutOK = false
		fmt.Fprintln(out, "UNEXPECTED: a peer was lost or fenced over one cut link")
	}
	if err := sleep(ctx, 2*time.Second); err != nil { // the healed link comes back
		return res, err
	}

	if res.DSOK, err = dsPath(ctx, out, l, c); err != nil {
		return res, err
	}

	// One host's power.
	victim := "h2"
	lost := placed[victim]
	fmt.Fprintf(out, "\n== power off %s (running %s) ==\n", victim, strings.Join(lost, ", "))
	failed := time.Now()
	if err := l.PowerOff(victim); err != nil {
		return res, err
	}
	if _, err := c.waitRunning(ctx, o.VMs, map[string]bool{victim: true}, 60*time.Second); err != nil {
		return res, err
	}
	if lines, err = c.logs(); err != nil {
		return res, err
	}
	printTimeline(out, lines, failed, time.Now(), victim)
	res.Recovery = Measure(lines, victim, failed, lost)
	r := res.Recovery
	fmt.Fprintf(out, "\nrecovered %d/%d VMs in %d ms (detect %d ms, fence %d ms via %s)\n",
		r.Recovered, r.Lost, r.Recover.Milliseconds(), r.Detect.Milliseconds(), r.Fence.Milliseconds(), r.Method)
	if o.Incidents != nil {
		if err := printIncidents(ctx, out, l, o.Incidents); err != nil {
			return res, err
		}
	}
	return res, nil
}

// dsPath fails h1's path to datastore ds1 for 3 s: h1 keeps its lease on
// ds0 and its VMs, and nobody suspects anybody.
func dsPath(ctx context.Context, out io.Writer, l *lab.Lab, c *cluster) (bool, error) {
	const host, ds = "h1", "ds1"
	fmt.Fprintf(out, "\n== fail %s's path to datastore %s for 3 s (I/O errors) ==\n", host, ds)
	t0 := time.Now()
	if err := l.DSFail(host, ds); err != nil {
		return false, err
	}
	if err := sleep(ctx, 3*time.Second); err != nil {
		return false, err
	}
	ok, err := c.allAlive(ctx)
	if err != nil {
		return false, err
	}
	rep := c.status(ctx, nil)[host]
	if err := l.DSHeal(host, ds); err != nil {
		return false, err
	}
	if err := sleep(ctx, 1500*time.Millisecond); err != nil { // the next renewal lands
		return false, err
	}
	lines, err := c.logs()
	if err != nil {
		return false, err
	}
	printTimeline(out, lines, t0, time.Now(), "")
	if rep == nil {
		return false, fmt.Errorf("%s's agent does not answer", host)
	}
	fmt.Fprintf(out, "  after 3 s %s: %s, lease %s (%s)\n", host, rep.Status.Self, rep.Status.Lease, datastores(rep))
	ok = ok && rep.Status.Self == "healthy" && !fenced(lines, t0)
	if ok {
		fmt.Fprintf(out, "%s kept its lease on ds0 and its VMs; nobody was suspected or fenced\n", host)
	} else {
		fmt.Fprintf(out, "UNEXPECTED: one lost datastore path changed a verdict or fenced a host\n")
	}
	return ok, nil
}

// printIncidents prints the incidents the datastores hold once every one
// is closed (the coordinator closes one a few seconds after its last VM
// runs), or as they are after 20 s.
func printIncidents(ctx context.Context, out io.Writer, l *lab.Lab, read func(string) (string, int, error)) error {
	file := filepath.Join(l.Dir(), "cluster.toml")
	fmt.Fprintf(out, "\n== the incident as the datastores hold it (vigil incidents --config %s) ==\n", file)
	deadline := time.Now().Add(20 * time.Second)
	for {
		text, open, err := read(file)
		if err != nil {
			return err
		}
		if open == 0 || time.Now().After(deadline) {
			fmt.Fprint(out, text)
			return nil
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
}

// datastores describes a host's datastores as its status gives them.
func datastores(rep *agentd.StatusReply) string {
	var parts []string
	for i, d := range rep.Status.Datastores {
		state := "ok"
		if d.Failing {
			state = "FAILING"
		}
		if d.Down {
			state = "DOWN (kernel: " + d.DownWhy + ")"
		}
		name := fmt.Sprintf("datastore %d", i)
		if i < len(rep.Datastores) {
			name, _, _ = strings.Cut(rep.Datastores[i], " ")
		}
		parts = append(parts, name+" "+state)
	}
	return strings.Join(parts, ", ")
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }

func placement(placed map[string][]string) string {
	hosts := make([]string, 0, len(placed))
	for h := range placed {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	var parts []string
	for _, h := range hosts {
		parts = append(parts, h+" "+strings.Join(placed[h], ","))
	}
	return strings.Join(parts, "; ")
}

// cluster reads a lab's agents.
type cluster struct {
	l     *lab.Lab
	hosts []string
}

func newCluster(l *lab.Lab) *cluster {
	hosts, _ := l.Hosts()
	return &cluster{l: l, hosts: hosts}
}

func (c *cluster) api(host string) *agentd.Client {
	return agentd.NewClient(filepath.Join(c.l.Dir(), host, "api.sock"))
}

// status asks every host but those in skip; a host that does not answer
// is left out.
func (c *cluster) status(ctx context.Context, skip map[string]bool) map[string]*agentd.StatusReply {
	out := map[string]*agentd.StatusReply{}
	for _, h := range c.hosts {
		if skip[h] {
			continue
		}
		var rep agentd.StatusReply
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		err := c.api(h).Get(cctx, "/v1/status", &rep)
		cancel()
		if err == nil {
			out[h] = &rep
		}
	}
	return out
}

// waitRunning polls until n VMs run on the hosts not in skip, and returns
// them by host.
func (c *cluster) waitRunning(ctx context.Context, n int, skip map[string]bool, limit time.Duration) (map[string][]string, error) {
	deadline := time.Now().Add(limit)
	for {
		placed, count := map[string][]string{}, 0
		for h, rep := range c.status(ctx, skip) {
			for _, v := range rep.Status.VMs {
				if v.State == "running" {
					placed[h] = append(placed[h], v.Name)
					count++
				}
			}
		}
		if count >= n {
			return placed, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %d of %d VMs run after %s: see the agent logs in %s", count, n, limit, c.l.Dir())
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// allAlive reports whether every host answers and takes every peer for
// alive.
func (c *cluster) allAlive(ctx context.Context) (bool, error) {
	st := c.status(ctx, nil)
	if len(st) != len(c.hosts) {
		return false, errors.New("a host's agent does not answer")
	}
	for _, rep := range st {
		for _, p := range rep.Status.Peers {
			if p.Verdict != "alive" {
				return false, nil
			}
		}
	}
	return true, nil
}

// viewsOf describes how every other host sees host: its verdict and the
// state of each of its links.
func (c *cluster) viewsOf(ctx context.Context, host string) []string {
	st := c.status(ctx, map[string]bool{host: true})
	var out []string
	for _, h := range c.hosts {
		rep := st[h]
		if rep == nil {
			continue
		}
		for _, p := range rep.Status.Peers {
			if p.Name != host {
				continue
			}
			var links []string
			for l, ls := range p.Links {
				links = append(links, fmt.Sprintf("link %d %s", l, ls.State))
			}
			out = append(out, fmt.Sprintf("%s sees %s: %s -> %s", h, host, strings.Join(links, ", "), p.Verdict))
		}
	}
	return out
}

func (c *cluster) logs() ([]Line, error) {
	files := map[string]string{}
	for _, h := range c.hosts {
		files[h] = filepath.Join(c.l.Dir(), h, "agent.log")
	}
	return ReadLogs(files)
}

// fenced reports whether any host started a fence after t.
func fenced(lines []Line, t time.Time) bool {
	for _, l := range lines {
		if !l.Time.Before(t) && l.Component == "fence" {
			return true
		}
	}
	return false
}

var timelineComponents = map[string]bool{"hb": true, "ds": true, "verdict": true, "fence": true, "assign": true, "vm": true, "coord": true, "agent": true}

// printTimeline prints the lines between from and to, relative to from.
// Lines of host skip (the failed host) are left out.
func printTimeline(w io.Writer, lines []Line, from, to time.Time, skip string) {
	for _, l := range lines {
		if l.Time.Before(from) || l.Time.After(to) || l.Host == skip || !timelineComponents[l.Component] {
			continue
		}
		fmt.Fprintf(w, "%+8d ms  %s\n", l.Time.Sub(from).Milliseconds(), describe(l))
	}
}

// describe renders a line for the timeline.
func describe(l Line) string {
	if l.Component != "assign" {
		return l.Host + "/" + l.Component + ": " + l.Msg
	}
	s := fmt.Sprintf("%s/assign: %v -> %v (epoch %v)", l.Host, l.Attrs["vm"], l.Attrs["to"], l.Attrs["epoch"])
	if from, ok := l.Attrs["from"]; ok {
		s += fmt.Sprintf(", moved from %v with proof %v: %v", from, l.Attrs["proof"], l.Attrs["detail"])
	}
	return s
}
