//go:build !vigil_noipmilan

package cli

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/drivers/ipmi"
)

func init() {
	Register(Command{Name: "fence-agent", Summary: "a Pacemaker fence agent (fence_ipmilan's options) over vigil's IPMI driver", Run: runFenceAgent})
}

// Exit statuses, as fence-agents define them.
const (
	faOK     = 0
	faFailed = 1
	faOff    = 2 // status: the power is off
)

// faEnv is the world the agent runs in; tests replace it.
type faEnv struct {
	stdin     io.Reader
	dial      func(ctx context.Context, addr string, cred ipmi.Credentials, opts ipmi.LANOptions) (ipmi.BMC, error)
	loadCreds func(path string) (ipmi.Credentials, []string, error)
	runScript func(ctx context.Context, script string) (string, error)
	now       func() time.Time
	sleep     func(ctx context.Context, d time.Duration) error
}

var fenceAgentEnv = faEnv{
	stdin: os.Stdin,
	dial: func(ctx context.Context, addr string, cred ipmi.Credentials, opts ipmi.LANOptions) (ipmi.BMC, error) {
		l, err := ipmi.DialLAN(ctx, addr, cred, opts)
		if err != nil {
			return nil, err
		}
		return l, nil
	},
	loadCreds: ipmi.LoadCredentials,
	runScript: faRunScript,
	now:       time.Now,
	sleep:     sleepCtx,
}

func runFenceAgent(args []string, stdout, stderr io.Writer) int {
	return fenceAgentEnv.run(args, stdout, stderr)
}

// faScriptTimeout bounds a password script.
const faScriptTimeout = 10 * time.Second

