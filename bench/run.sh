#!/usr/bin/env bash
# Side-by-side benchmark of shoal against Debian's memcached (issue 3).
#
#   ROUNDS=3 DURATION=10s ./bench/run.sh [fill hitratio throughput latency]
#
# Every scenario starts each server fresh with the same flags, alternates
# memcached and shoal (A B A B ...) for ROUNDS rounds, and reports medians.
# See bench/README.md for what each figure means and its caveats.
set -uo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-1s}                 # unmeasured run-in for throughput/latency
FILL_KEYS=${FILL_KEYS:-2000000}      # figure 1
HR_KEYS=${HR_KEYS:-1000000}          # figure 2
HR_WARMUP=${HR_WARMUP:-3000000}      # gets before the hit ratio is counted
HR_OPS=${HR_OPS:-2000000}            # gets counted
PRELOAD_KEYS=${PRELOAD_KEYS:-100000} # figures 3-5
DEPTHS=${DEPTHS:-"1 16"}
CONNS=${CONNS:-32}
RATE=${RATE:-}                       # figure 5; default: half memcached's depth-1 max
MEMCACHED=${MEMCACHED:-/usr/bin/memcached}
SHOAL_TAGS=${SHOAL_TAGS:-}                 # build tags for shoal, e.g. nodev
read -r -a SHOAL_EXTRA <<<"${SHOAL_FLAGS:-}" # extra shoal flags, e.g. --conn-goroutines
FLAGS=(-t 2 -m 64 -c 4096 -l 127.0.0.1)

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -eq 0 ] && SCENARIOS=(fill hitratio throughput latency)
for s in "${SCENARIOS[@]}"; do
	case $s in fill | hitratio | throughput | latency) ;;
	*) echo "run.sh: unknown scenario $s (fill hitratio throughput latency)" >&2; exit 2 ;;
	esac
done
if [ ! -x "$MEMCACHED" ]; then
	echo "run.sh: $MEMCACHED not found; install Debian's memcached (apt-get install memcached)" >&2
	exit 2
fi

TMP=$(mktemp -d /tmp/shoal-bench.XXXXXX)
RES=$TMP/results
mkdir -p "$RES"
SPID=""
cleanup() {
	if [ -n "$SPID" ] && kill -0 "$SPID" 2>/dev/null; then
		kill -KILL "$SPID" 2>/dev/null
		wait "$SPID" 2>/dev/null
	fi
	[ -n "${KEEP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

echo "building shoal and loadgen into $TMP" >&2
(cd "$ROOT" && go build ${SHOAL_TAGS:+-tags "$SHOAL_TAGS"} -o "$TMP/shoal" . && go build -o "$TMP/loadgen" ./bench/loadgen) || exit 1
LG=$TMP/loadgen
CLK_TCK=$(getconf CLK_TCK)

# start_server NAME LOGFILE: starts memcached or shoal fresh on a free port,
# waits until it answers; sets SPID and ADDR.
start_server() {
	local name=$1 logf=$2 port
	port=$("$LG" freeport) || return 1
	ADDR=127.0.0.1:$port
	case $name in
	memcached)
		local user=()
		[ "$(id -u)" = 0 ] && user=(-u root)
		"$MEMCACHED" "${user[@]}" -U 0 "${FLAGS[@]}" -p "$port" >"$logf" 2>&1 &
		;;
	shoal) "$TMP/shoal" "${FLAGS[@]}" ${SHOAL_EXTRA[@]+"${SHOAL_EXTRA[@]}"} -p "$port" >"$logf" 2>&1 & ;;
	esac
	SPID=$!
	if ! "$LG" wait -addr "$ADDR" -timeout 10s >/dev/null 2>>"$logf"; then
		log "$name did not start; its output:"
		sed 's/^/    /' "$logf" >&2
		stop_server "$name" "$logf"
		return 1
	fi
}

