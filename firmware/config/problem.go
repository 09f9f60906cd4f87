package config

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with a cluster file.
type Problem struct {
	// Key is the path of the offending key, like "hosts[2].addresses" or
	// "timing.watchdog_timeout"; empty when the file as a whole is at fault.
	Key string `json:"key"`
	// Msg says what is wrong and, for a timing rule, why the rule exists.
	Msg string `json:"msg"`
	// Fix says how to put it right.
	Fix string `json:"fix"`
}

// String formats p as "KEY: MSG (fix: FIX)".
func (p Problem) String() string {
	var b strings.Builder
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	if p.Fix != "" {
		b.WriteString(" (fix: ")
		b.WriteString(p.Fix)
		b.WriteString(")")
	}
	return b.String()
}

// Problems is every problem found in a cluster file. Validation never stops
// at the first one.
type Problems []Problem

// Error lists every problem, separated by "; ".
func (ps Problems) Error() string {
	if len(ps) == 1 {
		return "config: " + ps[0].String()
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return fmt.Sprintf("config: %d problems: %s", len(ps), strings.Join(s, "; "))
}

// add appends a problem with a formatted message.
func (ps *Problems) add(key, fix, format string, args ...any) {
	*ps = append(*ps, Problem{Key: key, Msg: fmt.Sprintf(format, args...), Fix: fix})
}

// Keys lists the keys of ps in order, for tests and tools.
func (ps Problems) Keys() []string {
	k := make([]string, len(ps))
	for i, p := range ps {
		k[i] = p.Key
	}
	return k
}
