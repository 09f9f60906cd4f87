package config

import (
	"net"
	"strconv"
	"time"
)

// Config is one cluster file: the cluster's name, its timing and policy, and
// its links, datastores, hosts and VMs in file order.
type Config struct {
	// Cluster names the cluster.
	Cluster Cluster `toml:"cluster"`
	// Timing holds every interval and timeout of the protocol.
	Timing Timing `toml:"timing"`
	// Policy holds the cluster-wide recovery policy.
	Policy Policy `toml:"policy"`
	// EBPF chooses the kernel evidence every host gathers with eBPF.
	EBPF EBPF `toml:"ebpf"`
	// Hypervisor chooses what runs the VMs.
	Hypervisor Hypervisor `toml:"hypervisor"`
	// Links are the heartbeat networks (1 to 8); every host lists one
	// address per link, in this order.
	Links []Link `toml:"links"`
	// Datastores are the shared heartbeat, lease and ownership stores (1 to 3).
	Datastores []Datastore `toml:"datastores"`
	// Hosts are the cluster's members (1 to 64).
	Hosts []Host `toml:"hosts"`
	// VMs are the virtual machines the cluster keeps running.
	VMs []VM `toml:"vms,omitempty"`
	// Services are host daemons every host's agent watches (a storage or
	// network daemon its VMs depend on).
	Services []Service `toml:"services,omitempty"`
}

// Service is a host daemon the agent watches: exactly one of Process,
// Pidfile and Unit finds it.
type Service struct {
	Name    string   `toml:"name"`
	Process string   `toml:"process,omitempty"`
	Pidfile string   `toml:"pidfile,omitempty"`
	Unit    string   `toml:"unit,omitempty"`
	Start   []string `toml:"start,omitempty"`
	// MaxRestarts restarts within RestartWindow (default 3 in 10m), each
	// after a backoff (1s, doubling up to 30s); past them, Then:
	// "evacuate" (the default: the host enters maintenance, its VMs move
	// away), "self-fence" or "none".
	MaxRestarts   int      `toml:"max_restarts,omitempty"`
	RestartWindow Duration `toml:"restart_window,omitempty"`
	Then          string   `toml:"then,omitempty"`
}

// Cluster is the [cluster] table.
type Cluster struct {
	// Name identifies the cluster on the wire and on the datastores:
	// 1 to 32 characters of a-z, 0-9 and '-'.
	Name string `toml:"name"`
	// KeyFile is the cluster key file: hex keys, one per line, the first
	// signs heartbeats and every one is accepted (see package hb). It must
	// be mode 0600 and owned by root.
	KeyFile string `toml:"key_file,omitempty"`
	// Port is the UDP port heartbeats use on every link of every host.
	Port int `toml:"port,omitempty"`
}

// Heartbeat defaults.
const (
	DefaultKeyFile = "/etc/vigil/cluster.key"
	DefaultPort    = 5405
)

// Timing is the [timing] table. CheckTiming holds the rules between its
// values.
type Timing struct {
	// Heartbeat is the interval between heartbeats on each link.
	Heartbeat Duration `toml:"heartbeat"`
	// LinkTimeout is the floor of a link's adaptive timeout.
	LinkTimeout Duration `toml:"link_timeout"`
	// DatastoreInterval (r) is the datastore heartbeat and lease renewal
	// interval.
	DatastoreInterval Duration `toml:"datastore_interval"`
	// IOTimeout (io): a renewal counts only if its write completed within it.
	IOTimeout Duration `toml:"io_timeout"`
	// LeaseTimeout (L): the watchdog is petted only while the last counted
	// renewal is younger than this.
	LeaseTimeout Duration `toml:"lease_timeout"`
	// WatchdogTimeout (W) is the hardware watchdog's timeout, whole seconds.
	WatchdogTimeout Duration `toml:"watchdog_timeout"`
	// Margin covers clock-rate drift and scheduling in the lease proof.
	Margin Duration `toml:"margin"`
	// FenceTimeout: a fence with no proof after this is reported stuck.
	FenceTimeout Duration `toml:"fence_timeout"`
	// Grace: network silence shorter than this never fences.
	Grace Duration `toml:"grace"`
	// BMCPoll is the read-back interval of the power state after a BMC
	// power-off.
	BMCPoll Duration `toml:"bmc_poll"`
}

