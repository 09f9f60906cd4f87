package ipmi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/vigil-ha/vigil/hb"
)

// Credentials are a BMC user's name and password. Printing them (fmt's
// verbs, slog) never shows the password.
type Credentials struct {
	User     string
	Password string
}

// Credential limits of IPMI 2.0: a user name of at most 16 bytes, and a
// password of which a BMC uses the first 20 bytes (16 for IPMI 1.5).
const (
	MaxUserLen     = 16
	MaxPasswordLen = 20
)

// String shows the user only.
func (c Credentials) String() string { return fmt.Sprintf("user %q, password not shown", c.User) }

// GoString shows the user only.
func (c Credentials) GoString() string {
	return fmt.Sprintf("ipmi.Credentials{User: %q, Password: <not shown>}", c.User)
}

// LogValue logs the user only.
func (c Credentials) LogValue() slog.Value { return slog.GroupValue(slog.String("user", c.User)) }

// Check validates the credentials as a BMC takes them: an error for a
// missing or too long user name or a missing password, and a warning for a
// password longer than a BMC uses. Neither mentions the password itself.
func (c Credentials) Check() (warnings []string, err error) {
	switch {
	case c.User == "":
		return nil, errors.New("no user name: give the BMC user's name (an anonymous login is not accepted)")
	case len(c.User) > MaxUserLen:
		return nil, fmt.Errorf("user name is %d bytes, IPMI allows %d: use a shorter BMC user", len(c.User), MaxUserLen)
	case c.Password == "":
		return nil, errors.New("no password: give the BMC user's password (a user without one is not accepted)")
	}
	if n := len(c.Password); n > MaxPasswordLen {
		warnings = append(warnings, fmt.Sprintf("the password is %d bytes: IPMI 2.0 BMCs use only its first %d (IPMI 1.5 BMCs 16), so the BMC may hold a shorter password than this; set a password of at most %d bytes on the BMC and here",
			n, MaxPasswordLen, MaxPasswordLen))
	}
	return warnings, nil
}

// Credentials file errors.
var (
	// ErrCredentialsSyntax: a line that is neither "user NAME" nor
	// "password SECRET", or a missing or repeated line.
	ErrCredentialsSyntax = errors.New("credentials file syntax")
	// ErrCredentialsPerm: the file may be read by users other than its
	// owner, or is owned by another user.
	ErrCredentialsPerm = errors.New("credentials file not private")
)

// CredentialsError is a credentials file that cannot be used: Path is the
// file (empty for ParseCredentials) and Line the 1-based line at fault (0
// for the whole file). It never quotes the password.
type CredentialsError struct {
	Path string
	Line int
	Err  error
}

func (e *CredentialsError) Error() string {
	var b strings.Builder
	b.WriteString("credentials file")
	if e.Path != "" {
		b.WriteString(" " + e.Path)
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, " line %d", e.Line)
	}
	b.WriteString(": " + e.Err.Error())
	return b.String()
}

func (e *CredentialsError) Unwrap() error { return e.Err }

// maxCredentialsFile bounds what LoadCredentials reads: the file is two lines.
const maxCredentialsFile = 64 << 10

// credentialsFormat is the reminder every syntax error ends with.
const credentialsFormat = "write two lines, \"user NAME\" and \"password SECRET\""

