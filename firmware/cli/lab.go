//go:build !vigil_nolab

package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/vigil-ha/vigil/tools/lab"
)

func init() {
	Register(Command{Name: "lab", Summary: "run a cluster of real agents in network namespaces (root)", Run: runLab})
}

const labUsage = `usage: vigil lab up --hosts N --links L [--vms M] [--watchdog-action reset|poweroff] [--no-bmc] [--qemu] [--name NAME]
       vigil lab down [--name NAME]
       vigil lab status [--name NAME]
       vigil lab cut|heal HOST LINK [--name NAME]
       vigil lab loss HOST LINK PCT [--name NAME]
       vigil lab partition A,B|C [--name NAME]
       vigil lab partition none [--name NAME]
       vigil lab freeze|thaw|poweroff|poweron HOST [--name NAME]
       vigil lab ds-fail|ds-hang|ds-heal HOST|all DS|all [--name NAME]
       vigil lab bmc-fail|bmc-heal HOST [--name NAME]

A lab runs one vigil agent per host, each host a network namespace with one
veth per link (ethL, 10.(100+L).0.(10+N)), each link a bridge brL in a hub
namespace (10.(100+L).0.1, the isolation address). Two datastores are
shared by all hosts: ds0, a folder, and ds1, a LUN (a loop device); each
host reaches them through a path of its own, which can fail or hang
alone. Each host hN has a BMC, an ipmi_sim (package openipmi) answering
IPMI over LAN on 10.100.0.1:(6230+N), user admin, the password in
/run/vigil-lab/NAME/hN/bmc.cred; its chassis power is the host's.
Its files are in /run/vigil-lab/NAME; NAME defaults to "lab".
Needs root.

up         bring up N hosts (1 to 32) and L links (1 to 8), M VMs (default
           2 per host); an existing lab of that name is removed first;
           --no-bmc: no BMCs (then ipmi_sim is not needed); --qemu: the VMs
           are QEMU VMs (software emulation) booting Debian's kernel, their
           definitions and disks on ds0 (needs QEMU: make qemu-deps)
down       kill every process of the lab and remove all it made
status     hosts, power, agent PIDs, links, datastore paths, watchdogs
           and BMCs
cut        pull HOST's cable on LINK (an index, or a name such as l0)
heal       plug it back in and clear its loss
loss       drop PCT percent (0 to 100) of HOST's packets on LINK
partition  split the hosts into groups ('|') of hosts (','), every host
           named once; none heals
freeze     stop every process of HOST (a hung host); thaw resumes them
poweroff   SIGKILL every process of HOST; poweron starts its agent again
ds-fail    HOST's path to datastore DS answers every request with an I/O
           error (all: every host, every datastore)
ds-hang    HOST's path to DS answers nothing until healed or failed
ds-heal    mend HOST's path to DS; its hung requests go on
bmc-fail   HOST's BMC answers nothing (a hung BMC); bmc-heal mends it

Quote the partition spec in a shell: vigil lab partition 'h1,h2|h3'.
Exit status: 0 success, 1 failure, 2 usage error.
`

// labCall is one parsed 'vigil lab' command line.
type labCall struct {
	cmd  string
	name string
	args []string    // positional arguments after the subcommand
	up   lab.Options // for up
	qemu bool        // for up: QEMU VMs
	pct  int         // for loss
	host string      // for bmc-power
}

// labArity is the number of positional arguments each subcommand takes.
var labArity = map[string]int{
	"up": 0, "down": 0, "status": 0, "supervise": 0,
	"cut": 2, "heal": 2, "loss": 3, "partition": 1,
	"freeze": 1, "thaw": 1, "poweroff": 1, "poweron": 1,
	"ds-fail": 2, "ds-hang": 2, "ds-heal": 2,
	"bmc-fail": 1, "bmc-heal": 1, "bmc-power": 0,
}

// errLabHelp asks for the usage text on standard output.
var errLabHelp = errors.New("help")

