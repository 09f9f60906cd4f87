package lab

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vigil-ha/vigil/drivers/watchdog"
)

// ErrBadPartition is wrapped by ParsePartition's errors.
var ErrBadPartition = errors.New("bad partition")

// ErrPoweredOff is wrapped by the errors of commands that need a host to
// be on.
var ErrPoweredOff = errors.New("host is powered off")

// hostLink resolves host and link arguments in s.
func (s *state) hostLink(host, link string) (*hostState, *hostLinkState, error) {
	h, err := s.host(host)
	if err != nil {
		return nil, nil, err
	}
	l, err := s.link(link)
	if err != nil {
		return nil, nil, err
	}
	return h, &h.Links[l], nil
}

// Cut pulls host's cable on link (an index or a name such as "l0"): the
// hub side of its veth goes down and the host side loses carrier at once.
func (l *Lab) Cut(host, link string) error {
	return l.wrap("cut", update(l.name, func(s *state) error {
		_, hl, err := s.hostLink(host, link)
		if err != nil {
			return err
		}
		if err := setHubVeth(s, hl, false); err != nil {
			return err
		}
		hl.Cut = true
		return nil
	}))
}

// Heal plugs host's cable on link back in and clears its loss. Traffic
// resumes within about a second of the carrier coming back.
func (l *Lab) Heal(host, link string) error {
	return l.wrap("heal", update(l.name, func(s *state) error {
		_, hl, err := s.hostLink(host, link)
		if err != nil {
			return err
		}
		if err := setLoss(s, hl.HubIndex, 0); err != nil {
			return err
		}
		hl.Loss = 0
		if err := setHubVeth(s, hl, true); err != nil {
			return err
		}
		hl.Cut = false
		return nil
	}))
}

// Loss drops pct percent (0 to 100) of the packets in each direction of
// host's veth on link.
func (l *Lab) Loss(host, link string, pct int) error {
	if pct < 0 || pct > 100 {
		return l.wrap("loss", fmt.Errorf("loss %d%%: a loss is 0 to 100 percent (fix: pass a percentage such as 30)", pct))
	}
	return l.wrap("loss", update(l.name, func(s *state) error {
		_, hl, err := s.hostLink(host, link)
		if err != nil {
			return err
		}
		if err := setLoss(s, hl.HubIndex, pct); err != nil {
			return err
		}
		hl.Loss = pct
		return nil
	}))
}

// Partition splits the hosts into groups that reach each other but no
// other group, on every link: spec is "h1,h2|h3" (groups separated by '|',
// hosts by ','; every host named exactly once), or "none" to heal.
func (l *Lab) Partition(spec string) error {
	return l.wrap("partition", update(l.name, func(s *state) error {
		groups, err := ParsePartition(spec, s.hostNames())
		if err != nil {
			return err
		}
		if err := setBlocked(s, blockKeys(s, groups)); err != nil {
			return err
		}
		s.Partition = groups
		if len(groups) < 2 {
			s.Partition = nil
		}
		return nil
	}))
}

