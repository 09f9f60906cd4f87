//go:build !vigil_nolab

package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/vigil-ha/vigil/tools/lab"
	"github.com/vigil-ha/vigil/tools/lab/demo"
)

func init() {
	Register(Command{Name: "demo", Summary: "a real 3-host lab cluster loses a link, then a host (root)", Run: runDemo})
}

func runDemo(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "usage: vigil demo\n\nBuilds a 3-host, 2-link lab of real agents in network namespaces, cuts one\nlink of one host, powers one host off, prints the recovery timeline and\nremoves the lab. Needs root; 'vigil sim demo' is the simulated version.")
		return 2
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "vigil demo: the lab needs root (network namespaces, cgroups, eBPF): run it as root, or run 'vigil sim demo' for the simulated cluster")
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o := demo.Options{Out: stdout, Incidents: clusterTimelines}
	if k, err := lab.QEMUKernel(); err != nil {
		fmt.Fprintf(stdout, "the VMs are processes: %v\n", err)
	} else {
		o.QEMUKernel = k
		fmt.Fprintln(stdout, "the VMs are QEMU VMs (software emulation), defined on the folder datastore ds0")
	}
	res, err := demo.Run(ctx, o)
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "vigil demo: interrupted")
		return 130
	}
	if err != nil {
		fmt.Fprintf(stderr, "vigil demo: %v\n", err)
		return 1
	}
	if r := res.Recovery; !res.CutOK || !res.DSOK || r.Recovered != r.Lost || r.Lost == 0 {
		fmt.Fprintln(stderr, "vigil demo: the cluster did not behave as it must (see above)")
		return 1
	}
	return 0
}
