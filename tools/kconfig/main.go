// Command kconfig manages vigil's build-time features from the Kconfig
// file, as the kernel's kconfig tools do, and generates firmware/features:
//
//	go run ./tools/kconfig defconfig configs/minimal_defconfig  # writes .config
//	go run ./tools/kconfig oldconfig      # keeps .config's values, adds new symbols
//	go run ./tools/kconfig savedefconfig  # writes defconfig: the non-default lines
//	go run ./tools/kconfig tags           # vigil_noebpf,vigil_nolab,...
//	go run ./tools/kconfig gen            # firmware/features/*.go
//
// Every command takes -kconfig FILE (default Kconfig) and the .config's
// path with -config (default $KCONFIG_CONFIG, else .config). oldconfig
// asks about new symbols when its standard input is a terminal, and
// takes their defaults otherwise (-defaults forces that, as olddefconfig).
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigil-ha/vigil/tools/kconfig/kconfig"
)

const usage = `usage: kconfig [-kconfig FILE] [-config FILE] COMMAND [ARGS]

commands:
  defconfig DEFCONFIG   write a full .config from a defconfig (only non-default lines)
  oldconfig [-defaults] update .config: keep its values, add new symbols, drop unknown ones
  savedefconfig [-o F]  write the least defconfig for .config (default: defconfig)
  tags                  print .config's Go build tags, comma-separated
  gen [-o DIR]          generate the features package (default: firmware/features)
`

func main() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})))
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kconfig:", err)
		os.Exit(1)
	}
}

// env is what the commands work on.
type env struct {
	kfile  string
	config string
	k      *kconfig.Kconfig
	stdin  io.Reader
	stdout io.Writer
	tty    bool // stdin is a terminal: oldconfig may ask
}

func run(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("kconfig", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	def := os.Getenv("KCONFIG_CONFIG")
	if def == "" {
		def = ".config"
	}
	e := &env{stdin: stdin, stdout: stdout}
	fs.StringVar(&e.kfile, "kconfig", "Kconfig", "the Kconfig file")
	fs.StringVar(&e.config, "config", def, "the .config file")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%v\n%s", err, usage)
	}
	if fs.NArg() == 0 {
		return errors.New("no command\n" + usage)
	}
	if f, ok := stdin.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			e.tty = true
		}
	}
	k, err := parseFile(e.kfile)
	if err != nil {
		return err
	}
	e.k = k
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	switch cmd {
	case "defconfig":
		return e.defconfig(rest)
	case "oldconfig", "olddefconfig":
		return e.oldconfig(rest, cmd == "olddefconfig")
	case "savedefconfig":
		return e.savedefconfig(rest)
	case "tags":
		return e.tags(rest)
	case "gen":
		return e.gen(rest)
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

func parseFile(name string) (*kconfig.Kconfig, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("%w: run from the repository's top, or name the file with -kconfig", err)
	}
	defer f.Close()
	return kconfig.Parse(name, f)
}

func readAssignments(name string) ([]kconfig.Assignment, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return kconfig.ReadConfig(name, f)
}

// noArgs fails on arguments a command does not take.
func noArgs(cmd string, fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%s: %v", cmd, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q\n%s", cmd, fs.Arg(0), usage)
	}
	return nil
}

func (e *env) defconfig(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("defconfig: name one defconfig file, such as configs/full_defconfig\n%s", usage)
	}
	as, err := readAssignments(args[0])
	if err != nil {
		return err
	}
	user, unknown := e.k.Known(as)
	if len(unknown) > 0 {
		return fmt.Errorf("%s:%d: unknown symbol %s%s: remove the line, or define the symbol in %s", args[0], unknown[0].Line, kconfig.Prefix, unknown[0].Name, e.kfile)
	}
	c := e.k.Resolve(user)
	for _, a := range as {
		if c.Value[a.Name] != a.Value {
			slog.Warn("a defconfig value did not hold: its dependencies decide", "file", args[0], "line", a.Line, "symbol", kconfig.Prefix+a.Name, "want", a.Value, "got", c.Value[a.Name])
		}
	}
	return e.writeConfig(c)
}

func (e *env) oldconfig(args []string, defaults bool) error {
	fs := flag.NewFlagSet("oldconfig", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&defaults, "defaults", defaults, "never ask: new symbols take their defaults")
	if err := noArgs("oldconfig", fs, args); err != nil {
		return err
	}
	as, err := readAssignments(e.config)
	if errors.Is(err, os.ErrNotExist) {
		slog.Info("no .config: starting from the defaults", "config", e.config)
	} else if err != nil {
		return err
	}
	user, unknown := e.k.Known(as)
	for _, u := range unknown {
		slog.Warn("dropping a symbol the Kconfig does not define", "config", e.config, "line", u.Line, "symbol", kconfig.Prefix+u.Name)
	}
	if e.tty && !defaults {
		if err := e.ask(user); err != nil {
			return err
		}
	}
	return e.writeConfig(e.k.Resolve(user))
}

