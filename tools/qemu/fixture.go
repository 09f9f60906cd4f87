package qemu

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/vigil-ha/vigil/image"
)

// Fixture is what tests boot: Debian's kernel, a static vigil binary built
// from the module, and the firmware image holding it.
type Fixture struct {
	Dir     string // holds the binary and the image; the caller removes it
	Vigil   string
	Kernel  *image.Kernel
	Initrd  string
	BuildIn time.Duration
}

// BuildFixture builds a Fixture in a new temporary folder. unavailable is
// set, and err nil, when this machine cannot have one (no kernel in the
// image cache and no way to fetch it): the tests skip then.
func BuildFixture(ctx context.Context) (f *Fixture, unavailable string, err error) {
	start := time.Now()
	dir, err := os.MkdirTemp("", "vigil-itest")
	if err != nil {
		return nil, "", err
	}
	f = &Fixture{Dir: dir, Vigil: filepath.Join(dir, "vigil"), Initrd: filepath.Join(dir, "initramfs.cpio")}
	k, err := image.FetchKernel(ctx, image.Cache())
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Sprintf("no kernel for the image: %v (make qemu-deps fetches it)", err), nil
	}
	f.Kernel = k
	root, err := moduleRoot()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", f.Vigil, "./firmware/vigil")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, "", fmt.Errorf("go build ./firmware/vigil: %v\n%s", err, out)
	}
	if err := image.Build(ctx, image.Options{Out: f.Initrd, Kernel: k, Vigil: f.Vigil, Root: root}); err != nil {
		return nil, "", err
	}
	f.BuildIn = time.Since(start)
	return f, "", nil
}

// moduleRoot finds the folder of go.mod above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = up
	}
}
