package kconfig

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// SyntaxError is a Kconfig or .config line that does not parse.
type SyntaxError struct {
	File string
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// tagLine is how a symbol's help names the Go build tag that removes it.
var tagLine = regexp.MustCompile(`(?m)^Go build tag: *([A-Za-z0-9_]+) *$`)

// parser holds the state of one Parse.
type parser struct {
	file  string
	k     *Kconfig
	lines []string
	n     int // the line being read, 1-based

	menus []*Menu // open menus, innermost last
	ifs   []Expr  // open if blocks' conditions
	cur   *Symbol // the config entry being read
	menu  *Menu   // a menu whose attributes are being read
}

// Parse reads a Kconfig file; name is how errors name it.
func Parse(name string, r io.Reader) (*Kconfig, error) {
	p := &parser{file: name, k: &Kconfig{byName: map[string]*Symbol{}}}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		p.lines = append(p.lines, strings.TrimRight(sc.Text(), " \t\r"))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for p.n = 1; p.n <= len(p.lines); p.n++ {
		if err := p.line(p.lines[p.n-1]); err != nil {
			return nil, err
		}
	}
	switch {
	case len(p.menus) > 0:
		m := p.menus[len(p.menus)-1]
		return nil, &SyntaxError{File: name, Line: m.Line, Msg: fmt.Sprintf("menu %q has no endmenu", m.Prompt)}
	case len(p.ifs) > 0:
		return nil, p.errorf("an if block has no endif")
	}
	return p.k, p.k.check(name)
}

func (p *parser) errorf(format string, args ...any) error {
	return &SyntaxError{File: p.file, Line: p.n, Msg: fmt.Sprintf(format, args...)}
}

// line reads one line outside help text.
func (p *parser) line(raw string) error {
	s := strings.TrimSpace(raw)
	if s == "" || s[0] == '#' {
		return nil
	}
	word, rest, _ := strings.Cut(s, " ")
	if w, r, ok := strings.Cut(s, "\t"); ok && len(w) < len(word) {
		word, rest = w, r
	}
	rest = strings.TrimSpace(rest)
	switch word {
	case "mainmenu":
		v, err := p.prompt(rest)
		p.k.MainMenu = v
		return err
	case "menu":
		v, err := p.prompt(rest)
		m := &Menu{Prompt: v, Line: p.n}
		p.menus = append(p.menus, m)
		p.cur, p.menu = nil, m
		return err
	case "endmenu":
		if len(p.menus) == 0 {
			return p.errorf("endmenu without menu")
		}
		p.menus = p.menus[:len(p.menus)-1]
		p.cur, p.menu = nil, nil
		return nil
	case "if":
		e, err := p.expr(rest)
		p.ifs = append(p.ifs, e)
		p.cur, p.menu = nil, nil
		return err
	case "endif":
		if len(p.ifs) == 0 {
			return p.errorf("endif without if")
		}
		p.ifs = p.ifs[:len(p.ifs)-1]
		p.cur, p.menu = nil, nil
		return nil
	case "config", "menuconfig":
		return p.config(rest)
	case "comment":
		_, err := p.prompt(rest)
		p.cur, p.menu = nil, nil
		return err
	case "source", "rsource", "osource", "orsource":
		return p.errorf("%s is not supported: keep every symbol in this one file", word)
	}
	if p.menu != nil {
		return p.menuAttr(word, rest)
	}
	if p.cur == nil {
		return p.errorf("unexpected %q outside a config entry", word)
	}
	return p.attr(word, rest)
}

// config starts a config entry.
func (p *parser) config(name string) error {
	if !validName(name) {
		return p.errorf("config %q: a symbol name is letters, digits and '_'", name)
	}
	if old, dup := p.k.byName[name]; dup {
		return p.errorf("config %s is defined twice (first on line %d): keep one", name, old.Line)
	}
	s := &Symbol{Name: name, Line: p.n}
	for _, m := range p.menus {
		s.DependsOn = and(s.DependsOn, m.DependsOn)
	}
	if len(p.menus) > 0 {
		s.Menu = p.menus[len(p.menus)-1]
	}
	for _, c := range p.ifs {
		s.DependsOn = and(s.DependsOn, c)
	}
	p.k.Symbols = append(p.k.Symbols, s)
	p.k.byName[name] = s
	p.cur, p.menu = s, nil
	return nil
}

// menuAttr reads a menu's attribute.
func (p *parser) menuAttr(word, rest string) error {
	if word != "depends" {
		return p.errorf("unexpected %q in menu %q: a menu takes only depends on", word, p.menu.Prompt)
	}
	e, err := p.dependsOn(rest)
	p.menu.DependsOn = and(p.menu.DependsOn, e)
	return err
}

// attr reads an attribute of the current config entry.
func (p *parser) attr(word, rest string) error {
	s := p.cur
	switch word {
	case "bool", "def_bool":
		s.Typed = true
		if rest == "" {
			return nil
		}
		if word == "def_bool" {
			d, err := p.defaultValue(rest)
			s.Defaults = append(s.Defaults, d)
			return err
		}
		return p.setPrompt(rest)
	case "prompt":
		return p.setPrompt(rest)
	case "tristate", "string", "int", "hex", "def_tristate":
		return p.errorf("config %s: type %s is not supported: vigil's symbols are bool", s.Name, word)
	case "default":
		d, err := p.defaultValue(rest)
		s.Defaults = append(s.Defaults, d)
		return err
	case "depends":
		e, err := p.dependsOn(rest)
		s.DependsOn = and(s.DependsOn, e)
		return err
	case "select":
		name, cond, err := p.withIf(rest)
		if err == nil && !validName(name) {
			err = p.errorf("select %q: name a symbol", name)
		}
		s.Selects = append(s.Selects, Select{Name: name, If: cond, Line: p.n})
		return err
	case "help", "---help---":
		if rest != "" {
			return p.errorf("text after %s: start the help text on the next line, indented", word)
		}
		s.Help = p.help()
		return nil
	}
	return p.errorf("config %s: unknown attribute %q", s.Name, word)
}

func (p *parser) setPrompt(rest string) error {
	text, cond, err := p.withIf(rest)
	if err != nil {
		return err
	}
	if p.cur.Prompt != "" {
		return p.errorf("config %s has a second prompt", p.cur.Name)
	}
	p.cur.Prompt, err = p.prompt(text)
	p.cur.PromptIf = cond
	return err
}

func (p *parser) dependsOn(rest string) (Expr, error) {
	e, ok := strings.CutPrefix(rest, "on")
	if !ok || (e != "" && e[0] != ' ' && e[0] != '\t') {
		return nil, p.errorf("'depends' takes 'on EXPR'")
	}
	return p.expr(e)
}

func (p *parser) defaultValue(rest string) (Default, error) {
	v, cond, err := p.withIf(rest)
	if err != nil {
		return Default{}, err
	}
	e, err := p.expr(v)
	return Default{Value: e, If: cond}, err
}

// withIf splits "X if EXPR" into X and the parsed condition (nil without).
// A quoted X may hold " if ".
func (p *parser) withIf(rest string) (string, Expr, error) {
	start := 0
	if strings.HasPrefix(rest, `"`) || strings.HasPrefix(rest, `'`) {
		end := strings.IndexByte(rest[1:], rest[0])
		if end < 0 {
			return "", nil, p.errorf("unterminated string %s", rest)
		}
		start = end + 2
	}
	i := strings.Index(rest[start:], " if ")
	if i < 0 {
		return strings.TrimSpace(rest), nil, nil
	}
	cond, err := p.expr(rest[start+i+4:])
	return strings.TrimSpace(rest[:start+i]), cond, err
}

func (p *parser) expr(s string) (Expr, error) {
	e, err := ParseExpr(strings.TrimSpace(s))
	if err != nil {
		return nil, p.errorf("%v", err)
	}
	return e, nil
}

// prompt unquotes a "string" (or 'string').
func (p *parser) prompt(s string) (string, error) {
	if len(s) < 2 || (s[0] != '"' && s[0] != '\'') || s[len(s)-1] != s[0] {
		return "", p.errorf("want a quoted string, not %q", s)
	}
	var b strings.Builder
	for i := 1; i < len(s)-1; i++ {
		c := s[i]
		if c == s[0] {
			return "", p.errorf("text after the closing quote in %s", s)
		}
		if c == '\\' && i+1 < len(s)-1 {
			i++
			c = s[i]
		}
		b.WriteByte(c)
	}
	return b.String(), nil
}

// help reads the help text that follows: the lines indented deeper than
// the entry, up to the first one that is not. It leaves p.n on the last.
func (p *parser) help() string {
	base := indent(p.lines[p.n-1])
	var out []string
	min := -1
	for p.n < len(p.lines) {
		l := p.lines[p.n]
		if strings.TrimSpace(l) == "" {
			out = append(out, "")
			p.n++
			continue
		}
		in := indent(l)
		if in <= base || (min >= 0 && in < min) {
			break
		}
		if min < 0 {
			min = in
		}
		out = append(out, expandTabs(l)[min:])
		p.n++
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		p.n--
		out = out[:len(out)-1]
	}
	return strings.Join(out, "\n")
}

// indent is a line's indentation in columns, tabs stopping every 8.
func indent(l string) int {
	return len(expandTabs(l)) - len(strings.TrimLeft(expandTabs(l), " "))
}

func expandTabs(l string) string {
	var b strings.Builder
	for _, r := range l {
		if r == '\t' {
			b.WriteString(strings.Repeat(" ", 8-b.Len()%8))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// check verifies what a line-by-line reading cannot: every referenced
// symbol exists and is bool, every symbol names its tag, no cycles.
func (k *Kconfig) check(file string) error {
	tags := map[string]string{}
	for _, s := range k.Symbols {
		at := func(format string, args ...any) error {
			return &SyntaxError{File: file, Line: s.Line, Msg: fmt.Sprintf(format, args...)}
		}
		if !s.Typed {
			return at("config %s has no type: add bool \"prompt\"", s.Name)
		}
		var refs []string
		refs = exprSymbols(s.DependsOn, refs)
		refs = exprSymbols(s.PromptIf, refs)
		for _, d := range s.Defaults {
			refs = exprSymbols(d.If, exprSymbols(d.Value, refs))
		}
		for _, sel := range s.Selects {
			refs = exprSymbols(sel.If, append(refs, sel.Name))
		}
		for _, r := range refs {
			if k.byName[r] == nil {
				return at("config %s refers to %s, which no config defines: define it or fix the name", s.Name, r)
			}
		}
		m := tagLine.FindStringSubmatch(s.Help)
		if m == nil {
			return at("config %s: its help names no build tag: end it with a line \"Go build tag: vigil_no...\"", s.Name)
		}
		if other, dup := tags[m[1]]; dup {
			return at("config %s: build tag %s is %s's too: give each symbol its own", s.Name, m[1], other)
		}
		tags[m[1]] = s.Name
		s.Tag = m[1]
	}
	for _, s := range k.Symbols {
		for _, sel := range s.Selects {
			t := k.byName[sel.Name]
			t.revDep = append(t.revDep, Select{Name: s.Name, If: sel.If, Line: sel.Line})
		}
	}
	return k.checkCycles(file)
}

func exprSymbols(e Expr, out []string) []string {
	if e == nil {
		return out
	}
	return e.symbols(out)
}

// checkCycles fails on a symbol whose value depends on itself.
func (k *Kconfig) checkCycles(file string) error {
	const (
		unseen = iota
		visiting
		done
	)
	state := map[string]int{}
	var visit func(s *Symbol, path []string) error
	visit = func(s *Symbol, path []string) error {
		switch state[s.Name] {
		case visiting:
			return &SyntaxError{File: file, Line: s.Line, Msg: fmt.Sprintf("dependency cycle: %s -> %s: break it", strings.Join(path, " -> "), s.Name)}
		case done:
			return nil
		}
		state[s.Name] = visiting
		for _, r := range k.reads(s) {
			if err := visit(k.byName[r], append(path, s.Name)); err != nil {
				return err
			}
		}
		state[s.Name] = done
		return nil
	}
	for _, s := range k.Symbols {
		if err := visit(s, nil); err != nil {
			return err
		}
	}
	return nil
}
