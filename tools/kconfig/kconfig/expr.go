package kconfig

import (
	"fmt"
	"strings"
	"unicode"
)

// Expr is a Kconfig boolean expression: y, n, a symbol, !e, a && b, a || b.
type Expr interface {
	// Eval computes the expression with val giving each symbol's value.
	Eval(val func(name string) bool) bool
	// String writes the expression back in Kconfig syntax.
	String() string
	// symbols appends the names of the symbols the expression reads.
	symbols(out []string) []string
}

// Const is the constant y (true) or n (false).
type Const bool

// Eval returns the constant.
func (c Const) Eval(func(string) bool) bool { return bool(c) }

func (c Const) String() string {
	if c {
		return "y"
	}
	return "n"
}

func (c Const) symbols(out []string) []string { return out }

// Sym is a reference to a symbol.
type Sym string

// Eval returns the symbol's value.
func (s Sym) Eval(val func(string) bool) bool { return val(string(s)) }

func (s Sym) String() string { return string(s) }

func (s Sym) symbols(out []string) []string { return append(out, string(s)) }

// Not is !X.
type Not struct{ X Expr }

// Eval negates X.
func (e Not) Eval(val func(string) bool) bool { return !e.X.Eval(val) }

func (e Not) String() string {
	switch e.X.(type) {
	case Sym, Const:
		return "!" + e.X.String()
	}
	return "!(" + e.X.String() + ")"
}

func (e Not) symbols(out []string) []string { return e.X.symbols(out) }

// And is X && Y.
type And struct{ X, Y Expr }

// Eval is true when both sides are.
func (e And) Eval(val func(string) bool) bool { return e.X.Eval(val) && e.Y.Eval(val) }

func (e And) String() string { return paren(e.X) + " && " + paren(e.Y) }

func (e And) symbols(out []string) []string { return e.Y.symbols(e.X.symbols(out)) }

// Or is X || Y.
type Or struct{ X, Y Expr }

// Eval is true when either side is.
func (e Or) Eval(val func(string) bool) bool { return e.X.Eval(val) || e.Y.Eval(val) }

func (e Or) String() string { return e.X.String() + " || " + e.Y.String() }

func (e Or) symbols(out []string) []string { return e.Y.symbols(e.X.symbols(out)) }

// paren brackets an || inside an &&.
func paren(e Expr) string {
	if _, ok := e.(Or); ok {
		return "(" + e.String() + ")"
	}
	return e.String()
}

// and joins two conditions, either of which may be nil (always true).
func and(a, b Expr) Expr {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return And{a, b}
}

// eval computes e, nil being true.
func eval(e Expr, val func(string) bool) bool { return e == nil || e.Eval(val) }

// ParseExpr parses a Kconfig expression over bool symbols: symbols, y, n,
// !, &&, || and parentheses (&& binds tighter than ||).
func ParseExpr(s string) (Expr, error) {
	p := &exprParser{toks: tokenize(s)}
	if len(p.toks) == 0 {
		return nil, fmt.Errorf("empty expression")
	}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.i < len(p.toks) {
		return nil, fmt.Errorf("unexpected %q in expression %q", p.toks[p.i], s)
	}
	return e, nil
}

type exprParser struct {
	toks []string
	i    int
}

func (p *exprParser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return ""
}

func (p *exprParser) or() (Expr, error) {
	x, err := p.and()
	for err == nil && p.peek() == "||" {
		p.i++
		var y Expr
		if y, err = p.and(); err == nil {
			x = Or{x, y}
		}
	}
	return x, err
}

func (p *exprParser) and() (Expr, error) {
	x, err := p.unary()
	for err == nil && p.peek() == "&&" {
		p.i++
		var y Expr
		if y, err = p.unary(); err == nil {
			x = And{x, y}
		}
	}
	return x, err
}

func (p *exprParser) unary() (Expr, error) {
	t := p.peek()
	p.i++
	switch {
	case t == "":
		return nil, fmt.Errorf("expression ends where a symbol is expected")
	case t == "!":
		x, err := p.unary()
		return Not{x}, err
	case t == "(":
		x, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, fmt.Errorf("missing ')' in expression")
		}
		p.i++
		return x, nil
	case t == "y":
		return Const(true), nil
	case t == "n":
		return Const(false), nil
	case validName(t):
		return Sym(t), nil
	}
	return nil, fmt.Errorf("unexpected %q in expression: want a symbol, y, n, '!' or '('", t)
}

// tokenize splits an expression into operators and words.
func tokenize(s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case strings.HasPrefix(s[i:], "&&"), strings.HasPrefix(s[i:], "||"):
			toks = append(toks, s[i:i+2])
			i += 2
		case c == '!' || c == '(' || c == ')':
			toks = append(toks, string(c))
			i++
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t!()&|", rune(s[j])) {
				j++
			}
			if j == i { // a lone '&' or '|'
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks
}

// validName reports whether s can name a symbol: letters, digits and '_'.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r != '_' && !unicode.IsDigit(r) && !(r < 128 && unicode.IsLetter(r)) {
			return false
		}
	}
	return true
}
