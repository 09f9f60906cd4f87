package itest

import (
	"context"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/tools/qemu"
)

// rssLine is the agent's resident memory in its status.
var rssLine = regexp.MustCompile(`RSS ([0-9.]+) ?(KiB|MiB|GiB|kB|MB)`)

// BenchmarkBoot boots the image and reports: ms from QEMU's start to the
// first heartbeat on the network (seen by the QEMU network's hub, from
// outside the VM), the initramfs and vigil binary sizes, and the agent's
// resident memory from its status.
func BenchmarkBoot(b *testing.B) {
	f := setup(b)
	var firstHB time.Duration
	var rssMiB float64
	b.StopTimer()
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		fs := newCluster(2).write(b, f, b.TempDir())
		n := network(b)
		// h2 is not booted: the hub answers ARP for it, so h1's
		// heartbeats to it leave the VM.
		n.StandIn(netip.MustParseAddr(hostAddr(2)))
		b.StartTimer()
		vm := boot(b, ctx, f, fs, "h1", []*qemu.Network{n})
		src := netip.MustParseAddr(hostAddr(1))
		fr, err := n.WaitFrame(ctx, vm.Started, func(fr qemu.Frame) bool {
			s, d, _, ok := fr.UDP()
			return ok && s.Addr() == src && d.Port() == port
		})
		b.StopTimer()
		if err != nil {
			b.Fatalf("no heartbeat from h1: %v", err)
		}
		firstHB += fr.At.Sub(vm.Started)
		status := waitAgent(b, ctx, vm, "h1")
		if m := rssLine.FindStringSubmatch(status); m != nil {
			v, _ := strconv.ParseFloat(m[1], 64)
			switch m[2] {
			case "KiB", "kB":
				v /= 1024
			case "GiB":
				v *= 1024
			}
			rssMiB += v
		} else {
			b.Logf("the agent's status names no RSS:\n%s", status)
			rssMiB = -1
		}
		vm.Stop()
		cancel()
	}
	b.ReportMetric(float64(firstHB.Milliseconds())/float64(b.N), "ms-to-heartbeat")
	if rssMiB >= 0 {
		b.ReportMetric(rssMiB/float64(b.N), "agent-RSS-MiB")
	}
	for name, path := range map[string]string{"initramfs-bytes": f.initrd, "vigil-bytes": f.vigil} {
		st, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(st.Size()), name)
	}
	b.ReportMetric(0, "ns/op")
}