# stop_server NAME LOGFILE: SIGTERM, then SIGKILL after 5 s. Reports a server
# that died on its own (a crash) with its stderr.
stop_server() {
	local name=$1 logf=$2 i
	[ -n "$SPID" ] || return 0
	if ! kill -0 "$SPID" 2>/dev/null; then
		wait "$SPID"
		log "$name (pid $SPID) exited by itself with status $?; its output:"
		sed 's/^/    /' "$logf" >&2
		SPID=""
		return 1
	fi
	kill -TERM "$SPID" 2>/dev/null
	for i in $(seq 50); do
		kill -0 "$SPID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$SPID" 2>/dev/null
	wait "$SPID" 2>/dev/null
	SPID=""
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
kv() { awk -F= -v k="$1" '$1 == k {print $2}' "$2"; }
record() { [ -n "${NORECORD:-}" ] || echo "$3" >>"$RES/$1.$2"; } # record FIGURE SERVER VALUE

# loadgen_or_report NAME LOGFILE OUT ARGS...: runs loadgen; on failure shows
# loadgen's error and the server's output.
run_lg() {
	local name=$1 logf=$2 out=$3
	shift 3
	if ! "$LG" "$@" -addr "$ADDR" >"$out" 2>"$out.err"; then
		log "loadgen $1 against $name failed: $(cat "$out.err")"
		log "  command: loadgen $* -addr $ADDR"
		kill -0 "$SPID" 2>/dev/null || log "  $name is no longer running"
		log "  $name output:"
		sed 's/^/    /' "$logf" >&2
		return 1
	fi
}

preload() { run_lg "$1" "$2" "$3.fill" fill -keys "$PRELOAD_KEYS" -value 100; }

# one SCENARIO NAME ROUND [DEPTH]
one() {
	local sc=$1 name=$2 r=$3 d=${4:-} logf out
	logf=$TMP/$sc$d.$name.$r.log
	out=$TMP/$sc$d.$name.$r.out
	start_server "$name" "$logf" || return 1
	local ok=0
	case $sc in
	fill)
		local idle
		idle=$(rss_kb "$SPID")
		if run_lg "$name" "$logf" "$out" fill -keys "$FILL_KEYS" -value 100; then
			record items "$name" "$(kv curr_items "$out")"
			record rss_mb "$name" "$(awk -v k="$(rss_kb "$SPID")" 'BEGIN {printf "%.1f", k/1024}')"
			record rss_idle_mb "$name" "$(awk -v k="$idle" 'BEGIN {printf "%.1f", k/1024}')"
			record rss_anon_mb "$name" "$(awk '/^RssAnon:/ {printf "%.1f", $2/1024}' "/proc/$SPID/status")"
			record rss_growth_mb "$name" "$(awk -v k="$(rss_kb "$SPID")" -v i="$idle" 'BEGIN {printf "%.1f", (k-i)/1024}')"
			record fill_rejected "$name" "$(kv rejected "$out")"
		else ok=1; fi
		;;
	hitratio)
		if run_lg "$name" "$logf" "$out" hitratio -keys "$HR_KEYS" -value 200 -s 0.99 -seed "$r" \
			-warmup "$HR_WARMUP" -ops "$HR_OPS"; then
			record hit_pct "$name" "$(awk -v h="$(kv hit_ratio "$out")" 'BEGIN {printf "%.2f", h*100}')"
			record hit_pct_2nd_half "$name" "$(awk -v h="$(kv hit_ratio_second_half "$out")" 'BEGIN {printf "%.2f", h*100}')"
		else ok=1; fi
		;;
	throughput)
		if preload "$name" "$logf" "$out" &&
			run_lg "$name" "$logf" "$out" throughput -conns "$CONNS" -depth "$d" -get 0.9 -value 100 \
				-keys "$PRELOAD_KEYS" -warmup "$WARMUP" -duration "$DURATION" -pid "$SPID" -clk-tck "$CLK_TCK"; then
			record "tput_d$d" "$name" "$(kv ops_per_sec "$out")"
			record "opcpu_d$d" "$name" "$(kv ops_per_cpu_sec "$out")"
			record "cpuutil_d$d" "$name" "$(kv server_cpu_util "$out")"
		else ok=1; fi
		;;
	latency)
		if preload "$name" "$logf" "$out" &&
			run_lg "$name" "$logf" "$out" latency -conns "$CONNS" -rate "$RATE" -get 0.9 -value 100 \
				-keys "$PRELOAD_KEYS" -warmup "$WARMUP" -duration "$DURATION"; then
			for p in p50 p99 p999 svc_p99; do record "lat_$p" "$name" "$(kv "${p}_us" "$out")"; done
			record lat_rate "$name" "$(kv rate_achieved "$out")"
		else ok=1; fi
		;;
	esac
	stop_server "$name" "$logf" || ok=1
	[ $ok = 0 ] || record "failures" "$name" "$sc$d round $r"
	return $ok
}

# rounds SCENARIO [DEPTH]: A B A B ...
rounds() {
	local r
	for r in $(seq "$ROUNDS"); do
		for name in memcached shoal; do
			log "$1${2:+ depth $2} round $r/$ROUNDS: $name"
			one "$1" "$name" "$r" "${2:-}"
		done
	done
}

median() { # median FILE: median of the numeric lines, NA if none
	[ -s "$1" ] || { echo NA; return; }
	grep -E '^[0-9.eE+-]+$' "$1" | sort -g | awk '{a[NR]=$1} END {
		if (NR == 0) {print "NA"; exit}
		if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'
}

