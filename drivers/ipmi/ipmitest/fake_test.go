package ipmitest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/drivers/ipmi"
)

func TestFakePower(t *testing.T) {
	ctx := context.Background()
	f := New()
	if on, err := f.PowerStatus(ctx); err != nil || !on {
		t.Fatalf("a new Fake: %v, %v; want on", on, err)
	}
	steps := []struct {
		do   func() error
		want bool
	}{
		{func() error { return f.PowerOff(ctx) }, false},
		{func() error { return f.PowerOff(ctx) }, false},
		{func() error { return f.PowerOn(ctx) }, true},
		{func() error { return f.PowerCycle(ctx) }, true},
	}
	for i, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if on, err := f.PowerStatus(ctx); err != nil || on != s.want {
			t.Fatalf("step %d: status %v, %v; want %v", i, on, err, s.want)
		}
	}
	want := []string{OpStatus, OpOff, OpStatus, OpOff, OpStatus, OpOn, OpStatus, OpCycle, OpStatus}
	if got := f.Calls(); !slices.Equal(got, want) {
		t.Errorf("Calls = %v, want %v", got, want)
	}
	if f.Count(OpOff) != 2 || f.Count(OpProbe) != 0 {
		t.Errorf("Count(off) = %d, Count(probe) = %d", f.Count(OpOff), f.Count(OpProbe))
	}
	f.SetOn(false)
	var ce *ipmi.CompletionError
	if err := f.PowerCycle(ctx); !errors.As(err, &ce) || ce.Code != 0xd5 {
		t.Errorf("PowerCycle of a host that is off: %v, want D5h", err)
	}
	if info, err := f.Probe(ctx); err != nil || info != DefaultInfo {
		t.Errorf("Probe = %+v, %v", info, err)
	}
	f.SetInfo(ipmi.Info{CipherSuite: 3})
	if info, _ := f.Probe(ctx); info.CipherSuite != 3 {
		t.Errorf("Probe after SetInfo = %+v", info)
	}
}

func TestFakeLiar(t *testing.T) {
	ctx := context.Background()
	f := New()
	f.SetLiar(true)
	if err := f.PowerOff(ctx); err != nil {
		t.Fatal(err)
	}
	if on, _ := f.PowerStatus(ctx); !on || !f.On() {
		t.Error("a liar went off")
	}
}

func TestFakeOffDelay(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	f := New()
	f.SetClock(func() time.Time { return now })
	f.SetOffDelay(3 * time.Second)
	if err := f.PowerOff(ctx); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2999 * time.Millisecond)
	if on, _ := f.PowerStatus(ctx); !on {
		t.Fatal("off before the delay")
	}
	if err := f.PowerOff(ctx); err != nil { // does not restart the delay
		t.Fatal(err)
	}
	now = now.Add(time.Millisecond)
	if on, _ := f.PowerStatus(ctx); on {
		t.Fatal("still on after the delay")
	}
	// Power on drops a pending power-off.
	f.SetOn(true)
	f.PowerOff(ctx)
	f.PowerOn(ctx)
	now = now.Add(time.Hour)
	if !f.On() {
		t.Error("a power-off overtaken by a power-on took effect")
	}
}

func TestFakeFailures(t *testing.T) {
	all := map[string]func(context.Context, *Fake) error{
		OpStatus: func(ctx context.Context, f *Fake) error { _, err := f.PowerStatus(ctx); return err },
		OpOff:    func(ctx context.Context, f *Fake) error { return f.PowerOff(ctx) },
		OpOn:     func(ctx context.Context, f *Fake) error { return f.PowerOn(ctx) },
		OpCycle:  func(ctx context.Context, f *Fake) error { return f.PowerCycle(ctx) },
		OpProbe:  func(ctx context.Context, f *Fake) error { _, err := f.Probe(ctx); return err },
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	boom := errors.New("boom")
	tests := []struct {
		name  string
		setup func(*Fake)
		ctx   context.Context
		is    error
	}{
		{"unreachable", func(f *Fake) { f.SetUnreachable(true) }, context.Background(), ipmi.ErrUnreachable},
		{"auth", func(f *Fake) { f.SetAuthFailure(true) }, context.Background(), ipmi.ErrAuth},
		{"canceled", func(*Fake) {}, canceled, context.Canceled},
		{"closed", func(f *Fake) { f.Close() }, context.Background(), ipmi.ErrClosed},
	}
	for _, tt := range tests {
		for op, call := range all {
			f := New()
			tt.setup(f)
			err := call(tt.ctx, f)
			var oe *ipmi.OpError
			if !errors.Is(err, tt.is) || !errors.As(err, &oe) || oe.Op != opNames[op] || oe.BMC != Addr {
				t.Errorf("%s %s: %v, want an *ipmi.OpError of %q matching %v", tt.name, op, err, opNames[op], tt.is)
			}
			if !f.On() {
				t.Errorf("%s %s: the power went off", tt.name, op)
			}
			if f.Count(op) != 1 {
				t.Errorf("%s %s: calls %v, want it recorded", tt.name, op, f.Calls())
			}
		}
	}
	f := New()
	f.Fail(OpOff, boom)
	if err := f.PowerOff(context.Background()); !errors.Is(err, boom) || !f.On() {
		t.Errorf("Fail(off): %v, on %v", err, f.On())
	}
	if _, err := f.PowerStatus(context.Background()); err != nil {
		t.Errorf("Fail(off) made status fail: %v", err)
	}
	f.Fail(OpOff, nil)
	if err := f.PowerOff(context.Background()); err != nil || f.On() {
		t.Errorf("after Fail(off, nil): %v, on %v", err, f.On())
	}
	f.SetAuthFailure(true)
	if err := f.Close(); err != nil || !f.Closed() {
		t.Errorf("Close with an auth failure: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
