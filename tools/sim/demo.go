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

// Recovery is what one host failure cost, measured from the world's events.
type Recovery struct {
	Failed    time.Duration // when the host lost power
	Detect    time.Duration // first suspicion of the dead host, from the failure
	Fence     time.Duration // from detection to the proof
	Recover   time.Duration // from the failure to the last of its VMs running
	Method    string        // the proof's kind
	Recovered int           // VMs running again
	Lost      int           // protected VMs the host ran
}

// demoRun is a traced run of the embedded cluster through one power loss.
type demoRun struct {
	w     *World
	t0    time.Duration
	dead  *host
	lost  []int
	first int // first log line after the failure
	r     Recovery
}

// runDemo runs the embedded four-host cluster through the script cmds, which
// holds one poweroff, and measures the recovery.
func runDemo(cmds string) (*demoRun, error) {
	cfg, err := config.Parse(demoCluster)
	if err != nil {
		return nil, fmt.Errorf("demo cluster: %w", err)
	}
	spec := cfg.Spec()
	s, err := ParseScript("demo/cmds", cmds, spec, NamesOf(cfg), DefaultParams())
	if err != nil {
		return nil, err
	}
	var fail *Cmd
	for i := range s.Cmds {
		if s.Cmds[i].Op == "poweroff" {
			fail = &s.Cmds[i]
			break
		}
	}
	if fail == nil {
		return nil, fmt.Errorf("demo/cmds: no poweroff command")
	}
	s.Params.Quiet = true
	w := New(spec, s.Params)
	w.trace = true
	w.Schedule(s)
	d := &demoRun{w: w, t0: fail.At, dead: w.hosts[fail.H]}
	w.RunUntil(d.t0 - 1)
	for vm := range spec.VMs {
		if d.dead.vm[vm] != vmOff && spec.VMs[vm].Protected {
			d.lost = append(d.lost, vm)
		}
	}
	d.first = len(w.lines)
	w.RunUntil(s.End)
	// Phases, from the events rather than from the log text.
	t0 := d.t0
	detect, proof, method := time.Duration(-1), time.Duration(-1), "none"
	recovered, last := map[int]bool{}, t0
	for _, r := range w.records {
		switch {
		case r.asg != nil && r.asg.From == d.dead.id && r.at >= t0:
			if r.asg.Failed >= t0 && (detect < 0 || r.asg.Failed < detect) {
				detect = r.asg.Failed
			}
			if proof < 0 || r.asg.Proof.At < proof {
				proof, method = r.asg.Proof.At, r.asg.Proof.Kind.String()
			}
		case r.asg == nil && r.at >= t0 && contains(d.lost, r.vm) && !recovered[r.vm]:
			recovered[r.vm], last = true, r.at
		}
	}
	if detect < 0 {
		detect = t0
	}
	if proof < detect {
		proof = detect
	}
	d.r = Recovery{Failed: t0, Detect: detect - t0, Fence: proof - detect, Recover: last - t0, Method: method,
		Recovered: len(recovered), Lost: len(d.lost)}
	return d, nil
}

// Demo runs the embedded four-host cluster through one host's power loss
// and prints a timeline of detection, fencing and restarts, relative to the
// failure, ending with `recovered N/N VMs in T ms (detect X ms, fence Y ms
// via METHOD)`.
func Demo(out io.Writer) error {
	d, err := runDemo(demoCmds)
	if err != nil {
		return err
	}
	w, t0 := d.w, d.t0
	fmt.Fprintf(out, "vigil demo: %d hosts, %d VMs; %s loses power at %s with %s on it\n\n",
		len(w.spec.Hosts), len(w.spec.VMs), d.dead.name, secs(t0), vmList(w, d.lost))
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
		for _, l := range w.lines[d.first:] {
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
	r := d.r
	fmt.Fprintf(out, "\nrecovered %d/%d VMs in %d ms (detect %d ms, fence %d ms via %s)\n",
		r.Recovered, r.Lost, r.Recover.Milliseconds(), r.Detect.Milliseconds(), r.Fence.Milliseconds(), r.Method)
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
