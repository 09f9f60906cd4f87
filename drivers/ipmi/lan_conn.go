//go:build !vigil_noipmilan

package ipmi

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
)

// splitAddr parses a BMC address, the port defaulting to DefaultPort.
func splitAddr(addr string) (string, int, error) {
	if addr == "" {
		return "", 0, errors.New("no BMC address: give host or host:port")
	}
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		// No port: a host name, an IPv4 address or a bare IPv6 address.
		if ip := net.ParseIP(addr); ip != nil || !strings.Contains(addr, ":") {
			return addr, DefaultPort, nil
		}
		return "", 0, fmt.Errorf("BMC address %q: %v: write host, host:port or [v6addr]:port", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("BMC address %q: port %q is not a number from 1 to 65535", addr, p)
	}
	return host, port, nil
}

// dialer gives go-ipmi its socket (through its UDP proxy hook) so that the
// socket's traffic can be counted, the BMC's answers checked (integrity),
// and the socket closed without a Close Session exchange.
type dialer struct {
	check *integrity
	conn  *countingConn
}

func (d *dialer) Dial(network, addr string) (net.Conn, error) {
	c, err := net.Dial(network, addr)
	if err != nil {
		return nil, err
	}
	if d.conn == nil {
		d.conn = &countingConn{check: d.check}
	}
	d.conn.Conn = c
	return d.conn, nil
}

// countingConn counts the answers read: a failed exchange during which
// none came back means the BMC did not answer. An answer that fails its
// integrity check is dropped unread and uncounted.
type countingConn struct {
	net.Conn
	check *integrity
	n     atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	if c.check != nil {
		c.check.outbound(b)
	}
	return c.Conn.Write(b)
}

func (c *countingConn) Read(b []byte) (int, error) {
	for {
		n, err := c.Conn.Read(b)
		if err != nil {
			return n, err
		}
		if c.check != nil && !c.check.inbound(b[:n]) {
			c.check.dropped.Add(1)
			continue
		}
		c.n.Add(1)
		return n, nil
	}
}

func (c *countingConn) received() int64 {
	if c == nil {
		return 0
	}
	return c.n.Load()
}