START=$(date +%s)
for sc in "${SCENARIOS[@]}"; do
	case $sc in
	throughput) for d in $DEPTHS; do rounds throughput "$d"; done ;;
	latency)
		if [ -z "$RATE" ]; then
			m=$(median "$RES/tput_d1.memcached")
			if [ "$m" = NA ]; then
				log "latency: calibrating memcached's depth-1 maximum (set RATE= to skip)"
				NORECORD=1 one throughput memcached cal 1 && m=$(kv ops_per_sec "$TMP/throughput1.memcached.cal.out")
			fi
			[ "$m" != NA ] && [ -n "$m" ] || { log "latency: no memcached maximum; set RATE="; continue; }
			RATE=$(awk -v m="$m" 'BEGIN {printf "%.0f", m/2}')
		fi
		log "latency: fixed rate $RATE req/s"
		rounds latency
		;;
	*) rounds "$sc" ;;
	esac
done
ELAPSED=$(($(date +%s) - START))

# row FIGURE LABEL KIND TARGET: KIND is ratio_ge, ratio_le, points_ge or info.
row() {
	local fig=$1 label=$2 kind=$3 target=$4 m s
	m=$(median "$RES/$fig.memcached")
	s=$(median "$RES/$fig.shoal")
	[ "$m" = NA ] && [ "$s" = NA ] && return
	awk -v l="$label" -v m="$m" -v s="$s" -v k="$kind" -v t="$target" 'BEGIN {
		rel = "-"; met = "-"
		if (m != "NA" && s != "NA") {
			if (k == "points_ge") { rel = sprintf("%+.2f pt", s - m); met = (s - m >= t) ? "yes" : "NO" }
			else if (m + 0 > 0) {
				r = s / m; rel = sprintf("%.3fx", r)
				if (k == "ratio_ge") met = (r >= t) ? "yes" : "NO"
				if (k == "ratio_le") met = (r <= t) ? "yes" : "NO"
			}
		}
		tt = (k == "ratio_ge") ? ">= " t "x" : (k == "ratio_le") ? "<= " t "x" : (k == "points_ge") ? ">= +" t " pt" : "-"
		printf "| %-34s | %12s | %12s | %10s | %9s | %-4s |\n", l, m, s, rel, tt, met }'
}

echo
echo "shoal vs memcached $("$MEMCACHED" -V 2>/dev/null | awk '{print $2}'), flags: ${FLAGS[*]}${SHOAL_FLAGS:+ (shoal also: $SHOAL_FLAGS)}; rounds=$ROUNDS duration=$DURATION; $ELAPSED s"
echo "medians of A B A B rounds; ratio = shoal / memcached"
printf '| %-34s | %12s | %12s | %10s | %9s | %-4s |\n' figure memcached shoal ratio target met?
printf '|%s|%s|%s|%s|%s|%s|\n' ------------------------------------ -------------- -------------- ------------ ----------- ------
row items "1. items after ${FILL_KEYS}x100B" ratio_ge 1.25
row rss_mb "1. RSS after fill (MB)" ratio_le 1.10
row rss_idle_mb "   RSS at start, before the fill" info -
row rss_growth_mb "   RSS growth during the fill" info -
row rss_anon_mb "   anonymous RSS after fill (MB)" info -
row fill_rejected "   sets rejected during fill" info -
row hit_pct "2. hit % zipf 0.99, ${HR_KEYS} keys" points_ge 2
row hit_pct_2nd_half "   hit %, 2nd half of measured gets" info -
for d in $DEPTHS; do
	row "tput_d$d" "3. ops/s, $CONNS conns, depth $d" ratio_ge 1.0
	row "opcpu_d$d" "4. ops per server CPU-s, depth $d" ratio_ge 1.0
	row "cpuutil_d$d" "   server CPU cores busy, depth $d" info -
done
[ -n "$RATE" ] && [ -s "$RES/lat_p50.memcached" ] && echo "|   latency at $RATE req/s (half memcached's depth-1 max), $CONNS conns, open loop"
row lat_p50 "5. p50 latency (us)" info -
row lat_p99 "5. p99 latency (us)" ratio_le 1.2
row lat_p999 "5. p99.9 latency (us)" info -
row lat_svc_p99 "   p99 service time (us)" info -
row lat_rate "   achieved rate (req/s)" info -

echo
echo "per round (A B A B order):"
for f in "$RES"/*.memcached "$RES"/*.shoal; do
	[ -e "$f" ] || continue
	[ "${f##*/}" = failures.memcached ] || [ "${f##*/}" = failures.shoal ] && continue
	printf '  %-26s %s\n' "${f##*/}" "$(paste -sd' ' "$f")"
done
for n in memcached shoal; do
	[ -s "$RES/failures.$n" ] && echo "FAILED runs of $n: $(paste -sd';' "$RES/failures.$n")"
done
echo
echo "note: loadgen runs on the same $(nproc) cores as the server (nothing is pinned), so"
echo "throughput and latency include contention with the client and with whatever else"
echo "runs on the machine (load average now: $(cut -d' ' -f1-3 /proc/loadavg)); ops per"
echo "CPU-second is the steadier comparison. Latency is measured from each request's"
echo "scheduled send time (open loop), so client scheduling delay is included for both."
[ -s "$RES/failures.memcached" ] || [ -s "$RES/failures.shoal" ] && exit 1
exit 0
