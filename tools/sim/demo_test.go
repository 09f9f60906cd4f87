package sim

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

func TestDemo(t *testing.T) {
	var out bytes.Buffer
	if err := Demo(&out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, group := range []string{"\ndetection\n", "\nfencing\n", "\nrestarts\n"} {
		if !strings.Contains(text, group) {
			t.Errorf("no %q group in:\n%s", strings.TrimSpace(group), text)
		}
	}
	last := regexp.MustCompile(`\nrecovered (\d+)/(\d+) VMs in \d+ ms \(detect \d+ ms, fence \d+ ms via [a-z-]+\)\n$`)
	m := last.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("closing line missing or malformed:\n%s", text)
	}
	if m[1] != m[2] || m[2] == "0" {
		t.Errorf("recovered %s of %s VMs:\n%s", m[1], m[2], text)
	}
}
