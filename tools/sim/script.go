package sim

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/fence/cluster"
)

// DefaultEnd is a script's end time when it has no `run` line.
const DefaultEnd = 60 * time.Second

// Script is a parsed command file: one command per line, `TIME COMMAND
// ARGS` with TIME a Go duration since the start, in time order; `set KEY
// VALUE` and `run DURATION` carry no time; `#` starts a comment.
//
//	set vm-boot 2s
//	5s poweroff h2
//	30s poweron h2
//	run 90s
type Script struct {
	Params Params
	End    time.Duration
	Cmds   []Cmd
}

// Cmd is one timed command. Unused host, VM, link and datastore fields are
// -1; a link or datastore of -1 also means "all".
type Cmd struct {
	At    time.Duration
	Line  int
	Text  string // the command as written, without its time
	Op    string
	H, H2 int
	VM    int
	L     int
	N     int
	D     time.Duration
	Mode  string
	Group []int // partition: the group of every host
}

// Names are the link and datastore names a script may use besides their
// indexes (from the cluster file).
type Names struct{ Links, Datastores []string }

// usage lists every command with its arguments, for error messages.
var usage = map[string]string{
	"poweroff":    "HOST",
	"poweron":     "HOST",
	"reset":       "HOST",
	"freeze":      "HOST",
	"thaw":        "HOST",
	"restart":     "HOST",
	"drift":       "HOST PPM",
	"cut":         "HOST LINK",
	"heal":        "HOST LINK",
	"oneway":      "FROM TO [LINK]",
	"twoway":      "FROM TO [LINK]",
	"loss":        "HOST LINK PERCENT",
	"delay":       "HOST LINK DURATION",
	"partition":   "HOST,HOST|HOST,HOST[|...]",
	"unpartition": "",
	"gateway":     "LINK down|up",
	"ds":          "fail|hang|heal DATASTORE [HOST], or slow DATASTORE DURATION [HOST]",
	"bmc":         "HOST unreachable|liar|ok",
	"vmfail":      "VM",
	"vmok":        "VM",
	"crash":       "VM",
	"hvfail":      "HOST",
	"hvok":        "HOST",
	"maintenance": "enter|exit HOST",
}

type parser struct {
	spec  *cluster.Spec
	names Names
}

// ParseScript parses a command file against a cluster, starting from the
// parameters p. Errors name the file and line and say how to fix it.
func ParseScript(file, src string, spec *cluster.Spec, names Names, p Params) (*Script, error) {
	ps := parser{spec: spec, names: names}
	s := &Script{Params: p, End: DefaultEnd}
	var errs []error
	var last time.Duration
	for i, raw := range strings.Split(src, "\n") {
		line := raw
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		fail := func(format string, a ...any) {
			errs = append(errs, fmt.Errorf("%s:%d: %s", file, i+1, fmt.Sprintf(format, a...)))
		}
		switch f[0] {
		case "set":
			if err := ps.set(&s.Params, f[1:]); err != nil {
				fail("%v", err)
			}
			continue
		case "run":
			d, err := duration(f[1:])
			if err != nil {
				fail("run: %v; write e.g. \"run 90s\"", err)
			}
			s.End = d
			continue
		}
		at, err := time.ParseDuration(f[0])
		if err != nil || at < 0 {
			fail("%q is not a time: start the line with a duration since the start, e.g. \"5s %s\"", f[0], strings.Join(f, " "))
			continue
		}
		if at < last {
			fail("%v comes before the previous command's %v: keep the lines in time order", at, last)
			continue
		}
		last = at
		c := Cmd{At: at, Line: i + 1, Text: strings.Join(f[1:], " "), H: -1, H2: -1, VM: -1, L: -1}
		if len(f) < 2 {
			fail("no command after the time: write e.g. \"%s poweroff HOST\"", f[0])
			continue
		}
		c.Op = f[1]
		u, ok := usage[c.Op]
		if !ok {
			fail("unknown command %q: use one of %s", c.Op, strings.Join(commandNames(), ", "))
			continue
		}
		if err := ps.cmd(&c, f[2:]); err != nil {
			fail("%s: %v; usage: TIME %s %s", c.Op, err, c.Op, u)
			continue
		}
		s.Cmds = append(s.Cmds, c)
	}
	if len(errs) == 0 && len(s.Cmds) > 0 && s.Cmds[len(s.Cmds)-1].At > s.End {
		c := s.Cmds[len(s.Cmds)-1]
		errs = append(errs, fmt.Errorf("%s:%d: command at %v is after the end (%v): raise the \"run\" line", file, c.Line, c.At, s.End))
	}
	return s, errors.Join(errs...)
}

