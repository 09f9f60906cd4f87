//go:build !vigil_noebpf

package cli

import (
	"bytes"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/drivers/ebpf"
	"github.com/vigil-ha/vigil/firmware/agentd"
)

func TestPrintEBPF(t *testing.T) {
	ev := ebpf.DevEvent{Dev: 7<<8 | 3, Down: true, Why: "3 requests stuck for 55ms"}
	r := &agentd.EBPFReply{
		Features: []agentd.FeatureStatus{
			{Name: "stamping", Mode: "auto", Active: true, Detail: "TCX ingress on eth0"},
			{Name: "block_io", Mode: "on", Active: true, Detail: "block_rq tracepoints on ds1 (/dev/loop3, 7:3)"},
			{Name: "exits", Mode: "auto", Detail: "ring buffers unsupported", Fallback: "pidfds"},
		},
		Stamps: []agentd.StampStatus{
			{Host: "h2", Link: "l0", Device: "eth0", Kernel: 512, Read: 510, Unread: 2, Ago: 37 * time.Millisecond},
			{Host: "h3", Link: "l0", Device: "eth0", Ago: -1},
		},
		Devices: []agentd.DeviceStatus{{Datastores: []string{"ds1"}, Dev: "7:3", Last: &ev, Detect: 57 * time.Millisecond,
			Stats: ebpf.DevStats{Issued: 10, Completed: 7, Errors: 1, InFlight: 3, OldestInFlight: 80 * time.Millisecond,
				Down: true, Why: "3 requests stuck for 55ms", Latency: [24]uint64{6: 4, 9: 3}}}},
		Exits: agentd.ExitStatus{Watched: []int{10, 11}, Events: 1, Median: 90 * time.Microsecond, Max: 90 * time.Microsecond,
			Recent: []string{"00:00:01.000: pid 12 killed by SIGKILL (vm vm1), seen after 90µs"}},
	}
	var b bytes.Buffer
	printEBPF(&b, r)
	checkLines(t, b.String(), []string{
		"stamping: on (auto), TCX ingress on eth0",
		"block_io: on (on), block_rq tracepoints on ds1 (/dev/loop3, 7:3)",
		"exits: OFF (auto): ring buffers unsupported; using pidfds",
		"h2           l0         eth0              512        510        2   37ms ago",
		"h3           l0         eth0                0          0        0      never",
		"device 7:3 (ds1): DOWN: 3 requests stuck for 55ms",
		"  requests: 10 issued, 7 completed, 1 failed, 3 in flight (the oldest for 80ms)",
		"  latency:  <128µs: 4, <1ms: 3",
		"  last down: 3 requests stuck for 55ms, judged 57ms after the first stuck or failed request",
		"exits: 2 processes watched, 1 exits seen, 0 lost; kernel to agent: median 90µs, max 90µs",
		"  00:00:01.000: pid 12 killed by SIGKILL (vm vm1), seen after 90µs",
	}, nil)
}

func TestHistogramBounds(t *testing.T) {
	for i, want := range map[int]string{0: "2µs", 8: "512µs", 9: "1ms", 19: "1s", 23: "16s"} {
		if got := bucketBound(i); got != want {
			t.Errorf("bucket %d: %s, want %s", i, got, want)
		}
	}
	if got := histogram(make([]uint64, 24)); got != "no completions yet" {
		t.Errorf("empty histogram: %q", got)
	}
}
