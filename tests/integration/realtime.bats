#!/usr/bin/env bats
# GET /v1/realtime end to end (docs/api.md, "Realtime"): the agent decides the WebSocket
# upgrade (identity, model from the query, policy, limits), jairouter-adapter relays the
# session to the mock's Realtime API and reports the usage of its response.done events,
# billed when the session closes; a concurrency slot is held for the session's life.

bats_require_minimum_version 1.5.0

load helpers
stack_hooks

setup_file() {
	export STACK=$BATS_FILE_TMPDIR/stack
	# Idle sessions end after 8 s here ("timeout tunnel"; 5m by default).
	export JR_REALTIME_IDLE_TIMEOUT=8s
	# A certificate for "localhost" that the adapter trusts (OpenSSL's default CA file,
	# SSL_CERT_FILE, for this stack only): its TLS connections to model servers.
	mkdir -p "$STACK"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost \
		-keyout "$STACK/rt-key.pem" -out "$STACK/rt-ca.pem" 2>/dev/null
	export SSL_CERT_FILE=$STACK/rt-ca.pem
	jr_stack_start "$STACK"
	jr_spawn "$STACK" tlsfwd node "$BATS_TEST_DIRNAME/tls-forward.js" --cert "$STACK/rt-ca.pem" \
		--key "$STACK/rt-key.pem" --to "$JR_MOCK_ADDR"
	TLS_PORT=$(jr_listening_port "$STACK" tlsfwd)
	export TLS_PORT
	jr_adapter_models >/dev/null
	jr_ctl model add rt-model be_mock --services chat,realtime >/dev/null
	jr_ctl model add rt-other be_mock --services chat,realtime >/dev/null
	jr_ctl model add rt-chat be_mock >/dev/null
	jr_ctl model add rt-claude be_prov --provider anthropic --upstream claude-3-5-haiku --services chat,realtime >/dev/null
	jr_ctl tenant add rt >/dev/null
	KEY=$(issue_key rt)
	export KEY
	BATS_TEST_TMPDIR=$BATS_FILE_TMPDIR eventually 10 session_ok "$KEY" rt-model
}

teardown_file() {
	jr_stop_pid "$STACK" tlsfwd TERM
	stack_teardown_file
}

# session KEY MODEL [OPTIONS...]: one session (tests/clients/realtime-session.mjs); its
# JSON summary in $BATS_TEST_TMPDIR/session.
session() {
	node "$JR_ROOT/tests/clients/realtime-session.mjs" "$JR_URL" "$@" >"$BATS_TEST_TMPDIR/session"
}

session_ok() {
	session "$@" && [[ $(sjson b.status) == 101 ]]
}

# sjson EXPR: a field of the last session's summary.
sjson() {
	node -e "const b = JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8')); console.log($1)" \
		"$BATS_TEST_TMPDIR/session"
}

# one_slot_tenant NAME: a new tenant NAME limited to one open session; its key in K.
one_slot_tenant() {
	K=$(new_tenant "$1")
	db_sql "SELECT jairouter.set_limit('tenant', 'concurrent', 'concurrency', 1, NULL, '$1')" >/dev/null
	sleep 0.3
}

# hold_slot KEY: a session of KEY held open in the background (HELD: its pid; its
# summary in $BATS_TEST_TMPDIR/first) until the file $HOLD is removed; a second session
# of KEY is then refused (429, in the last session's summary).
hold_slot() {
	HOLD=$BATS_TEST_TMPDIR/hold
	node "$JR_ROOT/tests/clients/realtime-session.mjs" "$JR_URL" "$1" rt-model --hold "$HOLD" >"$BATS_TEST_TMPDIR/first" &
	HELD=$!
	eventually 10 test -f "$HOLD"
	session "$1" rt-model
	[[ $(sjson b.status) == 429 ]]
}

mock_rt() {
	curl -fsS "$JR_MOCK_URL/_mock/realtime" | node -e "let s='';process.stdin.on('data',c=>s+=c).on('end',()=>{const b=JSON.parse(s);console.log($1)})"
}

usage_row() {
	db_sql "SELECT requests || ' ' || prompt_tokens || ' ' || completion_tokens || ' ' || estimated_requests FROM jairouter.usage_by_tenant_model_day WHERE tenant = '$1'"
}

