#!/usr/bin/env bash
# A small bounded traffic against a stack started by jr_stack_start (its env sourced):
# two tenants, a priced model and a fallback chain, a tenant budget, a key rate limit, a
# stream, a bad key, an upstream error. Every series the rules and dashboards read gets a
# sample. Prints the statuses seen, one per line ("200", "429"...).
#
#   tests/observability/traffic.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/lib/common.sh
source "$root/scripts/lib/common.sh"

sql() {
	psql -X -q -t -A -v ON_ERROR_STOP=1 -d "$JR_DATABASE" -c "$1"
}

key_of() {
	jr_ctl key issue "$1" | grep -Eo 'jr-[0-9a-f]{64}' | tail -n 1
}

# post KEY MODEL [EXTRA_JSON [CURL_ARGS...]]: one chat completion; prints the status.
post() {
	local key=$1 model=$2 extra=${3:-}
	shift 3 || shift $#
	curl -sS -o /dev/null --max-time 20 -w '%{http_code}\n' -H "authorization: Bearer $key" \
		-H 'content-type: application/json' "$@" \
		--data-binary "{\"model\":\"$model\",\"messages\":[{\"role\":\"user\",\"content\":\"Say hi\"}]$extra}" \
		"$JR_URL/v1/chat/completions" || echo 000
}

if ! sql "SELECT 1 FROM jairouter.models WHERE name = 'obs-model'" | grep -q 1; then
	jr_ctl tenant add obs-acme >/dev/null
	jr_ctl tenant add obs-beta >/dev/null
	sql "UPDATE jairouter.tenants SET labels = '{\"team\":\"search\",\"plan\":\"gold\"}' WHERE name = 'obs-acme'" >/dev/null
	jr_ctl model add obs-model be_mock --price-in 2 --price-out 4 >/dev/null
	jr_ctl model add obs-spare be_mock2 --price-in 1 --price-out 1 >/dev/null
	sql "SELECT jairouter.set_model_fallbacks('obs-model', ARRAY['obs-spare'])" >/dev/null
	# The budget is large (never reached here); the key limit of obs-beta refuses.
	sql "SELECT jairouter.set_limit('tenant', 'budget', 'month', 1000, NULL, 'obs-acme')" >/dev/null
	sql "SELECT jairouter.set_limit('tenant', 'quota', 'month', 100000000, NULL, 'obs-acme')" >/dev/null
	sql "SELECT jairouter.set_limit('tenant', 'requests', 'sliding_window', 3, 60000, 'obs-beta')" >/dev/null
	sleep 0.5
fi
ka=$(key_of obs-acme)
kb=$(key_of obs-beta)
for _ in 1 2 3 4 5 6; do
	post "$ka" obs-model
done
post "$ka" obs-model ',"stream":true'
post "$ka" obs-model ',"stream":true,"stream_options":{"include_usage":true}'
# An upstream error (the mock answers with the status asked for).
post "$ka" obs-model '' -H 'x-mock-status: 500'
for _ in 1 2 3 4 5; do
	post "$kb" obs-model
done
post jr-0000000000000000000000000000000000000000000000000000000000000000 obs-model
post "$ka" no-such-model
