package watchdog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The lab's emulated watchdog speaks text lines on a unix stream socket; each
// request gets one answer, "ok[ VALUE]" or "err MESSAGE":
//
//	(connect)       -> ok SECONDS      armed with the emulator's default timeout
//	                -> err busy ...    the device is already open
//	timeout SECONDS -> ok SECONDS      set the timeout and restart the countdown
//	gettimeout      -> ok SECONDS
//	ping            -> ok              restart the countdown
//	timeleft        -> ok MILLISECONDS
//	V               -> ok              the magic character: a close now disarms
//
// After V the client shuts down its side and the emulator, having disarmed,
// closes the connection. A close without V leaves the watchdog counting.

// LabRequestTimeout bounds every exchange with the emulated device.
const LabRequestTimeout = time.Second

// labDevice is the client of the lab's emulated watchdog.
type labDevice struct {
	spec string

	mu   sync.Mutex
	conn net.Conn // nil once closed, abandoned or broken
	r    *bufio.Reader
	why  error // why conn is nil
}

var _ Device = (*labDevice)(nil)

const labFix = "start the lab's watchdog emulator for this host, or check the socket path"

func openLab(spec, path string) (Device, error) {
	conn, err := net.DialTimeout("unix", path, LabRequestTimeout)
	if err != nil {
		return nil, &OpError{Op: "open", Dev: spec, Err: err, Fix: labFix}
	}
	d := &labDevice{spec: spec, conn: conn, r: bufio.NewReader(conn)}
	if _, err := d.roundTrip("open", ""); err != nil {
		d.drop(err)
		return nil, err
	}
	return d, nil
}

// roundTrip sends req (none when empty) and reads the answer's value. Any
// failure but an "err" answer breaks the connection: a late answer would
// otherwise be taken for the next request's.
func (d *labDevice) roundTrip(op, req string) (string, error) {
	if d.conn == nil {
		return "", &OpError{Op: op, Dev: d.spec, Err: d.why, Fix: "open the device again"}
	}
	fail := func(err error) (string, error) {
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
			err = fmt.Errorf("the emulator closed the connection (the host was reset or powered off): %w", err)
		}
		d.drop(fmt.Errorf("connection broken: %w", err))
		return "", &OpError{Op: op, Dev: d.spec, Err: err, Fix: "open the device again"}
	}
	if err := d.conn.SetDeadline(time.Now().Add(LabRequestTimeout)); err != nil {
		return fail(err)
	}
	if req != "" {
		if _, err := io.WriteString(d.conn, req+"\n"); err != nil {
			return fail(err)
		}
	}
	line, err := d.r.ReadString('\n')
	if err != nil {
		return fail(err)
	}
	line = strings.TrimSuffix(line, "\n")
	if v, ok := strings.CutPrefix(line, "ok"); ok && (v == "" || v[0] == ' ') {
		return strings.TrimPrefix(v, " "), nil
	}
	if msg, ok := strings.CutPrefix(line, "err "); ok {
		var err error = labError(msg)
		if strings.HasPrefix(msg, "busy") {
			err = fmt.Errorf("%w: %s", ErrBusy, msg)
		}
		if op == "open" {
			return "", &OpError{Op: op, Dev: d.spec, Err: err, Fix: "a watchdog opens once: close the other holder first"}
		}
		return "", &OpError{Op: op, Dev: d.spec, Err: err}
	}
	return fail(fmt.Errorf("malformed answer %q", line))
}

// labError is an error the emulator answered with.
type labError string

func (e labError) Error() string { return "emulator: " + string(e) }

// drop closes the connection; later calls fail with why.
func (d *labDevice) drop(why error) {
	if d.conn != nil {
		d.conn.Close()
	}
	d.conn, d.r, d.why = nil, nil, why
}

// number runs req and parses the answer as an integer.
func (d *labDevice) number(op, req string) (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.roundTrip(op, req)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		d.drop(fmt.Errorf("connection broken: malformed answer %q", v))
		return 0, &OpError{Op: op, Dev: d.spec, Err: fmt.Errorf("malformed answer %q: %w", v, err)}
	}
	return n, nil
}

func (d *labDevice) SetTimeout(t time.Duration) (time.Duration, error) {
	s, err := seconds(t)
	if err != nil {
		return 0, &OpError{Op: "settimeout", Dev: d.spec, Err: err}
	}
	n, err := d.number("settimeout", "timeout "+strconv.Itoa(s))
	return time.Duration(n) * time.Second, err
}

func (d *labDevice) Timeout() (time.Duration, error) {
	n, err := d.number("timeout", "gettimeout")
	return time.Duration(n) * time.Second, err
}

func (d *labDevice) Pet() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, err := d.roundTrip("pet", "ping")
	return err
}

func (d *labDevice) TimeLeft() (time.Duration, error) {
	n, err := d.number("timeleft", "timeleft")
	return time.Duration(n) * time.Millisecond, err
}

// Close sends the magic character, shuts down its side and waits for the
// emulator to close the connection: when Close returns nil the watchdog is
// disarmed.
func (d *labDevice) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := d.roundTrip("close", "V"); err != nil {
		if d.conn != nil {
			d.drop(ErrClosed)
		}
		return err
	}
	conn := d.conn
	d.conn, d.r, d.why = nil, nil, ErrClosed
	defer conn.Close()
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		if err := cw.CloseWrite(); err != nil {
			return &OpError{Op: "close", Dev: d.spec, Err: err}
		}
	}
	// The emulator disarms on our shutdown, then closes: wait for it.
	if _, err := io.Copy(io.Discard, conn); err != nil {
		return &OpError{Op: "close", Dev: d.spec, Err: fmt.Errorf("no confirmation of the disarm: %w", err)}
	}
	return nil
}

// Abandon closes the connection without the magic character.
func (d *labDevice) Abandon() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn == nil {
		if errors.Is(d.why, ErrClosed) {
			return &OpError{Op: "abandon", Dev: d.spec, Err: d.why}
		}
		return nil // already broken: nothing left to close
	}
	err := d.conn.Close()
	d.conn, d.r, d.why = nil, nil, ErrClosed
	if err != nil {
		return &OpError{Op: "abandon", Dev: d.spec, Err: err}
	}
	return nil
}
