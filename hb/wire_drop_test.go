package hb

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

func TestDropReasonString(t *testing.T) {
	tests := []struct {
		r    DropReason
		want string
	}{
		{0, "none"},
		{Truncated, "truncated"},
		{BadMagic, "bad-magic"},
		{WrongVersion, "wrong-version"},
		{WrongCluster, "wrong-cluster"},
		{UnknownKey, "unknown-key"},
		{BadMAC, "bad-mac"},
		{Malformed, "malformed"},
		{Replayed, "replayed"},
		{numReasons, "DropReason(9)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.r.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDropErrorIs(t *testing.T) {
	sentinels := []error{ErrTruncated, ErrBadMagic, ErrWrongVersion, ErrWrongCluster,
		ErrUnknownKey, ErrBadMAC, ErrMalformed, ErrReplayed}
	for i := range sentinels {
		r := DropReason(i + 1)
		t.Run(r.String(), func(t *testing.T) {
			err := fmt.Errorf("link 0: %w", &DropError{Reason: r, Detail: "x"})
			for j, o := range sentinels {
				if got := errors.Is(err, o); got != (i == j) {
					t.Errorf("errors.Is(%v, %v) = %v", err, o, got)
				}
			}
			if Reason(err) != r {
				t.Errorf("Reason(%v) = %v, want %v", err, Reason(err), r)
			}
		})
	}
	if r := Reason(errors.New("other")); r != 0 {
		t.Errorf("Reason of a non-drop error = %v, want none", r)
	}
	if r := Reason(nil); r != 0 {
		t.Errorf("Reason(nil) = %v, want none", r)
	}
	if got := (&DropError{Reason: BadMAC}).Error(); got != "heartbeat dropped: bad-mac" {
		t.Errorf("Error() without detail = %q", got)
	}
	if got := (&DropError{Reason: Replayed, Detail: "seq 4"}).Error(); got != "heartbeat dropped: replayed: seq 4" {
		t.Errorf("Error() with detail = %q", got)
	}
}

func TestCounters(t *testing.T) {
	var c Counters
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				c.Add(BadMAC)
			}
		})
	}
	wg.Wait()
	c.Add(Replayed)
	c.Add(0)          // not a drop
	c.Add(numReasons) // unknown
	if !c.AddErr(fmt.Errorf("wrapped: %w", ErrTruncated)) {
		t.Error("AddErr(truncated) = false")
	}
	if c.AddErr(errors.New("other")) || c.AddErr(nil) {
		t.Error("AddErr counted a non-drop")
	}
	want := map[string]uint64{"truncated": 1, "bad-magic": 0, "wrong-version": 0, "wrong-cluster": 0,
		"unknown-key": 0, "bad-mac": 400, "malformed": 0, "replayed": 1}
	got := c.Snapshot()
	if len(got) != len(want) {
		t.Errorf("Snapshot() = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Snapshot()[%q] = %d, want %d", k, got[k], v)
		}
		var r DropReason
		for r = 1; r < numReasons && r.String() != k; r++ {
		}
		if c.Get(r) != v {
			t.Errorf("Get(%v) = %d, want %d", r, c.Get(r), v)
		}
	}
	if c.Get(0) != 0 || c.Get(numReasons) != 0 {
		t.Error("Get of a non-reason is not 0")
	}
}