func commandNames() []string {
	var ns []string
	for n := range usage {
		ns = append(ns, n)
	}
	sortStrings(ns)
	return ns
}

func duration(args []string) (time.Duration, error) {
	if len(args) != 1 {
		return 0, errors.New("want one duration")
	}
	d, err := time.ParseDuration(args[0])
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration", args[0])
	}
	return d, nil
}

func (ps *parser) set(p *Params, args []string) error {
	if len(args) != 2 {
		return errors.New("set wants KEY VALUE, e.g. \"set vm-boot 2s\"; keys: vm-boot, host-boot, net-latency, ds-latency, seed")
	}
	if args[0] == "seed" {
		n, err := strconv.ParseInt(args[1], 10, 64)
		if err != nil {
			return fmt.Errorf("set seed: %q is not an integer", args[1])
		}
		p.Seed = n
		return nil
	}
	var dst *time.Duration
	switch args[0] {
	case "vm-boot":
		dst = &p.VMBoot
	case "host-boot":
		dst = &p.HostBoot
	case "net-latency":
		dst = &p.NetLatency
	case "ds-latency":
		dst = &p.DSLatency
	default:
		return fmt.Errorf("set: unknown key %q: use vm-boot, host-boot, net-latency, ds-latency or seed", args[0])
	}
	d, err := duration(args[1:])
	if err != nil {
		return fmt.Errorf("set %s: %v", args[0], err)
	}
	*dst = d
	return nil
}

func (ps *parser) cmd(c *Cmd, a []string) error {
	want := func(min, max int) error {
		if len(a) < min || len(a) > max {
			return fmt.Errorf("wrong number of arguments (%d)", len(a))
		}
		return nil
	}
	var err error
	switch c.Op {
	case "poweroff", "poweron", "reset", "freeze", "thaw", "restart", "hvfail", "hvok":
		if err = want(1, 1); err == nil {
			c.H, err = ps.host(a[0])
		}
	case "vmfail", "vmok", "crash":
		if err = want(1, 1); err == nil {
			c.VM, err = ps.vm(a[0])
		}
	case "unpartition":
		err = want(0, 0)
	case "drift", "cut", "heal", "loss", "delay":
		n := 3
		if c.Op == "cut" || c.Op == "heal" || c.Op == "drift" {
			n = 2
		}
		if err = want(n, n); err != nil {
			break
		}
		if c.H, err = ps.host(a[0]); err != nil {
			break
		}
		switch c.Op {
		case "drift":
			c.L = -1
			c.N, err = ps.int(a[1], -100000, 100000, "PPM")
		default:
			if c.L, err = ps.link(a[1]); err != nil || n == 2 {
				break
			}
			if c.Op == "loss" {
				c.N, err = ps.int(a[2], 0, 100, "PERCENT")
			} else {
				c.D, err = duration(a[2:])
			}
		}
	case "oneway", "twoway":
		if err = want(2, 3); err != nil {
			break
		}
		if c.H, err = ps.host(a[0]); err == nil {
			c.H2, err = ps.host(a[1])
		}
		if err == nil && len(a) == 3 {
			c.L, err = ps.link(a[2])
		}
	case "partition":
		if err = want(1, 1); err == nil {
			c.Group, err = ps.partition(a[0])
		}
	case "gateway":
		if err = want(2, 2); err != nil {
			break
		}
		if c.L, err = ps.link(a[0]); err == nil {
			c.Mode, err = oneOf(a[1], "down", "up")
		}
	case "bmc":
		if err = want(2, 2); err != nil {
			break
		}
		if c.H, err = ps.host(a[0]); err == nil {
			c.Mode, err = oneOf(a[1], "unreachable", "liar", "ok")
		}
	case "maintenance":
		if err = want(2, 2); err != nil {
			break
		}
		if c.Mode, err = oneOf(a[0], "enter", "exit"); err == nil {
			c.H, err = ps.host(a[1])
		}
	case "ds":
		err = ps.ds(c, a)
	}
	return err
}

