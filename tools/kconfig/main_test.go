package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The repository's files, from this package's folder.
var (
	repoKconfig = filepath.Join("..", "..", "Kconfig")
	configsDir  = filepath.Join("..", "..", "configs")
	featuresDir = filepath.Join("..", "..", "firmware", "features")
)

// kc runs the command with the repository's Kconfig on config.
func kc(t *testing.T, config string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(append([]string{"-kconfig", repoKconfig, "-config", config}, args...), strings.NewReader(""), &out)
	return out.String(), err
}

func mustKC(t *testing.T, config string, args ...string) string {
	t.Helper()
	out, err := kc(t, config, args...)
	if err != nil {
		t.Fatalf("kconfig %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func TestDefconfigs(t *testing.T) {
	tests := []struct {
		defconfig string
		tags      string
	}{
		{"full_defconfig", ""},
		{"minimal_defconfig", "vigil_noebpf,vigil_noipmilan,vigil_nometrics,vigil_nosim,vigil_nolab"},
	}
	for _, tt := range tests {
		t.Run(tt.defconfig, func(t *testing.T) {
			dir := t.TempDir()
			config := filepath.Join(dir, ".config")
			def := filepath.Join(configsDir, tt.defconfig)
			mustKC(t, config, "defconfig", def)
			if got := strings.TrimSpace(mustKC(t, config, "tags")); got != tt.tags {
				t.Errorf("tags = %q, want %q", got, tt.tags)
			}
			// savedefconfig gives the committed defconfig back.
			saved := filepath.Join(dir, "defconfig")
			mustKC(t, config, "savedefconfig", "-o", saved)
			want, err := os.ReadFile(def)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(saved)
			if string(got) != string(want) {
				t.Errorf("savedefconfig wrote %q; %s holds %q", got, tt.defconfig, want)
			}
		})
	}
}

func TestOldconfig(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, ".config")
	// An old .config: SIM off, METRICS missing (a new symbol), OLD gone.
	old := "CONFIG_EBPF=y\n# CONFIG_SIM is not set\nCONFIG_OLD=y\n"
	if err := os.WriteFile(config, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	mustKC(t, config, "oldconfig")
	data, _ := os.ReadFile(config)
	s := string(data)
	for _, want := range []string{"# CONFIG_SIM is not set\n", "CONFIG_METRICS=y\n", "CONFIG_EBPF=y\n", "CONFIG_LAB=y\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("oldconfig's .config lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "CONFIG_OLD") {
		t.Errorf("oldconfig kept the unknown CONFIG_OLD:\n%s", s)
	}
	if saved, _ := os.ReadFile(config + ".old"); string(saved) != old {
		t.Errorf(".config.old holds %q, want the old .config", saved)
	}
	if got := strings.TrimSpace(mustKC(t, config, "tags")); got != "vigil_nosim" {
		t.Errorf("tags = %q, want vigil_nosim", got)
	}
}

func TestTagsErrors(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, ".config")
	mustKC(t, config, "defconfig", filepath.Join(configsDir, "full_defconfig"))
	full, _ := os.ReadFile(config)
	tests := []struct {
		name, edit, with, msg string
	}{
		{"dependency", "CONFIG_HV_PROC=y", "# CONFIG_HV_PROC is not set", "CONFIG_LAB=y but it depends on HV_PROC && IPMI_LAN && EBPF, which this configuration does not meet (CONFIG_HV_PROC is not set)"},
		{"unknown", "CONFIG_SIM=y", "CONFIG_SIM=y\nCONFIG_NOSUCH=y", "unknown symbol CONFIG_NOSUCH"},
		{"bool", "CONFIG_SIM=y", "CONFIG_SIM=m", "CONFIG_SIM=m: vigil's symbols are bool"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(config, []byte(strings.Replace(string(full), tt.edit, tt.with, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := kc(t, config, "tags")
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("tags error %v: want %q", err, tt.msg)
			}
		})
	}
	if _, err := kc(t, filepath.Join(dir, "none"), "tags"); err == nil || !strings.Contains(err.Error(), "make defconfig") {
		t.Errorf("tags without a .config: error %v, want the fix", err)
	}
	if _, err := kc(t, config, "defconfig", filepath.Join(dir, "missing_defconfig")); err == nil {
		t.Error("defconfig of a missing file succeeded")
	}
	bad := filepath.Join(dir, "bad_defconfig")
	os.WriteFile(bad, []byte("# CONFIG_EBPF is not set\nCONFIG_TYPO=y\n"), 0o644)
	if _, err := kc(t, config, "defconfig", bad); err == nil || !strings.Contains(err.Error(), "bad_defconfig:2: unknown symbol CONFIG_TYPO") {
		t.Errorf("defconfig with an unknown symbol: error %v, want its file, line and name", err)
	}
	if _, err := kc(t, config, "frobnicate"); err == nil || !strings.Contains(err.Error(), `unknown command "frobnicate"`) {
		t.Errorf("unknown command: error %v", err)
	}
}

// TestGenerated checks that the committed firmware/features files are
// what gen makes of the Kconfig.
func TestGenerated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "features")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mustKC(t, filepath.Join(dir, ".config"), "gen", "-o", dir)
	made, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	if len(made) == 0 {
		t.Fatal("gen wrote no files")
	}
	for _, p := range made {
		want, _ := os.ReadFile(p)
		got, err := os.ReadFile(filepath.Join(featuresDir, filepath.Base(p)))
		if err != nil || string(got) != string(want) {
			t.Errorf("firmware/features/%s is not what the Kconfig generates: run go generate ./firmware/features", filepath.Base(p))
		}
	}
}

