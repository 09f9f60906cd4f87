package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// Load reads and parses the cluster file at path. A file that cannot be read
// is an ordinary error; a file that can is parsed as by Parse.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data)
}

// Parse decodes a cluster file over the defaults and validates it. On any
// problem it returns a nil Config and a Problems error holding every problem
// found: decode problems (syntax, unknown keys, wrong types) carry their line
// number in the message.
func Parse(data []byte) (*Config, error) {
	c := Default()
	err := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields().Decode(c)
	var strict *toml.StrictMissingError
	decoded := err == nil || errors.As(err, &strict) // every known key was decoded

	idx := indexKeys(data)
	lined := idx.checkShapes()
	shapeOK := len(lined) == 0
	if err != nil && (decodeError(err) || shapeOK) {
		shaped := map[string]bool{}
		for _, l := range lined {
			shaped[l.Key] = true
		}
		for _, l := range idx.decodeProblems(err) {
			if !shaped[l.Key] {
				lined = append(lined, l)
			}
		}
	}
	sort.SliceStable(lined, func(i, j int) bool { return lined[i].line < lined[j].line })
	var ps Problems
	for _, l := range lined {
		ps = append(ps, l.Problem)
	}
	// Unknown keys leave the known ones intact, so validation still runs;
	// a failed decode or a duration without a unit does not.
	if decoded && shapeOK {
		ps = append(ps, c.Validate()...)
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return c, nil
}

// linedProblem is a decode problem with its line, for sorting.
type linedProblem struct {
	Problem
	line int
}

var mismatchRE = regexp.MustCompile(`^cannot decode TOML (\w+) into`)

// decodeProblems turns a decode error into problems.
func (x *keyIndex) decodeProblems(err error) []linedProblem {
	var strict *toml.StrictMissingError
	var de *toml.DecodeError
	switch {
	case errors.As(err, &strict):
		var out []linedProblem
		for i := range strict.Errors {
			out = append(out, x.fromDecodeError(&strict.Errors[i]))
		}
		return out
	case errors.As(err, &de):
		return []linedProblem{x.fromDecodeError(de)}
	}
	return []linedProblem{{Problem: Problem{Msg: err.Error(), Fix: "see the configuration reference"}}}
}

func (x *keyIndex) fromDecodeError(de *toml.DecodeError) linedProblem {
	line, _ := de.Position()
	bare := strings.Join(de.Key(), ".")
	msg := strings.TrimPrefix(de.Error(), "toml: ")
	p := linedProblem{line: line}
	p.Key = x.locate(bare, line)
	switch {
	case msg == "unknown field" || msg == "missing table":
		what := "key"
		if msg == "missing table" {
			what = "table"
		}
		p.Msg = fmt.Sprintf("line %d: unknown %s", line, what)
		p.Fix = x.suggest(bare)
	case mismatchRE.MatchString(msg):
		got := mismatchRE.FindStringSubmatch(msg)[1]
		p.Msg = fmt.Sprintf("line %d: a TOML %s where %s is expected", line, got, expected(bare))
		p.Fix = "write " + expected(bare)
	default:
		p.Msg = fmt.Sprintf("line %d: %s", line, msg)
		p.Fix = "correct the TOML syntax"
		if bare != "" && !strings.Contains(msg, "already defined") {
			p.Fix = "write " + expected(bare)
		}
	}
	return p
}

// decodeError reports whether err carries a position. The decoder returns
// a bare error only when a duration or size has the wrong kind of value,
// which checkShapes reports with its position.
func decodeError(err error) bool {
	var strict *toml.StrictMissingError
	var de *toml.DecodeError
	return errors.As(err, &strict) || errors.As(err, &de)
}

// checkShapes reports durations that are not strings (a bare number would
// decode as nanoseconds) and sizes that are neither strings nor integers.
func (x *keyIndex) checkShapes() []linedProblem {
	var out []linedProblem
	for _, k := range x.keys {
		var p Problem
		switch t := schema[k.bare]; {
		case t == durationType && k.kind != unstable.String:
			p = Problem{Msg: "a duration must be a string with a unit", Fix: `quote it and add a unit, like "100ms" or "4s"`}
		case t == sizeType && k.kind != unstable.String && k.kind != unstable.Integer:
			p = Problem{Msg: "a size must be a string with a unit or an integer of MiB", Fix: `write it like "8GiB" or 8192`}
		default:
			continue
		}
		p.Key, p.Msg = k.path, fmt.Sprintf("line %d: %s", k.line, p.Msg)
		out = append(out, linedProblem{line: k.line, Problem: p})
	}
	return out
}

// suggest proposes the known key closest to an unknown one.
func (x *keyIndex) suggest(bare string) string {
	parent, name := "", bare
	if i := strings.LastIndexByte(bare, '.'); i >= 0 {
		parent, name = bare[:i], bare[i+1:]
	}
	best, bestD := "", 3
	for k := range schema {
		p, n := "", k
		if i := strings.LastIndexByte(k, '.'); i >= 0 {
			p, n = k[:i], k[i+1:]
		}
		if p != parent {
			continue
		}
		if d := editDistance(name, n); d < bestD || d == bestD && best != "" && n < best {
			best, bestD = n, d
		}
	}
	if best != "" {
		return fmt.Sprintf("did you mean %q?", best)
	}
	return "remove it; see the configuration reference for the known keys"
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
