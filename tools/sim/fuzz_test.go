package sim

import (
	"bytes"
	"math/rand"
	"strings"
	"testing"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/vigil-ha/vigil/firmware/config"
)

// TestFuzzCasesAreValid checks that generated clusters pass validation and
// survive a round trip through the cluster file format, and that their
// scripts parse: a reproducer must load as printed.
func TestFuzzCasesAreValid(t *testing.T) {
	for seed := int64(0); seed < 200; seed++ {
		c, script := FuzzCase(seed, 16)
		b, err := toml.Marshal(c)
		if err != nil {
			t.Fatalf("seed %d: marshal: %v", seed, err)
		}
		back, err := config.Parse(b)
		if err != nil {
			t.Fatalf("seed %d: the printed cluster does not load: %v\n%s", seed, err, b)
		}
		if _, err := ParseScript(CmdsFile, script, back.Spec(), NamesOf(back), DefaultParams()); err != nil {
			t.Fatalf("seed %d: %v\n%s", seed, err, script)
		}
	}
}

func TestFuzzDeterministic(t *testing.T) {
	_, a := FuzzCase(42, 16)
	_, b := FuzzCase(42, 16)
	if a != b {
		t.Errorf("seed 42 drew two schedules:\n%s\n%s", a, b)
	}
}

// TestFuzzSeeds runs a few seeds end to end, as `vigil sim fuzz` does.
func TestFuzzSeeds(t *testing.T) {
	var out bytes.Buffer
	n := Fuzz(FuzzOptions{Seeds: 20, Start: 1, MaxHosts: 8}, &out)
	if !strings.HasSuffix(out.String(), "fuzz: seeds=20 violations="+itoa(n)+"\n") {
		t.Errorf("closing line missing:\n%s", out.String())
	}
	if n != 0 {
		t.Errorf("invariant violations:\n%s", out.String())
	}
}

func TestShrinkKeepsTheViolation(t *testing.T) {
	c, _ := FuzzCase(3, 4)
	// A core cannot be made to break S1 on purpose, so shrink against a
	// violation the checker always reports: none. Every deletion is then
	// refused and the script comes back whole.
	script := "set seed 1\n1s restart h1\n2s restart h2\nrun 5s\n"
	if got := shrink(c, script, "S1", 10); got != script {
		t.Errorf("shrink changed a script with no violation:\n%s", got)
	}
}

func configLoad(dir string) (*config.Config, error) {
	return config.Load(dir + "/" + ClusterFile)
}

// TestFuzzClustersAreValid: every drawn cluster passes vigil check, so a
// printed reproduction loads as it is.
func TestFuzzClustersAreValid(t *testing.T) {
	for seed := int64(0); seed < 300; seed++ {
		c := fuzzCluster(rand.New(rand.NewSource(seed)), seed, 16)
		if ps := c.Validate(); len(ps) > 0 {
			t.Fatalf("seed %d: %v", seed, ps)
		}
	}
}
