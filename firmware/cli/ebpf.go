//go:build !vigil_noebpf

package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/vigil-ha/vigil/drivers/ebpf"
	"github.com/vigil-ha/vigil/firmware/agentd"
)

func init() {
	Register(Command{Name: "ebpf", Summary: "the agent's eBPF evidence: programs, heartbeat stamps, datastore I/O, process exits", Run: runEBPF})
}

const ebpfUsage = `usage: vigil ebpf [--api SOCKET] [--json]
       vigil ebpf --probe

Shows what the agent loaded and attached, and the live figures: per peer
and link the heartbeats the kernel received and the agent read, per
datastore device its block I/O, and the process exits it was told of.
--probe asks this kernel what it can run, without an agent.
`

func runEBPF(args []string, stdout, stderr io.Writer) int {
	fs, api, js := apiFlags("ebpf")
	probe := fs.Bool("probe", false, "")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		fmt.Fprint(stderr, ebpfUsage)
		return 2
	}
	if *probe {
		if err := ebpf.MountFS(); err != nil && !errors.Is(err, ebpf.ErrUnsupported) {
			fmt.Fprintf(stderr, "vigil ebpf: %v\n", err)
		}
		sup := ebpf.Probe()
		if *js {
			return printJSON(stdout, map[string]string{"stamping": errText(sup.Stamping), "block_io": errText(sup.BlockIO), "exits": errText(sup.Exits)})
		}
		fmt.Fprintln(stdout, sup)
		return 0
	}
	var rep agentd.EBPFReply
	if err := agentd.NewClient(*api).Get(context.Background(), "/v1/ebpf", &rep); err != nil {
		fmt.Fprintf(stderr, "vigil ebpf: %v\n", err)
		return 1
	}
	if *js {
		return printJSON(stdout, rep)
	}
	printEBPF(stdout, &rep)
	return 0
}

func errText(err error) string {
	if err == nil {
		return "yes"
	}
	return err.Error()
}

func printEBPF(w io.Writer, r *agentd.EBPFReply) {
	for _, f := range r.Features {
		if f.Active {
			fmt.Fprintf(w, "%s: on (%s), %s\n", f.Name, f.Mode, f.Detail)
		} else {
			fmt.Fprintf(w, "%s: OFF (%s): %s; using %s\n", f.Name, f.Mode, f.Detail, f.Fallback)
		}
	}
	for _, p := range r.Programs {
		fmt.Fprintf(w, "program %s\n", p)
	}
	if len(r.Stamps) > 0 {
		fmt.Fprintf(w, "\n%-12s %-10s %-10s %10s %10s %8s %10s\n", "PEER", "LINK", "DEVICE", "KERNEL", "READ", "UNREAD", "LAST")
		for _, s := range r.Stamps {
			last := "never"
			if s.Ago >= 0 {
				last = dur(s.Ago) + " ago"
			}
			fmt.Fprintf(w, "%-12s %-10s %-10s %10d %10d %8d %10s\n", s.Host, s.Link, s.Device, s.Kernel, s.Read, s.Unread, last)
		}
	}
	for _, d := range r.Devices {
		st := d.Stats
		state := "ok"
		if st.Down {
			state = "DOWN: " + st.Why
		}
		fmt.Fprintf(w, "\ndevice %s (%s): %s\n", d.Dev, strings.Join(d.Datastores, ", "), state)
		fmt.Fprintf(w, "  requests: %d issued, %d completed, %d failed, %d in flight", st.Issued, st.Completed, st.Errors, st.InFlight)
		if st.InFlight > 0 {
			fmt.Fprintf(w, " (the oldest for %s)", dur(st.OldestInFlight))
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "  latency:  %s\n", histogram(st.Latency[:]))
		if d.Last != nil && d.Last.Down {
			fmt.Fprintf(w, "  last down: %s, judged %s after the first stuck or failed request\n", d.Last.Why, dur(d.Detect))
		}
	}
	if len(r.Exits.Watched) > 0 || r.Exits.Events > 0 {
		x := r.Exits
		fmt.Fprintf(w, "\nexits: %d processes watched, %d exits seen, %d lost; kernel to agent: median %s, max %s\n",
			len(x.Watched), x.Events, x.Lost, x.Median, x.Max)
		for _, l := range x.Recent {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
}

// histogram prints log2 microsecond buckets that hold requests, as
// "<2µs: 3, <4µs: 10, ...".
func histogram(b []uint64) string {
	var parts []string
	for i, n := range b {
		if n == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("<%s: %d", bucketBound(i), n))
	}
	if len(parts) == 0 {
		return "no completions yet"
	}
	return strings.Join(parts, ", ")
}

func bucketBound(i int) string {
	us := uint64(1) << uint(i+1)
	switch {
	case us >= 1_000_000:
		return fmt.Sprintf("%ds", us/1_000_000)
	case us >= 1000:
		return fmt.Sprintf("%dms", us/1000)
	}
	return fmt.Sprintf("%dµs", us)
}
