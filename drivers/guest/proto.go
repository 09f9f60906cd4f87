// Package guest is the channel between a VM's guest agent (vigil guest,
// inside the VM) and its host's agent: one JSON object per line over the
// VM's virtio-serial port (org.vigil-ha.guest.0; AF_VSOCK where the host
// has vhost-vsock). The guest says hello, then sends a heartbeat every
// interval with the state of each application it watches, and at once
// when one changes; the host asks it to restart an application, and the
// guest answers with the outcome.
//
//	guest -> host  {"type":"hello","version":"v1.2","apps":[...]}
//	guest -> host  {"type":"heartbeat","seq":42,"apps":[{"name":"db","running":true,"pid":311}]}
//	host -> guest  {"type":"restart","id":7,"app":"db"}
//	guest -> host  {"type":"done","id":7}                 (or "err":"...")
//
// The port is private to the VM and its host, so messages carry no
// signature; the host trusts a guest only about itself.
package guest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Port is the virtio-serial port's name, as QEMU's virtserialport and the
// guest's /dev/virtio-ports/ name it.
const Port = "org.vigil-ha.guest.0"

// DevicePath is where a Linux guest finds the port.
const DevicePath = "/dev/virtio-ports/" + Port

// VsockPort is the AF_VSOCK port the host agent listens on where the host
// has vhost-vsock.
const VsockPort = 7405

// Message types.
const (
	TypeHello     = "hello"
	TypeHeartbeat = "heartbeat"
	TypeRestart   = "restart"
	TypeDone      = "done"
)

// App is an application's state as the guest reports it.
type App struct {
	Name    string `json:"name"`
	Running bool   `json:"running"`
	PID     int    `json:"pid,omitempty"`
	Exits   int    `json:"exits,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// Message is one line of the channel.
type Message struct {
	Type    string `json:"type"`
	Version string `json:"version,omitempty"` // hello
	Seq     uint64 `json:"seq,omitempty"`     // heartbeat
	Apps    []App  `json:"apps,omitempty"`    // hello, heartbeat
	ID      uint64 `json:"id,omitempty"`      // restart, done
	App     string `json:"app,omitempty"`     // restart
	Err     string `json:"err,omitempty"`     // done
}

// MaxLine bounds one message.
const MaxLine = 64 << 10

// ErrBadMessage is wrapped by the errors of lines that are not messages.
var ErrBadMessage = errors.New("not a guest channel message")

// Check validates m as received.
func (m *Message) Check() error {
	switch m.Type {
	case TypeHello, TypeHeartbeat, TypeDone:
	case TypeRestart:
		if m.App == "" || m.ID == 0 {
			return fmt.Errorf("%w: a restart needs an id and an app", ErrBadMessage)
		}
	default:
		return fmt.Errorf("%w: unknown type %q (known: hello, heartbeat, restart, done)", ErrBadMessage, m.Type)
	}
	if len(m.Apps) > 256 {
		return fmt.Errorf("%w: %d applications (256 at most)", ErrBadMessage, len(m.Apps))
	}
	for _, a := range m.Apps {
		if a.Name == "" || len(a.Name) > 64 {
			return fmt.Errorf("%w: an application name of %d bytes (1 to 64)", ErrBadMessage, len(a.Name))
		}
	}
	return nil
}

// Reader reads messages, one per line.
type Reader struct {
	s *bufio.Scanner
}

// NewReader reads messages from r.
func NewReader(r io.Reader) *Reader {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 4096), MaxLine)
	return &Reader{s: s}
}

// Read returns the next message. A line that is not a valid message is an
// error wrapping ErrBadMessage; the next Read goes on with the next line.
func (r *Reader) Read() (*Message, error) {
	for r.s.Scan() {
		line := r.s.Bytes()
		if len(line) == 0 || (len(line) == 1 && line[0] == '\r') {
			continue
		}
		var m Message
		if err := json.Unmarshal(line, &m); err != nil {
			return nil, fmt.Errorf("%w: %v: %.80q", ErrBadMessage, err, line)
		}
		if err := m.Check(); err != nil {
			return nil, err
		}
		return &m, nil
	}
	if err := r.s.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%w: a line over %d bytes", ErrBadMessage, MaxLine)
		}
		return nil, err
	}
	return nil, io.EOF
}

// Write writes m as one line.
func Write(w io.Writer, m *Message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// DefaultHeartbeat is the guest's heartbeat interval.
const DefaultHeartbeat = 500 * time.Millisecond
