//go:build !vigil_noipmilan

package cli

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/drivers/ipmi"
)

// The fence agent's options, as Pacemaker's fencer passes them on standard
// input (name=value lines) and as fence_ipmilan takes them on its command
// line. One table drives both parsers and the metadata.

// faOptions are the parsed options of one run.
type faOptions struct {
	action         string
	ip             string
	port           int
	user           string
	password       string
	passwordScript string
	credentials    string // vigil's credentials file
	cipher         int    // 0: negotiate (17, then 3)
	privilege      ipmi.Privilege
	powerTimeout   time.Duration
	powerWait      time.Duration
	statusSleep    time.Duration
	delay          time.Duration
	verbose        bool
	given          map[string]bool // parameters given, by name
}

// faParam is one parameter: its stdin name (the metadata's), older
// stdin names, command-line flags, content type and default.
type faParam struct {
	name       string
	aliases    []string // deprecated stdin names
	short      string   // one letter, for -x
	long       string   // for --long
	kind       string   // string, integer, second, boolean, select
	choices    []string // for select
	def        string
	required   bool
	ignored    bool // accepted and ignored (IPMI has no plugs)
	shortdesc  string
	set        func(o *faOptions, v string) error
	deprecated bool
}

var faActions = []string{"on", "off", "reboot", "status", "monitor", "list", "metadata", "validate-all"}

var faParams = []faParam{
	{name: "action", aliases: []string{"option"}, short: "o", long: "action", kind: "string", def: "reboot", required: true,
		shortdesc: "Fencing action: on, off, reboot, status, monitor, list, metadata or validate-all", set: func(o *faOptions, v string) error {
			v = strings.ToLower(v)
			if v == "meta-data" { // the OCF spelling
				v = "metadata"
			}
			for _, a := range faActions {
				if v == a {
					o.action = v
					return nil
				}
			}
			return fmt.Errorf("unknown action %q: give one of %s", v, strings.Join(faActions, ", "))
		}},
	{name: "ip", aliases: []string{"ipaddr"}, short: "a", long: "ip", kind: "string", required: true,
		shortdesc: "IP address or hostname of the BMC", set: func(o *faOptions, v string) error { o.ip = v; return nil }},
	{name: "ipport", short: "u", long: "ipport", kind: "integer", def: "623",
		shortdesc: "UDP port of the BMC", set: func(o *faOptions, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 65535 {
				return fmt.Errorf("ipport %q is not a port: give a number from 1 to 65535 (623 by default)", v)
			}
			o.port = n
			return nil
		}},
	{name: "username", aliases: []string{"login"}, short: "l", long: "username", kind: "string",
		shortdesc: "BMC user (or use credentials)", set: func(o *faOptions, v string) error { o.user = v; return nil }},
	{name: "password", aliases: []string{"passwd"}, short: "p", long: "password", kind: "string",
		shortdesc: "BMC password (or use password_script, or credentials)", set: func(o *faOptions, v string) error { o.password = v; return nil }},
	{name: "password_script", aliases: []string{"passwd_script"}, short: "S", long: "password-script", kind: "string",
		shortdesc: "Command whose first line of output is the password", set: func(o *faOptions, v string) error { o.passwordScript = v; return nil }},
	{name: "credentials", long: "credentials", kind: "string",
		shortdesc: "vigil credentials file (lines \"user NAME\" and \"password SECRET\", mode 0600) instead of username and password",
		set:       func(o *faOptions, v string) error { o.credentials = v; return nil }},
	{name: "lanplus", short: "P", long: "lanplus", kind: "boolean", def: "1",
		shortdesc: "IPMI 2.0 (RMCP+), the only protocol used", set: func(o *faOptions, v string) error {
			on, err := faBool("lanplus", v)
			if err == nil && !on {
				err = fmt.Errorf("lanplus=%s asks for IPMI 1.5, whose sessions are neither encrypted nor integrity-checked: enable IPMI 2.0 on the BMC and drop lanplus (it is always on)", v)
			}
			return err
		}},
	{name: "cipher", short: "C", long: "cipher", kind: "integer",
		shortdesc: "RMCP+ cipher suite (default: 17 if the BMC has it, else 3)", set: func(o *faOptions, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("cipher %q is not a number: give a cipher suite such as 17 or 3", v)
			}
			if err := ipmi.CheckCipherSuite(n); err != nil {
				return err
			}
			o.cipher = n
			return nil
		}},
	{name: "privlvl", short: "L", long: "privlvl", kind: "select", choices: []string{"operator", "administrator"}, def: "administrator",
		shortdesc: "Session privilege (operator is enough)", set: func(o *faOptions, v string) error {
			switch strings.ToLower(v) {
			case "operator":
				o.privilege = ipmi.PrivilegeOperator
			case "administrator":
				o.privilege = ipmi.PrivilegeAdministrator
			default:
				return fmt.Errorf("privlvl %q cannot control power: give operator or administrator", v)
			}
			return nil
		}},
	{name: "method", short: "m", long: "method", kind: "select", choices: []string{"onoff"}, def: "onoff",
		shortdesc: "Reboot method: off (read back off), then on", set: func(o *faOptions, v string) error {
			if strings.ToLower(v) != "onoff" {
				return fmt.Errorf("method %q: a power cycle may be answered before the host is off, so only onoff is supported: drop method", v)
			}
			return nil
		}},
	{name: "power_timeout", long: "power-timeout", kind: "second", def: "20",
		shortdesc: "Seconds to wait for the BMC to read the new power state", set: faSeconds(func(o *faOptions) *time.Duration { return &o.powerTimeout })},
	{name: "power_wait", long: "power-wait", kind: "second", def: "0",
		shortdesc: "Seconds to wait after a power command before reading the state", set: faSeconds(func(o *faOptions) *time.Duration { return &o.powerWait })},
	{name: "stonith_status_sleep", long: "stonith-status-sleep", kind: "second", def: "1",
		shortdesc: "Seconds between power state reads", set: faSeconds(func(o *faOptions) *time.Duration { return &o.statusSleep })},
	{name: "delay", long: "delay", kind: "second", def: "0",
		shortdesc: "Seconds to wait before off or reboot (two-node clusters)", set: faSeconds(func(o *faOptions) *time.Duration { return &o.delay })},
	{name: "plug", aliases: []string{"port"}, short: "n", long: "plug", kind: "string", ignored: true,
		shortdesc: "Ignored: a BMC powers one host", set: func(*faOptions, string) error { return nil }},
	{name: "verbose", short: "v", long: "verbose", kind: "boolean", def: "0",
		shortdesc: "Log each step on standard error", set: func(o *faOptions, v string) error {
			on, err := faBool("verbose", v)
			o.verbose = on
			return err
		}},
}

