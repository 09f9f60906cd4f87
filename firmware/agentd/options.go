// Package agentd is the vigil agent on a real host: the core over the real
// environment (clock, NICs, datastores, watchdog, hypervisor), its event
// loop, and the local API that `vigil status`, `vigil peers`, `vigil links`
// and `vigil explain` read.
//
//	err := agentd.Run(ctx, agentd.Options{Config: "/etc/vigil/cluster.toml", Host: "node-a"})
//
// One goroutine owns the core; NIC readers, datastore workers, the
// hypervisor and the API only talk to it through channels, so the core
// stays single-threaded as in the simulator.
package agentd

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// Defaults of the agent's host-local settings.
const (
	DefaultAPI      = "/run/vigil/api.sock"
	DefaultState    = "/var/lib/vigil"
	DefaultWatchdog = "/dev/watchdog"
)

// Options are the agent's host-local settings (the cluster file holds the
// rest).
type Options struct {
	Config   string // cluster file
	Host     string // this host's name in it
	API      string // unix socket of the local API
	State    string // folder for this host's state (incarnation, watchdog marker)
	Watchdog string // watchdog device: a path, or unix:PATH for the lab's emulated one
	VMDir    string // folder of the process hypervisor's VMs ("" = State/vms)
	Exe      string // the vigil binary the process hypervisor starts VMs with ("" = this one)
	Logger   *slog.Logger
	// StopTimeout bounds a clean stop: stopping the VMs and writing their
	// release. Past it the agent exits without disarming the watchdog, so
	// the host is reset and peers may use the lease proof.
	StopTimeout time.Duration
	// VMStopTimeout is how long a VM gets to shut down before it is killed.
	VMStopTimeout time.Duration
	// DatastorePaths overrides, on this host, where a datastore of the
	// cluster file is found: its name maps to this host's path to it (a
	// folder for a path datastore, a device for a device one). Hosts may
	// reach one shared LUN or export under different names, as SBD's
	// per-node device setting allows.
	DatastorePaths map[string]string
	// EBPF overrides, on this host, the cluster file's [ebpf] modes:
	// feature (stamping, block_io, exits) to mode (auto, on, off).
	EBPF map[string]string
	// BMCProbe is how often each peer's BMC is checked (0: DefaultBMCProbe).
	BMCProbe time.Duration
	// DialBMC opens a session with a peer's BMC (nil: DialLAN).
	DialBMC DialBMC
	// SelfFence is how a host that lost its entitlement fences itself:
	// SelfFenceWatchdog ("" too), SelfFenceOff or SelfFenceReset.
	SelfFence string
	// IPMIDevice is this host's in-band IPMI device ("": /dev/ipmi0).
	IPMIDevice string
	Metrics    string // listen address of the Prometheus endpoint, "" = none
}

func (o *Options) fill() error {
	if o.Config == "" || o.Host == "" {
		return errors.New("agent: --config FILE and --host NAME are required")
	}
	if o.API == "" {
		o.API = DefaultAPI
	}
	if o.State == "" {
		o.State = DefaultState
	}
	if o.Watchdog == "" {
		o.Watchdog = DefaultWatchdog
	}
	if o.VMDir == "" {
		o.VMDir = filepath.Join(o.State, "vms")
	}
	if o.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("agent: cannot find its own binary: %w", err)
		}
		o.Exe = exe
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if o.StopTimeout == 0 {
		o.StopTimeout = time.Minute
	}
	if o.BMCProbe == 0 {
		o.BMCProbe = DefaultBMCProbe
	}
	if o.DialBMC == nil {
		o.DialBMC = DialLAN
	}
	if o.VMStopTimeout == 0 {
		o.VMStopTimeout = 30 * time.Second
	}
	if o.VMStopTimeout < time.Second || o.VMStopTimeout > 10*time.Minute {
		return fmt.Errorf("agent: --vm-stop-timeout %v: give 1s to 10m", o.VMStopTimeout)
	}
	return nil
}
