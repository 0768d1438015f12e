#!/usr/bin/env bash
# The ddhcpd demo. Three routers on one mesh link (a bridge, like
# batman-adv's bat0), each in its own network namespace with a client bridge
# (br-client) carrying the mesh's anycast gateway 10.0.0.1, and two DHCP
# clients (busybox udhcpc) behind it. The routers split the pool into blocks
# by multicast and lease addresses from their own blocks. Every two seconds
# the demo prints who owns which blocks and which client holds which address.
#
# The story:
#   DEMO_ROAM_AT (20 s)     client r1-c1 walks to router r2 and renews: r2
#                           forwards the renewal to r1 (the owner of its
#                           address) and the client keeps its address
#   DEMO_KILL_AT (35 s)     router r3 loses power; its clients keep their
#                           addresses, its claims expire after 12 s
#   DEMO_RESTART_AT (55 s)  r3 comes back with its leases (state file)
# Ctrl-C (or DEMO_SECONDS) ends it and removes everything it created.
set -euo pipefail

bin=$(realpath "${1:-bin}")
seconds=${DEMO_SECONDS:-0} # 0: until Ctrl-C
roam_at=${DEMO_ROAM_AT:-20}
kill_at=${DEMO_KILL_AT:-35}
restart_at=${DEMO_RESTART_AT:-55}
pool=10.0.0.0/24
exp=2     # blocks of 4 addresses
tag="ddd$$" # namespace prefix, unique per run
run=$(mktemp -d /tmp/ddhcpd-demo.XXXXXX)
routers=(r1 r2 r3)
clients=(r1-c1 r1-c2 r2-c1 r2-c2 r3-c1 r3-c2)
declare -A pid at

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

# Client hook: configure the address and remember it for the report.
cat >"$run/udhcpc.sh" <<'SCRIPT'
#!/bin/sh
case "$1" in
bound|renew)
	ip addr flush dev "$interface"
	ip addr add "$ip/$mask" dev "$interface"
	echo "$1 $ip" >"$STATE"
	;;
deconfig) ip addr flush dev "$interface"; echo "none" >"$STATE" ;;
esac
SCRIPT
chmod +x "$run/udhcpc.sh"

mkns hub
nsx hub ip link add br0 type bridge mcast_snooping 0 stp_state 0 forward_delay 0
nsx hub ip link set br0 up
i=0
for r in "${routers[@]}"; do
	i=$((i + 1))
	mkns "$r"
	ip link add bat0 netns "$tag-$r" type veth peer name "m$r" netns "$tag-hub"
	nsx hub ip link set "m$r" master br0 up
	nsx "$r" ip link set bat0 up
	nsx "$r" ip link add br-client type bridge stp_state 0 forward_delay 0
	nsx "$r" ip link set br-client address "02:dd:00:00:00:0$i" # fixed, as on a router
	nsx "$r" ip addr add 10.0.0.1/24 dev br-client             # the anycast gateway
	nsx "$r" ip link set br-client up
done
for c in "${clients[@]}"; do
	r=${c%%-*}
	mkns "$c"
	port="p${c/-/}" # pr1c1: unique, so it can move to another router
	ip link add "$port" netns "$tag-$r" type veth peer name eth0 netns "$tag-$c"
	nsx "$r" ip link set "$port" master br-client up
	nsx "$c" ip link set eth0 up
	at[$c]=$r
done

start() {
	local r=$1
	# Not through nsx: a backgrounded function is a subshell, and $! must be
	# the daemon itself ("ip netns exec" execs it).
	ip netns exec "$tag-$r" "$bin/ddhcpd" -i bat0 -c br-client -server-id 10.0.0.1 \
		-N "$pool" -b "$exp" -s 4 -B 12 -t 4 -inquire-interval 500ms -reserve 10.0.0.0/28 \
		-lease-time 60s -C "$run/$r.sock" -state "$run/$r" -v \
		</dev/null >>"$run/$r.log" 2>&1 &
	pid[$r]=$!
	echo ">>> $r starts: fast join (SYNC), then claims blocks of $((1 << exp)) for 4 spare leases"
}

client() {
	local c=$1
	# Retry every 2 s, not after udhcpc's default 20 s pause: a router that
	# is still claiming its first block answers a few seconds late.
	STATE="$run/$c.lease" ip netns exec "$tag-$c" udhcpc -i eth0 -f -s "$run/udhcpc.sh" \
		-T 2 -A 2 -x hostname:"$c" </dev/null >>"$run/$c.log" 2>&1 &
	pid[$c]=$!
}