func faSeconds(field func(*faOptions) *time.Duration) func(*faOptions, string) error {
	return func(o *faOptions, v string) error {
		s, err := strconv.ParseFloat(v, 64)
		if err != nil || s < 0 || math.IsInf(s, 0) || s > 86400 {
			return fmt.Errorf("%q is not a time in seconds: give a number such as 20 or 0.5", v)
		}
		*field(o) = time.Duration(s * float64(time.Second))
		return nil
	}
}

func faBool(name, v string) (bool, error) {
	switch strings.ToLower(v) {
	case "", "1", "yes", "on", "true":
		return true, nil
	case "0", "no", "off", "false":
		return false, nil
	}
	return false, fmt.Errorf("%s=%q is not a boolean: give 1 or 0", name, v)
}

// faDefaults are the defaults.
func faDefaults() *faOptions {
	o := &faOptions{given: map[string]bool{}}
	for _, p := range faParams {
		if p.def != "" {
			if err := p.set(o, p.def); err != nil {
				panic("fence-agent: default of " + p.name + ": " + err.Error())
			}
		}
	}
	return o
}

// faFindParam finds a parameter by stdin name (fence-agents also take '-'
// for '_'), and says whether the name is a deprecated one.
func faFindParam(name string) (*faParam, bool) {
	name = strings.ReplaceAll(name, "-", "_")
	for i := range faParams {
		p := &faParams[i]
		if p.name == name || strings.ReplaceAll(p.long, "-", "_") == name {
			return p, false
		}
		for _, a := range p.aliases {
			if a == name {
				return p, true
			}
		}
	}
	return nil, false
}

