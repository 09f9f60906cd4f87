package kconfig

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Prefix starts every symbol's name in a .config.
const Prefix = "CONFIG_"

// Assignment is one line of a .config or defconfig.
type Assignment struct {
	Name  string // without CONFIG_
	Value bool
	Line  int
}

// ReadConfig reads the assignments of a .config or defconfig:
// CONFIG_X=y, CONFIG_X=n and "# CONFIG_X is not set"; other comments and
// blank lines are skipped. name is how errors name the file.
func ReadConfig(name string, r io.Reader) ([]Assignment, error) {
	var out []Assignment
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		bad := func(msg string) error { return &SyntaxError{File: name, Line: n, Msg: msg} }
		if l == "" {
			continue
		}
		if c, ok := strings.CutPrefix(l, "#"); ok {
			sym, isUnset := strings.CutSuffix(strings.TrimSpace(c), " is not set")
			if sym, ok := strings.CutPrefix(sym, Prefix); ok && isUnset {
				if !validName(sym) {
					return nil, bad(fmt.Sprintf("%q is not a symbol name", Prefix+sym))
				}
				out = append(out, Assignment{Name: sym, Value: false, Line: n})
			}
			continue
		}
		key, val, ok := strings.Cut(l, "=")
		sym, hasPrefix := strings.CutPrefix(key, Prefix)
		switch {
		case !ok || !hasPrefix || !validName(sym):
			return nil, bad(fmt.Sprintf("%q: want CONFIG_NAME=y, CONFIG_NAME=n or # CONFIG_NAME is not set", l))
		case val == "y":
			out = append(out, Assignment{Name: sym, Value: true, Line: n})
		case val == "n":
			out = append(out, Assignment{Name: sym, Value: false, Line: n})
		default:
			return nil, bad(fmt.Sprintf("%s=%s: vigil's symbols are bool: write %s=y or # %s is not set", key, val, key, key))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// Known splits assignments into the values of the Kconfig's symbols (a
// later line wins over an earlier one) and the assignments to symbols it
// does not define.
func (k *Kconfig) Known(as []Assignment) (user map[string]bool, unknown []Assignment) {
	user = map[string]bool{}
	for _, a := range as {
		if k.byName[a.Name] == nil {
			unknown = append(unknown, a)
			continue
		}
		user[a.Name] = a.Value
	}
	return user, unknown
}

// Write writes the configuration as a full .config, as Linux's kconfig
// does: every symbol whose dependencies hold, y or "is not set", under its
// menu's comment.
func (c *Config) Write(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "#\n# Automatically generated file; DO NOT EDIT.\n# %s\n#\n", c.k.MainMenu)
	var menu *Menu
	for _, s := range c.k.Symbols {
		if !c.written(s) {
			continue
		}
		if s.Menu != menu && s.Menu != nil {
			fmt.Fprintf(&b, "\n#\n# %s\n#\n", s.Menu.Prompt)
		}
		menu = s.Menu
		b.WriteString(line(s.Name, c.Value[s.Name]))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func line(name string, v bool) string {
	if v {
		return Prefix + name + "=y\n"
	}
	return "# " + Prefix + name + " is not set\n"
}

// SaveDefconfig writes the least defconfig that resolves to c: the lines
// of the symbols the user can set whose value is not their default.
func (c *Config) SaveDefconfig(w io.Writer) error {
	var b strings.Builder
	for _, s := range c.k.Symbols {
		if !s.visible(c.get) || s.selected(c.get) {
			continue
		}
		if v := c.Value[s.Name]; v != s.defaultValue(c.get) {
			b.WriteString(line(s.Name, v))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ConfigError is a .config that breaks the Kconfig's rules.
type ConfigError struct {
	File string
	Line int // 0: the symbol has no line
	Msg  string
}

func (e *ConfigError) Error() string {
	if e.Line == 0 {
		return e.File + ": " + e.Msg
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// Check takes a .config's assignments as they are, without resolving
// anything, and fails on the first that breaks the Kconfig: an unknown
// symbol, a y whose dependencies fail, an n that a y selects, a missing
// symbol whose dependencies hold. file names the .config in errors.
func (k *Kconfig) Check(file string, as []Assignment) (*Config, error) {
	user, unknown := k.Known(as)
	if len(unknown) > 0 {
		u := unknown[0]
		return nil, &ConfigError{File: file, Line: u.Line, Msg: fmt.Sprintf("unknown symbol %s%s: run make oldconfig to drop it", Prefix, u.Name)}
	}
	lines := map[string]int{}
	for _, a := range as {
		lines[a.Name] = a.Line
	}
	c := &Config{k: k, Value: user}
	for _, s := range k.Symbols {
		at := func(format string, args ...any) error {
			return &ConfigError{File: file, Line: lines[s.Name], Msg: fmt.Sprintf(format, args...)}
		}
		v, set := user[s.Name]
		deps := eval(s.DependsOn, c.get)
		switch {
		case !set && c.written(s):
			return nil, at("%s%s is missing: run make oldconfig to add it", Prefix, s.Name)
		case v && !deps && !s.selected(c.get):
			return nil, at("%s%s=y but it depends on %s, which this configuration does not meet (%s): enable those or disable %s%s (make menuconfig; make olddefconfig turns it off)",
				Prefix, s.Name, s.DependsOn, k.unmet(s.DependsOn, c.get), Prefix, s.Name)
		case !v && s.selected(c.get):
			return nil, at("%s%s is not set but %s%s selects it: set %s%s=y or disable %s%s (make menuconfig)",
				Prefix, s.Name, Prefix, s.selector(c.get), Prefix, s.Name, Prefix, s.selector(c.get))
		}
	}
	return c, nil
}

// unmet says which terms of a failed dependency (an && of terms) fail.
func (k *Kconfig) unmet(e Expr, val func(string) bool) string {
	var terms []Expr
	var flatten func(e Expr)
	flatten = func(e Expr) {
		if a, ok := e.(And); ok {
			flatten(a.X)
			flatten(a.Y)
			return
		}
		terms = append(terms, e)
	}
	flatten(e)
	var off []string
	for _, t := range terms {
		if t.Eval(val) {
			continue
		}
		switch t := t.(type) {
		case Sym:
			off = append(off, Prefix+string(t)+" is not set")
		case Not:
			if s, ok := t.X.(Sym); ok {
				off = append(off, Prefix+string(s)+"=y")
				continue
			}
			off = append(off, t.String()+" is n")
		default:
			off = append(off, t.String()+" is n")
		}
	}
	return strings.Join(off, ", ")
}
