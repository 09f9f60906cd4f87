package sim

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/hb"
)

func TestWatchdog(t *testing.T) {
	s := time.Second
	for _, tc := range []struct {
		name   string
		pets   []time.Duration // pet times, 4s timeout each
		cmd    string          // applied at 1s
		fired  time.Duration   // 0: never fires within 30s
		booted bool            // the host is back up with a new incarnation at the end
	}{
		{"never petted: never armed", nil, "", 0, false},
		{"one pet", []time.Duration{0}, "", 4 * s, true},
		{"petted in time", []time.Duration{0, 3 * s, 6 * s, 9 * s}, "", 13 * s, true},
		{"petted just before the deadline", []time.Duration{0, 4*s - 1}, "", 8*s - 1, true},
		{"power off disarms", []time.Duration{0}, "poweroff h1", 0, false},
		{"agent restart keeps it armed", []time.Duration{0}, "restart h1", 4 * s, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBare(t, 2, 1, 1)
			for _, at := range tc.pets {
				b.RunUntil(at)
				b.env(0).PetWatchdog(4 * s)
			}
			if tc.cmd != "" {
				b.RunUntil(s)
				b.do(tc.cmd)
			}
			b.RunUntil(40 * s)
			fired := firedAt(b.Log())
			h := b.hosts[0]
			if want := tc.fired.Truncate(time.Millisecond); fired != want {
				t.Errorf("fired at %v, want %v (log:\n%s)", fired, want, b.Log())
			}
			if booted := h.up && h.inc > 1 && fired != 0; booted != tc.booted {
				t.Errorf("rebooted: %v, want %v", booted, tc.booted)
			}
			if tc.booted && h.wdArmed {
				t.Errorf("a rebooted host's watchdog must start disarmed")
			}
		})
	}
}

// firedAt is the time of the first watchdog reset in a log, or 0.
func firedAt(log string) time.Duration {
	for _, l := range strings.Split(log, "\n") {
		if f := strings.Fields(l); len(f) > 2 && strings.Contains(l, "watchdog fired") {
			d, _ := time.ParseDuration(f[1] + "s")
			return d
		}
	}
	return 0
}

func TestBMC(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fault  string
		target int
		op     cluster.BMCOp
		want   cluster.BMCReplied
		at     time.Duration
		on     bool // target's power at the end
	}{
		{"power off", "", 1, cluster.BMCPowerOff, cluster.BMCReplied{Host: 1, Op: cluster.BMCPowerOff}, 50 * time.Millisecond, false},
		{"status", "", 1, cluster.BMCStatus, cluster.BMCReplied{Host: 1, Op: cluster.BMCStatus, On: true}, 50 * time.Millisecond, true},
		{"unreachable", "bmc h2 unreachable", 1, cluster.BMCPowerOff, cluster.BMCReplied{Host: 1, Op: cluster.BMCPowerOff, Err: ErrTimeout}, 2 * time.Second, true},
		{"liar says off", "bmc h2 liar", 1, cluster.BMCPowerOff, cluster.BMCReplied{Host: 1, Op: cluster.BMCPowerOff}, 50 * time.Millisecond, true},
		{"liar says on", "bmc h2 liar", 1, cluster.BMCStatus, cluster.BMCReplied{Host: 1, Op: cluster.BMCStatus, On: true}, 50 * time.Millisecond, true},
		{"healed", "bmc h2 ok", 1, cluster.BMCPowerOff, cluster.BMCReplied{Host: 1, Op: cluster.BMCPowerOff}, 50 * time.Millisecond, false},
		{"no BMC", "", 2, cluster.BMCPowerOff, cluster.BMCReplied{Host: 2, Op: cluster.BMCPowerOff, Err: ErrNoBMC}, time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBare(t, 3, 1, 1)
			if tc.fault != "" {
				b.do(tc.fault)
			}
			b.env(0).BMC(tc.target, tc.op)
			b.RunUntil(5 * time.Second)
			want := []seen{{tc.at, 0, tc.want}}
			if got := b.take(); !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
			if on := b.hosts[tc.target].powered; on != tc.on {
				t.Errorf("target powered: %v, want %v", on, tc.on)
			}
		})
	}
}

func TestFreezeQueuesCompletions(t *testing.T) {
	b := newBare(t, 2, 1, 1)
	b.env(0).WriteSlot(0, &cluster.Record{})
	b.env(0).VM(0, cluster.VMStart, 0)
	b.do("freeze h1")
	b.env(1).Send(&hb.Message{From: 1}) // a heartbeat to the frozen host is dropped
	b.RunUntil(5 * time.Second)
	if len(b.got) != 0 {
		t.Fatalf("a frozen host was handed %v", b.got)
	}
	if got := b.Running(0); !slices.Equal(got, []int{0}) {
		t.Errorf("VM runs on %v while its host is frozen, want [0]", got)
	}
	b.do("cut h1 0")
	b.do("thaw h1")
	want := []seen{
		{5 * time.Second, 0, cluster.SlotWritten{}},
		{5 * time.Second, 0, cluster.VMDone{VM: 0, Op: cluster.VMStart}},
		{5 * time.Second, 0, cluster.LinkChanged{Link: 0}},
	}
	if got := b.take(); !slices.Equal(got, want) {
		t.Errorf("at thaw got %v, want %v", got, want)
	}
}

