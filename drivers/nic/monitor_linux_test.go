//go:build linux

package nic

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// update builds a link update for device index with the given flags.
func update(typ uint16, index int32, flags uint32) netlink.LinkUpdate {
	var u netlink.LinkUpdate
	u.Header.Type = typ
	u.IfInfomsg = nl.IfInfomsg{IfInfomsg: unix.IfInfomsg{Index: index, Flags: flags}}
	return u
}

const upFlags = unix.IFF_UP | unix.IFF_LOWER_UP | unix.IFF_RUNNING

func TestTracker(t *testing.T) {
	links := func() []trackedLink {
		return []trackedLink{{dev: "eth0", index: 2, up: true}, {dev: "eth1", index: 3, up: false}}
	}
	for _, c := range []struct {
		name    string
		updates []netlink.LinkUpdate
		want    []LinkEvent
	}{
		{"carrier comes", []netlink.LinkUpdate{update(unix.RTM_NEWLINK, 3, upFlags)}, []LinkEvent{{1, "eth1", true}}},
		{"carrier lost", []netlink.LinkUpdate{update(unix.RTM_NEWLINK, 2, unix.IFF_UP)}, []LinkEvent{{0, "eth0", false}}},
		{"up without running", []netlink.LinkUpdate{update(unix.RTM_NEWLINK, 2, unix.IFF_UP|unix.IFF_LOWER_UP)}, []LinkEvent{{0, "eth0", false}}},
		{"administratively down", []netlink.LinkUpdate{update(unix.RTM_NEWLINK, 2, unix.IFF_LOWER_UP|unix.IFF_RUNNING)}, []LinkEvent{{0, "eth0", false}}},
		{"device removed", []netlink.LinkUpdate{update(unix.RTM_DELLINK, 2, upFlags)}, []LinkEvent{{0, "eth0", false}}},
		{"no change", []netlink.LinkUpdate{update(unix.RTM_NEWLINK, 2, upFlags), update(unix.RTM_NEWLINK, 3, 0)}, nil},
		{"other device", []netlink.LinkUpdate{update(unix.RTM_NEWLINK, 9, 0)}, nil},
		{"flap", []netlink.LinkUpdate{update(unix.RTM_NEWLINK, 2, 0), update(unix.RTM_NEWLINK, 2, upFlags)},
			[]LinkEvent{{0, "eth0", false}, {0, "eth0", true}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr := tracker{links: links()}
			if got, want := tr.initial(), []LinkEvent{{0, "eth0", true}, {1, "eth1", false}}; !reflect.DeepEqual(got, want) {
				t.Fatalf("initial = %v, want %v", got, want)
			}
			var got []LinkEvent
			for _, u := range c.updates {
				got = append(got, tr.update(u)...)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("events = %v, want %v", got, c.want)
			}
		})
	}
}

// fakeSubscription is one subscription handed out by fakeSubscriber.
type fakeSubscription struct {
	ch   chan<- netlink.LinkUpdate
	done <-chan struct{}
	opts netlink.LinkSubscribeOptions
}

// fakeSubscriber stands in for netlink.LinkSubscribeWithOptions: the test
// receives each subscription and plays the library's part on it.
type fakeSubscriber struct {
	subs chan fakeSubscription
	err  error // returned by the next subscribe, then cleared
}

func (f *fakeSubscriber) subscribe(ch chan<- netlink.LinkUpdate, done <-chan struct{}, o netlink.LinkSubscribeOptions) error {
	if err := f.err; err != nil {
		f.err = nil
		return err
	}
	f.subs <- fakeSubscription{ch, done, o}
	return nil
}

// endWhenDone closes the subscription's channel once the monitor ends it,
// as the library does.
func (s fakeSubscription) endWhenDone() {
	go func() {
		<-s.done
		close(s.ch)
	}()
}

// monitorHarness runs a monitor over a fakeSubscriber.
type monitorHarness struct {
	fake    *fakeSubscriber
	mon     *monitor
	stop    chan struct{}
	events  chan LinkEvent
	reports chan error
	ended   chan struct{}
}

