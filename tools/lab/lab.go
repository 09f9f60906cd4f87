package lab

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ReadyFDEnv names the variable that tells the supervisor which file
// descriptor to report its readiness on: "ok" or an error, one line.
const ReadyFDEnv = "VIGIL_LAB_READY_FD"

// supervisorReadyWait bounds Up's wait for the supervisor.
const supervisorReadyWait = 10 * time.Second

// Lab is a running lab, found by name. Its methods read and update
// state.json, so several processes may drive one lab.
type Lab struct {
	name string
}

// Up brings up a lab: it removes any lab of the same name and any
// leftovers of a crashed one, writes the state folder and cluster files,
// builds the namespaces, bridges and veths, attaches and pins the fault
// program, starts the supervisor, every host's BMC (unless o.NoBMC; see
// bmc.go: it needs ipmi_sim) and then every host's agent. On failure
// it removes what it made. Each TCX attachment waits for an RCU grace
// period (about 11 ms here), so 16 hosts on 8 links take about 3 s to
// come up; with /sys/kernel/rcu_expedited set to 1, about 0.5 s.
func Up(o Options) (*Lab, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	var ipmiSim string
	if !o.NoBMC {
		if ipmiSim, err = findIPMISim(); err != nil {
			return nil, fmt.Errorf("lab %q: up: %w", o.Name, err)
		}
	}
	if err := Down(o.Name); err != nil {
		return nil, fmt.Errorf("lab %q: remove the old lab: %w", o.Name, err)
	}
	if err := up(o, ipmiSim); err != nil {
		if derr := Down(o.Name); derr != nil {
			err = errors.Join(err, fmt.Errorf("and cleaning up failed: %w", derr))
		}
		return nil, fmt.Errorf("lab %q: up: %w", o.Name, err)
	}
	return &Lab{name: o.Name}, nil
}

