// Package cli holds the vigil multi-call binary's commands. Each command
// registers itself; main only calls Run.
package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// Command is one subcommand of the vigil binary.
type Command struct {
	Name    string
	Summary string
	Run     func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]Command{}

// Register adds a command; it panics on a duplicate name.
func Register(c Command) {
	if _, dup := commands[c.Name]; dup {
		panic("cli: duplicate command " + c.Name)
	}
	commands[c.Name] = c
}

// Version is set at build time with -ldflags -X.
var Version = "dev"

// Run runs the command named by args[0] and returns the process exit code:
// 0 success, 1 failure, 2 usage error.
func Run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "version" || args[0] == "--version" {
		printVersion(stdout)
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "vigil: unknown command %q: run 'vigil help' for the list\n", args[0])
		return 2
	}
	return c.Run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("vigil: high-availability firmware for hypervisor hosts\n\nusage: vigil COMMAND [ARGS]\n\ncommands:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-10s %s\n", n, commands[n].Summary)
	}
	b.WriteString("  version    print the version\n")
	io.WriteString(w, b.String())
}
