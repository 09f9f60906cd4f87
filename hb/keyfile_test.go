package hb

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/tools/privtest"
)

func TestKeyIDAndClusterID(t *testing.T) {
	// Values computed outside Go: the leading bytes of SHA-256.
	if got := ClusterID("prod"); got != 0x6754af9632a2745e {
		t.Errorf("ClusterID(prod) = %016x", got)
	}
	if got := ClusterID(""); got != 0xe3b0c44298fc1c14 {
		t.Errorf("ClusterID(\"\") = %016x", got)
	}
	if got := KeyID(goldenKey()); got != 0x630dcd29 {
		t.Errorf("KeyID(00..1f) = %08x", got)
	}
}

func TestGenerateKey(t *testing.T) {
	a, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != MinKeySize || bytes.Equal(a, b) {
		t.Errorf("GenerateKey gave %x then %x: want two different %d-byte keys", a, b, MinKeySize)
	}
}

var (
	hexA = hex.EncodeToString(testKey("a"))
	hexB = hex.EncodeToString(testKey("b"))
	hexC = strings.ToUpper(hex.EncodeToString(testKey("c")))
)

func TestParseKeyFile(t *testing.T) {
	until := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		text string
		want []KeyInfo
	}{
		{"one key", hexA + "\n", []KeyInfo{{ID: KeyID(testKey("a")), Signs: true}}},
		{"no final newline, CRLF, comments, blanks, upper case",
			"# cluster keys\r\n\r\n  " + hexA + "  # signs\r\n\t\n" + hexB + "\r\n#" + hexC + "\n" + hexC,
			[]KeyInfo{{ID: KeyID(testKey("a")), Signs: true}, {ID: KeyID(testKey("b"))}, {ID: KeyID(testKey("c"))}}},
		{"accept-until", hexA + "\n" + hexB + "\taccept-until=2026-12-01T01:00:00+01:00\n",
			[]KeyInfo{{ID: KeyID(testKey("a")), Signs: true}, {ID: KeyID(testKey("b")), AcceptUntil: until}}},
		{"long key", hexA + hexB, []KeyInfo{{ID: KeyID(append(testKey("a"), testKey("b")...)), Signs: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseKeyFile([]byte(tt.text))
			if err != nil {
				t.Fatal(err)
			}
			got := r.Info()
			if len(got) != len(tt.want) {
				t.Fatalf("Info() = %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i].ID != tt.want[i].ID || got[i].Signs != tt.want[i].Signs || !got[i].AcceptUntil.Equal(tt.want[i].AcceptUntil) {
					t.Errorf("key %d: %+v, want %+v", i, got[i], tt.want[i])
				}
			}
			if r.Len() != len(tt.want) || r.SigningID() != tt.want[0].ID {
				t.Errorf("Len %d, SigningID %08x", r.Len(), r.SigningID())
			}
		})
	}
}

func TestParseKeyFileErrors(t *testing.T) {
	short := hex.EncodeToString(testKey("a")[:MinKeySize-1])
	tests := []struct {
		name  string
		text  string
		err   error
		line  int
		match string
	}{
		{"empty", "", ErrNoKeys, 0, "lists no key"},
		{"only comments", "# nothing\n\n  # here\n", ErrNoKeys, 0, "lists no key"},
		{"bad hex", hexA + "\n\nzz" + hexB + "\n", ErrKeyFileSyntax, 3, "bad hex"},
		{"odd hex", hexA + "\n" + hexB + "0\n", ErrKeyFileSyntax, 2, "bad hex"},
		{"short key", "# c\n" + short + "\n", ErrShortKey, 2, "31 bytes; use 32 random bytes or more"},
		{"duplicate", hexA + "\n# again\n" + hexB + "\n" + strings.ToUpper(hexA) + "\n", ErrDuplicateKey, 4, "as line 1"},
		{"unknown option", hexA + "\n" + hexB + " until=2026-12-01T00:00:00Z\n", ErrKeyFileSyntax, 2, `unknown option "until=`},
		{"bad time", hexA + "\n" + hexB + " accept-until=tomorrow\n", ErrKeyFileSyntax, 2, "not an RFC 3339 time"},
		{"accept-until twice", hexA + "\n" + hexB + " accept-until=2026-12-01T00:00:00Z accept-until=2026-12-02T00:00:00Z\n",
			ErrKeyFileSyntax, 2, "given twice"},
		{"zero time", hexA + "\n" + hexB + " accept-until=0001-01-01T00:00:00Z\n", ErrKeyFileSyntax, 2, "zero time"},
		{"signing key expires", "\n" + hexA + " accept-until=2026-12-01T00:00:00Z\n" + hexB + "\n", ErrSignerExpires, 2,
			"put accept-until on an old key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseKeyFile([]byte(tt.text))
			var kfe *KeyFileError
			if !errors.As(err, &kfe) || !errors.Is(err, tt.err) {
				t.Fatalf("ParseKeyFile: %v, want a *KeyFileError wrapping %v", err, tt.err)
			}
			if kfe.Line != tt.line || !strings.Contains(err.Error(), tt.match) {
				t.Errorf("ParseKeyFile: %q (line %d), want line %d mentioning %q", err, kfe.Line, tt.line, tt.match)
			}
		})
	}
}

