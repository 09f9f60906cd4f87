package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ErrNoLab is wrapped by Open's error when no lab of that name is up.
var ErrNoLab = errors.New("no such lab")

// state is state.json: everything a later command needs to find and
// change the lab.
type state struct {
	Name           string      `json:"name"`
	Dir            string      `json:"dir"`
	Executable     string      `json:"executable"`
	HubNS          string      `json:"hub_ns"`
	CgroupRoot     string      `json:"cgroup_root"` // <mount>/vigil-lab/NAME
	PinDir         string      `json:"pin_dir"`
	WatchdogAction string      `json:"watchdog_action"`
	Links          []linkState `json:"links"`
	Hosts          []hostState `json:"hosts"`
	// Partition holds the groups of the current partition, nil when none.
	Partition [][]string `json:"partition,omitempty"`
	// Supervisor is the supervisor daemon.
	Supervisor procState `json:"supervisor"`
	// Device is the loop device on the shared LUN's image that the
	// cluster file names.
	Device string `json:"device,omitempty"`
	// IPMISim is the ipmi_sim binary of the BMCs, "" without BMCs.
	IPMISim string `json:"ipmi_sim,omitempty"`
	// BMCCgroup holds every BMC's ipmi_sim and power process.
	BMCCgroup string `json:"bmc_cgroup,omitempty"`
}

// linkState is one heartbeat link.
type linkState struct {
	Name      string `json:"name"`
	Bridge    string `json:"bridge"`
	Isolation string `json:"isolation_address"` // the bridge's address
}

// procState is one long-running process of the lab.
type procState struct {
	Argv   []string `json:"argv"`
	PID    int      `json:"pid"`
	Cgroup string   `json:"cgroup"`
	Log    string   `json:"log"`
	Socket string   `json:"socket,omitempty"`
}

// hostState is one host.
type hostState struct {
	Name  string    `json:"name"`
	ID    int       `json:"id"`
	NS    string    `json:"ns"`
	Dir   string    `json:"dir"`
	Agent procState `json:"agent"`
	Off   bool      `json:"off"`
	// OffBy says who powered the host off: "poweroff", "watchdog" or
	// "bmc".
	OffBy  string `json:"off_by,omitempty"`
	Frozen bool   `json:"frozen"`
	// Gen counts power changes, so that a delayed reboot can tell that the
	// host was powered on or off again meanwhile.
	Gen   int             `json:"gen"`
	Links []hostLinkState `json:"links"`
	// BlockDevice is the host's own loop device on the shared LUN.
	BlockDevice string `json:"block_device,omitempty"`
	// DSModes holds the faults of the host's datastore paths: "fail" or
	// "hang" by datastore; a path not listed is ok.
	DSModes map[string]string `json:"ds_modes,omitempty"`
	// BMC is the host's BMC, nil in a lab without BMCs.
	BMC *bmcState `json:"bmc,omitempty"`
}

// hostLinkState is one host's NIC on one link.
type hostLinkState struct {
	Veth     string `json:"veth"`      // host side, in the host's namespace
	HubVeth  string `json:"hub_veth"`  // hub side, on the link's bridge
	HubIndex int    `json:"hub_index"` // the hub side's ifindex, the eBPF maps' key
	Addr     string `json:"addr"`
	Cut      bool   `json:"cut"`
	Loss     int    `json:"loss"` // percent
}

func statePath(dir string) string { return filepath.Join(dir, "state.json") }

// readState reads state.json of the lab called name.
func readState(name string) (*state, error) {
	data, err := os.ReadFile(statePath(labDir(name)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("lab %q: %w (fix: run 'vigil lab up --name %s --hosts 3 --links 2')", name, ErrNoLab, name)
	}
	if err != nil {
		return nil, fmt.Errorf("lab %q: read state: %w", name, err)
	}
	var s state
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("lab %q: %s is damaged: %w (fix: run 'vigil lab down --name %s' and bring it up again)", name, statePath(labDir(name)), err, name)
	}
	return &s, nil
}

// write replaces state.json atomically.
func (s *state) write() error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("lab %q: encode state: %w", s.Name, err)
	}
	tmp := statePath(s.Dir) + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("lab %q: write state: %w", s.Name, err)
	}
	if err := os.Rename(tmp, statePath(s.Dir)); err != nil {
		return fmt.Errorf("lab %q: write state: %w", s.Name, err)
	}
	return nil
}

// lockState takes the lab's state lock, so that the commands and the
// supervisor change state.json one at a time. The caller calls the
// returned function to release it.
func lockState(name string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(labDir(name), "state.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("lab %q: %w (fix: run 'vigil lab up --name %s --hosts 3 --links 2')", name, ErrNoLab, name)
	}
	if err != nil {
		return nil, fmt.Errorf("lab %q: lock state: %w", name, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lab %q: lock state: %w", name, err)
	}
	return func() { f.Close() }, nil
}

// update runs fn on the current state under the lock and writes the state
// back when fn succeeds.
func update(name string, fn func(s *state) error) error {
	unlock, err := lockState(name)
	if err != nil {
		return err
	}
	defer unlock()
	s, err := readState(name)
	if err != nil {
		return err
	}
	if err := fn(s); err != nil {
		return err
	}
	return s.write()
}

// host returns the host called name, or an UnknownHostError.
func (s *state) host(name string) (*hostState, error) {
	for i := range s.Hosts {
		if s.Hosts[i].Name == name {
			return &s.Hosts[i], nil
		}
	}
	return nil, &UnknownHostError{Host: name, Hosts: s.hostNames()}
}

func (s *state) hostNames() []string {
	out := make([]string, len(s.Hosts))
	for i, h := range s.Hosts {
		out[i] = h.Name
	}
	return out
}

// UnknownHostError is returned for a host the lab does not have.
type UnknownHostError struct {
	Host  string
	Hosts []string // the lab's hosts
}

func (e *UnknownHostError) Error() string {
	return fmt.Sprintf("unknown host %q (fix: use one of %v)", e.Host, e.Hosts)
}

// UnknownLinkError is returned for a link the lab does not have.
type UnknownLinkError struct {
	Link  string
	Links []string // the lab's links
}

func (e *UnknownLinkError) Error() string {
	return fmt.Sprintf("unknown link %q (fix: use an index from 0 to %d or one of %v)", e.Link, len(e.Links)-1, e.Links)
}

// link resolves a link given by index ("1") or name ("l1").
func (s *state) link(arg string) (int, error) {
	for i, l := range s.Links {
		if arg == l.Name || arg == fmt.Sprint(i) {
			return i, nil
		}
	}
	names := make([]string, len(s.Links))
	for i, l := range s.Links {
		names[i] = l.Name
	}
	return -1, &UnknownLinkError{Link: arg, Links: names}
}
