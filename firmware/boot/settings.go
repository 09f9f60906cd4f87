// Package boot is vigil as the init of its firmware image: `vigil boot`,
// run by u-root's init, loads the kernel modules vigil needs, finds the
// cluster file and key (on the kernel command line or a config disk),
// checks them, configures the heartbeat NICs, and starts and supervises
// `vigil agent` and `vigil console` on the serial port.
//
//	err := boot.Run(ctx, boot.Options{}) // the image's defaults
//
// A configuration that does not pass `vigil check` never starts the agent,
// so it never arms the watchdog: the console stays up to show why.
package boot

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Settings are what a host needs from outside its image.
type Settings struct {
	Host   string            // this host's name in the cluster file
	Config []byte            // the cluster file (TOML)
	Key    []byte            // the cluster key file
	Flags  []string          // more `vigil agent` flags
	NICs   map[string]string // link name → interface, overriding the order
	Source string            // "cmdline", "disk DEV", or both
	// Guest, set by vigil.guest, makes the image a VM's guest: it runs
	// vigil guest with this file (empty: heartbeats only) instead of the
	// agent.
	Guest []byte
	// IsGuest is true once vigil.guest was given.
	IsGuest bool
}

// MaxCmdline is the x86 kernel command line's limit (COMMAND_LINE_SIZE).
const MaxCmdline = 2048

// ParseCmdline reads vigil.host, vigil.config (base64 of the gzipped
// cluster file), vigil.key (base64 of the key file), vigil.flags (agent
// flags, comma-separated) and vigil.nic.LINK=IFNAME from a kernel command
// line. Keys it does not know are left to the kernel.
func ParseCmdline(line string) (Settings, error) {
	var s Settings
	for _, f := range strings.Fields(line) {
		k, v, _ := strings.Cut(f, "=")
		switch {
		case k == "vigil.host":
			s.Host = v
		case k == "vigil.config":
			b, err := gunzip64(k, v, "cluster.toml")
			if err != nil {
				return s, err
			}
			s.Config = b
		case k == "vigil.guest":
			s.IsGuest = true
			if v != "" && v != "1" {
				b, err := gunzip64(k, v, "guest.toml")
				if err != nil {
					return s, err
				}
				s.Guest = b
			}
		case k == "vigil.key":
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				return s, fmt.Errorf("boot: vigil.key is not base64: %v (fix: base64 -w0 cluster.key)", err)
			}
			s.Key = b
		case k == "vigil.flags":
			for _, fl := range strings.Split(v, ",") {
				if fl != "" {
					s.Flags = append(s.Flags, fl)
				}
			}
		case strings.HasPrefix(k, "vigil.nic."):
			if s.NICs == nil {
				s.NICs = map[string]string{}
			}
			s.NICs[strings.TrimPrefix(k, "vigil.nic.")] = v
		}
	}
	if s.Host != "" || s.Config != nil || s.Key != nil {
		s.Source = "cmdline"
	}
	if len(line) >= MaxCmdline-1 && s.Host != "" && s.Config == nil {
		return s, fmt.Errorf("boot: the kernel command line is %d bytes, the kernel keeps %d: vigil.config was cut (fix: use a config disk)", len(line), MaxCmdline)
	}
	return s, nil
}

// gunzip64 decodes the value of kernel argument k: base64 of a gzipped
// file.
func gunzip64(k, v, file string) ([]byte, error) {
	fix := "gzip -9c " + file + " | base64 -w0"
	z, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("boot: %s is not base64: %v (fix: pass base64 of the gzipped %s: %s)", k, err, file, fix)
	}
	r, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		return nil, fmt.Errorf("boot: %s is not gzip data: %v (fix: %s)", k, err, fix)
	}
	b, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("boot: %s: %v (fix: %s)", k, err, fix)
	}
	return b, nil
}

// Config disk file names.
const (
	diskCluster = "cluster.toml"
	diskKey     = "cluster.key"
	diskHost    = "host"
	diskFlags   = "agent.flags"
)

// ParseConfigDisk reads a config disk: a plain tar archive (no file
// system, so no file-system module is needed) of cluster.toml,
// cluster.key, host and optionally agent.flags (one flag a line). The
// disk's zeros after the archive end it.
func ParseConfigDisk(r io.Reader) (Settings, error) {
	var s Settings
	tr := tar.NewReader(r)
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return s, fmt.Errorf("boot: config disk: not a tar archive: %v (fix: tar -cf disk.img cluster.toml cluster.key host)", err)
		}
		b, err := io.ReadAll(io.LimitReader(tr, 1<<20))
		if err != nil {
			return s, fmt.Errorf("boot: config disk: %s: %v", h.Name, err)
		}
		name := strings.TrimPrefix(h.Name, "./")
		seen[name] = true
		switch name {
		case diskCluster:
			s.Config = b
		case diskKey:
			s.Key = b
		case diskHost:
			s.Host = strings.TrimSpace(string(b))
		case diskFlags:
			for _, l := range strings.Split(string(b), "\n") {
				if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
					s.Flags = append(s.Flags, l)
				}
			}
		}
	}
	var missing []string
	for _, n := range []string{diskCluster, diskKey, diskHost} {
		if !seen[n] {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return s, fmt.Errorf("boot: config disk lacks %s (fix: tar -cf disk.img cluster.toml cluster.key host [agent.flags])", strings.Join(missing, ", "))
	}
	return s, nil
}

// Merge fills what the command line left out from the disk: the command
// line wins item by item, so one image and one disk serve a whole
// cluster, each host named by its own vigil.host.
func Merge(cmd, disk Settings) Settings {
	out := cmd
	if out.Host == "" {
		out.Host = disk.Host
	}
	if out.Config == nil {
		out.Config = disk.Config
	}
	if out.Key == nil {
		out.Key = disk.Key
	}
	out.Flags = append(append([]string(nil), disk.Flags...), cmd.Flags...)
	var src []string
	if cmd.Source != "" {
		src = append(src, cmd.Source)
	}
	if disk.Source != "" {
		src = append(src, disk.Source)
	}
	out.Source = strings.Join(src, " + ")
	return out
}

// Check says what is missing for the agent to start.
func (s Settings) Check() error {
	var missing []string
	if s.Host == "" {
		missing = append(missing, "the host name (vigil.host= or the disk's host file)")
	}
	if s.Config == nil {
		missing = append(missing, "the cluster file (vigil.config= or the disk's cluster.toml)")
	}
	if s.Key == nil {
		missing = append(missing, "the cluster key (vigil.key= or the disk's cluster.key)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("boot: no %s: attach a config disk (virtio serial vigil-config) or pass them on the kernel command line", strings.Join(missing, ", "))
	}
	return nil
}

// ReadConfigDir reads a cluster baked into the image: dir's cluster.toml,
// cluster.key and host files, as a config disk holds them.
func ReadConfigDir(dir string) (Settings, error) {
	var s Settings
	var err error
	if s.Config, err = os.ReadFile(filepath.Join(dir, diskCluster)); err != nil {
		return Settings{}, err
	}
	if s.Key, err = os.ReadFile(filepath.Join(dir, diskKey)); err != nil {
		return Settings{}, err
	}
	h, err := os.ReadFile(filepath.Join(dir, diskHost))
	if err != nil {
		return Settings{}, err
	}
	s.Host, s.Source = strings.TrimSpace(string(h)), dir
	return s, nil
}
