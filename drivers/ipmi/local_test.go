//go:build !vigil_noipmilocal

package ipmi

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeMsg is one message the fake device has for the reader.
type fakeMsg struct {
	recvType int32
	msgID    int64 // 0: the id of the request it answers
	cmd      uint8 // 0 with msgID 0: the request's command
	data     []byte
}

// fakeSys is the device seam with a BMC behind it: answer gives the
// messages a request brings (none: the BMC never answers). Time is fake:
// a wait with nothing to read moves the clock by its timeout.
type fakeSys struct {
	now    time.Time
	answer func(r sysRequest) []fakeMsg
	queue  []fakeMsg
	sent   []sysRequest
	closed bool
}

func (f *fakeSys) send(r sysRequest) error {
	if f.closed {
		return errors.New("closed")
	}
	f.sent = append(f.sent, r)
	for _, m := range f.answer(r) {
		if m.msgID == 0 {
			m.msgID, m.cmd = r.msgID, r.cmd
		}
		f.queue = append(f.queue, m)
	}
	return nil
}

func (f *fakeSys) wait(timeout time.Duration) (bool, error) {
	if len(f.queue) > 0 {
		return true, nil
	}
	f.now = f.now.Add(timeout)
	return false, nil
}

func (f *fakeSys) receive(buf []byte) (sysResponse, error) {
	if len(f.queue) == 0 {
		return sysResponse{}, errNoMessage
	}
	m := f.queue[0]
	f.queue = f.queue[1:]
	n := copy(buf, m.data)
	return sysResponse{recvType: m.recvType, msgID: m.msgID, cmd: m.cmd, n: n}, nil
}

func (f *fakeSys) close() error {
	f.closed = true
	return nil
}

// bmcAnswers is a BMC of a host that is on: Get Chassis Status, Chassis
// Control and Get Device ID, with completion code cc for Chassis Control.
func bmcAnswers(on *bool, cc byte) func(sysRequest) []fakeMsg {
	return func(r sysRequest) []fakeMsg {
		switch {
		case r.netFn == 0x00 && r.cmd == 0x01:
			b := byte(0)
			if *on {
				b = 1
			}
			return []fakeMsg{{recvType: recvResponse, data: []byte{0, b, 0, 0}}}
		case r.netFn == 0x00 && r.cmd == 0x02:
			if cc == 0 && len(r.data) == 1 {
				*on = r.data[0] != controlPowerDown
			}
			return []fakeMsg{{recvType: recvResponse, data: []byte{cc}}}
		case r.netFn == 0x06 && r.cmd == 0x01:
			return []fakeMsg{{recvType: recvResponse, data: []byte{0, 0x20, 0x81, 0x03, 0x02, 0x51, 0xbf, 0x57, 0x01, 0x00, 0x34, 0x12}}}
		}
		return []fakeMsg{{recvType: recvResponse, data: []byte{0xc1}}}
	}
}

func newFakeLocal(answer func(sysRequest) []fakeMsg) (*Local, *fakeSys) {
	f := &fakeSys{now: time.Unix(1000, 0), answer: answer}
	l := newLocal("/dev/ipmi0", f, LocalOptions{Timeout: 2 * time.Second})
	l.now = func() time.Time { return f.now }
	return l, f
}

