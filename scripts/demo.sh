#!/usr/bin/env bash
# The ddhcpd demo: three routers on one mesh link (a bridge, like batman-adv's
# bat0), each in its own network namespace with a client bridge (br-client)
# and two DHCP clients (busybox udhcpc) behind it. The routers split the pool
# into blocks by multicast and lease addresses from their own blocks; every
# two seconds the demo prints who owns what and which client holds which
# address. Router 3 loses power at DEMO_KILL_AT seconds and comes back at
# DEMO_RESTART_AT with its leases (state file). Ctrl-C (or DEMO_SECONDS) ends
# it and removes everything.
set -euo pipefail

bin=$(realpath "${1:-bin}")
seconds=${DEMO_SECONDS:-0}        # 0: until Ctrl-C
kill_at=${DEMO_KILL_AT:-30}
restart_at=${DEMO_RESTART_AT:-50}
pool=10.0.0.0/24
exp=2                              # blocks of 4 addresses
tag="ddd$$"                        # namespace prefix, unique per run
run=$(mktemp -d /tmp/ddhcpd-demo.XXXXXX)
routers=(r1 r2 r3)
declare -A pid

cleanup() {
	trap - EXIT INT TERM
	for p in "${pid[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	for ns in $(ip netns list | awk '{print $1}' | grep "^$tag-" || true); do
		ip netns del "$ns" 2>/dev/null || true
	done
	rm -rf "$run"
}
trap cleanup EXIT
trap 'echo; echo "stopping"; exit 0' INT TERM

nsx() { ip netns exec "$tag-$1" "${@:2}"; }
mkns() {
	ip netns add "$tag-$1"
	nsx "$1" ip link set lo up
	nsx "$1" sysctl -q -w net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
}

mkns hub
nsx hub ip link add br0 type bridge mcast_snooping 0 stp_state 0 forward_delay 0
nsx hub ip link set br0 up
# Client hook: configure the address and remember it for the report.
cat >"$run/udhcpc.sh" <<'SCRIPT'
#!/bin/sh
case "$1" in
bound|renew)
	ip addr flush dev "$interface"
	ip addr add "$ip/$mask" dev "$interface"
	echo "$1 $ip $serverid" >"$STATE"
	;;
deconfig) ip addr flush dev "$interface"; echo "none" >"$STATE" ;;
esac
SCRIPT
chmod +x "$run/udhcpc.sh"

i=0
for r in "${routers[@]}"; do
	i=$((i + 1))
	mkns "$r"
	ip link add bat0 netns "$tag-$r" type veth peer name "m$r" netns "$tag-hub"
	nsx hub ip link set "m$r" master br0 up
	nsx "$r" ip link set bat0 up
	nsx "$r" ip link add br-client type bridge
	nsx "$r" ip addr add "10.0.0.$i/24" dev br-client
	nsx "$r" ip link set br-client up
	for c in 1 2; do
		mkns "$r-c$c"
		ip link add "p$c" netns "$tag-$r" type veth peer name eth0 netns "$tag-$r-c$c"
		nsx "$r" ip link set "p$c" master br-client up
		nsx "$r-c$c" ip link set eth0 up
	done
done

start() {
	local r=$1
	# Not through nsx: a backgrounded function is a subshell, and $! must be
	# the daemon itself ("ip netns exec" execs it).
	# The routers' own addresses (10.0.0.1-3) are reserved on every router.
	ip netns exec "$tag-$r" "$bin/ddhcpd" -i bat0 -c br-client -N "$pool" -b "$exp" -s 4 -B 12 -t 4 \
		-inquire-interval 500ms -learning 3s -reserve 10.0.0.0/28 -lease-time 60s \
		-C "$run/$r.sock" -state "$run/$r" -v \
		</dev/null >>"$run/$r.log" 2>&1 &
	pid[$r]=$!
	echo ">>> $r starts (learning 3 s, then claims blocks of $((1 << exp)) for 4 spare leases)"
}

