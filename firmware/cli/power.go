//go:build !vigil_noipmilan

package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-ha/vigil/drivers/ipmi"
)

// errPowerTimeout: the BMC did not read the wanted power state back in
// time.
var errPowerTimeout = errors.New("timed out")

// confirmed is what confirmPower saw.
type confirmed struct {
	reads   int           // power-state reads
	took    time.Duration // from the command to the last read
	heard   bool          // a read answered (a state, or an error of its own)
	lastErr error         // the last such answer's error; nil: it read the other state
}

// confirmPower switches bmc's power on or off and then reads the state
// back, wait after the command and every poll after that, until it says
// so: the command's own answer proves nothing. It gives up with
// errPowerTimeout once limit has passed since the command or ctx ends;
// a read cut short by ctx does not count as the last one. now and sleep
// are the clock; note, if set, hears every read.
func confirmPower(ctx context.Context, bmc ipmi.BMC, on bool, wait, poll, limit time.Duration,
	now func() time.Time, sleep func(context.Context, time.Duration) error, note func(reads int, err error)) (confirmed, error) {
	var err error
	if on {
		err = bmc.PowerOn(ctx)
	} else {
		err = bmc.PowerOff(ctx)
	}
	if err != nil {
		return confirmed{}, fmt.Errorf("power %s: %w", onOff(on), err)
	}
	start := now()
	var c confirmed
	pause := wait
	for {
		if pause > 0 {
			if err := sleep(ctx, pause); err != nil {
				if ctx.Err() != nil {
					return c, errPowerTimeout
				}
				return c, err
			}
		}
		pause = poll
		got, err := bmc.PowerStatus(ctx)
		c.reads++
		c.took = now().Sub(start)
		if note != nil {
			note(c.reads, err)
		}
		switch {
		case err == nil && got == on:
			return c, nil
		case err == nil:
			c.heard, c.lastErr = true, nil
		case ctx.Err() == nil: // not the deadline cutting the read short
			c.heard, c.lastErr = true, err
		}
		if c.took >= limit || ctx.Err() != nil {
			return c, errPowerTimeout
		}
	}
}

// sleepCtx waits d, or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
