#!/bin/sh
# Cross-builds the static ddhcpd binary for OpenWrt targets.
#
#   scripts/cross.sh [-o DIR] [ARCH...]   build DIR/ARCH/ddhcpd (DIR: dist)
#   scripts/cross.sh -l                   print the table below
#   scripts/cross.sh -e ARCH              print ARCH's Go environment (GOARCH=...)
#
# ARCH is an OpenWrt package architecture (opkg's "Architecture:" field);
# without one, every architecture in the table is built. VERSION (default:
# git describe) is stamped into main.version. GOFLAGS, e.g. -gcflags=all=-l,
# passes through to go build.
#
# The one place that maps OpenWrt architectures to Go's. Every target
# here lacks an FPU or has a VFP that Go does not need, so:
#   - MIPS routers (24Kc cores) have no FPU: GOMIPS=softfloat, or every
#     float instruction traps into the kernel's emulator;
#   - ARMv7 (Cortex-A7/A9/A15): GOARM=7;
#   - arm64 and amd64 need nothing.
# Table columns: OpenWrt architecture, then the Go environment.
set -eu

cd "$(dirname "$0")/.."

TABLE='mipsel_24kc GOARCH=mipsle GOMIPS=softfloat
mips_24kc GOARCH=mips GOMIPS=softfloat
arm_cortex-a7_neon-vfpv4 GOARCH=arm GOARM=7
aarch64_cortex-a53 GOARCH=arm64
x86_64 GOARCH=amd64'

goenv() { # goenv ARCH: print ARCH's Go environment words; fail if unknown
	echo "$TABLE" | awk -v a="$1" '$1 == a { $1 = ""; sub(/^ /, ""); print; f = 1 } END { exit !f }'
}

out=dist
while getopts "o:le:" opt; do
	case $opt in
	o) out=$OPTARG ;;
	l)
		echo "$TABLE"
		exit 0
		;;
	e)
		goenv "$OPTARG" || {
			echo "cross: unknown architecture $OPTARG" >&2
			exit 2
		}
		exit 0
		;;
	*)
		echo "usage: $0 [-o DIR] [ARCH...] | -l | -e ARCH" >&2
		exit 2
		;;
	esac
done
shift $((OPTIND - 1))

# The architecture names contain no blanks or globs: split on purpose.
# shellcheck disable=SC2046
[ $# -gt 0 ] || set -- $(echo "$TABLE" | cut -d' ' -f1)

PATH=/usr/local/go/bin:$PATH
export PATH
VERSION=${VERSION:-$(git describe --always --dirty 2>/dev/null || echo dev)}

for arch in "$@"; do
	env=$(goenv "$arch") || {
		echo "cross: unknown architecture $arch (known: $(echo "$TABLE" | cut -d' ' -f1 | tr '\n' ' '))" >&2
		exit 2
	}
	mkdir -p "$out/$arch"
	echo "cross: $arch ($env)"
	# $env is a list of NAME=VALUE words: split on purpose.
	# shellcheck disable=SC2086
	env CGO_ENABLED=0 GOOS=linux $env \
		go build -trimpath -ldflags "-s -w -X main.version=$VERSION" \
		-o "$out/$arch/ddhcpd" ./src/cmd/ddhcpd
done
