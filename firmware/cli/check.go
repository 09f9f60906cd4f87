package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/vigil-ha/vigil/firmware/config"
)

func init() {
	Register(Command{Name: "check", Summary: "validate a cluster file", Run: runCheck})
}

const checkUsage = `usage: vigil check [--json] FILE

Validates the cluster file FILE, timing rules included, and prints every
problem found. Exit status: 0 valid, 1 invalid or unreadable, 2 usage error.
`

// checkReport is the --json output.
type checkReport struct {
	OK       bool             `json:"ok"`
	Problems []config.Problem `json:"problems"`
}

func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				io.WriteString(stdout, checkUsage)
				return 0
			}
			fmt.Fprintf(stderr, "vigil check: %v\n%s", err, checkUsage)
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(files) != 1 {
		fmt.Fprintf(stderr, "vigil check: want one cluster file, have %d\n%s", len(files), checkUsage)
		return 2
	}
	file := files[0]

	cfg, err := config.Load(file)
	var ps config.Problems
	if err != nil && !errors.As(err, &ps) {
		ps = config.Problems{{Msg: err.Error(), Fix: "check the file name and its permissions"}}
	}
	if *asJSON {
		r := checkReport{OK: err == nil, Problems: ps}
		if r.Problems == nil {
			r.Problems = []config.Problem{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		if e := enc.Encode(r); e != nil {
			fmt.Fprintf(stderr, "vigil check: %v\n", e)
			return 1
		}
		if err != nil {
			return 1
		}
		return 0
	}
	if err != nil {
		for _, p := range ps {
			fmt.Fprintf(stdout, "%s: %s\n", file, p)
		}
		fmt.Fprintf(stdout, "%s: %s\n", file, plural(len(ps), "problem"))
		return 1
	}
	s := cfg.Spec()
	t := s.Timing
	fmt.Fprintf(stdout, "%s: ok: cluster %s, %s, %s, %s, %s\n", file, s.Name,
		plural(len(s.Hosts), "host"), plural(len(s.VMs), "VM"), plural(s.Links, "link"), plural(s.Datastores, "datastore"))
	fmt.Fprintf(stdout, "%s: timing: failure detected in ~%v (link_timeout+heartbeat), proof (c) ~%v after a host was last seen (max(lease_timeout, 5 x link_timeout + 2 x heartbeat) + watchdog_timeout + margin), fence reported stuck after %v\n",
		file, t.LinkTimeout+t.Heartbeat, t.ProofDelay(), t.FenceTimeout)
	return 0
}

// plural writes "1 host" or "2 hosts".
func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
