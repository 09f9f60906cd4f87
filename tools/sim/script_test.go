package sim

import (
	"strings"
	"testing"
	"time"
)

func TestParseScript(t *testing.T) {
	src := `# a comment
set vm-boot 2s
set seed 7
5s poweroff h2   # trailing comment
5s cut h1 mgmt
6s oneway h1 h2
7s ds slow ds1 3s h3
8s partition h1|h2,h3
run 90s
`
	s, err := ParseScript("cmds", src, testSpec(4, 2, 1), Names{Links: []string{"mgmt", "storage"}, Datastores: []string{"ds1"}}, DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	if s.Params.VMBoot != 2*time.Second || s.Params.Seed != 7 || s.End != 90*time.Second || len(s.Cmds) != 5 {
		t.Fatalf("parsed %+v", s)
	}
	c := s.Cmds
	if c[0].Op != "poweroff" || c[0].H != 1 || c[0].At != 5*time.Second || c[0].Line != 4 || c[0].Text != "poweroff h2" {
		t.Errorf("poweroff: %+v", c[0])
	}
	if c[1].L != 0 || c[2].H2 != 1 || c[2].L != -1 {
		t.Errorf("cut %+v, oneway %+v", c[1], c[2])
	}
	if c[3].Mode != "slow" || c[3].D != 3*time.Second || c[3].H != 2 || c[3].L != 0 {
		t.Errorf("ds: %+v", c[3])
	}
	if g := c[4].Group; len(g) != 4 || g[0] != 0 || g[1] != 1 || g[2] != 1 || g[3] != 0 {
		t.Errorf("partition groups %v", g)
	}
}

func TestParseScriptErrors(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"5s poweroff h9", `cmds:1: poweroff: unknown host "h9" (hosts: h1, h2, h3, h4); usage: TIME poweroff HOST`},
		{"poweroff h1", `cmds:1: "poweroff" is not a time: start the line with a duration since the start, e.g. "5s poweroff h1"`},
		{"5s explode h1", `cmds:1: unknown command "explode": use one of`},
		{"5s", `cmds:1: no command after the time`},
		{"5s cut h1", `cmds:1: cut: wrong number of arguments (1); usage: TIME cut HOST LINK`},
		{"5s cut h1 7", `cmds:1: cut: unknown link "7": use an index from 0 to 1`},
		{"5s loss h1 0 120", `cmds:1: loss: PERCENT "120" is not an integer in [0, 100]`},
		{"5s delay h1 0 soon", `cmds:1: delay: "soon" is not a duration`},
		{"5s ds melt 0", `cmds:1: ds: "melt" is not one of fail, hang, slow, heal`},
		{"5s ds slow 0", `cmds:1: ds: slow needs a DURATION`},
		{"5s bmc h1 broken", `cmds:1: bmc: "broken" is not one of unreachable, liar, ok`},
		{"5s crash vm9", `cmds:1: crash: unknown VM "vm9"`},
		{"5s partition h1", `cmds:1: partition: name at least two groups separated by |`},
		{"5s partition h1|h1", `cmds:1: partition: host "h1" is in two groups`},
		{"5s maintenance h1 enter", `cmds:1: maintenance: "h1" is not one of enter, exit`},
		{"set warp 9", `cmds:1: set: unknown key "warp": use vm-boot, host-boot, net-latency, ds-latency or seed`},
		{"set vm-boot", `cmds:1: set wants KEY VALUE`},
		{"run forever", `cmds:1: run: "forever" is not a duration; write e.g. "run 90s"`},
		{"5s poweroff h1\n3s poweron h1", `cmds:2: 3s comes before the previous command's 5s: keep the lines in time order`},
		{"90s poweroff h1", `cmds:1: command at 1m30s is after the end (1m0s): raise the "run" line`},
	} {
		_, err := ParseScript("cmds", tc.line, testSpec(4, 2, 1), Names{}, DefaultParams())
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to start with %q", tc.line, err, tc.want)
		}
	}
}

func TestParseScriptReportsEveryBadLine(t *testing.T) {
	_, err := ParseScript("cmds", "5s poweroff h9\n6s thaw\n7s poweron h1\n", testSpec(2, 1, 1), Names{}, DefaultParams())
	if err == nil || !strings.Contains(err.Error(), "cmds:1:") || !strings.Contains(err.Error(), "cmds:2:") {
		t.Errorf("error %v, want lines 1 and 2", err)
	}
}
