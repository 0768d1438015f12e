#!/bin/sh
# Prints one maintainer script part of the OpenWrt feed's package,
# "define Package/ddhcpd/NAME" in openwrt/ddhcpd/Makefile, as the SDK's
# package-pack.mk writes it into the package: the lines between the define
# and its endef, with make's $$ turned into $.
#
#   scripts/feed-script.sh NAME      (postinst, prerm)
#
# scripts/ipk.sh packs them as postinst-pkg and prerm-pkg; make shellcheck
# checks them.
set -eu

[ $# -eq 1 ] || {
	echo "usage: $0 postinst|prerm" >&2
	exit 2
}
cd "$(dirname "$0")/.."
out=$(awk -v start="define Package/ddhcpd/$1" '
	$0 == "endef" { on = 0 }
	on { gsub(/\$\$/, "$"); print }
	$0 == start { on = 1 }
' openwrt/ddhcpd/Makefile)
[ -n "$out" ] || {
	echo "$0: openwrt/ddhcpd/Makefile has no define Package/ddhcpd/$1" >&2
	exit 1
}
printf '%s\n' "$out"
