package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/vigil-ha/vigil/firmware/agentd"
)

func init() {
	Register(Command{Name: "rejoin", Summary: "let a host its watchdog kept resetting join again", Run: runRejoin})
}

const rejoinUsage = `usage: vigil rejoin [--api SOCKET]

A host whose watchdog reset it policy.watchdog_resets times within
policy.watchdog_reset_window waits for an operator: its agent runs and
answers, but neither joins the cluster nor runs VMs ('vigil status' says
HELD and why). Once the cause is found, this lets it join; the recorded
resets are forgotten. On a host that is not held it does nothing.
`

func runRejoin(args []string, stdout, stderr io.Writer) int {
	fs, api, _ := apiFlags("rejoin")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		fmt.Fprint(stderr, rejoinUsage)
		return 2
	}
	c := agentd.NewClient(*api)
	var rep agentd.StatusReply
	if err := c.Get(context.Background(), "/v1/status", &rep); err != nil {
		fmt.Fprintf(stderr, "vigil rejoin: %v\n", err)
		return 1
	}
	if rep.Held == "" {
		fmt.Fprintf(stdout, "host %s is not held: nothing to do\n", rep.Status.Host)
		return 0
	}
	var ok struct{ OK bool }
	if err := c.Post(context.Background(), "/v1/command?name=rejoin", &ok); err != nil {
		fmt.Fprintf(stderr, "vigil rejoin: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "host %s joins again\n", rep.Status.Host)
	return 0
}
