package kconfig

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// sample is a Kconfig with every construct the parser takes.
const sample = `# a comment
mainmenu "test features"

menu "Base"

config A
	bool "feature a"
	default y
	help
	  A does a.

	  Second paragraph.

	  Go build tag: t_noa

config B
	bool "feature b"
	default n
	help
	  B. Go build tag: no, this line is not the tag.
	  Go build tag: t_nob

endmenu

menu "Extras"

config C
	bool "feature c"
	default y
	depends on A && !B
	help
	  Go build tag: t_noc

config D
	bool "feature d"
	default y if B
	default n
	select E if A
	help
	  Go build tag: t_nod

if A || B
config E
	bool "feature e (needs A or B)"
	help
	  Go build tag: t_noe
endif

endmenu
`

func parseSample(t *testing.T) *Kconfig {
	t.Helper()
	k, err := Parse("Kconfig", strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParse(t *testing.T) {
	k := parseSample(t)
	if k.MainMenu != "test features" {
		t.Errorf("mainmenu %q", k.MainMenu)
	}
	var names, tags, menus []string
	for _, s := range k.Symbols {
		names = append(names, s.Name)
		tags = append(tags, s.Tag)
		menus = append(menus, s.Menu.Prompt)
	}
	if want := []string{"A", "B", "C", "D", "E"}; !reflect.DeepEqual(names, want) {
		t.Errorf("symbols %v, want %v", names, want)
	}
	if want := []string{"t_noa", "t_nob", "t_noc", "t_nod", "t_noe"}; !reflect.DeepEqual(tags, want) {
		t.Errorf("tags %v, want %v", tags, want)
	}
	if want := []string{"Base", "Base", "Extras", "Extras", "Extras"}; !reflect.DeepEqual(menus, want) {
		t.Errorf("menus %v, want %v", menus, want)
	}
	a := k.Lookup("A")
	if want := "A does a.\n\nSecond paragraph.\n\nGo build tag: t_noa"; a.Help != want {
		t.Errorf("help of A %q, want %q", a.Help, want)
	}
	if a.HelpSummary() != "A does a." || a.Prompt != "feature a" || a.Line != 6 {
		t.Errorf("A: summary %q, prompt %q, line %d", a.HelpSummary(), a.Prompt, a.Line)
	}
	if got := k.Lookup("C").DependsOn.String(); got != "A && !B" {
		t.Errorf("C depends on %q", got)
	}
	if got := k.Lookup("E").DependsOn.String(); got != "A || B" {
		t.Errorf("E depends on %q (the if block's condition)", got)
	}
	if d := k.Lookup("D"); len(d.Defaults) != 2 || d.Defaults[0].If.String() != "B" || len(d.Selects) != 1 || d.Selects[0].Name != "E" {
		t.Errorf("D: defaults %v, selects %v", d.Defaults, d.Selects)
	}
	if k.Lookup("Z") != nil {
		t.Error("Lookup of an unknown symbol found one")
	}
}

func TestExpr(t *testing.T) {
	vals := map[string]bool{"A": true, "B": false, "C": true}
	val := func(n string) bool { return vals[n] }
	tests := []struct {
		in, out string
		want    bool
	}{
		{"A", "A", true},
		{"!A", "!A", false},
		{"A && B", "A && B", false},
		{"A || B", "A || B", true},
		{"B || A && C", "B || A && C", true},
		{"(B || A) && !C", "(B || A) && !C", false},
		{"!(A && B)", "!(A && B)", true},
		{"y && !n", "y && !n", true},
	}
	for _, tt := range tests {
		e, err := ParseExpr(tt.in)
		if err != nil {
			t.Errorf("ParseExpr(%q): %v", tt.in, err)
			continue
		}
		if e.String() != tt.out || e.Eval(val) != tt.want {
			t.Errorf("ParseExpr(%q) = %q, %v; want %q, %v", tt.in, e.String(), e.Eval(val), tt.out, tt.want)
		}
	}
	for _, bad := range []string{"", "A &&", "(A", "A B", "A & B", "A-B", "&&"} {
		if _, err := ParseExpr(bad); err == nil {
			t.Errorf("ParseExpr(%q) succeeded", bad)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tag := "\thelp\n\t  Go build tag: t_x\n"
	tests := []struct {
		name, src string
		line      int
		msg       string
	}{
		{"unknown attribute", "config X\n\tbool \"x\"\n\tcolour red\n" + tag, 3, `unknown attribute "colour"`},
		{"tristate", "config X\n\ttristate \"x\"\n", 2, "tristate is not supported"},
		{"no endmenu", "menu \"m\"\nconfig X\n\tbool \"x\"\n" + tag, 1, "has no endmenu"},
		{"stray endmenu", "endmenu\n", 1, "endmenu without menu"},
		{"no tag", "config X\n\tbool \"x\"\n\thelp\n\t  X.\n", 1, "names no build tag"},
		{"unknown symbol", "config X\n\tbool \"x\"\n\tdepends on Y\n" + tag, 1, "refers to Y, which no config defines"},
		{"twice", "config X\n\tbool \"x\"\n" + tag + "config X\n\tbool \"x\"\n", 5, "defined twice"},
		{"bad expression", "config X\n\tbool \"x\"\n\tdepends on (Y\n", 3, "missing ')'"},
		{"unquoted prompt", "config X\n\tbool x\n", 2, "want a quoted string"},
		{"source", "source \"other/Kconfig\"\n", 1, "source is not supported"},
		{"no type", "config X\n" + tag, 1, "has no type"},
		{"outside entry", "default y\n", 1, `unexpected "default" outside`},
		{"cycle", "config X\n\tbool \"x\"\n\tdepends on Y\n" + tag + "config Y\n\tbool \"y\"\n\tdepends on X\n\thelp\n\t  Go build tag: t_y\n", 1, "dependency cycle: X -> Y -> X"},
		{"same tag", "config X\n\tbool \"x\"\n" + tag + "config Y\n\tbool \"y\"\n" + tag, 5, "build tag t_x is X's too"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("Kconfig", strings.NewReader(tt.src))
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v: want a *SyntaxError", err)
			}
			if se.Line != tt.line || !strings.Contains(se.Msg, tt.msg) || !strings.HasPrefix(err.Error(), "Kconfig:") {
				t.Errorf("error %q (line %d): want line %d and %q", err, se.Line, tt.line, tt.msg)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	k := parseSample(t)
	tests := []struct {
		name string
		user map[string]bool
		want map[string]bool
	}{
		{"defaults", nil, map[string]bool{"A": true, "B": false, "C": true, "D": false, "E": false}},
		{"user wins", map[string]bool{"A": false, "E": true}, map[string]bool{"A": false, "B": false, "C": false, "D": false, "E": false}},
		{"unmet dependency", map[string]bool{"B": true, "C": true}, map[string]bool{"A": true, "B": true, "C": false, "D": true, "E": true}},
		{"select", map[string]bool{"D": true, "E": false}, map[string]bool{"A": true, "B": false, "C": true, "D": true, "E": true}},
		{"select condition fails", map[string]bool{"A": false, "B": true, "D": true}, map[string]bool{"A": false, "B": true, "C": false, "D": true, "E": false}},
	}
	for _, tt := range tests {
		if got := k.Resolve(tt.user).Value; !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: Resolve(%v) = %v, want %v", tt.name, tt.user, got, tt.want)
		}
	}
}
