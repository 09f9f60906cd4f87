package lab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestShellCommand(t *testing.T) {
	for _, tc := range []struct {
		name string
		argv []string
		want string // "" for an error
	}{
		{"plain", []string{"/bin/vigil", "lab", "bmc-power", "--name", "lab", "--host", "h1"}, "'/bin/vigil' 'lab' 'bmc-power' '--name' 'lab' '--host' 'h1'"},
		{"spaces and dollars", []string{"/opt/my vigil/$x", "a"}, "'/opt/my vigil/$x' 'a'"},
		{"single quote", []string{"/opt/it's/vigil"}, ""},
		{"double quote", []string{`/opt/"q"/vigil`}, ""},
		{"empty", []string{"/bin/vigil", ""}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := shellCommand(tc.argv)
			if tc.want == "" {
				if err == nil || !strings.Contains(err.Error(), "fix:") {
					t.Errorf("shellCommand(%q) = %q, %v; want an error with its fix", tc.argv, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("shellCommand(%q) = %q, %v; want %q", tc.argv, got, err, tc.want)
			}
		})
	}
}

func TestBMCFiles(t *testing.T) {
	dir := t.TempDir()
	h := &hostState{Name: "h3", Dir: dir, BMC: newBMC(3, dir)}
	if err := writeBMCFiles(h, []string{"/bin/vigil", "lab", "bmc-power", "--name", "lab", "--host", "h3"}); err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(filepath.Join(dir, "bmc", "lan.conf"))
	if err != nil {
		t.Fatal(err)
	}
	user, password := readCred(t, filepath.Join(dir, "bmc.cred"))
	for _, want := range []string{
		`name "h3"`,
		"addr 10.100.0.1 6233",
		"priv_limit admin",
		"allowed_auths_admin none md2 md5 straight",
		"serial 15 127.0.0.1 6303 codec VM ipmb 0x20",
		`startcmd "'/bin/vigil' 'lab' 'bmc-power' '--name' 'lab' '--host' 'h3'"`,
		"startnow true",
		"kill_wait 0", // never SIGKILL the power process: the BMC would read off too early
		`user 2 true "admin" "` + password + `" admin 10 none md2 md5 straight`,
	} {
		if !strings.Contains(string(conf), want+"\n") {
			t.Errorf("lan.conf lacks %q:\n%s", want, conf)
		}
	}
	if user != "admin" || len(password) != 16 {
		t.Errorf("bmc.cred: user %q password %q", user, password)
	}
	for _, f := range []string{"bmc.cred", "bmc/lan.conf"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, want mode 0600", f, err)
		}
	}
	if emu, err := os.ReadFile(filepath.Join(dir, "bmc", "h3.emu")); err != nil || !strings.Contains(string(emu), "mc_enable 0x20") {
		t.Errorf("h3.emu: %q, %v", emu, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "bmc", "state")); err != nil || !fi.IsDir() {
		t.Errorf("state folder: %v", err)
	}
	// A second write makes a new password.
	if err := writeBMCFiles(h, []string{"/bin/vigil"}); err != nil {
		t.Fatal(err)
	}
	if _, again := readCred(t, filepath.Join(dir, "bmc.cred")); again == password {
		t.Error("the password did not change")
	}
}

func TestBMCStatusString(t *testing.T) {
	for _, tc := range []struct {
		b    *BMCStatus
		want string
	}{
		{nil, "-"},
		{&BMCStatus{Addr: "10.100.0.1:6231", Running: true, Power: PowerOn}, "10.100.0.1:6231 ok on"},
		{&BMCStatus{Addr: "10.100.0.1:6231", Running: true, Power: PowerOff}, "10.100.0.1:6231 ok off"},
		{&BMCStatus{Addr: "10.100.0.1:6232", Running: true, Failed: true, Power: PowerOn}, "10.100.0.1:6232 failed on"},
		{&BMCStatus{Addr: "10.100.0.1:6232", Failed: true}, "10.100.0.1:6232 not running"},
	} {
		if got := tc.b.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.b, got, tc.want)
		}
	}
}

func TestStatusTableBMC(t *testing.T) {
	st := &Status{Name: "t", Links: []string{"l0"}, Datastores: []string{"ds0"}, Partition: "none", Hosts: []HostStatus{
		{Name: "h1", Power: PowerOn, AgentPID: 7, AgentRunning: true, Links: []LinkStatus{{Name: "l0"}}, Datastores: []string{"ok"},
			BMC: &BMCStatus{Addr: "10.100.0.1:6231", Running: true, Power: PowerOn}},
		{Name: "h2", Power: PowerOff, OffBy: "bmc", Links: []LinkStatus{{Name: "l0"}}, Datastores: []string{"ok"},
			BMC: &BMCStatus{Addr: "10.100.0.1:6232", Running: true, Failed: true, Power: PowerOff}},
	}}
	var b strings.Builder
	if err := st.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	want := `lab t: partition none, supervisor not running
HOST  POWER      AGENT  l0  ds0  WATCHDOG  BMC
h1    on         7      up  ok   ?         10.100.0.1:6231 ok on
h2    off (bmc)  -      up  ok   ?         10.100.0.1:6232 failed off
`
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}