func (ps *parser) ds(c *Cmd, a []string) error {
	if len(a) < 2 {
		return fmt.Errorf("wrong number of arguments (%d)", len(a))
	}
	var err error
	if c.Mode, err = oneOf(a[0], "fail", "hang", "slow", "heal"); err != nil {
		return err
	}
	if c.L, err = ps.datastore(a[1]); err != nil {
		return err
	}
	rest := a[2:]
	if c.Mode == "slow" {
		if len(rest) == 0 {
			return errors.New("slow needs a DURATION")
		}
		if c.D, err = duration(rest[:1]); err != nil {
			return err
		}
		rest = rest[1:]
	}
	switch len(rest) {
	case 0:
		return nil
	case 1:
		c.H, err = ps.host(rest[0])
		return err
	}
	return fmt.Errorf("wrong number of arguments (%d)", len(a))
}

func oneOf(s string, options ...string) (string, error) {
	for _, o := range options {
		if s == o {
			return s, nil
		}
	}
	return "", fmt.Errorf("%q is not one of %s", s, strings.Join(options, ", "))
}

func (ps *parser) int(s string, min, max int, what string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < min || n > max {
		return 0, fmt.Errorf("%s %q is not an integer in [%d, %d]", what, s, min, max)
	}
	return n, nil
}

func (ps *parser) host(s string) (int, error) {
	var names []string
	for i, h := range ps.spec.Hosts {
		if h.Name == s {
			return i, nil
		}
		names = append(names, h.Name)
	}
	return -1, fmt.Errorf("unknown host %q (hosts: %s)", s, strings.Join(names, ", "))
}

func (ps *parser) vm(s string) (int, error) {
	var names []string
	for i, v := range ps.spec.VMs {
		if v.Name == s {
			return i, nil
		}
		if len(names) < 8 {
			names = append(names, v.Name)
		}
	}
	return -1, fmt.Errorf("unknown VM %q (VMs: %s...)", s, strings.Join(names, ", "))
}

func (ps *parser) link(s string) (int, error) {
	return index(s, ps.spec.Links, ps.names.Links, "link")
}

func (ps *parser) datastore(s string) (int, error) {
	return index(s, ps.spec.Datastores, ps.names.Datastores, "datastore")
}

// index resolves a link or datastore given by name or by index.
func index(s string, n int, names []string, what string) (int, error) {
	for i, name := range names {
		if name == s {
			return i, nil
		}
	}
	if i, err := strconv.Atoi(s); err == nil && i >= 0 && i < n {
		return i, nil
	}
	hint := fmt.Sprintf("an index from 0 to %d", n-1)
	if len(names) > 0 {
		hint += " or one of " + strings.Join(names, ", ")
	}
	return -1, fmt.Errorf("unknown %s %q: use %s", what, s, hint)
}

// partition parses "h1,h2|h3,h4": hosts not named join the first group.
func (ps *parser) partition(s string) ([]int, error) {
	g := make([]int, len(ps.spec.Hosts))
	seen := make([]bool, len(ps.spec.Hosts))
	parts := strings.Split(s, "|")
	if len(parts) < 2 {
		return nil, errors.New("name at least two groups separated by |")
	}
	for gi, part := range parts {
		for _, name := range strings.Split(part, ",") {
			h, err := ps.host(name)
			if err != nil {
				return nil, err
			}
			if seen[h] {
				return nil, fmt.Errorf("host %q is in two groups", name)
			}
			seen[h], g[h] = true, gi
		}
	}
	return g, nil
}
