// Package sim is vigil's simulated world: the second implementation of
// agent.Env. Every host runs the production agent and core unchanged over a
// virtual clock, with simulated NICs, gateways, datastores, BMCs, watchdogs
// and hypervisors that fail on command. A run is single-threaded and
// deterministic for a seed: one event queue ordered by (time, sequence), a
// seeded math/rand, no goroutines, no wall clock.
//
//	r, err := sim.RunScenario("testdata/scenarios/power-loss", false)
//	fmt.Print(r.Log)            // info 20.000 h2/sim: power lost, lost vm2 vm6 ...
//	len(r.Violations)           // invariant violations (S1, S2, L1, L2)
//
//	w := sim.New(spec, sim.DefaultParams())
//	w.Schedule(script)          // from ParseScript
//	w.RunUntil(script.End)
//
// A scenario is a folder: cluster.toml (the cluster file), cmds (the
// script, see Script and the commands below) and log.expect (the golden
// log; `go test ./tools/sim -update` rewrites it). Log lines read
// `LEVEL TIME HOST/COMPONENT: MESSAGE`, TIME in seconds since the start.
//
// Commands (HOST, VM, LINK and DATASTORE by name; LINK and DATASTORE also by
// index):
//
//	poweroff|poweron|reset HOST     power; boot takes host-boot (20s)
//	freeze|thaw HOST                stop the agent (no ticks, heartbeats to it
//	                                dropped, completions held until thaw)
//	restart HOST                    agent restart: VMs and watchdog stay
//	drift HOST PPM                  the host's clock runs fast or slow
//	cut|heal HOST LINK              a NIC (the host sees LinkChanged)
//	oneway|twoway FROM TO [LINK]    drop packets FROM -> TO
//	loss HOST LINK PERCENT          a NIC loses packets (0 heals)
//	delay HOST LINK DURATION        a NIC adds latency (0 heals)
//	partition A,B|C,D / unpartition groups that cannot hear each other
//	gateway LINK down|up            the link's isolation address
//	ds fail|hang|heal DS [HOST]     a datastore, or one host's path to it
//	ds slow DS DURATION [HOST]
//	bmc HOST unreachable|liar|ok
//	vmfail|vmok VM, hvfail|hvok HOST, crash VM
//	maintenance enter|exit HOST
//	set KEY VALUE                   vm-boot, host-boot, net-latency,
//	                                ds-latency, seed
//	run DURATION                    end time (60s)
//
// Device behaviour: heartbeats arrive after net-latency (200µs), one queued
// event per broadcast shared by all receivers; gateways answer in 1ms (a
// cut NIC or a gateway down: OK=false after 1s); datastore I/O takes
// ds-latency (1ms), a failing path errs after 1ms, a hung one completes at
// its heal; a BMC acts in 50ms (unreachable: "timeout" after 2s; a liar
// reports success and "on" and does nothing); a VM starts in vm-boot (1s),
// stops in 300ms, dies in 10ms. A watchdog arms at its first pet and resets
// the host when not petted by its deadline; power-off disarms it.
//
// The checker (see checker) runs in every world; the fuzzer (Fuzz) draws
// random clusters and fault schedules and shrinks what breaks.
package sim
