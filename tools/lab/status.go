package lab

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Power is a host's power state.
type Power string

// Power states.
const (
	PowerOn     Power = "on"
	PowerOff    Power = "off"
	PowerFrozen Power = "frozen"
)

// Status is a snapshot of a lab.
type Status struct {
	Name  string
	Links []string
	// Partition is the current partition spec, "none" when there is none.
	Partition string
	// SupervisorPID is the supervisor's PID, 0 when it is not running.
	SupervisorPID int
	// Datastores are the datastores' names, in cluster-file order.
	Datastores []string
	Hosts      []HostStatus
}

// HostStatus is one host of a Status.
type HostStatus struct {
	Name  string
	Power Power
	// OffBy says who switched an off host off: "poweroff" or "watchdog".
	OffBy string
	// AgentPID is the agent's PID; AgentRunning is false once it exited.
	AgentPID     int
	AgentRunning bool
	Links        []LinkStatus
	// Datastores holds the host's path to each datastore: ok, fail or
	// hang.
	Datastores []string
	Watchdog   WatchdogStatus
	// BMC is the host's BMC, nil in a lab without BMCs.
	BMC *BMCStatus
}

// LinkStatus is one host's NIC on one link.
type LinkStatus struct {
	Name string
	Cut  bool
	Loss int // percent
}

// WatchdogStatus is a host's emulated watchdog as the supervisor reports
// it; Known is false when the supervisor did not answer.
type WatchdogStatus struct {
	Known   bool
	Armed   bool
	Timeout time.Duration
	Left    time.Duration
}

// Status reports every host's power, agent, links and watchdog.
func (l *Lab) Status() (*Status, error) {
	s, err := readState(l.name)
	if err != nil {
		return nil, err
	}
	st := &Status{Name: s.Name, Partition: FormatPartition(s.Partition)}
	if alive(s.Supervisor.PID) {
		st.SupervisorPID = s.Supervisor.PID
	}
	for _, ls := range s.Links {
		st.Links = append(st.Links, ls.Name)
	}
	st.Datastores = datastoreNames
	var reqs []ctlRequest
	for _, h := range s.Hosts {
		reqs = append(reqs, ctlRequest{Op: "state", Host: h.Name})
	}
	answers, werr := controlCall(s.Supervisor.Socket, reqs)
	for i, h := range s.Hosts {
		hs := HostStatus{Name: h.Name, Power: PowerOn, OffBy: h.OffBy}
		switch {
		case h.Off:
			hs.Power = PowerOff
		case h.Frozen:
			hs.Power = PowerFrozen
		}
		if !h.Off {
			hs.AgentPID = h.Agent.PID
			hs.AgentRunning = alive(h.Agent.PID)
		}
		for j, hl := range h.Links {
			hs.Links = append(hs.Links, LinkStatus{Name: s.Links[j].Name, Cut: hl.Cut, Loss: hl.Loss})
		}
		for _, ds := range datastoreNames {
			m := h.DSModes[ds]
			if m == "" {
				m = modeOK
			}
			hs.Datastores = append(hs.Datastores, m)
		}
		if h.BMC != nil {
			hs.BMC = bmcStatus(s, &s.Hosts[i])
		}
		if werr == nil && answers[i].OK {
			a := answers[i]
			hs.Watchdog = WatchdogStatus{Known: true, Armed: a.Armed, Timeout: time.Duration(a.TimeoutNS), Left: time.Duration(a.LeftNS)}
		}
		st.Hosts = append(st.Hosts, hs)
	}
	return st, nil
}

// WriteTable writes st as a table: host, power, agent PID, one column per
// link (up, cut or loss N%), one per datastore path (ok, fail or hang),
// the watchdog and, in a lab with BMCs, the BMC (its address, ok or
// failed, and the power it reads).
func (st *Status) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	sup := "not running"
	if st.SupervisorPID != 0 {
		sup = fmt.Sprintf("PID %d", st.SupervisorPID)
	}
	bmcs := false
	for _, h := range st.Hosts {
		bmcs = bmcs || h.BMC != nil
	}
	bmcHead := ""
	if bmcs {
		bmcHead = "\tBMC"
	}
	fmt.Fprintf(tw, "lab %s: partition %s, supervisor %s\n", st.Name, st.Partition, sup)
	fmt.Fprintf(tw, "HOST\tPOWER\tAGENT\t%s\t%s\tWATCHDOG%s\n", strings.Join(st.Links, "\t"), strings.Join(st.Datastores, "\t"), bmcHead)
	for _, h := range st.Hosts {
		power := string(h.Power)
		if h.Power == PowerOff && h.OffBy != "" {
			power += " (" + h.OffBy + ")"
		}
		agent := "-"
		if h.AgentPID != 0 {
			agent = fmt.Sprint(h.AgentPID)
			if !h.AgentRunning {
				agent += " (exited)"
			}
		}
		links := make([]string, len(h.Links))
		for i, ls := range h.Links {
			switch {
			case ls.Cut:
				links[i] = "cut"
			case ls.Loss > 0:
				links[i] = fmt.Sprintf("loss %d%%", ls.Loss)
			default:
				links[i] = "up"
			}
		}
		bmc := ""
		if bmcs {
			bmc = "\t" + h.BMC.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s%s\n", h.Name, power, agent, strings.Join(links, "\t"), strings.Join(h.Datastores, "\t"), h.Watchdog, bmc)
	}
	return tw.Flush()
}

// String writes the watchdog as "armed 3.2s/4s", "disarmed" or "?".
func (w WatchdogStatus) String() string {
	switch {
	case !w.Known:
		return "?"
	case !w.Armed:
		return "disarmed"
	}
	return fmt.Sprintf("armed %v/%v", w.Left.Round(100*time.Millisecond), w.Timeout)
}
