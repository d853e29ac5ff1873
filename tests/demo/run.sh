#!/usr/bin/env bash
# The demo suite: scripts/demo started for real (its own directory and a free port,
# JR_SKIP_SETUP=1), then checked as a user would use it: its env file names the
# gateway, a key, the model, the database, the console and an administrator's key;
# the database answers; the administrator's key holds the global role "admin" and opens
# the admin API (GET /jairouter/admin/v1/me); the
# official @anthropic-ai/sdk and openai SDKs call the demo model (tests/clients/
# demo-anthropic.mjs); the web console is served; SIGTERM (as Ctrl-C) stops everything.
# Prints "ok NAME" / "not ok NAME" per check and "N passed, N failed" last.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
# shellcheck source=scripts/lib/common.sh
source scripts/lib/common.sh

dir=$(mktemp -d /tmp/jr-demo.XXXXXX)
passed=0
failed=0
demo_pid=

stop_demo() {
	if [[ -n $demo_pid ]] && kill -0 "$demo_pid" 2>/dev/null; then
		kill -TERM "$demo_pid" 2>/dev/null || true
		wait "$demo_pid" 2>/dev/null || true
	fi
	demo_pid=
}
finish() {
	stop_demo
	jr_stack_stop "$dir/demo" 2>/dev/null || true
	rm -rf "$dir"
}
trap finish EXIT

port=$(jr_free_port)
JR_SKIP_SETUP=1 JAIROUTER_PORT=$port JAIROUTER_DEMO_DIR=$dir/demo \
	setsid scripts/demo >"$dir/demo.out" 2>&1 </dev/null &
demo_pid=$!

demo_ready() {
	local deadline=$((SECONDS + 120))
	while ((SECONDS < deadline)); do
		grep -q '^Press Ctrl-C to stop' "$dir/demo.out" && return 0
		kill -0 "$demo_pid" 2>/dev/null || break
		sleep 0.5
	done
	sed 's/^/# /' "$dir/demo.out"
	return 1
}
jr_step demo_starts demo_ready

env_complete() {
	local v
	for v in JAIROUTER_URL JAIROUTER_API_KEY JAIROUTER_MODEL JAIROUTER_DATABASE \
		JAIROUTER_CONSOLE_URL JAIROUTER_ADMIN_KEY; do
		grep -q "^$v=." "$dir/demo/env" || {
			echo "# $v missing from the env file"
			return 1
		}
	done
	# The file holds keys: readable by its owner only.
	local mode
	mode=$(stat -c %a "$dir/demo/env")
	[[ $mode == 600 ]] || echo "# the env file has mode $mode"
	[[ $mode == 600 ]]
}
jr_step env_file_complete env_complete
# shellcheck disable=SC1091 # written by scripts/demo
source "$dir/demo/env" 2>/dev/null || true

jr_step printed_console_and_admin_key grep -q "console    ${JAIROUTER_CONSOLE_URL:-none}" "$dir/demo.out"

admin_role() {
	local n
	n=$(psql -X -At -d "$JAIROUTER_DATABASE" -v prefix="${JAIROUTER_ADMIN_KEY:0:11}" <<'SQL'
SELECT count(*) FROM jairouter.api_key_roles kr
  JOIN jairouter.api_keys k ON k.id = kr.key_id
  JOIN jairouter.roles r ON r.id = kr.role_id
 WHERE k.prefix = :'prefix' AND r.name = 'admin' AND r.tenant_id IS NULL AND r.allow = '{*}'
SQL
)
	[[ $n == 1 ]]
}
jr_step database_url_and_admin_role admin_role

sdk() {
	local rc=0
	JAIROUTER_URL=$JAIROUTER_URL JAIROUTER_API_KEY=$JAIROUTER_API_KEY \
		JAIROUTER_MODEL=$JAIROUTER_MODEL bash tests/clients/run.sh demo-anthropic.mjs >"$dir/sdk.out" 2>&1 || rc=$?
	sed 's/^/# /' "$dir/sdk.out"
	((rc == 0)) && [[ $(tail -n 1 "$dir/sdk.out") == "4 passed, 0 failed" ]]
}
jr_step official_sdks_on_the_demo_model sdk

console_served() {
	local headers
	headers=$(curl -fsS -D - -o /dev/null --max-time 5 "$JAIROUTER_CONSOLE_URL") || return 1
	grep -qi "^content-security-policy: default-src 'none'" <<<"$headers"
}
jr_step console_served console_served

# The administrator's key opens the admin API (the console's sign-in call).
admin_api() {
	local me
	me=$(curl -fsS --max-time 5 "$JAIROUTER_URL/jairouter/admin/v1/me" \
		-H "Authorization: Bearer $JAIROUTER_ADMIN_KEY") || return 1
	jq -e '(.roles | index("admin")) != null and .tenant == "demo"' <<<"$me" >/dev/null || {
		echo "# /me answered $me"
		return 1
	}
}
jr_step admin_key_opens_the_admin_api admin_api

stops() {
	local pidfile
	kill -TERM "$demo_pid"
	wait "$demo_pid" 2>/dev/null || true
	demo_pid=
	for pidfile in "$dir"/demo/*.pid; do
		if jr_pid_alive "$pidfile"; then
			echo "# $(basename "$pidfile" .pid) still running"
			return 1
		fi
	done
}
jr_step sigterm_stops_everything stops

echo "$passed passed, $failed failed"
((failed == 0))
