//go:build linux

package boot

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/firmware/config"
)

// Options are where the boot finds and puts things; the zero value is the
// image's layout.
type Options struct {
	Modules string    // the modules' folder ("": /lib/vigil-modules)
	Etc     string    // where the cluster file and key go ("": /etc/vigil)
	TTY     string    // the console's tty ("": /dev/ttyS0)
	Exe     string    // the vigil binary ("": this one)
	Log     io.Writer // the boot log ("": /dev/console, else stderr)
	// PowerOff ends a guest whose power button was pressed (nil: the
	// real power-off; tests replace it).
	PowerOff func() error
}

// Run boots the host and supervises the agent and the console until ctx
// ends.
func Run(ctx context.Context, o Options) error {
	if o.Modules == "" {
		o.Modules = "/lib/vigil-modules"
	}
	if o.Etc == "" {
		o.Etc = "/etc/vigil"
	}
	if o.TTY == "" {
		o.TTY = "/dev/ttyS0"
	}
	if o.PowerOff == nil {
		o.PowerOff = powerOff
	}
	if o.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		o.Exe = exe
	}
	if o.Log == nil {
		if c, err := os.OpenFile("/dev/console", os.O_WRONLY, 0); err == nil {
			o.Log = c
		} else {
			o.Log = os.Stderr
		}
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(o.Log, "vigil boot: [%7.3f] %s\r\n", uptime(), fmt.Sprintf(format, a...))
	}
	if _, err := os.Stat(o.Modules); err == nil {
		n, errs := LoadModules(o.Modules)
		for _, err := range errs {
			logf("%v", err)
		}
		logf("modules loaded: %d", n)
	} else {
		logf("no %s: the modules are loaded already", o.Modules)
	}
	if line, err := os.ReadFile("/proc/cmdline"); err == nil {
		if s, err := ParseCmdline(strings.TrimSpace(string(line))); err != nil {
			logf("%v", err)
		} else if s.IsGuest {
			return runGuest(ctx, o, s, logf)
		}
	}
	// The console starts first: whatever goes wrong next, an operator can
	// look.
	go supervise(ctx, logf, "console", o.Exe, []string{"console", "--tty", o.TTY})
	args, err := configure(o, logf)
	if err != nil {
		logf("%v", err)
		logf("the agent is not started: the watchdog stays disarmed")
		<-ctx.Done()
		return err
	}
	supervise(ctx, logf, "agent", o.Exe, args)
	return ctx.Err()
}

// runGuest is the image as a VM's guest (vigil.guest on the kernel command
// line): it supervises vigil guest, with the guest file given there, or
// the image's own (/etc/vigil/guest.toml), or none.
func runGuest(ctx context.Context, o Options, s Settings, logf func(string, ...any)) error {
	args := []string{"guest"}
	if s.Guest != nil {
		if _, err := config.ParseGuest(s.Guest); err != nil {
			logf("vigil.guest: %v", err)
			logf("the guest agent is not started")
			<-ctx.Done()
			return err
		}
		file := "/run/vigil/guest.toml"
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(file, s.Guest, 0o644); err != nil {
			return err
		}
		args = append(args, "--config", file)
	}
	logf("a VM's guest: starting vigil guest")
	run, cancel := context.WithCancel(ctx)
	defer cancel()
	// The host stops a VM with its ACPI power button: shut down then,
	// so that the host need not wait for its stop timeout.
	pressed := make(chan struct{})
	go watchPowerButton(run, func(dev string) {
		logf("power button (%s): stopping vigil guest and powering off", dev)
		close(pressed)
		cancel()
	})
	supervise(run, logf, "guest", o.Exe, args)
	select {
	case <-pressed:
		return o.PowerOff()
	default:
	}
	return ctx.Err()
}

// configure finds, checks and writes the configuration, sets up the NICs,
// and returns the agent's arguments.
func configure(o Options, logf func(string, ...any)) ([]string, error) {
	disks, err := LinkDisks("/sys", "/dev")
	if err != nil {
		logf("disk links: %v", err)
	}
	line, _ := os.ReadFile("/proc/cmdline")
	cmd, err := ParseCmdline(strings.TrimSpace(string(line)))
	if err != nil {
		return nil, err
	}
	var disk Settings
	if dev, ok := disks["vigil-config"]; ok {
		f, err := os.Open(dev)
		if err != nil {
			return nil, fmt.Errorf("boot: config disk %s: %w", dev, err)
		}
		disk, err = ParseConfigDisk(f)
		f.Close()
		if err != nil {
			return nil, err
		}
		disk.Source = "disk " + dev
	}
	s := Merge(cmd, disk)
	if s.Config == nil || s.Key == nil || s.Host == "" {
		// A cluster baked into the image: the lowest priority.
		if dir, err := ReadConfigDir(o.Etc); err == nil {
			s = Merge(s, dir)
		}
	}
	if err := s.Check(); err != nil {
		return nil, err
	}
	logf("config from %s", s.Source)
	cfg, err := config.Parse(s.Config)
	if err != nil {
		return nil, fmt.Errorf("boot: the cluster file does not pass vigil check:\n%v", err)
	}
	self := -1
	for i, h := range cfg.Hosts {
		if h.Name == s.Host {
			self = i
		}
	}
	if self < 0 {
		return nil, fmt.Errorf("boot: the cluster file has no host %q (fix: vigil.host= names one of its [[hosts]])", s.Host)
	}
	if err := os.MkdirAll(o.Etc, 0o700); err != nil {
		return nil, err
	}
	file := filepath.Join(o.Etc, "cluster.toml")
	if err := os.WriteFile(file, s.Config, 0o644); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Cluster.KeyFile), 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(cfg.Cluster.KeyFile, bytes.TrimRight(s.Key, "\x00"), 0o600); err != nil {
		return nil, err
	}
	var links []string
	for _, l := range cfg.Links {
		links = append(links, l.Name)
	}
	nics, err := ConfigureNICs(links, cfg.Hosts[self].Addresses, s.NICs)
	for _, l := range nics {
		logf("%s", l)
	}
	if err != nil {
		return nil, err
	}
	return append([]string{"agent", "--config", file, "--host", s.Host}, s.Flags...), nil
}

// supervise runs vigil with args until ctx ends, restarting it when it
// exits, after a backoff that doubles up to 10 s while it keeps failing
// fast.
func supervise(ctx context.Context, logf func(string, ...any), name, exe string, args []string) {
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		cmd := exec.CommandContext(ctx, exe, args...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if c, err := os.OpenFile("/dev/console", os.O_WRONLY, 0); err == nil {
			cmd.Stdout, cmd.Stderr = c, c
			defer c.Close()
		}
		start := time.Now()
		if err := cmd.Start(); err != nil {
			logf("%s: %v", name, err)
		} else {
			logf("%s started pid %d", name, cmd.Process.Pid)
			err := cmd.Wait()
			logf("%s exited: %v", name, err)
		}
		if time.Since(start) > time.Minute {
			backoff = 500 * time.Millisecond
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// uptime is the seconds since the kernel started.
func uptime() float64 {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0
	}
	var u float64
	fmt.Sscan(string(b), &u)
	return u
}
