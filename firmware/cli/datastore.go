package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigil-ha/vigil/drivers/datastore"
	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/firmware/config"
)

func init() {
	Register(Command{Name: "datastore", Summary: "init, show or dump a shared datastore (device or folder)", Run: runDatastore})
}

const datastoreUsage = `usage:
  vigil datastore init TARGET (--config FILE | --cluster NAME) [--slots N] [--incident-slots N]
  vigil datastore show TARGET --config FILE [--json]
  vigil datastore dump TARGET --config FILE [--json]

TARGET is a block device (a shared LUN, a loop device) or a folder on a
shared filesystem. init writes a block device's header (once, from one
host; it refuses a device that holds anything; run again, it upgrades a
device of an earlier layout in place) or makes a folder's cluster
subfolder. show lists every host's slot and lease, each VM's owner and the
incidents; dump prints every record whole and each incident's timeline,
with what is wrong with the records that fail their checks.
`

func runDatastore(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		io.WriteString(stdout, datastoreUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	verb := args[0]
	fs := flag.NewFlagSet("datastore "+verb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfgFile := fs.String("config", "", "")
	clusterName := fs.String("cluster", "", "")
	slots := fs.Int("slots", 0, "")
	ring := fs.Int("incident-slots", datastore.DefaultIncidentSlots, "")
	asJSON := fs.Bool("json", false, "")
	var pos []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			fmt.Fprintf(stderr, "vigil datastore %s: %v\n%s", verb, err, datastoreUsage)
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "vigil datastore %s: want one device or folder, have %d\n%s", verb, len(pos), datastoreUsage)
		return 2
	}
	target := pos[0]
	var cfg *config.Config
	if *cfgFile != "" {
		c, err := config.Load(*cfgFile)
		if err != nil {
			fmt.Fprintf(stderr, "vigil datastore %s: %v\n", verb, err)
			return 1
		}
		cfg = c
		if *clusterName != "" && *clusterName != cfg.Cluster.Name {
			fmt.Fprintf(stderr, "vigil datastore %s: --cluster %q disagrees with %s's cluster %q: give one of them\n", verb, *clusterName, *cfgFile, cfg.Cluster.Name)
			return 2
		}
		*clusterName = cfg.Cluster.Name
	}
	switch verb {
	case "init":
		if *clusterName == "" {
			fmt.Fprintf(stderr, "vigil datastore init: give --config FILE or --cluster NAME\n%s", datastoreUsage)
			return 2
		}
		return datastoreInit(target, *clusterName, cfg, *slots, *ring, stdout, stderr)
	case "show", "dump":
		if cfg == nil {
			fmt.Fprintf(stderr, "vigil datastore %s: give --config FILE (the cluster's name and hosts)\n%s", verb, datastoreUsage)
			return 2
		}
		return datastoreRead(verb, target, cfg, *asJSON, stdout, stderr)
	}
	fmt.Fprintf(stderr, "vigil datastore: unknown subcommand %q\n%s", verb, datastoreUsage)
	return 2
}

