//go:build linux && !vigil_nohvproc

package proc

import (
	"os"
	"strconv"
	"syscall"
	"testing"
)

// benchRig is newRig for benchmarks.
func benchRig(b *testing.B) *rig {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	exits := make(chan string, 16)
	h, err := New(b.TempDir(), exe, func(name string) { exits <- name })
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.Close() })
	return &rig{h: h, exits: exits}
}

// BenchmarkStartKill measures starting a VM until its process is ready,
// then killing it.
func BenchmarkStartKill(b *testing.B) {
	r := benchRig(b)
	i := 0
	for b.Loop() {
		name := "vm" + strconv.Itoa(i)
		i++
		if err := r.h.Start(VM{Name: name, CPU: 1, MemoryMiB: 1}); err != nil {
			b.Fatal(err)
		}
		for e := range events {
			if e == name+" ready" {
				break
			}
		}
		if err := r.h.Kill(name); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExitSeen measures the time from an external SIGKILL of a VM to
// onExit (the VM's start is not timed).
func BenchmarkExitSeen(b *testing.B) {
	r := benchRig(b)
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		name := "vm" + strconv.Itoa(i)
		if err := r.h.Start(VM{Name: name, CPU: 1, MemoryMiB: 1}); err != nil {
			b.Fatal(err)
		}
		for e := range events {
			if e == name+" ready" {
				break
			}
		}
		id, err := readPidfile(r.h.dir, name)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		syscall.Kill(id.PID, syscall.SIGKILL)
		if got := <-r.exits; got != name {
			b.Fatalf("onExit(%s); want %s", got, name)
		}
	}
}
