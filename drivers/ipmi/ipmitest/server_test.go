//go:build !vigil_noipmilan

package ipmitest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/drivers/ipmi"
)

func TestServer(t *testing.T) {
	ctx := context.Background()
	s, err := NewServer(ServerOptions{Off: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.On() {
		t.Fatal("Off: the chassis is on")
	}
	opts := ipmi.LANOptions{Timeout: 50 * time.Millisecond, Retries: ipmi.NoRetries}
	l, err := ipmi.DialLAN(ctx, s.Addr(), s.Credentials(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s.SetOn(true)
	if on, err := l.PowerStatus(ctx); err != nil || !on {
		t.Fatalf("PowerStatus after SetOn = %v, %v", on, err)
	}
	s.SetLiar(true)
	if err := l.PowerOff(ctx); err != nil || !s.On() {
		t.Errorf("liar: %v, on %v", err, s.On())
	}
	s.SetLiar(false)
	s.FailControl(0xcc)
	var ce *ipmi.CompletionError
	if err := l.PowerOff(ctx); !errors.As(err, &ce) || ce.Code != 0xcc || !s.On() {
		t.Errorf("FailControl: %v, on %v", err, s.On())
	}
	s.FailControl(0)
	if err := l.PowerOff(ctx); err != nil || s.On() {
		t.Errorf("PowerOff: %v, on %v", err, s.On())
	}
	if got := s.Controls(); !slices.Equal(got, []string{"off", "off"}) {
		t.Errorf("Controls = %v", got)
	}
	s.SetUnreachable(true)
	n := s.Received()
	if _, err := l.PowerStatus(ctx); !errors.Is(err, ipmi.ErrUnreachable) || s.Received() == n {
		t.Errorf("unreachable: %v (%d datagrams received)", err, s.Received()-n)
	}
	s.SetUnreachable(false)
	s.ExpireSessions()
	if on, err := l.PowerStatus(ctx); err != nil || on {
		t.Errorf("PowerStatus after ExpireSessions = %v, %v", on, err)
	}
}

func TestServerOptions(t *testing.T) {
	if _, err := NewServer(ServerOptions{CipherSuites: []int{8}}); err == nil {
		t.Error("NewServer with suite 8, which go-ipmi's server lacks: no error")
	}
	s, err := NewServer(ServerOptions{User: "u", Password: "p", CipherSuites: []int{3}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if c := s.Credentials(); c.User != "u" || c.Password != "p" {
		t.Errorf("Credentials = %v", c)
	}
	l, err := ipmi.DialLAN(context.Background(), s.Addr(), s.Credentials(), ipmi.LANOptions{Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.CipherSuite() != 3 {
		t.Errorf("CipherSuite = %d, want 3", l.CipherSuite())
	}
}
