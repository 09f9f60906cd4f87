// Package image builds vigil's firmware image: a u-root initramfs whose
// init starts `vigil boot`, with the kernel modules vigil loads itself,
// for the Debian kernel it fetches and caches.
//
//	k, err := image.FetchKernel(ctx, image.Cache())   // apt-get download, once
//	err = image.Build(ctx, image.Options{Out: "bin/vigil-initramfs.cpio", Kernel: k, Vigil: "bin/vigil"})
//	// qemu-system-x86_64 -kernel k.Vmlinux -initrd bin/vigil-initramfs.cpio ...
//
// This is build-time code: it runs apt-get, dpkg-deb, xz and the u-root
// tool, never on a vigil host.
package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// DefaultCache is where FetchKernel keeps the Debian kernel package and
// what it extracts from it.
const DefaultCache = "/var/cache/vigil-qemu"

// Cache is the kernel cache: $VIGIL_KERNEL_CACHE, or DefaultCache.
func Cache() string {
	if c := os.Getenv("VIGIL_KERNEL_CACHE"); c != "" {
		return c
	}
	return DefaultCache
}

// Kernel is a Debian kernel unpacked in the cache.
type Kernel struct {
	Version string // the kernel release, 6.1.0-57-amd64
	Vmlinux string // the uncompressed ELF kernel: QEMU boots it through PVH
	Vmlinuz string // the compressed kernel as Debian ships it
	Modules string // its lib/modules/VERSION folder
	Config  string // its config-VERSION file
}

// readyMark is written last into a kernel's folder: without it the folder
// is a fetch that stopped half-way and is redone.
const readyMark = "ready"

// FetchKernel returns the kernel that Debian's linux-image-amd64 depends
// on, unpacked under cache, downloading and unpacking it first if needed
// (as root: apt-get and dpkg-deb). The host's /boot is never touched.
func FetchKernel(ctx context.Context, cache string) (*Kernel, error) {
	pkg, err := kernelPackage(ctx)
	if err != nil {
		return nil, err
	}
	version := strings.TrimPrefix(pkg, "linux-image-")
	dir := filepath.Join(cache, version)
	k := &Kernel{
		Version: version,
		Vmlinux: filepath.Join(dir, "vmlinux"),
		Vmlinuz: filepath.Join(dir, "boot", "vmlinuz-"+version),
		Modules: filepath.Join(dir, "lib", "modules", version),
		Config:  filepath.Join(dir, "boot", "config-"+version),
	}
	if _, err := os.Stat(filepath.Join(dir, readyMark)); err == nil {
		return k, nil
	}
	debs := filepath.Join(cache, "debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return nil, fmt.Errorf("image: kernel cache %s: %w (fix: run as root, or set VIGIL_KERNEL_CACHE to a writable folder)", cache, err)
	}
	deb, err := findDeb(debs, pkg)
	if err != nil {
		if out, err := run(ctx, debs, "apt-get", "download", pkg); err != nil {
			return nil, fmt.Errorf("image: apt-get download %s failed: %v\n%s(fix: is Debian's package index reachable? run apt-get update)", pkg, err, out)
		}
		if deb, err = findDeb(debs, pkg); err != nil {
			return nil, err
		}
	}
	os.RemoveAll(dir)
	if out, err := run(ctx, "", "dpkg-deb", "-x", deb, dir); err != nil {
		return nil, fmt.Errorf("image: dpkg-deb -x %s: %v\n%s", deb, err, out)
	}
	// The package ships no modules.dep: depmod writes it at install.
	if out, err := run(ctx, "", "depmod", "-b", dir, version); err != nil {
		return nil, fmt.Errorf("image: depmod -b %s %s: %v\n%s(fix: apt-get install kmod)", dir, version, err, out)
	}
	z, err := os.ReadFile(k.Vmlinuz)
	if err != nil {
		return nil, fmt.Errorf("image: the package %s has no kernel: %w", pkg, err)
	}
	elf, err := ExtractVmlinux(ctx, z)
	if err != nil {
		return nil, fmt.Errorf("image: %s: %w", k.Vmlinuz, err)
	}
	if err := os.WriteFile(k.Vmlinux, elf, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, readyMark), []byte(pkg+"\n"), 0o644); err != nil {
		return nil, err
	}
	return k, nil
}

// kernelPackage is the versioned package linux-image-amd64 depends on.
func kernelPackage(ctx context.Context) (string, error) {
	out, err := run(ctx, "", "apt-cache", "depends", "linux-image-amd64")
	if err != nil {
		return "", fmt.Errorf("image: apt-cache depends linux-image-amd64: %v\n%s(fix: this needs Debian's apt with its package index: run apt-get update)", err, out)
	}
	return parseDepends(string(out))
}

// parseDepends finds the kernel package in apt-cache depends's output.
func parseDepends(out string) (string, error) {
	for _, line := range strings.Split(out, "\n") {
		dep, ok := strings.CutPrefix(strings.TrimSpace(line), "Depends: ")
		if ok && strings.HasPrefix(dep, "linux-image-") {
			return strings.TrimSpace(dep), nil
		}
	}
	return "", fmt.Errorf("image: linux-image-amd64 depends on no linux-image-VERSION package (fix: run apt-get update)")
}

func findDeb(dir, pkg string) (string, error) {
	m, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
	if len(m) == 0 {
		return "", fmt.Errorf("image: no %s_*.deb in %s", pkg, dir)
	}
	return m[len(m)-1], nil
}

func run(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	return cmd.CombinedOutput()
}

// Compressed payload magics inside a bzImage, and the command that
// decompresses each from stdin.
var payloads = []struct {
	name  string
	magic []byte
	cmd   []string
}{
	{"xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}, []string{"xz", "-dc"}},
	{"zstd", []byte{0x28, 0xb5, 0x2f, 0xfd}, []string{"zstd", "-dc"}},
	{"gzip", []byte{0x1f, 0x8b, 0x08}, []string{"gzip", "-dc"}},
}

// elfMagic starts an ELF file.
var elfMagic = []byte{0x7f, 'E', 'L', 'F'}

// ErrNoVmlinux is wrapped when no compressed ELF kernel is found.
var ErrNoVmlinux = errors.New("no compressed ELF kernel inside")

// ExtractVmlinux finds the compressed kernel inside a bzImage and returns
// it uncompressed: the first xz, zstd or gzip stream that decompresses to
// an ELF file. Trailing data after the stream is ignored.
func ExtractVmlinux(ctx context.Context, bz []byte) ([]byte, error) {
	for _, p := range payloads {
		for off := 0; ; {
			i := bytes.Index(bz[off:], p.magic)
			if i < 0 {
				break
			}
			off += i
			cmd := exec.CommandContext(ctx, p.cmd[0], p.cmd[1:]...)
			cmd.Stdin = bytes.NewReader(bz[off:])
			var out bytes.Buffer
			cmd.Stdout = &out
			_ = cmd.Run() // trailing garbage makes it fail after the stream
			if bytes.HasPrefix(out.Bytes(), elfMagic) {
				return out.Bytes(), nil
			}
			off++
		}
	}
	return nil, ErrNoVmlinux
}