upgrade_headers=(-H 'Upgrade: websocket' -H 'Connection: Upgrade' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' -H 'Sec-WebSocket-Version: 13')

@test "a session is relayed and billed from its response.done events, without compression" {
	local k in0 out0
	k=$(new_tenant rtbill)
	in0=$(mock_rt b.input_tokens)
	out0=$(mock_rt b.output_tokens)
	session "$k" rt-model --responses 3
	[[ $(sjson b.status) == 101 ]]
	[[ $(sjson b.responses) == 3 ]]
	[[ $(sjson b.close_code) == 1000 ]]
	# The ws client offers permessage-deflate; the gateway does not pass the offer on.
	[[ $(sjson b.extensions) == null ]]
	[[ $(mock_rt b.last_upgrade.extensions) == null ]]
	[[ $(mock_rt b.last_upgrade.model) == rt-model ]]
	# The client's gateway key never reaches the model server (no provider credential
	# is configured for be_mock); OpenAI-Beta does.
	[[ $(mock_rt b.last_upgrade.authorization) == null ]]
	[[ $(mock_rt b.last_upgrade.openai_beta) == realtime=v1 ]]
	# What the client saw is what the mock counted, and what the gateway billed.
	[[ $(sjson b.input_tokens) == $(($(mock_rt b.input_tokens) - in0)) ]]
	[[ $(sjson b.output_tokens) == $(($(mock_rt b.output_tokens) - out0)) ]]
	eventually 5 bash -c "[[ -n \$(psql -X -t -A -d '$JR_DATABASE' -c \"SELECT 1 FROM jairouter.usage_by_tenant_model_day WHERE tenant = 'rtbill'\") ]]"
	[[ $(usage_row rtbill) == "1 $(sjson b.input_tokens) $(sjson b.output_tokens) 0" ]]
}

@test "without a key the upgrade is refused with 401 before any session" {
	local before
	before=$(mock_rt b.sessions)
	session - rt-model
	[[ $(sjson b.status) == 401 ]]
	[[ $(sjson b.body.error.code) == missing_api_key ]]
	[[ $(mock_rt b.sessions) == "$before" ]]
}

@test "the API key as a WebSocket subprotocol is refused" {
	session - rt-model --header "Sec-WebSocket-Protocol:realtime, openai-insecure-api-key.$KEY"
	[[ $(sjson b.status) == 401 ]]
	[[ $(sjson b.body.error.code) == insecure_api_key_refused ]]
}

@test "a model outside the key's list is refused with 403; unknown and non-realtime models too" {
	local narrow
	narrow=$(jr_ctl key issue rt --name rt-narrow --models rt-other | grep -Eo 'jr-[0-9a-f]{64}')
	eventually 10 session_ok "$narrow" rt-other
	session "$narrow" rt-model
	[[ $(sjson b.status) == 403 ]]
	[[ $(sjson b.body.error.code) == model_not_allowed ]]
	session "$KEY" no-such-model
	[[ $(sjson b.status) == 404 ]]
	session "$KEY" rt-chat
	[[ $(sjson b.status) == 400 ]]
	[[ $(sjson b.body.error.code) == model_not_supported ]]
	# Only OpenAI-compatible servers serve realtime sessions.
	session "$KEY" rt-claude
	[[ $(sjson b.status) == 400 ]]
	[[ $(sjson b.body.error.code) == unsupported_by_provider ]]
}

@test "a malformed upgrade gets a 400 OpenAI error" {
	# HTTP/1.1: an HTTP/2 client cannot send Upgrade or Connection (RFC 9113 8.2.2).
	req --http1.1 -H "authorization: Bearer $KEY" '/v1/realtime?model=rt-model'
	expect_openai_error 400 invalid_request_error invalid_upgrade
	# (A missing or malformed Sec-WebSocket-Key never gets here: HAProxy's HTTP/1
	# parser refuses it first, docs/api.md.)
	req --http1.1 -H "authorization: Bearer $KEY" -H 'Upgrade: websocket' -H 'Connection: Upgrade' \
		-H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' -H 'Sec-WebSocket-Version: 12' '/v1/realtime?model=rt-model'
	expect_openai_error 400 invalid_request_error invalid_upgrade
	req --http1.1 -H "authorization: Bearer $KEY" -H 'Upgrade: websocket' \
		-H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' -H 'Sec-WebSocket-Version: 13' '/v1/realtime?model=rt-model'
	expect_openai_error 400 invalid_request_error invalid_upgrade
	req --http1.1 -H "authorization: Bearer $KEY" "${upgrade_headers[@]}" /v1/realtime
	expect_openai_error 400 invalid_request_error missing_model
	req --http1.1 -X POST -H "authorization: Bearer $KEY" "${upgrade_headers[@]}" '/v1/realtime?model=rt-model'
	expect_openai_error 404 invalid_request_error unknown_url
}

@test "concurrency 1: a second session is refused while the first is open, a third admitted after it closes" {
	local k
	one_slot_tenant rtconc
	k=$K
	hold_slot "$k"
	[[ $(sjson b.body.error.code) == rate_limit_exceeded ]]
	rm -f "$HOLD"
	wait "$HELD"
	grep -q '"close_code":1000' "$BATS_TEST_TMPDIR/first"
	eventually 5 session_ok "$k" rt-model
}

@test "a session the model server closes gives its slot back and is billed" {
	local k
	one_slot_tenant rtsrv
	k=$K
	session "$k" rt-model --server-close
	[[ $(sjson b.status) == 101 ]]
	[[ $(sjson b.responses) == 1 ]]
	[[ $(sjson b.close_code) == 1000 ]]
	eventually 5 session_ok "$k" rt-model
	eventually 5 bash -c "[[ \$(psql -X -t -A -d '$JR_DATABASE' -c \"SELECT requests || ' ' || prompt_tokens FROM jairouter.usage_by_tenant_model_day WHERE tenant = 'rtsrv'\") == '2 34' ]]"
}

@test "a response cut before its response.done is billed at the estimate of its text" {
	local k
	k=$(new_tenant rtcut)
	# 40 characters of reply text: 10 tokens at 4 characters a token; no usage arrives.
	session "$k" rt-model --cut 'abcdefghij abcdefghij abcdefghij abcdefg'
	[[ $(sjson b.status) == 101 ]]
	[[ $(sjson b.close_code) == 1011 ]]
	eventually 5 bash -c "[[ \$(psql -X -t -A -d '$JR_DATABASE' -c \"SELECT requests || ' ' || prompt_tokens || ' ' || completion_tokens || ' ' || estimated_requests FROM jairouter.usage_by_tenant_model_day WHERE tenant = 'rtcut'\") == '1 0 10 1' ]]"
}

@test "an idle session ends at the tunnel timeout and gives its slot back" {
	local k
	one_slot_tenant rtidle
	k=$K
	hold_slot "$k"
	# Nothing is sent: HAProxy closes the tunnel (JR_REALTIME_IDLE_TIMEOUT) and the
	# client sees the connection drop without a close frame.
	wait "$HELD"
	grep -q '"close_code":1006' "$BATS_TEST_TMPDIR/first"
	rm -f "$HOLD"
	eventually 5 session_ok "$k" rt-model
	eventually 5 bash -c "[[ \$(psql -X -t -A -d '$JR_DATABASE' -c \"SELECT requests FROM jairouter.usage_by_tenant_model_day WHERE tenant = 'rtidle'\") == 2 ]]"
}

@test "the model server's refusal of the upgrade reaches the client as it is" {
	# An endpoint whose base URL has no Realtime API: the mock answers 400 unknown_url.
	jr_ctl endpoint set be_mock2 "$JR_MOCK2_URL/v2" >/dev/null
	jr_ctl model add rt-nowhere be_mock2 --services realtime >/dev/null
	eventually 10 bash -c "node '$JR_ROOT/tests/clients/realtime-session.mjs' '$JR_URL' '$KEY' rt-nowhere | grep -q '\"status\":400'"
	session "$KEY" rt-nowhere
	[[ $(sjson b.status) == 400 ]]
	[[ $(sjson b.body.error.code) == unknown_url ]]
}

@test "over TLS to the model server: the certificate and the host name are verified" {
	local in0
	jr_ctl endpoint set be_pool "https://localhost:$TLS_PORT/v1" >/dev/null
	jr_ctl model add rt-tls be_pool --services realtime >/dev/null
	in0=$(mock_rt b.sessions)
	eventually 10 session_ok "$KEY" rt-tls
	[[ $(sjson b.responses) == 1 ]]
	[[ $(sjson b.close_code) == 1000 ]]
	[[ $(mock_rt b.sessions) -gt $in0 ]]
	# The same server by address: the certificate names localhost only.
	jr_ctl endpoint set be_pool "https://127.0.0.1:$TLS_PORT/v1" >/dev/null
	eventually 10 bash -c "node '$JR_ROOT/tests/clients/realtime-session.mjs' '$JR_URL' '$KEY' rt-tls | grep -q '\"status\":502'"
	session "$KEY" rt-tls
	[[ $(sjson b.status) == 502 ]]
	[[ $(sjson b.body.error.code) == upstream_unreachable ]]
}

@test "a server message above the adapter's limit closes the session with 1009" {
	session "$KEY" rt-model --big 5000000
	[[ $(sjson b.status) == 101 ]]
	[[ $(sjson b.close_code) == 1009 ]]
	[[ $(curl -fsS "$JR_ADAPTER_URL/metrics" | sed -n 's/^jairouter_adapter_realtime_frames_refused_total{code="1009"} //p') -ge 1 ]]
	# One under the limit passes (the reply is one delta of that many bytes).
	session "$KEY" rt-model --big 100000
	[[ $(sjson b.close_code) == 1000 ]]
	[[ $(sjson b.responses) == 1 ]]
}
