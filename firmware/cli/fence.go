//go:build !vigil_noipmilan

package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/vigil-ha/vigil/drivers/ipmi"
	"github.com/vigil-ha/vigil/firmware/agentd"
	"github.com/vigil-ha/vigil/firmware/config"
)

func init() {
	Register(Command{Name: "fence", Summary: "power a host off through its BMC and prove it, or test its BMC", Run: runFence})
}

const fenceUsage = `usage: vigil fence [--config FILE] HOST --yes [--timeout D]
       vigil fence [--config FILE] --test HOST

Fences HOST as the cluster would: powers it off through its BMC (the
bmc and bmc_credentials of the cluster file) and reads the power state
back until the BMC says off, which is the proof; a power-off the BMC
merely accepted proves nothing. HOST's VMs are restarted elsewhere by
the cluster once it finds HOST gone. --yes is required: HOST loses power.

--test opens a session with HOST's BMC, with its credentials, reads the
BMC's identity and the power state, and powers nothing.

  --config FILE  the cluster file (default /etc/vigil/cluster.toml)
  --timeout D    how long to wait for the BMC to read off (default the
                 cluster's fence_timeout)

Exit status: 0 fenced (or the BMC passed the test), 1 failed, 2 usage error.
`

// fenceDial opens a session with a BMC; tests replace it.
var fenceDial agentd.DialBMC = agentd.DialLAN

func runFence(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fence", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfgFile := fs.String("config", defaultConfig, "")
	yes := fs.Bool("yes", false, "")
	test := fs.Bool("test", false, "")
	timeout := fs.Duration("timeout", 0, "")
	var hosts []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				io.WriteString(stdout, fenceUsage)
				return 0
			}
			fmt.Fprintf(stderr, "vigil fence: %v\n%s", err, fenceUsage)
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		hosts = append(hosts, fs.Arg(0))
		args = fs.Args()[1:]
	}
	switch {
	case len(hosts) != 1:
		fmt.Fprintf(stderr, "vigil fence: want one host, have %d\n%s", len(hosts), fenceUsage)
		return 2
	case !*test && !*yes:
		fmt.Fprintf(stderr, "vigil fence: fencing %s powers it off: add --yes to do it, or --test to check its BMC only\n", hosts[0])
		return 2
	case *test && *yes:
		fmt.Fprintf(stderr, "vigil fence: --test powers nothing: drop --yes\n")
		return 2
	}
	cfg, err := config.Load(*cfgFile)
	if err != nil {
		fmt.Fprintf(stderr, "vigil fence: %v\n", err)
		return 1
	}
	h, ok := cfg.HostByName(hosts[0])
	if !ok {
		fmt.Fprintf(stderr, "vigil fence: no host %q in %s (fix: name one of its [[hosts]])\n", hosts[0], *cfgFile)
		return 1
	}
	hc := cfg.Hosts[h]
	if hc.BMC == "" {
		fmt.Fprintf(stderr, "vigil fence: %s has no bmc in %s: the cluster fences it by waiting out its lease and watchdog (fix: set bmc and bmc_credentials)\n", hc.Name, *cfgFile)
		return 1
	}
	cred, warnings, err := ipmi.LoadCredentials(hc.BMCCredentials)
	for _, w := range warnings {
		fmt.Fprintf(stderr, "vigil fence: warning: %s\n", w)
	}
	if err != nil {
		fmt.Fprintf(stderr, "vigil fence: %v\n", err)
		return 1
	}
	addr := config.BMCAddr(hc.BMC)
	ctx := context.Background()
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	bmc, err := fenceDial(dctx, addr, cred)
	cancel()
	if err != nil {
		fmt.Fprintf(stderr, "vigil fence: BMC of %s (%s): %v\n", hc.Name, addr, err)
		return 1
	}
	defer bmc.Close()
	if *test {
		return fenceTest(ctx, stdout, stderr, hc.Name, addr, bmc)
	}
	limit := *timeout
	if limit <= 0 {
		limit = cfg.Timing.FenceTimeout.D()
	}
	poll := cfg.Timing.BMCPoll.D()
	return fenceOff(ctx, stdout, stderr, hc.Name, addr, bmc, poll, limit)
}

// fenceTest probes the BMC and reads the power state.
func fenceTest(ctx context.Context, stdout, stderr io.Writer, host, addr string, bmc ipmi.BMC) int {
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	info, err := bmc.Probe(pctx)
	if err != nil {
		fmt.Fprintf(stderr, "vigil fence: BMC of %s (%s): %v\n", host, addr, err)
		return 1
	}
	on, err := bmc.PowerStatus(pctx)
	if err != nil {
		fmt.Fprintf(stderr, "vigil fence: BMC of %s (%s): power status: %v\n", host, addr, err)
		return 1
	}
	fmt.Fprintf(stdout, "BMC of %s (%s): ok: IPMI %s, firmware %s, manufacturer %d, product %d, cipher suite %d; chassis power %s\n",
		host, addr, info.IPMIVersion, info.FirmwareRevision, info.ManufacturerID, info.ProductID, info.CipherSuite, onOff(on))
	return 0
}

// fenceOff powers the host off and reads the state back every poll until
// it reads off, for at most limit.
func fenceOff(ctx context.Context, stdout, stderr io.Writer, host, addr string, bmc ipmi.BMC, poll, limit time.Duration) int {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	c, err := confirmPower(ctx, bmc, false, 0, poll, limit, time.Now, sleepCtx, nil)
	switch {
	case err == nil:
		fmt.Fprintf(stdout, "fenced %s in %d ms: its BMC (%s) read back power off after %d read(s)\n",
			host, time.Since(start).Milliseconds(), addr, c.reads)
		return 0
	case errors.Is(err, errPowerTimeout):
		why := "it never answered"
		switch {
		case c.lastErr != nil:
			why = c.lastErr.Error()
		case c.heard:
			why = "it still reads on"
		}
		fmt.Fprintf(stderr, "vigil fence: %s is NOT proven off after %s: %s (fix: check the BMC; the cluster still fences it by its lease and watchdog)\n", host, limit, why)
	default:
		fmt.Fprintf(stderr, "vigil fence: BMC of %s (%s): %v\n", host, addr, err)
	}
	return 1
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}
