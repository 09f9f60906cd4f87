// Package qmp is a client of the QEMU Machine Protocol over QEMU's QMP
// unix socket: the handshake, commands answered in any order, and QEMU's
// asynchronous events (SHUTDOWN, RESET, WATCHDOG, GUEST_PANICKED, ...).
//
//	q, err := qmp.Dial(ctx, "/run/vigil/vms/web1/qmp.sock")
//	ret, err := q.Execute(ctx, "query-status", nil)
//	q.OnEvent(func(e qmp.Event) { ... })
//	ev, err := q.WaitEvent(ctx, "SHUTDOWN", time.Time{})
package qmp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// ErrClosed is returned by calls on a QMP connection that QEMU closed
// (it exited) or that Close closed.
var ErrClosed = errors.New("qmp: connection closed")

// Error is an error reply of QEMU to a command: Class is QEMU's error
// class (GenericError, DeviceNotFound, CommandNotFound, ...).
type Error struct {
	Command string
	Class   string
	Desc    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("qmp %s: %s: %s", e.Command, e.Class, e.Desc)
}

// Event is one asynchronous QMP event, such as WATCHDOG, SHUTDOWN, RESET or
// DEVICE_DELETED.
type Event struct {
	// Name is QEMU's event name.
	Name string
	// Data is the event's data object, raw.
	Data json.RawMessage
	// Time is QEMU's own time stamp of the event.
	Time time.Time
	// Received is when the client read it.
	Received time.Time
}

// Client is one QMP connection: commands with ids answered in any order,
// the last maxEvents events, and an optional callback for each event.
//
//	q, err := qmp.Dial(ctx, "/tmp/vm/qmp.sock")
//	_, err = q.Execute(ctx, "device_del", map[string]any{"id": "ds0"})
//	ev, err := q.WaitEvent(ctx, "WATCHDOG", removed)
type Client struct {
	conn net.Conn
	// Version is QEMU's version from the greeting, like "7.2.22".
	Version string

	wmu sync.Mutex // serialises writes

	mu      sync.Mutex
	nextID  uint64
	pending map[string]chan reply
	events  []Event
	onEvent func(Event)
	changed chan struct{} // closed and replaced when events grow or the connection ends
	err     error         // why the connection ended
	done    chan struct{}
}

type reply struct {
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
}

// message is any message QEMU sends: a greeting, a reply or an event.
type message struct {
	QMP *struct {
		Version struct {
			QEMU struct {
				Major int `json:"major"`
				Minor int `json:"minor"`
				Micro int `json:"micro"`
			} `json:"qemu"`
		} `json:"version"`
	} `json:"QMP"`
	ID        json.RawMessage `json:"id"`
	Event     string          `json:"event"`
	Data      json.RawMessage `json:"data"`
	Timestamp struct {
		Seconds      int64 `json:"seconds"`
		Microseconds int64 `json:"microseconds"`
	} `json:"timestamp"`
	reply
}

// Dial connects to QEMU's QMP unix socket at path, retrying until it
// accepts or ctx ends, reads the greeting and enters command mode.
func Dial(ctx context.Context, path string) (*Client, error) {
	conn, err := DialUnix(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("qmp: connect %s: %w", path, err)
	}
	q, err := New(ctx, conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return q, nil
}

// New runs the QMP handshake on conn (greeting, qmp_capabilities) and
// starts reading replies and events from it.
func New(ctx context.Context, conn net.Conn) (*Client, error) {
	q := &Client{conn: conn, pending: map[string]chan reply{}, changed: make(chan struct{}), done: make(chan struct{})}
	r := bufio.NewReader(conn)
	if dl, ok := ctx.Deadline(); ok {
		conn.SetReadDeadline(dl)
	}
	line, err := r.ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("qmp: read the greeting: %w", err)
	}
	conn.SetReadDeadline(time.Time{})
	var g message
	if err := json.Unmarshal(line, &g); err != nil || g.QMP == nil {
		return nil, fmt.Errorf("qmp: not a QMP greeting: %.100q", line)
	}
	v := g.QMP.Version.QEMU
	q.Version = fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Micro)
	go q.read(r)
	if _, err := q.Execute(ctx, "qmp_capabilities", nil); err != nil {
		q.Close()
		return nil, err
	}
	return q, nil
}

