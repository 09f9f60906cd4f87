package sim

import (
	_ "embed"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/firmware/config"
)

//go:embed demo/cluster.toml
var demoCluster []byte

//go:embed demo/cmds
var demoCmds string

// record is a VM reaching running, or an assignment, kept while tracing.
type record struct {
	at   time.Duration
	host int
	vm   int
	asg  *cluster.Assigned
}

// Demo runs the embedded four-host cluster through one host's power loss
// and prints a timeline of detection, fencing and restarts, relative to the
// failure, ending with `recovered N/N VMs in T ms (detect X ms, fence Y ms
// via METHOD)`.
func Demo(out io.Writer) error {
	cfg, err := config.Parse(demoCluster)
	if err != nil {
		return fmt.Errorf("demo cluster: %w", err)
	}
	spec := cfg.Spec()
	s, err := ParseScript("demo/cmds", demoCmds, spec, NamesOf(cfg), DefaultParams())
	if err != nil {
		return err
	}
	var fail *Cmd
	for i := range s.Cmds {
		if s.Cmds[i].Op == "poweroff" {
			fail = &s.Cmds[i]
			break
		}
	}
	if fail == nil {
		return fmt.Errorf("demo/cmds: no poweroff command")
	}
	s.Params.Quiet = true
	w := New(spec, s.Params)
	w.trace = true
	w.Schedule(s)
	t0, dead := fail.At, w.hosts[fail.H]
	w.RunUntil(t0 - 1)
	var lost []int
	for vm := range spec.VMs {
		if dead.vm[vm] != vmOff && spec.VMs[vm].Protected {
			lost = append(lost, vm)
		}
	}
	fmt.Fprintf(out, "vigil demo: %d hosts, %d VMs; %s loses power at %s with %s on it\n\n",
		len(spec.Hosts), len(spec.VMs), dead.name, secs(t0), vmList(w, lost))
	first := len(w.lines)
	w.RunUntil(s.End)

	// Phases, from the events rather than from the log text.
	detect, proof, method := time.Duration(-1), time.Duration(-1), "none"
	recovered, last := map[int]bool{}, t0
	for _, r := range w.records {
		switch {
		case r.asg != nil && r.asg.From == dead.id && r.at >= t0:
			if r.asg.Failed >= t0 && (detect < 0 || r.asg.Failed < detect) {
				detect = r.asg.Failed
			}
			if proof < 0 || r.asg.Proof.At < proof {
				proof, method = r.asg.Proof.At, r.asg.Proof.Kind.String()
			}
		case r.asg == nil && r.at >= t0 && contains(lost, r.vm) && !recovered[r.vm]:
			recovered[r.vm], last = true, r.at
		}
	}
	groups := []struct {
		title string
		comps []string
	}{
		{"detection", []string{"hb", "verdict"}},
		{"fencing", []string{"fence"}},
		{"restarts", []string{"assign", "vm", "coord"}},
	}
	for _, g := range groups {
		fmt.Fprintf(out, "%s\n", g.title)
		for _, l := range w.lines[first:] {
			if l.Host == "sim" || !contains(g.comps, l.Comp) && !(g.title == "fencing" && l.Comp == "sim" && strings.HasPrefix(l.Msg, "powered off")) {
				continue
			}
			if g.title == "restarts" && l.Comp == "vm" && !strings.Contains(l.Msg, "running") {
				continue
			}
			msg := l.Msg
			if i := strings.Index(msg, " ("); i > 0 && l.Comp == "verdict" {
				msg = msg[:i] // the evidence: `vigil explain` prints it
			}
			fmt.Fprintf(out, "  %+8.3fs  %-3s %s\n", (l.At - t0).Seconds(), l.Host, msg)
		}
	}
	if detect < 0 {
		detect = t0
	}
	if proof < detect {
		proof = detect
	}
	fmt.Fprintf(out, "\nrecovered %d/%d VMs in %d ms (detect %d ms, fence %d ms via %s)\n",
		len(recovered), len(lost), (last - t0).Milliseconds(), (detect - t0).Milliseconds(), (proof - detect).Milliseconds(), method)
	return nil
}

func secs(d time.Duration) string { return string(appendTime(nil, d)) + "s" }

func vmList(w *World, vms []int) string {
	var ns []string
	for _, vm := range vms {
		ns = append(ns, w.vmName(vm))
	}
	return strings.Join(ns, ", ")
}

func contains[T comparable](s []T, x T) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}
