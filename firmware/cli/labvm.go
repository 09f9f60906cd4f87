//go:build !vigil_nohvproc

package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func init() {
	Register(Command{Name: "lab-vm", Summary: "a lab VM process (started by the process hypervisor)", Run: runLabVM})
}

const labVMUsage = `usage: vigil lab-vm --name NAME --cpu N --memory-mib M [--exit-after D]

Stands for a VM in the lab: the process hypervisor (drivers/hv/proc) starts
one per VM. It prints one line and runs until SIGTERM or SIGINT, then exits 0.
With --exit-after it exits with status 1 after D: an application that
crashes, for the guest agent's tests.
`

func runLabVM(args []string, stdout, stderr io.Writer) int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, os.Interrupt)
	defer signal.Stop(sigs)
	return labVM(args, stdout, stderr, sigs)
}

// labVM runs the lab VM until a signal arrives on sigs.
func labVM(args []string, stdout, stderr io.Writer, sigs <-chan os.Signal) int {
	fs := flag.NewFlagSet("lab-vm", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("name", "", "the VM's name")
	cpu := fs.Int("cpu", 0, "virtual CPUs")
	mem := fs.Int("memory-mib", 0, "memory in MiB")
	after := fs.Duration("exit-after", 0, "crash after this long")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			io.WriteString(stdout, labVMUsage)
			return 0
		}
		fmt.Fprintf(stderr, "vigil lab-vm: %v\n%s", err, labVMUsage)
		return 2
	}
	var problem string
	switch {
	case fs.NArg() > 0:
		problem = fmt.Sprintf("unexpected argument %q", fs.Arg(0))
	case *name == "":
		problem = "--name is required"
	case *cpu < 1 || *mem < 1:
		problem = fmt.Sprintf("--cpu %d and --memory-mib %d must both be at least 1", *cpu, *mem)
	}
	if problem != "" {
		fmt.Fprintf(stderr, "vigil lab-vm: %s\n%s", problem, labVMUsage)
		return 2
	}
	fmt.Fprintf(stdout, "lab-vm %s: %d CPU, %d MiB, pid %d: running until SIGTERM\n", *name, *cpu, *mem, os.Getpid())
	var crash <-chan time.Time
	if *after > 0 {
		crash = time.After(*after)
	}
	select {
	case <-sigs:
		return 0
	case <-crash:
		fmt.Fprintf(stderr, "lab-vm %s: exiting after %v, as asked\n", *name, *after)
		return 1
	}
}