// faRunScript runs script with sh -c and returns the first line it
// prints, as fence-agents do with password_script.
func faRunScript(ctx context.Context, script string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, faScriptTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("password_script: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	line, _, _ := strings.Cut(string(out), "\n")
	line = strings.TrimRight(line, "\r")
	if line == "" {
		return "", errors.New("password_script printed no password: make it print the password on its first line")
	}
	return line, nil
}

// faRun is one run of the agent.
type faRun struct {
	env    faEnv
	o      *faOptions
	stdout io.Writer
	stderr io.Writer
}

func (r *faRun) logf(level, format string, args ...any) {
	fmt.Fprintf(r.stderr, "%s: %s\n", level, fmt.Sprintf(format, args...))
}

func (r *faRun) debugf(format string, args ...any) {
	if r.o.verbose {
		r.logf("DEBUG", format, args...)
	}
}

func (env faEnv) run(args []string, stdout, stderr io.Writer) int {
	warn := func(msg string) { fmt.Fprintf(stderr, "WARNING: %s\n", msg) }
	var o *faOptions
	var err error
	if len(args) == 0 {
		o, err = faParseStdin(env.stdin, warn)
	} else {
		var help bool
		o, help, err = faParseArgs(args)
		if help {
			io.WriteString(stdout, fenceAgentUsage())
			return faOK
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "ERROR: %v\nERROR: Please use '-h' for usage\n", err)
		return faFailed
	}
	r := &faRun{env: env, o: o, stdout: stdout, stderr: stderr}
	switch o.action {
	case "metadata":
		io.WriteString(stdout, faMetadata())
		return faOK
	case "list":
		// A BMC has no plugs to list: the hosts it fences are the device's
		// pcmk_host_list. Listing none keeps the device from claiming all.
		return faOK
	}
	if err := o.validate(); err != nil {
		r.logf("ERROR", "%v", err)
		return faFailed
	}
	if o.action == "validate-all" {
		return faOK
	}
	return r.fence()
}

// validate checks that the options name a BMC and how to log in.
func (o *faOptions) validate() error {
	switch {
	case o.ip == "":
		return errors.New("Failed: You have to enter fence address: give ip=ADDRESS (or -a)")
	case o.credentials != "" && (o.given["username"] || o.given["password"] || o.given["password_script"]):
		return errors.New("credentials and username/password both given: give one of the two")
	case o.credentials != "":
		return nil
	case o.user == "":
		return errors.New("Failed: You have to set login name: give username=NAME (or -l), or credentials=FILE")
	case o.password == "" && o.passwordScript == "":
		return errors.New("Failed: You have to enter password or password script: give password=, password_script= or credentials=FILE")
	case o.password != "" && o.passwordScript != "":
		return errors.New("password and password_script both given: give one of the two")
	}
	return nil
}

// credentials loads or assembles the BMC credentials.
func (r *faRun) credentials(ctx context.Context) (ipmi.Credentials, error) {
	var c ipmi.Credentials
	var warnings []string
	var err error
	switch {
	case r.o.credentials != "":
		c, warnings, err = r.env.loadCreds(r.o.credentials)
	case r.o.passwordScript != "":
		c.User = r.o.user
		c.Password, err = r.env.runScript(ctx, r.o.passwordScript)
	default:
		c = ipmi.Credentials{User: r.o.user, Password: r.o.password}
	}
	if err == nil && r.o.credentials == "" {
		warnings, err = c.Check()
	}
	for _, w := range warnings {
		r.logf("WARNING", "%s", w)
	}
	return c, err
}

// fence runs a power action: status, monitor, on, off or reboot.
func (r *faRun) fence() int {
	ctx := context.Background()
	o := r.o
	if (o.action == "off" || o.action == "reboot") && o.delay > 0 {
		r.debugf("delay %v before fencing", o.delay)
		if err := r.env.sleep(ctx, o.delay); err != nil {
			r.logf("ERROR", "%v", err)
			return faFailed
		}
	}
	cred, err := r.credentials(ctx)
	if err != nil {
		r.logf("ERROR", "%v", err)
		return faFailed
	}
	opts := ipmi.LANOptions{Privilege: o.privilege}
	if o.cipher != 0 {
		opts.CipherSuites = []int{o.cipher}
	}
	addr := net.JoinHostPort(o.ip, strconv.Itoa(o.port))
	r.debugf("connecting to %s as %s", addr, cred.User)
	bmc, err := r.env.dial(ctx, addr, cred, opts)
	if err != nil {
		r.logf("ERROR", "Unable to connect/login to fencing device: %v", err)
		return faFailed
	}
	defer bmc.Close()
	if l, ok := bmc.(interface{ CipherSuite() int }); ok {
		r.debugf("session with %s, cipher suite %d", addr, l.CipherSuite())
	}
	on, err := bmc.PowerStatus(ctx)
	if err != nil {
		r.logf("ERROR", "Failed: Unable to obtain correct plug status or plug is not available: %v", err)
		return faFailed
	}
	r.debugf("power is %s", faPowerWord(on))
	switch o.action {
	case "status":
		fmt.Fprintf(r.stdout, "Status: %s\n", strings.ToUpper(faPowerWord(on)))
		if !on {
			return faOff
		}
		return faOK
	case "monitor":
		return faOK
	case "on", "off":
		want := o.action == "on"
		if on == want {
			fmt.Fprintf(r.stdout, "Success: Already %s\n", strings.ToUpper(o.action))
			return faOK
		}
		if err := r.power(ctx, bmc, want); err != nil {
			r.logf("ERROR", "%v", err)
			return faFailed
		}
		fmt.Fprintf(r.stdout, "Success: Powered %s\n", strings.ToUpper(o.action))
		return faOK
	}
	// reboot: off, proven, then on. The host is fenced once it reads off;
	// a failed power-on is reported but is not a failed fence.
	if on {
		if err := r.power(ctx, bmc, false); err != nil {
			r.logf("ERROR", "%v", err)
			return faFailed
		}
	}
	if err := r.power(ctx, bmc, true); err != nil {
		r.logf("ERROR", "the host was fenced (it read off) but did not come back on: %v", err)
	}
	fmt.Fprintln(r.stdout, "Success: Rebooted")
	return faOK
}

// power switches the power and reads it back until it says so, within
// power_timeout: never trusting the command's answer alone.
func (r *faRun) power(ctx context.Context, bmc ipmi.BMC, on bool) error {
	c, err := confirmPower(ctx, bmc, on, r.o.powerWait, r.o.statusSleep, r.o.powerTimeout, r.env.now, r.env.sleep,
		func(reads int, err error) {
			if err != nil {
				r.debugf("power state read %d: %v", reads, err)
			}
		})
	switch {
	case err == nil:
		r.debugf("power reads %s after %v (%d reads)", faPowerWord(on), c.took, c.reads)
		return nil
	case errors.Is(err, errPowerTimeout):
		last := "it still reads " + faPowerWord(!on)
		if c.lastErr != nil {
			last = "last read: " + c.lastErr.Error()
		}
		return fmt.Errorf("Failed: Timed out waiting to power %s: %d reads in %v, %s (fix: check the BMC, or raise power_timeout)",
			strings.ToUpper(faPowerWord(on)), c.reads, r.o.powerTimeout, last)
	}
	return fmt.Errorf("Failed: %w", err) // the command itself failed
}

func faPowerWord(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// faMetadata is the fence-agents metadata: the resource-agent element
// with its parameters and actions, as fencing.py prints it.
func faMetadata() string {
	var b bytes.Buffer
	esc := func(s string) string {
		var e bytes.Buffer
		xml.EscapeText(&e, []byte(s))
		return strings.ReplaceAll(e.String(), `"`, "&quot;")
	}
	b.WriteString(`<?xml version="1.0" ?>` + "\n")
	fmt.Fprintf(&b, "<resource-agent name=%q shortdesc=%q >\n", FenceAgentName, "Fence agent for IPMI over LAN (RMCP+), by vigil")
	b.WriteString("<longdesc>" + esc("fence_vigil powers a host off, on or off-then-on through its BMC with IPMI 2.0 (RMCP+, cipher suite 17 if the BMC has it, else 3; never an unauthenticated or unencrypted one), and after a power command reads the power state back until it says so. It takes fence_ipmilan's options.") + "</longdesc>\n")
	b.WriteString("<vendor-url>https://github.com/vigil-ha/vigil</vendor-url>\n<parameters>\n")
	write := func(p faParam, name string, deprecated bool) {
		info := ""
		if deprecated {
			info = ` deprecated="1"`
		}
		req := "0"
		if p.required && !deprecated {
			req = "1"
		}
		fmt.Fprintf(&b, "\t<parameter name=%q unique=\"0\" required=%q%s>\n", name, req, info)
		mixed := "--" + p.long
		if p.short != "" {
			mixed = "-" + p.short + ", " + mixed
		}
		if p.kind != "boolean" {
			mixed += "=[" + p.name + "]"
		}
		fmt.Fprintf(&b, "\t\t<getopt mixed=\"%s\" />\n", esc(mixed))
		def := ""
		if p.def != "" {
			def = fmt.Sprintf(`default="%s" `, esc(p.def))
		}
		if p.kind == "select" {
			fmt.Fprintf(&b, "\t\t<content type=\"select\" %s >\n", def)
			for _, c := range p.choices {
				fmt.Fprintf(&b, "\t\t\t<option value=\"%s\" />\n", esc(c))
			}
			b.WriteString("\t\t</content>\n")
		} else {
			fmt.Fprintf(&b, "\t\t<content type=\"%s\" %s />\n", p.kind, def)
		}
		fmt.Fprintf(&b, "\t\t<shortdesc lang=\"en\">%s</shortdesc>\n\t</parameter>\n", esc(p.shortdesc))
	}
	for _, p := range faParams {
		write(p, p.name, false)
		for _, a := range p.aliases {
			write(p, a, true)
		}
	}
	b.WriteString("</parameters>\n<actions>\n\t<action name=\"on\" automatic=\"0\"/>\n")
	for _, a := range faActions[1:] {
		fmt.Fprintf(&b, "\t<action name=%q />\n", a)
	}
	b.WriteString("</actions>\n</resource-agent>\n")
	return b.String()
}
