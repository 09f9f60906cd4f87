package hb

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Key file errors, besides the key errors of NewKeyring.
var (
	// ErrKeyFileSyntax: a line that is not a hex key with optional
	// accept-until.
	ErrKeyFileSyntax = errors.New("key file syntax")
	// ErrKeyFilePerm: the key file may be read or written by users other
	// than its owner, or is owned by another user.
	ErrKeyFilePerm = errors.New("key file not private")
)

// acceptUntil is the one option a key line may carry.
const acceptUntil = "accept-until="

// maxKeyFile bounds what LoadKeyFile reads: a key file is a few lines.
const maxKeyFile = 1 << 20

// KeyFileError is a key file that cannot be used: Path is the file (empty
// for ParseKeyFile) and Line the 1-based line at fault (0 for the whole
// file). Err wraps ErrKeyFileSyntax, ErrKeyFilePerm or a key error of
// NewKeyring.
type KeyFileError struct {
	Path string
	Line int
	Err  error
}

func (e *KeyFileError) Error() string {
	var b strings.Builder
	b.WriteString("key file")
	if e.Path != "" {
		b.WriteString(" " + e.Path)
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, " line %d", e.Line)
	}
	b.WriteString(": " + e.Err.Error())
	return b.String()
}

func (e *KeyFileError) Unwrap() error { return e.Err }

// ParseKeyFile builds a Keyring from the text of a key file: one key per
// line in hex, optionally followed by whitespace and
// accept-until=RFC3339-time; '#' starts a comment; blank lines are ignored.
// The first key signs, every key is accepted. Errors are *KeyFileError with
// the line at fault.
//
//	# signs
//	9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//	# the previous key, accepted until every host has the new one
//	60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752  accept-until=2026-12-01T00:00:00Z
func ParseKeyFile(data []byte) (*Keyring, error) {
	r := &Keyring{}
	lines := make([]int, 0, 2) // line number of each key in r
	for n, line := range bytes.Split(data, []byte("\n")) {
		no := n + 1
		if i := bytes.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(string(line))
		if len(fields) == 0 {
			continue
		}
		k, err := parseKeyLine(fields)
		if err != nil {
			return nil, &KeyFileError{Line: no, Err: err}
		}
		if dup, err := r.add(k); err != nil {
			if dup >= 0 {
				// Name lines, not key positions: the reader edits lines.
				err = fmt.Errorf("%w: the same key or key id as line %d; remove one of the two lines", ErrDuplicateKey, lines[dup])
			}
			return nil, &KeyFileError{Line: no, Err: err}
		}
		lines = append(lines, no)
	}
	if r.Len() == 0 {
		return nil, &KeyFileError{Err: fmt.Errorf("%w: the file lists no key; add a line with a hex key of %d bytes or more",
			ErrNoKeys, MinKeySize)}
	}
	return r, nil
}

// parseKeyLine reads the fields of one key line.
func parseKeyLine(fields []string) (KeyLine, error) {
	var k KeyLine
	key, err := hex.DecodeString(fields[0])
	if err != nil {
		return k, fmt.Errorf("%w: bad hex in key (%v); write the key as hex digits only, %d or more",
			ErrKeyFileSyntax, err, 2*MinKeySize)
	}
	k.Key = key
	for _, f := range fields[1:] {
		v, ok := strings.CutPrefix(f, acceptUntil)
		if !ok {
			return k, fmt.Errorf("%w: unknown option %q after the key; the only option is %sRFC3339-time",
				ErrKeyFileSyntax, f, acceptUntil)
		}
		if !k.AcceptUntil.IsZero() {
			return k, fmt.Errorf("%w: accept-until given twice; keep one", ErrKeyFileSyntax)
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return k, fmt.Errorf("%w: accept-until %q is not an RFC 3339 time; write e.g. %s2026-12-01T00:00:00Z",
				ErrKeyFileSyntax, v, acceptUntil)
		}
		if t.IsZero() {
			return k, fmt.Errorf("%w: accept-until %q is the zero time; give a real time", ErrKeyFileSyntax, v)
		}
		k.AcceptUntil = t
	}
	return k, nil
}

// LoadKeyFile reads and parses the key file at path. It refuses a file that
// its group or others may access (the fix is chmod 600), or that belongs to
// a user other than root and the one running this process.
func LoadKeyFile(path string) (*Keyring, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open heartbeat key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat heartbeat key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, &KeyFileError{Path: path, Err: fmt.Errorf("%w: %s is not a regular file; point the configuration at the key file itself",
			ErrKeyFilePerm, fi.Mode().Type())}
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, &KeyFileError{Path: path, Err: fmt.Errorf("%w: mode %04o lets group or others access the keys; run chmod 600 %s",
			ErrKeyFilePerm, perm, path)}
	}
	if err := CheckFileOwner(fi); err != nil {
		return nil, &KeyFileError{Path: path, Err: fmt.Errorf("%w: %w; run chown root %s", ErrKeyFilePerm, err, path)}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("read heartbeat key file: %w", err)
	}
	if len(data) > maxKeyFile {
		return nil, &KeyFileError{Path: path, Err: fmt.Errorf("%w: larger than %d bytes; a key file holds a few hex lines",
			ErrKeyFileSyntax, maxKeyFile)}
	}
	r, err := ParseKeyFile(data)
	if err != nil {
		var kfe *KeyFileError
		if errors.As(err, &kfe) {
			kfe.Path = path
		}
		return nil, err
	}
	return r, nil
}

// FormatKeyFile is the text of a key file holding lines in order (the first
// signs), which ParseKeyFile reads back. Write it with mode 0600.
func FormatKeyFile(lines ...KeyLine) []byte {
	var b bytes.Buffer
	b.WriteString("# vigil heartbeat keys: the first line signs, every line is accepted.\n")
	b.WriteString("# Keep this file mode 0600; see package hb for key rotation.\n")
	for _, l := range lines {
		b.WriteString(hex.EncodeToString(l.Key))
		if !l.AcceptUntil.IsZero() {
			b.WriteString("  " + acceptUntil + l.AcceptUntil.UTC().Format(time.RFC3339Nano))
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}
