#!/usr/bin/env bash
# Runs the official-SDK client tests (node:test, TAP reporter) and prints, last,
# "N passed, N failed" taken from the TAP summary ("# pass N", "# fail N").
#
#   JAIROUTER_URL=http://127.0.0.1:8080 JAIROUTER_API_KEY=jr-... \
#   [JAIROUTER_MODEL=demo-model] tests/clients/run.sh [test files...]
#
# Installs the pinned SDKs (npm ci) when node_modules is missing.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here" || exit 1

if [[ ! -d node_modules/openai ]]; then
	echo "# node_modules missing: npm ci" >&2
	npm ci --no-audit --no-fund >&2 || {
		echo "0 passed, 1 failed"
		exit 1
	}
fi

files=("$@")
((${#files[@]})) || files=(*.test.mjs)

out=$(mktemp)
trap 'rm -f "$out"' EXIT

node --test --test-reporter=tap --test-timeout=120000 "${files[@]}" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}

pass=$(sed -n 's/^# pass \([0-9][0-9]*\)$/\1/p' "$out" | tail -n 1)
fail=$(sed -n 's/^# fail \([0-9][0-9]*\)$/\1/p' "$out" | tail -n 1)
cancelled=$(sed -n 's/^# cancelled \([0-9][0-9]*\)$/\1/p' "$out" | tail -n 1)
if [[ -z $pass || -z $fail ]]; then
	# No summary: node itself failed.
	echo "0 passed, 1 failed"
	exit 1
fi
fail=$((fail + ${cancelled:-0}))
if ((rc != 0 && fail == 0)); then
	fail=1
fi
echo "$pass passed, $fail failed"
((fail == 0))