# Whether client c holds an address.
has_lease() {
	local f=$run/$1.lease
	[ -s "$f" ] && [ "$(cut -d' ' -f1 "$f")" != none ]
}

# The addresses of the clients plugged into router r, as they see them.
clients_at() {
	local r=$1 out="" c f
	for c in "${clients[@]}"; do
		[ "${at[$c]}" = "$r" ] || continue
		f=$run/$c.lease
		if has_lease "$c"; then
			out="$out $c=$(cut -d' ' -f2 "$f")"
		else
			out="$out $c=(waiting)"
		fi
	done
	echo "$out"
}

report() {
	local r=$1 sock=$run/$1.sock
	if [ -z "${pid[$r]:-}" ] || ! kill -0 "${pid[$r]}" 2>/dev/null; then
		printf '  %-3s  (down)                                                  clients:%s\n' "$r" "$(clients_at "$r")"
		return
	fi
	local node owned leases
	# The socket may not be up yet: empty answers are fine.
	node=$("$bin/ddhcpctl" -C "$sock" status 2>/dev/null | awk '$1 == "node" {print $2}' || true)
	owned=$("$bin/ddhcpctl" -C "$sock" blocks 2>/dev/null | awk -v len=$((32 - exp)) '$3 == "ours" {printf "%s/%s ", $2, len}' || true)
	leases=$("$bin/ddhcpctl" -C "$sock" leases 2>/dev/null | awk '$2 == "assigned"' | wc -l || true)
	printf '  %-3s  node %s  owns: %-28s %s leases  clients:%s\n' "$r" "${node:-?}" "${owned:-(nothing yet)}" "$leases" "$(clients_at "$r")"
	[ -n "$node" ] && [ -n "$owned" ] || settled=0
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
				grep -E 'block owned|block lost|defended|learning phase ended|released|dhcp lease|state restored|roamed' |
				sed -E -e "s/^time=[^ ]+ level=[A-Z]+ msg=/  $r: /" -e 's/ (rtt|via|owner)=/ \1=/' || true
			seen[$r]=$n
		fi
	done
}

echo "ddhcpd demo: pool $pool in blocks of $((1 << exp)); logs in $run"
start r1
client r1-c1
client r1-c2
t0=$SECONDS
started_r2=0 started_r3=0 roamed=0 walked_at=0 killed=0 restarted=0
while :; do
	t=$((SECONDS - t0))
	if [ $started_r2 = 0 ] && [ $t -ge 2 ]; then start r2; client r2-c1; client r2-c2; started_r2=1; fi
	if [ $started_r3 = 0 ] && [ $t -ge 4 ]; then start r3; client r3-c1; client r3-c2; started_r3=1; fi
	# The walk waits for r1-c1's first lease: on a loaded machine r1 may
	# claim its first block later than usual.
	if [ $roamed = 0 ] && [ $t -ge "$roam_at" ] && has_lease r1-c1; then
		echo ">>> r1-c1 ($(cut -d' ' -f2 "$run/r1-c1.lease")) walks from r1 to r2 and renews its lease"
		nsx r1 ip link set pr1c1 netns "$tag-r2"
		nsx r2 ip link set pr1c1 master br-client up
		at[r1-c1]=r2
		kill -USR1 "${pid[r1-c1]}" 2>/dev/null || true # udhcpc: renew now
		roamed=1 walked_at=$t
	fi
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
	settled=1 # every router up owns blocks, every client has an address
	for c in "${clients[@]}"; do
		has_lease "$c" || settled=0
	done
	for r in "${routers[@]}"; do
		[ "$r" = r2 ] && [ $started_r2 = 0 ] && continue
		[ "$r" = r3 ] && [ $started_r3 = 0 ] && continue
		report "$r"
	done
	# A timed run ends with the mesh settled and, when the walk falls in
	# it, 6 s after the walk: on a loaded machine both may come late. It
	# never runs more than 30 s past its time.
	if [ "$seconds" -gt 0 ] && [ $t -ge "$seconds" ]; then
		if [ $t -ge $((seconds + 30)) ] || { [ $settled = 1 ] &&
			{ [ "$roam_at" -ge "$seconds" ] || { [ $roamed = 1 ] && [ $t -ge $((walked_at + 6)) ]; }; }; }; then
			break
		fi
	fi
	sleep 2
done
