//go:build !vigil_noipmilocal

package ipmi

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/bougou/go-ipmi/pkg/command/app"
	"github.com/bougou/go-ipmi/pkg/command/chassis"
	"github.com/bougou/go-ipmi/pkg/types"
)

// Local is the host's own BMC, reached in-band through the kernel's IPMI
// device with the IPMICTL_SEND_COMMAND and IPMICTL_RECEIVE_MSG_TRUNC
// ioctls. It is what a host uses to fence itself at once (PowerOff, or
// HardReset) instead of waiting for its watchdog, and to learn its BMC's
// identity. Its methods are safe for concurrent use; requests go one at a
// time. Power on is there for completeness: a host that runs this is on.
type Local struct {
	path    string
	timeout time.Duration
	now     func() time.Time // the fake clock of tests

	mu     sync.Mutex
	sys    syscalls
	msgID  int64
	closed bool
}

var _ BMC = (*Local)(nil)

// syscalls is the device seam: one method per ioctl (and the poll between
// them), with a real implementation on Linux and a fake in tests.
type syscalls interface {
	// send issues IPMICTL_SEND_COMMAND to the BMC's system interface.
	send(req sysRequest) error
	// wait polls the device until a message can be received or timeout
	// passes; it reports whether one can.
	wait(timeout time.Duration) (bool, error)
	// receive issues IPMICTL_RECEIVE_MSG_TRUNC into buf (completion code
	// first); an error wrapping errNoMessage means none was waiting.
	receive(buf []byte) (sysResponse, error)
	close() error
}

// sysRequest is one request to the BMC.
type sysRequest struct {
	msgID      int64
	netFn, cmd uint8
	data       []byte
}

// sysResponse is one message from the device: its type (recvResponse for
// an answer; events and commands are others), the id of the request it
// answers, and n bytes in the caller's buffer.
type sysResponse struct {
	recvType   int32
	msgID      int64
	netFn, cmd uint8
	n          int
}

// recvResponse is IPMI_RESPONSE_RECV_TYPE: the answer to a request.
const recvResponse = 1

// errNoMessage is a receive with nothing waiting (EAGAIN).
var errNoMessage = errors.New("no message waiting")

// OpenLocal opens the in-band BMC device at path (DefaultDevice when
// empty). The error is an *OpError of op "open": it wraps os.ErrNotExist
// when there is no such device (no BMC, or the IPMI modules are not
// loaded) and os.ErrPermission when this process may not open it.
func OpenLocal(path string, opts LocalOptions) (*Local, error) {
	if path == "" {
		path = DefaultDevice
	}
	sys, err := openSys(path)
	if err != nil {
		return nil, &OpError{Op: "open", BMC: path, Err: err, Fix: localFix(err)}
	}
	return newLocal(path, sys, opts), nil
}

func newLocal(path string, sys syscalls, opts LocalOptions) *Local {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultLocalTimeout
	}
	return &Local{path: path, timeout: opts.Timeout, now: time.Now, sys: sys}
}

// localFix is the operator's fix for an in-band error, or "".
func localFix(err error) string {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "load the kernel's IPMI modules (modprobe ipmi_si ipmi_devintf, or ipmi_ssif): without them, or without a BMC, there is no device"
	case errors.Is(err, os.ErrPermission):
		return "run as root"
	case errors.Is(err, ErrUnreachable):
		return "the kernel's IPMI driver got no answer from the BMC: see its messages (dmesg | grep -i ipmi); a BMC that is resetting answers again within a minute"
	case errors.Is(err, ErrClosed):
		return ""
	}
	return fixFor(err)
}

// Path is the device's path.
func (l *Local) Path() string { return l.path }

// PowerStatus reads the chassis power state (Get Chassis Status).
func (l *Local) PowerStatus(ctx context.Context) (bool, error) {
	data, err := l.exchange(ctx, types.CommandGetChassisStatus, nil)
	if err == nil {
		var res chassis.GetChassisStatusResponse
		if err = res.Unpack(data); err == nil {
			return res.PowerIsOn, nil
		}
		err = fmt.Errorf("%s: %w", types.CommandGetChassisStatus.Name, err)
	}
	return false, l.opError("power status", err)
}

