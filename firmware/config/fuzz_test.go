package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	toml "github.com/pelletier/go-toml/v2"
)

// FuzzParse feeds arbitrary documents to Parse. It must never panic; what it
// rejects it rejects with Problems; what it accepts must convert to a
// consistent Spec, pass validation again, and survive a round trip through
// TOML unchanged.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.toml")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(minimal))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 || c != nil {
				t.Fatalf("Parse = %v, %v; want nil and Problems", c, err)
			}
			for _, p := range ps {
				if p.Msg == "" {
					t.Fatalf("problem without a message: %+v", p)
				}
			}
			return
		}
		s := c.Spec()
		if len(s.Hosts) != len(c.Hosts) || len(s.VMs) != len(c.VMs) || s.Links != len(c.Links) || s.Datastores != len(c.Datastores) {
			t.Fatalf("spec sizes differ from the config: %+v", s)
		}
		for i, v := range s.VMs {
			if v.Host < -1 || v.Host >= len(s.Hosts) || (v.Host == -1) != (c.VMs[i].Host == "") {
				t.Fatalf("vms[%d].Host = %d", i, v.Host)
			}
			if len(v.After) != len(c.VMs[i].After) {
				t.Fatalf("vms[%d].After = %v, config has %q", i, v.After, c.VMs[i].After)
			}
			for _, a := range v.After {
				if a < 0 || a >= len(s.VMs) || a == i {
					t.Fatalf("vms[%d].After holds %d", i, a)
				}
			}
		}
		if ps := CheckTiming(s.Timing); ps != nil {
			t.Fatalf("accepted timing fails CheckTiming: %v", ps)
		}
		if ps := c.Validate(); ps != nil {
			t.Fatalf("accepted config fails Validate: %v", ps)
		}
		out, err := toml.Marshal(c)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		c2, err := Parse(out)
		if err != nil {
			t.Fatalf("round trip: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(c2.Spec(), s) {
			t.Fatalf("round trip changed the spec:\n%+v\n%+v", c2.Spec(), s)
		}
	})
}
