// Package lab runs a cluster of real vigil agents on one Linux machine: each
// host is a network namespace with one veth per heartbeat link, each link a
// bridge in a hub namespace, each host's processes one cgroup v2 directory.
// Faults are applied from outside the agents: a cable pull sets the hub side
// of a veth down, loss and partitions are one eBPF TCX program on every
// hub-side veth, a power loss kills the host's cgroup, a frozen host is a
// frozen cgroup, and an emulated watchdog power-kills a host whose agent
// stops petting it. Every host has a BMC (unless Options.NoBMC): an
// ipmi_sim in the hub namespace on 10.100.0.1:6230+N, whose chassis power
// is the host's (see bmc.go and bmcpower.go).
//
//	l, err := lab.Up(lab.Options{Name: "demo", Hosts: 3, Links: 2})
//	if err != nil { ... }
//	defer l.Down()
//	l.Cut("h1", "1")                    // pull h1's cable on link 1
//	l.Partition("h1,h2|h3")             // h3 alone on every link
//	l.PowerOff("h2")                    // SIGKILL every process of h2; its BMC reads off
//	l.BMCFail("h3")                     // h3's BMC answers nothing until BMCHeal
//	st, _ := l.Status()
//	st.WriteTable(os.Stdout)
//
// Every command needs root. A lab called NAME keeps its state in
// /run/vigil-lab/NAME (state.json, cluster.toml, cluster.key, the shared
// datastore ds0 and one folder per host), its namespaces are vl-NAME-hub and
// vl-NAME-hN, its cgroups (one per host, the supervisor's and the BMCs')
// live under <cgroup2 mount>/vigil-lab/NAME and its eBPF objects are
// pinned under /sys/fs/bpf/vigil-lab/NAME, so a later command, another
// process or Down finds everything again by name.
//
// Addresses: link L (0-based) is bridge brL with 10.(100+L).0.1/24, the
// link's isolation address; host hN (1-based) has ethL with 10.(100+L).0.(10+N)
// and its hub side is hN-lL on brL.
package lab