// PowerOff asks for a hard power-off of this host (Chassis Control, power
// down): a self-fence.
func (l *Local) PowerOff(ctx context.Context) error { return l.control(ctx, controlPowerDown) }

// PowerOn asks for power on (Chassis Control, power up).
func (l *Local) PowerOn(ctx context.Context) error { return l.control(ctx, controlPowerUp) }

// PowerCycle asks for a power cycle (Chassis Control, power cycle); some
// BMCs refuse it (completion code D5h), HardReset is the alternative.
func (l *Local) PowerCycle(ctx context.Context) error { return l.control(ctx, controlCycle) }

// HardReset resets this host at once (Chassis Control, hard reset): a
// self-fence after which the host boots again.
func (l *Local) HardReset(ctx context.Context) error { return l.control(ctx, controlHardReset) }

func (l *Local) control(ctx context.Context, action uint8) error {
	req := &chassis.ChassisControlRequest{ChassisControl: chassis.ChassisControl(action)}
	_, err := l.exchange(ctx, types.CommandChassisControl, req.Pack())
	return l.opError(controlName(action), err)
}

// Probe reads the BMC's identity (Get Device ID).
func (l *Local) Probe(ctx context.Context) (Info, error) {
	data, err := l.exchange(ctx, types.CommandGetDeviceID, nil)
	if err == nil {
		var res app.GetDeviceIDResponse
		if err = res.Unpack(data); err == nil {
			return deviceInfo(&res), nil
		}
		err = fmt.Errorf("%s: %w", types.CommandGetDeviceID.Name, err)
	}
	return Info{}, l.opError("probe", err)
}

// Close closes the device. Later calls fail with ErrClosed; a second Close
// returns nil.
func (l *Local) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	return l.opError("close", l.sys.close())
}

func (l *Local) opError(op string, err error) error {
	if err == nil {
		return nil
	}
	return &OpError{Op: op, BMC: l.path, Err: err, Fix: localFix(err)}
}

// exchange sends one request and waits for its answer, skipping events
// and late answers to earlier requests. It returns the answer's data
// without the completion code, or a *CompletionError.
func (l *Local) exchange(ctx context.Context, cmd types.Command, data []byte) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.msgID++
	id := l.msgID
	if err := l.sys.send(sysRequest{msgID: id, netFn: uint8(cmd.NetFn), cmd: cmd.ID, data: data}); err != nil {
		return nil, fmt.Errorf("%s: send: %w", cmd.Name, err)
	}
	start := l.now()
	deadline := start.Add(l.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	buf := make([]byte, 1024) // IPMI messages are at most 272 bytes
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		left := deadline.Sub(l.now())
		if left <= 0 {
			return nil, &causeError{kind: ErrUnreachable, msg: fmt.Sprintf("no answer to %s in %v", cmd.Name, l.now().Sub(start).Round(time.Millisecond)), err: context.DeadlineExceeded}
		}
		// Short polls, so that a cancelled ctx is noticed.
		ready, err := l.sys.wait(min(left, 100*time.Millisecond))
		if err != nil {
			return nil, fmt.Errorf("%s: poll: %w", cmd.Name, err)
		}
		if !ready {
			continue
		}
		res, err := l.sys.receive(buf)
		if errors.Is(err, errNoMessage) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: receive: %w", cmd.Name, err)
		}
		if res.recvType != recvResponse || res.msgID != id || res.cmd != cmd.ID {
			continue // an event, or the late answer to an earlier request
		}
		if res.n < 1 || res.n > len(buf) {
			return nil, fmt.Errorf("%s: an answer of %d bytes, without a completion code", cmd.Name, res.n)
		}
		if cc := buf[0]; cc != 0 {
			return nil, newCompletionError(cmd, cc)
		}
		return append([]byte(nil), buf[1:res.n]...), nil
	}
}
