//go:build !vigil_nosim

package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/vigil-ha/vigil/tools/sim"
)

func init() {
	Register(Command{Name: "sim", Summary: "simulate a cluster: run a scenario, fuzz, demo", Run: runSim})
}

const simUsage = `usage: vigil sim run DIR [--verbose]
       vigil sim fuzz [--seeds N] [--start S] [--hosts MAX]
       vigil sim demo

run   runs the scenario folder DIR (cluster.toml, cmds) and prints its log;
      --verbose keeps debug lines. Exit status 1 if an invariant broke.
fuzz  runs N random clusters and fault schedules from seed S with at most
      MAX hosts, checking the invariants; prints a reproducing script for
      each seed that breaks one. Exit status 1 on any violation.
demo  shows a four-host cluster recovering from a host's power loss.
`

func runSim(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, simUsage)
		return 2
	}
	switch args[0] {
	case "run":
		return simRun(args[1:], stdout, stderr)
	case "fuzz":
		return simFuzz(args[1:], stdout, stderr)
	case "demo":
		if len(args) > 1 {
			fmt.Fprintf(stderr, "vigil sim demo: takes no arguments\n%s", simUsage)
			return 2
		}
		if err := sim.Demo(stdout); err != nil {
			fmt.Fprintf(stderr, "vigil sim demo: %v\n", err)
			return 1
		}
		return 0
	case "-h", "--help", "help":
		fmt.Fprint(stdout, simUsage)
		return 0
	}
	fmt.Fprintf(stderr, "vigil sim: unknown subcommand %q\n%s", args[0], simUsage)
	return 2
}

// simFlags parses flags placed before or after the positional arguments.
func simFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func simRun(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sim run", flag.ContinueOnError)
	verbose := fs.Bool("verbose", false, "keep debug lines")
	pos, err := simFlags(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, simUsage)
		return 0
	}
	if err != nil || len(pos) != 1 {
		if err == nil {
			err = fmt.Errorf("want one scenario folder, have %d", len(pos))
		}
		fmt.Fprintf(stderr, "vigil sim run: %v\n%s", err, simUsage)
		return 2
	}
	r, err := sim.RunScenario(pos[0], *verbose)
	if err != nil {
		fmt.Fprintf(stderr, "vigil sim run: %v\n", err)
		return 1
	}
	io.WriteString(stdout, r.Log)
	if n := len(r.Violations); n > 0 {
		fmt.Fprintf(stderr, "vigil sim run: %d invariant violation(s)\n", n)
		return 1
	}
	return 0
}

func simFuzz(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sim fuzz", flag.ContinueOnError)
	seeds := fs.Int("seeds", 100, "number of seeds to run")
	start := fs.Int64("start", 1, "first seed")
	hosts := fs.Int("hosts", 16, "largest cluster to draw (2 to 64)")
	pos, err := simFlags(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, simUsage)
		return 0
	}
	if err == nil && len(pos) > 0 {
		err = fmt.Errorf("unexpected argument %q", pos[0])
	}
	if err == nil && (*seeds < 0 || *hosts < 2 || *hosts > 64) {
		err = errors.New("--seeds must be >= 0 and --hosts between 2 and 64")
	}
	if err != nil {
		fmt.Fprintf(stderr, "vigil sim fuzz: %v\n%s", err, simUsage)
		return 2
	}
	if sim.Fuzz(sim.FuzzOptions{Seeds: *seeds, Start: *start, MaxHosts: *hosts}, stdout) > 0 {
		return 1
	}
	return 0
}
