//go:build !linux

package nic

import (
	"errors"
	"net/netip"
	"os"
	"testing"
)

func TestOpenUnsupported(t *testing.T) {
	cfg := Config{Port: 5405, Links: []LinkConfig{{Local: netip.MustParseAddr("10.77.0.1")}}}
	if _, err := Open(cfg); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open = %v, want an error wrapping os.ErrNotExist", err)
	}
}
