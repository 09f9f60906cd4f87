//go:build linux

package nic

import (
	"fmt"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const (
	// updateBuffer holds the link updates that arrive between Open and Run.
	updateBuffer = 64
	// monitorRcvBuf is the netlink receive buffer asked for, so that a burst
	// of link events does not overflow it.
	monitorRcvBuf = 1 << 20
	// resubscribeDelay paces attempts to replace a failed subscription.
	resubscribeDelay = 500 * time.Millisecond
)

// subscribeFunc is netlink.LinkSubscribeWithOptions; tests replace it.
type subscribeFunc func(chan<- netlink.LinkUpdate, <-chan struct{}, netlink.LinkSubscribeOptions) error

// monitor follows the carrier of the links' devices through a netlink
// subscription, and replaces the subscription when it fails.
type monitor struct {
	ns        netns.NsHandle
	subscribe subscribeFunc
	report    func(error)
	retry     time.Duration
	stop      <-chan struct{} // closed when the NICs close
	tracker   tracker

	ch   chan netlink.LinkUpdate // updates of the current subscription
	done chan struct{}           // closing it ends the current subscription
}

// newMonitor subscribes to the link events of namespace ns, listing the
// existing links first.
func newMonitor(ns netns.NsHandle, links []trackedLink, sub subscribeFunc, report func(error), stop <-chan struct{}) (*monitor, error) {
	m := &monitor{ns: ns, subscribe: sub, report: report, retry: resubscribeDelay, stop: stop,
		tracker: tracker{links: links}}
	if err := m.resubscribe(); err != nil {
		return nil, err
	}
	return m, nil
}

// resubscribe opens a new subscription.
func (m *monitor) resubscribe() error {
	ch := make(chan netlink.LinkUpdate, updateBuffer)
	done := make(chan struct{})
	ns := m.ns
	err := m.subscribe(ch, done, netlink.LinkSubscribeOptions{
		Namespace:         &ns,
		ListExisting:      true,
		ReceiveBufferSize: monitorRcvBuf,
		ErrorCallback: func(err error) {
			if foreignMessage(err) {
				return
			}
			select {
			case <-m.stop: // the subscription fails because it is being closed
			case <-done:
			default:
				m.report(fmt.Errorf("%w: %w", ErrMonitor, err))
			}
		},
	})
	if err != nil {
		close(done)
		return fmt.Errorf("nic: subscribe to link events: %w", err)
	}
	m.ch, m.done = ch, done
	return nil
}

// foreignMessage tells whether err only says that the subscription got a
// message from another netlink socket rather than from the kernel, which it
// ignores. The netlink library multicasts each subscriber's request to list
// the existing links to the other subscribers of the namespace, so every
// monitor that starts is seen by the others.
func foreignMessage(err error) bool {
	return strings.HasPrefix(err.Error(), "Wrong sender portid")
}

// run reports the state of every link, then each change, until stop closes.
func (m *monitor) run(ev func(LinkEvent)) {
	emit := func(es []LinkEvent) {
		if ev == nil {
			return
		}
		for _, e := range es {
			ev(e)
		}
	}
	emit(m.tracker.initial())
	for {
		select {
		case <-m.stop:
			m.shutdown()
			return
		case u, ok := <-m.ch:
			if ok {
				emit(m.tracker.update(u))
				continue
			}
		}
		// The subscription ended on its own: release it and open another.
		close(m.done)
		m.ch = nil
		m.report(fmt.Errorf("%w: the netlink subscription ended: carrier changes are unseen until it is replaced", ErrMonitor))
		for m.ch == nil {
			select {
			case <-m.stop:
				return
			case <-time.After(m.retry):
			}
			if err := m.resubscribe(); err != nil {
				m.report(fmt.Errorf("%w: %w", ErrMonitor, err))
			}
		}
	}
}

// shutdown ends the current subscription and drains it, so that the
// subscription's goroutine, which may be blocked sending, can exit.
func (m *monitor) shutdown() {
	if m.ch == nil {
		return
	}
	close(m.done)
	for range m.ch {
	}
	m.ch = nil
}

// trackedLink is the monitor's view of one link.
type trackedLink struct {
	dev   string
	index int // ifindex of dev
	up    bool
}

// tracker turns link updates into link events. It is pure.
type tracker struct {
	links []trackedLink // index = link id
}

// initial returns the state of every link.
func (t *tracker) initial() []LinkEvent {
	es := make([]LinkEvent, len(t.links))
	for i, l := range t.links {
		es[i] = LinkEvent{Link: i, Device: l.dev, Up: l.up}
	}
	return es
}

// update applies u and returns the events of the links whose state it
// changed: a device that is removed is down.
func (t *tracker) update(u netlink.LinkUpdate) []LinkEvent {
	up := u.Header.Type != unix.RTM_DELLINK && isUp(u.IfInfomsg.Flags)
	var es []LinkEvent
	for i := range t.links {
		l := &t.links[i]
		if l.index != int(u.IfInfomsg.Index) || l.up == up {
			continue
		}
		l.up = up
		es = append(es, LinkEvent{Link: i, Device: l.dev, Up: up})
	}
	return es
}
