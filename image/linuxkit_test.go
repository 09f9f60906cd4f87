package image

import (
	"os"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// linuxkit is the part of a LinuxKit definition the test checks.
type linuxkit struct {
	Kernel struct {
		Image   string `yaml:"image"`
		Cmdline string `yaml:"cmdline"`
	} `yaml:"kernel"`
	Init     []string      `yaml:"init"`
	Onboot   []lkContainer `yaml:"onboot"`
	Services []lkContainer `yaml:"services"`
	Files    []struct {
		Path     string `yaml:"path"`
		Source   string `yaml:"source"`
		Contents string `yaml:"contents"`
		Mode     string `yaml:"mode"`
	} `yaml:"files"`
}

type lkContainer struct {
	Name         string   `yaml:"name"`
	Image        string   `yaml:"image"`
	Command      []string `yaml:"command"`
	Net          string   `yaml:"net"`
	Pid          string   `yaml:"pid"`
	Capabilities []string `yaml:"capabilities"`
	Devices      []struct {
		Path  string `yaml:"path"`
		Type  string `yaml:"type"`
		Major int    `yaml:"major"`
		Minor int    `yaml:"minor"`
		Mode  string `yaml:"mode"`
	} `yaml:"devices"`
	Binds []string `yaml:"binds"`
}

// TestLinuxKit checks the LinuxKit definition of the host image: it
// parses, strictly; it runs the vigil binary's boot as a service with the
// devices and folders the agent needs; it loads the modules the u-root
// image carries; and it ships the cluster file and a private key.
func TestLinuxKit(t *testing.T) {
	b, err := os.ReadFile("linuxkit.yml")
	if err != nil {
		t.Fatal(err)
	}
	var lk linuxkit
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&lk); err != nil {
		t.Fatalf("linuxkit.yml: %v", err)
	}
	if lk.Kernel.Image == "" || len(lk.Init) == 0 || !strings.Contains(lk.Kernel.Cmdline, "console=ttyS0") {
		t.Errorf("kernel %+v, init %v: want a kernel with the serial console and an init", lk.Kernel, lk.Init)
	}
	var vigil *lkContainer
	for i, s := range lk.Services {
		if s.Name == "vigil" {
			vigil = &lk.Services[i]
		}
	}
	if vigil == nil {
		t.Fatal("no vigil service")
	}
	if !slices.Equal(vigil.Command, []string{"/usr/bin/vigil", "boot"}) {
		t.Errorf("the vigil service runs %v, want /usr/bin/vigil boot", vigil.Command)
	}
	if vigil.Net != "host" {
		t.Errorf("the vigil service's net is %q: heartbeats need the host's NICs", vigil.Net)
	}
	var devs []string
	for _, d := range vigil.Devices {
		devs = append(devs, d.Path)
	}
	for _, want := range []string{"/dev/watchdog", "/dev/ipmi0", "/dev/ttyS0"} {
		if !slices.Contains(devs, want) {
			t.Errorf("the vigil service lacks the device %s (has %v)", want, devs)
		}
	}
	for _, want := range []string{"/etc/vigil:/etc/vigil", "/var/lib/vigil:/var/lib/vigil", "/run/vigil:/run/vigil", "/sys/fs/bpf:/sys/fs/bpf"} {
		if !slices.Contains(vigil.Binds, want) {
			t.Errorf("the vigil service lacks the bind %s", want)
		}
	}
	for _, want := range []string{"CAP_NET_ADMIN", "CAP_BPF", "CAP_SYS_ADMIN"} {
		if !slices.Contains(vigil.Capabilities, want) {
			t.Errorf("the vigil service lacks %s", want)
		}
	}
	var modprobe []string
	for _, o := range lk.Onboot {
		if o.Name == "modules" {
			modprobe = o.Command
		}
	}
	for _, m := range DefaultModules {
		if !slices.Contains(modprobe, m) {
			t.Errorf("onboot modules does not load %s, which the u-root image carries (%v)", m, modprobe)
		}
	}
	files := map[string]string{}
	for _, f := range lk.Files {
		files[f.Path] = f.Mode
	}
	if _, ok := files["etc/vigil/cluster.toml"]; !ok {
		t.Error("no etc/vigil/cluster.toml in files")
	}
	if files["etc/vigil/cluster.key"] != "0600" {
		t.Errorf("etc/vigil/cluster.key has mode %q, want 0600 (the agent refuses a key others can read)", files["etc/vigil/cluster.key"])
	}
}
