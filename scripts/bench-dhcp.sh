#!/usr/bin/env bash
# DHCP benchmark: full DORA exchanges driven by Kea's perfdhcp against ddhcpd,
# kea-dhcp4 (memfile leases, persisted, one thread) and dnsmasq, each in the
# same network namespace setup, in the same run:
#
#   ddbN-cli  eth0 10.0.255.1/16  --veth--  c0 10.0.255.254/16  ddbN-srv  bat0 --veth-- m0  ddbN-hub
#   (perfdhcp, a relay: giaddr           (the server; bat0 is ddhcpd's
#    10.0.255.1, unicast to :67)          mesh link to an empty hub)
#
# perfdhcp always acts as a relay agent in DHCPv4 (giaddr = its address,
# hops 1, unicast from port 67 to the server), so every server sees the same
# relayed traffic and answers to giaddr:67. The server runs on CPU 0 and
# perfdhcp on CPU 1 (BENCH_PIN=0 turns that off).
#
# Two scenarios, each with a fixed-rate run (BENCH_FIXED_RATE/s for
# BENCH_FIXED_SECS s) and a search for the highest rate with at most 1 % of
# DORA exchanges lost (BENCH_STEP_SECS s runs, doubling from
# BENCH_START_RATE, halving if that fails, then bisecting), with latencies,
# CPU time and RSS:
#   new        every exchange is a new client; a fresh server with an empty
#              lease file for every run;
#   returning  BENCH_RETURNING clients that all hold a lease (two prefill
#              passes) do the whole DORA again; one server for all runs.
# Prints Markdown tables and writes them with the commands, versions and
# machine to docs/benchmarks-dhcp.md (BENCH_DOC); text below the notes marker
# there is kept. Everything it creates (namespaces ddbPID-*, their links, a
# temp dir) is removed on exit, also on failure or Ctrl-C.
#
# usage: scripts/bench-dhcp.sh [BINDIR]     (as root; BINDIR holds ddhcpd)
set -euo pipefail

cd "$(dirname "$0")/.."
bin=$(realpath "${1:-bin}")
doc=${BENCH_DOC:-docs/benchmarks-dhcp.md}
step_secs=${BENCH_STEP_SECS:-4}   # length of one search step
start_rate=${BENCH_START_RATE:-100}
min_rate=${BENCH_MIN_RATE:-10}
max_rate=${BENCH_MAX_RATE:-12800}
bisect=${BENCH_BISECT:-2}
# A failed search step is run once more before it counts: one hiccup of the
# machine (a 100 ms stall) would otherwise end a server's search early.
retries=${BENCH_RETRIES:-1}
max_loss=${BENCH_MAX_LOSS:-1} # percent of DORA exchanges
fixed_rate=${BENCH_FIXED_RATE:-1000}
fixed_secs=${BENCH_FIXED_SECS:-10}
returning=${BENCH_RETURNING:-3000} # clients of the returning scenario
prefill_rate=${BENCH_PREFILL_RATE:-400}
pin=${BENCH_PIN:-1}
prio=${BENCH_NICE:-0} # nice value of the server and perfdhcp, e.g. -10 on a shared machine
servers_new=${BENCH_SERVERS_NEW-"ddhcpd kea dnsmasq"}
servers_ret=${BENCH_SERVERS_RETURNING-"ddhcpd kea dnsmasq ddhcpd-nostate"}
quiet_wait=${BENCH_QUIET_WAIT:-30} # per run, at most
quiet_budget=${BENCH_QUIET_BUDGET:-180} # in all
quiet_total=$quiet_budget

tag="ddb$$"
run=""
pids=()
added_policy=""

say() { echo ">>> $*" >&2; }

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$tag-" || true); do
		ip netns del "$ns" 2>/dev/null || true
	done
	[ -n "$added_policy" ] && rm -f /usr/sbin/policy-rc.d
	if [ -n "$run" ]; then
		if [ "${BENCH_KEEP:-0}" = 1 ] || { [ "$rc" != 0 ] && [ "$rc" != 130 ]; }; then
			echo "bench-dhcp: logs kept in $run" >&2
		else
			rm -rf "$run"
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "bench-dhcp: interrupted" >&2; exit 130' INT TERM

if [ "$(id -u)" != 0 ]; then
	echo "bench-dhcp: run as root (network namespaces)" >&2
	exit 1
fi

# --- what it needs -----------------------------------------------------------
missing=""
need() { command -v "$1" >/dev/null 2>&1 || missing="$missing $2"; }
need perfdhcp kea-admin
need kea-dhcp4 kea-dhcp4-server
need dnsmasq dnsmasq-base
need ip iproute2
need ss iproute2
need taskset util-linux
if [ -n "$missing" ]; then
	say "installing$missing"
	# The Kea package would start its system service (in the host namespace,
	# on no interface); keep package scripts from starting services.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod +x /usr/sbin/policy-rc.d
		added_policy=1
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
	if [ -n "$added_policy" ]; then
		rm -f /usr/sbin/policy-rc.d
		added_policy=""
	fi