// Policy is the [policy] table.
type Policy struct {
	// HostFailures is how many failed hosts admission control keeps room
	// for; below the number of hosts.
	HostFailures int `toml:"host_failures"`
	// RestartAttempts is the restart budget per VM and incident, at least 1.
	RestartAttempts int `toml:"restart_attempts"`
	// RestartBackoff is the first retry delay; it doubles per attempt.
	RestartBackoff Duration `toml:"restart_backoff"`
	// IsolationResponse is what an isolated host does with a VM that sets
	// none: leave-running, shutdown or poweroff.
	IsolationResponse string `toml:"isolation_response"`
	// WatchdogResets is how many watchdog resets within
	// WatchdogResetWindow make a host wait for an operator instead of
	// joining again; 0 never holds a host back.
	WatchdogResets int `toml:"watchdog_resets"`
	// WatchdogResetWindow is the window WatchdogResets counts in.
	WatchdogResetWindow Duration `toml:"watchdog_reset_window"`
}

// EBPF is the [ebpf] table. Each feature is "auto" (used where the kernel
// supports it; without it the agent falls back to user-space evidence and
// says so in vigil status), "on" (required: an agent whose kernel cannot
// run it does not start) or "off" (the user-space fallback).
type EBPF struct {
	// Stamping counts each peer's heartbeats per link at the NIC (TCX
	// ingress), so that the agent tells its own stall from its peers'
	// silence. Fallback: the sockets' kernel receive stamps.
	Stamping string `toml:"stamping,omitempty"`
	// BlockIO traces the block I/O of device datastores, so that a
	// datastore whose requests are all stuck or failing is down in
	// milliseconds. Fallback: the I/O timeout.
	BlockIO string `toml:"block_io,omitempty"`
	// Exits reports the exit of VM processes as the kernel runs it, through
	// a ring buffer. Fallback: pidfds.
	Exits string `toml:"exits,omitempty"`
	// Stuck: a datastore device with requests in flight and no completion
	// for this long is down.
	Stuck Duration `toml:"stuck,omitempty"`
}

// EBPF feature modes.
const (
	FeatureAuto = "auto"
	FeatureOn   = "on"
	FeatureOff  = "off"
)

// Link is one [[links]] entry: a heartbeat network.
type Link struct {
	// Name identifies the link in logs and status: 1 to 32 characters of
	// a-z, 0-9 and '-', unique.
	Name string `toml:"name"`
	// IsolationAddress is an IP outside the cluster (a gateway) pinged to
	// tell this host's isolation from a peer's failure; optional.
	IsolationAddress string `toml:"isolation_address,omitempty"`
}

// Datastore is one [[datastores]] entry. Exactly one of Path and Device is
// set.
type Datastore struct {
	// Name identifies the datastore: 1 to 32 characters of a-z, 0-9 and
	// '-', unique.
	Name string `toml:"name"`
	// Path is an absolute directory on a shared filesystem.
	Path string `toml:"path,omitempty"`
	// Device is an absolute path to a raw shared block device.
	Device string `toml:"device,omitempty"`
}

// DefaultBMCPort is the RMCP+ port used when a host's bmc names no port.
const DefaultBMCPort = 623

// Host is one [[hosts]] entry.
type Host struct {
	// ID is the host's slot on the datastores and its heartbeat identity,
	// 1 to 64, unique.
	ID int `toml:"id"`
	// Name: 1 to 32 characters of a-z, 0-9 and '-', unique.
	Name string `toml:"name"`
	// Addresses holds one IP per link, in [[links]] order.
	Addresses []string `toml:"addresses"`
	// BMC is the BMC's host:port for IPMI over LAN; the port defaults to
	// 623. Optional: without a BMC, fencing waits for the lease proof.
	BMC string `toml:"bmc,omitempty"`
	// BMCCredentials is the absolute path of the file holding the BMC's
	// user and password; required when BMC is set.
	BMCCredentials string `toml:"bmc_credentials,omitempty"`
	// CPU is the number of vCPUs the host can give to VMs.
	CPU int `toml:"cpu"`
	// Memory is the memory the host can give to VMs.
	Memory Size `toml:"memory"`
}