func newMonitorHarness(t *testing.T) *monitorHarness {
	t.Helper()
	h := &monitorHarness{fake: &fakeSubscriber{subs: make(chan fakeSubscription, 4)}, stop: make(chan struct{}),
		events: make(chan LinkEvent, 16), reports: make(chan error, 16), ended: make(chan struct{})}
	report := func(err error) { h.reports <- err }
	var err error
	h.mon, err = newMonitor(netns.None(), []trackedLink{{dev: "eth0", index: 2, up: true}}, h.fake.subscribe, report, h.stop)
	if err != nil {
		t.Fatalf("newMonitor: %v", err)
	}
	h.mon.retry = 0
	return h
}

func (h *monitorHarness) run() {
	go func() {
		defer close(h.ended)
		h.mon.run(func(e LinkEvent) { h.events <- e })
	}()
}

func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("no %s within %v", what, waitLimit)
		var zero T
		return zero
	}
}

func TestMonitorSubscribes(t *testing.T) {
	h := newMonitorHarness(t)
	sub := receive(t, h.fake.subs, "subscription")
	if !sub.opts.ListExisting || sub.opts.Namespace == nil || sub.opts.ErrorCallback == nil {
		t.Fatalf("options %+v: want the existing links listed, a namespace and an error callback", sub.opts)
	}
	sub.endWhenDone()
	h.run()
	if e := receive(t, h.events, "initial event"); e != (LinkEvent{0, "eth0", true}) {
		t.Fatalf("initial event %v", e)
	}
	sub.ch <- update(unix.RTM_NEWLINK, 2, unix.IFF_UP)
	if e := receive(t, h.events, "down event"); e != (LinkEvent{0, "eth0", false}) {
		t.Fatalf("event %v, want eth0 down", e)
	}
	for _, c := range []struct {
		name   string
		err    error
		report bool
	}{
		{"receive failure", errors.New("Receive failed: no buffer space available"), true},
		{"another socket's request", errors.New("Wrong sender portid 3718347848, expected 0"), false},
	} {
		sub.opts.ErrorCallback(c.err)
		select {
		case err := <-h.reports:
			if !c.report || !errors.Is(err, ErrMonitor) {
				t.Errorf("%s: reported %v", c.name, err)
			}
		default:
			if c.report {
				t.Errorf("%s: not reported", c.name)
			}
		}
	}
	close(h.stop)
	receive(t, h.ended, "monitor end")
	sub.opts.ErrorCallback(errors.New("Receive failed: use of closed file"))
	select {
	case err := <-h.reports:
		t.Errorf("failure of a closed subscription reported: %v", err)
	default:
	}
}

func TestMonitorResubscribes(t *testing.T) {
	h := newMonitorHarness(t)
	first := receive(t, h.fake.subs, "subscription")
	h.fake.err = errors.New("netlink socket refused") // the first retry fails
	h.run()
	receive(t, h.events, "initial event")
	close(first.ch) // the subscription dies
	for _, want := range []string{"subscription ended", "retry failure"} {
		if err := receive(t, h.reports, want); !errors.Is(err, ErrMonitor) {
			t.Fatalf("%s: reported %v, want ErrMonitor", want, err)
		}
	}
	select {
	case <-first.done:
	default:
		t.Fatalf("the dead subscription was not released")
	}
	second := receive(t, h.fake.subs, "new subscription")
	second.endWhenDone()
	// The new subscription lists the links again: an unchanged link is
	// not news, a changed one is.
	second.ch <- update(unix.RTM_NEWLINK, 2, upFlags)
	second.ch <- update(unix.RTM_NEWLINK, 2, 0)
	if e := receive(t, h.events, "event"); e != (LinkEvent{0, "eth0", false}) {
		t.Fatalf("event %v, want eth0 down", e)
	}
	close(h.stop)
	receive(t, h.ended, "monitor end")
}

func TestMonitorShutdownDrains(t *testing.T) {
	h := newMonitorHarness(t)
	sub := receive(t, h.fake.subs, "subscription")
	// The library's goroutine blocks on the full channel: it gets to see
	// done only if shutdown drains the channel.
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for range updateBuffer + 1 {
			sub.ch <- update(unix.RTM_NEWLINK, 2, 0)
		}
		<-sub.done
		close(sub.ch)
	}()
	ended := make(chan struct{})
	go func() {
		h.mon.shutdown()
		close(ended)
	}()
	receive(t, ended, "end of shutdown")
	receive(t, finished, "end of the subscription")
}
