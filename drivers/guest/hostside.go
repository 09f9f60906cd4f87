package guest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Conn is the host's end of one VM's channel: QEMU serves the port on a
// unix socket (qemu.Hypervisor.GuestSocket), which the host agent dials.
type Conn struct {
	c  net.Conn
	r  *Reader
	mu sync.Mutex // serialises writes and ids
	id uint64
}

// Dial connects to the VM's guest port socket at path, retrying until ctx
// ends while QEMU has not created it yet.
func Dial(ctx context.Context, path string) (*Conn, error) {
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "unix", path)
		if err == nil {
			return &Conn{c: c, r: NewReader(c)}, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("guest: connect %s: %w (last error: %v)", path, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// NewConn is a Conn on c (tests).
func NewConn(c net.Conn) *Conn { return &Conn{c: c, r: NewReader(c)} }

// Read returns the guest's next message. A bad line is an error wrapping
// ErrBadMessage, after which reading goes on; any other error ends the
// connection.
func (c *Conn) Read() (*Message, error) { return c.r.Read() }

// Restart asks the guest to restart app and returns the request's id,
// which the guest's done message carries back.
func (c *Conn) Restart(app string) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.id++
	if err := Write(c.c, &Message{Type: TypeRestart, ID: c.id, App: app}); err != nil {
		return 0, fmt.Errorf("guest: ask for a restart of %s: %w", app, err)
	}
	return c.id, nil
}

// Close closes the connection.
func (c *Conn) Close() error {
	err := c.c.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
