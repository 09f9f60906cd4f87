package lab

import (
	"fmt"
	"os"
	"testing"

	"github.com/vigil-ha/vigil/tools/privtest"
)

// BenchmarkUpDown brings a lab with stand-in agents and no BMCs up and
// down.
func BenchmarkUpDown(b *testing.B) {
	privtest.Require(b)
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []struct{ hosts, links int }{{3, 2}, {16, 8}} {
		b.Run(fmt.Sprintf("%dx%d", size.hosts, size.links), func(b *testing.B) {
			name := testName()
			b.Cleanup(func() { Down(name) })
			o := benchOptions(Options{Name: name, Hosts: size.hosts, Links: size.links, NoBMC: true}, exe)
			for b.Loop() {
				l, err := Up(o)
				if err != nil {
					b.Fatal(err)
				}
				if err := l.Down(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFaults measures one fault command: a map update or a link
// change, and the state.json round trip.
func BenchmarkFaults(b *testing.B) {
	l := testLab(b, Options{Hosts: 3, Links: 2})
	b.Run("loss", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if err := l.Loss("h2", "0", i%100); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("partition", func(b *testing.B) {
		specs := []string{"h1,h2|h3", "none"}
		for i := 0; b.Loop(); i++ {
			if err := l.Partition(specs[i%2]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cut-heal", func(b *testing.B) {
		for b.Loop() {
			if err := l.Cut("h1", "1"); err != nil {
				b.Fatal(err)
			}
			if err := l.Heal("h1", "1"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("status", func(b *testing.B) {
		for b.Loop() {
			if _, err := l.Status(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
