#!/bin/sh
# Builds OpenWrt packages (.ipk, for opkg) of ddhcpd without the OpenWrt SDK.
#
#   scripts/ipk.sh [-o DIR] [-n] [ARCH...]
#
# For each ARCH (default: every architecture scripts/cross.sh knows) it
# writes DIR/ddhcpd_VERSION_ARCH.ipk (DIR: dist). The binary is
# DIR/ARCH/ddhcpd, built by scripts/cross.sh first unless -n is given.
#
# The package is laid out the way OpenWrt's scripts/ipkg-build lays it out,
# so opkg treats it like one from the SDK:
#   - outer archive: a gzipped tar (not ar) holding ./debian-binary ("2.0"),
#     ./data.tar.gz and ./control.tar.gz, in that order;
#   - GNU tar format, numeric owner root:root, entries sorted by name, one
#     mtime (SOURCE_DATE_EPOCH: the last commit), gzip -n: reproducible;
#   - Installed-Size: the byte length of the uncompressed data.tar, which is
#     what ipkg-build writes and what opkg compares with the free space.
#
# Contents: /usr/sbin/ddhcpd, /usr/sbin/ddhcpctl -> ddhcpd,
# /usr/libexec/rpcd/ddhcpd -> /usr/sbin/ddhcpd, /etc/init.d/ddhcpd,
# /etc/config/ddhcpd (a conffile: opkg keeps the router's edited copy on
# upgrade), /etc/uci-defaults/50-ddhcpd (adapts a kept configuration) and
# /etc/uci-defaults/zzzz-ddhcpd-firewall. postinst/prerm are OpenWrt's
# defaults, which run the uci-defaults scripts and enable and start the
# service on a live router, only enable it inside an image root
# ($IPKG_INSTROOT; the image runs the scripts at its first boot), and stop
# and disable it on removal; they source postinst-pkg and prerm-pkg, the feed Makefile's
# Package/ddhcpd/postinst and prerm (scripts/feed-script.sh), as the SDK
# packs them.
#
# Environment: VERSION (default: git describe), MAINTAINER, LICENSE,
# SOURCE_DATE_EPOCH.
set -eu