// BMCAddress returns the host's BMC as host:port with the default port
// filled in, or "" when it has none.
func (h Host) BMCAddress() string {
	if h.BMC == "" {
		return ""
	}
	host, port, err := splitBMC(h.BMC)
	if err != nil {
		return h.BMC
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// VM is one [[vms]] entry.
type VM struct {
	// Name identifies the VM to the hypervisor: 1 to 64 characters of
	// letters, digits, '.', '_' and '-', unique.
	Name string `toml:"name"`
	// CPU is the VM's vCPU count.
	CPU int `toml:"cpu"`
	// Memory is the VM's memory.
	Memory Size `toml:"memory"`
	// Priority is the restart priority: high, medium or low; empty means
	// medium.
	Priority string `toml:"priority,omitempty"`
	// After names the VMs that must be running before this one starts.
	After []string `toml:"after,omitempty"`
	// AntiAffinity names a group whose VMs run on different hosts; optional.
	AntiAffinity string `toml:"anti_affinity,omitempty"`
	// Protected VMs are restarted after a failure; nil means true.
	Protected *bool `toml:"protected,omitempty"`
	// IsolationResponse overrides policy.isolation_response for this VM.
	IsolationResponse string `toml:"isolation_response,omitempty"`
	// Host names the preferred host for the first power-on; optional.
	Host string `toml:"host,omitempty"`
	// Driver overrides hypervisor.driver for this VM: "process" or "qemu".
	Driver string `toml:"driver,omitempty"`
	// GuestTimeout: a QEMU VM's guest agent silent this long has failed;
	// 0 (the default) leaves its heartbeats unwatched.
	GuestTimeout Duration `toml:"guest_timeout,omitempty"`
	// GuestFailure is what a failed guest gets: "reset" (the default) or
	// "failover".
	GuestFailure string `toml:"guest_failure,omitempty"`
	// GuestBootGrace: a guest not heard this long after its VM started or
	// was reset has failed (with guest_timeout); default 2m.
	GuestBootGrace Duration `toml:"guest_boot_grace,omitempty"`
	// MaxResets resets of the VM within ResetWindow (default 3 in 1h),
	// for any cause; past them it fails over.
	MaxResets   int      `toml:"max_resets,omitempty"`
	ResetWindow Duration `toml:"reset_window,omitempty"`
	// Apps is the policy of applications in the guest, by name; others
	// are restarted 3 times in 10m, then failed over.
	Apps []VMApp `toml:"apps,omitempty"`
}

// VMApp is the monitoring policy of one application in a VM's guest.
type VMApp struct {
	Name string `toml:"name"`
	// OnFailure: "restart" (in the guest; the default), "reset",
	// "failover" or "none".
	OnFailure string `toml:"on_failure,omitempty"`
	// MaxRestarts restarts within RestartWindow (default 3 in 10m); past
	// them, or when a restart does not bring it back within
	// RestartTimeout (default 10s), Then ("failover" by default, "reset"
	// or "none").
	MaxRestarts    int      `toml:"max_restarts,omitempty"`
	RestartWindow  Duration `toml:"restart_window,omitempty"`
	RestartTimeout Duration `toml:"restart_timeout,omitempty"`
	Then           string   `toml:"then,omitempty"`
}

// Hypervisor drivers.
const (
	// DriverProcess runs a VM as a vigil lab-vm process: the lab's VMs.
	DriverProcess = "process"
	// DriverQEMU runs a VM under QEMU/KVM from its definition on a folder
	// datastore (vms/NAME.toml).
	DriverQEMU = "qemu"
)

// Hypervisor is the [hypervisor] table.
type Hypervisor struct {
	// Driver runs every VM that names none: "process" (the default) or
	// "qemu".
	Driver string `toml:"driver,omitempty"`
	// QEMU is the QEMU system emulator; "" is qemu-system-x86_64 from PATH.
	QEMU string `toml:"qemu,omitempty"`
	// KVM: "auto" (KVM where /dev/kvm opens, else software emulation), "on"
	// (required) or "off".
	KVM string `toml:"kvm,omitempty"`
}

// VMDriver returns the driver that runs the VM at index v.
func (c *Config) VMDriver(v int) string {
	if d := c.VMs[v].Driver; d != "" {
		return d
	}
	if c.Hypervisor.Driver != "" {
		return c.Hypervisor.Driver
	}
	return DriverProcess
}

// IsProtected reports whether the VM is restarted after a failure.
func (v VM) IsProtected() bool { return v.Protected == nil || *v.Protected }

// Default returns a configuration with every default filled in and no
// cluster name, links, datastores, hosts or VMs. The timing defaults pass
// CheckTiming: a dead host's VMs restart about 10s after it died without a
// BMC (lease 4s + watchdog 4s + margin 1s), about 2s with one.
func Default() *Config {
	return &Config{
		Cluster: Cluster{
			KeyFile: DefaultKeyFile, // root's, mode 0600
			Port:    DefaultPort,    // the port corosync uses: clusters already open it
		},
		Timing: Timing{
			Heartbeat:         Duration(100 * time.Millisecond), // ten heartbeats a second on each link
			LinkTimeout:       Duration(500 * time.Millisecond), // five lost heartbeats: above the 3 x heartbeat floor
			DatastoreInterval: Duration(1 * time.Second),        // r: one lease renewal a second
			IOTimeout:         Duration(2 * time.Second),        // io: a renewal slower than this does not count
			LeaseTimeout:      Duration(4 * time.Second),        // L: >= 2r + grace and >= r + io
			WatchdogTimeout:   Duration(4 * time.Second),        // W: >= io + r, <= L, whole seconds
			Margin:            Duration(1 * time.Second),        // over 1% of L + W and over 100ms
			FenceTimeout:      Duration(20 * time.Second),       // twice the L + W + margin the lease proof needs
			Grace:             Duration(2 * time.Second),        // shorter network blips never fence
			BMCPoll:           Duration(200 * time.Millisecond), // power state read back five times a second
		},
		Policy: Policy{
			HostFailures:        1,                         // keep room for one failed host
			RestartAttempts:     3,                         // three tries per VM and incident
			RestartBackoff:      Duration(1 * time.Second), // 1s, 2s, 4s between tries
			IsolationResponse:   "shutdown",                // an isolated host stops its VMs cleanly
			WatchdogResets:      3,                         // the third watchdog reset in an hour holds a host back
			WatchdogResetWindow: Duration(time.Hour),
		},
		EBPF: EBPF{
			Stamping: FeatureAuto,                     // where the kernel has TCX
			BlockIO:  FeatureAuto,                     // where it has block tracepoints
			Exits:    FeatureAuto,                     // where it has ring buffers
			Stuck:    Duration(50 * time.Millisecond), // a healthy LUN completes a 4 KiB request in a few ms
		},
	}
}

// HostByName returns the index of the host called name.
func (c *Config) HostByName(name string) (int, bool) {
	for i, h := range c.Hosts {
		if h.Name == name {
			return i, true
		}
	}
	return -1, false
}

// HostByID returns the index of the host with the given id.
func (c *Config) HostByID(id int) (int, bool) {
	for i, h := range c.Hosts {
		if h.ID == id {
			return i, true
		}
	}
	return -1, false
}

// VMByName returns the index of the VM called name.
func (c *Config) VMByName(name string) (int, bool) {
	for i, v := range c.VMs {
		if v.Name == name {
			return i, true
		}
	}
	return -1, false
}

// LinkByName returns the index of the link called name.
func (c *Config) LinkByName(name string) (int, bool) {
	for i, l := range c.Links {
		if l.Name == name {
			return i, true
		}
	}
	return -1, false
}