fi
if [ ! -x "$bin/ddhcpd" ]; then
	say "building ddhcpd"
	make -s build
fi

run=$(mktemp -d /tmp/ddhcpd-bench-dhcp.XXXXXX)
chmod 755 "$run" # dnsmasq drops to nobody
# A copy, so a rebuild during the run changes nothing; it is ddhcpctl when
# called by that name.
cp "$bin/ddhcpd" "$run/ddhcpd"
ln -s ddhcpd "$run/ddhcpctl"
ddhcpd=$run/ddhcpd
ctl=$run/ddhcpctl
hz=$(getconf CLK_TCK)

# --- the namespaces ----------------------------------------------------------
srv_addr=10.0.255.254 # server side of the client link, server identifier
cli_addr=10.0.255.1   # perfdhcp: local address and giaddr
nsx() { ip netns exec "$tag-$1" "${@:2}"; }

lab_up() {
	local n
	for n in hub srv cli; do
		ip netns add "$tag-$n"
		nsx "$n" ip link set lo up
		nsx "$n" sysctl -q -w net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
	done
	ip link add bat0 netns "$tag-srv" type veth peer name m0 netns "$tag-hub"
	ip link add c0 netns "$tag-srv" type veth peer name eth0 netns "$tag-cli"
	nsx hub ip link set m0 up
	nsx srv ip link set bat0 up
	nsx srv ip addr add "$srv_addr/16" dev c0
	nsx srv ip link set c0 up
	nsx cli ip addr add "$cli_addr/16" dev eth0
	nsx cli ip link set eth0 up
}

lab_down() {
	local n
	for n in hub srv cli; do
		ip netns del "$tag-$n" 2>/dev/null || true
	done
}

cpu_srv=() cpu_cli=()
if [ "$prio" != 0 ]; then
	cpu_srv=(nice -n "$prio")
	cpu_cli=(nice -n "$prio")
fi
if [ "$pin" = 1 ]; then
	cpu_srv+=(taskset -c 0)
	cpu_cli+=(taskset -c 1)
fi

# --- the servers -------------------------------------------------------------
# Same pool everywhere: 10.0.0.0/16 less 10.0.255.0/24 (the link addresses),
# 65279 addresses, lease time 1 h, router option, replies to the relay.
# ddhcpd keeps more spare leases than the pool has and a block cap as large as the pool, so
# it claims all of it (510 blocks of 128) before a run, as the other servers
# own their whole pool.
pool_addrs=65279
pool_blocks=510
spare=65536
if [ $((max_rate * step_secs)) -gt "$pool_addrs" ] || [ $((fixed_rate * fixed_secs)) -gt "$pool_addrs" ]; then
	echo "bench-dhcp: RATE * SECONDS new clients must fit the pool ($pool_addrs addresses)" >&2
	exit 2
fi

# server_cmd NAME DIR: the command line of a server, one word a line.
server_cmd() {
	local name=$1 dir=$2
	case $name in
	ddhcpd | ddhcpd-nostate)
		printf '%s\n' "$ddhcpd" -i bat0 -c c0 -N 10.0.0.0/16 -b 7 -s "$spare" -max-blocks "$pool_blocks" -L \
			-server-id "$srv_addr" -reserve 10.0.255.0/24 -lease-time 1h -o 3:4:10.0.255.254 \
			-admit-rate 0 -C "$dir/ctl.sock" -state "$dir/state"
		if [ "$name" = ddhcpd-nostate ]; then
			printf '%s\n' -state-interval 1h
		fi
		;;
	kea)
		printf '%s\n' kea-dhcp4 -c "$dir/kea-dhcp4.json"
		;;
	dnsmasq)
		printf '%s\n' dnsmasq --no-daemon --conf-file=/dev/null --port=0 --no-resolv --no-hosts \
			--interface=c0 --bind-interfaces --dhcp-range=10.0.0.1,10.0.254.255,255.255.0.0,1h \
			--dhcp-option=option:router,10.0.255.254 --dhcp-lease-max=65536 --no-ping --quiet-dhcp \
			--dhcp-leasefile="$dir/dnsmasq.leases" --pid-file="$dir/dnsmasq.pid" --log-facility="$dir/dnsmasq.log"
		;;
	esac
}

kea_config() {
	local dir=$1
	cat <<EOF
{"Dhcp4": {
  "interfaces-config": {"interfaces": ["c0"]},
  "multi-threading": {"enable-multi-threading": false},
  "lease-database": {"type": "memfile", "persist": true, "name": "$dir/kea-leases4.csv", "lfc-interval": 0},
  "valid-lifetime": 3600,
  "subnet4": [{"id": 1, "subnet": "10.0.0.0/16",
    "pools": [{"pool": "10.0.0.1 - 10.0.254.255"}],
    "option-data": [{"name": "routers", "data": "10.0.255.254"}]}],
  "loggers": [{"name": "kea-dhcp4", "severity": "WARN",
    "output_options": [{"output": "$dir/kea-dhcp4.log"}]}]
}}
EOF
}

