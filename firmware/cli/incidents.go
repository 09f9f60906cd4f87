package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/vigil-ha/vigil/drivers/datastore"
	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/firmware/agentd"
	"github.com/vigil-ha/vigil/firmware/config"
)

func init() {
	Register(Command{Name: "incidents", Summary: "the incident log: each failure, its evidence, fence, proof and placements", Run: runIncidents})
}

// defaultConfig is the cluster file commands read unless told otherwise.
const defaultConfig = "/etc/vigil/cluster.toml"

const incidentsUsage = `usage: vigil incidents [--config FILE] [--json] [--api SOCKET]

Prints every incident recorded on the cluster's datastores (those of the
cluster file), oldest first: what failed and the evidence, the fence and
its proof, and where each VM went, timed from the detection. With --api,
the incidents the local agent recorded as coordinator instead.
`

func runIncidents(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("incidents", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfgFile := fs.String("config", defaultConfig, "")
	api := fs.String("api", "", "")
	js := fs.Bool("json", false, "")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		if err == nil {
			err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
		}
		fmt.Fprintf(stderr, "vigil incidents: %v\n%s", err, incidentsUsage)
		return 2
	}
	var views []incidentView
	code := 0
	if *api != "" {
		var rep agentd.IncidentsReply
		if err := agentd.NewClient(*api).Get(context.Background(), "/v1/incidents", &rep); err != nil {
			fmt.Fprintf(stderr, "vigil incidents: %v\n", err)
			return 1
		}
		nm := names{hosts: rep.Hosts, vms: rep.VMs}
		sortIncidents(rep.Incidents)
		for _, x := range rep.Incidents {
			views = append(views, viewIncident(x, nm, nil))
		}
	} else {
		cfg, err := config.Load(*cfgFile)
		if err != nil {
			fmt.Fprintf(stderr, "vigil incidents: %v (fix: pass --config with the cluster file, or --api with the agent's socket)\n", err)
			return 1
		}
		var problems []string
		views, problems = clusterIncidents(cfg)
		for _, p := range problems {
			fmt.Fprintf(stderr, "vigil incidents: %s\n", p)
		}
		if len(problems) > 0 {
			code = 1 // what could be read is printed; scripts still learn of the rest
		}
	}
	if *js {
		if views == nil {
			views = []incidentView{}
		}
		if c := printJSON(stdout, views); c != 0 {
			return c
		}
		return code
	}
	printTimelines(stdout, views)
	return code
}

// clusterTimelines renders the incidents on the datastores of the cluster
// file at path, as 'vigil incidents --config path' prints them, and counts
// those still open.
func clusterTimelines(path string) (text string, open int, err error) {
	cfg, err := config.Load(path)
	if err != nil {
		return "", 0, err
	}
	views, problems := clusterIncidents(cfg)
	if len(problems) > 0 {
		return "", 0, fmt.Errorf("incidents: %s", strings.Join(problems, "; "))
	}
	for _, v := range views {
		if !v.Closed {
			open++
		}
	}
	var b strings.Builder
	printTimelines(&b, views)
	return b.String(), open, nil
}

// printTimelines prints each incident's timeline, a blank line between.
func printTimelines(w io.Writer, views []incidentView) {
	if len(views) == 0 {
		fmt.Fprintln(w, "no incidents recorded")
	}
	for i := range views {
		if i > 0 {
			fmt.Fprintln(w)
		}
		printIncident(w, &views[i])
	}
}

// configNames are the cluster file's host and VM names.
func configNames(cfg *config.Config) names {
	var nm names
	for _, h := range cfg.Hosts {
		nm.hosts = append(nm.hosts, h.Name)
	}
	for _, v := range cfg.VMs {
		nm.vms = append(nm.vms, v.Name)
	}
	return nm
}

// openDatastore opens one datastore of the cluster file; close releases it.
func openDatastore(cfg *config.Config, ds config.Datastore) (datastore.Store, func() error, error) {
	return datastore.Open(ds.Device, ds.Path, cfg.Cluster.Name, len(cfg.Hosts), nil)
}

// clusterIncidents reads the incidents of every datastore of the cluster
// file and merges them: the newest version of each incident wins. A
// datastore that cannot be read, or a record that fails its checks, is a
// problem to report; it hides nothing else.
func clusterIncidents(cfg *config.Config) ([]incidentView, []string) {
	type entry struct {
		x   *cluster.Incident
		dss []string
	}
	byID := map[cluster.IncidentID]*entry{}
	var problems []string
	for _, ds := range cfg.Datastores {
		st, closeDS, err := openDatastore(cfg, ds)
		if err != nil {
			problems = append(problems, fmt.Sprintf("datastore %s: %v", ds.Name, err))
			continue
		}
		xs, bad, err := st.ReadIncidents()
		closeDS()
		if err != nil {
			problems = append(problems, fmt.Sprintf("datastore %s: %v", ds.Name, err))
			continue
		}
		for _, e := range bad {
			problems = append(problems, fmt.Sprintf("datastore %s: skipped: %v", ds.Name, e))
		}
		for _, x := range xs {
			switch e := byID[x.ID]; {
			case e == nil || x.Version > e.x.Version:
				byID[x.ID] = &entry{x: x, dss: []string{ds.Name}}
			case x.Version == e.x.Version:
				e.dss = append(e.dss, ds.Name)
			}
		}
	}
	xs := make([]*cluster.Incident, 0, len(byID))
	for _, e := range byID {
		xs = append(xs, e.x)
	}
	sortIncidents(xs)
	nm := configNames(cfg)
	var views []incidentView
	for _, x := range xs {
		views = append(views, viewIncident(x, nm, byID[x.ID].dss))
	}
	return views, problems
}
