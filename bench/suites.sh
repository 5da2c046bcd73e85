#!/usr/bin/env bash
# bench/suites.sh: test suites and tools that other people wrote for
# memcached, run against Debian's memcached and against shoal; prints one
# table (issue 14). See bench/README.md.
#
#   ./bench/suites.sh                       # every suite
#   ./bench/suites.sh gomemcache tool       # some of them
#
# Suites: mctests pymemcache gomemcache tool php memccapable dalli
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MEMCACHED=${MEMCACHED:-/usr/bin/memcached}
WORK=${WORK:-$(mktemp -d /tmp/shoal-suites.XXXXXX)}
FILE_TIMEOUT=${FILE_TIMEOUT:-180}   # seconds per memcached t/*.t file
PY=${PY:-/usr/bin/python3}          # Debian's python3, where python3-pymemcache is
SERVERS=${SERVERS:-"memcached shoal"}
mkdir -p "$WORK"

if [ -z "${SHOAL:-}" ]; then
	SHOAL=$WORK/shoal
	(cd "$ROOT" && go build -o "$SHOAL" .) || { echo "build failed" >&2; exit 1; }
fi

ALL="mctests pymemcache gomemcache tool php memccapable dalli"
SUITES=${*:-$ALL}

declare -A RES     # RES[suite,server] = result text
declare -A CMD     # CMD[suite] = how it was run
declare -A FAILED  # FAILED[suite,server] = what failed, when a list is long
PIDS=()

bin_of() { if [ "$1" = shoal ]; then echo "$SHOAL"; else echo "$MEMCACHED"; fi; }

free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start SERVER PORT [ARGS...]: a fresh server on 127.0.0.1:PORT; sets SRV_PID.
start() {
	local name=$1 port=$2; shift 2
	local extra=()
	[ "$name" = memcached ] && [ "$(id -u)" = 0 ] && extra=(-u root)
	"$(bin_of "$name")" -p "$port" -U 0 -l 127.0.0.1 "${extra[@]}" "$@" \
		>"$WORK/$name-$port.log" 2>&1 &
	SRV_PID=$!
	PIDS+=("$SRV_PID")
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
		sleep 0.05
	done
	echo "$name did not start on $port" >&2
	return 1
}

stop() {
	kill "$1" 2>/dev/null
	for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; }
trap cleanup EXIT

# run_group SECONDS LOG CMD...: CMD in a process group of its own, the whole
# group (servers a test left behind included) killed when it ends or times out.
run_group() {
	local secs=$1 log=$2; shift 2
	setsid "$@" >"$log" 2>&1 &
	local pid=$! dog rc which=""
	sleep "$secs" &
	dog=$!
	wait -n -p which "$pid" "$dog"
	rc=$?
	if [ "$which" != "$pid" ]; then # timed out
		echo "# suites.sh: killed after ${secs}s" >>"$log"
		kill -TERM -- "-$pid" 2>/dev/null; sleep 2; kill -KILL -- "-$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		rc=124
	fi
	kill "$dog" 2>/dev/null; wait "$dog" 2>/dev/null
	kill -KILL -- "-$pid" 2>/dev/null
	return $rc
}

