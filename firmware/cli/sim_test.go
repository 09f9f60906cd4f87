//go:build !vigil_nosim

package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSim(t *testing.T) {
	scenario := filepath.Join("..", "..", "tools", "sim", "testdata", "scenarios", "power-loss")
	bad := t.TempDir()
	cluster, err := os.ReadFile(filepath.Join(scenario, "cluster.toml"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(bad, "cluster.toml"), cluster, 0o644)
	os.WriteFile(filepath.Join(bad, "cmds"), []byte("5s poweroff h9\n"), 0o644)

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string // a substring, or the suffix when it starts with "$"
		stderr string
	}{
		{"no subcommand", []string{"sim"}, 2, "", "usage: vigil sim run DIR"},
		{"unknown subcommand", []string{"sim", "walk"}, 2, "", `unknown subcommand "walk"`},
		{"help", []string{"sim", "--help"}, 0, "usage: vigil sim run DIR", ""},
		{"run", []string{"sim", "run", scenario}, 0, "info 20.000 sim/cmd: poweroff h2", ""},
		{"run verbose after dir", []string{"sim", "run", scenario, "--verbose"}, 0, "h2/sim: power lost", ""},
		{"run without dir", []string{"sim", "run"}, 2, "", "want one scenario folder, have 0"},
		{"run two dirs", []string{"sim", "run", scenario, scenario}, 2, "", "have 2"},
		{"run missing dir", []string{"sim", "run", filepath.Join(bad, "nope")}, 1, "", "no such file"},
		{"run bad script", []string{"sim", "run", bad}, 1, "", `cmds:1: poweroff: unknown host "h9"`},
		{"fuzz", []string{"sim", "fuzz", "--seeds", "3", "--hosts", "4"}, 0, "$fuzz: seeds=3 violations=0\n", ""},
		{"fuzz bad hosts", []string{"sim", "fuzz", "--hosts", "1"}, 2, "", "--hosts between 2 and 64"},
		{"fuzz stray argument", []string{"sim", "fuzz", "extra"}, 2, "", `unexpected argument "extra"`},
		{"demo", []string{"sim", "demo"}, 0, "\nrecovered 2/2 VMs in", ""},
		{"demo with arguments", []string{"sim", "demo", "now"}, 2, "", "takes no arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Run(tc.args, &out, &errb)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, errb.String())
			}
			if s, ok := strings.CutPrefix(tc.stdout, "$"); ok {
				if !strings.HasSuffix(out.String(), s) {
					t.Errorf("stdout does not end with %q:\n%s", s, out.String())
				}
			} else if !strings.Contains(out.String(), tc.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tc.stdout, out.String())
			}
			if !strings.Contains(errb.String(), tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, errb.String())
			}
		})
	}
}
