package hvtest

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/drivers/hv"
)

func vm(name string) hv.VM { return hv.VM{Name: name, CPU: 2, MemoryMiB: 2048} }

func TestFake(t *testing.T) {
	tests := []struct {
		name    string
		adopt   []string
		run     func(f *Fake) error // the last call's error is checked
		errIs   error
		calls   string
		running string
		exited  string
	}{
		{
			name:    "start",
			run:     func(f *Fake) error { return f.Start(vm("web1")) },
			calls:   "start web1",
			running: "web1",
		},
		{
			name:    "start twice is once",
			run:     func(f *Fake) error { f.Start(vm("web1")); return f.Start(vm("web1")) },
			calls:   "start web1,start web1",
			running: "web1",
		},
		{
			name: "stop and kill",
			run: func(f *Fake) error {
				f.Start(vm("a"))
				f.Start(vm("b"))
				f.Stop("a", 30*time.Second)
				return f.Kill("b")
			},
			calls: "start a,start b,stop a 30s,kill b",
		},
		{
			name:    "stop a VM that does not run",
			run:     func(f *Fake) error { return f.Stop("ghost", time.Second) },
			calls:   "stop ghost 1s",
			running: "",
		},
		{
			name:    "running is sorted",
			adopt:   []string{"zeta"},
			run:     func(f *Fake) error { f.Start(vm("web2")); f.Start(vm("alpha")); _, err := f.Running(); return err },
			calls:   "start web2,start alpha,running",
			running: "alpha,web2,zeta",
		},
		{
			name:    "adopted VMs stop",
			adopt:   []string{"db1", "web1", "db1"},
			run:     func(f *Fake) error { return f.Kill("db1") },
			calls:   "kill db1",
			running: "web1",
		},
		{
			name:   "exit",
			run:    func(f *Fake) error { f.Start(vm("web1")); f.Exit("web1"); f.Exit("web1"); return nil },
			calls:  "start web1",
			exited: "web1",
		},
		{
			name:    "failed start",
			run:     func(f *Fake) error { f.Fail(OpStart, syscall.ENOMEM); f.Start(vm("a")); return f.Start(vm("b")) },
			errIs:   syscall.ENOMEM,
			calls:   "start a,start b",
			running: "",
		},
		{
			name: "failure cleared",
			run: func(f *Fake) error {
				f.Fail(OpStart, syscall.ENOMEM)
				f.Start(vm("a"))
				f.Fail(OpStart, nil)
				return f.Start(vm("a"))
			},
			calls:   "start a,start a",
			running: "a",
		},
		{
			name:    "failed stop leaves it running",
			run:     func(f *Fake) error { f.Start(vm("a")); f.Fail(OpStop, syscall.EIO); return f.Stop("a", time.Minute) },
			errIs:   syscall.EIO,
			calls:   "start a,stop a 1m0s",
			running: "a",
		},
		{
			name:    "failed kill leaves it running",
			run:     func(f *Fake) error { f.Start(vm("a")); f.Fail(OpKill, syscall.EPERM); return f.Kill("a") },
			errIs:   syscall.EPERM,
			calls:   "start a,kill a",
			running: "a",
		},
		{
			name:  "failed running",
			run:   func(f *Fake) error { f.Fail(OpRunning, syscall.EIO); _, err := f.Running(); return err },
			errIs: syscall.EIO,
			calls: "running",
		},
		{
			name:    "closed",
			run:     func(f *Fake) error { f.Start(vm("a")); f.Close(); f.Close(); return f.Kill("a") },
			errIs:   ErrClosed,
			calls:   "start a,close,close,kill a",
			running: "a",
		},
		{
			name:  "running after close",
			run:   func(f *Fake) error { f.Close(); _, err := f.Running(); return err },
			errIs: ErrClosed,
			calls: "close,running",
		},
		{
			name:    "no exit report after close",
			run:     func(f *Fake) error { f.Start(vm("a")); f.Close(); f.Exit("a"); return nil },
			calls:   "start a,close",
			running: "",
		},
		{
			name: "failed close",
			run: func(f *Fake) error {
				f.Fail(OpClose, syscall.EBUSY)
				f.Close()
				f.Fail(OpClose, nil)
				return f.Start(vm("a"))
			},
			calls:   "close,start a",
			running: "a",
		},
		{
			name:  "bad name",
			run:   func(f *Fake) error { return f.Start(vm("../etc")) },
			errIs: ErrInvalidVM,
			calls: "start ../etc",
		},
		{
			name:  "bad size",
			run:   func(f *Fake) error { return f.Start(hv.VM{Name: "a", MemoryMiB: 512}) },
			errIs: ErrInvalidVM,
			calls: "start a",
		},
		{
			name:  "bad name to kill",
			run:   func(f *Fake) error { return f.Kill("") },
			errIs: ErrInvalidVM,
			calls: "kill ",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var exited []string
			f := New(func(name string) { exited = append(exited, name) })
			f.Adopt(tc.adopt...)
			err := tc.run(f)
			if tc.errIs == nil && err != nil || tc.errIs != nil && !errors.Is(err, tc.errIs) {
				t.Errorf("last call = %v; want %v", err, tc.errIs)
			}
			if got := strings.Join(f.Calls(), ","); got != tc.calls {
				t.Errorf("calls %q; want %q", got, tc.calls)
			}
			var names []string
			for _, v := range f.VMs() {
				names = append(names, v.Name)
				if !f.IsRunning(v.Name) {
					t.Errorf("VMs() lists %s, IsRunning says no", v.Name)
				}
			}
			if got := strings.Join(names, ","); got != tc.running {
				t.Errorf("running %q; want %q", got, tc.running)
			}
			if got := strings.Join(exited, ","); got != tc.exited {
				t.Errorf("onExit heard %q; want %q", got, tc.exited)
			}
		})
	}
}

