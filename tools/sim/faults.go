package sim

import (
	"log/slog"
	"sort"
	"strconv"

	"github.com/vigil-ha/vigil/fence/cluster"
)

// Schedule queues a script's commands and, when the script runs long
// enough, the liveness check SettleTime after its last command.
func (w *World) Schedule(s *Script) {
	base := len(w.cmds)
	w.cmds = append(w.cmds, s.Cmds...)
	for i := range s.Cmds {
		w.q.push(event{at: s.Cmds[i].At, kind: kCmd, x: int32(base + i)})
	}
	var last = w.now
	if n := len(s.Cmds); n > 0 && s.Cmds[n-1].At > last {
		last = s.Cmds[n-1].At
	}
	if at := last + SettleTime; at <= s.End {
		w.q.push(event{at: at, kind: kSettle})
	}
}

// apply carries out one script command now.
func (w *World) apply(c *Cmd) {
	w.logf(slog.LevelInfo, "sim", "cmd", c.Text)
	var h *host
	if c.H >= 0 {
		h = w.hosts[c.H]
	}
	links := w.net.links
	switch c.Op {
	case "poweroff":
		if h.powered {
			w.chk.poweredOff(h)
			w.powerOff(h, "power lost")
		}
	case "poweron":
		if !h.powered {
			w.chk.poweredOn(h)
			w.powerOn(h)
		}
	case "reset":
		w.chk.poweredOff(h)
		w.powerOff(h, "reset")
		w.chk.poweredOn(h)
		w.powerOn(h)
	case "freeze":
		if h.up && !h.frozen {
			h.frozen, h.frozeAt = true, w.now
		}
	case "thaw":
		w.thaw(h)
	case "restart":
		if h.up {
			var running []int
			for vm, st := range h.vm {
				if st == vmStarting || st == vmRunning {
					running = append(running, vm)
				}
			}
			w.boot(h, running)
		}
	case "drift":
		h.clkBase, h.clkAt, h.ppm = h.clock(w.now), w.now, int64(c.N)
	case "cut", "heal":
		up := c.Op == "heal"
		i := c.H*links + c.L
		if w.net.cut[i] == up {
			w.net.cut[i] = !up
			w.deliver(h, cluster.LinkChanged{Link: c.L, Up: up})
		}
	case "oneway", "twoway":
		for l := 0; l < links; l++ {
			if c.L >= 0 && l != c.L {
				continue
			}
			i := c.H*links + l
			if c.Op == "oneway" {
				w.net.block[i] = w.net.block[i].With(c.H2)
			} else {
				w.net.block[i] = w.net.block[i].Without(c.H2)
			}
		}
	case "loss":
		w.net.loss[c.H*links+c.L] = c.N
	case "delay":
		w.net.delay[c.H*links+c.L] = c.D
	case "partition":
		copy(w.net.group, c.Group)
	case "unpartition":
		clear(w.net.group)
	case "gateway":
		w.gwOff[c.L] = c.Mode == "down"
	case "ds":
		w.dsFault(c)
	case "bmc":
		h.bmc = map[string]bmcMode{"ok": bmcOK, "unreachable": bmcUnreachable, "liar": bmcLiar}[c.Mode]
	case "vmfail", "vmok":
		w.vmBad[c.VM] = c.Op == "vmfail"
	case "hvfail", "hvok":
		h.hvFail = c.Op == "hvfail"
	case "crash":
		w.crash(c.VM)
	case "maintenance":
		h.maint = c.Mode == "enter"
		w.deliver(h, cluster.Command{Name: "maintenance-" + c.Mode})
	}
	w.net.refresh()
	w.chk.refresh()
}

// thaw resumes a frozen agent: it gets every completion it missed, in order.
func (w *World) thaw(h *host) {
	if !h.frozen {
		return
	}
	h.frozen = false
	pending := h.pending
	h.pending = nil
	for _, ev := range pending {
		if !h.up || h.frozen {
			return
		}
		w.handle(h, ev)
	}
}

func (w *World) dsFault(c *Cmd) {
	ds := c.L
	if c.Mode == "heal" {
		w.dsHeal(ds, c.H)
		return
	}
	for i := range w.ds.paths[ds] {
		if c.H >= 0 && i != c.H {
			continue
		}
		p := &w.ds.paths[ds][i]
		switch c.Mode {
		case "fail":
			p.mode = dsFail
		case "hang":
			p.mode = dsHang
		case "slow":
			p.slow = c.D
		}
	}
}

func itoa(n int) string      { return strconv.Itoa(n) }
func utoa(n uint64) string   { return strconv.FormatUint(n, 10) }
func sortStrings(s []string) { sort.Strings(s) }
