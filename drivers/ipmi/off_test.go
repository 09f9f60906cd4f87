//go:build vigil_noipmilan || vigil_noipmilocal

package ipmi_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/drivers/ipmi"
	"github.com/vigil-ha/vigil/firmware/features"
)

// TestNotBuilt checks that a driver left out of the build fails every
// call with an *OpError that names the missing symbol and its fix.
func TestNotBuilt(t *testing.T) {
	ctx := context.Background()
	var calls []func() error
	if !features.HasIPMILAN {
		_, err := ipmi.DialLAN(ctx, "10.9.0.2:623", ipmi.Credentials{User: "u", Password: "p"}, ipmi.LANOptions{})
		calls = append(calls, func() error { return err },
			func() error { return ipmi.CheckCipherSuite(17) })
	}
	if !features.HasIPMILocal {
		_, err := ipmi.OpenLocal("", ipmi.LocalOptions{})
		calls = append(calls, func() error { return err })
	}
	if len(calls) == 0 {
		t.Fatal("built with every IPMI driver: this test's build tags and the features package disagree")
	}
	for i, call := range calls {
		err := call()
		if !errors.Is(err, features.ErrNotBuilt) {
			t.Errorf("call %d: error %v does not match features.ErrNotBuilt", i, err)
			continue
		}
		if !strings.Contains(err.Error(), "built without CONFIG_IPMI_") || !strings.Contains(err.Error(), "make menuconfig") {
			t.Errorf("call %d: error %q names neither the symbol nor the fix", i, err)
		}
	}
}
