#!/bin/sh
# Installs what the OpenWrt packaging targets need on top of scripts/deps.sh
# (which it runs, so Go is there too): shellcheck for the init script,
# qemu-user to run MIPS and ARM test binaries, busybox and dash to run the
# init script under the shells OpenWrt and Debian call /bin/sh, the GNU
# tar and gzip that build the .ipk files, and dpkg and systemd's tools for
# the .deb. All from Debian.
set -eu

cd "$(dirname "$0")/.."

missing=""
need() { # need PACKAGE COMMAND...: the package if none of the commands exist
	pkg=$1
	shift
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 && return 0
	done
	case " $missing " in
	*" $pkg "*) ;;
	*) missing="$missing $pkg" ;;
	esac
}
need shellcheck shellcheck
need qemu-user qemu-mips qemu-mips-static
need qemu-user qemu-arm qemu-arm-static
need busybox busybox
need dash dash
need tar tar
need gzip gzip
# The Debian package: dpkg-deb builds it; the test installs it with dpkg,
# checks its unit with systemd-analyze and makes its /run symlink with
# systemd-tmpfiles; unshare and nsenter are util-linux's.
need dpkg dpkg-deb
need systemd systemd-analyze
need util-linux unshare

# deps.sh installs the packages it is given, then makes sure of Go.
# The package names contain no blanks: split on purpose.
# shellcheck disable=SC2086
exec scripts/deps.sh $missing
