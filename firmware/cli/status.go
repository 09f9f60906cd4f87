package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigil-ha/vigil/firmware/agentd"
)

func init() {
	Register(Command{Name: "status", Summary: "this host's agent: verdict, lease, datastores, VMs", Run: func(a []string, o, e io.Writer) int {
		return query("status", a, o, e, printAgentStatus)
	}})
	Register(Command{Name: "peers", Summary: "the verdict on every peer and its links", Run: func(a []string, o, e io.Writer) int {
		return query("peers", a, o, e, printPeers)
	}})
	Register(Command{Name: "links", Summary: "every peer link's detector: state, last heard, timeout", Run: func(a []string, o, e io.Writer) int {
		return query("links", a, o, e, printLinks)
	}})
	Register(Command{Name: "explain", Summary: "the evidence behind the verdict on a host", Run: runExplain})
}

func apiFlags(name string) (*flag.FlagSet, *string, *bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	api := fs.String("api", agentd.DefaultAPI, "")
	js := fs.Bool("json", false, "")
	return fs, api, js
}

func query(name string, args []string, stdout, stderr io.Writer, print func(io.Writer, *agentd.StatusReply)) int {
	fs, api, js := apiFlags(name)
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "usage: vigil %s [--api SOCKET] [--json]\n", name)
		return 2
	}
	var rep agentd.StatusReply
	if err := agentd.NewClient(*api).Get(context.Background(), "/v1/status", &rep); err != nil {
		fmt.Fprintf(stderr, "vigil %s: %v\n", name, err)
		return 1
	}
	if *js {
		return printJSON(stdout, rep)
	}
	print(stdout, &rep)
	return 0
}

func printJSON(w io.Writer, v any) int {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return 1
	}
	return 0
}

