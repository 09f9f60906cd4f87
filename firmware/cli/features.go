package cli

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/vigil-ha/vigil/firmware/features"
)

func init() {
	Register(Command{Name: "features", Summary: "the build-time features (Kconfig) this binary has", Run: runFeatures})
}

const featuresUsage = `usage: vigil features [-tags]

Lists the build-time features of the Kconfig, whether this binary has each
one, and the Go build tag that leaves it out. With -tags, prints only the
build tags this binary was built with, comma-separated.
`

func runFeatures(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("features", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	tags := fs.Bool("tags", false, "print only the build tags")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		if err == nil {
			err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
		}
		if err == flag.ErrHelp {
			io.WriteString(stdout, featuresUsage)
			return 0
		}
		fmt.Fprintf(stderr, "vigil features: %v\n%s", err, featuresUsage)
		return 2
	}
	if *tags {
		var off []string
		for _, f := range features.All {
			if !f.Enabled {
				off = append(off, f.Tag)
			}
		}
		fmt.Fprintln(stdout, strings.Join(off, ","))
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FEATURE\tBUILT\tTAG\tWHAT")
	for _, f := range features.All {
		built := "yes"
		if !f.Enabled {
			built = "no"
		}
		fmt.Fprintf(tw, "CONFIG_%s\t%s\t%s\t%s\n", f.Symbol, built, f.Tag, f.Prompt)
	}
	tw.Flush()
	return 0
}

// printVersion prints the version and, on a second line, the features:
// +NAME built in, -NAME left out.
func printVersion(w io.Writer) {
	var b strings.Builder
	for _, f := range features.All {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		if f.Enabled {
			b.WriteByte('+')
		} else {
			b.WriteByte('-')
		}
		b.WriteString(f.Symbol)
	}
	fmt.Fprintf(w, "vigil %s\nfeatures: %s\n", Version, b.String())
}

// registerNotBuilt registers commands of a feature the binary was built
// without: each says so, and how to get it, instead of being unknown.
func registerNotBuilt(symbol string, names ...string) {
	for _, n := range names {
		Register(Command{Name: n, Summary: "not in this build (CONFIG_" + symbol + ")", Run: func(_ []string, _, stderr io.Writer) int {
			fmt.Fprintf(stderr, "vigil %s: %v\n", n, features.NotBuilt(symbol))
			return 1
		}})
	}
}
