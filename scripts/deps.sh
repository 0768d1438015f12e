#!/bin/sh
# Installs what ddhcpd's build, tests and demo need on a Debian machine:
# Debian packages when their commands are missing, and a Go toolchain new
# enough for go.mod. Debian 12 ships Go 1.19, which cannot fetch newer
# toolchains by itself, so it is used once to download the official toolchain
# module through the Go module proxy into /usr/local/go.
set -eu

cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
	echo "deps: run as root (apt-get, and the tests and demo use network namespaces)" >&2
	exit 1
fi

missing=""
need() { # need COMMAND PACKAGE
	command -v "$1" >/dev/null 2>&1 || missing="$missing $2"
}
need ip iproute2
need sysctl procps
need git git
need unzip unzip
need udhcpc udhcpc
need dhclient isc-dhcp-client
need tcpdump tcpdump
need chromium chromium
for extra in "$@"; do
	missing="$missing $extra"
done
if [ -n "$missing" ]; then
	echo "deps: installing$missing"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

# Go: the version go.mod asks for.
want=$(sed -nE 's/^go (1\.[0-9]+).*/\1/p' go.mod) # major.minor
PATH=/usr/local/go/bin:$PATH
minor() { echo "$1" | sed -nE 's/^(go)?1\.([0-9]+).*/\2/p'; }
have=""
if command -v go >/dev/null 2>&1; then
	have=$(go env GOVERSION 2>/dev/null || true)
fi
if [ -n "$have" ] && [ "$(minor "$have")" -ge "$(minor "$want")" ]; then
	exit 0
fi
if [ -n "$have" ] && [ "$(minor "$have")" -ge 21 ]; then
	exit 0 # Go 1.21+ fetches the toolchain go.mod names by itself
fi
echo "deps: installing Go $want (found: ${have:-none})"
command -v /usr/lib/go-1.19/bin/go >/dev/null 2>&1 || {
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-1.19-go ca-certificates >/dev/null
}
tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp"; rm -rf "$tmp"' EXIT
# Pick the newest patch release of the wanted minor version on the proxy.
mod=golang.org/toolchain
arch=$(dpkg --print-architecture)
[ "$arch" = armhf ] && arch=armv6l
versions=$(cd "$tmp" && GOPATH="$tmp/gp" GOFLAGS= /usr/lib/go-1.19/bin/go list -m -versions "$mod" 2>/dev/null | tr ' ' '\n' | grep -- "-go$want\.[0-9]*\.linux-$arch\$" || true)
ver=$(echo "$versions" | sort -V | tail -n 1)
[ -n "$ver" ] || ver="v0.0.1-go$want.0.linux-$arch"
(cd "$tmp" && GOPATH="$tmp/gp" GOMODCACHE="$tmp/mc" GOFLAGS= /usr/lib/go-1.19/bin/go mod download "$mod@$ver")
src="$tmp/mc/$mod@$ver"
rm -rf /usr/local/go
cp -a "$src" /usr/local/go
chmod -R u+w /usr/local/go
# Module zips carry no file modes; make the tools executable again.
chmod +x /usr/local/go/bin/* /usr/local/go/pkg/tool/*/*
/usr/local/go/bin/go version