# 1. memcached's own t/*.t, with a builddir whose memcached-debug execs the
# server under test (MemcachedTest.pm starts "$builddir/memcached-debug").
suite_mctests() {
	local src=${MEMCACHED_SRC:-}
	if [ -z "$src" ]; then
		src=$(ls -d "$WORK"/src/memcached-1.6.* 2>/dev/null | head -1)
		if [ -z "$src" ]; then
			mkdir -p "$WORK/src"
			(cd "$WORK/src" && apt-get source -qq memcached >/dev/null 2>&1)
			src=$(ls -d "$WORK"/src/memcached-1.6.* 2>/dev/null | head -1)
		fi
	fi
	if [ -z "$src" ] || [ ! -f "$src/t/lib/MemcachedTest.pm" ]; then
		for s in $SERVERS; do RES[mctests,$s]="skipped: no source (set MEMCACHED_SRC, or enable deb-src for apt-get source memcached)"; done
		return
	fi
	CMD[mctests]="prove t/NAME.t in a copy of $(basename "$src") (one file at a time, ${FILE_TIMEOUT}s each)"
	local s
	for s in $SERVERS; do
		local bd=$WORK/mctests-$s
		rm -rf "$bd"; cp -a "$src" "$bd"
		cat >"$bd/memcached-debug" <<EOF
#!/bin/bash
# Debian's memcached has no -o relaxed_privileges (built without seccomp):
# drop that pair for both servers.
args=()
while [ \$# -gt 0 ]; do
	if [ "\$1" = -o ] && [ "\${2:-}" = relaxed_privileges ]; then shift 2; continue; fi
	args+=("\$1"); shift
done
exec $(bin_of "$s") "\${args[@]}"
EOF
		printf '#!/bin/sh\nshift\nexec "$@"\n' >"$bd/timedrun"
		chmod +x "$bd/memcached-debug" "$bd/timedrun"
		mkdir -p "$bd/logs"
		local pass=0 total=0 skipped=0 failed=() f n
		for f in "$bd"/t/*.t; do
			n=$(basename "$f" .t)
			total=$((total + 1))
			if (cd "$bd" && run_group "$FILE_TIMEOUT" "$bd/logs/$n.log" prove -v "t/$n.t"); then
				pass=$((pass + 1))
				grep -q '^Result: NOTESTS' "$bd/logs/$n.log" && skipped=$((skipped + 1))
			else
				failed+=("$n")
			fi
		done
		printf '%s\n' "${failed[@]}" >"$bd/failed.txt"
		RES[mctests,$s]="$pass of $total files pass ($skipped of them skip all)"
		echo "mctests $s: $pass of $total; failed: ${failed[*]}" >&2
		FAILED[mctests,$s]="${failed[*]}"
	done
}

# 2. pymemcache's integration tests (Debian python3-pymemcache).
suite_pymemcache() {
	local dir
	dir=$("$PY" -c 'import os, pymemcache.test as t; print(os.path.dirname(t.__file__))' 2>/dev/null)
	if [ -z "$dir" ] || ! "$PY" -c 'import pytest' 2>/dev/null; then
		for s in $SERVERS; do RES[pymemcache,$s]="skipped: needs python3-pymemcache python3-pytest"; done
		return
	fi
	local ver
	ver=$("$PY" -c 'import pymemcache; print(pymemcache.__version__)')
	CMD[pymemcache]="$PY -m pytest $dir/test_integration.py --server 127.0.0.1 --port PORT (pymemcache $ver)"
	local s
	for s in $SERVERS; do
		local port; port=$(free_port)
		start "$s" "$port" || { RES[pymemcache,$s]="server did not start"; continue; }
		(cd "$WORK" && "$PY" -m pytest -p no:cacheprovider -q -rf "$dir/test_integration.py" \
			--server 127.0.0.1 --port "$port") >"$WORK/pymemcache-$s.log" 2>&1
		stop "$SRV_PID"
		RES[pymemcache,$s]=$(summary_pytest "$WORK/pymemcache-$s.log")
	done
}

summary_pytest() {
	local line p f e
	line=$(grep -E '[0-9]+ (passed|failed)' "$1" | tail -1)
	p=$(grep -oE '[0-9]+ passed' <<<"$line" | cut -d' ' -f1); p=${p:-0}
	f=$(grep -oE '[0-9]+ failed' <<<"$line" | cut -d' ' -f1); f=${f:-0}
	e=$(grep -oE '[0-9]+ errors?' <<<"$line" | cut -d' ' -f1)
	local names
	names=$(grep -E '^FAILED ' "$1" | sed 's/.*:://; s/ .*//' | paste -sd, -)
	# The 3 test_tls errors are on both servers: Debian ships no test certs.
	echo "$p/$((p + f)) pass${e:+, $e errors}${names:+ (failed: $names)}"
}

# 3. gomemcache's own tests: they start "memcached" from PATH (unix socket,
# TLS); a wrapper of that name first in PATH execs the server under test.
# TestLocalhost uses a server on localhost:11211, started when that port is free.
suite_gomemcache() {
	local mod
	mod=$(cd "$ROOT" && go list -m -f '{{.Dir}}' github.com/bradfitz/gomemcache 2>/dev/null)
	if [ -z "$mod" ]; then
		for s in $SERVERS; do RES[gomemcache,$s]="skipped: module not in the module cache"; done
		return
	fi
	CMD[gomemcache]="go test -count=1 -v ./memcache in a copy of $(basename "$mod"), with PATH=<dir with a memcached wrapper>:\$PATH"
	rm -rf "$WORK/gomemcache"; cp -r "$mod" "$WORK/gomemcache"; chmod -R u+w "$WORK/gomemcache"
	local s
	for s in $SERVERS; do
		mkdir -p "$WORK/path-$s"
		printf '#!/bin/sh\nexec %s "$@"\n' "$(bin_of "$s")" >"$WORK/path-$s/memcached"
		[ "$s" = memcached ] && printf '#!/bin/sh\nif [ "$(id -u)" = 0 ]; then exec %s -u root "$@"; fi\nexec %s "$@"\n' "$MEMCACHED" "$MEMCACHED" >"$WORK/path-$s/memcached"
		chmod +x "$WORK/path-$s/memcached"
		local lp=""
		if ! (exec 3<>/dev/tcp/127.0.0.1/11211) 2>/dev/null; then
			start "$s" 11211 && lp=$SRV_PID
		fi
		(cd "$WORK/gomemcache" && PATH="$WORK/path-$s:$PATH" GOFLAGS=-mod=mod \
			go test -count=1 -v ./memcache) >"$WORK/gomemcache-$s.log" 2>&1
		[ -n "$lp" ] && stop "$lp"
		local p f k skipped
		p=$(grep -cE '^--- PASS' "$WORK/gomemcache-$s.log")
		f=$(grep -cE '^--- FAIL' "$WORK/gomemcache-$s.log")
		k=$(grep -cE '^--- SKIP' "$WORK/gomemcache-$s.log")
		skipped=$(grep -E '^--- SKIP' "$WORK/gomemcache-$s.log" | awk '{print $3}' | paste -sd, -)
		RES[gomemcache,$s]="$p/$((p + f + k)) pass${skipped:+, skipped: $skipped}"
	done
}

# 4. Debian's memcached-tool, its six modes on a server holding three items.
suite_tool() {
	local t=/usr/share/memcached/scripts/memcached-tool
	if [ ! -f "$t" ]; then
		for s in $SERVERS; do RES[tool,$s]="skipped: no $t"; done
		return
	fi
	CMD[tool]="perl $t 127.0.0.1:PORT MODE (10 s each; dump must hold add lines, keys key= lines)"
	local s
	for s in $SERVERS; do
		local port; port=$(free_port)
		start "$s" "$port" || { RES[tool,$s]="server did not start"; continue; }
		printf 'set plain 7 3600 3\r\none\r\nset with%%pc 0 0 3\r\ntwo\r\nset exp:ires 1 100 5\r\nthree\r\nquit\r\n' |
			"$PY" -c 'import socket,sys; s=socket.create_connection(("127.0.0.1",'"$port"')); s.sendall(sys.stdin.buffer.read()); s.recv(100)'
		local pass=0 bad=() m out
		for m in display stats settings sizes dump keys; do
			out=$(timeout 10 perl "$t" "127.0.0.1:$port" "$m" 2>&1)
			local rc=$?
			echo "== $m rc=$rc" >>"$WORK/tool-$s.log"; echo "$out" >>"$WORK/tool-$s.log"
			local ok=1
			[ $rc = 0 ] && [ -n "$out" ] || ok=0
			[ "$m" = dump ] && ! grep -q '^add plain 7 ' <<<"$out" && ok=0
			[ "$m" = keys ] && [ "$(grep -c '^key=' <<<"$out")" != 3 ] && ok=0
			if [ $ok = 1 ]; then pass=$((pass + 1)); else bad+=("$m"); fi
		done
		stop "$SRV_PID"
		RES[tool,$s]="$pass/6${bad:+ (failed: ${bad[*]})}"
	done
}

# 5. php-memcached, text and binary protocol (testdata/clients).
suite_php() {
	if ! command -v php >/dev/null || ! command php -r 'exit(class_exists("Memcached") ? 0 : 1);'; then
		for s in $SERVERS; do RES[php,$s]="skipped: needs php-cli php-memcached"; done
		return
	fi
	CMD[php]="php testdata/clients/php_memcached_binary.php PORT text|binary (checks printed ok)"
	local s mode
	for s in $SERVERS; do
		local r=""
		for mode in text binary; do
			local port; port=$(free_port)
			start "$s" "$port" || { r+="server did not start / "; continue; }
			timeout 120 php "$ROOT/testdata/clients/php_memcached_binary.php" "$port" "$mode" >"$WORK/php-$mode-$s.log" 2>&1
			stop "$SRV_PID"
			r+="$(count_checks "$WORK/php-$mode-$s.log") / "
		done
		RES[php,$s]="${r% / } (text / binary)"
	done
}

count_checks() {
	local ok fail
	ok=$(grep -c '^ok ' "$1"); fail=$(grep -c '^FAIL ' "$1")
	echo "$ok/$((ok + fail))"
}

# libmemcached's memccapable, text then binary (-b).
suite_memccapable() {
	if ! command -v memccapable >/dev/null; then
		for s in $SERVERS; do RES[memccapable,$s]="skipped: needs libmemcached-tools"; done
		return
	fi
	CMD[memccapable]="memccapable -h 127.0.0.1 -p PORT -a|-b ([pass] lines of all)"
	local s b
	for s in $SERVERS; do
		local r=""
		for b in -a -b; do
			local port; port=$(free_port)
			start "$s" "$port" || { r+="server did not start / "; continue; }
			timeout 120 memccapable -h 127.0.0.1 -p "$port" $b >"$WORK/memccapable$b-$s.log" 2>&1
			stop "$SRV_PID"
			local p t
			p=$(grep -c '\[pass\]' "$WORK/memccapable$b-$s.log")
			t=$(grep -cE '\[(pass|FAIL|fail|skip)\]' "$WORK/memccapable$b-$s.log")
			r+="$p/$t / "
		done
		RES[memccapable,$s]="${r% / } (-a text / -b binary)"
	done
}

# ruby dalli 3.0, binary protocol only (testdata/clients).
suite_dalli() {
	if ! command -v ruby >/dev/null || ! ruby -e 'require "dalli"' 2>/dev/null; then
		for s in $SERVERS; do RES[dalli,$s]="skipped: needs ruby ruby-dalli"; done
		return
	fi
	CMD[dalli]="ruby testdata/clients/dalli_binary.rb PORT (checks printed ok)"
	local s
	for s in $SERVERS; do
		local port; port=$(free_port)
		start "$s" "$port" || { RES[dalli,$s]="server did not start"; continue; }
		timeout 120 ruby "$ROOT/testdata/clients/dalli_binary.rb" "$port" >"$WORK/dalli-$s.log" 2>&1
		stop "$SRV_PID"
		RES[dalli,$s]=$(count_checks "$WORK/dalli-$s.log")
	done
}

declare -A TITLE=(
	[mctests]="memcached's own t/*.t (external server)"
	[pymemcache]="pymemcache integration tests"
	[gomemcache]="gomemcache's own tests"
	[tool]="memcached-tool: display stats settings sizes dump keys"
	[php]="php-memcached"
	[memccapable]="libmemcached memccapable"
	[dalli]="ruby dalli (binary)"
)

for suite in $SUITES; do
	case " $ALL " in *" $suite "*) ;; *) echo "unknown suite $suite (one of: $ALL)" >&2; exit 2 ;; esac
	echo "running $suite ..." >&2
	"suite_$suite"
done

echo
echo "memcached: $("$MEMCACHED" -V 2>&1 | head -1); shoal: $("$SHOAL" -V 2>&1 | head -1) ($(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null))"
echo
printf '| suite |'; for s in $SERVERS; do printf ' %s |' "$s"; done; echo
printf '|---|'; for s in $SERVERS; do printf -- '---|'; done; echo
for suite in $SUITES; do
	printf '| %s |' "${TITLE[$suite]}"
	for s in $SERVERS; do printf ' %s |' "${RES[$suite,$s]:-}"; done
	echo
done
echo
for suite in $SUITES; do [ -n "${CMD[$suite]:-}" ] && echo "$suite: ${CMD[$suite]}"; done
for k in "${!FAILED[@]}"; do echo "failed ($k): ${FAILED[$k]}"; done
echo "logs: $WORK"