// ParseCredentials reads the text of a credentials file: a line "user NAME"
// and a line "password SECRET", in either order. The value is the rest of
// the line after the keyword and the blanks that follow it, without
// trailing blanks (so it may hold inner spaces, '#' and '='). Blank lines
// and lines starting with '#' are ignored.
//
//	# BMC of h2, user with the operator privilege
//	user fence
//	password 9Vq!tr4-x2
func ParseCredentials(data []byte) (Credentials, []string, error) {
	var c Credentials
	seen := map[string]int{}
	for n, raw := range bytes.Split(data, []byte("\n")) {
		no := n + 1
		line := strings.TrimRight(string(raw), " \t\r")
		line = strings.TrimLeft(line, " \t")
		if line == "" || line[0] == '#' {
			continue
		}
		key, value := line, ""
		if i := strings.IndexAny(line, " \t"); i >= 0 {
			key, value = line[:i], strings.TrimLeft(line[i:], " \t")
		}
		switch key {
		case "user", "password":
		default:
			return Credentials{}, nil, &CredentialsError{Line: no, Err: fmt.Errorf("%w: %s is not a line of this format; %s",
				ErrCredentialsSyntax, describeKey(line), credentialsFormat)}
		}
		if prev, dup := seen[key]; dup {
			return Credentials{}, nil, &CredentialsError{Line: no, Err: fmt.Errorf("%w: a second %q line (the first is line %d); keep one",
				ErrCredentialsSyntax, key, prev)}
		}
		seen[key] = no
		if value == "" {
			want := "user NAME"
			if key == "password" {
				want = "password SECRET"
			}
			return Credentials{}, nil, &CredentialsError{Line: no, Err: fmt.Errorf("%w: the %q line has no value; write %q",
				ErrCredentialsSyntax, key, want)}
		}
		if key == "user" {
			c.User = value
		} else {
			c.Password = value
		}
	}
	for _, k := range []string{"user", "password"} {
		if _, ok := seen[k]; !ok {
			return Credentials{}, nil, &CredentialsError{Err: fmt.Errorf("%w: no %q line; %s", ErrCredentialsSyntax, k, credentialsFormat)}
		}
	}
	warnings, err := c.Check()
	if err != nil {
		return Credentials{}, nil, &CredentialsError{Err: fmt.Errorf("%w: %w", ErrCredentialsSyntax, err)}
	}
	return c, warnings, nil
}

// describeKey names the start of a foreign line without its value, which
// may be a password: `"username=…"`, `"passwd …"`, or "this line".
func describeKey(line string) string {
	end := strings.IndexAny(line, " =:")
	key := line
	if end >= 0 {
		key = line[:end]
	}
	if len(key) == 0 || len(key) > 16 || strings.ContainsFunc(key, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_' || r == '-')
	}) {
		return "this line"
	}
	if end >= 0 {
		return fmt.Sprintf("%q", key+string(line[end])+"…")
	}
	return fmt.Sprintf("%q", key)
}

// LoadCredentials reads and parses the credentials file at path (see
// ParseCredentials). Like the heartbeat key file, it must be a regular file
// that neither group nor others may access (the fix is chmod 600), owned by
// root or by the user running this process. The warnings are to be logged
// (they never hold the password).
func LoadCredentials(path string) (Credentials, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return Credentials{}, nil, fmt.Errorf("open BMC credentials file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Credentials{}, nil, fmt.Errorf("stat BMC credentials file: %w", err)
	}
	fail := func(err error) (Credentials, []string, error) {
		return Credentials{}, nil, &CredentialsError{Path: path, Err: err}
	}
	if !fi.Mode().IsRegular() {
		return fail(fmt.Errorf("%w: %s is not a regular file; point the configuration at the file itself", ErrCredentialsPerm, fi.Mode().Type()))
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fail(fmt.Errorf("%w: mode %04o lets group or others access the password; run chmod 600 %s", ErrCredentialsPerm, perm, path))
	}
	if err := hb.CheckFileOwner(fi); err != nil { // the heartbeat key file's rule
		return fail(fmt.Errorf("%w: %w; run chown root %s", ErrCredentialsPerm, err, path))
	}
	data, err := io.ReadAll(io.LimitReader(f, maxCredentialsFile+1))
	if err != nil {
		return Credentials{}, nil, fmt.Errorf("read BMC credentials file: %w", err)
	}
	if len(data) > maxCredentialsFile {
		return fail(fmt.Errorf("%w: larger than %d bytes; %s", ErrCredentialsSyntax, maxCredentialsFile, credentialsFormat))
	}
	c, warnings, err := ParseCredentials(data)
	if err != nil {
		var ce *CredentialsError
		if errors.As(err, &ce) {
			ce.Path = path
		}
		return Credentials{}, nil, err
	}
	for i, w := range warnings {
		warnings[i] = "credentials file " + path + ": " + w
	}
	return c, warnings, nil
}
