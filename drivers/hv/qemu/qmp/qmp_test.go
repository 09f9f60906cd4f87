package qmp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// fakeQEMU plays QEMU's side of a QMP connection: it sends the greeting,
// answers qmp_capabilities, and passes every later command to the test,
// which answers through send.
type fakeQEMU struct {
	cmds chan map[string]json.RawMessage
	mu   sync.Mutex
	w    *json.Encoder
	conn net.Conn
}

func (f *fakeQEMU) send(v any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.w.Encode(v)
}

// reply answers cmd with ret.
func (f *fakeQEMU) reply(cmd map[string]json.RawMessage, ret any) {
	f.send(map[string]any{"return": ret, "id": cmd["id"]})
}

func (f *fakeQEMU) event(name string, secs int64, data any) {
	f.send(map[string]any{"event": name, "data": data, "timestamp": map[string]int64{"seconds": secs, "microseconds": 5}})
}

func newFakeQMP(t *testing.T) (*Client, *fakeQEMU) {
	t.Helper()
	client, server := net.Pipe()
	t.Cleanup(func() { client.Close(); server.Close() })
	f := &fakeQEMU{cmds: make(chan map[string]json.RawMessage, 16), w: json.NewEncoder(server), conn: server}
	go func() {
		f.send(map[string]any{"QMP": map[string]any{
			"version":      map[string]any{"qemu": map[string]int{"major": 7, "minor": 2, "micro": 22}, "package": ""},
			"capabilities": []string{"oob"},
		}})
		r := bufio.NewReader(server)
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				close(f.cmds)
				return
			}
			var cmd map[string]json.RawMessage
			if err := json.Unmarshal(line, &cmd); err != nil {
				f.send(map[string]any{"error": map[string]string{"class": "GenericError", "desc": "bad JSON"}})
				continue
			}
			if string(cmd["execute"]) == `"qmp_capabilities"` {
				f.reply(cmd, map[string]any{})
				continue
			}
			f.cmds <- cmd
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q, err := New(ctx, client)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return q, f
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestQMPExecute(t *testing.T) {
	q, f := newFakeQMP(t)
	if q.Version != "7.2.22" {
		t.Errorf("Version = %q, want 7.2.22 from the greeting", q.Version)
	}
	go func() {
		cmd := <-f.cmds
		// An event first, then the reply: the client must tell them apart.
		f.event("RESUME", 100, map[string]any{})
		f.reply(cmd, map[string]any{"status": "running", "running": true, "echo": cmd["arguments"]})
		cmd = <-f.cmds
		f.send(map[string]any{"error": map[string]string{"class": "DeviceNotFound", "desc": "Device 'ds9' not found"}, "id": cmd["id"]})
	}()
	ctx := testCtx(t)
	ret, err := q.Execute(ctx, "query-status", map[string]int{"x": 7})
	if err != nil {
		t.Fatalf("query-status: %v", err)
	}
	var st struct {
		Status string
		Echo   struct{ X int }
	}
	if err := json.Unmarshal(ret, &st); err != nil || st.Status != "running" || st.Echo.X != 7 {
		t.Errorf("query-status returned %s (%v), want status running and the arguments echoed", ret, err)
	}
	evs := q.Events()
	if len(evs) != 1 || evs[0].Name != "RESUME" || evs[0].Time.Unix() != 100 {
		t.Errorf("events = %+v, want one RESUME at 100 s", evs)
	}

	_, err = q.Execute(ctx, "device_del", map[string]string{"id": "ds9"})
	var qe *Error
	if !errors.As(err, &qe) || qe.Class != "DeviceNotFound" || qe.Command != "device_del" {
		t.Errorf("device_del error = %v, want a DeviceNotFound Error of device_del", err)
	}
}

func TestQMPRepliesOutOfOrder(t *testing.T) {
	q, f := newFakeQMP(t)
	ctx := testCtx(t)
	type result struct {
		name, ret string
		err       error
	}
	results := make(chan result, 2)
	for _, name := range []string{"a", "b"} {
		go func() {
			ret, err := q.Execute(ctx, "echo-"+name, nil)
			results <- result{name, string(ret), err}
		}()
	}
	first, second := <-f.cmds, <-f.cmds
	f.reply(second, string(second["execute"]))
	f.reply(first, string(first["execute"]))
	for range 2 {
		r := <-results
		if r.err != nil {
			t.Fatalf("echo-%s: %v", r.name, r.err)
		}
		var got string
		json.Unmarshal([]byte(r.ret), &got)
		if want := `"echo-` + r.name + `"`; got != want {
			t.Errorf("echo-%s got the reply %s, want %s", r.name, got, want)
		}
	}
}

func TestQMPWaitEvent(t *testing.T) {
	q, f := newFakeQMP(t)
	ctx := testCtx(t)
	f.event("RESET", 1, map[string]any{"guest": true})
	if _, err := q.WaitEvent(ctx, "RESET", time.Time{}); err != nil {
		t.Fatalf("WaitEvent(RESET): %v", err)
	}
	since := time.Now()
	// The old RESET does not count after since; a WATCHDOG sent later does.
	got := make(chan Event, 1)
	go func() {
		ev, err := q.WaitEvent(ctx, "WATCHDOG", since)
		if err != nil {
			t.Errorf("WaitEvent(WATCHDOG): %v", err)
		}
		got <- ev
	}()
	f.event("WATCHDOG", 2, map[string]string{"action": "reset"})
	ev := <-got
	var d struct{ Action string }
	if json.Unmarshal(ev.Data, &d); d.Action != "reset" || ev.Received.Before(since) {
		t.Errorf("WATCHDOG event = %+v, want action reset received after %v", ev, since)
	}
	short, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	if _, err := q.WaitEvent(short, "RESET", since); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitEvent(RESET since %v) = %v, want a deadline error: that RESET came before", since, err)
	}
}

