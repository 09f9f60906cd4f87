//go:build !vigil_noipmilan

package cli

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/drivers/ipmi"
	"github.com/vigil-ha/vigil/drivers/ipmi/ipmitest"
)

const fenceCluster = `
[cluster]
name = "unit"
key_file = "/etc/vigil/unit.key"

[timing]
bmc_poll = "5ms"

[[links]]
name = "mgmt"

[[datastores]]
name = "ds1"
path = "/srv/vigil"

[[hosts]]
id = 1
name = "h1"
addresses = ["10.0.0.1"]
cpu = 8
memory = "16GiB"

[[hosts]]
id = 2
name = "h2"
addresses = ["10.0.0.2"]
bmc = "10.9.0.2:6232"
bmc_credentials = "CRED2"
cpu = 8
memory = "16GiB"

[[hosts]]
id = 3
name = "h3"
addresses = ["10.0.0.3"]
bmc = "10.9.0.3"
bmc_credentials = "CRED3"
cpu = 8
memory = "16GiB"
`

func TestFence(t *testing.T) {
	dir := t.TempDir()
	cred2, cred3 := filepath.Join(dir, "h2.cred"), filepath.Join(dir, "h3.cred")
	os.WriteFile(cred2, []byte("user admin\npassword secret\n"), 0o600)
	os.WriteFile(cred3, []byte("user admin\npassword secret\n"), 0o600)
	os.Chmod(cred3, 0o640)
	cfg := filepath.Join(dir, "cluster.toml")
	text := strings.NewReplacer("CRED2", cred2, "CRED3", cred3).Replace(fenceCluster)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	var bmc *ipmitest.Fake
	var dialled []string
	old := fenceDial
	defer func() { fenceDial = old }()
	fenceDial = func(ctx context.Context, addr string, cred ipmi.Credentials) (ipmi.BMC, error) {
		dialled = append(dialled, addr)
		if cred.User != "admin" || cred.Password != "secret" {
			return nil, errors.New("credentials not passed on")
		}
		return bmc, nil
	}
	for _, tc := range []struct {
		name  string
		args  []string
		setup func(f *ipmitest.Fake)
		code  int
		out   string // in stdout
		errs  string // in stderr
		off   bool   // the fake's host is off afterwards
	}{
		{name: "no yes", args: []string{"h2"}, code: 2, errs: "add --yes"},
		{name: "test and yes", args: []string{"--test", "h2", "--yes"}, code: 2, errs: "drop --yes"},
		{name: "two hosts", args: []string{"h2", "h3", "--yes"}, code: 2, errs: "want one host, have 2"},
		{name: "unknown host", args: []string{"h9", "--yes"}, code: 1, errs: `no host "h9"`},
		{name: "no bmc", args: []string{"h1", "--yes"}, code: 1, errs: "h1 has no bmc"},
		{name: "open credentials", args: []string{"h3", "--yes"}, code: 1, errs: "chmod 600"},
		{name: "test", args: []string{"--test", "h2"}, code: 0, out: "BMC of h2 (10.9.0.2:6232): ok: IPMI 2.0, firmware 1.00, manufacturer 45728, product 1, cipher suite 17; chassis power on"},
		{name: "test unreachable", args: []string{"--test", "h2"}, setup: func(f *ipmitest.Fake) { f.SetUnreachable(true) }, code: 1, errs: "BMC of h2 (10.9.0.2:6232)"},
		{name: "fence", args: []string{"h2", "--yes"}, code: 0, out: "fenced h2 in", off: true},
		{name: "already off", args: []string{"h2", "--yes"}, setup: func(f *ipmitest.Fake) { f.SetOn(false) }, code: 0, out: "read back power off after 1 read(s)", off: true},
		{name: "liar", args: []string{"h2", "--yes", "--timeout", "40ms"}, setup: func(f *ipmitest.Fake) { f.SetLiar(true) }, code: 1, errs: "h2 is NOT proven off after 40ms: it still reads on"},
		{name: "refused", args: []string{"h2", "--yes"}, setup: func(f *ipmitest.Fake) { f.SetAuthFailure(true) }, code: 1, errs: "power off"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bmc, dialled = ipmitest.New(), nil
			if tc.setup != nil {
				tc.setup(bmc)
			}
			code, out, errs := runCLI(append([]string{"fence", "--config", cfg}, tc.args...)...)
			if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errs, tc.errs) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, out, errs, tc.code, tc.out, tc.errs)
			}
			if bmc.On() == tc.off {
				t.Errorf("the host is on=%v afterwards, want off=%v", bmc.On(), tc.off)
			}
			if tc.code == 2 && len(dialled) > 0 {
				t.Errorf("a usage error dialled %v", dialled)
			}
		})
	}
}