func TestNewKeyringErrors(t *testing.T) {
	a := testKey("a")
	tests := []struct {
		name string
		keys []KeyLine
		err  error
	}{
		{"none", nil, ErrNoKeys},
		{"short", []KeyLine{{Key: a[:31]}}, ErrShortKey},
		{"same key twice", []KeyLine{{Key: a}, {Key: testKey("b")}, {Key: a}}, ErrDuplicateKey},
		{"signing key expires", []KeyLine{{Key: a, AcceptUntil: time.Unix(1, 0)}}, ErrSignerExpires},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewKeyring(tt.keys...); !errors.Is(err, tt.err) {
				t.Errorf("NewKeyring: %v, want %v", err, tt.err)
			}
		})
	}
	// The ring keeps its own copy of the secrets.
	k := bytes.Clone(a)
	r := testRing(t, k)
	k[0] ^= 1
	if r.SigningID() != KeyID(a) || !bytes.Equal(r.keys[0].secret, a) {
		t.Error("changing the caller's key changed the ring")
	}
}

func TestFormatKeyFile(t *testing.T) {
	until := time.Date(2026, 12, 1, 2, 3, 4, 5, time.FixedZone("x", 3600))
	lines := []KeyLine{{Key: testKey("a")}, {Key: testKey("b"), AcceptUntil: until}, {Key: testKey("c")}}
	text := FormatKeyFile(lines...)
	r, err := ParseKeyFile(text)
	if err != nil {
		t.Fatalf("ParseKeyFile(FormatKeyFile(...)): %v\n%s", err, text)
	}
	for i, info := range r.Info() {
		if info.ID != KeyID(lines[i].Key) || !info.AcceptUntil.Equal(lines[i].AcceptUntil) {
			t.Errorf("key %d read back as %+v, want id %08x until %v", i, info, KeyID(lines[i].Key), lines[i].AcceptUntil)
		}
	}
}

// writeKeyFile writes a key file with exactly mode perm.
func writeKeyFile(t *testing.T, perm fs.FileMode, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cluster.key")
	if err := os.WriteFile(path, []byte(text), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // whatever the umask
		t.Fatal(err)
	}
	return path
}

func TestLoadKeyFile(t *testing.T) {
	good := FormatKeyFile(KeyLine{Key: testKey("a")}, KeyLine{Key: testKey("b")})
	tests := []struct {
		name  string
		perm  fs.FileMode
		text  string
		err   error // nil: loads
		match string
	}{
		{"0600", 0o600, string(good), nil, ""},
		{"0400", 0o400, string(good), nil, ""},
		{"0644", 0o644, string(good), ErrKeyFilePerm, "mode 0644"},
		{"0640", 0o640, string(good), ErrKeyFilePerm, "mode 0640"},
		{"0604", 0o604, string(good), ErrKeyFilePerm, "mode 0604"},
		{"0610", 0o610, string(good), ErrKeyFilePerm, "mode 0610"},
		{"bad line", 0o600, hexA + "\nnope\n", ErrKeyFileSyntax, "line 2: "},
		{"empty", 0o600, "", ErrNoKeys, "lists no key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeKeyFile(t, tt.perm, tt.text)
			r, err := LoadKeyFile(path)
			if tt.err == nil {
				if err != nil || r.Len() != 2 || r.SigningID() != KeyID(testKey("a")) {
					t.Fatalf("LoadKeyFile: %v, %+v", err, r)
				}
				return
			}
			if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.match) {
				t.Fatalf("LoadKeyFile: %v, want %v naming %s and %q", err, tt.err, path, tt.match)
			}
			if tt.err == ErrKeyFilePerm && !strings.Contains(err.Error(), "chmod 600 "+path) {
				t.Errorf("LoadKeyFile: %v does not give the fix chmod 600 %s", err, path)
			}
		})
	}
}

func TestLoadKeyFileNotAFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadKeyFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyFile(dir); !errors.Is(err, ErrKeyFilePerm) || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v, want ErrKeyFilePerm, not a regular file", err)
	}
	big := writeKeyFile(t, 0o600, hexA+"\n"+strings.Repeat("#", maxKeyFile))
	if _, err := LoadKeyFile(big); !errors.Is(err, ErrKeyFileSyntax) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized file: %v, want ErrKeyFileSyntax, larger than", err)
	}
}

func TestLoadKeyFileOwner(t *testing.T) {
	privtest.Require(t)
	path := writeKeyFile(t, 0o600, hexA+"\n")
	if _, err := LoadKeyFile(path); err != nil {
		t.Fatalf("file owned by root: %v", err)
	}
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, err := LoadKeyFile(path)
	if !errors.Is(err, ErrKeyFilePerm) || !strings.Contains(err.Error(), "owned by uid 65534") || !strings.Contains(err.Error(), "chown root "+path) {
		t.Errorf("file owned by uid 65534: %v, want ErrKeyFilePerm naming the owner and the fix", err)
	}
}
