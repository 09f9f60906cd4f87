package boot

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func gz64(s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

func TestParseCmdline(t *testing.T) {
	line := "console=ttyS0 quiet vigil.host=h2 vigil.config=" + gz64("[cluster]\n") +
		" vigil.key=" + base64.StdEncoding.EncodeToString([]byte("abcd\n")) +
		" vigil.flags=--self-fence=ipmi-off,--ebpf=exits=off vigil.nic.l1=eth3"
	s, err := ParseCmdline(line)
	if err != nil {
		t.Fatal(err)
	}
	if s.Host != "h2" || string(s.Config) != "[cluster]\n" || string(s.Key) != "abcd\n" || s.Source != "cmdline" {
		t.Fatalf("settings = %+v", s)
	}
	if !slices.Equal(s.Flags, []string{"--self-fence=ipmi-off", "--ebpf=exits=off"}) || s.NICs["l1"] != "eth3" {
		t.Fatalf("flags %v, nics %v", s.Flags, s.NICs)
	}
	for _, tc := range []struct{ line, want string }{
		{"vigil.config=!!!", "not base64"},
		{"vigil.config=" + base64.StdEncoding.EncodeToString([]byte("plain")), "not gzip"},
		{"vigil.key=%%", "vigil.key is not base64"},
	} {
		if _, err := ParseCmdline(tc.line); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "fix:") {
			t.Errorf("%q: err = %v, want %q and a fix", tc.line, err, tc.want)
		}
	}
	long := "vigil.host=h1 " + strings.Repeat("x", MaxCmdline)
	if _, err := ParseCmdline(long); err == nil || !strings.Contains(err.Error(), "config disk") {
		t.Errorf("a full command line without vigil.config: err = %v, want the config disk advice", err)
	}
	if s, _ := ParseCmdline("console=ttyS0"); s.Source != "" {
		t.Errorf("no vigil keys: Source = %q, want none", s.Source)
	}
}

func tarOf(t *testing.T, files map[string]string) []byte {
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	for name, text := range files {
		w.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(text)), Typeflag: tar.TypeReg})
		w.Write([]byte(text))
	}
	w.Close()
	return append(b.Bytes(), make([]byte, 4096)...) // the rest of the disk
}

func TestConfigDisk(t *testing.T) {
	disk := tarOf(t, map[string]string{"cluster.toml": "[cluster]\n", "cluster.key": "k\n", "host": "h3\n", "agent.flags": "# comment\n--self-fence=ipmi-off\n\n"})
	s, err := ParseConfigDisk(bytes.NewReader(disk))
	if err != nil {
		t.Fatal(err)
	}
	if s.Host != "h3" || string(s.Config) != "[cluster]\n" || string(s.Key) != "k\n" || !slices.Equal(s.Flags, []string{"--self-fence=ipmi-off"}) {
		t.Fatalf("settings = %+v", s)
	}
	_, err = ParseConfigDisk(bytes.NewReader(tarOf(t, map[string]string{"cluster.toml": "x"})))
	if err == nil || !strings.Contains(err.Error(), "cluster.key, host") {
		t.Fatalf("missing files: err = %v", err)
	}
	if _, err := ParseConfigDisk(strings.NewReader(strings.Repeat("junk", 200))); err == nil || !strings.Contains(err.Error(), "not a tar") {
		t.Fatalf("junk disk: err = %v", err)
	}
}

func TestMergeAndCheck(t *testing.T) {
	disk := Settings{Host: "h1", Config: []byte("c"), Key: []byte("k"), Flags: []string{"--a"}, Source: "disk /dev/vdb"}
	cmd := Settings{Host: "h2", Flags: []string{"--b"}, Source: "cmdline"}
	m := Merge(cmd, disk)
	if m.Host != "h2" || string(m.Config) != "c" || !slices.Equal(m.Flags, []string{"--a", "--b"}) || m.Source != "cmdline + disk /dev/vdb" {
		t.Fatalf("Merge = %+v: the command line wins item by item", m)
	}
	if err := m.Check(); err != nil {
		t.Fatal(err)
	}
	err := Settings{Host: "h1"}.Check()
	if err == nil || !strings.Contains(err.Error(), "cluster file") || !strings.Contains(err.Error(), "cluster key") {
		t.Fatalf("Check = %v, want the missing cluster file and key named", err)
	}
}

func TestReadConfigDir(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadConfigDir(dir); err == nil {
		t.Fatal("an empty folder has no cluster")
	}
	os.WriteFile(filepath.Join(dir, "cluster.toml"), []byte("c"), 0o644)
	os.WriteFile(filepath.Join(dir, "cluster.key"), []byte("k"), 0o600)
	os.WriteFile(filepath.Join(dir, "host"), []byte("h4\n"), 0o644)
	s, err := ReadConfigDir(dir)
	if err != nil || s.Host != "h4" || string(s.Config) != "c" || string(s.Key) != "k" || s.Source != dir {
		t.Fatalf("ReadConfigDir = %+v, %v", s, err)
	}
}
