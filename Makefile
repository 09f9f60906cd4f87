# vigil's build. Every target runs from a fresh clone with only Go installed;
# what a target needs beyond that it installs itself.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DELETE_ON_ERROR:
.DEFAULT_GOAL := build

GO      ?= go
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/vigil-ha/vigil/firmware/cli.Version=$(VERSION)
SEEDS   ?= 5000

.PHONY: build test verify generate demo bench fuzz deps lab-deps qemu-deps image clean

# Build-time features: Kconfig, resolved into .config by tools/kconfig;
# each feature that is off adds its Go build tag (vigil_noebpf, ...).
KCONFIG := $(GO) run ./tools/kconfig
# Shell: the Go build tags of .config, none without one (the full build).
CONFIG_TAGS = $$(if [ -f .config ]; then $(KCONFIG) tags; fi)
.PHONY: defconfig oldconfig olddefconfig savedefconfig menuconfig sizes

bin/vigil: FORCE
	@mkdir -p bin
	@tags=$(CONFIG_TAGS); echo "build tags: $${tags:-none (all features)}"; \
	echo "CGO_ENABLED=0 $(GO) build -trimpath -tags '$$tags' -ldflags '$(LDFLAGS)' -o $@ ./firmware/vigil"; \
	CGO_ENABLED=0 $(GO) build -trimpath -tags "$$tags" -ldflags '$(LDFLAGS)' -o $@ ./firmware/vigil

build: bin/vigil

deps:
	$(GO) mod download