// parseLab parses the arguments after 'vigil lab'.
func parseLab(args []string) (labCall, error) {
	if len(args) == 0 {
		return labCall{}, errors.New("want a subcommand")
	}
	c := labCall{cmd: args[0]}
	if c.cmd == "help" || c.cmd == "-h" || c.cmd == "--help" {
		return c, errLabHelp
	}
	want, ok := labArity[c.cmd]
	if !ok {
		return c, fmt.Errorf("unknown subcommand %q", c.cmd)
	}
	fs := flag.NewFlagSet("lab "+c.cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.name, "name", lab.DefaultName, "the lab's name")
	if c.cmd == "up" {
		fs.IntVar(&c.up.Hosts, "hosts", 0, "number of hosts")
		fs.IntVar(&c.up.Links, "links", 0, "number of links")
		fs.IntVar(&c.up.VMs, "vms", 0, "number of VMs")
		fs.StringVar(&c.up.WatchdogAction, "watchdog-action", lab.ActionReset, "reset or poweroff")
		fs.BoolVar(&c.up.NoBMC, "no-bmc", false, "no BMCs")
		fs.BoolVar(&c.qemu, "qemu", false, "QEMU VMs")
	}
	if c.cmd == "bmc-power" {
		fs.StringVar(&c.host, "host", "", "the host whose power this is")
	}
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return c, errLabHelp
			}
			return c, err
		}
		if fs.NArg() == 0 {
			break
		}
		c.args = append(c.args, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(c.args) != want {
		return c, fmt.Errorf("%s takes %d argument(s), have %d", c.cmd, want, len(c.args))
	}
	if err := lab.CheckName(c.name); err != nil {
		return c, err
	}
	switch c.cmd {
	case "up":
		c.up.Name = c.name
		switch {
		case c.up.Hosts < 1 || c.up.Hosts > lab.MaxHosts:
			return c, fmt.Errorf("--hosts %d: pass --hosts between 1 and %d", c.up.Hosts, lab.MaxHosts)
		case c.up.Links < 1 || c.up.Links > lab.MaxLinks:
			return c, fmt.Errorf("--links %d: pass --links between 1 and %d", c.up.Links, lab.MaxLinks)
		case c.up.VMs < 0:
			return c, fmt.Errorf("--vms %d: pass 0 or more (0 means two per host)", c.up.VMs)
		case c.up.WatchdogAction != lab.ActionReset && c.up.WatchdogAction != lab.ActionPowerOff:
			return c, fmt.Errorf("--watchdog-action %q: use reset or poweroff", c.up.WatchdogAction)
		}
	case "bmc-power":
		if c.host == "" {
			return c, errors.New("bmc-power needs --host HOST")
		}
	case "loss":
		pct, err := strconv.Atoi(c.args[2])
		if err != nil || pct < 0 || pct > 100 {
			return c, fmt.Errorf("loss %q: pass a percentage from 0 to 100", c.args[2])
		}
		c.pct = pct
	}
	return c, nil
}

func runLab(args []string, stdout, stderr io.Writer) int {
	c, err := parseLab(args)
	if errors.Is(err, errLabHelp) {
		io.WriteString(stdout, labUsage)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "vigil lab: %v\n%s", err, labUsage)
		return 2
	}
	if os.Geteuid() != 0 {
		fmt.Fprintf(stderr, "vigil lab %s: needs root (fix: run it as root, e.g. with sudo)\n", c.cmd)
		return 1
	}
	if err := c.run(stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "vigil lab %s: %v\n", c.cmd, err)
		return 1
	}
	return 0
}

// run carries out a parsed command.
func (c labCall) run(stdout, stderr io.Writer) error {
	switch c.cmd {
	case "up":
		if c.qemu {
			k, err := lab.QEMUKernel()
			if err != nil {
				return err
			}
			c.up.QEMUKernel = k
		}
		l, err := lab.Up(c.up)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "lab %s is up in %s\n", l.Name(), l.Dir())
		return printStatus(l, stdout)
	case "down":
		if err := lab.Down(c.name); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "lab %s is down\n", c.name)
		return nil
	case "supervise":
		return supervise(c.name, stderr)
	case "bmc-power":
		// The startcmd of the host's BMC (ipmi_sim), not for people: it
		// is the host's power as its BMC reads it.
		return lab.BMCPower(c.name, c.host, nil)
	}
	l, err := lab.Open(c.name)
	if err != nil {
		return err
	}
	a := c.args
	switch c.cmd {
	case "status":
		return printStatus(l, stdout)
	case "cut":
		return l.Cut(a[0], a[1])
	case "heal":
		return l.Heal(a[0], a[1])
	case "loss":
		return l.Loss(a[0], a[1], c.pct)
	case "partition":
		return l.Partition(a[0])
	case "freeze":
		return l.Freeze(a[0])
	case "thaw":
		return l.Thaw(a[0])
	case "poweroff":
		return l.PowerOff(a[0])
	case "poweron":
		return l.PowerOn(a[0])
	case "ds-fail":
		return l.DSFail(a[0], a[1])
	case "ds-hang":
		return l.DSHang(a[0], a[1])
	case "ds-heal":
		return l.DSHeal(a[0], a[1])
	case "bmc-fail":
		return l.BMCFail(a[0])
	case "bmc-heal":
		return l.BMCHeal(a[0])
	}
	return fmt.Errorf("unknown subcommand %q", c.cmd)
}

func printStatus(l *lab.Lab, w io.Writer) error {
	st, err := l.Status()
	if err != nil {
		return err
	}
	return st.WriteTable(w)
}

// supervise runs the supervisor daemon until SIGTERM or SIGINT. 'up'
// starts it with its readiness pipe in lab.ReadyFDEnv.
func supervise(name string, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	o := lab.SuperviseOptions{Name: name}
	if v := os.Getenv(lab.ReadyFDEnv); v != "" {
		fd, err := strconv.Atoi(v)
		if err != nil || fd < 3 {
			return fmt.Errorf("%s=%q is not a file descriptor", lab.ReadyFDEnv, v)
		}
		ready := os.NewFile(uintptr(fd), "ready")
		defer ready.Close()
		o.Ready = ready
	}
	return lab.Supervise(ctx, o)
}
