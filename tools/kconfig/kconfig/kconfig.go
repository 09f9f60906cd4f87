// Package kconfig reads the subset of the Linux Kconfig language that
// vigil's build-time features use, and resolves, reads and writes .config
// files as the kernel's kconfig tools do, for bool symbols:
//
//	k, err := kconfig.Parse("Kconfig", f)
//	as, err := kconfig.ReadConfig("configs/minimal_defconfig", d)
//	user, unknown := k.Known(as)
//	cfg := k.Resolve(user)        // defaults, depends on, select
//	err = cfg.Write(out)          // a full .config
//	tags := cfg.Tags()            // vigil_noebpf, ...
//
// The language: mainmenu, menu/endmenu (with depends on), if/endif,
// config/menuconfig with bool or def_bool, prompt, default [if],
// depends on, select [if], help, and comment. Expressions are over bool
// symbols: y, n, !, &&, || and parentheses. Every symbol's help ends with
// the line "Go build tag: TAG", the tag that leaves the feature out.
//
// A symbol's value, as in Linux: when its prompt is visible (its
// dependencies hold) a value the user gave wins, else its first default
// whose condition holds; a symbol whose dependencies fail is n; a symbol
// another one selects is y.
package kconfig

import "strings"

// Kconfig is a parsed Kconfig file.
type Kconfig struct {
	// MainMenu is the mainmenu title.
	MainMenu string
	// Symbols are the config entries in file order.
	Symbols []*Symbol

	byName map[string]*Symbol
}

// Menu is a menu block.
type Menu struct {
	Prompt    string
	Line      int
	DependsOn Expr // nil: none
}

// Symbol is one bool config entry.
type Symbol struct {
	Name      string
	Prompt    string // empty: the user cannot set it
	PromptIf  Expr   // the prompt's own condition; nil: none
	Typed     bool   // it has a bool type
	Defaults  []Default
	DependsOn Expr // its and its menus' dependencies; nil: none
	Selects   []Select
	Help      string
	Tag       string // the Go build tag that removes it
	Menu      *Menu  // the innermost menu holding it; nil: top level
	Line      int

	revDep []Select // the symbols that select this one
}

// Default is one default line: Value if the If condition holds.
type Default struct {
	Value Expr
	If    Expr // nil: always
}

// Select is a select line: Name is forced y while the selector is y and
// If holds.
type Select struct {
	Name string
	If   Expr // nil: always
	Line int
}

// Lookup returns the symbol called name, or nil.
func (k *Kconfig) Lookup(name string) *Symbol { return k.byName[name] }

// HelpSummary is the first sentence of the help, on one line.
func (s *Symbol) HelpSummary() string {
	out := ""
	for _, l := range splitLines(s.Help) {
		if l == "" {
			break
		}
		if out != "" {
			out += " "
		}
		out += l
	}
	if i := strings.Index(out, ". "); i >= 0 {
		out = out[:i+1]
	}
	return out
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// reads lists the symbols s's value is computed from.
func (k *Kconfig) reads(s *Symbol) []string {
	refs := exprSymbols(s.DependsOn, nil)
	refs = exprSymbols(s.PromptIf, refs)
	for _, d := range s.Defaults {
		refs = exprSymbols(d.If, exprSymbols(d.Value, refs))
	}
	for _, r := range s.revDep {
		refs = exprSymbols(r.If, append(refs, r.Name))
	}
	return refs
}

// Config is a resolved configuration: every symbol's value.
type Config struct {
	k     *Kconfig
	Value map[string]bool
}

// Resolve computes every symbol's value from the values a user gave
// (a defconfig's or an old .config's lines; symbols left out take their
// defaults).
func (k *Kconfig) Resolve(user map[string]bool) *Config {
	c := &Config{k: k, Value: map[string]bool{}}
	done := map[string]bool{}
	var get func(name string) bool
	get = func(name string) bool {
		if done[name] {
			return c.Value[name]
		}
		s := k.byName[name]
		v, set := user[name]
		if !(set && s.visible(get)) {
			v = s.defaultValue(get)
		}
		v = v || s.selected(get)
		c.Value[name], done[name] = v, true
		return v
	}
	for _, s := range k.Symbols {
		get(s.Name)
	}
	return c
}

// visible reports whether the user can set s.
func (s *Symbol) visible(val func(string) bool) bool {
	return s.Prompt != "" && eval(s.DependsOn, val) && eval(s.PromptIf, val)
}

// defaultValue is s's value when the user gave none: its first default
// whose condition holds, n when its dependencies fail.
func (s *Symbol) defaultValue(val func(string) bool) bool {
	if d, ok := s.activeDefault(val); ok {
		return d.Value.Eval(val)
	}
	return false
}

func (s *Symbol) activeDefault(val func(string) bool) (Default, bool) {
	if !eval(s.DependsOn, val) {
		return Default{}, false
	}
	for _, d := range s.Defaults {
		if eval(d.If, val) {
			return d, true
		}
	}
	return Default{}, false
}

// selected reports whether a symbol that is y selects s.
func (s *Symbol) selected(val func(string) bool) bool {
	return s.selector(val) != ""
}

// selector names a symbol that is y and selects s, or "".
func (s *Symbol) selector(val func(string) bool) string {
	for _, r := range s.revDep {
		if val(r.Name) && eval(r.If, val) {
			return r.Name
		}
	}
	return ""
}

// written reports whether a .config holds a line for s: Linux leaves out
// the symbols whose dependencies fail (they are n).
func (c *Config) written(s *Symbol) bool {
	val := c.get
	if s.visible(val) || s.selected(val) {
		return true
	}
	_, ok := s.activeDefault(val)
	return ok
}

func (c *Config) get(name string) bool { return c.Value[name] }

// Tags returns the Go build tags of the configuration: the tag of every
// symbol that is off, in Kconfig order.
func (c *Config) Tags() []string {
	var tags []string
	for _, s := range c.k.Symbols {
		if !c.Value[s.Name] {
			tags = append(tags, s.Tag)
		}
	}
	return tags
}

// Visible reports whether the user can set s in c: it has a prompt and
// its dependencies hold.
func (c *Config) Visible(s *Symbol) bool { return s.visible(c.get) }