func dur(d time.Duration) string {
	switch {
	case d < 0:
		return "never"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	default:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
}

func printAgentStatus(w io.Writer, r *agentd.StatusReply) {
	s := &r.Status
	fmt.Fprintf(w, "host %s: %s, coordinator %s, lease %s", s.Host, s.Self, s.Coordinator, s.Lease)
	if s.Maintenance && !s.Stopping {
		fmt.Fprint(w, ", in maintenance")
	}
	if s.Stopping {
		fmt.Fprint(w, ", stopping")
	}
	fmt.Fprintf(w, "\nagent %s, up %s, incarnation %d, %d watchdog pets", r.Version, dur(r.Uptime), s.Incarnation, r.Pets)
	if r.RSS > 0 {
		fmt.Fprintf(w, ", pid %d, RSS %.1f MiB", r.PID, float64(r.RSS)/(1<<20))
	}
	fmt.Fprintln(w)
	if r.Held != "" {
		fmt.Fprintf(w, "HELD: %s\n", r.Held)
	}
	for l, up := range s.Carrier {
		dev := ""
		if l < len(r.Links) {
			dev = " (" + r.Links[l] + ")"
		}
		fmt.Fprintf(w, "link %d%s: carrier %s\n", l, dev, map[bool]string{true: "up", false: "DOWN"}[up])
	}
	printDatastores(w, r)
	if l := s.Local; l.Stalled {
		fmt.Fprintf(w, "OWN STALL for %s, reading heartbeats %s late", dur(l.For), dur(l.Lag))
		if l.NotPetting {
			fmt.Fprint(w, ": NOT PETTING THE WATCHDOG")
		}
		fmt.Fprintln(w)
	} else if l.Stalls > 0 {
		fmt.Fprintf(w, "own stalls: %d, the last lasted %s\n", l.Stalls, dur(l.Last))
	}
	for _, f := range r.Kernel {
		if f.Active {
			fmt.Fprintf(w, "kernel %s: on, %s\n", f.Name, f.Detail)
		} else {
			fmt.Fprintf(w, "kernel %s: off (%s): using %s\n", f.Name, f.Detail, f.Fallback)
		}
	}
	if r.OwnBMC != "" {
		fmt.Fprintf(w, "own BMC: %s\n", r.OwnBMC)
	}
	for _, b := range r.BMCs {
		fmt.Fprintf(w, "BMC of %s (%s): %s\n", b.Host, b.Addr, bmcState(b))
	}
	printVMs(w, r)
	printGuests(w, r)
	for _, s := range r.Services {
		if s.Running {
			fmt.Fprintf(w, "service %s: running (pid %d, %s)", s.Name, s.PID, s.Detail)
		} else {
			fmt.Fprintf(w, "service %s: DOWN (%s)", s.Name, s.Detail)
		}
		if s.Exits > 0 {
			fmt.Fprintf(w, ", %d exits", s.Exits)
		}
		fmt.Fprintln(w)
	}
	for _, k := range r.Keys {
		use := "accepted"
		if k.Signs {
			use = "signs"
		}
		if !k.AcceptUntil.IsZero() {
			use += " until " + k.AcceptUntil.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(w, "key %08x: %s\n", k.ID, use)
	}
	var drops []string
	for reason, n := range r.Drops {
		if n > 0 {
			drops = append(drops, fmt.Sprintf("%s %d", reason, n))
		}
	}
	sort.Strings(drops)
	if len(drops) > 0 {
		fmt.Fprintf(w, "heartbeats dropped: %s\n", strings.Join(drops, ", "))
	}
}

func printPeers(w io.Writer, r *agentd.StatusReply) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "PEER\tVERDICT\tSILENT")
	for l := range r.Status.Carrier {
		fmt.Fprintf(tw, "\tLINK %d", l)
	}
	fmt.Fprintln(tw)
	for _, p := range r.Status.Peers {
		silent := "-"
		if p.Silent > 0 {
			silent = dur(p.Silent)
		}
		v := p.Verdict
		if p.Maintenance {
			v += " (maintenance)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s", p.Name, v, silent)
		for _, l := range p.Links {
			if l.Heard {
				fmt.Fprintf(tw, "\t%s %s ago", l.State, dur(l.Ago))
			} else {
				fmt.Fprintf(tw, "\t%s", l.State)
			}
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

func printLinks(w io.Writer, r *agentd.StatusReply) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tLINK\tSTATE\tLAST HEARD\tTIMEOUT\tMEAN GAP\tJITTER")
	for _, p := range r.Status.Peers {
		for l, s := range p.Links {
			last := "never"
			if s.Heard {
				last = dur(s.Ago) + " ago"
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", p.Name, l, s.State, last, dur(s.Timeout), dur(s.Mean), dur(s.Jitter))
		}
	}
	tw.Flush()
}

func runExplain(args []string, stdout, stderr io.Writer) int {
	fs, api, js := apiFlags("explain")
	// The host name may come before or after the flags.
	var host string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		host, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil || (host == "") == (fs.NArg() == 0) || fs.NArg() > 1 {
		fmt.Fprintln(stderr, "usage: vigil explain HOST [--api SOCKET] [--json]")
		return 2
	}
	if host == "" {
		host = fs.Arg(0)
	}
	var rep agentd.ExplainReply
	if err := agentd.NewClient(*api).Get(context.Background(), "/v1/explain?host="+url.QueryEscape(host), &rep); err != nil {
		fmt.Fprintf(stderr, "vigil explain: %v\n", err)
		return 1
	}
	if *js {
		return printJSON(stdout, rep)
	}
	fmt.Fprintf(stdout, "%s: %s\n", rep.Host, rep.Verdict)
	for _, row := range rep.Rows {
		fmt.Fprintf(stdout, "  %s\n", row)
	}
	return 0
}

// bmcState says how a peer's BMC answered last.
func bmcState(b agentd.BMCStatus) string {
	switch {
	case b.Since < 0 && b.Err != "":
		return "FAILING: " + b.Err
	case b.Since < 0:
		return "not checked yet"
	case !b.OK:
		return fmt.Sprintf("FAILING (checked %s ago): %s", dur(b.Since), b.Err)
	case b.Cipher != 0:
		return fmt.Sprintf("ok (checked %s ago), cipher suite %d", dur(b.Since), b.Cipher)
	}
	return fmt.Sprintf("ok (checked %s ago)", dur(b.Since))
}

// printDatastores writes this host's view of each datastore.
func printDatastores(w io.Writer, r *agentd.StatusReply) {
	s := &r.Status
	for d, ds := range s.Datastores {
		state := "ok"
		if ds.Failing {
			state = "FAILING"
		}
		if ds.Down {
			state = "DOWN (kernel: " + ds.DownWhy + ")"
		}
		where := ""
		if d < len(r.Datastores) {
			where = " (" + r.Datastores[d] + ")"
		}
		if ds.Renewed < 0 {
			fmt.Fprintf(w, "datastore %d%s: %s, lease never renewed\n", d, where, state)
		} else {
			fmt.Fprintf(w, "datastore %d%s: %s, lease renewed %s ago\n", d, where, state, dur(ds.Renewed))
		}
	}
}

// printVMs writes the VMs this host runs or claims.
func printVMs(w io.Writer, r *agentd.StatusReply) {
	s := &r.Status
	if len(s.VMs) == 0 {
		fmt.Fprintln(w, "VMs: none")
	}
	for _, v := range s.VMs {
		fmt.Fprintf(w, "VM %s: %s (epoch %d)", v.Name, v.State, v.Epoch)
		if v.Reason != "" {
			fmt.Fprintf(w, ", %s", v.Reason)
		}
		fmt.Fprintln(w)
	}
}

// printGuests prints what the QEMU VMs' guest agents last reported.
func printGuests(w io.Writer, r *agentd.StatusReply) {
	for _, g := range r.Guests {
		if !g.Connected {
			fmt.Fprintf(w, "guest of %s: not connected", g.VM)
		} else {
			fmt.Fprintf(w, "guest of %s: %s, heard %s ago", g.VM, g.Version, dur(time.Since(g.Heard)))
		}
		for _, a := range g.Apps {
			state := "DOWN"
			if a.Running {
				state = fmt.Sprintf("running (pid %d)", a.PID)
			}
			fmt.Fprintf(w, "; %s %s", a.Name, state)
		}
		if g.Last != "" {
			fmt.Fprintf(w, "; last: %s", g.Last)
		}
		fmt.Fprintln(w)
	}
}
