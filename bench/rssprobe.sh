#!/usr/bin/env bash
# Start-up resident size of what shoal links (issue 3's RSS figure): for
# each dependency, a program that imports only that package and sleeps, and
# its RSS one second after start; then shoal itself (standalone, -m 64)
# and memcached with the same flags. Run from anywhere in the repo:
#
#	./bench/rssprobe.sh
#
# Each row is the median of ROUNDS starts (default 3), in MiB: total RSS,
# the part mapped from files (the binary, libc) and the anonymous part.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
MEMCACHED=${MEMCACHED:-/usr/bin/memcached}
# A dot directory inside the module: it resolves imports through go.mod and
# go.sum, and ./... never sees it.
WORK=$ROOT/.rssprobe
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK"

probes=(
	"nothing (hello world)|"
	"go.etcd.io/etcd/client/v3|go.etcd.io/etcd/client/v3"
	"github.com/hashicorp/memberlist|github.com/hashicorp/memberlist"
	"github.com/VictoriaMetrics/metrics|github.com/VictoriaMetrics/metrics"
	"go.etcd.io/etcd/server/v3/embed (--dev)|go.etcd.io/etcd/server/v3/embed"
)

# measure CMD...: starts CMD, prints "total file anon" in KiB after 1 s.
measure() {
	"$@" >/dev/null 2>&1 &
	local pid=$!
	sleep 1
	awk '/^Rss:/ {t=$2} /^Anonymous:/ {a=$2} END {print t, t-a, a}' "/proc/$pid/smaps_rollup"
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null || true
}

# row NAME CMD...: the median over ROUNDS of each column, in MiB.
row() {
	local name=$1
	shift
	for _ in $(seq "$ROUNDS"); do measure "$@"; done |
		awk -v name="$name" '{t[NR]=$1; f[NR]=$2; a[NR]=$3}
		function med(x, n,   i, j, v) { for (i = 2; i <= n; i++) { v = x[i]; for (j = i - 1; j > 0 && x[j] > v; j--) x[j+1] = x[j]; x[j+1] = v } return x[int((n+1)/2)] }
		END {printf "| %-48s | %6.1f | %6.1f | %6.1f |\n", name, med(t, NR)/1024, med(f, NR)/1024, med(a, NR)/1024}'
}

printf "| %-48s | %6s | %6s | %6s |\n" "program" "RSS" "file" "anon"
printf "|%s|%s|%s|%s|\n" "$(printf -- '-%.0s' {1..50})" "--------" "--------" "--------"
for p in "${probes[@]}"; do
	name=${p%%|*}
	pkg=${p#*|}
	dir=$WORK/$(echo "$name" | tr -c 'a-z0-9' '_')
	mkdir -p "$dir"
	{
		echo "package main"
		echo 'import ('
		echo '	"time"'
		[ -n "$pkg" ] && echo "	_ \"$pkg\""
		echo ')'
		echo 'func main() { time.Sleep(time.Minute) }'
	} >"$dir/main.go"
	(cd "$ROOT" && go build -o "$dir/bin" "./${dir#"$ROOT"/}")
	row "imports $name" "$dir/bin"
done
(cd "$ROOT" && go build -o "$WORK/shoal" .)
port=$((20000 + RANDOM % 10000))
row "shoal -t 2 -m 64 (standalone)" "$WORK/shoal" -t 2 -m 64 -c 4096 -l 127.0.0.1 -p "$port"
if [ -x "$MEMCACHED" ]; then
	row "memcached -t 2 -m 64" "$MEMCACHED" -t 2 -m 64 -c 4096 -l 127.0.0.1 -p "$((port + 1))" -U 0 -u root
fi