// ask asks about each visible symbol that user does not set, in order.
func (e *env) ask(user map[string]bool) error {
	in := bufio.NewReader(e.stdin)
	for _, s := range e.k.Symbols {
		if _, set := user[s.Name]; set {
			continue
		}
		c := e.k.Resolve(user)
		if s.Prompt == "" || !c.Visible(s) {
			continue
		}
		def := c.Value[s.Name]
		for {
			choice := "y/N/?"
			if def {
				choice = "Y/n/?"
			}
			fmt.Fprintf(e.stdout, "%s (%s%s) [%s] (NEW) ", s.Prompt, kconfig.Prefix, s.Name, choice)
			l, err := in.ReadString('\n')
			if err != nil && l == "" {
				return fmt.Errorf("oldconfig: reading the answer: %w", err)
			}
			switch strings.ToLower(strings.TrimSpace(l)) {
			case "":
				user[s.Name] = def
			case "y", "yes":
				user[s.Name] = true
			case "n", "no":
				user[s.Name] = false
			case "?":
				fmt.Fprintf(e.stdout, "\n%s\n\n", s.Help)
				continue
			default:
				fmt.Fprintln(e.stdout, "answer y, n, ? (help) or return (the default)")
				continue
			}
			break
		}
	}
	return nil
}

// writeConfig writes c to the .config, keeping the old one as .config.old.
func (e *env) writeConfig(c *kconfig.Config) error {
	var b strings.Builder
	if err := c.Write(&b); err != nil {
		return err
	}
	if old, err := os.ReadFile(e.config); err == nil {
		if string(old) == b.String() {
			return nil
		}
		if err := os.WriteFile(e.config+".old", old, 0o644); err != nil {
			return err
		}
	}
	if err := writeFile(e.config, []byte(b.String())); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "# configuration written to %s\n", e.config)
	return nil
}

func (e *env) savedefconfig(args []string) error {
	fs := flag.NewFlagSet("savedefconfig", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	out := fs.String("o", "defconfig", "the defconfig to write")
	if err := noArgs("savedefconfig", fs, args); err != nil {
		return err
	}
	as, err := readAssignments(e.config)
	if err != nil {
		return fmt.Errorf("%w: run make defconfig first", err)
	}
	user, unknown := e.k.Known(as)
	for _, u := range unknown {
		slog.Warn("leaving out a symbol the Kconfig does not define", "config", e.config, "line", u.Line, "symbol", kconfig.Prefix+u.Name)
	}
	var b strings.Builder
	if err := e.k.Resolve(user).SaveDefconfig(&b); err != nil {
		return err
	}
	return writeFile(*out, []byte(b.String()))
}

func (e *env) tags(args []string) error {
	if err := noArgs("tags", flag.NewFlagSet("tags", flag.ContinueOnError), args); err != nil {
		return err
	}
	as, err := readAssignments(e.config)
	if err != nil {
		return fmt.Errorf("%w: run make defconfig (or make minimal_defconfig) first", err)
	}
	c, err := e.k.Check(e.config, as)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(e.stdout, strings.Join(c.Tags(), ","))
	return err
}

func (e *env) gen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dir := fs.String("o", filepath.Join("firmware", "features"), "the package's folder")
	if err := noArgs("gen", fs, args); err != nil {
		return err
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	files, err := e.k.Generate(filepath.Base(abs))
	if err != nil {
		return err
	}
	// Generated files the Kconfig no longer makes go away.
	old, err := filepath.Glob(filepath.Join(*dir, "*.go"))
	if err != nil {
		return err
	}
	for _, p := range old {
		if _, keep := files[filepath.Base(p)]; keep {
			continue
		}
		if data, err := os.ReadFile(p); err == nil && strings.HasPrefix(string(data), kconfig.GeneratedHeader) {
			if err := os.Remove(p); err != nil {
				return err
			}
		}
	}
	for _, n := range kconfig.SortedNames(files) {
		p := filepath.Join(*dir, n)
		if old, err := os.ReadFile(p); err == nil && string(old) == string(files[n]) {
			continue
		}
		if err := writeFile(p, files[n]); err != nil {
			return err
		}
	}
	return nil
}

// writeFile replaces name atomically.
func writeFile(name string, data []byte) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}