// setParam sets p from v, naming it as the input did.
func (o *faOptions) setParam(p *faParam, as, v string) error {
	if err := p.set(o, v); err != nil {
		return fmt.Errorf("%s: %w", as, err)
	}
	o.given[p.name] = true
	return nil
}

// faParseStdin reads name=value lines, as the fencer writes them: blank
// lines and '#' comments are skipped, surrounding double quotes dropped,
// nodename and unknown names ignored with a warning (never their value).
func faParseStdin(r io.Reader, warn func(string)) (*faOptions, error) {
	o := faDefaults()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, value, _ := strings.Cut(line, "=")
		name = strings.TrimSpace(name)
		if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
			value = value[1 : len(value)-1]
		}
		p, _ := faFindParam(name)
		switch {
		case p == nil && name == "nodename":
			continue
		case p == nil:
			warn(fmt.Sprintf("ignoring unknown option %q", name))
			continue
		}
		if err := o.setParam(p, name, value); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("standard input: %w", err)
	}
	return o, nil
}

// faParseArgs reads command-line options: -x VALUE, -xVALUE,
// --long=VALUE, --long VALUE; booleans take no value. It returns help for
// -h and --help.
func faParseArgs(args []string) (o *faOptions, help bool, err error) {
	o = faDefaults()
	for i := 0; i < len(args); i++ {
		a := args[i]
		var p *faParam
		var value string
		hasValue := false
		switch {
		case a == "-h" || a == "--help":
			return o, true, nil
		case strings.HasPrefix(a, "--"):
			name := a[2:]
			name, value, hasValue = strings.Cut(name, "=")
			for j := range faParams {
				if faParams[j].long == name {
					p = &faParams[j]
				}
			}
		case strings.HasPrefix(a, "-") && len(a) >= 2:
			for j := range faParams {
				if faParams[j].short == a[1:2] {
					p = &faParams[j]
				}
			}
			if len(a) > 2 {
				value, hasValue = a[2:], true
			}
		default:
			return nil, false, fmt.Errorf("unexpected argument %q: options are -x VALUE or --name=VALUE", a)
		}
		if p == nil {
			return nil, false, fmt.Errorf("unknown option %q: see vigil fence-agent --help", a)
		}
		if p.kind == "boolean" && !hasValue {
			value, hasValue = "1", true
		}
		if !hasValue {
			if i+1 >= len(args) {
				return nil, false, fmt.Errorf("option %s needs a value", a)
			}
			i++
			value = args[i]
		}
		if err := o.setParam(p, a, value); err != nil {
			return nil, false, err
		}
	}
	return o, false, nil
}

// fenceAgentUsage is the --help text, from the table.
func fenceAgentUsage() string {
	var b strings.Builder
	b.WriteString(`usage: vigil fence-agent [OPTIONS]      (options on the command line)
       vigil fence-agent < NAME=VALUE lines  (as Pacemaker's fencer runs fence agents)

A fence agent for Pacemaker with fence_ipmilan's options, over vigil's IPMI
driver (IPMI 2.0, cipher suite 17 or 3). off powers the host off and reads
the power state back until it says off; reboot is off, read back off, then
on. Installed as fence_vigil (a link to vigil), it runs as this command.

Exit status: 0 success (status: on), 2 status: off, 1 any failure.

options:
`)
	params := append([]faParam(nil), faParams...)
	sort.SliceStable(params, func(i, j int) bool { return params[i].name == "action" && params[j].name != "action" })
	for _, p := range params {
		flag := "    "
		if p.short != "" {
			flag = "-" + p.short + ", "
		}
		flag += "--" + p.long
		if p.kind != "boolean" {
			flag += "=" + strings.ToUpper(p.kind)
		}
		desc := p.shortdesc
		if p.def != "" && p.kind != "boolean" {
			desc += " (default " + p.def + ")"
		}
		if p.kind == "select" && p.name != "method" {
			desc += ": " + strings.Join(p.choices, ", ")
		}
		fmt.Fprintf(&b, "  %-34s %s\n", flag, desc)
	}
	b.WriteString("\nOn standard input the names are the long ones with '_' (ip=, username=,\npassword_script=...); ipaddr=, login=, passwd=, option= and port= are\nalso taken.\n")
	return b.String()
}
