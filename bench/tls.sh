#!/usr/bin/env bash
# TLS on the client port beside plain TCP, shoal beside Debian's memcached
# (issue 13): each set-up started fresh with the same flags (-t 2 -m 64),
# preloaded, then 32 connections at depth 1 (90 % gets, 100 B values);
# rounds alternate the four set-ups and the medians are printed.
#
#   ROUNDS=3 DURATION=5s ./bench/tls.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
TMP=$(mktemp -d /tmp/shoal-tls-bench.XXXXXX)
PID=""
trap '[ -n "$PID" ] && kill -9 $PID 2>/dev/null; rm -rf "$TMP"' EXIT
go build -o "$TMP/shoal" . && go build -o "$TMP/loadgen" ./bench/loadgen
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
	-keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null
TLSFLAGS=(-Z -o "ssl_chain_cert=$TMP/cert.pem,ssl_key=$TMP/key.pem")
LG=$TMP/loadgen
for r in $(seq "$ROUNDS"); do
	for setup in memcached shoal memcached-tls shoal-tls; do
		port=$("$LG" freeport)
		flags=(-t 2 -m 64 -c 4096 -l 127.0.0.1 -p "$port" -U 0)
		case $setup in *-tls) flags+=("${TLSFLAGS[@]}"); addr=tls://127.0.0.1:$port ;; *) addr=127.0.0.1:$port ;; esac
		case $setup in
		memcached*) /usr/bin/memcached -u root "${flags[@]}" >/dev/null 2>&1 & ;;
		shoal*) "$TMP/shoal" "${flags[@]}" >/dev/null 2>&1 & ;;
		esac
		PID=$!
		"$LG" wait -addr "$addr" >/dev/null
		"$LG" fill -addr "$addr" -keys 100000 -value 100 >/dev/null
		out=$("$LG" throughput -addr "$addr" -duration "$DURATION" -warmup 1s -pid "$PID" -clk-tck "$(getconf CLK_TCK)")
		echo "$out" | awk -F= -v s="$setup" '$1=="ops_per_sec"{o=$2} $1=="ops_per_cpu_sec"{c=$2} END{print s, o, c}' >>"$TMP/results"
		kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
		echo "round $r: $(tail -1 "$TMP/results")" >&2
	done
done
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
printf '| set-up | ops/s | ops per server CPU-s |\n|---|---|---|\n'
for setup in memcached shoal memcached-tls shoal-tls; do
	o=$(awk -v s="$setup" '$1==s{print $2}' "$TMP/results" | median)
	c=$(awk -v s="$setup" '$1==s{print $3}' "$TMP/results" | median)
	printf '| %s | %s | %s |\n' "$setup" "$o" "$c"
done
