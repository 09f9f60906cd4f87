//go:build !vigil_noconsole

package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/firmware/agentd"
	"golang.org/x/sys/unix"
)

func init() {
	Register(Command{Name: "console", Summary: "the serial console: a line-oriented diagnostics shell on a tty", Run: runConsole})
}

const consoleUsage = `usage: vigil console [--tty PATH|-] [--api SOCKET] [--command LINE]
  --tty PATH    the terminal to serve (default /dev/ttyS0; - is stdin and stdout)
  --api SOCKET  the agent's API socket (default ` + agentd.DefaultAPI + `)
  --command L   run one console command and exit
`

func runConsole(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("console", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	tty := fs.String("tty", "/dev/ttyS0", "")
	api := fs.String("api", agentd.DefaultAPI, "")
	command := fs.String("command", "", "")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		fmt.Fprint(stderr, consoleUsage)
		return 2
	}
	sh := &shell{api: *api, timeout: 3 * time.Second}
	if *command != "" {
		sh.out = stdout
		if !sh.run(*command, nil) {
			return 1
		}
		return 0
	}
	var in io.Reader = os.Stdin
	sh.out = stdout
	name := "stdin"
	if *tty != "-" {
		f, err := os.OpenFile(*tty, os.O_RDWR|unix.O_NOCTTY, 0)
		if err != nil {
			fmt.Fprintf(stderr, "vigil console: %v (fix: --tty names the serial port, for example /dev/ttyS0)\n", err)
			return 1
		}
		defer f.Close()
		if err := setTerminal(int(f.Fd())); err != nil && !errors.Is(err, unix.ENOTTY) {
			fmt.Fprintf(stderr, "vigil console: %s: %v\n", *tty, err)
		}
		in, sh.out, name = f, f, *tty
	}
	fmt.Fprintf(sh.out, "vigil console %s on %s: type help\n", Version, name)
	sh.serve(bufio.NewReader(in))
	return 0
}

// setTerminal makes fd a line-mode terminal at 115200 baud: the kernel
// edits and echoes the line, and turns each newline written into CR LF.
func setTerminal(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Lflag |= unix.ICANON | unix.ECHO | unix.ECHOE | unix.ISIG
	t.Iflag |= unix.ICRNL
	t.Oflag |= unix.OPOST | unix.ONLCR
	t.Cflag = t.Cflag&^unix.CBAUD | unix.B115200 | unix.CREAD | unix.CLOCAL
	t.Ispeed, t.Ospeed = unix.B115200, unix.B115200
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}

// shell is the console's command loop. Every answer comes from the agent's
// API within timeout; an agent that does not answer gets an error, never
// a console that hangs.
type shell struct {
	api     string
	out     io.Writer
	timeout time.Duration
	host    string // from the last status, for the prompt
}

type consoleCmd struct {
	name, args, help string
	run              func(sh *shell, ctx context.Context, w io.Writer, args []string, in *bufio.Reader) error
}

var consoleCmds []consoleCmd

func init() {
	consoleCmds = []consoleCmd{
		{"help", "[CMD]", "the commands, or one command's help", nil},
		{"status", "", "this host: verdict, lease, datastores, VMs, agent memory", statusCmd(printAgentStatus)},
		{"peers", "", "the verdict on every peer and its links", statusCmd(printPeers)},
		{"links", "", "every peer link's detector: state, last heard, timeout", statusCmd(printLinks)},
		{"datastores", "", "this host's view of each datastore and its lease renewals", statusCmd(printDatastores)},
		{"vms", "", "the VMs this host runs or claims", statusCmd(printVMs)},
		{"incidents", "", "the incidents the agent keeps: evidence, fence, proof, placements", cliCmd(runIncidents, false)},
		{"explain", "HOST", "the evidence behind the verdict on HOST", cliCmd(runExplain, true)},
		{"watchdog", "", "the watchdog: device, timeout, time left, pets, what caused the last boot", watchdogCmd},
		{"bmc", "", "this host's own BMC through in-band IPMI: identity and power state", bmcCmd},
		{"log", "[N]", "the agent's last N log lines (default 20)", logCmd},
		{"fence-self", "", "fence this host now (asks for its name first)", fenceSelfCmd},
		{"exit", "", "leave the console (on the serial port it starts again)", nil},
	}
}

