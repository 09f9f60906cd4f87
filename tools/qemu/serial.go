package qemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Line is one line of serial output and when its first byte arrived,
// measured from the start of the VM's QEMU process.
type Line struct {
	At   time.Duration
	Text string
}

// Serial records everything a VM writes on its serial port, with the time
// of each line, and drives the vigil console on it: Expect waits for
// output, Command runs a console command and returns its reply.
//
// Output is consumed by a cursor, like expect(1): Expect and Command look
// only at what arrived after the end of the last match, so a reply is never
// matched twice.
type Serial struct {
	w     io.Writer
	start time.Time

	mu      sync.Mutex
	buf     []byte
	lines   []Line
	partial bool // the last line has no newline yet
	cursor  int
	changed chan struct{}
	err     error // why reading stopped
}

// NewSerial records rw (a serial port's connection) from now on, with line
// times measured from start, and writes console input to it.
func NewSerial(rw io.ReadWriter, start time.Time) *Serial {
	s := &Serial{w: rw, start: start, changed: make(chan struct{})}
	go s.read(rw)
	return s
}

func (s *Serial) read(r io.Reader) {
	b := make([]byte, 4096)
	for {
		n, err := r.Read(b)
		if n > 0 {
			s.add(b[:n], time.Since(s.start))
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.EOF
			}
			s.mu.Lock()
			s.err = err
			close(s.changed)
			s.mu.Unlock()
			return
		}
	}
}

// add appends output that arrived at at.
func (s *Serial) add(b []byte, at time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf, b...)
	for len(b) > 0 {
		i := strings.IndexByte(string(b), '\n')
		part := b
		if i >= 0 {
			part = b[:i]
		}
		text := strings.TrimRight(string(part), "\r")
		if s.partial {
			last := &s.lines[len(s.lines)-1]
			last.Text = strings.TrimRight(last.Text+string(part), "\r")
		} else {
			s.lines = append(s.lines, Line{At: at, Text: text})
		}
		s.partial = i < 0
		if i < 0 {
			break
		}
		b = b[i+1:]
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// Output returns everything received so far.
func (s *Serial) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.buf)
}

// Lines returns every line received so far (the last one may be partial).
func (s *Serial) Lines() []Line {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Line(nil), s.lines...)
}

// FindLine returns the first line that contains substr.
func (s *Serial) FindLine(substr string) (Line, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lines {
		if strings.Contains(l.Text, substr) {
			return l, true
		}
	}
	return Line{}, false
}

// WaitLine waits until a line containing substr arrived (anywhere in the
// output, whatever the cursor) and returns the first one.
func (s *Serial) WaitLine(ctx context.Context, substr string) (Line, error) {
	for {
		if l, ok := s.FindLine(substr); ok {
			return l, nil
		}
		if err := s.wait(ctx, fmt.Sprintf("a line with %q", substr)); err != nil {
			return Line{}, err
		}
	}
}

// wait blocks until more output arrives; it fails when ctx ends or the
// port closed.
func (s *Serial) wait(ctx context.Context, what string) error {
	s.mu.Lock()
	changed, err := s.changed, s.err
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("serial: waiting for %s: the port closed: %w; the output ends with:\n%s", what, err, s.tail(20))
	}
	select {
	case <-changed:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("serial: waiting for %s: %w; the output ends with:\n%s", what, ctx.Err(), s.tail(20))
	}
}

// tail returns the last n lines, for error messages.
func (s *Serial) tail(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ls := s.lines
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	var b strings.Builder
	for _, l := range ls {
		fmt.Fprintf(&b, "  %8.3fs %s\n", l.At.Seconds(), l.Text)
	}
	return b.String()
}

// Expect waits for substr after the cursor, moves the cursor past it and
// returns the output from the old cursor to the end of the match.
func (s *Serial) Expect(ctx context.Context, substr string) (string, error) {
	return s.expect(ctx, fmt.Sprintf("%q", substr), func(b []byte) []int {
		i := strings.Index(string(b), substr)
		if i < 0 {
			return nil
		}
		return []int{i, i + len(substr)}
	})
}

// ExpectRegexp is Expect for a regular expression.
func (s *Serial) ExpectRegexp(ctx context.Context, re *regexp.Regexp) (string, error) {
	return s.expect(ctx, "/"+re.String()+"/", re.FindIndex)
}

func (s *Serial) expect(ctx context.Context, what string, find func([]byte) []int) (string, error) {
	for {
		s.mu.Lock()
		rest := s.buf[s.cursor:]
		if m := find(rest); m != nil {
			out := string(rest[:m[1]])
			s.cursor += m[1]
			s.mu.Unlock()
			return out, nil
		}
		s.mu.Unlock()
		if err := s.wait(ctx, what); err != nil {
			return "", err
		}
	}
}

// Skip moves the cursor to the end of the output received so far.
func (s *Serial) Skip() {
	s.mu.Lock()
	s.cursor = len(s.buf)
	s.mu.Unlock()
}

// Send writes line and a newline to the port, as typed on a terminal.
func (s *Serial) Send(line string) error {
	if _, err := io.WriteString(s.w, line+"\n"); err != nil {
		return fmt.Errorf("serial: send %q: %w", line, err)
	}
	return nil
}

// Prompt matches the vigil console's prompt, `vigil HOST> `, or `vigil> `
// while the agent does not answer.
var Prompt = regexp.MustCompile(`vigil(?: [A-Za-z0-9._-]+)?> `)

// Command types line on the console and returns the reply: the output
// between the echo of the line and the next prompt, without carriage
// returns. Kernel or agent messages on the same port may be mixed into it.
func (s *Serial) Command(ctx context.Context, line string) (string, error) {
	s.Skip()
	if err := s.Send(line); err != nil {
		return "", err
	}
	// The terminal echoes the line; the reply starts after it.
	if _, err := s.Expect(ctx, line); err != nil {
		return "", fmt.Errorf("console %q: no echo: %w", line, err)
	}
	out, err := s.ExpectRegexp(ctx, Prompt)
	if err != nil {
		return "", fmt.Errorf("console %q: no prompt after the reply: %w", line, err)
	}
	m := Prompt.FindAllStringIndex(out, -1)
	reply := strings.ReplaceAll(out[:m[len(m)-1][0]], "\r", "")
	return strings.TrimPrefix(reply, "\n"), nil
}
