package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/firmware/features"
)

// commandsOf are the commands each feature brings.
var commandsOf = map[string][]string{
	"LAB":      {"lab", "demo"},
	"HV_PROC":  {"lab-vm"},
	"SIM":      {"sim"},
	"IPMI_LAN": {"fence", "fence-agent"},
	"EBPF":     {"ebpf"},
}

func TestFeaturesCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Run([]string{"features"}, &out, &errOut); code != 0 {
		t.Fatalf("vigil features: exit %d, stderr %q", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(features.All)+1 {
		t.Fatalf("vigil features printed %d lines, want a header and %d features:\n%s", len(lines), len(features.All), out.String())
	}
	for i, f := range features.All {
		fields := strings.Fields(lines[i+1])
		built := map[bool]string{true: "yes", false: "no"}[f.Enabled]
		if len(fields) < 3 || fields[0] != "CONFIG_"+f.Symbol || fields[1] != built || fields[2] != f.Tag {
			t.Errorf("line %q: want CONFIG_%s %s %s", lines[i+1], f.Symbol, built, f.Tag)
		}
	}

	out.Reset()
	if code := Run([]string{"features", "-tags"}, &out, &errOut); code != 0 {
		t.Fatalf("vigil features -tags: exit %d", code)
	}
	var off []string
	for _, f := range features.All {
		if !f.Enabled {
			off = append(off, f.Tag)
		}
	}
	if got := strings.TrimSpace(out.String()); got != strings.Join(off, ",") {
		t.Errorf("vigil features -tags = %q, want %q", got, strings.Join(off, ","))
	}
	if code := Run([]string{"features", "extra"}, &out, &errOut); code != 2 {
		t.Errorf("vigil features extra: exit %d, want 2", code)
	}
}

func TestVersionFeatures(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Run([]string{"--version"}, &out, &errOut); code != 0 {
		t.Fatalf("vigil --version: exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || lines[0] != "vigil "+Version || !strings.HasPrefix(lines[1], "features: ") {
		t.Fatalf("vigil --version printed %q: want the version, then the features", out.String())
	}
	got := strings.Fields(strings.TrimPrefix(lines[1], "features: "))
	if len(got) != len(features.All) {
		t.Fatalf("features line %q: want %d features", lines[1], len(features.All))
	}
	for i, f := range features.All {
		want := map[bool]string{true: "+", false: "-"}[f.Enabled] + f.Symbol
		if got[i] != want {
			t.Errorf("feature %d is %q, want %q", i, got[i], want)
		}
	}
}

// TestCommandsFollowFeatures checks that a feature's commands run when it
// is built in, and say what is missing and how to get it when it is not.
func TestCommandsFollowFeatures(t *testing.T) {
	for sym, names := range commandsOf {
		f, ok := features.Lookup(sym)
		if !ok {
			t.Fatalf("the features package has no %s", sym)
		}
		for _, n := range names {
			c, ok := commands[n]
			if !ok {
				t.Errorf("command %s is not registered", n)
				continue
			}
			notBuilt := strings.Contains(c.Summary, "not in this build")
			if notBuilt == f.Enabled {
				t.Errorf("command %s: summary %q, but CONFIG_%s built in is %v", n, c.Summary, sym, f.Enabled)
			}
			if f.Enabled {
				continue
			}
			var out, errOut bytes.Buffer
			code := Run([]string{n}, &out, &errOut)
			if code != 1 || !strings.Contains(errOut.String(), "built without CONFIG_"+sym) || !strings.Contains(errOut.String(), "make menuconfig") {
				t.Errorf("vigil %s: exit %d, stderr %q: want 1 and the missing CONFIG_%s with its fix", n, code, errOut.String(), sym)
			}
		}
	}
}
