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
FUZZ_TARGETS := ./src/wire:FuzzDecode ./src/dhcp4:FuzzHandle ./src/statedir:FuzzLoadState ./src/netio:FuzzParseFrame ./src/claim:FuzzStep ./src/control:FuzzRequest ./src/config:FuzzUCI
FUZZTIME ?= 10s

.PHONY: all build deps test test-unit test-e2e fuzz demo bench vet fmt-check clean

all: build

deps:
	@scripts/deps.sh

build: deps
	$(BUILD) -o $(BIN)/ddhcpd ./src/cmd/ddhcpd
	ln -sf ddhcpd $(BIN)/ddhcpctl

# The whole suite: format, vet, unit and property tests, the network
# namespace tests with the real binary, and a short fuzz run per target.
test: deps fmt-check vet
	go test -count=1 -timeout 10m ./...
	$(MAKE) --no-print-directory fuzz

fmt-check:
	@out=$$(gofmt -l src); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	go vet ./...

fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$pkg $$fn for $(FUZZTIME)"; \
		go test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

# A three-router mesh in network namespaces; prints who owns which block
# until Ctrl-C (or for DEMO_SECONDS seconds).
demo: build
	scripts/demo.sh $(BIN)

bench: deps
	go test -run '^$$' -bench . -benchtime 3x ./src/claim
	go test -run '^$$' -bench . -benchtime 1x -timeout 30m ./src/sim

clean:
	rm -rf $(BIN) dist
