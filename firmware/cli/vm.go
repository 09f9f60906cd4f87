package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigil-ha/vigil/firmware/agentd"
	"github.com/vigil-ha/vigil/firmware/config"
)

func init() {
	Register(Command{Name: "vm", Summary: "list, show, stop and start the cluster's VMs", Run: runVM})
	Register(Command{Name: "maintenance", Summary: "put this host in maintenance (its VMs move away) or take it out", Run: runMaintenance})
}

const vmUsage = `usage: vigil vm list [--config FILE] [--datastore NAME=PATH]
       vigil vm show NAME [--config FILE] [--datastore NAME=PATH]
       vigil vm stop|start NAME [--api SOCKET]
       vigil vm move NAME HOST [--api SOCKET]

list   every VM of the cluster file with its owner, from the datastores'
       records (the first that reads): state, epoch, why it was released
show   one VM: its owner, its cluster-file entry and monitoring policy,
       and for a QEMU VM its definition (vms/NAME.toml on a folder
       datastore)
stop   stop the VM on the host that runs it (run it there): released as
       stopped, it is not restarted anywhere until started again
start  undo an operator's stop (on the host where it was stopped): the
       coordinator places the VM on an eligible host
move   stop the VM on the host that runs it (run it there) and have the
       coordinator start it on HOST, or, when HOST has no room, on
       another eligible host
`

