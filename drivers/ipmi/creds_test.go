package ipmi_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/drivers/ipmi"
)

const secret = "s3cr#t = pw" // spaces, '#' and '=' belong to a password

func TestParseCredentials(t *testing.T) {
	long := strings.Repeat("p", 21)
	tests := []struct {
		name string
		text string
		want ipmi.Credentials
		warn string // a part of the one warning, if any
		err  string // a part of the error, if any
		line int
	}{
		{name: "two lines", text: "user admin\npassword " + secret + "\n", want: ipmi.Credentials{User: "admin", Password: secret}},
		{name: "comments, blanks, CRLF, tabs, either order", text: "# BMC of h2\r\n\r\npassword\t " + secret + "  \r\n  user\tfence\r\n", want: ipmi.Credentials{User: "fence", Password: secret}},
		{name: "20 bytes", text: "user a\npassword " + long[:20], want: ipmi.Credentials{User: "a", Password: long[:20]}},
		{name: "21 bytes warns", text: "user a\npassword " + long, want: ipmi.Credentials{User: "a", Password: long}, warn: "the password is 21 bytes: IPMI 2.0 BMCs use only its first 20"},
		{name: "key=value", text: "username=admin\npassword=" + secret, err: `"username=…" is not a line of this format; write two lines, "user NAME" and "password SECRET"`, line: 1},
		{name: "foreign keyword", text: "user a\npasswd " + secret, err: `"passwd …" is not a line`, line: 2},
		{name: "no keyword", text: "user a\n" + secret, err: "this line is not a line of this format", line: 2},
		{name: "empty value", text: "user a\npassword   \n", err: `the "password" line has no value; write "password SECRET"`, line: 2},
		{name: "no user", text: "password " + secret, err: `no "user" line`},
		{name: "no password", text: "user admin\n", err: `no "password" line`},
		{name: "empty file", text: "", err: `no "user" line`},
		{name: "twice", text: "user a\npassword x\nuser b\n", err: `a second "user" line (the first is line 1)`, line: 3},
		{name: "long user", text: "user " + strings.Repeat("u", 17) + "\npassword x", err: "user name is 17 bytes, IPMI allows 16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warnings, err := ipmi.ParseCredentials([]byte(tt.text))
			if tt.err != "" {
				var ce *ipmi.CredentialsError
				if !errors.As(err, &ce) || !errors.Is(err, ipmi.ErrCredentialsSyntax) {
					t.Fatalf("error %v: want a *CredentialsError of ErrCredentialsSyntax", err)
				}
				if !strings.Contains(err.Error(), tt.err) || ce.Line != tt.line {
					t.Errorf("error %q (line %d), want %q at line %d", err, ce.Line, tt.err, tt.line)
				}
				if strings.Contains(err.Error(), "s3cr") {
					t.Errorf("error %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %#v (password %q), want %#v (password %q)", got, got.Password, tt.want, tt.want.Password)
			}
			if (tt.warn == "") != (len(warnings) == 0) || len(warnings) > 0 && !strings.Contains(warnings[0], tt.warn) {
				t.Errorf("warnings %q, want %q", warnings, tt.warn)
			}
			for _, w := range warnings {
				if strings.Contains(w, long) {
					t.Errorf("warning %q shows the password", w)
				}
			}
		})
	}
}

func TestLoadCredentials(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string, mode fs.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	good := write("good", "user fence\npassword "+secret+strings.Repeat("x", 20)+"\n", 0o600)
	c, warnings, err := ipmi.LoadCredentials(good)
	if err != nil || c.User != "fence" || len(warnings) != 1 || !strings.HasPrefix(warnings[0], "credentials file "+good+": the password is") {
		t.Fatalf("LoadCredentials = %v, %q, %v", c, warnings, err)
	}
	if _, _, err := ipmi.LoadCredentials(write("ro", "user a\npassword b\n", 0o400)); err != nil {
		t.Errorf("mode 0400: %v", err)
	}

	tests := []struct {
		name string
		path string
		is   error
		msg  string
	}{
		{name: "group readable", path: write("open", "user a\npassword b\n", 0o640), is: ipmi.ErrCredentialsPerm, msg: "mode 0640 lets group or others access the password; run chmod 600 " + dir},
		{name: "world readable", path: write("world", "user a\npassword b\n", 0o604), is: ipmi.ErrCredentialsPerm, msg: "run chmod 600"},
		{name: "directory", path: dir, is: ipmi.ErrCredentialsPerm, msg: "is not a regular file"},
		{name: "missing", path: filepath.Join(dir, "none"), is: fs.ErrNotExist, msg: "open BMC credentials file"},
		{name: "syntax", path: write("syntax", "username=a\n", 0o600), is: ipmi.ErrCredentialsSyntax, msg: "credentials file " + dir + "/syntax line 1: "},
	}
	if os.Geteuid() == 0 {
		p := write("theirs", "user a\npassword b\n", 0o600)
		if err := os.Chown(p, 4242, 4242); err != nil {
			t.Fatal(err)
		}
		tests = append(tests, struct {
			name string
			path string
			is   error
			msg  string
		}{name: "another owner", path: p, is: ipmi.ErrCredentialsPerm, msg: "owned by uid 4242, neither root nor this process's uid 0; run chown root"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ipmi.LoadCredentials(tt.path)
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %v, want %v saying %q", err, tt.is, tt.msg)
			}
		})
	}
}

// TestCredentialsNotShown prints credentials every way a log line could.
func TestCredentialsNotShown(t *testing.T) {
	c := ipmi.Credentials{User: "fence", Password: secret}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%v %+v %#v %s %q\n", c, c, c, c, c)
	fmt.Fprintln(&b, c, &c, []ipmi.Credentials{c}, struct{ C ipmi.Credentials }{c})
	slog.New(slog.NewTextHandler(&b, nil)).Info("dial", "cred", c)
	slog.New(slog.NewJSONHandler(&b, nil)).Info("dial", "cred", c)
	if strings.Contains(b.String(), "s3cr") {
		t.Errorf("the password shows in:\n%s", &b)
	}
	if !strings.Contains(b.String(), "fence") {
		t.Errorf("the user does not show in:\n%s", &b)
	}
}
