# shellcheck shell=bash
# Helpers for the bats suites: HTTP requests through the gateway and checks on
# the answers. JSON is checked with node (scripts/setup guarantees it).

# shellcheck source=scripts/lib/common.sh
source "$BATS_TEST_DIRNAME/../../scripts/lib/common.sh"

CHAT_PATH=/v1/chat/completions

# chat_body MODEL [EXTRA_JSON_FIELDS]: a minimal chat completion request.
chat_body() {
	printf '{"model":"%s","messages":[{"role":"user","content":"Say hi"}]%s}' "$1" "${2:-}"
}

# req [CURL_ARGS...] PATH: sends a request to the gateway. Sets STATUS and
# leaves the response in $BATS_TEST_TMPDIR/{headers,body}.
req() {
	local path=${*: -1}
	local args=("${@:1:$#-1}")
	STATUS=$(curl -sS --max-time 30 -o "$BATS_TEST_TMPDIR/body" -D "$BATS_TEST_TMPDIR/headers" \
		-w '%{http_code}' "${args[@]}" "$JR_URL$path") || STATUS=000
}

# chat [CURL_ARGS...]: POST $CHAT_PATH with $BODY (default: a test-model request).
chat() {
	req -X POST -H 'content-type: application/json' --data-binary "${BODY:-$(chat_body test-model)}" \
		"$@" "$CHAT_PATH"
}

# auth_chat KEY [CURL_ARGS...]
auth_chat() {
	local key=$1
	shift
	chat -H "authorization: Bearer $key" "$@"
}

# hdr NAME: the value of response header NAME (last one), empty if absent.
hdr() {
	awk -v n="$(printf '%s' "$1" | tr '[:upper:]' '[:lower:]')" '
		{ sub(/\r$/, "") }
		index($0, ":") { h = tolower(substr($0, 1, index($0, ":") - 1));
		                 if (h == n) { v = substr($0, index($0, ":") + 1); sub(/^[ \t]+/, "", v); val = v } }
		END { print val }' "$BATS_TEST_TMPDIR/headers"
}

# json EXPR: evaluates a JavaScript expression over the parsed body (as `b`).
json() {
	node -e '
		const fs = require("fs");
		const b = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
		const v = eval(process.argv[2]);
		process.stdout.write(v === undefined ? "undefined" : typeof v === "string" ? v : JSON.stringify(v));
	' "$BATS_TEST_TMPDIR/body" "$1"
}

show_response() {
	echo "status: $STATUS"
	cat "$BATS_TEST_TMPDIR/headers" 2>/dev/null || true
	head -c 2000 "$BATS_TEST_TMPDIR/body" 2>/dev/null || true
	echo
}

expect_status() {
	if [[ $STATUS != "$1" ]]; then
		echo "expected HTTP $1"
		show_response
		return 1
	fi
}