// read delivers replies to their callers and logs events until the
// connection ends.
func (q *Client) read(r *bufio.Reader) {
	var err error
	for {
		var line []byte
		line, err = r.ReadBytes('\n')
		if err != nil {
			break
		}
		var m message
		if json.Unmarshal(line, &m) != nil {
			continue // not a message: QEMU only sends JSON objects
		}
		q.mu.Lock()
		switch {
		case m.Event != "":
			e := Event{
				Name:     m.Event,
				Data:     m.Data,
				Time:     time.Unix(m.Timestamp.Seconds, m.Timestamp.Microseconds*1000),
				Received: time.Now(),
			}
			if len(q.events) == maxEvents {
				q.events = append(q.events[:0], q.events[maxEvents/2:]...)
			}
			q.events = append(q.events, e)
			close(q.changed)
			q.changed = make(chan struct{})
			if q.onEvent != nil {
				q.onEvent(e) // in order, on the reading goroutine
			}
		case len(m.ID) > 0:
			if ch, ok := q.pending[string(m.ID)]; ok {
				delete(q.pending, string(m.ID))
				ch <- m.reply
			}
		}
		q.mu.Unlock()
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		err = ErrClosed
	}
	q.mu.Lock()
	q.err = err
	for id, ch := range q.pending {
		delete(q.pending, id)
		close(ch)
	}
	close(q.changed)
	close(q.done)
	q.mu.Unlock()
}

// Execute runs command with args (nil for none; a struct or a map that
// encodes to a JSON object) and returns its "return" value. An error reply
// is a *Error.
func (q *Client) Execute(ctx context.Context, command string, args any) (json.RawMessage, error) {
	q.mu.Lock()
	if q.err != nil {
		q.mu.Unlock()
		return nil, fmt.Errorf("qmp %s: %w", command, q.err)
	}
	q.nextID++
	id := fmt.Sprintf(`"c%d"`, q.nextID)
	ch := make(chan reply, 1)
	q.pending[id] = ch
	q.mu.Unlock()

	msg := map[string]any{"execute": command, "id": json.RawMessage(id)}
	if args != nil {
		msg["arguments"] = args
	}
	b, err := json.Marshal(msg)
	if err != nil {
		q.forget(id)
		return nil, fmt.Errorf("qmp %s: encode the arguments: %w", command, err)
	}
	q.wmu.Lock()
	_, err = q.conn.Write(append(b, '\n'))
	q.wmu.Unlock()
	if err != nil {
		q.forget(id)
		return nil, fmt.Errorf("qmp %s: %w", command, err)
	}
	select {
	case rep, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("qmp %s: %w", command, ErrClosed)
		}
		if rep.Error != nil {
			return nil, &Error{Command: command, Class: rep.Error.Class, Desc: rep.Error.Desc}
		}
		return rep.Return, nil
	case <-ctx.Done():
		q.forget(id)
		return nil, fmt.Errorf("qmp %s: %w", command, ctx.Err())
	}
}

func (q *Client) forget(id string) {
	q.mu.Lock()
	delete(q.pending, id)
	q.mu.Unlock()
}

// maxEvents bounds the events a client keeps: past it, the older half is
// forgotten.
const maxEvents = 1024

// OnEvent has f called with every event received from now on, in order,
// on the goroutine that reads the connection: f must not block, nor call
// the client.
func (q *Client) OnEvent(f func(Event)) {
	q.mu.Lock()
	q.onEvent = f
	q.mu.Unlock()
}

// Events returns the events received so far (the last maxEvents at
// most), oldest first.
func (q *Client) Events() []Event {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]Event(nil), q.events...)
}

// WaitEvent returns the first event called name that was received at or
// after since (the zero time: any), waiting for it until ctx ends or the
// connection closes.
func (q *Client) WaitEvent(ctx context.Context, name string, since time.Time) (Event, error) {
	for {
		q.mu.Lock()
		for _, e := range q.events {
			if e.Name == name && !e.Received.Before(since) {
				q.mu.Unlock()
				return e, nil
			}
		}
		changed, err := q.changed, q.err
		q.mu.Unlock()
		if err != nil {
			return Event{}, fmt.Errorf("qmp: waiting for event %s: %w", name, err)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return Event{}, fmt.Errorf("qmp: waiting for event %s: %w", name, ctx.Err())
		}
	}
}

// Done is closed when the connection ended.
func (q *Client) Done() <-chan struct{} { return q.done }

// Close closes the connection.
func (q *Client) Close() error { return q.conn.Close() }

// DialUnix connects to a unix stream socket QEMU serves (QMP, a serial
// port, a virtio-serial port), retrying while it does not exist yet or
// refuses, until ctx ends: QEMU creates its sockets as it starts.
func DialUnix(ctx context.Context, path string) (net.Conn, error) {
	var d net.Dialer
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := d.DialContext(ctx, "unix", path)
		if err == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}