func isDir(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

// defaultSlots leaves room for the cluster to grow to 64 hosts.
const defaultSlots = 64

func datastoreInit(target, clusterName string, cfg *config.Config, slots, ring int, stdout, stderr io.Writer) int {
	if isDir(target) {
		d, err := datastore.OpenDir(target, clusterName, 1)
		if err != nil {
			fmt.Fprintf(stderr, "vigil datastore init: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "folder datastore ready: %s\n", d.Path())
		return 0
	}
	if slots == 0 {
		slots = defaultSlots
		if cfg != nil {
			slots = max(slots, len(cfg.Hosts))
		}
	}
	if cfg != nil && slots < len(cfg.Hosts) {
		fmt.Fprintf(stderr, "vigil datastore init: --slots %d is fewer than the cluster's %d hosts\n", slots, len(cfg.Hosts))
		return 2
	}
	done, err := datastore.InitBlockRing(target, clusterName, slots, ring)
	if err != nil {
		fmt.Fprintf(stderr, "vigil datastore init: %v\n", err)
		return 1
	}
	if !done {
		fmt.Fprintf(stdout, "%s already holds cluster %q's datastore: left as it is\n", target, clusterName)
		return 0
	}
	b, err := datastore.OpenBlock(target, clusterName, 1)
	if err != nil {
		fmt.Fprintf(stderr, "vigil datastore init: %v\n", err)
		return 1
	}
	h := b.Header()
	b.Close()
	fmt.Fprintf(stdout, "block datastore ready: %s, cluster %q, layout %d, %d slots of %d bytes, %d incident slots per host\n",
		target, clusterName, h.Layout, h.Slots, datastore.SlotSize, h.IncidentSlots)
	return 0
}

// slotView is one slot as show and dump print it.
type slotView struct {
	Host   string          `json:"host"`
	Slot   int             `json:"slot"`
	Empty  bool            `json:"empty,omitempty"`
	Error  string          `json:"error,omitempty"`
	Record *cluster.Record `json:"record,omitempty"`
}

type datastoreView struct {
	Target       string                 `json:"target"`
	Kind         string                 `json:"kind"` // "block" or "folder"
	Cluster      string                 `json:"cluster"`
	Header       *datastore.BlockHeader `json:"header,omitempty"`
	Slots        []slotView             `json:"slots"`
	Leases       []leaseView            `json:"leases"`
	Owners       []ownerView            `json:"owners"`
	Incidents    []incidentView         `json:"incidents"`
	BadIncidents []string               `json:"bad_incidents,omitempty"` // records that fail their checks
}

func datastoreRead(verb, target string, cfg *config.Config, asJSON bool, stdout, stderr io.Writer) int {
	v := datastoreView{Target: target, Cluster: cfg.Cluster.Name}
	bad := map[int]string{}
	onBad := func(err error) {
		var se *datastore.SlotError
		if errors.As(err, &se) {
			bad[se.Host] = se.Reason
		}
	}
	recs, incs, badIncs, err := readDatastore(target, cfg, &v, onBad)
	if err != nil {
		fmt.Fprintf(stderr, "vigil datastore %s: %v\n", verb, err)
		return 1
	}
	for h, r := range recs {
		s := slotView{Host: cfg.Hosts[h].Name, Slot: h, Record: r, Error: bad[h]}
		s.Empty = r == nil && s.Error == ""
		v.Slots = append(v.Slots, s)
	}
	nm := configNames(cfg)
	v.Leases, v.Owners = leases(v.Slots, nm), owners(v.Slots, nm)
	sortIncidents(incs)
	v.Incidents = []incidentView{}
	for _, x := range incs {
		v.Incidents = append(v.Incidents, viewIncident(x, nm, nil))
	}
	for _, e := range badIncs {
		v.BadIncidents = append(v.BadIncidents, e.Error())
	}
	switch {
	case asJSON:
		if code := printJSON(stdout, v); code != 0 {
			return code
		}
	case verb == "show":
		printDatastore(stdout, &v, cfg)
	default:
		dumpDatastore(stdout, &v, cfg)
	}
	if len(bad) > 0 || len(badIncs) > 0 {
		return 1 // a record failed its checks: say so to scripts too
	}
	return 0
}

// readDatastore reads every slot and incident of the datastore at target
// (a folder or a block device), filling v's kind and header.
func readDatastore(target string, cfg *config.Config, v *datastoreView, onBad func(error)) (recs []*cluster.Record, incs []*cluster.Incident, badIncs []error, err error) {
	if isDir(target) {
		v.Kind = "folder"
		var d *datastore.Dir
		if d, err = datastore.OpenDir(target, cfg.Cluster.Name, len(cfg.Hosts)); err == nil {
			d.BadSlot = onBad
			if recs, err = d.ReadAll(); err == nil {
				incs, badIncs, err = d.ReadIncidents()
			}
		}
		return
	}
	v.Kind = "block"
	var b *datastore.Block
	if b, err = datastore.OpenBlock(target, cfg.Cluster.Name, len(cfg.Hosts)); err == nil {
		h := b.Header()
		v.Header = &h
		b.BadSlot = onBad
		if recs, err = b.ReadAll(); err == nil {
			incs, badIncs, err = b.ReadIncidents()
		}
		b.Close()
	}
	return
}

func recordState(r *cluster.Record) string {
	var s []string
	if r.Isolated {
		s = append(s, "isolated")
	}
	if r.Maintenance {
		s = append(s, "maintenance")
	}
	if r.DatastoreLost {
		s = append(s, "datastore-lost")
	}
	if len(s) == 0 {
		return "ok"
	}
	return strings.Join(s, ",")
}

func printDatastore(w io.Writer, v *datastoreView, cfg *config.Config) {
	fmt.Fprintf(w, "%s datastore %s, cluster %q", v.Kind, v.Target, v.Cluster)
	if v.Header != nil {
		fmt.Fprintf(w, ", layout %d, %d slots, %d incident slots per host", v.Header.Layout, v.Header.Slots, v.Header.IncidentSlots)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SLOT\tHOST\tINCARNATION\tCOUNTER\tSTATE\tHEARS\tVMS\tASSIGNS\tFENCED")
	for _, s := range v.Slots {
		switch {
		case s.Error != "":
			fmt.Fprintf(tw, "%d\t%s\tBAD: %s\n", s.Slot, s.Host, s.Error)
		case s.Empty:
			fmt.Fprintf(tw, "%d\t%s\t-\t-\tempty\n", s.Slot, s.Host)
		default:
			r := s.Record
			fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%s\t%s\t%d\t%d\t%d\n", s.Slot, s.Host, r.Incarnation, r.Counter, recordState(r),
				hostNames(cfg, r), liveClaims(r), len(r.Assignments), len(r.Fenced))
		}
	}
	tw.Flush()
	printLeases(w, v.Leases)
	printOwners(w, v.Owners)
	printIncidents(w, v, false)
}

func hostNames(cfg *config.Config, r *cluster.Record) string {
	var names []string
	for h := range cfg.Hosts {
		if r.Hears.Has(h) {
			names = append(names, cfg.Hosts[h].Name)
		}
	}
	if len(names) == 0 {
		return "-"
	}
	return strings.Join(names, ",")
}

func liveClaims(r *cluster.Record) int {
	n := 0
	for _, c := range r.Claims {
		if c.State != cluster.Released {
			n++
		}
	}
	return n
}

func name(names []string, i int) string {
	if i >= 0 && i < len(names) {
		return names[i]
	}
	return fmt.Sprintf("#%d", i)
}

func claimState(s cluster.ClaimState) string {
	switch s {
	case cluster.Claiming:
		return "claiming"
	case cluster.Running:
		return "running"
	case cluster.Released:
		return "released"
	case cluster.Starting:
		return "starting"
	}
	return fmt.Sprintf("state-%d", s)
}

func dumpDatastore(w io.Writer, v *datastoreView, cfg *config.Config) {
	hosts := make([]string, len(cfg.Hosts))
	for i, h := range cfg.Hosts {
		hosts[i] = h.Name
	}
	vms := make([]string, len(cfg.VMs))
	for i, vm := range cfg.VMs {
		vms[i] = vm.Name
	}
	fmt.Fprintf(w, "%s datastore %s, cluster %q\n", v.Kind, v.Target, v.Cluster)
	for _, s := range v.Slots {
		fmt.Fprintf(w, "\nslot %d (%s): ", s.Slot, s.Host)
		switch {
		case s.Error != "":
			fmt.Fprintf(w, "BAD: %s\n", s.Error)
			continue
		case s.Empty:
			fmt.Fprintln(w, "empty")
			continue
		}
		r := s.Record
		fmt.Fprintf(w, "incarnation %d, counter %d, %s, hears %s\n", r.Incarnation, r.Counter, recordState(r), hostNames(cfg, r))
		for _, c := range r.Claims {
			fmt.Fprintf(w, "  claim   %s epoch %d %s", name(vms, c.VM), c.Epoch, claimState(c.State))
			if c.Reason != cluster.NoReason {
				fmt.Fprintf(w, " (%s)", reasonName(c.Reason, configNames(cfg).hosts))
			}
			fmt.Fprintln(w)
		}
		for _, a := range r.Assignments {
			from := "first power-on"
			if a.From >= 0 {
				from = fmt.Sprintf("from %s epoch %d", name(hosts, a.From), a.FromEpoch)
			}
			fmt.Fprintf(w, "  assign  %s to %s epoch %d, %s\n", name(vms, a.VM), name(hosts, a.Host), a.Epoch, from)
		}
		for _, p := range r.Fenced {
			fmt.Fprintf(w, "  fenced  %s incarnation %d by %s at %s: %s\n", name(hosts, p.Host), p.Incarnation, p.Kind, p.At.Round(time.Millisecond), p.Detail)
		}
	}
	printLeases(w, v.Leases)
	printOwners(w, v.Owners)
	printIncidents(w, v, true)
}
