#!/usr/bin/env bash
# The console suite: scripts/demo started for real (its own directory, a free port),
# then the web console driven in Debian's chromium by puppeteer-core
# (tests/console/console.test.mjs; it also searches the stack's logs for the keys it
# used: a credential must never be logged).
#
#   tests/console/run.sh
#   JR_CONSOLE_SHOTS=docs/img tests/console/run.sh    refresh the documentation's screenshots
#
# Prints the TAP of the browser test and, last, "N passed, N failed".
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
# shellcheck source=scripts/lib/common.sh
source scripts/lib/common.sh

dir=$(mktemp -d /tmp/jr-console.XXXXXX)
demo_pid=
finish() {
	if [[ -n $demo_pid ]] && kill -0 "$demo_pid" 2>/dev/null; then
		kill -TERM "$demo_pid" 2>/dev/null || true
		wait "$demo_pid" 2>/dev/null || true
	fi
	jr_stack_stop "$dir/demo" 2>/dev/null || true
	rm -rf "$dir"
}
trap finish EXIT

chromium=${JR_CHROMIUM:-/usr/bin/chromium}
if [[ ! -x $chromium ]]; then
	echo "not ok console: $chromium not found (packages.txt lists chromium; scripts/setup installs it)"
	echo "0 passed, 1 failed"
	exit 1
fi
if [[ ! -d tests/console/node_modules/puppeteer-core ]]; then
	(cd tests/console && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund) >&2
fi

port=$(jr_free_port)
JR_SKIP_SETUP=1 JAIROUTER_PORT=$port JAIROUTER_DEMO_DIR=$dir/demo \
	setsid scripts/demo >"$dir/demo.out" 2>&1 </dev/null &
demo_pid=$!
deadline=$((SECONDS + 120))
until grep -q '^Press Ctrl-C to stop' "$dir/demo.out"; do
	if ((SECONDS > deadline)) || ! kill -0 "$demo_pid" 2>/dev/null; then
		sed 's/^/# /' "$dir/demo.out"
		echo "0 passed, 1 failed"
		exit 1
	fi
	sleep 0.5
done
# shellcheck disable=SC1091 # written by scripts/demo
source "$dir/demo/env"

out=$dir/tap.out
rc=0
(cd tests/console && JR_CHROMIUM=$chromium JR_CONSOLE_LOGS=$dir/demo node --test --test-reporter=tap --test-concurrency=1 \
	--test-timeout=120000 console.test.mjs) 2>&1 | tee "$out" || rc=$?

pass=$(sed -n 's/^# pass \([0-9][0-9]*\)$/\1/p' "$out" | tail -n 1)
fail=$(sed -n 's/^# fail \([0-9][0-9]*\)$/\1/p' "$out" | tail -n 1)
skipped=$(sed -n 's/^# skipped \([0-9][0-9]*\)$/\1/p' "$out" | tail -n 1)
if [[ -z $pass || -z $fail ]]; then
	echo "0 passed, 1 failed"
	exit 1
fi
((rc == 0 || fail > 0)) || fail=1
# Skipped steps are named, with the reason, never dropped silently.
if ((${skipped:-0} > 0)); then
	echo "# ${skipped} step(s) skipped:"
	grep -E '^ *ok [0-9]+ - .* # SKIP' "$out" | sed 's/^ */#   /'
fi

echo "$pass passed, $fail failed"
((fail == 0))
