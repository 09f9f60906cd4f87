// Command vigil is the multi-call binary of vigil: agent, CLI, console, lab
// and simulator. Run as fence_vigil (a link to it), it is the Pacemaker
// fence agent, vigil fence-agent.
package main

import (
	"os"

	"github.com/vigil-ha/vigil/firmware/cli"
)

func main() { os.Exit(cli.Run(cli.CommandArgs(os.Args), os.Stdout, os.Stderr)) }
