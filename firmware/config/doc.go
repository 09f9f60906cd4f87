// Package config reads and checks vigil's cluster file: one strict TOML file
// naming the cluster's hosts, links, datastores, timing, policy and VMs.
//
//	cfg, err := config.Load("/etc/vigil/cluster.toml")
//	if err != nil {
//		var ps config.Problems
//		if errors.As(err, &ps) {
//			for _, p := range ps {
//				fmt.Println(p) // hosts[2].addresses: ... (fix: ...)
//			}
//		}
//		return err
//	}
//	spec := cfg.Spec() // the pure core's view: hosts and VMs by index
//
// Parsing never stops at the first problem: Parse and Validate return every
// problem found as Problems, each with the key at fault, what is wrong and
// how to fix it. Unknown keys are errors. CheckTiming holds the timing rules
// that keep the safety contract true; the agent runs it again before it
// arms a watchdog. The README's configuration reference documents every key.
package config
