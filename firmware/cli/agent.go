package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"

	"github.com/vigil-ha/vigil/firmware/agentd"
)

func init() {
	Register(Command{Name: "agent", Summary: "run the agent on this host", Run: runAgent})
}

const agentUsage = `usage: vigil agent --config FILE --host NAME [--api SOCKET] [--state DIR]
                   [--watchdog DEVICE] [--vm-dir DIR] [--log-format text|json]
                   [--datastore NAME=PATH ...] [--self-fence METHOD] [--ipmi-device DEV]
                   [--ebpf FEATURE=MODE ...] [--metrics ADDR] [--vm-stop-timeout D]

Runs this host's agent until SIGTERM or SIGINT, then stops its VMs, writes
their release to the datastores (peers restart them) and disarms the
watchdog. SIGHUP reloads the cluster key file.

  --config FILE      the cluster file (checked as 'vigil check' does first)
  --host NAME        this host's name in it
  --api SOCKET       local API socket (default /run/vigil/api.sock)
  --state DIR        host state: incarnation, watchdog marker (default /var/lib/vigil)
  --watchdog DEVICE  watchdog device (default /dev/watchdog; unix:PATH is the lab's)
  --vm-dir DIR       the process hypervisor's folder (default STATE/vms)
  --log-format F     text (default, for a console) or json
  --datastore N=P    this host's own path to datastore N of the cluster file
                     (a folder or a device, of the same kind); repeatable
  --self-fence M     how a host that lost its lease and network majority
                     fences itself: watchdog (default: the watchdog resets
                     it W later, unless a renewal lands first), ipmi-off or
                     ipmi-reset (at once, through its own BMC)
  --ipmi-device DEV  the in-band IPMI device (default /dev/ipmi0)
  --ebpf F=M         this host's mode for the kernel evidence feature F
                     (stamping, block_io, exits): auto, on or off, over the
                     cluster file's [ebpf]; repeatable
  --metrics ADDR     serve Prometheus metrics at http://ADDR/metrics
                     (such as :9464 or 127.0.0.1:9464; default: none)
  --vm-stop-timeout D  how long a VM asked to shut down (a process's
                     SIGTERM, a QEMU guest's ACPI power button) gets before
                     it is killed (default 30s; 1s to 10m)
`

func runAgent(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var o agentd.Options
	var format string
	fs.StringVar(&o.Config, "config", "", "")
	fs.StringVar(&o.Host, "host", "", "")
	fs.StringVar(&o.API, "api", agentd.DefaultAPI, "")
	fs.StringVar(&o.State, "state", agentd.DefaultState, "")
	fs.StringVar(&o.Watchdog, "watchdog", agentd.DefaultWatchdog, "")
	fs.StringVar(&o.VMDir, "vm-dir", "", "")
	fs.StringVar(&format, "log-format", "text", "")
	fs.StringVar(&o.SelfFence, "self-fence", "watchdog", "")
	fs.StringVar(&o.IPMIDevice, "ipmi-device", "", "")
	fs.StringVar(&o.Metrics, "metrics", "", "")
	fs.DurationVar(&o.VMStopTimeout, "vm-stop-timeout", 0, "")
	o.DatastorePaths = map[string]string{}
	fs.Func("datastore", "", func(v string) error { return agentd.ParseDatastorePath(o.DatastorePaths, v) })
	o.EBPF = map[string]string{}
	fs.Func("ebpf", "", func(v string) error { return agentd.ParseEBPF(o.EBPF, v) })
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 || o.Config == "" || o.Host == "" {
		if err == nil && fs.NArg() > 0 {
			err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
		}
		if err == nil {
			err = fmt.Errorf("--config and --host are required")
		}
		fmt.Fprintf(stderr, "vigil agent: %v\n%s", err, agentUsage)
		return 2
	}
	if o.Metrics != "" {
		if _, _, err := net.SplitHostPort(o.Metrics); err != nil {
			fmt.Fprintf(stderr, "vigil agent: --metrics %q: want HOST:PORT or :PORT, such as :9464 or 127.0.0.1:9464\n", o.Metrics)
			return 2
		}
	}
	switch format {
	case "text":
		o.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	case "json":
		o.Logger = slog.New(slog.NewJSONHandler(stderr, nil))
	default:
		fmt.Fprintf(stderr, "vigil agent: --log-format %q: use text or json\n", format)
		return 2
	}
	agentd.Version = Version
	if err := agentd.Run(context.Background(), o); err != nil {
		fmt.Fprintf(stderr, "vigil agent: %v\n", err)
		return 1
	}
	return 0
}
