// Command mkimage builds vigil's firmware image (make image): it fetches
// and caches the Debian kernel, then writes a u-root initramfs that boots
// into `vigil boot`.
//
//	go run ./tools/mkimage -vigil bin/vigil -o bin/vigil-initramfs.cpio
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/image"
)

func main() {
	out := flag.String("o", "bin/vigil-initramfs.cpio", "the initramfs to write")
	cache := flag.String("cache", image.Cache(), "the kernel cache")
	vigil := flag.String("vigil", "bin/vigil", "the static vigil binary to put in")
	modules := flag.String("modules", strings.Join(image.DefaultModules, ","), "kernel modules (with their dependencies)")
	kernelOnly := flag.Bool("kernel-only", false, "only fetch the kernel into the cache")
	flag.Parse()
	ctx := context.Background()
	start := time.Now()
	k, err := image.FetchKernel(ctx, *cache)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
	if *kernelOnly {
		fmt.Printf("kernel: %s (modules %s)\n", k.Vmlinux, k.Modules)
		return
	}
	if err := image.Build(ctx, image.Options{Out: *out, Kernel: k, Vigil: *vigil, Modules: strings.Split(*modules, ",")}); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
	st, err := os.Stat(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
	fmt.Printf("image:  %s (%.1f MiB, built in %s)\nkernel: %s\n", *out, float64(st.Size())/(1<<20), time.Since(start).Round(100*time.Millisecond), k.Vmlinux)
}