client() {
	local r=$1 c=$2
	STATE="$run/$r-c$c.lease" ip netns exec "$tag-$r-c$c" udhcpc -i eth0 -f -s "$run/udhcpc.sh" \
		-x hostname:"$r-c$c" </dev/null >>"$run/$r-c$c.log" 2>&1 &
	pid[$r-c$c]=$!
}

# The clients' addresses as they see them.
clients() {
	local r=$1 out="" c f
	for c in 1 2; do
		f=$run/$r-c$c.lease
		if [ -s "$f" ] && [ "$(cut -d' ' -f1 "$f")" != none ]; then
			out="$out c$c=$(cut -d' ' -f2 "$f")"
		else
			out="$out c$c=(waiting)"
		fi
	done
	echo "$out"
}

# What a router owns, as CIDR blocks, and how many foreign claims it knows.
report() {
	local r=$1 sock=$run/$1.sock
	if [ -z "${pid[$r]:-}" ] || ! kill -0 "${pid[$r]}" 2>/dev/null; then
		printf '  %-3s  (down)\n' "$r"
		return
	fi
	local node owned known
	# The socket may not be up yet: empty answers are fine.
	node=$("$bin/ddhcpctl" -C "$sock" status 2>/dev/null | awk '$1 == "node" {print $2}' || true)
	owned=$("$bin/ddhcpctl" -C "$sock" blocks 2>/dev/null | awk -v len=$((32 - exp)) '$3 == "ours" {printf "%s/%s ", $2, len}' || true)
	known=$("$bin/ddhcpctl" -C "$sock" blocks 2>/dev/null | awk '$3 == "claimed"' | wc -l || true)
	printf '  %-3s  node %s  owns: %-28s knows %s claims of others; clients:%s\n' "$r" "${node:-?}" "${owned:-(nothing yet)}" "$known" "$(clients "$r")"
}

# New interesting log lines since the last call.
declare -A seen
events() {
	for r in "${routers[@]}"; do
		local f=$run/$r.log n
		[ -f "$f" ] || continue
		n=$(wc -l <"$f")
		if [ "$n" -gt "${seen[$r]:-0}" ]; then
			tail -n +"$((${seen[$r]:-0} + 1))" "$f" | head -n "$((n - ${seen[$r]:-0}))" |
				grep -E 'block owned|block lost|defended|learning phase ended|released|dhcp lease|state restored' |
				sed -E "s/^time=[^ ]+ level=[A-Z]+ msg=/  $r: /" || true
			seen[$r]=$n
		fi
	done
}

echo "ddhcpd demo: pool $pool in blocks of $((1 << exp)); logs in $run"
start r1
client r1 1
client r1 2
t0=$SECONDS
started_r2=0 started_r3=0 killed=0 restarted=0
while :; do
	t=$((SECONDS - t0))
	if [ $started_r2 = 0 ] && [ $t -ge 2 ]; then start r2; client r2 1; client r2 2; started_r2=1; fi
	if [ $started_r3 = 0 ] && [ $t -ge 4 ]; then start r3; client r3 1; client r3 2; started_r3=1; fi
	if [ $killed = 0 ] && [ $t -ge "$kill_at" ]; then
		kill -9 "${pid[r3]}" 2>/dev/null || true
		wait "${pid[r3]}" 2>/dev/null || true
		echo ">>> r3 loses power (SIGKILL): its clients keep their addresses; its claims expire after 12 s"
		killed=1
	fi
	if [ $killed = 1 ] && [ $restarted = 0 ] && [ $t -ge "$restart_at" ]; then
		start r3
		restarted=1
	fi
	events
	echo "[${t}s]"
	for r in "${routers[@]}"; do
		[ "$r" = r2 ] && [ $started_r2 = 0 ] && continue
		[ "$r" = r3 ] && [ $started_r3 = 0 ] && continue
		report "$r"
	done
	if [ "$seconds" -gt 0 ] && [ $t -ge "$seconds" ]; then
		break
	fi
	sleep 2
done
