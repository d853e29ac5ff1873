#!/usr/bin/env bats
# What crosses the gateway's edge, in whichever layout the suite runs (the demo's
# plain HTTP, or the operator composition over TLS with JR_STACK_LAYOUT=operator):
# internal headers forged by a client change nothing (HTTP/1.1 and HTTP/2, any
# letter case), only the allow-listed headers reach a model server, and every
# answer HAProxy produces on the gateway path is OpenAI JSON with a request id.

bats_require_minimum_version 1.5.0

load helpers
stack_hooks

setup_file() {
	stack_start
	jr_ctl tenant add acme >/dev/null
	jr_ctl model add test-model be_mock >/dev/null
	jr_ctl model add short-model be_mock_short >/dev/null
	jr_ctl model add ghost-model be_nowhere >/dev/null
	KEY=$(issue_key acme)
	export KEY
	[[ -n $KEY ]]
	BATS_TEST_TMPDIR=$BATS_FILE_TMPDIR eventually 10 status_is "$KEY" 200
}

# h2_flag: curl's option for HTTP/2 on $JR_URL (ALPN over TLS, prior knowledge
# in clear text: HAProxy recognises the HTTP/2 preface on any HTTP bind).
h2_flag() {
	if [[ $JR_URL == https://* ]]; then echo --http2; else echo --http2-prior-knowledge; fi
}

# report_line ID: the agent's report line of request ID (HAProxy's copy on stderr).
report_line() {
	grep "^id=$1 " "$STACK/haproxy.log" | grep -v ' hop=' | tail -n 1
}

# usage_of ID: "tenant model backend server" from the request's report line.
usage_of() {
	report_line "$1" | awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
		END { print v["tenant"], v["model"], v["lb"], v["ls"], v["st"], v["pt"], v["ct"] }'
}

@test "forged internal headers change nothing: route, identity, usage (HTTP/1.1 and HTTP/2, any case)" {
	local proto
	for proto in --http1.1 "$(h2_flag)"; do
		auth_chat "$KEY" "$proto"
		expect_status 200
		base_server=$(hdr x-mock-server) base_body=$(hdr x-mock-body-sha256)
		base_id=$(hdr x-request-id)
		auth_chat "$KEY" "$proto" \
			-H 'X-JaiRouter-Adapter: {"kind":"anthropic","url":"http://127.0.0.1:9/","model":"other"}' \
			-H 'X-JAIROUTER-REWRITE: be_mock2 10 12 22676f6e6522 mock1' \
			-H 'x-Jairouter-Model: ghost-model' -H 'X-Jairouter-Fallback: forged' \
			-H 'x-jairouter-overhead-ms: 99' -H 'X-JAIROUTER-TENANT: globex' \
			-H 'X-JaiRouter-Client: 203.0.113.9 4444'
		expect_status 200
		[[ $(hdr x-mock-server) == "$base_server" ]]
		[[ $(hdr x-mock-body-sha256) == "$base_body" ]]
		[[ $(hdr x-jairouter-model) == test-model ]]
		[[ -z $(hdr x-jairouter-fallback) ]]
		[[ $(hdr x-mock-header-names) != *x-jairouter-* ]]
		id=$(hdr x-request-id)
		eventually 5 test -n "$(report_line "$id")"
		eventually 5 test -n "$(report_line "$base_id")"
		[[ $(usage_of "$id") == "$(usage_of "$base_id")" ]]
		[[ $(usage_of "$id") == "acme test-model be_mock mock1 200 "* ]]
		# The client address is the real one, not the forged x-jairouter-client.
		[[ $(report_line "$id") == *" ci=127.0.0.1 "* ]]
		[[ $(hdr x-mock-x-forwarded-for) == 127.0.0.1 ]]
	done
}

@test "only allow-listed headers reach the model server; forwarding headers are the gateway's own" {
	local proto
	for proto in --http1.1 "$(h2_flag)"; do
		auth_chat "$KEY" "$proto" -H 'Cookie: session=secret' -H 'Proxy-Authorization: Basic eDp5' \
			-H 'api-key: client-key' -H 'X-Forwarded-For: 203.0.113.7' -H 'Forwarded: for=203.0.113.7' \
			-H 'X-Real-IP: 203.0.113.7' -H 'x-jairouter-user: alice' -H 'x-session-id: s1' \
			-H 'X-Custom-Tracking: 1' -H 'OpenAI-Beta: assistants=v2' -H 'User-Agent: edge-test'
		expect_status 200
		names=$(hdr x-mock-header-names)
		echo "upstream saw: $names"
		for h in cookie proxy-authorization api-key forwarded x-real-ip x-jairouter-user \
			x-session-id x-custom-tracking authorization x-api-key; do
			[[ ,$names, != *,$h,* ]] || {
				echo "$h reached the model server"
				return 1
			}
		done
		for h in content-type content-length openai-beta user-agent x-request-id x-forwarded-for; do
			[[ ,$names, == *,$h,* ]] || {
				echo "$h did not reach the model server"
				return 1
			}
		done
		# One X-Forwarded-For, the gateway's: the client's address, not the forged one.
		[[ $(hdr x-mock-x-forwarded-for) == 127.0.0.1 ]]
	done
}

@test "HAProxy's own answers on the gateway path are OpenAI JSON with a request id" {
	# 502: the model server answers something that is not HTTP.
	auth_chat "$KEY" -H 'x-mock-garbage: 1'
	expect_openai_error 502 server_error bad_gateway
	# 504: the model server is slower than its backend's timeout server (2 s).
	BODY=$(chat_body short-model) auth_chat "$KEY" -H 'x-mock-delay-ms: 4000'
	expect_openai_error 504 server_error upstream_timeout
	# 503: the catalogue names a backend that does not exist.
	BODY=$(chat_body ghost-model) auth_chat "$KEY"
	expect_openai_error 503 server_error no_route
	# 413: a body larger than one buffer, never routed.
	node -e 'process.stdout.write(JSON.stringify({model: "test-model", messages: [{role: "user", content: "x".repeat(1536 * 1024)}]}))' >"$BATS_TEST_TMPDIR/big.json"
	chat -H "authorization: Bearer $KEY" --data-binary "@$BATS_TEST_TMPDIR/big.json"
	expect_openai_error 413 invalid_request_error request_too_large
	[[ -z $(hdr x-mock-server) ]]
	# 404, 401, 400: the agent's, through the same rules.
	req -H "authorization: Bearer $KEY" -X POST --data {} /v1/no/such/endpoint
	expect_openai_error 404 invalid_request_error
	chat
	expect_openai_error 401 authentication_error
	BODY='{"model":' auth_chat "$KEY"
	expect_openai_error 400 invalid_request_error
}

@test "a body over one buffer is 413 every time, never a 502 from the internal hop (20 in parallel)" {
	node -e 'process.stdout.write(JSON.stringify({model: "test-model", messages: [{role: "user", content: "x".repeat(1536 * 1024)}]}))' >"$BATS_TEST_TMPDIR/big.json"
	for i in $(seq 1 20); do
		curl -sS -o /dev/null -w '%{http_code}\n' --max-time 30 "$JR_URL$CHAT_PATH" \
			-H "authorization: Bearer $KEY" -H 'content-type: application/json' \
			--data-binary "@$BATS_TEST_TMPDIR/big.json" &
	done >"$BATS_TEST_TMPDIR/codes"
	wait
	sort "$BATS_TEST_TMPDIR/codes" | uniq -c
	[[ $(grep -c '^413$' "$BATS_TEST_TMPDIR/codes") -eq 20 ]]
}

@test "the console and the administration API are reached from the clients' entry, without a decision or a report line" {
	# Whichever entry the suite runs on (the operator frontend's line, or the gateway's
	# own listener: JR_STACK_LAYOUT=direct), /jairouter/console/ and /jairouter/admin/
	# are served by the console's frontend and the agent's administration listener,
	# never by the model API: no agent decision, no report line.
	req -X GET /jairouter/console
	expect_status 302
	[[ $(hdr location) == /jairouter/console/ ]]
	req -X GET /jairouter/console/
	expect_status 200
	[[ $(hdr content-type) == "text/html; charset=utf-8" ]]
	[[ -n $(hdr content-security-policy) ]]
	req -X GET /jairouter/console/no-such-file.js
	expect_status 404
	# The administration API without a credential: its own 401, not the model API's.
	req -X GET /jairouter/admin/v1/tenants
	expect_status 401
	# A chat request afterwards: once its report line is written, any earlier one is too.
	auth_chat "$KEY" --http1.1
	expect_status 200
	id=$(hdr x-request-id)
	eventually 5 grep -q "^id=$id " "$STACK/haproxy.log"
	! grep -E ' p=/jairouter/(console|admin)' "$STACK/haproxy.log"
}
