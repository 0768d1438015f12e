# ddhcpd: build, test, demo and benchmarks. Everything runs as root on
# Debian; scripts/deps.sh installs what is missing.

SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
export CGO_ENABLED := 0

VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BUILD := go build -trimpath -ldflags '$(LDFLAGS)'
BIN := bin

# Fuzz targets run briefly by `make test` (package:target).
FUZZ_TARGETS := ./src/wire:FuzzDecode ./src/dhcp4:FuzzHandle ./src/statedir:FuzzLoadState ./src/netio:FuzzParseFrame ./src/claim:FuzzStep ./src/control:FuzzRequest ./src/config:FuzzUCI ./src/wire:FuzzDecodeOverlay ./src/overlay:FuzzStep ./src/wire:FuzzDecodeRoute
FUZZTIME ?= 10s

.PHONY: all build deps test test-unit test-e2e fuzz demo bench soak vet fmt-check clean

all: build

deps:
	@scripts/deps.sh

build: deps
	$(BUILD) -o $(BIN)/ddhcpd ./src/cmd/ddhcpd
	ln -sf ddhcpd $(BIN)/ddhcpctl

# The whole suite: format, vet, unit and property tests, the network
# namespace tests with the real binary, and a short fuzz run per target.
test: deps fmt-check vet shellcheck test-qemu-mips
	go test -count=1 -timeout 10m ./...
	$(MAKE) --no-print-directory fuzz

fmt-check:
	@out=$$(gofmt -l src); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	go vet ./...

fuzz:
	@FUZZTIME=$(FUZZTIME) scripts/fuzz.sh $(FUZZ_TARGETS)

# A three-router mesh in network namespaces; prints who owns which block
# until Ctrl-C (or for DEMO_SECONDS seconds).
demo: build
	scripts/demo.sh $(BIN)

bench: build
	go test -run '^$$' -bench . -benchtime 3x ./src/claim
	go test -run '^$$' -bench . -benchtime 1x -timeout 30m ./src/sim
	SCALE_NODES=1000 go test -run '^$$' -bench 'Scale' -benchtime 1x -timeout 60m ./src/sim
	go test -run '^$$' -bench . -benchtime 1x -timeout 30m ./src/e2e
	scripts/bench-dhcp.sh $(BIN)

# Long seeded runs of the simulations (make test runs short batches).
SOAK_SEEDS ?= 5000
soak: deps
	SIM_SEEDS=10000 go test -count=1 -timeout 3h -run '^TestProperties$$' ./src/sim
	OVERLAY_SEEDS=10000 go test -count=1 -timeout 3h -run '^TestOverlayProperties$$' ./src/sim
	CHAOS_SEEDS=$(SOAK_SEEDS) go test -count=1 -timeout 3h -run '^TestChaos$$' ./src/sim

clean:
	rm -rf $(BIN) dist

# OpenWrt packaging (docs/openwrt.md). scripts/cross.sh holds the mapping of
# OpenWrt architectures to GOARCH/GOMIPS/GOARM; scripts/deps-pkg.sh installs
# shellcheck, qemu-user, busybox and dash from Debian.
.PHONY: cross ipk deb test-qemu test-qemu-mips shellcheck

# Static binaries for the OpenWrt targets: dist/<arch>/ddhcpd.
cross: deps
	VERSION=$(VERSION) scripts/cross.sh -o dist

# dist/ddhcpd_<version>_<arch>.ipk for every target, without the SDK.
ipk: cross
	VERSION=$(VERSION) scripts/ipk.sh -n -o dist

# dist/ddhcpd_<version>_<arch>.deb for Debian mesh gateways (amd64, arm64):
# dpkg-deb from a staging tree, systemd unit and files from files/debian/
# (docs/openwrt.md, "Debian gateway"). DEB_ARCHS=armhf builds that too.
DEB_ARCHS ?= amd64 arm64
deb: deps
	@scripts/deps-pkg.sh
	VERSION=$(VERSION) scripts/deb.sh -o dist $(DEB_ARCHS)

# The pure packages' tests on big-endian MIPS and on 32-bit ARM, under
# qemu-user; make test runs the MIPS half.
test-qemu:
	@scripts/deps-pkg.sh
	scripts/qemu-test.sh mips arm

test-qemu-mips:
	@scripts/deps-pkg.sh
	scripts/qemu-test.sh mips

# The init script, the uci-defaults scripts, the feed's maintainer script
# parts, the Debian maintainer scripts and the packaging scripts are POSIX
# sh (busybox ash on the router, dash on Debian).
shellcheck:
	@scripts/deps-pkg.sh
	shellcheck -s sh files/etc/init.d/ddhcpd files/etc/uci-defaults/50-ddhcpd \
		files/etc/uci-defaults/zzzz-ddhcpd-firewall \
		scripts/cross.sh scripts/ipk.sh scripts/feed-script.sh \
		scripts/deb.sh files/debian/DEBIAN/postinst files/debian/DEBIAN/prerm \
		files/debian/DEBIAN/postrm \
		scripts/qemu-test.sh scripts/deps-pkg.sh scripts/fuzz.sh \
		src/packaging/testdata/openwrt/etc/rc.common \
		src/packaging/testdata/openwrt/lib/functions.sh \
		src/packaging/testdata/openwrt/lib/functions/procd.sh
	set -o pipefail; scripts/feed-script.sh postinst | shellcheck -s sh -
	set -o pipefail; scripts/feed-script.sh prerm | shellcheck -s sh -
