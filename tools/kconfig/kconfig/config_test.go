package kconfig

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func read(t *testing.T, s string) []Assignment {
	t.Helper()
	as, err := ReadConfig(".config", strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return as
}

func TestReadConfig(t *testing.T) {
	as := read(t, "#\n# header\n#\nCONFIG_A=y\n\n# CONFIG_B is not set\nCONFIG_C=n\n")
	want := []Assignment{{"A", true, 4}, {"B", false, 6}, {"C", false, 7}}
	if !reflect.DeepEqual(as, want) {
		t.Errorf("ReadConfig = %v, want %v", as, want)
	}
	for _, tt := range []struct{ in, msg string }{
		{"CONFIG_A=y\nCONFIG_B=m\n", ".config:2: CONFIG_B=m: vigil's symbols are bool"},
		{"CONFIG_A\n", ".config:1: \"CONFIG_A\": want CONFIG_NAME=y"},
		{"A=y\n", ".config:1: \"A=y\": want"},
		{"CONFIG_A-B=y\n", ".config:1:"},
	} {
		_, err := ReadConfig(".config", strings.NewReader(tt.in))
		var se *SyntaxError
		if !errors.As(err, &se) || !strings.HasPrefix(err.Error(), tt.msg) {
			t.Errorf("ReadConfig(%q) error %v: want a *SyntaxError starting %q", tt.in, err, tt.msg)
		}
	}
}

func TestWriteAndCheck(t *testing.T) {
	k := parseSample(t)
	c := k.Resolve(map[string]bool{"C": false})
	var b strings.Builder
	if err := c.Write(&b); err != nil {
		t.Fatal(err)
	}
	want := `#
# Automatically generated file; DO NOT EDIT.
# test features
#

#
# Base
#
CONFIG_A=y
# CONFIG_B is not set

#
# Extras
#
# CONFIG_C is not set
# CONFIG_D is not set
# CONFIG_E is not set
`
	if b.String() != want {
		t.Errorf("Write:\n%s\nwant:\n%s", b.String(), want)
	}
	back, err := k.Check(".config", read(t, b.String()))
	if err != nil {
		t.Fatalf("Check of a written .config: %v", err)
	}
	if !reflect.DeepEqual(back.Value, c.Value) {
		t.Errorf("read back %v, wrote %v", back.Value, c.Value)
	}
	if got := strings.Join(c.Tags(), ","); got != "t_nob,t_noc,t_nod,t_noe" {
		t.Errorf("Tags = %s", got)
	}

	// A symbol whose dependencies fail has no line.
	var off strings.Builder
	k.Resolve(map[string]bool{"A": false}).Write(&off)
	if strings.Contains(off.String(), "CONFIG_C") || strings.Contains(off.String(), "CONFIG_E") {
		t.Errorf("with A off, C and E (their dependencies fail) are written:\n%s", off.String())
	}
}

func TestCheckErrors(t *testing.T) {
	k := parseSample(t)
	full := "CONFIG_A=y\n# CONFIG_B is not set\n# CONFIG_C is not set\n# CONFIG_D is not set\n# CONFIG_E is not set\n"
	tests := []struct {
		name, config, msg string
	}{
		{"unknown", full + "CONFIG_ZZ=y\n", ".config:6: unknown symbol CONFIG_ZZ: run make oldconfig"},
		{"dependency", strings.Replace(strings.Replace(full, "CONFIG_A=y", "# CONFIG_A is not set", 1), "# CONFIG_C is not set", "CONFIG_C=y", 1),
			".config:3: CONFIG_C=y but it depends on A && !B, which this configuration does not meet (CONFIG_A is not set): enable those or disable CONFIG_C (make menuconfig; make olddefconfig turns it off)"},
		{"missing", strings.Replace(full, "# CONFIG_B is not set\n", "", 1), ".config: CONFIG_B is missing: run make oldconfig"},
		{"selected", strings.Replace(full, "# CONFIG_D is not set", "CONFIG_D=y", 1), ".config:5: CONFIG_E is not set but CONFIG_D selects it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := k.Check(".config", read(t, tt.config))
			var ce *ConfigError
			if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), tt.msg) {
				t.Errorf("Check error %v: want a *ConfigError starting %q", err, tt.msg)
			}
		})
	}
	// A symbol whose dependencies fail may be left out.
	if _, err := k.Check(".config", read(t, "# CONFIG_A is not set\n# CONFIG_B is not set\n# CONFIG_D is not set\n")); err != nil {
		t.Errorf("Check without the lines of C and E, whose dependencies fail: %v", err)
	}
}

func TestKnown(t *testing.T) {
	k := parseSample(t)
	user, unknown := k.Known(read(t, "CONFIG_A=y\nCONFIG_OLD=y\n# CONFIG_A is not set\n"))
	if !reflect.DeepEqual(user, map[string]bool{"A": false}) {
		t.Errorf("user values %v: want the later line to win", user)
	}
	if len(unknown) != 1 || unknown[0].Name != "OLD" || unknown[0].Line != 2 {
		t.Errorf("unknown %v", unknown)
	}
}

func TestSaveDefconfig(t *testing.T) {
	k := parseSample(t)
	tests := []struct {
		user map[string]bool
		want string
	}{
		{nil, ""},
		{map[string]bool{"C": false, "B": false}, "# CONFIG_C is not set\n"},
		{map[string]bool{"A": false}, "# CONFIG_A is not set\n"},
		{map[string]bool{"B": true, "E": true}, "CONFIG_B=y\n"}, // D defaults to y with B, and selects E
		{map[string]bool{"D": true, "E": true}, "CONFIG_D=y\n"}, // E is selected, not set
	}
	for _, tt := range tests {
		c := k.Resolve(tt.user)
		var b strings.Builder
		if err := c.SaveDefconfig(&b); err != nil {
			t.Fatal(err)
		}
		if b.String() != tt.want {
			t.Errorf("SaveDefconfig of %v = %q, want %q", tt.user, b.String(), tt.want)
		}
		// The defconfig resolves to the same configuration.
		user, _ := k.Known(read(t, b.String()))
		if got := k.Resolve(user).Value; !reflect.DeepEqual(got, c.Value) {
			t.Errorf("defconfig %q resolves to %v, not %v", b.String(), got, c.Value)
		}
	}
}

func TestGenerate(t *testing.T) {
	k := parseSample(t)
	files, err := k.Generate("features")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2*len(k.Symbols)+1 {
		t.Errorf("%d files, want a pair per symbol and the list: %v", len(files), SortedNames(files))
	}
	on, off := string(files["a_enabled.go"]), string(files["a_disabled.go"])
	for _, c := range []struct{ src, want string }{
		{on, "//go:build !t_noa\n"}, {on, "const HasA = true\n"},
		{off, "//go:build t_noa\n"}, {off, "const HasA = false\n"},
		{string(files["features_gen.go"]), `{Symbol: "C", Tag: "t_noc", Prompt: "feature c", Summary: "Go build tag: t_noc", DependsOn: "A && !B", Enabled: HasC}`},
	} {
		if !strings.HasPrefix(c.src, GeneratedHeader+"\n") || !strings.Contains(c.src, c.want) {
			t.Errorf("generated file lacks the header or %q:\n%s", c.want, c.src)
		}
	}
	for sym, want := range map[string]string{"IPMI_LAN": "IPMILAN", "WATCHDOG_HW": "WatchdogHW", "IMAGE_BOOT": "ImageBoot", "EBPF": "EBPF"} {
		if got := GoName(sym); got != want {
			t.Errorf("GoName(%s) = %s, want %s", sym, got, want)
		}
	}
}
