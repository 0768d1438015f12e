#!/bin/sh
# Builds Debian packages (.deb) of ddhcpd for mesh gateways.
#
#   scripts/deb.sh [-o DIR] [-n] [ARCH...]
#
# For each Debian architecture ARCH (default: amd64 arm64; armhf works too)
# it writes DIR/ddhcpd_VERSION_ARCH.deb (DIR: dist). The static binary is
# DIR/GOARCH-TARGET/ddhcpd from scripts/cross.sh (x86_64 for amd64,
# aarch64_cortex-a53 for arm64, arm_cortex-a7_neon-vfpv4 for armhf), built
# first unless -n is given.
#
# The package is a staging tree handed to "dpkg-deb --build
# --root-owner-group" (no debhelper, no network):
#   /usr/sbin/ddhcpd, /usr/sbin/ddhcpctl -> ddhcpd
#   /lib/systemd/system/ddhcpd.service     hardened unit, not enabled
#   /etc/ddhcpd/ddhcpd                     UCI configuration, a conffile
#   /usr/lib/tmpfiles.d/ddhcpd.conf        /run/ddhcpd.sock -> ddhcpd/ddhcpd.sock
#   /usr/share/doc/ddhcpd/copyright
# and DEBIAN/control, conffiles, md5sums, postinst, prerm, postrm. The files come from
# files/debian/. Every file's mtime is SOURCE_DATE_EPOCH (the last commit),
# so the same binary gives the same package.
#
# Environment: VERSION (default: git describe), MAINTAINER, SOURCE_DATE_EPOCH.
set -eu

cd "$(dirname "$0")/.."
top=$(pwd)
umask 022

out=dist
build=1
while getopts "o:n" opt; do
	case $opt in
	o) out=$OPTARG ;;
	n) build=0 ;;
	*)
		echo "usage: $0 [-o DIR] [-n] [ARCH...]" >&2
		exit 2
		;;
	esac
