package config

import (
	"bytes"
	"fmt"
	"path/filepath"
	"time"

	toml "github.com/pelletier/go-toml/v2"
)

// Guest is vigil guest's file (/etc/vigil/guest.toml in a VM): the
// channel to the host and the applications to watch.
//
//	heartbeat = "500ms"
//
//	[[apps]]
//	name    = "db"
//	process = "postgres"                          # or pidfile, unit, run
//	start   = ["systemctl", "start", "postgresql"]
type Guest struct {
	// Port is the virtio-serial port's device; "" is
	// /dev/virtio-ports/org.vigil-ha.guest.0.
	Port string `toml:"port,omitempty"`
	// Heartbeat is the interval between heartbeats to the host.
	Heartbeat Duration `toml:"heartbeat,omitempty"`
	// Scan is how often applications that do not run are looked for.
	Scan Duration   `toml:"scan,omitempty"`
	Apps []GuestApp `toml:"apps,omitempty"`
}

// GuestApp is one application of a Guest: exactly one of Process,
// Pidfile, Unit and Run finds it.
type GuestApp struct {
	Name    string   `toml:"name"`
	Process string   `toml:"process,omitempty"`
	Pidfile string   `toml:"pidfile,omitempty"`
	Unit    string   `toml:"unit,omitempty"`
	Run     []string `toml:"run,omitempty"`
	// Start restarts the application (a unit's default is systemctl
	// restart UNIT; a run application runs again).
	Start []string `toml:"start,omitempty"`
}

// ParseGuest decodes and checks a guest file, filling its defaults.
func ParseGuest(data []byte) (*Guest, error) {
	g := &Guest{}
	if err := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields().Decode(g); err != nil {
		return nil, vmDefDecodeError(err, "port, heartbeat, scan, [[apps]] (name, process, pidfile, unit, run, start)")
	}
	if g.Heartbeat == 0 {
		g.Heartbeat = Duration(500 * time.Millisecond)
	}
	if g.Scan == 0 {
		g.Scan = Duration(time.Second)
	}
	var ps Problems
	if d := time.Duration(g.Heartbeat); d < 50*time.Millisecond || d > 10*time.Second {
		ps.add("heartbeat", `write it like "500ms"`, "%s: a guest heartbeats every 50ms to 10s", d)
	}
	if d := time.Duration(g.Scan); d < 100*time.Millisecond || d > time.Minute {
		ps.add("scan", `write it like "1s"`, "%s: applications are looked for every 100ms to 1m", d)
	}
	names := map[string]bool{}
	for i, a := range g.Apps {
		key := fmt.Sprintf("apps[%d]", i)
		if !vmNameRE.MatchString(a.Name) {
			ps.add(key+".name", "use 1 to 64 letters, digits, '.', '_' or '-'", "%s is not an application name", describe(a.Name))
		} else if names[a.Name] {
			ps.add(key+".name", "give each application its own name", "%q twice", a.Name)
		}
		names[a.Name] = true
		n := 0
		for _, s := range []string{a.Process, a.Pidfile, a.Unit} {
			if s != "" {
				n++
			}
		}
		if len(a.Run) > 0 {
			n++
		}
		if n != 1 {
			ps.add(key, `set exactly one of process = "NAME", pidfile = "/run/x.pid", unit = "x.service" and run = ["/usr/bin/x"]`, "%d ways to find it", n)
		}
		if a.Pidfile != "" && !filepath.IsAbs(a.Pidfile) {
			ps.add(key+".pidfile", "give an absolute path", "%q is relative", a.Pidfile)
		}
		if len(a.Run) > 0 && !filepath.IsAbs(a.Run[0]) {
			ps.add(key+".run", "give the program's absolute path", "%q is not an absolute path", a.Run[0])
		}
		if a.Process != "" && a.Unit == "" && len(a.Start) == 0 {
			ps.add(key+".start", `give the command that starts it, like ["systemctl", "start", "x"]`, "the host cannot have %s restarted without it", a.Name)
		}
	}
	if len(ps) > 0 {
		return nil, ps
	}
	return g, nil
}
