#!/usr/bin/env bash
# The console suite: a real OpenID provider (tests/oidc/provider.mjs --console: the
# console's public client, login and consent pages) and scripts/demo started for real
# (its own directory, a free port, the console's OpenID sign-in pointed at that
# provider; the provider's tokens accepted for tenant demo, scope gw.admin mapped to
# the role admin), then the web console driven in Debian's chromium by puppeteer-core
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
	jr_stop_pid "$dir" op TERM 2>/dev/null || true
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

mapfile -t ports < <(jr_free_ports 2)
port=${ports[0]} op_port=${ports[1]}
issuer=http://127.0.0.1:$op_port
(cd tests/oidc && node provider.mjs keygen "$dir/opkeys" k1 &&
	jr_spawn "$dir" op node provider.mjs serve "$op_port" "$dir/opkeys" k1 \
		--console "http://127.0.0.1:$port/jairouter/console/")
jr_wait_tcp 127.0.0.1 "$op_port" 20

JR_SKIP_SETUP=1 JAIROUTER_PORT=$port JAIROUTER_DEMO_DIR=$dir/demo \
	JR_CONSOLE_OIDC_ISSUER=$issuer JR_CONSOLE_OIDC_SCOPE="openid gw.admin" JR_CONSOLE_OIDC_NAME="Test SSO" \
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

# The provider's tokens: tenant demo, the scope gw.admin is the role admin.
psql -X -q -v ON_ERROR_STOP=1 -d "$JAIROUTER_DATABASE" -v url="$issuer" <<'SQL'
INSERT INTO jairouter.jwt_issuers (name, issuer, discovery_url, algorithms, audience, tenant_id,
		role_claim, role_map)
	SELECT 'console-sso', :'url', :'url' || '/.well-known/openid-configuration', '{RS256}',
		'jairouter', id, 'scope', '{"gw.admin": "admin"}'
	FROM jairouter.tenants WHERE name = 'demo';
SQL
# The agents know the issuer once a client-credentials token of it is no longer refused
# as unknown (401): it has no mapped role, so then 403.
issuer_known() {
	local token code
	token=$(curl -fsS --max-time 5 -u gw-test:gw-test-secret-0123456789abcdef -d grant_type=client_credentials \
		-d scope=gw.chat -d resource=urn:jairouter "$issuer/token" | jq -r .access_token) || return 1
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$JAIROUTER_URL/v1/models" \
		-H "Authorization: Bearer $token")
	[[ $code != 401 ]]
}
deadline=$((SECONDS + 20))
until issuer_known; do
	if ((SECONDS > deadline)); then
		echo "# the gateway did not accept the provider's tokens within 20 s"
		echo "0 passed, 1 failed"
		exit 1
	fi
	sleep 0.5
done

out=$dir/tap.out
rc=0
(cd tests/console && JR_CHROMIUM=$chromium JR_CONSOLE_LOGS=$dir/demo JR_CONSOLE_OIDC=$issuer node --test --test-reporter=tap --test-concurrency=1 \
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
