#!/usr/bin/env bash
# Peak resident memory of shoal and of Debian's memcached under the
# adversarial cases of e2e/hostile (issue 11), side by side:
#
#   ./bench/hostile.sh            # each attack holds its connections 12 s
#   HOLD=3s ./bench/hostile.sh
#
# Each case starts both servers fresh with -m 64 -c 8192 and reads VmHWM
# from /proc after the attack. Needs /usr/bin/memcached.
set -euo pipefail
cd "$(dirname "$0")/.."
exec go test ./e2e/hostile -run TestHostileClients -count 1 -v -timeout 30m \
	-args -compare -hold "${HOLD:-12s}" 2>&1 | grep -E '^\s+\||case \||^(ok|FAIL|---)'
