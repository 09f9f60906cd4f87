//go:build linux && !vigil_noebpf

package ebpf

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// quantile is the q-quantile of the sorted ds, by the nearest rank.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(q*float64(len(ds))+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

// reportQuantiles reports the median and the quantile q of ds in unit as
// prefix+"p50-"+name and so on.
func reportQuantiles(b *testing.B, ds []time.Duration, prefix string, unit time.Duration, name string, qs ...float64) {
	slices.Sort(ds)
	for _, q := range qs {
		label := "max"
		if q < 1 {
			label = fmt.Sprintf("p%.0f", q*100)
		}
		b.ReportMetric(float64(quantile(ds, q))/float64(unit), prefix+label+"-"+name)
	}
}

// BenchmarkExitDetect kills a watched process per iteration and waits for
// its exit; ns/op is the whole cycle, with the process's start. Of the
// metrics, kernel- is from the kernel running the exit to the receive in
// user space, kill- from just before kill(2) to the receive.
func BenchmarkExitDetect(b *testing.B) {
	requireExits(b)
	x := newTestExits(b)
	var fromExit, fromKill []time.Duration
	for b.Loop() {
		cmd := startSleep(b)
		if err := x.Watch(cmd.Process.Pid); err != nil {
			b.Fatal(err)
		}
		killed := Monotonic()
		if err := cmd.Process.Kill(); err != nil {
			b.Fatal(err)
		}
		e := nextExit(b, x)
		recv := Monotonic()
		if e.Pid != cmd.Process.Pid {
			b.Fatalf("exit %v, want pid %d", e, cmd.Process.Pid)
		}
		fromExit = append(fromExit, recv-e.At)
		fromKill = append(fromKill, recv-killed)
		waitStatus(b, cmd)
	}
	reportQuantiles(b, fromExit, "kernel-", time.Microsecond, "µs", 0.5, 0.9)
	reportQuantiles(b, fromKill, "kill-", time.Microsecond, "µs", 0.5, 0.9)
}

// BenchmarkBlockDown freezes the file system under a watched loop device
// with a write in flight per iteration, and measures from the start of
// the stuck period (the write's issue) to the receive of the down event.
func BenchmarkBlockDown(b *testing.B) {
	requireBlockIO(b)
	d := newFrozenDisk(b)
	bio := newTestBlockIO(b, BlockOptions{})
	if err := bio.Watch(d.rdev); err != nil {
		b.Fatal(err)
	}
	buf := alignedBlock(0x5a)
	var w *asyncWrite
	b.Cleanup(func() {
		d.thaw(b)
		if w != nil {
			w.wait(b)
		}
	})
	var lags []time.Duration
	for b.Loop() {
		d.freeze(b)
		w = d.writeAsync(buf)
		ev := nextEvent(b, bio.Events(), d.rdev)
		recv := Monotonic()
		if !ev.Down || !w.pending() {
			b.Fatalf("event %v; the write pending: %v", ev, w.pending())
		}
		lags = append(lags, recv-ev.First)
		d.thaw(b)
		if err := w.wait(b); err != nil {
			b.Fatal(err)
		}
		if up := nextEvent(b, bio.Events(), d.rdev); up.Down {
			b.Fatalf("event %v after the thaw, want up", up)
		}
	}
	reportQuantiles(b, lags, "", time.Millisecond, "ms", 0.5, 1)
}
