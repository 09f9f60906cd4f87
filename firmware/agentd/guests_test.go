//go:build linux && !vigil_nohvproc

package agentd

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/drivers/guest"
	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/firmware/config"
)

// fakeGuestVM serves a guest port on a unix socket, as QEMU does, and
// counts resets.
type fakeGuestVM struct {
	sock   string
	resets chan string
}

func (f *fakeGuestVM) GuestSocket(string) string { return f.sock }
func (f *fakeGuestVM) Reset(_ context.Context, name string) error {
	f.resets <- name
	return nil
}

// TestGuestMonitoring: the host hears the guest's hello and heartbeats,
// asks it to restart an application that stopped, and once the restarts
// are spent fails the VM over through the core; a silent guest is reset.
func TestGuestMonitoring(t *testing.T) {
	d, logs := hvDaemon(t, "qemu-system-x86_64")
	d.guests.d = d
	d.cfg.VMs[1].Apps = []config.VMApp{{Name: "db", MaxRestarts: 1}}
	d.cfg.VMs[1].GuestTimeout = config.Duration(time.Second)
	f := &fakeGuestVM{sock: filepath.Join(t.TempDir(), "web1.guest"), resets: make(chan string, 4)}
	ln, err := net.Listen("unix", f.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d.guests.startWith(1, f)
	defer d.guests.stopAll()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	send := func(m *guest.Message) {
		t.Helper()
		if err := guest.Write(c, m); err != nil {
			t.Fatal(err)
		}
	}
	r := guest.NewReader(c)
	up := []guest.App{{Name: "db", Running: true, PID: 9}}
	down := []guest.App{{Name: "db", Detail: "process 9 exited", Exits: 1}}
	send(&guest.Message{Type: guest.TypeHello, Version: "v9", Apps: up})
	send(&guest.Message{Type: guest.TypeHeartbeat, Seq: 1, Apps: down})
	m, err := r.Read()
	if err != nil || m.Type != guest.TypeRestart || m.App != "db" {
		t.Fatalf("read %+v, %v; want a restart of db", m, err)
	}
	send(&guest.Message{Type: guest.TypeDone, ID: m.ID})
	send(&guest.Message{Type: guest.TypeHeartbeat, Seq: 2, Apps: up})
	send(&guest.Message{Type: guest.TypeHeartbeat, Seq: 3, Apps: down})
	select {
	case ev := <-d.events:
		fo, ok := ev.(cluster.VMFailover)
		if !ok || fo.VM != 1 || !strings.Contains(fo.Why, "db: stopped: process 9 exited, and 1 restarts in 10m0s are spent") {
			t.Fatalf("event %+v; want web1's failover", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no failover")
	}
	st := d.guests.statuses()
	if len(st) != 1 || st[0].VM != "web1" || !st[0].Connected || st[0].Version != "v9" || !strings.HasPrefix(st[0].Last, "failover: ") {
		t.Errorf("statuses %+v", st)
	}
	for _, want := range []string{"guest agent says hello", "restarting a guest application", "failing the VM over"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no log line %q:\n%s", want, logs)
		}
	}

	// Another VM whose guest falls silent is reset.
	d.cfg.VMs[0].GuestTimeout = config.Duration(time.Second)
	g := &fakeGuestVM{sock: filepath.Join(t.TempDir(), "tool1.guest"), resets: make(chan string, 4)}
	ln2, err := net.Listen("unix", g.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	d.guests.startWith(0, g)
	c2, err := ln2.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := guest.Write(c2, &guest.Message{Type: guest.TypeHello}); err != nil {
		t.Fatal(err)
	}
	select {
	case name := <-g.resets:
		if name != "tool1" {
			t.Fatalf("reset %s", name)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a silent guest was not reset")
	}
	d.guests.stop(0)
	if len(d.guests.statuses()) != 1 {
		t.Errorf("statuses after a stop: %+v", d.guests.statuses())
	}
}
