//go:build !vigil_nolab

package cli

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/tools/lab"
)

func TestParseLab(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want labCall
		err  string // a part of the error; "" for success
	}{
		{name: "up", args: []string{"up", "--hosts", "3", "--links", "2"}, want: labCall{cmd: "up", name: "lab",
			up: lab.Options{Name: "lab", Hosts: 3, Links: 2, WatchdogAction: "reset"}}},
		{name: "up all flags", args: []string{"up", "--hosts=16", "--links=8", "--vms", "40", "--name", "big", "--watchdog-action", "poweroff"},
			want: labCall{cmd: "up", name: "big", up: lab.Options{Name: "big", Hosts: 16, Links: 8, VMs: 40, WatchdogAction: "poweroff"}}},
		{name: "up without hosts", args: []string{"up", "--links", "2"}, err: "--hosts 0: pass --hosts between 1 and 32"},
		{name: "up too many hosts", args: []string{"up", "--hosts", "33", "--links", "2"}, err: "--hosts 33"},
		{name: "up too many links", args: []string{"up", "--hosts", "2", "--links", "9"}, err: "--links 9: pass --links between 1 and 8"},
		{name: "up negative vms", args: []string{"up", "--hosts", "2", "--links", "1", "--vms", "-1"}, err: "--vms -1"},
		{name: "up bad action", args: []string{"up", "--hosts", "2", "--links", "1", "--watchdog-action", "halt"}, err: `--watchdog-action "halt"`},
		{name: "up stray argument", args: []string{"up", "--hosts", "2", "--links", "1", "now"}, err: "up takes 0 argument(s), have 1"},
		{name: "up bad name", args: []string{"up", "--hosts", "2", "--links", "1", "--name", "My_Lab"}, err: `lab name "My_Lab"`},
		{name: "down", args: []string{"down"}, want: labCall{cmd: "down", name: "lab"}},
		{name: "down named", args: []string{"down", "--name", "x"}, want: labCall{cmd: "down", name: "x"}},
		{name: "status", args: []string{"status", "--name", "x"}, want: labCall{cmd: "status", name: "x"}},
		{name: "cut", args: []string{"cut", "h1", "1"}, want: labCall{cmd: "cut", name: "lab", args: []string{"h1", "1"}}},
		{name: "cut flag after", args: []string{"cut", "h1", "l0", "--name", "x"}, want: labCall{cmd: "cut", name: "x", args: []string{"h1", "l0"}}},
		{name: "cut without link", args: []string{"cut", "h1"}, err: "cut takes 2 argument(s), have 1"},
		{name: "heal", args: []string{"heal", "h2", "0"}, want: labCall{cmd: "heal", name: "lab", args: []string{"h2", "0"}}},
		{name: "loss", args: []string{"loss", "h2", "0", "30"}, want: labCall{cmd: "loss", name: "lab", args: []string{"h2", "0", "30"}, pct: 30}},
		{name: "loss over 100", args: []string{"loss", "h2", "0", "101"}, err: `loss "101": pass a percentage from 0 to 100`},
		{name: "loss not a number", args: []string{"loss", "h2", "0", "lots"}, err: `loss "lots"`},
		{name: "loss negative", args: []string{"loss", "h2", "0", "-5"}, err: "flag provided but not defined: -5"},
		{name: "partition", args: []string{"partition", "h1,h2|h3"}, want: labCall{cmd: "partition", name: "lab", args: []string{"h1,h2|h3"}}},
		{name: "partition none", args: []string{"partition", "none"}, want: labCall{cmd: "partition", name: "lab", args: []string{"none"}}},
		{name: "partition split by the shell", args: []string{"partition", "h1,h2", "h3"}, err: "partition takes 1 argument(s), have 2"},
		{name: "freeze", args: []string{"freeze", "h3"}, want: labCall{cmd: "freeze", name: "lab", args: []string{"h3"}}},
		{name: "ds-fail", args: []string{"ds-fail", "h2", "ds1"}, want: labCall{cmd: "ds-fail", name: "lab", args: []string{"h2", "ds1"}}},
		{name: "ds-heal all", args: []string{"ds-heal", "all", "all", "--name", "x"}, want: labCall{cmd: "ds-heal", name: "x", args: []string{"all", "all"}}},
		{name: "ds-hang without datastore", args: []string{"ds-hang", "h1"}, err: "ds-hang takes 2 argument(s), have 1"},
		{name: "thaw", args: []string{"thaw", "h3"}, want: labCall{cmd: "thaw", name: "lab", args: []string{"h3"}}},
		{name: "poweroff", args: []string{"poweroff", "h1"}, want: labCall{cmd: "poweroff", name: "lab", args: []string{"h1"}}},
		{name: "poweron without host", args: []string{"poweron"}, err: "poweron takes 1 argument(s), have 0"},
		{name: "supervise", args: []string{"supervise", "--name", "x"}, want: labCall{cmd: "supervise", name: "x"}},
		{name: "up without BMCs", args: []string{"up", "--hosts", "2", "--links", "1", "--no-bmc"}, want: labCall{cmd: "up", name: "lab",
			up: lab.Options{Name: "lab", Hosts: 2, Links: 1, WatchdogAction: "reset", NoBMC: true}}},
		{name: "bmc-fail", args: []string{"bmc-fail", "h2"}, want: labCall{cmd: "bmc-fail", name: "lab", args: []string{"h2"}}},
		{name: "bmc-heal named", args: []string{"bmc-heal", "h2", "--name", "x"}, want: labCall{cmd: "bmc-heal", name: "x", args: []string{"h2"}}},
		{name: "bmc-fail without host", args: []string{"bmc-fail"}, err: "bmc-fail takes 1 argument(s), have 0"},
		{name: "bmc-power", args: []string{"bmc-power", "--name", "x", "--host", "h3"}, want: labCall{cmd: "bmc-power", name: "x", host: "h3"}},
		{name: "bmc-power without host", args: []string{"bmc-power", "--name", "x"}, err: "bmc-power needs --host HOST"},
		{name: "no-bmc on status", args: []string{"status", "--no-bmc"}, err: "flag provided but not defined: -no-bmc"},
		{name: "unknown", args: []string{"reboot", "h1"}, err: `unknown subcommand "reboot"`},
		{name: "nothing", args: nil, err: "want a subcommand"},
		{name: "unknown flag", args: []string{"status", "--verbose"}, err: "flag provided but not defined: -verbose"},
		{name: "hosts flag on cut", args: []string{"cut", "h1", "0", "--hosts", "3"}, err: "flag provided but not defined: -hosts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseLab(tc.args)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestLabUsage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"no subcommand", []string{"lab"}, 2, "", "vigil lab: want a subcommand\nusage: vigil lab up --hosts N"},
		{"help", []string{"lab", "help"}, 0, "usage: vigil lab up --hosts N", ""},
		{"help flag", []string{"lab", "cut", "-h"}, 0, "Exit status: 0 success, 1 failure, 2 usage error.", ""},
		{"bad arguments", []string{"lab", "loss", "h1", "0"}, 2, "", "loss takes 3 argument(s), have 2"},
		{"listed", []string{"help"}, 0, "lab        run a cluster of real agents", ""},
		{"bmc commands", []string{"lab", "help"}, 0, "bmc-fail   HOST's BMC answers nothing", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Run(tc.args, &out, &errb)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, errb.String())
			}
			if !strings.Contains(out.String(), tc.stdout) || (tc.stdout == "" && out.Len() != 0) {
				t.Errorf("stdout = %q, want %q", out.String(), tc.stdout)
			}
			if !strings.Contains(errb.String(), tc.stderr) || (tc.stderr == "" && errb.Len() != 0) {
				t.Errorf("stderr = %q, want %q", errb.String(), tc.stderr)
			}
		})
	}
}
