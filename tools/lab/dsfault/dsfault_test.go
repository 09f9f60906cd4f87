package dsfault

import (
	"testing"
)

func TestParseMode(t *testing.T) {
	for _, m := range []Mode{OK, Fail, Hang} {
		got, err := ParseMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if _, err := ParseMode("broken"); err == nil {
		t.Error("ParseMode(broken) accepted")
	}
}

func TestGate(t *testing.T) {
	f := NewFaults()
	if err := f.gate("ds0", nil); err != nil {
		t.Fatalf("ok: %v", err)
	}
	if err := f.gate("", nil); err != nil {
		t.Fatalf("the root: %v", err)
	}
	f.Set("ds0", Fail)
	if err := f.gate("ds0", nil); err != errIO {
		t.Fatalf("fail: %v; want errIO", err)
	}
	if err := f.gate("ds1", nil); err != nil {
		t.Fatalf("another datastore: %v; want it untouched", err)
	}
	f.Set("ds0", Hang)
	closed := make(chan struct{})
	close(closed)
	if err := f.gate("ds0", closed); err != errInterrupted {
		t.Fatalf("hang, interrupted: %v; want errInterrupted", err)
	}
	res := make(chan error)
	go func() { res <- f.gate("ds0", nil) }()
	if !f.WaitHung("ds0", 2, nil) {
		t.Fatal("WaitHung gave up")
	}
	select {
	case err := <-res:
		t.Fatalf("a hung request returned %v before the mode changed", err)
	default:
	}
	f.Set("ds0", Fail)
	if err := <-res; err != errIO {
		t.Fatalf("hang then fail: %v; want errIO", err)
	}
	f.Set("ds0", Hang)
	go func() { res <- f.gate("ds0", nil) }()
	f.WaitHung("ds0", 3, nil)
	f.Set("ds0", OK)
	if err := <-res; err != nil {
		t.Fatalf("hang then ok: %v", err)
	}
	c := f.Counts("ds0")
	if c.Hung != 3 || c.Failed != 2 || c.Passed != 2 {
		t.Errorf("counts = %+v; want 3 hung, 2 failed, 2 passed", c)
	}
}
