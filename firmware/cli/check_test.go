package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[cluster]\nname = \"x\"\ncolour = 1\n"), 0o644)
	const lab = "../config/testdata/valid/lab.toml"
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string // lines, in order, each a prefix of the output line
		stderr string   // a part of stderr
	}{
		{name: "valid", args: []string{lab}, code: 0, stdout: []string{
			lab + ": ok: cluster lab, 4 hosts, 8 VMs, 2 links, 1 datastore",
			lab + ": timing: failure detected in ~600ms (link_timeout+heartbeat), proof (c) ~9s after a host was last seen (max(lease_timeout, 5 x link_timeout + 2 x heartbeat) + watchdog_timeout + margin), fence reported stuck after 20s",
		}},
		{name: "invalid", args: []string{bad}, code: 1, stdout: []string{
			bad + ": cluster.colour: line 3: unknown key (fix: ",
			bad + ": links: 0 links: a cluster has 1 to 8 (fix: ",
			bad + ": datastores: 0 datastores",
			bad + ": hosts: 0 hosts",
			bad + ": 4 problems",
		}},
		{name: "invalid golden", args: []string{"../config/testdata/invalid/syntax.toml"}, code: 1, stdout: []string{
			"../config/testdata/invalid/syntax.toml: line 4: expected ']]' to close array table name (fix: correct the TOML syntax)",
			"../config/testdata/invalid/syntax.toml: 1 problem",
		}},
		{name: "missing file", args: []string{filepath.Join(dir, "none.toml")}, code: 1, stdout: []string{
			filepath.Join(dir, "none.toml") + ": config: open ",
			filepath.Join(dir, "none.toml") + ": 1 problem",
		}},
		{name: "no file", args: nil, code: 2, stderr: "want one cluster file, have 0"},
		{name: "two files", args: []string{lab, lab}, code: 2, stderr: "have 2"},
		{name: "unknown flag", args: []string{"--yaml", lab}, code: 2, stderr: "flag provided but not defined: -yaml"},
		{name: "help", args: []string{"-h"}, code: 0, stdout: []string{"usage: vigil check [--json] FILE", "", "Validates", "problem found. Exit status: 0 valid, 1 invalid or unreadable, 2 usage error."}},
		{name: "json after file", args: []string{lab, "--json"}, code: 0, stdout: []string{`{"ok":true,"problems":[]}`}},
		{name: "json invalid", args: []string{"--json", bad}, code: 1, stdout: []string{`{"ok":false,"problems":[{"key":"cluster.colour","msg":"line 3: unknown key","fix":`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Run(append([]string{"check"}, tt.args...), &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit code = %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, &stdout, &stderr)
			}
			got := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
			if len(tt.stdout) == 0 {
				got = nil
				if stdout.Len() != 0 {
					t.Errorf("unexpected stdout:\n%s", &stdout)
				}
			}
			if len(got) != len(tt.stdout) {
				t.Fatalf("stdout has %d lines, want %d:\n%s", len(got), len(tt.stdout), &stdout)
			}
			for i, w := range tt.stdout {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("stdout line %d = %q, want prefix %q", i+1, got[i], w)
				}
			}
			if !strings.Contains(stderr.String(), tt.stderr) || (tt.stderr == "" && stderr.Len() != 0) {
				t.Errorf("stderr = %q, want %q", &stderr, tt.stderr)
			}
		})
	}
}

func TestCheckJSONShape(t *testing.T) {
	var stdout bytes.Buffer
	Run([]string{"check", "--json", "../config/testdata/invalid/vms.toml"}, &stdout, &bytes.Buffer{})
	var r struct {
		OK       bool
		Problems []map[string]string
	}
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if r.OK || len(r.Problems) != 12 {
		t.Fatalf("ok = %v, %d problems; want false, 12", r.OK, len(r.Problems))
	}
	for _, p := range r.Problems {
		if len(p) != 3 || p["key"] == "" || p["msg"] == "" || p["fix"] == "" {
			t.Errorf("problem = %v, want key, msg and fix", p)
		}
	}
}
