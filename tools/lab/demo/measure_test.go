package demo

import (
	"strings"
	"testing"
	"time"
)

const logH1 = `{"time":"2026-11-25T10:00:00.100Z","level":"INFO","msg":"vm1 running","host":"h2","component":"vm"}
{"time":"2026-11-25T10:00:01.400Z","level":"INFO","msg":"h2 silent on all links (last heard 500ms ago)","host":"h1","component":"hb"}
{"time":"2026-11-25T10:00:03.500Z","level":"WARN","msg":"h2: suspect -> failed (network: silent)","host":"h1","component":"verdict"}
{"time":"2026-11-25T10:00:09.900Z","level":"INFO","msg":"restart assigned","host":"h1","component":"assign","vm":"vm1","from":"h2","to":"h3","proof":"lease-expired","epoch":2}
{"time":"2026-11-25T10:00:10.400Z","level":"INFO","msg":"vm1 running","host":"h3","component":"vm"}
not json: a panic message
{"time":"2026-11-25T10:00:10.900Z","level":"INFO","msg":"vm4 running","host":"h1","component":"vm"}
`

func TestMeasure(t *testing.T) {
	lines, err := ParseLog(strings.NewReader(logH1), "h1")
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 7 || lines[5].Level != "RAW" || lines[3].Attrs["proof"] != "lease-expired" {
		t.Fatalf("parsed %+v", lines)
	}
	failed, _ := time.Parse(time.RFC3339Nano, "2026-11-25T10:00:00.900Z")
	r := Measure(lines, "h2", failed, []string{"vm1", "vm4"})
	want := Recovery{Detect: 500 * time.Millisecond, Fence: 8500 * time.Millisecond, Recover: 10 * time.Second,
		Method: "lease-expired", Recovered: 2, Lost: 2, Detected: true, Proven: true}
	if r != want {
		t.Fatalf("Measure = %+v\nwant      %+v", r, want)
	}
	// Before the failure nothing counts; a VM of another host does not either.
	r = Measure(lines, "h2", failed.Add(time.Hour), []string{"vm1"})
	if r.Detected || r.Proven || r.Recovered != 0 {
		t.Fatalf("Measure after every line = %+v", r)
	}
	if got := lines[3].Text(); got != "h1/assign: restart assigned epoch=2 from=h2 proof=lease-expired to=h3 vm=vm1" {
		t.Errorf("Text = %q", got)
	}
}