cd "$(dirname "$0")/.."
top=$(pwd)

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
# Architecture names contain no blanks or globs: split on purpose.
# shellcheck disable=SC2046
[ $# -gt 0 ] || set -- $(scripts/cross.sh -l | cut -d' ' -f1)

VERSION=${VERSION:-$(git describe --always --dirty 2>/dev/null || echo dev)}
export VERSION
MAINTAINER=${MAINTAINER:-ddhcpd developers}
# SPDX name of the licence in LICENSE, as the C ddhcpd's.
LICENSE=${LICENSE:-GPL-3.0-or-later}
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

# pkg_version VERSION: a version opkg orders sensibly. A release tag
# (v1.2.3, v1.2.3-4-gabcdef) becomes 1.2.3 / 1.2.3.4.gabcdef; a bare commit
# hash (no tag yet) becomes 0~gitHASH, which sorts before any release.
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

conf=files/etc/config/ddhcpd
init=files/etc/init.d/ddhcpd
defaults=files/etc/uci-defaults/50-ddhcpd
fwdefaults=files/etc/uci-defaults/zzzz-ddhcpd-firewall
for f in "$init" "$defaults" "$fwdefaults"; do
	[ -f "$f" ] || {
		echo "ipk: $f is missing" >&2
		exit 1
	}
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

if [ ! -f "$conf" ]; then
	# The UCI default file is being written elsewhere; until it exists, ship
	# a disabled minimal one so the package stays installable.
	echo "ipk: $conf does not exist yet; packaging a placeholder" >&2
	conf=$tmp/placeholder.conf
	cat >"$conf" <<'EOF'

config ddhcpd 'settings'
	option enabled '0'
	list mesh_interface 'bat0'
	list client_interface 'br-client'
EOF
fi

# tarball DIR OUT: the gzipped tar of DIR's contents, as ipkg-build makes it.
tarball() {
	(cd "$1" && tar --format=gnu --numeric-owner --owner=0 --group=0 \
		--sort=name --mtime="@$SOURCE_DATE_EPOCH" -cf - .) | gzip -9n >"$2"
}

[ "$build" = 0 ] || scripts/cross.sh -o "$out" "$@"

for arch in "$@"; do
	bin=$out/$arch/ddhcpd
	[ -f "$bin" ] || {
		echo "ipk: $bin is missing (run scripts/cross.sh -o $out $arch)" >&2
		exit 1
	}
	work=$tmp/$arch
	root=$work/root
	ctl=$work/control
	pkg=$work/pkg
	mkdir -p "$root" "$ctl" "$pkg"
	chmod 0755 "$root" "$ctl"

	install -d -m 0755 "$root/usr/sbin" "$root/usr/libexec/rpcd" \
		"$root/etc/init.d" "$root/etc/config" "$root/etc/uci-defaults"
	install -m 0755 "$bin" "$root/usr/sbin/ddhcpd"
	ln -s ddhcpd "$root/usr/sbin/ddhcpctl"
	ln -s /usr/sbin/ddhcpd "$root/usr/libexec/rpcd/ddhcpd"
	install -m 0755 "$init" "$root/etc/init.d/ddhcpd"
	install -m 0600 "$conf" "$root/etc/config/ddhcpd" # OpenWrt's INSTALL_CONF
	install -m 0644 "$defaults" "$root/etc/uci-defaults/50-ddhcpd" # sourced, not run
	install -m 0755 "$fwdefaults" "$root/etc/uci-defaults/zzzz-ddhcpd-firewall"

	tarball "$root" "$pkg/data.tar.gz"
	size=$(gzip -dc "$pkg/data.tar.gz" | wc -c | tr -d ' ')

	# Field order as in OpenWrt's package-pack.mk. No Depends: the binary is
	# static (no libc, no interpreter), and procd, ubus and logger are part of
	# every OpenWrt base system.
	cat >"$ctl/control" <<EOF
Package: ddhcpd
Version: $pkgver
License: $LICENSE
Section: net
SourceDateEpoch: $SOURCE_DATE_EPOCH
Maintainer: $MAINTAINER
Architecture: $arch
Installed-Size: $size
Description: Decentralized DHCP server for mesh networks
 Every router of a mesh (Freifunk and alike) runs ddhcpd: the routers split
 one IPv4 pool into blocks, claim blocks by multicast on the mesh and serve
 DHCP to their own clients. Speaks the C ddhcpd's protocol. Configured in
 /etc/config/ddhcpd; ddhcpctl shows blocks and leases.
EOF
	echo /etc/config/ddhcpd >"$ctl/conffiles"
	# OpenWrt's default maintainer scripts (include/package-pack.mk).
	cat >"$ctl/postinst" <<'EOF'
#!/bin/sh
[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0
[ -s "${IPKG_INSTROOT}/lib/functions.sh" ] || exit 0
. "${IPKG_INSTROOT}/lib/functions.sh"
default_postinst "$0" "$@"
EOF
	cat >"$ctl/prerm" <<'EOF'
#!/bin/sh
[ -s "${IPKG_INSTROOT}/lib/functions.sh" ] || exit 0
. "${IPKG_INSTROOT}/lib/functions.sh"
default_prerm "$0" "$@"
EOF
	# The package's own parts, which default_postinst/default_prerm source.
	scripts/feed-script.sh postinst >"$ctl/postinst-pkg"
	scripts/feed-script.sh prerm >"$ctl/prerm-pkg"
	chmod 0644 "$ctl/control" "$ctl/conffiles"
	chmod 0755 "$ctl/postinst" "$ctl/prerm" "$ctl/postinst-pkg" "$ctl/prerm-pkg"
	tarball "$ctl" "$pkg/control.tar.gz"
	echo "2.0" >"$pkg/debian-binary"

	ipk=$out/ddhcpd_${pkgver}_$arch.ipk
	(cd "$pkg" && tar --format=gnu --numeric-owner --owner=0 --group=0 \
		--mtime="@$SOURCE_DATE_EPOCH" -cf - ./debian-binary ./data.tar.gz ./control.tar.gz) |
		gzip -9n >"$ipk.tmp"
	rm -f "$out"/ddhcpd_*_"$arch".ipk # one version per architecture in DIR
	mv "$ipk.tmp" "$ipk"
	echo "ipk: $ipk ($(wc -c <"$ipk" | tr -d ' ') bytes, installed $size bytes)"
done
