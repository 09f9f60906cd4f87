package image

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ModulesDir is where the image keeps the modules vigil loads itself. It
// is not /lib/modules: u-root's init would load everything there, in
// alphabetical order, before dependencies.
const ModulesDir = "lib/vigil-modules"

// LoadOrder names the file in ModulesDir listing the modules, one file
// name a line, each after the modules it depends on.
const LoadOrder = "load-order"

// DefaultModules are the modules a vigil host needs when its kernel has
// them as modules: the watchdog drivers (i6300esb is QEMU's, ib700wdt an
// ISA fallback), in-band IPMI, and the virtio NIC and disk a QEMU host uses.
// Ones built into the kernel, or absent from it, are skipped.
var DefaultModules = []string{
	"i6300esb", "ib700wdt",
	"ipmi_msghandler", "ipmi_si", "ipmi_devintf",
	"virtio_pci", "virtio_net", "virtio_blk",
	"virtio_console",  // the guest agent's virtio-serial port, when the image is a VM's guest
	"button", "evdev", // the ACPI power button, which shuts a guest down
}

// Options are what Build puts into an image.
type Options struct {
	Out     string            // the cpio archive to write
	Kernel  *Kernel           // the kernel whose modules go in
	Modules []string          // module names (nil: DefaultModules)
	Vigil   string            // the static vigil binary to include
	Files   map[string]string // more files: path in the image → path here
	// Root is the vigil module's folder, where the u-root tool runs (""
	// the working directory).
	Root string
}

// Build writes the initramfs: u-root's init, which runs `/bin/vigil boot`
// as its uinit, the vigil binary, and the modules with their load order.
func Build(ctx context.Context, o Options) error {
	if o.Out == "" || o.Kernel == nil || o.Vigil == "" {
		return fmt.Errorf("image: Build needs Out, Kernel and Vigil")
	}
	if _, err := os.Stat(o.Vigil); err != nil {
		return fmt.Errorf("image: the vigil binary: %w (fix: make build)", err)
	}
	names := o.Modules
	if names == nil {
		names = DefaultModules
	}
	stage, err := os.MkdirTemp("", "vigil-image")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	mods, err := stageModules(ctx, o.Kernel.Modules, names, stage)
	if err != nil {
		return err
	}
	args := []string{"tool", "u-root", "-o", o.Out, "-defaultsh=", "-uinitcmd=/bin/vigil boot",
		"-files", o.Vigil + ":bin/vigil"}
	for _, m := range mods {
		args = append(args, "-files", filepath.Join(stage, m)+":"+ModulesDir+"/"+m)
	}
	args = append(args, "-files", filepath.Join(stage, LoadOrder)+":"+ModulesDir+"/"+LoadOrder)
	dests := make([]string, 0, len(o.Files))
	for d := range o.Files {
		dests = append(dests, d)
	}
	sort.Strings(dests)
	for _, d := range dests {
		args = append(args, "-files", o.Files[d]+":"+strings.TrimPrefix(d, "/"))
	}
	args = append(args, "github.com/u-root/u-root/cmds/core/init")
	if out, err := run(ctx, o.Root, "go", args...); err != nil {
		return fmt.Errorf("image: go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// stageModules writes the closure of names (uncompressed .ko files) and
// the load-order file into stage, and returns the file names in order.
func stageModules(ctx context.Context, modDir string, names []string, stage string) ([]string, error) {
	f, err := os.Open(filepath.Join(modDir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("image: the kernel's modules.dep: %w", err)
	}
	dep, err := ParseModulesDep(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	builtin := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join(modDir, "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			builtin[moduleName(l)] = true
		}
	}
	var want []string
	for _, n := range names {
		n = strings.ReplaceAll(n, "-", "_")
		if builtin[n] {
			continue
		}
		if _, ok := dep.Path[n]; !ok {
			return nil, fmt.Errorf("image: the kernel %s has no module %s (fix: drop it from the list)", filepath.Base(modDir), n)
		}
		want = append(want, n)
	}
	order := dep.Closure(want)
	var files []string
	for _, n := range order {
		src := filepath.Join(modDir, dep.Path[n])
		out := n + ".ko"
		var cmd []string
		switch {
		case strings.HasSuffix(src, ".xz"):
			cmd = []string{"xz", "-dc", src}
		case strings.HasSuffix(src, ".zst"):
			cmd = []string{"zstd", "-dc", src}
		case strings.HasSuffix(src, ".gz"):
			cmd = []string{"gzip", "-dc", src}
		}
		var data []byte
		if cmd != nil {
			data, err = run(ctx, "", cmd[0], cmd[1:]...)
		} else {
			data, err = os.ReadFile(src)
		}
		if err != nil {
			return nil, fmt.Errorf("image: module %s: %v", src, err)
		}
		if err := os.WriteFile(filepath.Join(stage, out), data, 0o644); err != nil {
			return nil, err
		}
		files = append(files, out)
	}
	list := strings.Join(files, "\n") + "\n"
	return files, os.WriteFile(filepath.Join(stage, LoadOrder), []byte(list), 0o644)
}

// ModulesDep is a kernel's modules.dep: each module's file and the
// modules it needs.
type ModulesDep struct {
	Path map[string]string   // name → path relative to lib/modules/VERSION
	Deps map[string][]string // name → the names it depends on
}

// moduleName is the name of a module file: kernel/x/virtio_net.ko.xz →
// virtio_net.
func moduleName(path string) string {
	b := filepath.Base(path)
	if i := strings.Index(b, ".ko"); i >= 0 {
		b = b[:i]
	}
	return strings.ReplaceAll(b, "-", "_")
}

// ParseModulesDep reads modules.dep ("path: dep-path dep-path").
func ParseModulesDep(f *os.File) (*ModulesDep, error) {
	d := &ModulesDep{Path: map[string]string{}, Deps: map[string][]string{}}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for ln := 1; sc.Scan(); ln++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		p, deps, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("image: modules.dep line %d: no ':' in %q", ln, line)
		}
		n := moduleName(p)
		d.Path[n] = p
		for _, dp := range strings.Fields(deps) {
			d.Deps[n] = append(d.Deps[n], moduleName(dp))
		}
	}
	return d, sc.Err()
}

// Closure is names with everything they depend on, each module after its
// dependencies, each once.
func (d *ModulesDep) Closure(names []string) []string {
	var order []string
	seen := map[string]bool{}
	var visit func(n string)
	visit = func(n string) {
		if seen[n] {
			return
		}
		seen[n] = true
		for _, dep := range d.Deps[n] {
			visit(dep)
		}
		order = append(order, n)
	}
	for _, n := range names {
		visit(n)
	}
	return order
}