func TestQMPClosed(t *testing.T) {
	q, f := newFakeQMP(t)
	ctx := testCtx(t)
	done := make(chan error, 1)
	go func() {
		_, err := q.Execute(ctx, "query-status", nil)
		done <- err
	}()
	<-f.cmds
	f.conn.Close() // QEMU exits without answering
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("Execute on a closed connection = %v, want ErrClosed", err)
	}
	if _, err := q.WaitEvent(ctx, "SHUTDOWN", time.Time{}); !errors.Is(err, ErrClosed) {
		t.Errorf("WaitEvent on a closed connection = %v, want ErrClosed", err)
	}
	if _, err := q.Execute(ctx, "quit", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Execute after the close = %v, want ErrClosed", err)
	}
}

func TestQMPBadGreeting(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	go func() {
		server.Write([]byte("SSH-2.0-OpenSSH\n"))
		server.Close()
	}()
	if _, err := New(testCtx(t), client); err == nil {
		t.Fatal("New accepted a connection that is not QMP")
	}
}

// TestQMPOnEventAndBound: the callback sees every event in order, and the
// kept log forgets its older half once it is full.
func TestQMPOnEventAndBound(t *testing.T) {
	q, f := newFakeQMP(t)
	ctx := testCtx(t)
	seen := make(chan Event, maxEvents+8)
	q.OnEvent(func(e Event) { seen <- e })
	for i := range maxEvents + 1 {
		f.event("RESET", int64(i), map[string]int{"n": i})
	}
	f.event("SHUTDOWN", maxEvents+1, map[string]bool{"guest": true})
	if _, err := q.WaitEvent(ctx, "SHUTDOWN", time.Time{}); err != nil {
		t.Fatal(err)
	}
	for i := range maxEvents + 2 {
		e := <-seen
		if e.Time.Unix() != int64(i) {
			t.Fatalf("callback event %d has time %d: out of order", i, e.Time.Unix())
		}
	}
	evs := q.Events()
	if len(evs) != maxEvents/2+2 || evs[len(evs)-1].Name != "SHUTDOWN" || evs[0].Time.Unix() != maxEvents/2 {
		t.Fatalf("kept %d events from time %d to %s; want the newest %d", len(evs), evs[0].Time.Unix(), evs[len(evs)-1].Name, maxEvents/2+2)
	}
}