func up(o Options, ipmiSim string) error {
	dir := labDir(o.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("make %s: %w", dir, err)
	}
	device, err := prepareStore(dir, o.Name)
	if err != nil {
		return err
	}
	if err := writeClusterFiles(o, dir, device); err != nil {
		return err
	}
	cgRoot, err := cgroupRoot(o.Name)
	if err != nil {
		return err
	}
	s := newState(o, dir, cgRoot)
	s.Device, s.IPMISim = device, ipmiSim
	for _, d := range []string{s.Supervisor.Cgroup, s.BMCCgroup} {
		if d == "" {
			continue
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("make cgroup %s: %w", d, err)
		}
	}
	for i := range s.Hosts {
		h := &s.Hosts[i]
		for _, d := range []string{h.Agent.Cgroup, filepath.Join(h.Dir, "vms")} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("make %s: %w", d, err)
			}
		}
		if h.BMC != nil {
			argv := BMCPowerArgs(o.Executable, o.Name, h.Name)
			if o.BMCPowerCommand != nil {
				argv = o.BMCPowerCommand(o.Name, h.Name)
			}
			if err := writeBMCFiles(h, argv); err != nil {
				return err
			}
		}
	}
	if err := buildNetwork(s); err != nil {
		return err
	}
	if err := installFaults(s); err != nil {
		return err
	}
	if err := s.write(); err != nil {
		return err
	}
	if err := startSupervisor(s); err != nil {
		return err
	}
	return update(o.Name, func(s *state) error {
		if err := attachHostPaths(s); err != nil {
			return err
		}
		// The BMCs first, so that every agent finds every BMC answering;
		// each power process waits for the lock, and then finds its host
		// on and its agent started.
		for i := range s.Hosts {
			if s.Hosts[i].BMC == nil {
				continue
			}
			if err := startBMC(s, &s.Hosts[i]); err != nil {
				return err
			}
		}
		for i := range s.Hosts {
			if err := startAgent(&s.Hosts[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// newState lays out the state of a lab with options o.
func newState(o Options, dir, cgRoot string) *state {
	s := &state{
		Name:           o.Name,
		Dir:            dir,
		Executable:     o.Executable,
		HubNS:          hubNS(o.Name),
		CgroupRoot:     cgRoot,
		PinDir:         pinDir(o.Name),
		WatchdogAction: o.WatchdogAction,
	}
	for l := 0; l < o.Links; l++ {
		s.Links = append(s.Links, linkState{Name: linkName(l), Bridge: bridgeName(l), Isolation: isolationAddr(l).String()})
	}
	argv := []string{o.Executable, "lab", "supervise", "--name", o.Name}
	if o.SupervisorCommand != nil {
		argv = o.SupervisorCommand(o.Name)
	}
	s.Supervisor = procState{
		Argv:   argv,
		Cgroup: filepath.Join(cgRoot, "supervisor"),
		Log:    filepath.Join(dir, "supervisor.log"),
		Socket: filepath.Join(dir, "supervisor.sock"),
	}
	for n := 1; n <= o.Hosts; n++ {
		name := hostName(n)
		h := hostState{Name: name, ID: n, NS: hostNS(o.Name, name), Dir: filepath.Join(dir, name)}
		h.Agent = procState{Cgroup: filepath.Join(cgRoot, name), Log: filepath.Join(h.Dir, "agent.log")}
		if o.AgentCommand != nil {
			h.Agent.Argv = o.AgentCommand(name)
		} else {
			h.Agent.Argv = append(AgentArgs(o.Executable, o.Name, name), o.AgentFlags...)
		}
		for l := 0; l < o.Links; l++ {
			h.Links = append(h.Links, hostLinkState{Veth: hostVeth(l), HubVeth: hubVeth(name, l), Addr: hostAddr(n, l).String()})
		}
		if !o.NoBMC {
			h.BMC = newBMC(n, h.Dir)
			s.BMCCgroup = filepath.Join(cgRoot, "bmc")
		}
		s.Hosts = append(s.Hosts, h)
	}
	return s
}

// startSupervisor starts the supervisor daemon and waits until it says it
// serves every watchdog and its control socket.
func startSupervisor(s *state) error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("make the supervisor's readiness pipe: %w", err)
	}
	defer r.Close()
	pid, err := startDaemon("", s.Supervisor.Cgroup, s.Supervisor.Argv, s.Supervisor.Log, []string{ReadyFDEnv + "=3"}, []*os.File{w})
	w.Close()
	if err != nil {
		return fmt.Errorf("start the supervisor: %w", err)
	}
	s.Supervisor.PID = pid
	if err := s.write(); err != nil {
		return err
	}
	r.SetReadDeadline(time.Now().Add(supervisorReadyWait))
	line, err := bufio.NewReader(r).ReadString('\n')
	line = strings.TrimSpace(line)
	switch {
	case line == "ok":
		return nil
	case line != "":
		return fmt.Errorf("the supervisor failed: %s (see %s)", line, s.Supervisor.Log)
	default:
		return fmt.Errorf("the supervisor did not get ready: %v (see %s)", err, s.Supervisor.Log)
	}
}

// Open returns the lab called name; the error wraps ErrNoLab when it is
// not up.
func Open(name string) (*Lab, error) {
	if name == "" {
		name = DefaultName
	}
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if _, err := readState(name); err != nil {
		return nil, err
	}
	return &Lab{name: name}, nil
}

// Name returns the lab's name.
func (l *Lab) Name() string { return l.name }

// Dir returns the lab's state folder.
func (l *Lab) Dir() string { return labDir(l.name) }

// HostNamespace returns the name of host's network namespace, usable with
// 'ip netns exec', or "" when the lab has no such host.
func (l *Lab) HostNamespace(host string) string {
	s, err := readState(l.name)
	if err != nil {
		return ""
	}
	h, err := s.host(host)
	if err != nil {
		return ""
	}
	return h.NS
}

// Hosts returns the names of the lab's hosts.
func (l *Lab) Hosts() ([]string, error) {
	s, err := readState(l.name)
	if err != nil {
		return nil, err
	}
	return s.hostNames(), nil
}

// Exec starts argv inside host: in its network namespace and its cgroup,
// so that powering the host off kills it too. Its standard input, output
// and error are /dev/null; use Start to set them. The caller waits for
// the returned, started command.
func (l *Lab) Exec(host string, argv ...string) (*exec.Cmd, error) {
	if len(argv) == 0 {
		return nil, errors.New("lab: exec: empty command line")
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	if err := l.Start(host, cmd); err != nil {
		return nil, err
	}
	return cmd, nil
}

// Start starts the prepared cmd inside host (namespace and cgroup).
func (l *Lab) Start(host string, cmd *exec.Cmd) error {
	s, err := readState(l.name)
	if err != nil {
		return err
	}
	h, err := s.host(host)
	if err != nil {
		return fmt.Errorf("lab %q: exec: %w", l.name, err)
	}
	if h.Off {
		return fmt.Errorf("lab %q: exec: %s is powered off (fix: vigil lab poweron %s)", l.name, host, host)
	}
	return startIn(h.NS, h.Agent.Cgroup, cmd)
}

// Down removes the lab: see the package function Down.
func (l *Lab) Down() error { return Down(l.name) }

// Down removes the lab called name: it kills every process of its hosts,
// its BMCs and its supervisor (every one lives in a cgroup under the
// lab's), detaches its loop devices, unmounts the hosts'
// datastore paths, and removes its cgroups, namespaces, eBPF pins and
// state folder. It works without state.json, by name, and succeeds when
// there is nothing to remove.
func Down(name string) error {
	if name == "" {
		name = DefaultName
	}
	if err := CheckName(name); err != nil {
		return err
	}
	// First the datastore paths: a process waiting on a hung one cannot
	// be killed until its request ends.
	errs := []error{abortPaths(name)}
	if root, err := cgroupRoot(name); err != nil {
		errs = append(errs, err)
	} else if err := removeCgroupTree(root); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, releaseStore(name), deleteNamespaces(name), removePins(name))
	if err := os.RemoveAll(labDir(name)); err != nil {
		errs = append(errs, fmt.Errorf("lab: remove %s: %w", labDir(name), err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lab %q: down: %w", name, err)
	}
	return nil
}