// TestRealKconfig compares this tool's .config and savedefconfig with the
// kernel's kconfig tools' (Debian: kconfig-frontends-nox) for each
// committed defconfig.
func TestRealKconfig(t *testing.T) {
	conf, err := exec.LookPath("kconfig-conf")
	if err != nil {
		t.Skip("kconfig-conf is not installed (apt-get install kconfig-frontends-nox): no cross-check with the kernel's kconfig")
	}
	defs, _ := filepath.Glob(filepath.Join(configsDir, "*_defconfig"))
	if len(defs) == 0 {
		t.Fatal("no configs/*_defconfig")
	}
	kfile, _ := filepath.Abs(repoKconfig)
	for _, def := range defs {
		t.Run(filepath.Base(def), func(t *testing.T) {
			dir := t.TempDir()
			defAbs, _ := filepath.Abs(def)
			real := func(config string, args ...string) {
				t.Helper()
				cmd := exec.Command(conf, append(args, kfile)...)
				cmd.Dir = dir
				cmd.Env = append(os.Environ(), "KCONFIG_CONFIG="+config)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("kconfig-conf %v: %v\n%s", args, err, out)
				}
			}
			realConfig, ours := filepath.Join(dir, "real.config"), filepath.Join(dir, "our.config")
			real(realConfig, "--defconfig="+defAbs)
			mustKC(t, ours, "defconfig", def)
			r, _ := os.ReadFile(realConfig)
			o, _ := os.ReadFile(ours)
			if string(r) != string(o) {
				t.Errorf("kconfig-conf's .config:\n%s\nthis tool's:\n%s", r, o)
			}
			real(ours, "--savedefconfig="+filepath.Join(dir, "real_defconfig"))
			mustKC(t, ours, "savedefconfig", "-o", filepath.Join(dir, "our_defconfig"))
			r, _ = os.ReadFile(filepath.Join(dir, "real_defconfig"))
			o, _ = os.ReadFile(filepath.Join(dir, "our_defconfig"))
			if string(r) != string(o) {
				t.Errorf("kconfig-conf's savedefconfig %q, this tool's %q", r, o)
			}
			// olddefconfig of a .config that lost a line and holds a stale one.
			stale := string(o) + "CONFIG_STALE=y\n"
			for _, name := range []string{"real.old", "our.old"} {
				os.WriteFile(filepath.Join(dir, name), []byte(stale), 0o644)
			}
			real(filepath.Join(dir, "real.old"), "--olddefconfig")
			mustKC(t, filepath.Join(dir, "our.old"), "oldconfig", "-defaults")
			r, _ = os.ReadFile(filepath.Join(dir, "real.old"))
			o, _ = os.ReadFile(filepath.Join(dir, "our.old"))
			if string(r) != string(o) {
				t.Errorf("after olddefconfig, kconfig-conf's .config:\n%s\nthis tool's:\n%s", r, o)
			}
		})
	}
}