# The lab's BMCs are OpenIPMI's ipmi_sim, and its tests talk to them with
# ipmitool: installed from Debian when either is missing, as root only
# (otherwise the root-only tests skip anyway).
lab-deps:
	@if command -v ipmi_sim >/dev/null && command -v ipmitool >/dev/null && command -v kconfig-conf >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" -ne 0 ]; then \
		echo "lab-deps: not root: skipping apt-get install openipmi ipmitool (the lab's BMC tests skip; 'vigil lab up' needs --no-bmc)"; \
		exit 0; \
	fi; \
	echo "lab-deps: installing openipmi (ipmi_sim), ipmitool and kconfig-frontends-nox (the Kconfig cross-check)"; \
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openipmi ipmitool kconfig-frontends-nox

# The whole suite: unit, golden scenario and fuzz-seed tests, then the
# simulator's invariant fuzzer over $(SEEDS) seeded fault schedules.
# The firmware image's tests boot it in QEMU (software emulation): QEMU,
# kmod's depmod and the Debian kernel, fetched once into
# /var/cache/vigil-qemu (never the host's /boot). Root only, like lab-deps.
qemu-deps:
	@if [ "$$(id -u)" -ne 0 ]; then echo "qemu-deps: not root: skipping QEMU and the kernel (the image tests skip)"; exit 0; fi; \
	if ! command -v qemu-system-x86_64 >/dev/null || ! command -v depmod >/dev/null; then \
		echo "qemu-deps: installing qemu-system-x86 and kmod"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends qemu-system-x86 kmod; \
	fi; \
	$(GO) run ./tools/mkimage -kernel-only

# The firmware image: bin/vigil in a u-root initramfs, with the modules of
# the cached Debian kernel (see "The firmware image" in the README).
image: qemu-deps build
	$(GO) run ./tools/mkimage -vigil bin/vigil -o bin/vigil-initramfs.cpio

test: deps lab-deps qemu-deps build
	$(GO) test -count=1 ./...
	@if ./bin/vigil features -tags | grep -q vigil_nosim; then echo "test: bin/vigil has no simulator (CONFIG_SIM is off in .config): its fuzzer does not run"; exit 0; fi; \
	echo "./bin/vigil sim fuzz --seeds $(SEEDS)"; ./bin/vigil sim fuzz --seeds $(SEEDS)

# gofmt, vet (also of the build without eBPF and of the minimal
# defconfig's build), go mod tidy and generated files (firmware/features,
# drivers/ebpf) must leave no diff.
verify:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "verify: gofmt needed on the files above"; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags vigil_noebpf ./...
	@tmp=$$(mktemp); trap 'rm -f "$$tmp" "$$tmp.old"' EXIT; \
	$(KCONFIG) -config "$$tmp" defconfig configs/minimal_defconfig >/dev/null; \
	tags=$$($(KCONFIG) -config "$$tmp" tags); \
	echo "$(GO) vet -tags $$tags ./..."; $(GO) vet -tags "$$tags" ./...
	$(GO) generate ./firmware/features
	@git diff --exit-code -- firmware/features && test -z "$$(git status --porcelain -- firmware/features)" || { echo "verify: go generate ./firmware/features changed firmware/features: commit the regenerated files"; exit 1; }
	$(GO) mod tidy
	@git diff --exit-code -- go.mod go.sum || { echo "verify: go mod tidy changed go.mod/go.sum: commit the result"; exit 1; }
	@if ! command -v clang >/dev/null; then echo "verify: no clang: the generated eBPF files are not checked"; exit 0; fi; \
	$(MAKE) --no-print-directory generate; \
	git diff --exit-code -- drivers/ebpf || { echo "verify: make generate changed drivers/ebpf: commit the regenerated files"; exit 1; }

# The eBPF programs: bpf2go compiles drivers/ebpf/*.c into the committed
# *_bpfel.o and *_bpfel.go, so that a build needs no C compiler. This
# target does: clang, llvm-strip and the UAPI and libbpf headers (Debian:
# apt-get install clang llvm libbpf-dev).
generate:
	@command -v clang >/dev/null && command -v llvm-strip >/dev/null || { echo "generate: needs clang and llvm-strip: apt-get install clang llvm libbpf-dev"; exit 1; }
	$(GO) generate ./drivers/ebpf/...

# The lab demo (root): real agents in network namespaces lose a link, then
# a host. `vigil sim demo` is the simulated one and needs no root.
demo: lab-deps build
	./bin/vigil demo

bench: lab-deps
	$(GO) test -run '^$$' -bench . -benchmem ./fence/... ./hb/... ./tools/... ./drivers/... ./firmware/...

# Go's coverage-guided fuzzers, 30 s each: the cluster-file parser, the
# failure detector, the heartbeat decoder, the datastore slot and incident
# record decoders and the core's event handling.
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 30s ./firmware/config
	$(GO) test -run '^$$' -fuzz FuzzLink -fuzztime 30s ./hb
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 30s ./hb
	$(GO) test -run '^$$' -fuzz FuzzDecodeRecord -fuzztime 30s ./drivers/datastore
	$(GO) test -run '^$$' -fuzz FuzzDecodeIncident -fuzztime 30s ./drivers/datastore
	$(GO) test -run '^$$' -fuzz FuzzStep -fuzztime 30s ./fence/cluster

# The configuration: .config, from a defconfig (configs/NAME_defconfig
# holds only the lines that differ from the Kconfig's defaults).
defconfig: full_defconfig

%_defconfig: configs/%_defconfig
	$(KCONFIG) defconfig $<

# Keeps .config's values, gives new symbols their defaults (it asks about
# them when run from a terminal) and drops symbols the Kconfig lost.
oldconfig:
	$(KCONFIG) oldconfig

olddefconfig:
	$(KCONFIG) oldconfig -defaults

savedefconfig:
	$(KCONFIG) savedefconfig -o defconfig
	@echo "savedefconfig: wrote defconfig: copy it to configs/NAME_defconfig to keep it"

menuconfig:
	@command -v kconfig-mconf >/dev/null || { echo "menuconfig: needs kconfig-mconf: apt-get install kconfig-frontends-nox (or edit .config and run make oldconfig)"; exit 1; }
	KCONFIG_CONFIG=.config kconfig-mconf Kconfig
	$(KCONFIG) tags >/dev/null

# The static binary of each committed defconfig, and its size.
sizes:
	@mkdir -p bin
	@for d in configs/*_defconfig; do \
		n=$$(basename "$$d" _defconfig); tmp=$$(mktemp); \
		$(KCONFIG) -config "$$tmp" defconfig "$$d" >/dev/null; \
		tags=$$($(KCONFIG) -config "$$tmp" tags); rm -f "$$tmp" "$$tmp.old"; \
		CGO_ENABLED=0 $(GO) build -trimpath -tags "$$tags" -ldflags '$(LDFLAGS)' -o "bin/vigil-$$n" ./firmware/vigil; \
		size=$$(stat -c %s "bin/vigil-$$n"); \
		awk -v n="$$n" -v s="$$size" -v t="$${tags:-none}" 'BEGIN { printf "%-10s %10d bytes %6.2f MiB  tags: %s\n", n, s, s/1048576, t }'; \
	done

clean:
	rm -rf bin

FORCE:
