#!/usr/bin/env bats
# The gateway end to end: HAProxy + jairouter-spoa + PostgreSQL + mock model
# servers, all on free loopback ports. The stack starts once per file; tests
# run in order and the disruptive ones (revocation, agent crash, database
# outage) come last.

bats_require_minimum_version 1.5.0

load helpers
stack_hooks

setup_file() {
	stack_start
	jr_ctl tenant add acme >/dev/null
	jr_ctl tenant add globex >/dev/null
	jr_ctl model add test-model be_mock >/dev/null
	jr_ctl model add test-model-2 be_mock2 >/dev/null
	jr_ctl model add retiring-model be_mock >/dev/null
	jr_ctl model add ghost-model be_nowhere >/dev/null
	KEY=$(issue_key acme)
	GLOBEX_KEY=$(issue_key globex)
	export KEY GLOBEX_KEY
	[[ -n $KEY && -n $GLOBEX_KEY ]]
	# The agent learns of the new rows through PostgreSQL notifications.
	BATS_TEST_TMPDIR=$BATS_FILE_TMPDIR eventually 10 status_is "$KEY" 200
}

@test "a chat completion reaches the model server with the body untouched and without the client's key" {
	BODY=$(chat_body test-model ',"temperature":0.25,"tools":[{"type":"function","function":{"name":"f","parameters":{}}}]')
	auth_chat "$KEY"
	expect_status 200
	[[ $(hdr x-mock-server) == mock1 ]]
	[[ $(hdr x-mock-saw-authorization) == absent ]]
	[[ $(hdr x-mock-saw-x-api-key) == absent ]]
	[[ $(hdr x-mock-body-sha256) == "$(printf '%s' "$BODY" | sha256sum | cut -d' ' -f1)" ]]
	id=$(hdr x-request-id)
	[[ $id =~ ^[0-9a-f-]{36}$ ]]
	[[ $(hdr x-mock-request-id) == "$id" ]]
	[[ -n $(hdr x-jairouter-overhead-ms) ]]
	[[ $(json 'b.object') == chat.completion ]]
}

@test "the x-api-key header is accepted as the credential" {
	chat -H "x-api-key: $KEY"
	expect_status 200
	[[ $(hdr x-mock-saw-x-api-key) == absent ]]
	[[ $(hdr x-mock-saw-authorization) == absent ]]
}

@test "every request gets its own request id" {
	auth_chat "$KEY"
	a=$(hdr x-request-id)
	auth_chat "$KEY" -H 'x-request-id: client-chosen'
	b=$(hdr x-request-id)
	[[ -n $a && -n $b && $a != "$b" && $b != client-chosen ]]
}

@test "a second model routes to the second backend" {
	BODY=$(chat_body test-model-2) auth_chat "$KEY"
	expect_status 200
	[[ $(hdr x-mock-server) == mock2 ]]
}

@test "a streamed request passes server-sent events through" {
	BODY=$(chat_body test-model ',"stream":true') auth_chat "$KEY" -N
	expect_status 200
	[[ $(hdr content-type) == text/event-stream* ]]
	grep -q '^data: {' "$BATS_TEST_TMPDIR/body"
	grep -q '^data: \[DONE\]' "$BATS_TEST_TMPDIR/body"
}

@test "GET /v1/models lists the active models, answered by the gateway" {
	req -H "authorization: Bearer $KEY" /v1/models
	expect_status 200
	[[ $(hdr content-type) == application/json* ]]
	[[ -n $(hdr x-request-id) ]]
	[[ -z $(hdr x-mock-server) ]]
	[[ $(json 'b.object') == list ]]
	[[ $(json 'b.data.map(m => m.id).includes("test-model")') == true ]]
	[[ $(json 'b.data.every(m => m.object === "model")') == true ]]
	req -H "authorization: Bearer $KEY" /v1/models/test-model-2
	expect_status 200
	[[ $(json 'b.id') == test-model-2 ]]
	req -H "authorization: Bearer $KEY" /v1/models/no-such-model
	expect_openai_error 404 invalid_request_error model_not_found
	req /v1/models
	expect_openai_error 401 authentication_error
}

@test "a missing API key is refused with 401 authentication_error" {
	chat
	expect_openai_error 401 authentication_error
	[[ -z $(hdr x-mock-server) ]]
}

@test "a wrong API key is refused with 401 invalid_api_key" {
	auth_chat "jr-$(printf '0%.0s' {1..64})"
	expect_openai_error 401 authentication_error invalid_api_key
	auth_chat "not-even-a-key"
	expect_openai_error 401 authentication_error
}

@test "two credentials at once are refused with 400" {
	chat -H "authorization: Bearer $KEY" -H "x-api-key: $KEY"
	expect_openai_error 400 invalid_request_error
}

@test "an unknown model is 404 model_not_found" {
	BODY=$(chat_body no-such-model) auth_chat "$KEY"
	expect_openai_error 404 invalid_request_error model_not_found
	[[ $(json 'b.error.param') == model ]]
}

@test "a request without a model is 400" {
	BODY='{"messages":[{"role":"user","content":"hi"}]}' auth_chat "$KEY"
	expect_openai_error 400 invalid_request_error
}

@test "a body that is not JSON is 400 and never routed" {
	BODY='this is not JSON' auth_chat "$KEY"
	expect_openai_error 400 invalid_request_error
	[[ $(json 'b.error.code') == invalid_json ]]
	[[ -z $(hdr x-mock-server) ]]
	BODY='{"model": true, "messages": []}' auth_chat "$KEY"
	expect_openai_error 400 invalid_request_error
	[[ $(json 'b.error.code') == invalid_type ]]
	[[ -z $(hdr x-mock-server) ]]
}

@test "truncated JSON is 400 from the gateway, never routed" {
	# The agent validates the whole document, not just the model field.
	BODY='{"model": "test-model", "messages": [' auth_chat "$KEY"
	expect_openai_error 400 invalid_request_error
	[[ $(json 'b.error.code') == invalid_json ]]
	[[ -z $(hdr x-mock-server) ]]
}

@test "a body with two model fields is refused, escaped or not" {
	# Routed by one model, run as another: refused before any model server.
	BODY='{"model": "test-model", "model": "test-model-2", "messages": []}' auth_chat "$KEY"
	expect_openai_error 400 invalid_request_error
	[[ $(json 'b.error.code') == duplicate_field ]]
	[[ -z $(hdr x-mock-server) ]]
	BODY='{"model": "test-model", "mod\u0065l": "test-model-2", "messages": []}' auth_chat "$KEY"
	expect_openai_error 400 invalid_request_error
	[[ $(json 'b.error.code') == duplicate_field ]]
	# One model field, escaped in its value, is simply that model.
	BODY='{"model": "test\u002dmodel", "messages": [{"role": "user", "content": "hi"}]}' auth_chat "$KEY"
	expect_status 200
	[[ $(hdr x-mock-server) == mock1 ]]
}

@test "an unknown URL is 404" {
	req -H "authorization: Bearer $KEY" -X POST --data '{}' /v1/no/such/endpoint
	expect_openai_error 404 invalid_request_error
}

@test "a body larger than tune.bufsize is 413 and never routed" {
	big=$BATS_TEST_TMPDIR/big.json
	node -e 'process.stdout.write(JSON.stringify({model: "test-model", messages: [{role: "user", content: "x".repeat(1536 * 1024)}]}))' >"$big"
	chat -H "authorization: Bearer $KEY" --data-binary "@$big"
	expect_openai_error 413 invalid_request_error
	[[ -z $(hdr x-mock-server) ]]
}

@test "a model whose backend does not exist gets a JSON 503, not a wrong backend" {
	BODY=$(chat_body ghost-model) auth_chat "$KEY"
	expect_openai_error 503 server_error
	[[ -z $(hdr x-mock-server) ]]
}

@test "an upstream error passes through with the request id" {
	auth_chat "$KEY" -H 'x-mock-status: 500'
	expect_status 500
	[[ $(hdr x-mock-server) == mock1 ]]
	[[ -n $(hdr x-request-id) ]]
}

@test "HAProxy logs the request id, tenant and key prefix but never the key" {
	auth_chat "$KEY"
	id=$(hdr x-request-id)
	eventually 5 grep -q "id=$id" "$STACK/haproxy.log"
	line=$(grep "id=$id" "$STACK/haproxy.log")
	[[ $line == *"tenant=acme"* ]]
	[[ $line == *"key=${KEY:0:11}"* ]]
	run ! grep -qF "$KEY" "$STACK/haproxy.log" "$STACK/agent.log"
}

# report_metric NAME: a counter of the agent's report listener.
report_metric() {
	curl -fsS --max-time 5 "$JR_AGENT_METRICS/metrics" | awk -v n="jairouter_report_$1" '$1 == n { print $2 }'
}

@test "every request ends with exactly one report line to the agent, denials and streams included" {
	before=$(report_metric lines_total)
	auth_chat "$KEY"
	expect_status 200
	chat -H 'authorization: Bearer jr-nope'
	expect_status 401
	# A direct stream also crosses the rewrite detour, whose line carries its usage.
	BODY=$(chat_body test-model ',"stream":true')
	auth_chat "$KEY"
	expect_status 200
	eventually 5 test "$(report_metric lines_total)" -ge $((before + 4))
	sleep 0.3 # nothing more may arrive
	[[ $(report_metric lines_total) -eq $((before + 4)) ]]
	[[ $(report_metric truncated_total) -eq 0 ]]
	[[ $(report_metric malformed_total) -eq 0 ]]
	[[ $(report_metric dropped_total) -eq 0 ]]
}

@test "the agent exposes jairouter_ metrics" {
	curl -fsS --max-time 5 "$JR_AGENT_METRICS/metrics" >"$BATS_TEST_TMPDIR/metrics"
	grep -q '^jairouter_[a-z_]*_total' "$BATS_TEST_TMPDIR/metrics"
	grep -q '^# TYPE jairouter_' "$BATS_TEST_TMPDIR/metrics"
}

@test "HAProxy exposes Prometheus metrics and its admin socket" {
	curl -fsS --max-time 5 "$JR_STATS_URL/metrics" | grep -q '^haproxy_backend_status'
	[[ -S $JR_STATS_SOCK ]]
	[[ $(stat -c %a "$JR_STATS_SOCK") == 600 ]]
}

@test "a revoked key is refused within a second" {
	k=$(issue_key acme)
	eventually 5 status_is "$k" 200
	jr_ctl key revoke "${k:0:11}" >/dev/null
	within_ms 1000 status_is "$k" 401
	expect_openai_error 401 authentication_error
	# The other key of the tenant still works.
	status_is "$KEY" 200
}

@test "a disabled tenant is refused" {
	status_is "$GLOBEX_KEY" 200
	jr_ctl tenant disable globex >/dev/null
	within_ms 2000 status_is "$GLOBEX_KEY" 403
	expect_openai_error 403 permission_error
	status_is "$KEY" 200
}

@test "a disabled model is refused" {
	BODY=$(chat_body retiring-model) status_is "$KEY" 200
	jr_ctl model disable retiring-model >/dev/null
	BODY=$(chat_body retiring-model) within_ms 2000 status_is "$KEY" 404
	expect_openai_error 404 invalid_request_error
	status_is "$KEY" 200
}

@test "a model server that is down gives a JSON 503 from HAProxy" {
	jr_stop_pid "$STACK" mock-mock2 TERM
	BODY=$(chat_body test-model-2) auth_chat "$KEY"
	expect_openai_error 503 server_error
	[[ -z $(hdr x-mock-server) ]]
	# The other backend is unaffected.
	status_is "$KEY" 200
}

