#!/usr/bin/env bats
# Exact usage of streamed answers that go straight to an OpenAI-compatible model server
# (no detour through the adapter; docs/limits.md, "The end of a request"): the gateway
# asks for the usage chunk, reads it, hides it from clients that did not ask for it, and
# bills what the model server reported, to the token. A model server that sends no usage
# is billed at the estimate and counted as estimated.

load helpers
stack_hooks

setup_file() {
	stack_start
	agent_restart_with 'usage_flush_ms = 200' 'usage_wait_ms = 2000'
	jr_ctl model add stream-model be_mock >/dev/null
	jr_ctl model add renamed-stream be_mock --upstream upstream-name >/dev/null
}

# usage_of TENANT: "requests prompt completion estimated" from the usage rows.
usage_of() {
	db_sql "SELECT coalesce(sum(requests),0) || ' ' || coalesce(sum(prompt_tokens),0) || ' ' || coalesce(sum(completion_tokens),0) || ' ' || coalesce(sum(estimated_requests),0) FROM jairouter.usage_by_tenant_model_day WHERE tenant = '$1'"
}

requests_of() {
	db_sql "SELECT coalesce(sum(requests),0) FROM jairouter.usage_by_tenant_model_day WHERE tenant = '$1'"
}

# mock_usage: "answers prompt completion" the mock reported since its last reset.
mock_usage() {
	# shellcheck disable=SC2016 # JavaScript
	curl -fsS "$JR_MOCK_URL/_mock/usage" |
		node -e 'const u = JSON.parse(require("fs").readFileSync(0, "utf8")); console.log(`${u.answers} ${u.prompt_tokens} ${u.completion_tokens}`)'
}

# sse_chunks FILE: the number of data events that carry a usage object.
usage_chunks() {
	grep -c '"usage":{' "$1" || true
}

@test "a stream whose client did not ask for usage: the usage chunk is hidden and the reported usage billed" {
	local k got
	jr_ctl tenant add s1 >/dev/null
	k=$(issue_key s1)
	curl -fsS -X DELETE "$JR_MOCK_URL/_mock/usage" >/dev/null
	BODY=$(chat_body stream-model ',"stream":true,"max_tokens":7') auth_chat "$k" -N
	expect_status 200
	grep -q 'data: \[DONE\]' "$BATS_TEST_TMPDIR/body"
	[[ $(usage_chunks "$BATS_TEST_TMPDIR/body") == 0 ]]
	# The model server was asked for usage and sent it once.
	[[ $(mock_usage) == "1 "* ]]
	eventually 5 bash -c "[[ \$(psql -X -t -A -d '$JR_DATABASE' -c \"SELECT sum(requests) FROM jairouter.usage_by_tenant_model_day WHERE tenant = 's1'\") == 1 ]]"
	got=$(usage_of s1)
	read -r _ mpt mct <<<"$(mock_usage)"
	echo "billed: $got; mock: $mpt $mct"
	[[ $got == "1 $mpt $mct 0" ]]
	[[ $mct == 7 ]]
}

@test "a client that asked for usage sees exactly one usage chunk, equal to what is billed" {
	local k got pt ct
	jr_ctl tenant add s2 >/dev/null
	k=$(issue_key s2)
	BODY=$(chat_body stream-model ',"stream":true,"max_tokens":5,"stream_options":{"include_usage":true}') auth_chat "$k" -N
	expect_status 200
	[[ $(usage_chunks "$BATS_TEST_TMPDIR/body") == 1 ]]
	pt=$(grep -o '"prompt_tokens":[0-9]*' "$BATS_TEST_TMPDIR/body" | cut -d: -f2)
	ct=$(grep -o '"completion_tokens":[0-9]*' "$BATS_TEST_TMPDIR/body" | cut -d: -f2)
	eventually 5 bash -c "[[ \$(psql -X -t -A -d '$JR_DATABASE' -c \"SELECT sum(requests) FROM jairouter.usage_by_tenant_model_day WHERE tenant = 's2'\") == 1 ]]"
	got=$(usage_of s2)
	[[ $got == "1 $pt $ct 0" ]]
}

@test "include_usage false is replaced by true upstream and the chunk hidden; a renamed model keeps both splices" {
	local k
	jr_ctl tenant add s3 >/dev/null
	k=$(issue_key s3)
	BODY=$(chat_body renamed-stream ',"stream":true,"max_tokens":4,"stream_options":{"include_usage":false}') auth_chat "$k" -N
	expect_status 200
	[[ $(usage_chunks "$BATS_TEST_TMPDIR/body") == 0 ]]
	grep -q 'data: \[DONE\]' "$BATS_TEST_TMPDIR/body"
	[[ $(hdr x-mock-model) == upstream-name ]]
	eventually 5 bash -c "[[ \$(psql -X -t -A -d '$JR_DATABASE' -c \"SELECT sum(requests) FROM jairouter.usage_by_tenant_model_day WHERE tenant = 's3'\") == 1 ]]"
	[[ $(usage_of s3) == "1 "*" 4 0" ]]
}

@test "a model server that sends no usage in streams: billed at the estimate and counted as estimated" {
	local k
	jr_ctl tenant add s4 >/dev/null
	k=$(issue_key s4)
	BODY=$(chat_body stream-model ',"stream":true,"max_tokens":30') auth_chat "$k" -N -H 'x-mock-no-usage: 1'
	expect_status 200
	eventually 10 bash -c "[[ \$(psql -X -t -A -d '$JR_DATABASE' -c \"SELECT sum(estimated_requests) FROM jairouter.usage_by_tenant_model_day WHERE tenant = 's4'\") == 1 ]]"
	[[ $(usage_of s4) == "1 "*" 30 1" ]]
}

@test "soak: 2,000 streamed requests billed exactly what the model server reported, to the token" {
	local k res got mock
	jr_ctl tenant add soak >/dev/null
	k=$(issue_key soak)
	curl -fsS -X DELETE "$JR_MOCK_URL/_mock/usage" >/dev/null
	res=$(node "$BATS_TEST_DIRNAME/stream-soak.mjs" "$JR_URL" "$k" stream-model 2000 16)
	echo "clients: $res"
	# shellcheck disable=SC2016 # JavaScript
	[[ $(node -e 'const r = JSON.parse(process.argv[1]); console.log(`${r.ok} ${r.failed} ${r.usage_chunks_seen} ${r.usage_chunks_expected}`)' "$res") == "2000 0 500 500" ]]
	eventually 20 bash -c "[[ \$(psql -X -t -A -d '$JR_DATABASE' -c \"SELECT sum(requests) FROM jairouter.usage_by_tenant_model_day WHERE tenant = 'soak'\") == 2000 ]]"
	mock=$(mock_usage)
	got=$(usage_of soak)
	echo "billed: $got; mock: $mock"
	read -r manswers mpt mct <<<"$mock"
	[[ $manswers == 2000 ]]
	[[ $got == "2000 $mpt $mct 0" ]]
}