func runVM(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, vmUsage)
		return 2
	}
	sub := args[0]
	fs := flag.NewFlagSet("vm "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfgFile := fs.String("config", defaultConfig, "")
	api := fs.String("api", agentd.DefaultAPI, "")
	paths := map[string]string{}
	fs.Func("datastore", "", func(v string) error { return agentd.ParseDatastorePath(paths, v) })
	var pos []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			fmt.Fprintf(stderr, "vigil vm %s: %v\n%s", sub, err, vmUsage)
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	want := map[string]int{"list": 0, "show": 1, "stop": 1, "start": 1, "move": 2}
	n, ok := want[sub]
	if !ok || len(pos) != n {
		fmt.Fprint(stderr, vmUsage)
		return 2
	}
	switch sub {
	case "stop", "start", "move":
		c := agentd.NewClient(*api)
		var ok struct{ OK bool }
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		path := "/v1/command?name=vm-" + sub + "&vm=" + url.QueryEscape(pos[0])
		if sub == "move" {
			path += "&host=" + url.QueryEscape(pos[1])
		}
		if err := c.Post(ctx, path, &ok); err != nil {
			fmt.Fprintf(stderr, "vigil vm %s: %v\n", sub, err)
			return 1
		}
		switch sub {
		case "stop":
			fmt.Fprintf(stdout, "%s is stopping; it stays stopped until 'vigil vm start %s'\n", pos[0], pos[0])
		case "start":
			fmt.Fprintf(stdout, "%s: start asked; the coordinator places it\n", pos[0])
		default:
			fmt.Fprintf(stdout, "%s is stopping here; the coordinator starts it on %s\n", pos[0], pos[1])
		}
		return 0
	}
	cfg, err := config.Load(*cfgFile)
	if err != nil {
		fmt.Fprintf(stderr, "vigil vm %s: %s: %v\n", sub, *cfgFile, err)
		return 1
	}
	owners, from, err := readOwners(cfg, paths)
	if err != nil {
		fmt.Fprintf(stderr, "vigil vm %s: %v\n", sub, err)
		return 1
	}
	if sub == "list" {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VM\tDRIVER\tOWNER\tSTATE\tEPOCH\tREASON")
		for v, o := range owners {
			owner := o.Owner
			if owner == "" {
				owner = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", o.VM, cfg.VMDriver(v), owner, o.State, o.Epoch, o.Reason)
		}
		tw.Flush()
		fmt.Fprintf(stdout, "(from datastore %s)\n", from)
		return 0
	}
	v, ok := cfg.VMByName(pos[0])
	if !ok {
		fmt.Fprintf(stderr, "vigil vm show: no VM %q in %s\n", pos[0], *cfgFile)
		return 1
	}
	showVM(stdout, cfg, v, owners[v], paths)
	return 0
}

// readOwners reads every VM's owner from the first datastore that reads.
func readOwners(cfg *config.Config, paths map[string]string) ([]ownerView, string, error) {
	var errs []error
	for _, ds := range cfg.Datastores {
		target := ds.Path + ds.Device
		if p, ok := paths[ds.Name]; ok {
			target = p
		}
		var v datastoreView
		recs, _, _, err := readDatastore(target, cfg, &v, nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", ds.Name, target, err))
			continue
		}
		var slots []slotView
		for h, r := range recs {
			slots = append(slots, slotView{Host: cfg.Hosts[h].Name, Slot: h, Record: r})
		}
		return owners(slots, configNames(cfg)), ds.Name, nil
	}
	return nil, "", fmt.Errorf("no datastore reads: %w", errors.Join(errs...))
}

// showVM prints one VM.
func showVM(w io.Writer, cfg *config.Config, v int, o ownerView, paths map[string]string) {
	vm := cfg.VMs[v]
	owner := o.Owner
	if owner == "" {
		owner = "none yet"
	}
	fmt.Fprintf(w, "VM %s: %s on %s (epoch %d)", vm.Name, o.State, owner, o.Epoch)
	if o.Reason != "" {
		fmt.Fprintf(w, ", %s", o.Reason)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  %d vCPU, %s, priority %s, driver %s", vm.CPU, vm.Memory, orDefault(vm.Priority, "medium"), cfg.VMDriver(v))
	if vm.AntiAffinity != "" {
		fmt.Fprintf(w, ", anti-affinity %s", vm.AntiAffinity)
	}
	if len(vm.After) > 0 {
		fmt.Fprintf(w, ", after %s", strings.Join(vm.After, ", "))
	}
	fmt.Fprintln(w)
	if vm.GuestTimeout > 0 {
		fmt.Fprintf(w, "  guest: silent for %s is a failure: %s (at most %d resets in %s)\n", vm.GuestTimeout,
			orDefault(vm.GuestFailure, "reset"), orInt(vm.MaxResets, 3), orDur(vm.ResetWindow, time.Hour))
	}
	for _, a := range vm.Apps {
		fmt.Fprintf(w, "  application %s: %s, %d times in %s, then %s\n", a.Name, orDefault(a.OnFailure, "restart"),
			orInt(a.MaxRestarts, 3), orDur(a.RestartWindow, 10*time.Minute), orDefault(a.Then, "failover"))
	}
	if cfg.VMDriver(v) != config.DriverQEMU {
		return
	}
	var dirs []string
	for _, ds := range cfg.Datastores {
		if p, ok := paths[ds.Name]; ok && ds.Path != "" {
			dirs = append(dirs, p)
		} else if ds.Path != "" {
			dirs = append(dirs, ds.Path)
		}
	}
	def, err := cfg.LoadVMDefinition(dirs, v)
	if err != nil {
		fmt.Fprintf(w, "  definition: %v\n", err)
		return
	}
	fmt.Fprintf(w, "  definition: %s\n", def.File)
	if def.Kernel != "" {
		fmt.Fprintf(w, "    kernel %s", def.Resolve(def.Kernel))
		if def.Initrd != "" {
			fmt.Fprintf(w, ", initrd %s", def.Resolve(def.Initrd))
		}
		fmt.Fprintln(w)
	}
	for _, d := range def.Disks {
		fmt.Fprintf(w, "    disk %s (%s)\n", def.Resolve(d.File), orDefault(d.Format, "raw"))
	}
	for _, n := range def.NICs {
		fmt.Fprintf(w, "    nic %s%s%s%s", n.Bridge, n.Tap, n.Socket, map[bool]string{true: "user", false: ""}[n.User])
		if n.MAC != "" {
			fmt.Fprintf(w, " %s", n.MAC)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "    guest agent port: %v\n", def.HasGuestAgent())
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func orInt(n, d int) int {
	if n == 0 {
		return d
	}
	return n
}

func orDur(v config.Duration, d time.Duration) time.Duration {
	if v == 0 {
		return d
	}
	return time.Duration(v)
}

const maintenanceUsage = `usage: vigil maintenance enter|exit [HOST] [--api SOCKET]

Runs on the host itself (its agent's API is local); HOST, when given,
must name this host.

enter  this host's VMs are stopped and restarted on the others, it is no
       longer counted for admission control, and, owning no VM, it is
       never fenced
exit   it takes VMs again
`

func runMaintenance(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "enter" && args[0] != "exit") {
		fmt.Fprint(stderr, maintenanceUsage)
		return 2
	}
	fs, api, _ := apiFlags("maintenance")
	rest, host := args[1:], ""
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		host, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil || fs.NArg() > 0 {
		fmt.Fprint(stderr, maintenanceUsage)
		return 2
	}
	c := agentd.NewClient(*api)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if host != "" {
		var st agentd.StatusReply
		if err := c.Get(ctx, "/v1/status", &st); err != nil {
			fmt.Fprintf(stderr, "vigil maintenance %s: %v\n", args[0], err)
			return 1
		}
		if st.Status.Host != host {
			fmt.Fprintf(stderr, "vigil maintenance %s: this is %s, not %s: run it on %s\n", args[0], st.Status.Host, host, host)
			return 1
		}
	}
	var ok struct{ OK bool }
	if err := c.Post(ctx, "/v1/command?name=maintenance-"+args[0], &ok); err != nil {
		fmt.Fprintf(stderr, "vigil maintenance %s: %v\n", args[0], err)
		return 1
	}
	if args[0] == "enter" {
		fmt.Fprintln(stdout, "entering maintenance: this host's VMs move away ('vigil status' shows them go)")
	} else {
		fmt.Fprintln(stdout, "maintenance over: this host takes VMs again")
	}
	return 0
}