func TestHypervisor(t *testing.T) {
	s := time.Second
	start, stop, kill := cluster.VMStart, cluster.VMStop, cluster.VMKill
	for _, tc := range []struct {
		name    string
		fault   string
		ops     []cluster.VMOp // issued at 0, 2s, 4s...
		want    []seen
		running bool
	}{
		{"start", "", []cluster.VMOp{start}, []seen{{s, 0, cluster.VMDone{Op: start}}}, true},
		{"start twice", "", []cluster.VMOp{start, start}, []seen{{s, 0, cluster.VMDone{Op: start}}, {2*s + time.Millisecond, 0, cluster.VMDone{Op: start}}}, true},
		{"stop", "", []cluster.VMOp{start, stop}, []seen{{s, 0, cluster.VMDone{Op: start}}, {2*s + 300*time.Millisecond, 0, cluster.VMDone{Op: stop}}}, false},
		{"kill", "", []cluster.VMOp{start, kill}, []seen{{s, 0, cluster.VMDone{Op: start}}, {2*s + 10*time.Millisecond, 0, cluster.VMDone{Op: kill}}}, false},
		{"vmfail", "vmfail vm1", []cluster.VMOp{start}, []seen{{s, 0, cluster.VMDone{Op: start, Err: ErrStart}}}, false},
		{"hvfail", "hvfail h1", []cluster.VMOp{start}, []seen{{s, 0, cluster.VMDone{Op: start, Err: ErrStart}}}, false},
		{"hvok", "hvok h1", []cluster.VMOp{start}, []seen{{s, 0, cluster.VMDone{Op: start}}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBare(t, 2, 1, 1)
			if tc.fault != "" {
				b.do(tc.fault)
			}
			for i, op := range tc.ops {
				b.RunUntil(time.Duration(i) * 2 * s)
				b.env(0).VM(0, op, 0)
			}
			b.RunUntil(10 * s)
			if got := b.take(); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if running := len(b.Running(0)) > 0; running != tc.running {
				t.Errorf("running: %v, want %v", running, tc.running)
			}
		})
	}
}

func TestCrashAndPowerLoss(t *testing.T) {
	b := newBare(t, 2, 1, 1)
	b.env(0).VM(0, cluster.VMStart, 0)
	b.env(0).VM(1, cluster.VMStart, 0)
	b.RunUntil(2 * time.Second)
	b.take()
	b.do("crash vm1")
	if got, want := b.take(), []seen{{2 * time.Second, 0, cluster.VMExited{VM: 0}}}; !slices.Equal(got, want) {
		t.Errorf("crash: got %v, want %v", got, want)
	}
	b.do("poweroff h1")
	if len(b.Running(1)) != 0 {
		t.Errorf("a VM survived its host's power loss")
	}
	b.do("poweron h1")
	b.RunUntil(30 * time.Second)
	if h := b.hosts[0]; !h.up || h.inc != 2 || len(b.Running(1)) != 0 {
		t.Errorf("after power-on: up %v, incarnation %d, VMs %v; want up, 2, none", h.up, h.inc, b.Running(1))
	}
}

func TestDrift(t *testing.T) {
	b := newBare(t, 2, 1, 1)
	b.RunUntil(10 * time.Second)
	b.do("drift h1 1000")
	b.RunUntil(20 * time.Second)
	if got, want := b.env(0).Now(), 20*time.Second+10*time.Millisecond; got != want {
		t.Errorf("drifting clock reads %v, want %v", got, want)
	}
	if got := b.env(1).Now(); got != 20*time.Second {
		t.Errorf("steady clock reads %v, want 20s", got)
	}
}

func TestFailedStartLetsAStopFinish(t *testing.T) {
	b := newBare(t, 2, 1, 1)
	b.env(0).VM(0, cluster.VMStart, 0)
	b.RunUntil(2 * time.Second)
	b.env(0).VM(0, cluster.VMStop, 0)
	b.do("vmfail vm1")
	b.env(0).VM(0, cluster.VMStart, 0) // fails; the stop still completes
	b.RunUntil(5 * time.Second)
	if st := b.hosts[0].vm[0]; st != vmOff {
		t.Errorf("VM state %d, want off", st)
	}
}