// serve reads lines until the input ends or exit.
func (sh *shell) serve(in *bufio.Reader) {
	for {
		fmt.Fprint(sh.out, sh.prompt())
		line, err := in.ReadString('\n')
		line = strings.TrimSpace(line)
		if line == "exit" || line == "quit" {
			return
		}
		if line != "" {
			sh.run(line, in)
		}
		if err != nil {
			fmt.Fprintln(sh.out)
			return
		}
	}
}

func (sh *shell) prompt() string {
	if sh.host == "" {
		var rep agentd.StatusReply
		if sh.get(context.Background(), "/v1/status", &rep) == nil {
			sh.host = rep.Status.Host
		}
	}
	if sh.host == "" {
		return "vigil> "
	}
	return "vigil " + sh.host + "> "
}

// run runs one command line and reports whether it succeeded.
func (sh *shell) run(line string, in *bufio.Reader) bool {
	f := strings.Fields(line)
	name, args := f[0], f[1:]
	if name == "help" || name == "?" {
		sh.help(args)
		return true
	}
	for _, c := range consoleCmds {
		if c.name != name || c.run == nil {
			continue
		}
		if err := sh.do(c, args, in); err != nil {
			fmt.Fprintf(sh.out, "%s: %v\n", name, err)
			return false
		}
		return true
	}
	fmt.Fprintf(sh.out, "unknown command %q: type help for the list\n", name)
	return false
}

// do runs c with the shell's timeout. Its output is kept until it ends,
// so a late answer never lands in the middle of the next command's.
func (sh *shell) do(c consoleCmd, args []string, in *bufio.Reader) error {
	if c.name == "fence-self" { // asks a question: runs in the foreground
		ctx, cancel := context.WithTimeout(context.Background(), sh.timeout)
		defer cancel()
		return c.run(sh, ctx, sh.out, args, in)
	}
	ctx, cancel := context.WithTimeout(context.Background(), sh.timeout)
	defer cancel()
	var buf bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- c.run(sh, ctx, &buf, args, in) }()
	select {
	case err := <-done:
		sh.out.Write(buf.Bytes())
		return err
	case <-ctx.Done():
		sh.host = ""
		return sh.notAnswering(ctx.Err())
	}
}

func (sh *shell) notAnswering(err error) error {
	return fmt.Errorf("agent not answering on %s: %v (is `vigil agent` running? the boot log on this console says)", sh.api, err)
}

func (sh *shell) help(args []string) {
	for _, c := range consoleCmds {
		if len(args) > 0 && args[0] != c.name {
			continue
		}
		fmt.Fprintf(sh.out, "  %-22s %s\n", strings.TrimSpace(c.name+" "+c.args), c.help)
	}
	if len(args) > 0 && !knownCmd(args[0]) {
		fmt.Fprintf(sh.out, "unknown command %q: type help for the list\n", args[0])
	}
}

func knownCmd(name string) bool {
	for _, c := range consoleCmds {
		if c.name == name {
			return true
		}
	}
	return false
}

func (sh *shell) get(ctx context.Context, path string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, sh.timeout)
	defer cancel()
	return agentd.NewClient(sh.api).Get(ctx, path, v)
}

func statusCmd(print func(io.Writer, *agentd.StatusReply)) func(*shell, context.Context, io.Writer, []string, *bufio.Reader) error {
	return func(sh *shell, ctx context.Context, w io.Writer, args []string, _ *bufio.Reader) error {
		if len(args) > 0 {
			return fmt.Errorf("takes no arguments")
		}
		var rep agentd.StatusReply
		if err := sh.get(ctx, "/v1/status", &rep); err != nil {
			return err
		}
		print(w, &rep)
		return nil
	}
}

