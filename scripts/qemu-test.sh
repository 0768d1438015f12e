#!/bin/sh
# Runs the pure packages' tests on other CPUs under qemu-user: big-endian
# MIPS finds byte-order mistakes that x86 and ARM (both little-endian) hide,
# 32-bit ARM (and MIPS) find word-size assumptions (int and uintptr are 32
# bits there).
#
#   scripts/qemu-test.sh [ARCH...]    ARCH: mips (default), mipsle, arm, arm64
#
# Each package's test binary is cross-compiled with "go test -c" and run by
# qemu-ARCH from the package's directory (testdata/ as with go test).
#
# Emulation is 20 to 40 times slower than the host, and the point here is
# byte order and word size, not more random seeds: make test runs every seed
# natively. So under qemu the tests run with -test.short (src/sim's chaos
# test then takes 20 seeds) and src/sim's property tests with fewer seeds:
# SIM_SEEDS=50 (of 400), OVERLAY_SEEDS=10 (of 300). TestChaosExercises,
# which checks that the simulator's own fault paths are reached, is skipped
# (QEMU_SKIP, a -test.skip pattern). All of these can be overridden;
# PKGS overrides the package list.
set -eu

SIM_SEEDS=${SIM_SEEDS:-50}
OVERLAY_SEEDS=${OVERLAY_SEEDS:-10}
QEMU_SKIP=${QEMU_SKIP-^TestChaosExercises\$}
export SIM_SEEDS OVERLAY_SEEDS

cd "$(dirname "$0")/.."
top=$(pwd)

PKGS=${PKGS:-./src/wire ./src/claim ./src/pool ./src/lease ./src/dhcp4 ./src/sim}
PATH=/usr/local/go/bin:$PATH
export PATH

[ $# -gt 0 ] || set -- mips

qemu_for() { # qemu_for ARCH: the qemu-user binary for ARCH
	case $1 in
	mips) q=mips ;;
	mipsle) q=mipsel ;;
	arm) q=arm ;;
	arm64) q=aarch64 ;;
	*) return 1 ;;
	esac
	command -v "qemu-$q" || command -v "qemu-$q-static" || {
		echo "qemu-test: qemu-$q not found (scripts/deps-pkg.sh installs qemu-user)" >&2
		return 1
	}
}

goenv_for() { # goenv_for ARCH: Go's environment for the routers' CPUs
	case $1 in
	mips | mipsle) echo "GOARCH=$1 GOMIPS=softfloat" ;;
	arm) echo "GOARCH=arm GOARM=7" ;;
	arm64) echo "GOARCH=arm64" ;;
	esac
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

fail=0
for arch in "$@"; do
	qemu=$(qemu_for "$arch") || {
		echo "qemu-test: unknown or unavailable architecture $arch" >&2
		exit 2
	}
	env=$(goenv_for "$arch")
	bins=$tmp/$arch
	mkdir -p "$bins"
	start=$(date +%s)
	echo "qemu-test: building $arch tests ($env)"
	# $env and $PKGS are lists of words: split on purpose.
	# shellcheck disable=SC2086
	env CGO_ENABLED=0 GOOS=linux $env go test -c -trimpath -o "$bins/" $PKGS
	built=$(date +%s)

	# Run the binaries side by side (2 cores); each one's output is printed
	# whole when it ends, go test style.
	for pkg in $PKGS; do
		name=${pkg##*/}
		(
			cd "$top/$pkg"
			t0=$(date +%s)
			if "$qemu" "$bins/$name.test" -test.short -test.timeout 10m \
				${QEMU_SKIP:+-test.skip "$QEMU_SKIP"} >"$bins/$name.log" 2>&1; then
				echo "ok  	$pkg	$(($(date +%s) - t0))s	(qemu $arch)" >"$bins/$name.result"
			else
				echo "FAIL	$pkg	$(($(date +%s) - t0))s	(qemu $arch)" >"$bins/$name.result"
			fi
		) &
	done
	wait
	for pkg in $PKGS; do
		name=${pkg##*/}
		if grep -q '^FAIL' "$bins/$name.result"; then
			cat "$bins/$name.log"
			fail=1
		fi
		cat "$bins/$name.result"
	done
	echo "qemu-test: $arch: built in $((built - start))s, ran in $(($(date +%s) - built))s"
done
exit $fail