func TestErrorsNameTheCall(t *testing.T) {
	f := New(nil)
	f.Fail(OpStop, syscall.EIO)
	if err := f.Stop("web1", time.Second); err == nil || !strings.Contains(err.Error(), "stop VM web1") {
		t.Errorf("Stop error %v does not name the call", err)
	}
	f.Close()
	if err := f.Kill("web1"); err == nil || !strings.Contains(err.Error(), "kill VM web1") || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Kill error %v does not name the call and the cause", err)
	}
}

func TestRecords(t *testing.T) {
	f := New(nil)
	f.Adopt("old")
	for range 2 {
		if err := f.Start(vm("web1")); err != nil {
			t.Fatal(err)
		}
	}
	f.Exit("web1")
	f.Start(vm("web1"))
	if f.Starts("web1") != 2 || f.Starts("old") != 0 {
		t.Errorf("Starts(web1) = %d, Starts(old) = %d; want 2 and 0", f.Starts("web1"), f.Starts("old"))
	}
	want := []hv.VM{{Name: "old"}, vm("web1")}
	if got := f.VMs(); !slices.Equal(got, want) {
		t.Errorf("VMs() = %+v; want %+v", got, want)
	}
	if f.Exit("ghost") {
		t.Error("Exit of a stopped VM reported it running")
	}
	if names, err := f.Running(); err != nil || !slices.Equal(names, []string{"old", "web1"}) {
		t.Errorf("Running() = %v, %v", names, err)
	}
	calls := f.Calls()
	calls[0] = "changed"
	if f.Calls()[0] != "start web1" {
		t.Error("Calls returned the Fake's own slice")
	}
	if f.Closed() {
		t.Error("Closed before Close")
	}
	if f.Close(); !f.Closed() {
		t.Error("not Closed after Close")
	}
}

func TestFailUnknownOp(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), OpStart) {
			t.Errorf("Fail of an unknown op: panic %v; want one listing the ops", r)
		}
	}()
	New(nil).Fail("reboot", syscall.EIO)
}

// TestConcurrent is for the race detector.
func TestConcurrent(t *testing.T) {
	const workers, rounds = 4, 200
	exits := make(chan string, workers*rounds)
	f := New(func(name string) { exits <- name })
	names := []string{"a", "b", "c", "d"}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				n := names[(w+i)%len(names)]
				switch i % 5 {
				case 0:
					f.Start(vm(n))
				case 1:
					f.Stop(n, time.Second)
				case 2:
					f.Exit(n)
				case 3:
					f.Running()
				case 4:
					f.Fail(OpKill, syscall.EIO)
					f.Kill(n)
					f.Fail(OpKill, nil)
				}
				f.Adopt(n)
				f.VMs()
			}
		}()
	}
	wg.Wait()
	close(exits)
	if got := len(f.Calls()); got != workers*rounds*4/5 { // Exit is not a call
		t.Errorf("%d calls recorded; want %d", got, workers*rounds*4/5)
	}
	for n := range exits {
		if !slices.Contains(names, n) {
			t.Errorf("onExit(%q)", n)
		}
	}
}
