package ebpf

import (
	"encoding/binary"
	"syscall"
	"testing"
	"time"
)

func TestExit(t *testing.T) {
	for _, c := range []struct {
		status   int
		str      string
		signaled bool
		sig      syscall.Signal
		code     int
	}{
		{0, "pid 42 exited with status 0", false, 0, 0},
		{3 << 8, "pid 42 exited with status 3", false, 0, 3},
		{255 << 8, "pid 42 exited with status 255", false, 0, 255},
		{9, "pid 42 killed by SIGKILL", true, 9, -1},
		{15, "pid 42 killed by SIGTERM", true, 15, -1},
		{0x80 | 6, "pid 42 killed by SIGABRT (core dumped)", true, 6, -1},
		{0x80 | 11, "pid 42 killed by SIGSEGV (core dumped)", true, 11, -1},
		{34, "pid 42 killed by SIGRTMIN", true, 34, -1},
		{36, "pid 42 killed by SIGRTMIN+2", true, 36, -1},
		{33, "pid 42 killed by signal 33", true, 33, -1},
	} {
		x := Exit{Pid: 42, Status: c.status}
		if got := x.String(); got != c.str {
			t.Errorf("status %#x: String() = %q, want %q", c.status, got, c.str)
		}
		if x.Signaled() != c.signaled || x.Signal() != c.sig || x.ExitCode() != c.code {
			t.Errorf("status %#x: Signaled %v, Signal %d, ExitCode %d; want %v, %d, %d",
				c.status, x.Signaled(), x.Signal(), x.ExitCode(), c.signaled, c.sig, c.code)
		}
		if x.CoreDumped() != (c.status&0x80 != 0) {
			t.Errorf("status %#x: CoreDumped %v", c.status, x.CoreDumped())
		}
	}
}

func TestExitOf(t *testing.T) {
	raw := binary.LittleEndian.AppendUint64(nil, uint64(5*time.Second))
	raw = binary.LittleEndian.AppendUint32(raw, 4242)
	raw = binary.LittleEndian.AppendUint32(raw, 3<<8)
	want := Exit{Pid: 4242, Status: 3 << 8, At: 5 * time.Second}
	if got, ok := exitOf(raw); !ok || got != want {
		t.Errorf("exitOf = %+v, %v; want %+v", got, ok, want)
	}
	if _, ok := exitOf(raw[:15]); ok {
		t.Error("exitOf accepts a short record")
	}
}
