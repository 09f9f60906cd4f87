package agentd

import (
	"strings"
	"testing"
	"time"
)

func TestVMStopTimeoutOption(t *testing.T) {
	o := Options{Config: "c.toml", Host: "h1", Exe: "/bin/true"}
	if err := o.fill(); err != nil || o.VMStopTimeout != 30*time.Second {
		t.Fatalf("default: %v %v", o.VMStopTimeout, err)
	}
	for _, d := range []time.Duration{time.Millisecond, time.Hour} {
		o := Options{Config: "c.toml", Host: "h1", Exe: "/bin/true", VMStopTimeout: d}
		if err := o.fill(); err == nil || !strings.Contains(err.Error(), "--vm-stop-timeout") {
			t.Errorf("%v: %v", d, err)
		}
	}
}
