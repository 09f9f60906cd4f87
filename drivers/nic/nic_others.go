//go:build !linux

package nic

import (
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"time"
)

// state is empty where the driver is not supported.
type state struct{}

// errUnsupported is what every operation returns off Linux.
var errUnsupported = fmt.Errorf("nic: the heartbeat driver needs Linux, not %s: %w", runtime.GOOS, os.ErrNotExist)

func open(Config) (*state, error) { return nil, errUnsupported }

func (*state) run(func(int, []byte, netip.AddrPort, time.Time), func(LinkEvent)) {}

func (*state) send(int, []byte) error { return errUnsupported }

func (*state) probe(int, time.Duration) error { return errUnsupported }

func (*state) device(int) string { return "" }

func (*state) close() error { return errUnsupported }

func (*state) drain(func(int, []byte, netip.AddrPort, time.Time)) (int, error) {
	return 0, errUnsupported
}
