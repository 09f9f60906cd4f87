package lab

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Limits of a lab.
const (
	MaxHosts = 32 // hosts of one lab
	MaxLinks = 8  // heartbeat links of one lab
	// DefaultName is the lab's name when Options.Name is empty.
	DefaultName = "lab"
	// Port is the heartbeat port written to cluster.toml.
	Port = 5405
	// DefaultRebootDelay is how long a host whose watchdog fired stays off
	// before the supervisor starts its agent again (watchdog action reset).
	DefaultRebootDelay = 2 * time.Second
)

// Watchdog actions: what the supervisor does after a host's emulated
// watchdog fired and power-killed it.
const (
	ActionReset    = "reset"    // start the host's agent again after the reboot delay
	ActionPowerOff = "poweroff" // leave the host off
)

// Root folders shared by every lab; variables so tests could move them.
var (
	stateRoot = "/run/vigil-lab"
	bpfRoot   = "/sys/fs/bpf"
	netnsRoot = "/run/netns"
)

// Options describe a lab to bring up.
type Options struct {
	// Name names the lab, its folder, namespaces, cgroups and pins:
	// 1 to 24 characters of a-z, 0-9 and '-', starting with a letter.
	// Empty means DefaultName.
	Name string
	// Hosts is the number of hosts, 1 to MaxHosts.
	Hosts int
	// Links is the number of heartbeat links, 1 to MaxLinks.
	Links int
	// VMs is the number of VMs in cluster.toml; 0 means two per host.
	VMs int
	// WatchdogResets is the cluster file's policy.watchdog_resets: how many
	// watchdog resets within the hour hold a host back; 0 leaves the
	// default (3).
	WatchdogResets int
	// Isolation holds the isolation_response of vm1, vm2, ... in order
	// (leave-running, shutdown or poweroff); an empty or missing entry
	// leaves the VM the cluster's default, shutdown.
	Isolation []string
	// WatchdogAction is ActionReset (empty means it) or ActionPowerOff.
	WatchdogAction string
	// Executable is the vigil binary the lab starts agents and the
	// supervisor from; empty means os.Executable().
	Executable string
	// AgentCommand returns the command line of a host's agent; nil means
	// the vigil agent (see AgentArgs). Tests pass a stand-in.
	AgentCommand func(host string) []string
	// AgentFlags are added to every host's vigil agent command line (not
	// to an AgentCommand's), e.g. "--ebpf", "exits=off".
	AgentFlags []string
	// SupervisorCommand returns the supervisor's command line; nil means
	// "vigil lab supervise --name NAME". The supervisor finds its
	// readiness pipe in the ReadyFDEnv variable.
	SupervisorCommand func(name string) []string
	// NoBMC brings the lab up without BMCs: no ipmi_sim runs, the cluster
	// file names no bmc, and fencing waits for the lease proof. Without
	// it, Up needs ipmi_sim (Debian package openipmi).
	NoBMC bool
	// BMCPowerCommand returns the command line of a host's power process,
	// its BMC's startcmd (see BMCPower); nil means "vigil lab bmc-power
	// --name NAME --host HOST". Tests pass a stand-in that calls BMCPower.
	BMCPowerCommand func(name, host string) []string
	// QEMUKernel, when set, makes the lab's VMs real QEMU VMs (the
	// cluster's hypervisor.driver is qemu) that boot this kernel (an
	// uncompressed vmlinux, like image.FetchKernel's) under software
	// emulation, with a small raw disk each on the folder datastore ds0.
	QEMUKernel string
	// QEMUInitrd, with QEMUKernel, boots each QEMU VM into vigil's
	// firmware image as a guest (vigil.guest): its guest agent runs with
	// GuestConfig (a guest.toml; empty: heartbeats only).
	QEMUInitrd  string
	GuestConfig string
	// VMPolicy is TOML added to every [[vms]] entry of the cluster file:
	// its guest and application monitoring (guest_timeout = "5s",
	// [[vms.apps]] ...).
	VMPolicy string
}

var labNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,23}$`)

// ErrInvalidOptions is wrapped by every error about Options.
var ErrInvalidOptions = errors.New("invalid lab options")

// withDefaults validates o and fills its defaults.
func (o Options) withDefaults() (Options, error) {
	if o.Name == "" {
		o.Name = DefaultName
	}
	if err := CheckName(o.Name); err != nil {
		return o, err
	}
	if o.Hosts < 1 || o.Hosts > MaxHosts {
		return o, fmt.Errorf("%w: %d hosts: a lab has 1 to %d (fix: pass --hosts between 1 and %d)", ErrInvalidOptions, o.Hosts, MaxHosts, MaxHosts)
	}
	if o.Links < 1 || o.Links > MaxLinks {
		return o, fmt.Errorf("%w: %d links: a lab has 1 to %d (fix: pass --links between 1 and %d)", ErrInvalidOptions, o.Links, MaxLinks, MaxLinks)
	}
	if o.VMs < 0 {
		return o, fmt.Errorf("%w: %d VMs (fix: pass --vms 0 or more; 0 means two per host)", ErrInvalidOptions, o.VMs)
	}
	if o.VMs == 0 {
		o.VMs = 2 * o.Hosts
	}
	switch o.WatchdogAction {
	case "":
		o.WatchdogAction = ActionReset
	case ActionReset, ActionPowerOff:
	default:
		return o, fmt.Errorf("%w: watchdog action %q (fix: use %q or %q)", ErrInvalidOptions, o.WatchdogAction, ActionReset, ActionPowerOff)
	}
	if o.QEMUKernel != "" {
		if !filepath.IsAbs(o.QEMUKernel) {
			return o, fmt.Errorf("%w: QEMU kernel %q is a relative path (fix: give an absolute path)", ErrInvalidOptions, o.QEMUKernel)
		}
		if _, err := os.Stat(o.QEMUKernel); err != nil {
			return o, fmt.Errorf("%w: QEMU kernel: %v (fix: make qemu-deps fetches Debian's kernel)", ErrInvalidOptions, err)
		}
	}
	if o.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return o, fmt.Errorf("lab: find the vigil binary: %w (fix: set Options.Executable)", err)
		}
		o.Executable = exe
	}
	return o, nil
}

// CheckName reports whether name can name a lab.
func CheckName(name string) error {
	if !labNameRE.MatchString(name) {
		return fmt.Errorf("%w: lab name %q: a lab name is 1 to 24 characters of a-z, 0-9 and '-', starting with a letter (fix: pass --name lab)", ErrInvalidOptions, name)
	}
	return nil
}

// AgentArgs is the vigil agent's command line for host in the lab called
// name, started from the binary exe.
func AgentArgs(exe, name, host string) []string {
	dir := filepath.Join(stateRoot, name)
	hd := filepath.Join(dir, host)
	return append([]string{exe, "agent",
		"--config", filepath.Join(dir, "cluster.toml"),
		"--host", host,
		"--api", filepath.Join(hd, "api.sock"),
		"--state", hd,
		"--watchdog", "unix:" + filepath.Join(hd, "watchdog.sock"),
		"--vm-dir", filepath.Join(hd, "vms"),
		"--log-format", "json",
	}, hostDatastorePaths(hd)...)
}

// hostName is the name of host n (1-based).
func hostName(n int) string { return "h" + strconv.Itoa(n) }

// linkName is the name of link l (0-based).
func linkName(l int) string { return "l" + strconv.Itoa(l) }

// Names and addresses of a lab's parts.
func hubNS(name string) string          { return "vl-" + name + "-hub" }
func hostNS(name, host string) string   { return "vl-" + name + "-" + host }
func bridgeName(l int) string           { return "br" + strconv.Itoa(l) }
func hostVeth(l int) string             { return "eth" + strconv.Itoa(l) }
func hubVeth(host string, l int) string { return host + "-l" + strconv.Itoa(l) }
func labDir(name string) string         { return filepath.Join(stateRoot, name) }
func pinDir(name string) string         { return filepath.Join(bpfRoot, "vigil-lab", name) }

// isolationAddr is link l's bridge address, its isolation address.
func isolationAddr(l int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(100 + l), 0, 1}) }

// hostAddr is host n's address on link l.
func hostAddr(n, l int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(100 + l), 0, byte(10 + n)})
}

// isLabNS reports whether the namespace file name belongs to the lab
// called name: vl-NAME-hub or vl-NAME-hN. A lab called "a" does not claim
// the namespaces of a lab called "a-h1".
func isLabNS(name, file string) bool {
	rest, ok := strings.CutPrefix(file, "vl-"+name+"-")
	if !ok {
		return false
	}
	if rest == "hub" {
		return true
	}
	n, ok := strings.CutPrefix(rest, "h")
	if !ok || n == "" {
		return false
	}
	_, err := strconv.Atoi(n)
	return err == nil && n[0] != '0' && !strings.ContainsAny(n, "+-")
}
