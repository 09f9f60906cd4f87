package lab

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestOptionsWithDefaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Options
		want Options // compared when err is ""
		err  string
	}{
		{name: "defaults", in: Options{Hosts: 3, Links: 2, Executable: "/v"},
			want: Options{Name: "lab", Hosts: 3, Links: 2, VMs: 6, WatchdogAction: ActionReset, Executable: "/v"}},
		{name: "explicit", in: Options{Name: "x-1", Hosts: 16, Links: 8, VMs: 1, WatchdogAction: ActionPowerOff, Executable: "/v"},
			want: Options{Name: "x-1", Hosts: 16, Links: 8, VMs: 1, WatchdogAction: ActionPowerOff, Executable: "/v"}},
		{name: "no hosts", in: Options{Links: 1}, err: "0 hosts: a lab has 1 to 32"},
		{name: "too many hosts", in: Options{Hosts: 33, Links: 1}, err: "pass --hosts between 1 and 32"},
		{name: "no links", in: Options{Hosts: 1}, err: "0 links"},
		{name: "too many links", in: Options{Hosts: 1, Links: 9}, err: "pass --links between 1 and 8"},
		{name: "negative vms", in: Options{Hosts: 1, Links: 1, VMs: -1}, err: "-1 VMs"},
		{name: "bad action", in: Options{Hosts: 1, Links: 1, WatchdogAction: "halt"}, err: `watchdog action "halt"`},
		{name: "bad name", in: Options{Name: "Lab_1", Hosts: 1, Links: 1}, err: `lab name "Lab_1"`},
		{name: "long name", in: Options{Name: strings.Repeat("a", 25), Hosts: 1, Links: 1}, err: "1 to 24 characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.in.withDefaults()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrInvalidOptions) {
					t.Fatalf("err = %v, want ErrInvalidOptions with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestIsLabNS(t *testing.T) {
	for _, tc := range []struct {
		lab, file string
		want      bool
	}{
		{"lab", "vl-lab-hub", true},
		{"lab", "vl-lab-h1", true},
		{"lab", "vl-lab-h16", true},
		{"lab", "vl-lab-h1-hub", false}, // the lab "lab-h1"
		{"lab", "vl-lab-h1-h2", false},
		{"lab", "vl-lab-x", false},
		{"lab", "vl-lab-h", false},
		{"lab", "vl-lab-h01", false},
		{"lab", "vl-lab-h+1", false},
		{"lab", "vl-labs-hub", false},
		{"lab-h1", "vl-lab-h1-hub", true},
		{"lab", "other", false},
	} {
		if got := isLabNS(tc.lab, tc.file); got != tc.want {
			t.Errorf("isLabNS(%q, %q) = %v, want %v", tc.lab, tc.file, got, tc.want)
		}
	}
}

func TestParsePartition(t *testing.T) {
	hosts := []string{"h1", "h2", "h3"}
	for _, tc := range []struct {
		name, spec string
		want       [][]string
		err        string
	}{
		{name: "two groups", spec: "h1,h2|h3", want: [][]string{{"h1", "h2"}, {"h3"}}},
		{name: "three groups", spec: "h3|h1|h2", want: [][]string{{"h3"}, {"h1"}, {"h2"}}},
		{name: "spaces", spec: " h1 , h2 | h3 ", want: [][]string{{"h1", "h2"}, {"h3"}}},
		{name: "one group", spec: "h1,h2,h3", want: [][]string{{"h1", "h2", "h3"}}},
		{name: "none", spec: "none", want: nil},
		{name: "missing host", spec: "h1|h3", err: "[h2] not named"},
		{name: "twice", spec: "h1,h2|h2,h3", err: "h2 is named twice"},
		{name: "unknown", spec: "h1,h2|h3,h4", err: `unknown host "h4"`},
		{name: "empty group", spec: "h1,h2||h3", err: "empty host name or group"},
		{name: "trailing comma", spec: "h1,h2,|h3", err: "empty host name or group"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePartition(tc.spec, hosts)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrBadPartition) {
					t.Fatalf("err = %v, want ErrBadPartition with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFormatPartition(t *testing.T) {
	for _, tc := range []struct {
		groups [][]string
		want   string
	}{
		{nil, "none"},
		{[][]string{{"h1", "h2"}, {"h3"}}, "h1,h2|h3"},
	} {
		if got := FormatPartition(tc.groups); got != tc.want {
			t.Errorf("FormatPartition(%v) = %q, want %q", tc.groups, got, tc.want)
		}
	}
}

func TestParseCgroup2Mount(t *testing.T) {
	for _, tc := range []struct {
		name, mounts, want string
	}{
		{"hybrid", "tmpfs /sys/fs/cgroup tmpfs rw 0 0\ncgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n", "/sys/fs/cgroup/unified"},
		{"unified", "proc /proc proc rw 0 0\ncgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0\n", "/sys/fs/cgroup"},
		{"escaped", "none /mnt/my\\040cgroups cgroup2 rw 0 0\n", "/mnt/my cgroups"},
		{"none", "cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseCgroup2Mount(strings.NewReader(tc.mounts))
			if tc.want == "" {
				if !errors.Is(err, ErrNoCgroup2) {
					t.Fatalf("err = %v, want ErrNoCgroup2", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestStateLookups(t *testing.T) {
	s := newState(Options{Name: "t", Hosts: 2, Links: 3, Executable: "/v"}, "/run/vigil-lab/t", "/cg/vigil-lab/t")
	for _, tc := range []struct {
		host, link string
		want       string // the hub veth, or an error part
	}{
		{"h1", "0", "h1-l0"},
		{"h2", "l2", "h2-l2"},
		{"h2", "2", "h2-l2"},
		{"h3", "0", `unknown host "h3" (fix: use one of [h1 h2])`},
		{"h1", "3", `unknown link "3" (fix: use an index from 0 to 2 or one of [l0 l1 l2])`},
		{"h1", "eth0", `unknown link "eth0"`},
	} {
		_, hl, err := s.hostLink(tc.host, tc.link)
		switch {
		case err != nil && !strings.Contains(err.Error(), tc.want):
			t.Errorf("hostLink(%s, %s): %v, want %q", tc.host, tc.link, err, tc.want)
		case err == nil && hl.HubVeth != tc.want:
			t.Errorf("hostLink(%s, %s) = %s, want %s", tc.host, tc.link, hl.HubVeth, tc.want)
		}
	}
	var uh *UnknownHostError
	if _, err := s.host("h9"); !errors.As(err, &uh) || uh.Host != "h9" {
		t.Errorf("host(h9): %v, want an UnknownHostError", err)
	}
}

func TestNewStateLayout(t *testing.T) {
	s := newState(Options{Name: "t", Hosts: 2, Links: 2, Executable: "/v",
		AgentCommand: func(h string) []string { return []string{"stand-in", h} }}, "/run/vigil-lab/t", "/cg/vigil-lab/t")
	h := s.Hosts[1]
	for _, tc := range []struct{ what, got, want string }{
		{"hub ns", s.HubNS, "vl-t-hub"},
		{"host ns", h.NS, "vl-t-h2"},
		{"cgroup", h.Agent.Cgroup, "/cg/vigil-lab/t/h2"},
		{"supervisor cgroup", s.Supervisor.Cgroup, "/cg/vigil-lab/t/supervisor"},
		{"agent", strings.Join(h.Agent.Argv, " "), "stand-in h2"},
		{"log", h.Agent.Log, "/run/vigil-lab/t/h2/agent.log"},
		{"supervisor", strings.Join(s.Supervisor.Argv, " "), "/v lab supervise --name t"},
		{"address", h.Links[1].Addr, "10.101.0.12"},
		{"veth", h.Links[1].Veth + " " + h.Links[1].HubVeth, "eth1 h2-l1"},
		{"isolation", s.Links[1].Isolation, "10.101.0.1"},
		{"bridge", s.Links[1].Bridge, "br1"},
		{"pins", s.PinDir, "/sys/fs/bpf/vigil-lab/t"},
		{"bmc cgroup", s.BMCCgroup, "/cg/vigil-lab/t/bmc"},
		{"bmc", h.BMC.Dir + " " + h.BMC.Credentials + " " + h.BMC.Log, "/run/vigil-lab/t/h2/bmc /run/vigil-lab/t/h2/bmc.cred /run/vigil-lab/t/h2/bmc.log"},
		{"bmc ports", fmt.Sprint(h.BMC.Port, " ", h.BMC.SerialPort), "6232 6302"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.what, tc.got, tc.want)
		}
	}
}

func TestNewStateNoBMC(t *testing.T) {
	s := newState(Options{Name: "t", Hosts: 2, Links: 1, Executable: "/v", NoBMC: true}, "/run/vigil-lab/t", "/cg/vigil-lab/t")
	if s.BMCCgroup != "" || s.Hosts[0].BMC != nil || s.Hosts[1].BMC != nil {
		t.Errorf("a lab without BMCs has BMCs: %q %+v", s.BMCCgroup, s.Hosts[0].BMC)
	}
}

func TestAgentArgs(t *testing.T) {
	got := strings.Join(AgentArgs("/bin/vigil", "lab", "h2"), " ")
	want := "/bin/vigil agent --config /run/vigil-lab/lab/cluster.toml --host h2 --api /run/vigil-lab/lab/h2/api.sock " +
		"--state /run/vigil-lab/lab/h2 --watchdog unix:/run/vigil-lab/lab/h2/watchdog.sock --vm-dir /run/vigil-lab/lab/h2/vms --log-format json" +
		" --datastore ds0=/run/vigil-lab/lab/h2/store/ds0 --datastore ds1=/run/vigil-lab/lab/h2/ds1"
	if got != want {
		t.Errorf("AgentArgs =\n%s\nwant\n%s", got, want)
	}
}