func TestLocalPower(t *testing.T) {
	ctx := context.Background()
	on := true
	l, f := newFakeLocal(bmcAnswers(&on, 0))
	if got, err := l.PowerStatus(ctx); err != nil || !got {
		t.Fatalf("PowerStatus = %v, %v; want on", got, err)
	}
	if err := l.HardReset(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.PowerCycle(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.PowerOff(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := l.PowerStatus(ctx); err != nil || got {
		t.Fatalf("PowerStatus after PowerOff = %v, %v; want off", got, err)
	}
	if err := l.PowerOn(ctx); err != nil || !on {
		t.Fatalf("PowerOn: %v (on %v)", err, on)
	}
	var got []string
	for _, r := range f.sent {
		got = append(got, fmt.Sprintf("%02x/%02x %x #%d", r.netFn, r.cmd, r.data, r.msgID))
	}
	want := []string{"00/01  #1", "00/02 03 #2", "00/02 02 #3", "00/02 00 #4", "00/01  #5", "00/02 01 #6"}
	if !slices.Equal(got, want) {
		t.Errorf("requests (netfn/cmd data #id):\n%q\nwant\n%q", got, want)
	}
	info, err := l.Probe(ctx)
	wantInfo := Info{DeviceID: 0x20, FirmwareRevision: "3.02", IPMIVersion: "1.5", ManufacturerID: 0x157, ProductID: 0x1234}
	if err != nil || info != wantInfo {
		t.Errorf("Probe = %+v, %v; want %+v", info, err, wantInfo)
	}
}

// TestLocalSkips checks that events and late answers to earlier requests
// are not taken for the answer.
func TestLocalSkips(t *testing.T) {
	l, _ := newFakeLocal(func(r sysRequest) []fakeMsg {
		return []fakeMsg{
			{recvType: 2, data: []byte{0, 1}},                                               // an asynchronous event
			{recvType: recvResponse, msgID: r.msgID + 1000, cmd: r.cmd, data: []byte{0, 0}}, // an answer to another request
			{recvType: recvResponse, msgID: r.msgID, cmd: 0x7f, data: []byte{0, 0}},         // another command
			{recvType: recvResponse, data: []byte{0, 1, 0, 0}},                              // the answer: on
		}
	})
	if on, err := l.PowerStatus(context.Background()); err != nil || !on {
		t.Errorf("PowerStatus = %v, %v; want on", on, err)
	}
}

func TestLocalErrors(t *testing.T) {
	on := true
	tests := []struct {
		name   string
		answer func(sysRequest) []fakeMsg
		do     func(*Local) error
		op     string
		is     error
		msg    string
		fix    string
	}{
		{name: "cycle refused", answer: bmcAnswers(&on, 0xd5), do: func(l *Local) error { return l.PowerCycle(context.Background()) },
			op: "power cycle", msg: "Chassis Control answered completion code 0xd5: Cannot execute command, command or request parameters not supported in present state"},
		{name: "privilege", answer: bmcAnswers(&on, 0xd4), do: func(l *Local) error { return l.PowerOff(context.Background()) },
			op: "power off", is: ErrAuth, msg: "0xd4", fix: "privilege"},
		{name: "no answer", answer: func(sysRequest) []fakeMsg { return nil }, do: func(l *Local) error { _, err := l.PowerStatus(context.Background()); return err },
			op: "power status", is: ErrUnreachable, msg: "BMC unreachable: no answer to Get Chassis Status in 2s", fix: "dmesg"},
		{name: "short status", answer: func(sysRequest) []fakeMsg { return []fakeMsg{{recvType: recvResponse, data: []byte{0, 1}}} },
			do: func(l *Local) error { _, err := l.PowerStatus(context.Background()); return err }, op: "power status", msg: "Get Chassis Status: "},
		{name: "no completion code", answer: func(sysRequest) []fakeMsg { return []fakeMsg{{recvType: recvResponse}} },
			do: func(l *Local) error { return l.HardReset(context.Background()) }, op: "hard reset", msg: "without a completion code"},
		{name: "canceled", answer: func(sysRequest) []fakeMsg { return nil }, do: func(l *Local) error {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return l.PowerOff(ctx)
		}, op: "power off", is: context.Canceled},
		{name: "closed", answer: bmcAnswers(&on, 0), do: func(l *Local) error {
			if err := l.Close(); err != nil {
				return err
			}
			if err := l.Close(); err != nil {
				return fmt.Errorf("second close: %w", err)
			}
			return l.PowerOff(context.Background())
		}, op: "power off", is: ErrClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _ := newFakeLocal(tt.answer)
			err := tt.do(l)
			var oe *OpError
			if !errors.As(err, &oe) || oe.Op != tt.op || oe.BMC != "/dev/ipmi0" {
				t.Fatalf("error %#v: want an *OpError of %s on /dev/ipmi0", err, tt.op)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v does not match %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.msg) || !strings.Contains(oe.Fix, tt.fix) {
				t.Errorf("error %q, want %q and the fix %q", err, tt.msg, tt.fix)
			}
		})
	}
}

func TestOpenLocal(t *testing.T) {
	_, err := OpenLocal(filepath.Join(t.TempDir(), "ipmi0"), LocalOptions{})
	var oe *OpError
	if !errors.Is(err, os.ErrNotExist) || !errors.As(err, &oe) || oe.Op != "open" || !strings.Contains(err.Error(), "modprobe ipmi_si ipmi_devintf") {
		t.Errorf("OpenLocal of a missing device: %v", err)
	}
}
