// Command vigil is the multi-call binary of vigil: agent, CLI, console, lab
// and simulator.
package main

import (
	"os"

	"github.com/vigil-ha/vigil/firmware/cli"
)

func main() { os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr)) }