// ParsePartition parses a partition spec against the lab's hosts. "none"
// (or "") returns nil groups: no partition.
func ParsePartition(spec string, hosts []string) ([][]string, error) {
	spec = strings.TrimSpace(spec)
	if spec == "none" || spec == "" {
		return nil, nil
	}
	seen := map[string]bool{}
	var groups [][]string
	for _, g := range strings.Split(spec, "|") {
		var group []string
		for _, h := range strings.Split(g, ",") {
			h = strings.TrimSpace(h)
			switch {
			case h == "":
				return nil, fmt.Errorf("%w %q: an empty host name or group (fix: write groups like h1,h2|h3)", ErrBadPartition, spec)
			case !slices.Contains(hosts, h):
				return nil, fmt.Errorf("%w %q: unknown host %q (fix: use the hosts %v)", ErrBadPartition, spec, h, hosts)
			case seen[h]:
				return nil, fmt.Errorf("%w %q: %s is named twice (fix: name every host exactly once)", ErrBadPartition, spec, h)
			}
			seen[h] = true
			group = append(group, h)
		}
		groups = append(groups, group)
	}
	var missing []string
	for _, h := range hosts {
		if !seen[h] {
			missing = append(missing, h)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w %q: %v not named (fix: name every host exactly once, e.g. add |%s)", ErrBadPartition, spec, missing, strings.Join(missing, ","))
	}
	return groups, nil
}

// FormatPartition writes groups back as a spec.
func FormatPartition(groups [][]string) string {
	if len(groups) == 0 {
		return "none"
	}
	parts := make([]string, len(groups))
	for i, g := range groups {
		parts[i] = strings.Join(g, ",")
	}
	return strings.Join(parts, "|")
}

// Freeze freezes every process of host, like a hung ("zombie") host: its
// agent neither sends nor pets its watchdog.
func (l *Lab) Freeze(host string) error {
	return l.wrap("freeze", update(l.name, func(s *state) error {
		h, err := s.host(host)
		if err != nil {
			return err
		}
		if h.Off {
			return fmt.Errorf("%w: %s (fix: vigil lab poweron %s first)", ErrPoweredOff, host, host)
		}
		if err := freezeCgroup(h.Agent.Cgroup, true); err != nil {
			return err
		}
		h.Frozen = true
		return nil
	}))
}

// Thaw lets a frozen host's processes run again.
func (l *Lab) Thaw(host string) error {
	return l.wrap("thaw", update(l.name, func(s *state) error {
		h, err := s.host(host)
		if err != nil {
			return err
		}
		if err := freezeCgroup(h.Agent.Cgroup, false); err != nil {
			return err
		}
		h.Frozen = false
		return nil
	}))
}

// PowerOff cuts host's power: SIGKILL of every process in its cgroup,
// frozen or not, and its watchdog is disarmed. A host already off stays
// off. With a BMC, it returns once the BMC reads off.
func (l *Lab) PowerOff(host string) error {
	var sock string
	var bmc *bmcState
	err := update(l.name, func(s *state) error {
		h, err := s.host(host)
		if err != nil {
			return err
		}
		sock = s.Supervisor.Socket
		if err := resetCgroup(h.Agent.Cgroup); err != nil {
			return err
		}
		if !h.Off {
			h.Gen++
		}
		h.Off, h.OffBy, h.Frozen = true, "poweroff", false
		if h.BMC != nil {
			b := *h.BMC
			bmc = &b
		}
		return nil
	})
	if err == nil {
		err = disarm(sock, host)
	}
	if err == nil && bmc != nil {
		// The power process needs the lock to see that its host is off.
		err = awaitBMCOff(host, *bmc)
	}
	return l.wrap("poweroff", err)
}

// PowerOn starts a powered-off host's agent again, as after a boot, with
// its watchdog disarmed. A host already on is left alone.
func (l *Lab) PowerOn(host string) error {
	return l.wrap("poweron", update(l.name, func(s *state) error {
		h, err := s.host(host)
		if err != nil {
			return err
		}
		if !h.Off {
			return nil
		}
		if err := clearBootStatus(h); err != nil {
			return err
		}
		return s.powerOn(h, false)
	}))
}

// bootStatusFile is where host h's emulated watchdog says it reset the
// host (watchdog.BootStatus reads it).
func bootStatusFile(h *hostState) string {
	return filepath.Join(h.Dir, "watchdog.sock") + watchdog.BootSuffix
}

// clearBootStatus forgets a watchdog reset: the host boots by other means.
func clearBootStatus(h *hostState) error {
	if err := os.Remove(bootStatusFile(h)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("lab: %w", err)
	}
	return nil
}

// powerOn boots the powered-off host h: a new, empty cgroup (Exec's
// leftovers die), its watchdog disarmed, its agent started. A host with a
// BMC needs its power process running first, so that the BMC reads on
// before the host runs anything: unless byBMC (the power process powers
// on), a BMC that reads off is restarted, and its new power process finds
// the host on. The caller holds the state lock.
func (s *state) powerOn(h *hostState, byBMC bool) error {
	if err := resetCgroup(h.Agent.Cgroup); err != nil {
		return err
	}
	if err := disarm(s.Supervisor.Socket, h.Name); err != nil {
		return err
	}
	if h.BMC != nil && !byBMC && !powerRunning(s, h) {
		if err := restartBMC(s, h); err != nil {
			return err
		}
	}
	if err := startAgent(h); err != nil {
		return err
	}
	h.Off, h.OffBy, h.Frozen = false, "", false
	h.Gen++
	return nil
}

// wrap names the lab and the command in err.
func (l *Lab) wrap(cmd string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("lab %q: %s: %w", l.name, cmd, err)
}
