package sim

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the scenarios' log.expect files from this run")

// TestScenarios runs every folder of testdata/scenarios and diffs its log
// against log.expect; -update rewrites the expected logs.
func TestScenarios(t *testing.T) {
	dirs, err := filepath.Glob("testdata/scenarios/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no scenarios under testdata/scenarios (%v)", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			r, err := RunScenario(dir, false)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range r.Violations {
				t.Errorf("invariant: %s", v)
			}
			file := filepath.Join(dir, ExpectFile)
			if *update {
				if err := os.WriteFile(file, []byte(r.Log), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v: run 'go test ./tools/sim -run TestScenarios -update' to create it", err)
			}
			if d := lineDiff(string(want), r.Log); d != "" {
				t.Errorf("log differs from %s (-expected +got):\n%s\nif the change is intended, run 'go test ./tools/sim -run TestScenarios -update'", file, d)
			}
		})
	}
}

// lineDiff returns a unified-style diff of two texts with three lines of
// context, or "" when they are equal.
func lineDiff(a, b string) string {
	if a == b {
		return ""
	}
	x, y := strings.SplitAfter(a, "\n"), strings.SplitAfter(b, "\n")
	// Common prefix and suffix first, then an LCS on what is left.
	p := 0
	for p < len(x) && p < len(y) && x[p] == y[p] {
		p++
	}
	s := 0
	for s < len(x)-p && s < len(y)-p && x[len(x)-1-s] == y[len(y)-1-s] {
		s++
	}
	mx, my := x[p:len(x)-s], y[p:len(y)-s]
	var ops []string // " line", "-line", "+line"
	for _, l := range x[:p] {
		ops = append(ops, " "+l)
	}
	if len(mx)*len(my) > 4_000_000 { // too big for the table: show both sides
		for _, l := range mx {
			ops = append(ops, "-"+l)
		}
		for _, l := range my {
			ops = append(ops, "+"+l)
		}
	} else {
		ops = append(ops, lcsOps(mx, my)...)
	}
	for _, l := range x[len(x)-s:] {
		ops = append(ops, " "+l)
	}
	var out strings.Builder
	last := -1
	for i, op := range ops {
		if op[0] == ' ' {
			continue
		}
		from := max(i-3, last+1)
		if last >= 0 && from > last+1 {
			out.WriteString("...\n")
		}
		for j := from; j <= i; j++ {
			out.WriteString(strings.TrimSuffix(ops[j], "\n") + "\n")
		}
		last = i
		for j := i + 1; j < len(ops) && j <= i+3 && ops[j][0] == ' '; j++ {
			out.WriteString(strings.TrimSuffix(ops[j], "\n") + "\n")
			last = j
		}
	}
	return out.String()
}

func lcsOps(x, y []string) []string {
	n, m := len(x), len(y)
	t := make([][]int32, n+1)
	for i := range t {
		t[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if x[i] == y[j] {
				t[i][j] = t[i+1][j+1] + 1
			} else {
				t[i][j] = max(t[i+1][j], t[i][j+1])
			}
		}
	}
	var ops []string
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && x[i] == y[j]:
			ops = append(ops, " "+x[i])
			i, j = i+1, j+1
		case j < m && (i == n || t[i][j+1] >= t[i+1][j]):
			ops = append(ops, "+"+y[j])
			j++
		default:
			ops = append(ops, "-"+x[i])
			i++
		}
	}
	return ops
}

func TestLineDiff(t *testing.T) {
	if d := lineDiff("a\nb\n", "a\nb\n"); d != "" {
		t.Errorf("equal texts: %q", d)
	}
	d := lineDiff("a\nb\nc\n", "a\nx\nc\n")
	if !strings.Contains(d, "-b\n") || !strings.Contains(d, "+x\n") || !strings.Contains(d, " a\n") {
		t.Errorf("diff:\n%s", d)
	}
}

// TestDeterministic runs a lossy, drifting scenario twice: the logs must be
// identical byte for byte.
func TestDeterministic(t *testing.T) {
	cfg := "testdata/scenarios/power-loss"
	script := "set seed 9\n5s loss h1 mgmt 30\n6s drift h3 150\n8s freeze h4\n9s thaw h4\n20s poweroff h2\nrun 40s\n"
	var logs []string
	for range 2 {
		c, err := configLoad(cfg)
		if err != nil {
			t.Fatal(err)
		}
		r, err := RunConfig(c, CmdsFile, script, DefaultParams())
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, r.Log)
	}
	if d := lineDiff(logs[0], logs[1]); d != "" {
		t.Errorf("two runs differ:\n%s", d)
	}
}