# expect_openai_error STATUS TYPE [CODE]: the response is STATUS with the
# OpenAI error envelope, JSON content type and a request id.
expect_openai_error() {
	local status=$1 type=$2 code=${3:-} ok
	expect_status "$status"
	ok=$(node -e '
		const fs = require("fs");
		const [file, type, code] = process.argv.slice(1);
		let b; try { b = JSON.parse(fs.readFileSync(file, "utf8")); } catch (e) { console.log("body is not JSON: " + e.message); process.exit(0); }
		const e = b && b.error;
		if (!e || typeof e !== "object") console.log("no error object");
		else if (typeof e.message !== "string" || e.message === "") console.log("error.message missing");
		else if (e.type !== type) console.log("error.type is " + JSON.stringify(e.type) + ", expected " + type);
		else if (!("param" in e) || !("code" in e)) console.log("error.param or error.code missing");
		else if (code && e.code !== code) console.log("error.code is " + JSON.stringify(e.code) + ", expected " + code);
		else console.log("ok");
	' "$BATS_TEST_TMPDIR/body" "$type" "$code")
	if [[ $ok != ok ]]; then
		echo "$ok"
		show_response
		return 1
	fi
	if [[ $(hdr content-type) != application/json* ]]; then
		echo "content-type is '$(hdr content-type)'"
		show_response
		return 1
	fi
	if [[ -z $(hdr x-request-id) ]]; then
		echo "no x-request-id"
		show_response
		return 1
	fi
}

# eventually SECONDS CMD...: retries CMD every 100 ms until it succeeds.
eventually() {
	local secs=$1 deadline
	shift
	deadline=$((SECONDS + secs))
	while true; do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		if ((SECONDS >= deadline)); then
			"$@"
			return 1
		fi
		sleep 0.1
	done
}

# within_ms MS CMD...: like eventually with a millisecond bound.
within_ms() {
	local ms=$1 start now
	shift
	start=$(date +%s%3N)
	while true; do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		now=$(date +%s%3N)
		if ((now - start >= ms)); then
			"$@"
			return 1
		fi
		sleep 0.05
	done
}

# status_is KEY STATUS: one request with KEY answers STATUS.
status_is() {
	auth_chat "$1"
	expect_status "$2"
}

# error_code_is KEY STATUS CODE: one request with KEY answers STATUS with the
# OpenAI error code CODE.
error_code_is() {
	status_is "$1" "$2" && [[ $(json 'b.error.code') == "$3" ]]
}

# issue_key TENANT: prints a new API key.
issue_key() {
	jr_ctl key issue "$1" | grep -Eo 'jr-[0-9a-f]{64}' | tail -n 1
}

# db_sql STATEMENT, or db_sql PSQL_ARGS... (-c, -v, a script on stdin): psql on the
# stack's database, tuples only and unaligned, stopping at the first error.
db_sql() {
	if (($# == 1)); then
		set -- -c "$1"
	fi
	psql -X -q -t -A -v ON_ERROR_STOP=1 -d "$JR_DATABASE" "$@"
}

# new_tenant NAME: a tenant with one key (printed).
new_tenant() {
	jr_ctl tenant add "$1" >/dev/null
	issue_key "$1"
}

# stack_teardown_file: stops the file's stack ($STACK). bats has no "did a test fail"
# flag here: the logs are dumped when asked (JR_DUMP_LOGS) or when the agent's or the
# adapter's log holds a sanitizer report.
stack_teardown_file() {
	[[ -n ${STACK:-} ]] || return 0
	jr_stack_stop "$STACK"
	if [[ -n ${JR_DUMP_LOGS:-} ]] ||
		grep -qE 'Sanitizer|runtime error' "$STACK/agent.log" "$STACK/adapter.log" 2>/dev/null; then
		jr_dump_logs "$STACK" >&3
	fi
}

# stack_start (setup_file): starts the file's stack in $BATS_FILE_TMPDIR/stack, exported
# as STACK.
stack_start() {
	export STACK=$BATS_FILE_TMPDIR/stack
	jr_stack_start "$STACK"
}

# agent_restart_with LINE...: appends the lines to the stack's agent.conf and restarts
# the agent (for the settings read only at start).
agent_restart_with() {
	printf '%s\n' "$@" >>"$STACK/agent.conf"
	jr_agent_stop "$STACK"
	jr_agent_start "$STACK"
}

# agent_reload_keys: SIGHUP to the stack's agent, then waits until it has loaded its
# master keys once more.
agent_reload_keys() {
	local n
	n=$(grep -c 'master keys:' "$STACK/agent.log" || true)
	kill -HUP "$(jr_pid_of "$STACK/agent.pid")"
	eventually 10 keys_loaded_more_than "$n"
}

keys_loaded_more_than() {
	(($(grep -c 'master keys:' "$STACK/agent.log") > $1))
}

# stack_master_keys (setup_file): provider credentials need the agent's master keys. A
# fresh key file, named in the agent's configuration and loaded (agent_reload_keys);
# exports JAIROUTER_MASTER_KEY_FILE and JAIROUTER_SPOA, with which `jr_ctl credential`
# seals the credentials.
stack_master_keys() {
	export JAIROUTER_MASTER_KEY_FILE=$BATS_FILE_TMPDIR/master.keys JAIROUTER_SPOA
	JAIROUTER_SPOA=$(jr_agent_bin)
	(umask 077 && printf 'k1:%s\n' "$(openssl rand -hex 32)" >"$JAIROUTER_MASTER_KEY_FILE")
	printf 'master_key_file = "%s"\n' "$JAIROUTER_MASTER_KEY_FILE" >>"$STACK/agent.conf"
	agent_reload_keys
}

# stack_teardown: a failed test shows the logs of the whole stack.
stack_teardown() {
	if [[ ${BATS_TEST_COMPLETED:-} != 1 ]]; then
		jr_dump_logs "$STACK"
	fi
}

# stack_hooks: the hooks of a file whose tests share one stack ($STACK), called at the
# file's top level after `load helpers`: teardown_file stops the stack, setup loads
# these helpers for each test, teardown shows the stack's logs when a test failed. A
# file that needs more defines its own hook after the call.
# shellcheck disable=SC2317 # bats calls the hooks by name
stack_hooks() {
	teardown_file() { stack_teardown_file; }
	setup() { load helpers; }
	teardown() { stack_teardown; }
}