srv_pid=""
# start NAME DIR: starts the server in the server namespace and waits until it
# serves (ddhcpd: owns the whole pool).
start() {
	local name=$1 dir=$2 cmd
	mkdir -p "$dir"
	chmod 755 "$dir"
	mapfile -t cmd < <(server_cmd "$name" "$dir")
	if [ "$name" = kea ]; then
		kea_config "$dir" >"$dir/kea-dhcp4.json"
	fi
	# Straight exec chain (ip netns exec, taskset, the server): $! is the server.
	KEA_PIDFILE_DIR=$dir KEA_LOCKFILE_DIR=$dir \
		ip netns exec "$tag-srv" "${cpu_srv[@]}" "${cmd[@]}" </dev/null >"$dir/server.out" 2>&1 &
	srv_pid=$!
	pids+=("$srv_pid")
	local deadline=$((SECONDS + 60))
	while :; do
		if ! kill -0 "$srv_pid" 2>/dev/null; then
			echo "bench-dhcp: $name exited at start:" >&2
			tail -n 20 "$dir/server.out" "$dir"/*.log 2>/dev/null >&2 || true
			exit 1
		fi
		if ready "$name" "$dir"; then
			break
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "bench-dhcp: $name not ready after 60 s" >&2
			tail -n 20 "$dir/server.out" >&2 || true
			[[ $name == ddhcpd* ]] && "$ctl" -C "$dir/ctl.sock" status >&2
			exit 1
		fi
		sleep 0.5
	done
}

ready() {
	local name=$1 dir=$2 owned
	case $name in
	ddhcpd*)
		owned=$("$ctl" -C "$dir/ctl.sock" -json status 2>/dev/null | grep -o '"owned":[0-9]*' | cut -d: -f2 || true)
		[ -n "$owned" ] && [ "$owned" -ge "$pool_blocks" ]
		;;
	kea)
		# Kea's packet socket on c0 and its UDP socket on port 67.
		[ -n "$(nsx srv ss -H -lun 'sport = :67' 2>/dev/null)" ] && sleep 1
		;;
	dnsmasq)
		[ -n "$(nsx srv ss -H -lun 'sport = :67' 2>/dev/null)" ]
		;;
	esac
}

stop() {
	kill "$srv_pid" 2>/dev/null || true
	wait "$srv_pid" 2>/dev/null || true
}

# rss PID: "VmHWM VmRSS" in KiB.
rss() {
	awk '/^VmHWM:/ {h=$2} /^VmRSS:/ {r=$2} END {print h+0, r+0}' "/proc/$1/status"
}

# busy: busy clock ticks of all CPUs (user, nice, system, irq, softirq, steal).
busy() {
	awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat
}

# quiet: waits (at most quiet_wait s a run, quiet_budget s in all) until the
# machine's other work takes less than 15 % of one core over a second, so a
# run is not measured while other programs load the CPUs; the load during
# each run is reported anyway ("others").
quiet() {
	local deadline=$((SECONDS + quiet_wait)) b0 b1 warned="" t0=$SECONDS
	while [ "$quiet_budget" -gt 0 ]; do
		b0=$(busy)
		sleep 1
		b1=$(busy)
		if [ $((100 * (b1 - b0))) -lt $((15 * hz)) ] || [ "$SECONDS" -ge "$deadline" ]; then
			break
		fi
		if [ -z "$warned" ]; then
			say "  waiting for the machine to calm down (others use $((100 * (b1 - b0) / hz)) % of a core)"
			warned=1
		fi
	done
	quiet_budget=$((quiet_budget - (SECONDS - t0)))
}

# cputicks PID: user+system clock ticks of the whole process.
cputicks() {
	awk '{print $14 + $15}' "/proc/$1/stat"
}

# perf LOG RATE SECS CLIENTS: one perfdhcp run (perfdhcp -R numbers its client
# MACs in order, cycling through CLIENTS); prints "do_sent do_recv do_avg
# do_max ra_sent ra_recv ra_avg ra_max loss% perfdhcp_cpu_seconds".
perf() {
	local log=$1 rate=$2 secs=$3 clients=$4
	local cmd=(perfdhcp -4 -l "$cli_addr" -r "$rate" -p "$secs" -R "$clients" -s 1 -W 1000000 "$srv_addr")
	echo "# ${cmd[*]}" >"$log"
	timeout --foreground $((secs + 30)) ip netns exec "$tag-cli" "${cpu_cli[@]}" "${cmd[@]}" >>"$log" 2>&1 || true
	# CPU time of perfdhcp (and the small timeout and ip wrappers): the
	# children times of this subshell. The builtin writes to a file: in a
	# pipe or $(...) it would run in a subshell without children.
	times >"$log.times"
	local child
	child=$(sed -n 2p "$log.times" | awk '{n = 0; for (i = 1; i <= 2; i++) {split($i, t, /[ms]/); n += t[1] * 60 + t[2]} print n}')
	awk -v child="$child" '
	/Statistics for: DISCOVER-OFFER/ {s = "do"}
	/Statistics for: REQUEST-ACK/ {s = "ra"}
	/^sent packets:/ && s {v[s "sent"] = $3}
	/^received packets:/ && s {v[s "recv"] = $3}
	/^avg delay:/ && s {v[s "avg"] = $3}
	/^max delay:/ && s {v[s "max"] = $3}
	function g(k) { return (k in v) ? v[k] : "-" }
	END {
		sent = v["dosent"] + 0; got = v["rarecv"] + 0
		loss = sent > 0 ? 100 * (sent - got) / sent : 100
		printf "%s %s %s %s %s %s %s %s %.3f %s\n", g("dosent"), g("dorecv"), g("doavg"), g("domax"),
			g("rasent"), g("rarecv"), g("raavg"), g("ramax"), loss, child
	}' "$log"
}

field() { echo "$1" | awk -v i="$2" '{print $i}'; }
passes() { awk -v l="$1" -v m="$max_loss" 'BEGIN {exit !(l <= m)}'; }

ddhcpd_stats() { # DIR: the counters worth reporting, one line
	"$ctl" -C "$1/ctl.sock" stats 2>/dev/null |
		awk '$2 != 0 && /queue_dropped|send_errors|malformed|dhcp\.drop|tx\.error|dhcp\.rx |dhcp\.tx\.|state\.written|parked/ {printf "%s=%s ", $1, $2}'
	"$ctl" -C "$1/ctl.sock" -json status 2>/dev/null | grep -o '"leases":[0-9]*' | tr -d '"' | tr : =
}

# leases NAME DIR: the number of leases the server holds (or wrote).
leases() {
	case $1 in
	ddhcpd*) "$ctl" -C "$2/ctl.sock" -json status 2>/dev/null | grep -o '"leases":[0-9]*' | cut -d: -f2 ;;
	kea) tail -n +2 "$2/kea-leases4.csv" | cut -d, -f1 | sort -u | wc -l ;;
	dnsmasq) wc -l <"$2/dnsmasq.leases" ;;
	esac
}

declare -A R # results: R[scenario,server,key] and R[scenario,server,rate,key]

# measure SCEN NAME DIR KEY RATE SECS CLIENTS: one perfdhcp run against the
# running server; records the result, the server's CPU time and memory, the
# others' load and (ddhcpd) the counters under R[SCEN,NAME,KEY,*]; sets res.
measure() {
	local k="$1,$2,$4" dir=$3 rate=$5 secs=$6 clients=$7 t0 t1 b0 b1
	b0=$(busy)
	t0=$(cputicks "$srv_pid")
	res=$(perf "$dir/perfdhcp-$4.log" "$rate" "$secs" "$clients")
	t1=$(cputicks "$srv_pid")
	b1=$(busy)
	R[$k,res]=$res
	R[$k,cpu]=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v s="$secs" 'BEGIN {printf "%.0f", 100 * t / hz / (s + 1)}')
	# Busy CPU time of the machine not charged to the server or perfdhcp
	# (other programs, kernel work charged to neither), % of one core.
	R[$k,other]=$(awk -v b=$((b1 - b0)) -v t=$((t1 - t0)) -v p="$(field "$res" 10)" -v hz="$hz" -v s="$secs" \
		'BEGIN {o = (b - t) / hz - p; if (o < 0) o = 0; printf "%.0f", 100 * o / (s + 1)}')
	R[$k,rss]=$(rss "$srv_pid")
	R[$k,stats]=""
	if [[ $2 == ddhcpd* ]]; then
		R[$k,stats]=$(ddhcpd_stats "$dir")
	fi
}

# step_new NAME RATE SECS: scenario "new": a fresh server, RATE*SECS new clients.
step_new() {
	local name=$1 rate=$2 secs=$3 dir=$run/new-$1-$2
	quiet
	start "$name" "$dir"
	measure new "$name" "$dir" "$rate" "$rate" "$secs" $((rate * secs))
	stop
}

# step_ret NAME RATE SECS: scenario "returning": the running server, the
# prefilled clients again.
step_ret() {
	local name=$1 rate=$2 secs=$3
	quiet
	measure ret "$name" "$run/ret-$1" "$rate" "$rate" "$secs" "$returning"
}

# search SCEN NAME: the highest rate with at most max_loss % lost.
search() {
	local scen=$1 name=$2 r lo=0 hi=0 i mid loss
	say "$name ($scen): rate search (<= $max_loss % of DORA lost, $step_secs s steps)"
	try() {
		local left=$retries
		while :; do
			"step_$scen" "$name" "$1" "$step_secs"
			loss=$(field "$res" 9)
			say "  $1/s: $res  cpu ${R[$scen,$name,$1,cpu]}%  rss ${R[$scen,$name,$1,rss]}  others ${R[$scen,$name,$1,other]}%"
			R[$scen,$name,steps]+="$1:$loss"
			if [ "${R[$scen,$name,$1,other]}" -ge 10 ]; then
				R[$scen,$name,steps]+="(others ${R[$scen,$name,$1,other]}%)"
			fi
			R[$scen,$name,steps]+=" "
			passes "$loss" && return 0
			[ "$left" -gt 0 ] || return 1
			left=$((left - 1))
		done
	}
	r=$start_rate
	while [ "$r" -le "$max_rate" ]; do
		if try "$r"; then
			lo=$r
			r=$((r * 2))
		else
			hi=$r
			break
		fi
	done
	if [ "$lo" = 0 ]; then # the first rate was too much: halve
		r=$((start_rate / 2))
		while [ "$r" -ge "$min_rate" ]; do
			if try "$r"; then
				lo=$r
				break
			fi
			hi=$r
			r=$((r / 2))
		done
	fi
	if [ "$lo" -gt 0 ] && [ "$hi" -gt 0 ]; then
		for ((i = 0; i < bisect; i++)); do
			mid=$(((lo + hi) / 2))
			[ "$mid" -ge 200 ] && mid=$((mid / 25 * 25))
			[ "$mid" -le "$lo" ] && break
			if try "$mid"; then
				lo=$mid
			else
				hi=$mid
			fi
		done
	fi
	R[$scen,$name,rate]=$lo
	R[$scen,$name,capped]=$([ "$hi" = 0 ] && echo yes || echo no)
	R[$scen,$name,hi]=$hi
	say "  $name ($scen): $lo/s"
}

fixed() { # SCEN NAME
	say "$2 ($1): fixed rate $fixed_rate/s for $fixed_secs s"
	if [ "$1" = new ]; then
		quiet
		start "$2" "$run/new-$2-fixed"
		measure new "$2" "$run/new-$2-fixed" fixed "$fixed_rate" "$fixed_secs" $((fixed_rate * fixed_secs))
		stop
	else
		quiet
		measure ret "$2" "$run/ret-$2" fixed "$fixed_rate" "$fixed_secs" "$returning"
	fi
	local k="$1,$2,fixed"
	say "  ${R[$k,res]}  cpu ${R[$k,cpu]}%  rss ${R[$k,rss]}  others ${R[$k,other]}%"
}

for s in $servers_new; do
	lab_up
	fixed new "$s"
	search new "$s"
	lab_down
done

for s in $servers_ret; do
	lab_up
	dir=$run/ret-$s
	quiet
	start "$s" "$dir"
	# Prefill: two passes over the clients, so every one of them holds a
	# lease before the measured runs (ddhcpd answers the first DISCOVER of
	# an unknown client only within its admission rate, and any client
	# seen within the last minute).
	say "$s (returning): prefill, 2 x $returning clients at $prefill_rate/s"
	for pass in 1 2; do
		perf "$dir/prefill-$pass.log" "$prefill_rate" $(((returning + prefill_rate - 1) / prefill_rate)) "$returning" >/dev/null
		sleep 1
	done
	R[ret,$s,prefilled]=$(leases "$s" "$dir")
	say "  $s: ${R[ret,$s,prefilled]} leases"
	fixed ret "$s"
	search ret "$s"
	stop
	lab_down
done

# --- report ------------------------------------------------------------------
label() {
	case $1 in
	ddhcpd) echo "ddhcpd" ;;
	ddhcpd-nostate) echo "ddhcpd, state file not rewritten (diagnostic)" ;;
	kea) echo "kea-dhcp4 (memfile)" ;;
	dnsmasq) echo "dnsmasq" ;;
	*) echo "$1" ;;
	esac
}
f() { awk -v x="$1" 'BEGIN {if (x == "-" || x == "") print "–"; else printf "%.2f", x}'; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
ratio() { # A B: A/B with two decimals, or –
	awk -v a="$1" -v b="$2" 'BEGIN {if (a == "-" || b == "-" || a == "" || b == "" || b + 0 == 0) print "–"; else printf "%.2f", a / b}'
}
sum() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "-" || b == "-") print "-"; else printf "%.3f", a + b}'; }
maxof() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "-" || b == "-") print "-"; else print (a > b ? a : b)}'; }
in_list() { [[ " $2 " == *" $1 "* ]]; }

# row SCEN NAME KEY FIRST: one table row of run R[SCEN,NAME,KEY,*].
row() {
	local k="$1,$2,$3" a hwm vrss
	read -ra a <<<"${R[$k,res]:-- - - - - - - - - -}"
	read -r hwm vrss <<<"${R[$k,rss]:-0 0}"
	echo "| $(label "$2") | $4 | $(f "${a[8]}") % | $(f "${a[2]}") / $(f "${a[6]}") | $(f "${a[3]}") / $(f "${a[7]}") | ${R[$k,cpu]:-–} % | $(mib "$hwm") | $(mib "$vrss") | ${R[$k,other]:-–} % |"
}

tables() { # SCEN SERVERS
	local scen=$1 servers=$2 s rate
	echo "Highest rate with at most $max_loss % of DORA exchanges lost ($step_secs s runs), and the run at that rate:"
	echo
	echo "| server | DORA/s | lost | avg latency D-O / R-A (ms) | max latency D-O / R-A (ms) | server CPU | VmHWM (MiB) | VmRSS (MiB) | others |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	for s in $servers; do
		rate=${R[$scen,$s,rate]}
		if [ "$rate" = 0 ]; then
			rate="< $min_rate"
		elif [ "${R[$scen,$s,capped]}" = yes ]; then
			rate="≥ $rate (search limit)"
		fi
		row "$scen" "$s" "${R[$scen,$s,rate]}" "$rate"
	done
	echo
	echo "Fixed rate, $fixed_rate DORA/s for $fixed_secs s:"
	echo
	echo "| server | DORA/s | lost | avg latency D-O / R-A (ms) | max latency D-O / R-A (ms) | server CPU | VmHWM (MiB) | VmRSS (MiB) | others |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	for s in $servers; do
		row "$scen" "$s" fixed "$fixed_rate"
	done
	if in_list ddhcpd "$servers" && in_list kea "$servers"; then
		local d k dh dr kh kr fd fk fdh fdr fkh fkr
		read -ra d <<<"${R[$scen,ddhcpd,${R[$scen,ddhcpd,rate]},res]:-- - - - - - - - - -}"
		read -ra k <<<"${R[$scen,kea,${R[$scen,kea,rate]},res]:-- - - - - - - - - -}"
		read -r dh dr <<<"${R[$scen,ddhcpd,${R[$scen,ddhcpd,rate]},rss]:-- -}"
		read -r kh kr <<<"${R[$scen,kea,${R[$scen,kea,rate]},rss]:-- -}"
		read -ra fd <<<"${R[$scen,ddhcpd,fixed,res]}"
		read -ra fk <<<"${R[$scen,kea,fixed,res]}"
		read -r fdh fdr <<<"${R[$scen,ddhcpd,fixed,rss]}"
		read -r fkh fkr <<<"${R[$scen,kea,fixed,rss]}"
		echo
		echo "ddhcpd / Kea (avg latency: D-O + R-A; max latency: the larger of the two; in the search column each server at its own highest rate):"
		echo
		echo "| figure | search | fixed $fixed_rate/s |"
		echo "|---|---:|---:|"
		echo "| DORA/s | $(ratio "${R[$scen,ddhcpd,rate]}" "${R[$scen,kea,rate]}") | – |"
		echo "| lost | – | $(ratio "${fd[8]}" "${fk[8]}") |"
		echo "| avg latency | $(ratio "$(sum "${d[2]}" "${d[6]}")" "$(sum "${k[2]}" "${k[6]}")") | $(ratio "$(sum "${fd[2]}" "${fd[6]}")" "$(sum "${fk[2]}" "${fk[6]}")") |"
		echo "| max latency | $(ratio "$(maxof "${d[3]}" "${d[7]}")" "$(maxof "${k[3]}" "${k[7]}")") | $(ratio "$(maxof "${fd[3]}" "${fd[7]}")" "$(maxof "${fk[3]}" "${fk[7]}")") |"
		echo "| server CPU | $(ratio "${R[$scen,ddhcpd,${R[$scen,ddhcpd,rate]},cpu]:-}" "${R[$scen,kea,${R[$scen,kea,rate]},cpu]:-}") | $(ratio "${R[$scen,ddhcpd,fixed,cpu]}" "${R[$scen,kea,fixed,cpu]}") |"
		echo "| VmHWM | $(ratio "$dh" "$kh") | $(ratio "$fdh" "$fkh") |"
		echo "| VmRSS | $(ratio "$dr" "$kr") | $(ratio "$fdr" "$fkr") |"
	fi
}

details() { # SCEN SERVERS: search steps and ddhcpd counters
	local scen=$1 servers=$2 s hi a
	echo "Search steps, rate/s:% lost:"
	echo
	for s in $servers; do
		echo "- $(label "$s"): ${R[$scen,$s,steps]}"
	done
	echo
	echo "ddhcpd counters (\`ddhcpctl stats\`, the non-zero ones of interest, and the lease count; counted from the server's start):"
	echo
	for s in $servers; do
		[[ $s == ddhcpd* ]] || continue
		echo "- $(label "$s"), fixed $fixed_rate/s: \`${R[$scen,$s,fixed,stats]}\`"
		echo "- $(label "$s"), ${R[$scen,$s,rate]}/s (highest): \`${R[$scen,$s,${R[$scen,$s,rate]},stats]:-}\`"
		hi=${R[$scen,$s,hi]}
		if [ "$hi" != 0 ]; then
			read -ra a <<<"${R[$scen,$s,$hi,res]}"
			echo "- $(label "$s"), $hi/s (first rate over the limit, $(f "${a[8]}") % lost): \`${R[$scen,$s,$hi,stats]}\`"
		fi
	done
}

report_new=""
report_ret=""
[ -n "$servers_new" ] && report_new=$(tables new "$servers_new")
[ -n "$servers_ret" ] && report_ret=$(tables ret "$servers_ret")
echo
if [ -n "$report_new" ]; then
	echo "New clients:"
	echo
	echo "$report_new"
	echo
fi
if [ -n "$report_ret" ]; then
	echo "Returning clients:"
	echo
	echo "$report_ret"
fi

cmdline() { # NAME: the server command with the temp dir shown as DIR
	local name=$1 w out=""
	while IFS= read -r w; do
		case $w in
		*[[:space:]]*) out+="'$w' " ;;
		*) out+="$w " ;;
		esac
	done < <(server_cmd "$name" DIR | sed "s|^$run/ddhcpd\$|bin/ddhcpd|")
	echo "${out% }"
}

prefilled() {
	local s
	for s in $servers_ret; do
		printf '%s %s, ' "$(label "$s")" "${R[ret,$s,prefilled]}"
	done | sed 's/, $//'
}

cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
marker='<!-- notes below this line are kept when scripts/bench-dhcp.sh rewrites this file -->'
notes=""
if [ -f "$doc" ] && grep -qF "$marker" "$doc"; then
	notes=$(awk -v m="$marker" 'found {print} $0 == m {found = 1}' "$doc")
fi
pinned=""
[ "$pin" = 1 ] && pinned=1
all_servers=$(echo "$servers_new $servers_ret" | tr ' ' '\n' | awk 'NF && !seen[$0]++')
{
	cat <<EOF
# DHCP benchmark: ddhcpd, Kea, dnsmasq

Written by \`scripts/bench-dhcp.sh\` on $(date -u +%Y-%m-%d). Full DORA exchanges
(DISCOVER, OFFER, REQUEST, ACK) driven by Kea's \`perfdhcp\` through a relay
address, every lease persisted$([ -n "$pinned" ] && echo ", every server on one CPU core").
Latencies are perfdhcp's DISCOVER→OFFER (D-O) and REQUEST→ACK (R-A)
delays; "lost" is the share of exchanges that did not end with an ACK within
1 s; "others" is CPU time the machine spent meanwhile on work charged to
neither the server nor perfdhcp (a shared machine: figures with a high value
there are less trustworthy).
EOF
	if [ -n "$report_new" ]; then
		cat <<EOF

## New clients

Every exchange is a new client (\`perfdhcp -R RATE*SECONDS\`), every run a
fresh server with an empty lease file: a crowd arriving at once.

$report_new

$(details new "$servers_new")
EOF
	fi
	if [ -n "$report_ret" ]; then
		cat <<EOF

## Returning clients

$returning clients (\`perfdhcp -R $returning\`, cycling) that all hold a lease
do the whole DORA again: one server for all runs, prefilled by two passes
over the clients at $prefill_rate/s (leases held then: $(prefilled)).

$report_ret

$(details ret "$servers_ret")
EOF
	fi
	cat <<EOF

## Machine and versions

- $(nproc) cores, $cpu, $(free -g | awk '/^Mem:/ {print $2}') GiB, Linux $(uname -r), Debian $(cat /etc/debian_version)
- $("$ddhcpd" -V 2>&1 | head -n 1)
- kea-dhcp4 $(kea-dhcp4 -V 2>&1 | head -n 1), perfdhcp $(perfdhcp -v 2>&1 | head -n 1 | sed 's/^VERSION: //')
- $(dnsmasq -v 2>&1 | head -n 1)

## How it was measured

Three network namespaces, made anew for each server and scenario: \`cli\`
(perfdhcp, eth0 $cli_addr/16), \`srv\` (the server: c0 $srv_addr/16 on a veth
to cli's eth0, and bat0 on a veth to an empty \`hub\` namespace, ddhcpd's
mesh link). perfdhcp in DHCPv4 always acts as a relay agent: it sets giaddr
to its address ($cli_addr) and hops to 1, and sends by unicast from port 67
to $srv_addr:67; every server answers to giaddr:67, so all three see the
same traffic. $([ -n "$pinned" ] && echo "The server runs on CPU 0 (\`taskset -c 0\`; Go then runs with GOMAXPROCS 1) and perfdhcp on CPU 1." || echo "Nothing was pinned to a CPU.")$([ "$prio" != 0 ] && echo " Both run with \`nice -n $prio\`, ahead of other programs on the machine.")

Same pool everywhere: 10.0.0.0/16 less 10.0.255.0/24 (the link
addresses), $pool_addrs addresses; lease time 1 h; router option. ddhcpd keeps
more spare leases than the pool holds and may own all of it (\`-s $spare
-max-blocks $pool_blocks\`, blocks of 128), so it claims the whole pool
($pool_blocks blocks) as the other servers own theirs; a server counts as started when
\`ddhcpctl -json status\` reports them all \`owned\` (with \`-L\`: one
inquiry round, about 3 s). No block is claimed during a run. ddhcpd runs
with \`-admit-rate 0\`: its default admission control answers the first
DISCOVERs of unknown clients at 20 per second (a defence against
random-MAC floods, where real clients retransmit), and perfdhcp's clients
never retransmit, so with the default it would measure the limit.

Leases are persisted by every server, each in its own way: ddhcpd rewrites
its whole state file (\`DIR/state/state.json\`: leases and owned blocks,
fsync and rename) at most every \`-state-interval\` (default 1 s), on a
writer goroutine to which its event loop hands the leases changed since
the last write; Kea's memfile appends each lease change to its CSV file (LFC off:
\`lfc-interval\` 0); dnsmasq rewrites its lease file after changes. The
diagnostic row is ddhcpd with \`-state-interval 1h\`: the state file is
written once at the first lease and at exit, which shows what the periodic
rewrite costs; it is not a configuration to run.

Per server and scenario: one run at $fixed_rate DORA/s for $fixed_secs s; then
the search: $step_secs s runs from $start_rate/s, doubling while at most
$max_loss % of the exchanges are lost (halving down to $min_rate/s if
$start_rate/s already fails), then up to $bisect bisection steps between the
last good and the first bad rate, up to $max_rate/s. A step that fails is
run again, up to $retries more time(s), and fails only if every try does;
the search steps below list every try. Lost = 1 − ACKs
received / DISCOVERs sent; perfdhcp counts a reply later than 1 s as lost and
waits 1 s after the last request (\`-W 1000000\`). Server CPU is the
user+system time of the server process over the run and the 1 s wait
(/proc/PID/stat) divided by that time; VmHWM (peak since start) and VmRSS
are read from /proc/PID/status right after the run. "others" is the
machine's busy CPU time during the run (/proc/stat) less the server's and
perfdhcp's, in % of one core. $(if [ "$quiet_total" -gt 0 ]; then echo "Before every run the script waited up to $quiet_wait s (at most $quiet_total s in all) for other programs to use less than 15 % of a core."; else echo "The script did not wait for a quiet machine (\`BENCH_QUIET_BUDGET=0\`)."; fi) Each
figure is a single sample: expect some percent of noise between runs.

perfdhcp (in the cli namespace$([ -n "$pinned" ] && echo ", \`taskset -c 1\`")), CLIENTS = RATE × SECONDS for new clients, $returning for returning ones:

\`\`\`
perfdhcp -4 -l $cli_addr -r RATE -p SECONDS -R CLIENTS -s 1 -W 1000000 $srv_addr
\`\`\`

Servers (in the srv namespace$([ -n "$pinned" ] && echo ", \`taskset -c 0\`"); DIR is a fresh temp directory):

\`\`\`
$(for s in $all_servers; do cmdline "$s"; done)
\`\`\`

Kea's configuration, \`DIR/kea-dhcp4.json\` (Kea 2.2 defaults otherwise: raw
sockets, no host reservations), run with \`KEA_PIDFILE_DIR\` and
\`KEA_LOCKFILE_DIR\` set to DIR:

\`\`\`json
$(kea_config DIR)
\`\`\`

Run it with \`make bench\` or \`scripts/bench-dhcp.sh [BINDIR]\` (as root, about
10 minutes; \`BENCH_SERVERS_NEW\`, \`BENCH_SERVERS_RETURNING\` (lists, may be
empty), \`BENCH_FIXED_RATE\`, \`BENCH_STEP_SECS\`, \`BENCH_RETURNING\`,
\`BENCH_PIN=0\`, \`BENCH_NICE=-10\` on a shared machine, \`BENCH_KEEP=1\` to keep the logs, \`BENCH_DOC=FILE\` to
write elsewhere).

$marker
EOF
	if [ -n "$notes" ]; then
		printf '%s\n' "$notes"
	fi
} >"$doc.tmp"
mv "$doc.tmp" "$doc"
say "written $doc"
