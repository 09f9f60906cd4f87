package sim

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/vigil-ha/vigil/firmware/config"
)

// A scenario is a folder holding the cluster file, the command script and
// the expected log:
//
//	NAME/cluster.toml  the cluster, in the cluster file format
//	NAME/cmds          the script (see Script)
//	NAME/log.expect    the log a correct run writes
const (
	ClusterFile = "cluster.toml"
	CmdsFile    = "cmds"
	ExpectFile  = "log.expect"
)

// Result is the outcome of a run.
type Result struct {
	Log        string
	Violations []string
	World      *World
}

// RunScenario runs the scenario in dir to its end.
func RunScenario(dir string, verbose bool) (*Result, error) {
	cfg, err := config.Load(filepath.Join(dir, ClusterFile))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ClusterFile), err)
	}
	file := filepath.Join(dir, CmdsFile)
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	p := DefaultParams()
	p.Verbose = verbose
	return RunConfig(cfg, file, string(src), p)
}

// RunConfig runs a script (named file in errors) over a cluster.
func RunConfig(cfg *config.Config, file, src string, p Params) (*Result, error) {
	spec := cfg.Spec()
	s, err := ParseScript(file, src, spec, NamesOf(cfg), p)
	if err != nil {
		return nil, err
	}
	w := New(spec, s.Params)
	w.Schedule(s)
	w.RunUntil(s.End)
	return &Result{Log: w.Log(), Violations: w.ViolationList(), World: w}, nil
}

// NamesOf returns the link and datastore names of a cluster file.
func NamesOf(cfg *config.Config) Names {
	var n Names
	for _, l := range cfg.Links {
		n.Links = append(n.Links, l.Name)
	}
	for _, d := range cfg.Datastores {
		n.Datastores = append(n.Datastores, d.Name)
	}
	return n
}
