// Package itest boots the vigil firmware image in QEMU and checks it as a
// host would run it: vigil starts as the image's init and answers on the
// serial console, arms the i6300esb watchdog with the cluster's timeout,
// is reset by it after losing its datastore lease, powers itself off
// through in-band IPMI (QEMU's ipmi-bmc-sim), and hears a second image
// over a QEMU network. BenchmarkBoot measures the boot.
//
//	go test ./tools/qemu/...                       # as root; QEMU from make qemu-deps
//	go test -run '^$' -bench Boot ./tools/qemu/itest
//
// Its tests are root-only (privtest): they skip without root, QEMU or the
// kernel, and fail instead under VIGIL_REQUIRE_PRIV=1.
package itest