@test "raw garbage on the SPOP port closes the connection and the agent keeps serving" {
	run node -e '
		const net = require("net");
		const [host, port] = process.argv[1].split(":");
		const payloads = [
			Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),       // a huge frame length
			Buffer.from([0, 0, 0, 3, 1, 2, 3]),                     // shorter than any frame
			Buffer.from([0, 0, 0, 9, 3, 0, 0, 0, 1, 1, 1, 0, 0]),   // NOTIFY before HELLO
			Buffer.from([0, 0, 0, 12, 1, 0, 0, 0, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff]), // HELLO, bad KV
		];
		let left = payloads.length, failed = 0;
		for (const p of payloads) {
			const s = net.connect(Number(port), host, () => s.write(p));
			const t = setTimeout(() => { failed++; console.log("not closed: " + p.toString("hex")); s.destroy(); }, 5000);
			s.on("data", () => {});
			s.on("error", () => {});
			s.on("close", () => { clearTimeout(t); if (--left === 0) { console.log(failed ? "FAIL" : "ALL CLOSED"); process.exit(failed ? 1 : 0); } });
		}' "$JR_AGENT_ADDR"
	echo "$output"
	[[ $status == 0 ]]
	[[ $output == *"ALL CLOSED"* ]]
	jr_pid_alive "$STACK/agent.pid"
	status_is "$KEY" 200
}

@test "SIGHUP: a broken configuration is reported and the running one kept; a good one applies" {
	local pid
	pid=$(jr_pid_of "$STACK/agent.pid")
	cp "$STACK/agent.conf" "$STACK/agent.conf.good"
	echo 'deadline_ms = not-a-number' >>"$STACK/agent.conf"
	kill -HUP "$pid"
	eventually 5 grep -q 'reload failed, keeping the current configuration' "$STACK/agent.log"
	status_is "$KEY" 200
	cp "$STACK/agent.conf.good" "$STACK/agent.conf"
	echo 'deadline_ms = 120' >>"$STACK/agent.conf"
	kill -HUP "$pid"
	eventually 5 grep -q 'configuration reloaded' "$STACK/agent.log"
	status_is "$KEY" 200
	kill -0 "$pid"
}

@test "agent down: requests fail closed with 503 agent_unavailable; after a restart they pass again" {
	jr_agent_stop "$STACK" KILL
	chat -H "authorization: Bearer $KEY"
	expect_openai_error 503 server_error agent_unavailable
	[[ -z $(hdr x-mock-server) ]]
	[[ -n $(hdr retry-after) ]]
	# Also without a key, and once HAProxy has marked the agent DOWN.
	sleep 2.5
	chat
	expect_openai_error 503 server_error agent_unavailable
	jr_agent_start "$STACK"
	eventually 15 status_is "$KEY" 200
}

@test "PostgreSQL down: a cached key keeps working and /healthz reports the database down" {
	jr_pg_stop "$STACK"
	eventually 15 bash -c 'curl -sS --max-time 2 "$1/healthz" | grep -q "\"database\":\"down\""' _ "$JR_AGENT_METRICS"
	status_is "$KEY" 200
	[[ $(hdr x-mock-server) == mock1 ]]
}

@test "an agent started while PostgreSQL is down answers 503 not ready, then serves once it is back" {
	# (PostgreSQL is still stopped by the previous test.)
	jr_agent_stop "$STACK" TERM
	jr_spawn "$STACK" agent "$(jr_agent_bin)" -c "$STACK/agent.conf"
	eventually 10 bash -c '[[ $(curl -s -o /dev/null -w "%{http_code}" "$1/readyz") == 503 ]]' _ "$JR_AGENT_METRICS"
	# HAProxy first marks the restarted agent UP again (spop-check, rise 2).
	eventually 15 error_code_is "$KEY" 503 gateway_not_ready
	[[ -n $(hdr retry-after) ]]
	[[ -z $(hdr x-mock-server) ]]
	jr_pg_start "$STACK"
	eventually 20 status_is "$KEY" 200
}

@test "the agent stops cleanly on SIGTERM with no sanitizer report" {
	jr_agent_stop "$STACK" TERM
	run ! grep -nE 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$STACK/agent.log"
}
