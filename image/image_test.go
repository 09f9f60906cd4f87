package image

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/vigil-ha/vigil/tools/privtest"
)

func TestParseDepends(t *testing.T) {
	out := "linux-image-amd64\n  Depends: linux-image-6.1.0-57-amd64\n"
	got, err := parseDepends(out)
	if err != nil || got != "linux-image-6.1.0-57-amd64" {
		t.Fatalf("parseDepends = %q, %v", got, err)
	}
	if _, err := parseDepends("linux-image-amd64\n"); err == nil {
		t.Fatal("no Depends line: want an error")
	}
}

func TestModulesClosure(t *testing.T) {
	dep := "kernel/drivers/virtio/virtio_pci.ko.xz: kernel/drivers/virtio/virtio_pci_modern_dev.ko.xz kernel/drivers/virtio/virtio.ko.xz\n" +
		"kernel/drivers/virtio/virtio_pci_modern_dev.ko.xz:\n" +
		"kernel/drivers/virtio/virtio.ko.xz:\n" +
		"kernel/drivers/net/virtio_net.ko.xz: kernel/net/core/failover.ko.xz kernel/drivers/virtio/virtio.ko.xz\n" +
		"kernel/net/core/failover.ko.xz:\n"
	path := filepath.Join(t.TempDir(), "modules.dep")
	os.WriteFile(path, []byte(dep), 0o644)
	f, _ := os.Open(path)
	defer f.Close()
	d, err := ParseModulesDep(f)
	if err != nil {
		t.Fatal(err)
	}
	got := d.Closure([]string{"virtio_net", "virtio_pci"})
	want := []string{"failover", "virtio", "virtio_net", "virtio_pci_modern_dev", "virtio_pci"}
	if !slices.Equal(got, want) {
		t.Fatalf("Closure = %v, want %v (dependencies first, each once)", got, want)
	}
	os.WriteFile(path, []byte("no colon here\n"), 0o644)
	g, _ := os.Open(path)
	defer g.Close()
	if _, err := ParseModulesDep(g); err == nil {
		t.Fatal("a line without ':' must be an error")
	}
}

func TestExtractVmlinux(t *testing.T) {
	elf := append([]byte{0x7f, 'E', 'L', 'F', 2, 1, 1}, bytes.Repeat([]byte("kernel"), 100)...)
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	w.Write(elf)
	w.Close()
	// A gzip magic that is no stream comes first, as in real bzImages.
	bz := append([]byte("setup code \x1f\x8b\x08 not a stream "), z.Bytes()...)
	bz = append(bz, "trailing data"...)
	got, err := ExtractVmlinux(context.Background(), bz)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, elf) {
		t.Fatalf("extracted %d bytes, want the %d-byte ELF", len(got), len(elf))
	}
	if _, err := ExtractVmlinux(context.Background(), []byte("nothing compressed")); !errors.Is(err, ErrNoVmlinux) {
		t.Fatalf("err = %v, want ErrNoVmlinux", err)
	}
}

func TestBuildNeedsItsInputs(t *testing.T) {
	if err := Build(context.Background(), Options{Out: "x"}); err == nil {
		t.Fatal("Build without a kernel or binary must fail")
	}
	k := &Kernel{Modules: t.TempDir()}
	err := Build(context.Background(), Options{Out: filepath.Join(t.TempDir(), "i.cpio"), Kernel: k, Vigil: "/nonexistent/vigil"})
	if err == nil {
		t.Fatal("Build with a missing vigil binary must fail")
	}
}

// TestFetchKernel fetches (or finds cached) the Debian kernel the image
// boots: an ELF vmlinux and the modules with their modules.dep.
func TestFetchKernel(t *testing.T) {
	privtest.Require(t)
	k, err := FetchKernel(context.Background(), Cache())
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 4)
	f, err := os.Open(k.Vmlinux)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Read(head); err != nil || !bytes.Equal(head, elfMagic) {
		t.Fatalf("%s does not start with the ELF magic: %x", k.Vmlinux, head)
	}
	if _, err := os.Stat(filepath.Join(k.Modules, "modules.dep")); err != nil {
		t.Fatalf("no modules.dep: %v", err)
	}
	again, err := FetchKernel(context.Background(), Cache())
	if err != nil || *again != *k {
		t.Fatalf("a second fetch = %+v, %v; want the cached %+v", again, err, k)
	}
}