// cliCmd runs one of vigil's commands against the agent's API.
func cliCmd(run func([]string, io.Writer, io.Writer) int, oneArg bool) func(*shell, context.Context, io.Writer, []string, *bufio.Reader) error {
	return func(sh *shell, ctx context.Context, w io.Writer, args []string, _ *bufio.Reader) error {
		if oneArg != (len(args) == 1) || len(args) > 1 {
			if oneArg {
				return fmt.Errorf("usage: explain HOST")
			}
			return fmt.Errorf("takes no arguments")
		}
		if run(append(args, "--api", sh.api), w, w) != 0 {
			return errors.New("failed")
		}
		return nil
	}
}

func watchdogCmd(sh *shell, ctx context.Context, w io.Writer, args []string, _ *bufio.Reader) error {
	var r agentd.WatchdogReply
	if err := sh.get(ctx, "/v1/watchdog", &r); err != nil {
		return err
	}
	state := "not armed (the host is not entitled to run VMs yet, or stopped cleanly)"
	if r.Armed {
		state = "armed"
	}
	fmt.Fprintf(w, "watchdog %s: %s, timeout %s", r.Device, state, r.Timeout)
	if r.Took > 0 && r.Took != r.Timeout {
		fmt.Fprintf(w, " (the device took %s)", r.Took)
	}
	fmt.Fprintln(w)
	if r.Armed {
		if r.TimeLeft >= 0 {
			fmt.Fprintf(w, "time left: %s\n", r.TimeLeft)
		} else {
			fmt.Fprintln(w, "time left: the driver does not say")
		}
	}
	fmt.Fprintf(w, "pets: %d\n", r.Pets)
	if r.Stopped != "" {
		fmt.Fprintf(w, "NOT PETTING: %s\n", r.Stopped)
	}
	fmt.Fprintf(w, "last boot: %s\n", r.LastBoot)
	return nil
}

func bmcCmd(sh *shell, ctx context.Context, w io.Writer, args []string, _ *bufio.Reader) error {
	var r agentd.BMCReply
	if err := sh.get(ctx, "/v1/bmc", &r); err != nil {
		return err
	}
	if r.Err != "" {
		fmt.Fprintf(w, "no in-band IPMI device: %s\n", r.Err)
		return nil
	}
	fmt.Fprintf(w, "BMC %s: %s\npower: %s\n", r.Device, r.Identity, r.Power)
	return nil
}

func logCmd(sh *shell, ctx context.Context, w io.Writer, args []string, _ *bufio.Reader) error {
	n := 20
	if len(args) > 1 {
		return fmt.Errorf("usage: log [N]")
	}
	if len(args) == 1 {
		v, err := strconv.Atoi(args[0])
		if err != nil || v < 1 {
			return fmt.Errorf("usage: log [N], N a number of lines above 0")
		}
		n = v
	}
	var r agentd.LogReply
	if err := sh.get(ctx, "/v1/log?n="+strconv.Itoa(n), &r); err != nil {
		return err
	}
	for _, l := range r.Lines {
		fmt.Fprintln(w, l)
	}
	return nil
}

func fenceSelfCmd(sh *shell, ctx context.Context, w io.Writer, args []string, in *bufio.Reader) error {
	var rep agentd.StatusReply
	if err := sh.get(ctx, "/v1/status", &rep); err != nil {
		return err
	}
	host := rep.Status.Host
	if in == nil {
		return fmt.Errorf("asks for confirmation: run it on the console")
	}
	fmt.Fprintf(w, "this powers %s off (or stops petting its watchdog) now; its VMs stop and restart elsewhere.\ntype the host name to confirm: ", host)
	answer, _ := in.ReadString('\n')
	if strings.TrimSpace(answer) != host {
		fmt.Fprintln(w, "not confirmed: nothing done")
		return nil
	}
	pctx, cancel := context.WithTimeout(context.Background(), sh.timeout)
	defer cancel()
	var ok struct{ OK bool }
	if err := agentd.NewClient(sh.api).Post(pctx, "/v1/command?name=fence-self&by=console", &ok); err != nil {
		return err
	}
	fmt.Fprintf(w, "%s is fencing itself\n", host)
	return nil
}