done
shift $((OPTIND - 1))
case $out in
/*) ;;
*) out=$top/$out ;;
esac
[ $# -gt 0 ] || set -- amd64 arm64

VERSION=${VERSION:-$(git describe --always --dirty 2>/dev/null || echo dev)}
export VERSION
# As openwrt/ddhcpd/Makefile's PKG_MAINTAINER.
MAINTAINER=${MAINTAINER:-ddhcpd developers}
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

# pkg_version VERSION: the same mapping as scripts/ipk.sh, which gives a
# valid Debian version too (digits first; only A-Za-z0-9.+~): v1.2.3 ->
# 1.2.3, v1.2.3-4-gabcdef -> 1.2.3.4.gabcdef, a bare commit hash (no tag
# yet) -> 0~gitHASH, which sorts before any release.
pkg_version() {
	v=${1#v}
	v=$(printf '%s' "$v" | tr -c 'A-Za-z0-9.+~' '.')
	case $v in
	[0-9]*.[0-9]*) ;;
	*) v="0~git$v" ;;
	esac
	printf '%s\n' "$v"
}
pkgver=$(pkg_version "$VERSION")

# cross_arch DEBARCH: scripts/cross.sh's name for the same Go build.
cross_arch() {
	case $1 in
	amd64) echo x86_64 ;;
	arm64) echo aarch64_cortex-a53 ;;
	armhf) echo arm_cortex-a7_neon-vfpv4 ;;
	*) return 1 ;;
	esac
}

command -v dpkg-deb >/dev/null 2>&1 || {
	echo "deb: dpkg-deb is missing (Debian's dpkg package)" >&2
	exit 1
}
src=files/debian
for f in lib/systemd/system/ddhcpd.service etc/ddhcpd/ddhcpd \
	usr/lib/tmpfiles.d/ddhcpd.conf usr/share/doc/ddhcpd/copyright \
	DEBIAN/postinst DEBIAN/prerm DEBIAN/postrm; do
	[ -f "$src/$f" ] || {
		echo "deb: $src/$f is missing" >&2
		exit 1
	}
done

crosses=""
for arch in "$@"; do
	c=$(cross_arch "$arch") || {
		echo "deb: unknown architecture $arch (known: amd64 arm64 armhf)" >&2
		exit 2
	}
	crosses="$crosses $c"
done
# The names contain no blanks: split on purpose.
# shellcheck disable=SC2086
[ "$build" = 0 ] || scripts/cross.sh -o "$out" $crosses

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

for arch in "$@"; do
	bin=$out/$(cross_arch "$arch")/ddhcpd
	[ -f "$bin" ] || {
		echo "deb: $bin is missing (run scripts/cross.sh -o $out $(cross_arch "$arch"))" >&2
		exit 1
	}
	root=$tmp/$arch
	mkdir -p "$root"
	chmod 0755 "$root"
	install -d -m 0755 "$root/DEBIAN" "$root/usr/sbin" "$root/lib/systemd/system" \
		"$root/etc/ddhcpd" "$root/usr/lib/tmpfiles.d" "$root/usr/share/doc/ddhcpd"
	install -m 0755 "$bin" "$root/usr/sbin/ddhcpd"
	ln -s ddhcpd "$root/usr/sbin/ddhcpctl"
	install -m 0644 "$src/lib/systemd/system/ddhcpd.service" "$root/lib/systemd/system/"
	install -m 0644 "$src/etc/ddhcpd/ddhcpd" "$root/etc/ddhcpd/"
	install -m 0644 "$src/usr/lib/tmpfiles.d/ddhcpd.conf" "$root/usr/lib/tmpfiles.d/"
	install -m 0644 "$src/usr/share/doc/ddhcpd/copyright" "$root/usr/share/doc/ddhcpd/"
	for s in postinst prerm postrm; do
		install -m 0755 "$src/DEBIAN/$s" "$root/DEBIAN/"
	done
	echo /etc/ddhcpd/ddhcpd >"$root/DEBIAN/conffiles"

	# Installed-Size is KiB, as dpkg-gencontrol counts it: each file's
	# size rounded up to whole KiB, one for every other entry.
	size=$(cd "$root" && find . -path ./DEBIAN -prune -o ! -name . -print |
		while IFS= read -r f; do
			if [ -f "$f" ] && [ ! -L "$f" ]; then
				wc -c <"$f"
			else
				echo 1024
			fi
		done | awk '{ k += int(($1 + 1023) / 1024) } END { print k }')

	# No Depends: the binary is static (no libc); systemd and dpkg are on
	# every Debian gateway, and the maintainer scripts cope without them.
	cat >"$root/DEBIAN/control" <<EOF
Package: ddhcpd
Version: $pkgver
Architecture: $arch
Maintainer: $MAINTAINER
Installed-Size: $size
Section: net
Priority: optional
Description: decentralized DHCP server for mesh networks
 Every router and gateway of a mesh (Freifunk and alike) runs ddhcpd: they
 split one IPv4 pool into blocks, claim blocks by multicast on the mesh and
 serve DHCP to their own clients. Speaks the C ddhcpd's protocol (Gluon's
 ddhcpd package). Configured in /etc/ddhcpd/ddhcpd (UCI syntax, as on
 OpenWrt); runs as the hardened systemd service ddhcpd, which the package
 does not start. ddhcpctl shows blocks and leases.
EOF
	# What dpkg --verify and debsums check the installed files against.
	(cd "$root" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' |
		LC_ALL=C sort | while IFS= read -r f; do md5sum "$f"; done) >"$root/DEBIAN/md5sums"
	chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"
	find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

	deb=$out/ddhcpd_${pkgver}_$arch.deb
	dpkg-deb --root-owner-group -Zxz --build "$root" "$deb.tmp" >/dev/null
	rm -f "$out"/ddhcpd_*_"$arch".deb # one version per architecture in DIR
	mv "$deb.tmp" "$deb"
	echo "deb: $deb ($(wc -c <"$deb" | tr -d ' ') bytes, installed $size KiB)"
done
