package sim

import (
	"fmt"
	"io"
	"math/rand"
	"runtime"
	"strings"
	"sync"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/vigil-ha/vigil/firmware/config"
)

// FuzzOptions configure Fuzz.
type FuzzOptions struct {
	Seeds    int   // how many seeds to run
	Start    int64 // the first seed
	MaxHosts int   // largest cluster drawn (2 to 64; 0 means 16)
	Workers  int   // worlds run at once (0 means GOMAXPROCS)
	Shrink   int   // runs spent shrinking each failing schedule (0 means 60)
}

// fuzzOutcome is the result of one seed.
type fuzzOutcome struct {
	seed      int64
	violation string // the first one, "" if none
	cluster   string
	script    string
}

// Fuzz runs one random cluster and fault schedule per seed, checking the
// invariants throughout. For each seed that breaks one it prints the seed,
// the violation and a minimal reproducing scenario (cluster file and
// script, shrunk by deleting commands while the violation persists). Output
// is in seed order and ends with `fuzz: seeds=N violations=V`, V counting
// the failing seeds, which it returns.
func Fuzz(o FuzzOptions, out io.Writer) int {
	if o.MaxHosts == 0 {
		o.MaxHosts = 16
	}
	o.MaxHosts = min(max(o.MaxHosts, 2), 64)
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Shrink == 0 {
		o.Shrink = 60
	}
	results := make([]chan fuzzOutcome, o.Seeds)
	for i := range results {
		results[i] = make(chan fuzzOutcome, 1)
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i] <- fuzzSeed(o.Start+int64(i), o)
			}
		}()
	}
	go func() {
		for i := range o.Seeds {
			next <- i
		}
		close(next)
	}()
	bad := 0
	for i := range o.Seeds {
		r := <-results[i]
		if r.violation == "" {
			continue
		}
		bad++
		fmt.Fprintf(out, "seed %d: %s\n", r.seed, r.violation)
		fmt.Fprintf(out, "  reproduce: save the two files below in a folder DIR and run 'vigil sim run DIR'\n")
		fmt.Fprintf(out, "  --- %s\n%s  --- %s\n%s", ClusterFile, indent(r.cluster), CmdsFile, indent(r.script))
	}
	wg.Wait()
	fmt.Fprintf(out, "fuzz: seeds=%d violations=%d\n", o.Seeds, bad)
	return bad
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if l != "" {
			b.WriteString("    " + l)
		}
	}
	return b.String()
}

// FuzzCase returns the cluster and script that seed draws.
func FuzzCase(seed int64, maxHosts int) (*config.Config, string) {
	r := rand.New(rand.NewSource(seed))
	c := fuzzCluster(r, seed, maxHosts)
	return c, fuzzScript(r, seed, c)
}

func fuzzSeed(seed int64, o FuzzOptions) fuzzOutcome {
	c, script := FuzzCase(seed, o.MaxHosts)
	out := fuzzOutcome{seed: seed, script: script}
	v, err := fuzzRun(c, script)
	switch {
	case err != nil:
		out.violation = "fuzz: the generated case does not run: " + err.Error()
	case v != "":
		out.violation = v
		out.script = shrink(c, script, class(v), o.Shrink)
	}
	if out.violation != "" {
		b, err := toml.Marshal(c)
		if err != nil {
			b = []byte("# " + err.Error() + "\n")
		}
		out.cluster = string(b)
	}
	return out
}

// fuzzRun runs a script over c without a log and returns its first
// violation.
func fuzzRun(c *config.Config, script string) (string, error) {
	p := DefaultParams()
	p.Quiet = true
	r, err := RunConfig(c, CmdsFile, script, p)
	if err != nil {
		return "", err
	}
	if len(r.Violations) == 0 {
		return "", nil
	}
	return r.Violations[0], nil
}

// class is the invariant a violation message names ("S1", "L2"...).
func class(v string) string {
	if i := strings.Index(v, " violated"); i > 0 {
		return v[:i]
	}
	return v
}

// shrink deletes timed commands one at a time, last first, keeping each
// deletion after which the script still breaks the same invariant, until a
// pass deletes nothing or the run budget is spent.
func shrink(c *config.Config, script, want string, budget int) string {
	lines := strings.SplitAfter(script, "\n")
	timed := func(l string) bool {
		f := strings.Fields(l)
		return len(f) > 1 && f[0] != "set" && f[0] != "run"
	}
	for changed := true; changed && budget > 0; {
		changed = false
		for i := len(lines) - 1; i >= 0 && budget > 0; i-- {
			if !timed(lines[i]) {
				continue
			}
			try := strings.Join(append(append([]string(nil), lines[:i]...), lines[i+1:]...), "")
			budget--
			if v, err := fuzzRun(c, try); err == nil && v != "" && class(v) == want {
				lines = append(lines[:i], lines[i+1:]...)
				changed = true
			}
		}
	}
	return strings.Join(lines, "")
}
