#!/usr/bin/env bash
# Cluster benchmark (issue 16): Debian's nutcracker (twemproxy, ketama) in
# front of three memcached -t 1, against three shoal nodes -t 1 (an
# embedded etcd in the first, --dev), under the same load from
# bench/loadgen.
#
#   ROUNDS=3 DURATION=10s REPLICAS="1 2" ./bench/cluster.sh
#
# Set-ups, each started fresh for every run, alternated A B C D A B C D for
# ROUNDS rounds, medians reported:
#   twem    nutcracker + 3 memcached; all connections to the proxy
#   spread  3 shoal nodes; connections spread over the three (clients of
#           a cluster)
#   one     3 shoal nodes; all connections through node 1 (as a proxy)
#   ring    3 shoal nodes; loadgen -ring: the ring-aware Go client
#           (package client on gomemcache), each key sent to its owner;
#           gomemcache pools per node, so up to CONNS connections per node
#   direct  the ring's baseline: the same gomemcache client sending each
#           key straight to its owner from one snapshot of the ring
#           (loadgen -ring -static: no refresh, no failover)
# Load: CONNS connections, 90 % gets of PRELOAD_KEYS keys preloaded,
# 100 B values; closed loop (full speed) at each depth of DEPTHS
# (requests in flight per connection; the ring client runs depth 1 only:
# gomemcache waits for each reply). With RATE set, the
# same at a fixed request rate (open loop) too, so CPU per request is
# compared at equal work. CPU is utime+stime from /proc/<pid>/stat summed
# over every process of the set-up (nutcracker and the three memcached;
# the three shoal nodes, etcd included) over the measured window.
# --replicas applies to shoal only; nutcracker keeps one copy.
set -uo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-1s}
PRELOAD_KEYS=${PRELOAD_KEYS:-100000}
CONNS=${CONNS:-32}
REPLICAS=${REPLICAS:-"1 2"}
VARIANTS=${VARIANTS:-"twem spread one ring direct"}
DEPTHS=${DEPTHS:-"1 16"}
RATE=${RATE:-} # open-loop requests/s; empty: closed loop only
MEMCACHED=${MEMCACHED:-/usr/bin/memcached}
NUTCRACKER=${NUTCRACKER:-/usr/sbin/nutcracker}

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
for b in "$MEMCACHED" "$NUTCRACKER"; do
	if [ ! -x "$b" ]; then
		echo "cluster.sh: $b not found; apt-get install -y memcached nutcracker" >&2
		exit 2
	fi
done

