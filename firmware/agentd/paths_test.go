package agentd

import (
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/firmware/config"
)

func TestOverridePaths(t *testing.T) {
	base := func() *config.Config {
		return &config.Config{Datastores: []config.Datastore{
			{Name: "ds0", Path: "/srv/shared"},
			{Name: "ds1", Device: "/dev/mapper/lun1"},
		}}
	}
	cfg := base()
	if err := overridePaths(cfg, map[string]string{"ds0": "/mnt/h1/shared", "ds1": "/dev/sdc"}); err != nil {
		t.Fatal(err)
	}
	if got := cfg.Datastores[0]; got.Path != "/mnt/h1/shared" || got.Device != "" {
		t.Errorf("ds0 = %+v; want the folder moved, still a folder", got)
	}
	if got := cfg.Datastores[1]; got.Device != "/dev/sdc" || got.Path != "" {
		t.Errorf("ds1 = %+v; want the device moved, still a device", got)
	}
	for _, tc := range []struct {
		name  string
		paths map[string]string
		want  string
	}{
		{"unknown", map[string]string{"ds9": "/x"}, `no datastore "ds9" (fix: name one of ds0, ds1)`},
		{"relative", map[string]string{"ds1": "dev/sdc"}, "not an absolute path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base()
			err := overridePaths(cfg, tc.paths)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want it to say %q", err, tc.want)
			}
			if cfg.Datastores[0].Path != "/srv/shared" || cfg.Datastores[1].Device != "/dev/mapper/lun1" {
				t.Errorf("a refused override changed the config: %+v", cfg.Datastores)
			}
		})
	}
}

func TestParseDatastorePath(t *testing.T) {
	m := map[string]string{}
	if err := ParseDatastorePath(m, "ds1=/dev/sdc"); err != nil || m["ds1"] != "/dev/sdc" {
		t.Fatalf("ds1=/dev/sdc: %v, %v", err, m)
	}
	for _, arg := range []string{"ds1", "=/x", "ds2=", "ds1=/dev/sdd"} {
		if err := ParseDatastorePath(m, arg); err == nil {
			t.Errorf("%q accepted; want an error", arg)
		}
	}
}
