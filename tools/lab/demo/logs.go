package demo

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"
	"time"
)

// Line is one JSON log line of an agent (slog's JSON handler).
type Line struct {
	Time      time.Time
	Level     string
	Msg       string
	Host      string
	Component string
	Attrs     map[string]any // every other attribute
}

// Text is the line as a person reads it: host/component: message, then the
// attributes that matter in order.
func (l Line) Text() string {
	var b strings.Builder
	b.WriteString(l.Host)
	if l.Component != "" {
		b.WriteString("/" + l.Component)
	}
	b.WriteString(": " + l.Msg)
	keys := make([]string, 0, len(l.Attrs))
	for k := range l.Attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%v", k, l.Attrs[k])
	}
	return b.String()
}

// ParseLog reads the JSON lines of r; lines that are not JSON (a panic, a
// message of the Go runtime) are kept as messages at level "RAW".
func ParseLog(r io.Reader, host string) ([]Line, error) {
	var out []Line
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		raw := sc.Bytes()
		if len(raw) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			out = append(out, Line{Level: "RAW", Msg: string(raw), Host: host})
			continue
		}
		l := Line{Host: host, Attrs: map[string]any{}}
		for k, v := range m {
			s, _ := v.(string)
			switch k {
			case "time":
				l.Time, _ = time.Parse(time.RFC3339Nano, s)
			case "level":
				l.Level = s
			case "msg":
				l.Msg = s
			case "host":
				l.Host = s
			case "component":
				l.Component = s
			default:
				l.Attrs[k] = v
			}
		}
		out = append(out, l)
	}
	return out, sc.Err()
}

// ReadLogs reads the agent logs of hosts from files (host -> path), merged
// in time order. A missing file is an empty log.
func ReadLogs(files map[string]string) ([]Line, error) {
	var all []Line
	for host, path := range files {
		f, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		lines, err := ParseLog(f, host)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		all = append(all, lines...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Time.Before(all[j].Time) })
	return all, nil
}