TMP=$(mktemp -d /tmp/shoal-cluster-bench.XXXXXX)
RES=$TMP/results
mkdir -p "$RES"
PIDS=() # every process of the running set-up
cleanup() {
	stop_all
	[ -n "${KEEP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

echo "building shoal and loadgen into $TMP" >&2
(cd "$ROOT" && go build -o "$TMP/shoal" . && go build -o "$TMP/loadgen" ./bench/loadgen) || exit 1
LG=$TMP/loadgen
CLK_TCK=$(getconf CLK_TCK)
kv() { awk -F= -v k="$1" '$1 == k {print $2}' "$2"; }
port() { "$LG" freeport; }
joined() { local IFS=,; echo "$*"; }

# stop_all: SIGTERM every process of the set-up, SIGKILL after 5 s.
stop_all() {
	local p i
	[ ${#PIDS[@]} -gt 0 ] || return 0
	kill -TERM "${PIDS[@]}" 2>/dev/null
	for i in $(seq 50); do
		for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && break; done
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "${PIDS[@]}" 2>/dev/null
	wait "${PIDS[@]}" 2>/dev/null
	PIDS=()
}

# ring_members ADDR: the member count of the ring the node serves.
ring_members() {
	local host=${1%:*} p=${1##*:} line n=0
	exec 3<>"/dev/tcp/$host/$p" || return 1
	printf 'stats ring\r\n' >&3
	while IFS= read -r -t 2 line <&3; do
		line=${line%$'\r'}
		[ "$line" = END ] || [ "$line" = ERROR ] && break
		case $line in "STAT ring_members "*) n=${line##* } ;; esac
	done
	exec 3<&-
	echo "$n"
}

# start_twem DIR: three memcached and nutcracker; sets ENTRY and ALL.
start_twem() {
	local dir=$1 i p ports=() user=()
	[ "$(id -u)" = 0 ] && user=(-u root)
	for i in 1 2 3; do
		p=$(port) || return 1
		"$MEMCACHED" "${user[@]}" -U 0 -t 1 -m 64 -c 4096 -l 127.0.0.1 -p "$p" >"$dir/memcached$i.log" 2>&1 &
		PIDS+=($!)
		ports+=("$p")
	done
	for p in "${ports[@]}"; do "$LG" wait -addr "127.0.0.1:$p" >/dev/null || return 1; done
	p=$(port) || return 1
	{
		echo "bench:"
		echo "  listen: 127.0.0.1:$p"
		echo "  hash: fnv1a_64"
		echo "  distribution: ketama"
		echo "  timeout: 2000"
		echo "  preconnect: true"
		echo "  servers:"
		for i in 0 1 2; do echo "   - 127.0.0.1:${ports[$i]}:1 mc$i"; done
	} >"$dir/nutcracker.yml"
	"$NUTCRACKER" -c "$dir/nutcracker.yml" -s "$(port)" -a 127.0.0.1 -o "$dir/nutcracker.log" &
	PIDS+=($!)
	ENTRY=127.0.0.1:$p
	ALL=$ENTRY
	BACKENDS=127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}
	"$LG" wait -addr "$ENTRY" >/dev/null
}

# start_shoal DIR REPLICAS: three nodes, the first with the --dev etcd;
# waits until every node serves a ring of three. Sets ENTRY (node 1) and
# ALL (the three).
start_shoal() {
	local dir=$1 reps=$2 e i p addrs=() flags=(-t 1 -m 64 -c 4096 -l 127.0.0.1 --lease-ttl 5)
	e=$(port) || return 1
	for i in 1 2 3; do
		p=$(port) || return 1
		if [ $i = 1 ]; then
			"$TMP/shoal" "${flags[@]}" -p "$p" --node s1 --dev --dev-etcd "127.0.0.1:$e" --replicas "$reps" >"$dir/shoal1.log" 2>&1 &
		else
			"$TMP/shoal" "${flags[@]}" -p "$p" --node "s$i" --etcd "http://127.0.0.1:$e" >"$dir/shoal$i.log" 2>&1 &
		fi
		PIDS+=($!)
		addrs+=("127.0.0.1:$p")
		# The first node creates the cluster (and its etcd) alone.
		[ $i = 1 ] && { "$LG" wait -addr "127.0.0.1:$p" -timeout 30s >/dev/null || return 1; }
	done
	for i in $(seq 300); do
		local ok=1
		for p in "${addrs[@]}"; do [ "$(ring_members "$p" 2>/dev/null)" = 3 ] || ok=0; done
		[ $ok = 1 ] && break
		sleep 0.1
	done
	[ $ok = 1 ] || { log "shoal nodes did not form a ring of 3"; return 1; }
	ENTRY=${addrs[0]}
	ALL=$(joined "${addrs[@]}")
	BACKENDS=$ALL
}

record() { echo "$3" >>"$RES/$1.$2"; } # record FIGURE VARIANT VALUE

# one VARIANT REPLICAS ROUND
one() {
	local v=$1 reps=$2 r=$3 dir addr ring=() ok=0 out
	dir=$TMP/$v.r$reps.$r
	mkdir -p "$dir"
	out=$dir/out
	case $v in
	twem) start_twem "$dir" ;;
	*) start_shoal "$dir" "$reps" ;;
	esac || { log "$v did not start; logs in $dir"; tail -n 5 "$dir"/*.log >&2; stop_all; return 1; }
	case $v in
	twem | one) addr=$ENTRY ;;
	spread) addr=$ALL ;;
	ring) addr=$ALL ring=(-ring) ;;
	direct) addr=$ALL ring=(-ring -static) ;;
	esac
	local pids
	pids=$(joined "${PIDS[@]}")
	if ! "$LG" fill -addr "$addr" -stats "$BACKENDS" -keys "$PRELOAD_KEYS" -value 100 >"$out.fill" 2>&1; then
		log "fill on $v failed: $(cat "$out.fill")"; ok=1
	else
		local d
		for d in $DEPTHS; do
			case $v in ring | direct) [ "$d" != 1 ] && continue ;; esac
			if ! "$LG" throughput -addr "$addr" "${ring[@]}" -conns "$CONNS" -depth "$d" -get 0.9 -value 100 \
				-keys "$PRELOAD_KEYS" -warmup "$WARMUP" -duration "$DURATION" -pid "$pids" -clk-tck "$CLK_TCK" >"$out.d$d" 2>&1; then
				log "throughput on $v at depth $d failed: $(cat "$out.d$d")"; ok=1
				continue
			fi
			record "tput_r${reps}_d$d" "$v" "$(kv ops_per_sec "$out.d$d")"
			record "opcpu_r${reps}_d$d" "$v" "$(kv ops_per_cpu_sec "$out.d$d")"
			[ "$(kv errors "$out.d$d")" = 0 ] || log "$v depth $d: $(kv errors "$out.d$d") errors"
		done
	fi
	if [ $ok = 0 ] && [ -n "$RATE" ] && [ ${#ring[@]} = 0 ]; then
		if ! "$LG" latency -addr "$addr" -conns "$CONNS" -rate "$RATE" -get 0.9 -value 100 \
			-keys "$PRELOAD_KEYS" -warmup "$WARMUP" -duration "$DURATION" -pid "$pids" -clk-tck "$CLK_TCK" >"$out.rate" 2>&1; then
			log "latency on $v failed: $(cat "$out.rate")"; ok=1
		else
			record "rate_r$reps" "$v" "$(kv rate_achieved "$out.rate")"
			record "rateopcpu_r$reps" "$v" "$(kv ops_per_cpu_sec "$out.rate")"
			record "p99_r$reps" "$v" "$(kv p99_us "$out.rate")"
			local i=0 x
			for x in $(kv pid_cpu_us_per_op "$out.rate" | tr ',' ' '); do
				i=$((i + 1))
				record "pidus_r${reps}_$i" "$v" "${x#*:}"
			done
		fi
	fi
	for p in "${PIDS[@]}"; do
		kill -0 "$p" 2>/dev/null || { log "$v: pid $p died; logs in $dir"; ok=1; }
	done
	stop_all
	[ $ok = 0 ] || record failures "$v" "r$reps round $r"
	return $ok
}

median() { # median FILE: median of the numeric lines, NA if none
	[ -s "$1" ] || { echo NA; return; }
	grep -E '^[0-9.eE+-]+$' "$1" | sort -g | awk '{a[NR]=$1} END {
		if (NR == 0) {print "NA"; exit}
		if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "NA" || b == "NA" || b == 0) print "NA"; else printf "%.2f", a/b }'; }

START=$(date +%s)
for reps in $REPLICAS; do
	for r in $(seq "$ROUNDS"); do
		for v in $VARIANTS; do
			log "replicas $reps round $r/$ROUNDS: $v"
			one "$v" "$reps" "$r"
		done
	done
done

echo
echo "# cluster benchmark: $(nproc) cores, $(uname -r), ROUNDS=$ROUNDS DURATION=$DURATION CONNS=$CONNS, 90% gets, 100 B values, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# medians; ratio = variant / twem (nutcracker + 3 memcached -t 1); --replicas is shoal's"
printf '%-8s %-6s %-8s %12s %8s %16s %8s\n' replicas depth variant ops/s ratio ops/cpu-s ratio
for reps in $REPLICAS; do
	for d in $DEPTHS; do
		bt=$(median "$RES/tput_r${reps}_d$d.twem")
		bc=$(median "$RES/opcpu_r${reps}_d$d.twem")
		for v in $VARIANTS; do
			case $v in ring | direct) [ "$d" != 1 ] && continue ;; esac
			t=$(median "$RES/tput_r${reps}_d$d.$v")
			c=$(median "$RES/opcpu_r${reps}_d$d.$v")
			printf '%-8s %-6s %-8s %12s %8s %16s %8s\n' "$reps" "$d" "$v" "$t" "$(ratio "$t" "$bt")" "$c" "$(ratio "$c" "$bc")"
		done
	done
done
if [[ " $VARIANTS " == *" ring "* && " $VARIANTS " == *" direct "* ]]; then
	for reps in $REPLICAS; do
		t=$(median "$RES/tput_r${reps}_d1.ring")
		echo "# replicas $reps: ring client / direct to owner (ops/s, depth 1): $(ratio "$t" "$(median "$RES/tput_r${reps}_d1.direct")")"
	done
fi
if [ -n "$RATE" ]; then
	echo
	echo "# open loop at $RATE requests/s"
	printf '%-8s %-8s %12s %16s %8s %10s\n' replicas variant achieved ops/cpu-s ratio p99_us
	for reps in $REPLICAS; do
		bc=$(median "$RES/rateopcpu_r$reps.twem")
		for v in $VARIANTS; do
			case $v in ring | direct) continue ;; esac
			c=$(median "$RES/rateopcpu_r$reps.$v")
			printf '%-8s %-8s %12s %16s %8s %10s\n' "$reps" "$v" "$(median "$RES/rate_r$reps.$v")" "$c" "$(ratio "$c" "$bc")" "$(median "$RES/p99_r$reps.$v")"
		done
	done
	echo
	echo "# CPU µs per request at that rate, each process (twem: memcached 1-3, nutcracker;"
	echo "# shoal: node 1 with the --dev etcd, node 2, node 3; 'one' enters through node 1)"
	printf '%-8s %-8s %10s %10s %10s %10s\n' replicas variant p1 p2 p3 p4
	for reps in $REPLICAS; do
		for v in $VARIANTS; do
			case $v in ring | direct) continue ;; esac
			printf '%-8s %-8s %10s %10s %10s %10s\n' "$reps" "$v" "$(median "$RES/pidus_r${reps}_1.$v")" \
				"$(median "$RES/pidus_r${reps}_2.$v")" "$(median "$RES/pidus_r${reps}_3.$v")" "$(median "$RES/pidus_r${reps}_4.$v")"
		done
	done
fi
if [ -n "$(ls "$RES"/failures.* 2>/dev/null)" ]; then
	echo
	echo "# failed runs:"
	cat "$RES"/failures.*
fi
echo "# $(($(date +%s) - START)) s"
