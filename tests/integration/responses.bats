#!/usr/bin/env bats
# The Responses API end to end (docs/api.md): HAProxy + agent + adapter + PostgreSQL +
# the mock model server's /v1/responses. A response is billed from its usage
# (input_tokens/output_tokens, streamed or not); the tenant that created it, and only
# that tenant, can retrieve it, list its input items, delete it and continue from it
# (previous_response_id); the owners are kept in PostgreSQL across agent restarts. A
# model whose provider has no Responses API (Anthropic, through the provider mock) gets
# the request translated to chat by the adapter, streamed and not.

bats_require_minimum_version 1.5.0

load helpers
stack_hooks

setup_file() {
	stack_start
	jr_ctl model add resp-model be_mock >/dev/null
	jr_ctl model add resp-stream be_mock2 >/dev/null
	jr_ctl model add claude-resp be_prov --provider anthropic --upstream claude-up >/dev/null
	# Streams of be_mock2 detour through the adapter, which reads them.
	jr_ctl endpoint set be_mock2 "$JR_MOCK2_URL/v1" >/dev/null
	jr_ctl tenant add acme >/dev/null
	jr_ctl tenant add globex >/dev/null
	KEY=$(issue_key acme)
	OTHER=$(issue_key globex)
	export KEY OTHER
	# The Anthropic-backed model: provider credential (master keys) and endpoint.
	export JAIROUTER_MASTER_KEY_FILE=$BATS_FILE_TMPDIR/master.keys JAIROUTER_SPOA
	JAIROUTER_SPOA=$(jr_agent_bin)
	(umask 077 && printf 'k1:%s\n' "$(openssl rand -hex 32)" >"$JAIROUTER_MASTER_KEY_FILE")
	printf 'master_key_file = "%s"\n' "$JAIROUTER_MASTER_KEY_FILE" >>"$STACK/agent.conf"
	kill -HUP "$(jr_pid_of "$STACK/agent.pid")"
	BATS_TEST_TMPDIR=$BATS_FILE_TMPDIR eventually 10 grep -q 'master keys:' "$STACK/agent.log"
	printf '%s' "$JR_PROVIDERS_KEY" | jr_ctl credential set be_prov --header x-api-key --scheme raw >/dev/null
	jr_ctl endpoint set be_prov "$JR_PROVIDERS_URL" >/dev/null
	jr_haproxy_server_up be_adapter adapter1 30
	BATS_TEST_TMPDIR=$BATS_FILE_TMPDIR eventually 10 created_with "$KEY" resp-model
}

# create KEY MODEL [EXTRA_JSON]: POST /v1/responses.
create() {
	req -X POST -H "authorization: Bearer $1" -H 'content-type: application/json' \
		--data-binary "{\"model\":\"$2\",\"input\":\"Tell me about gateways\"${3:-}}" /v1/responses
}

created_with() {
	create "$1" "$2" "${3:-}"
	[[ $STATUS == 200 ]]
}

# get KEY PATH / del KEY PATH
get() {
	req -H "authorization: Bearer $1" "$2"
}
del() {
	req -X DELETE -H "authorization: Bearer $1" "$2"
}

get_is() {
	get "$1" "$2"
	[[ $STATUS == "$3" ]]
}

usage_of() {
	db_sql "SELECT prompt_tokens || ' ' || completion_tokens || ' ' || estimated_requests || ' ' || requests
	     FROM jairouter.usage_by_tenant_model_day WHERE tenant = '$1' AND model = '$2'"
}

@test "a response is created, and billed from its input_tokens and output_tokens" {
	local k want
	k=$(new_tenant rbill)
	eventually 10 created_with "$k" resp-model
	[[ $(json b.object) == response ]]
	[[ $(json b.model) == resp-model ]]
	want="$(json b.usage.input_tokens) $(json b.usage.output_tokens) 0 1"
	[[ $want != "0 0 0 1" ]]
	eventually 5 bash -c "[[ \$(psql -X -t -A -d '$JR_DATABASE' -c \"SELECT requests FROM jairouter.usage_by_tenant_model_day WHERE tenant = 'rbill'\") == 1 ]]"
	[[ $(usage_of rbill resp-model) == "$want" ]]
}

@test "only the creating tenant retrieves, lists the input items of and deletes a response" {
	local id
	create "$KEY" resp-model
	expect_status 200
	id=$(json b.id)
	[[ $id == resp_* ]]
	eventually 5 get_is "$KEY" "/v1/responses/$id" 200
	[[ $(json b.id) == "$id" ]]
	[[ $(json b.output[0].content[0].type) == output_text ]]
	get "$OTHER" "/v1/responses/$id"
	expect_openai_error 404 invalid_request_error not_found
	[[ $(json b.error.message) == "No response found with id '$id'." ]]
	get "$KEY" "/v1/responses/$id/input_items"
	expect_status 200
	[[ $(json b.object) == list ]]
	[[ $(json b.data[0].content[0].text) == "Tell me about gateways" ]]
	get "$OTHER" "/v1/responses/$id/input_items"
	expect_openai_error 404 invalid_request_error not_found
	del "$OTHER" "/v1/responses/$id"
	expect_openai_error 404 invalid_request_error not_found
	del "$KEY" "/v1/responses/$id"
	expect_status 200
	[[ $(json b.deleted) == true ]]
	# The model server no longer has it; the gateway still knows whose it was.
	get "$KEY" "/v1/responses/$id"
	expect_openai_error 404 invalid_request_error
	# The row is written at the next flush of the owners' writer.
	eventually 5 bash -c "[[ \$(psql -X -t -A -d '$JR_DATABASE' -c \"SELECT t.name FROM jairouter.api_objects o
	    JOIN jairouter.tenants t ON t.id = o.tenant_id WHERE o.kind = 'response' AND o.object_id = '$id'\") == acme ]]"
}

@test "previous_response_id must name one of the tenant's own responses" {
	local id
	create "$KEY" resp-model
	expect_status 200
	id=$(json b.id)
	eventually 5 get_is "$KEY" "/v1/responses/$id" 200
	create "$OTHER" resp-model ",\"previous_response_id\":\"$id\""
	expect_openai_error 400 invalid_request_error previous_response_not_found
	[[ $(json b.error.param) == previous_response_id ]]
	create "$OTHER" resp-model ',"previous_response_id":42'
	expect_openai_error 400 invalid_request_error invalid_type
	create "$KEY" resp-model ",\"previous_response_id\":\"$id\""
	expect_status 200
	[[ $(json b.previous_response_id) == "$id" ]]
}

@test "a streamed response keeps OpenAI's event sequence; response.completed's usage is billed and its id recorded" {
	local k id want
	k=$(new_tenant rstream)
	req -X POST -H "authorization: Bearer $k" -H 'content-type: application/json' \
		--data-binary '{"model":"resp-stream","input":"Stream this","stream":true}' /v1/responses
	expect_status 200
	[[ $(hdr content-type) == text/event-stream* ]]
	run ! grep -q '\[DONE\]' "$BATS_TEST_TMPDIR/body"
	# event: lines in order, each followed by its data line of the same type.
	node -e '
		const raw = require("fs").readFileSync(process.argv[1], "utf8");
		const evs = raw.split("\n\n").filter((b) => b.trim()).map((b) => {
			const ev = /^event: (.+)$/m.exec(b)[1], data = JSON.parse(/^data: (.+)$/m.exec(b)[1]);
			if (data.type !== ev) throw new Error("event " + ev + " carries " + data.type);
			return data;
		});
		const types = evs.map((e) => e.type);
		const want = ["response.created", "response.in_progress", "response.output_item.added",
			"response.content_part.added"];
		if (JSON.stringify(types.slice(0, 4)) !== JSON.stringify(want)) throw new Error(types.join(","));
		if (types[types.length - 1] !== "response.completed") throw new Error("last " + types[types.length - 1]);
		evs.forEach((e, i) => { if (e.sequence_number !== i) throw new Error("sequence " + i); });
		const r = evs[evs.length - 1].response;
		if (r.model !== "resp-stream") throw new Error("model " + r.model);
		console.log(r.id + " " + r.usage.input_tokens + " " + r.usage.output_tokens);
	' "$BATS_TEST_TMPDIR/body" >"$BATS_TEST_TMPDIR/final"
	read -r id want <"$BATS_TEST_TMPDIR/final"
	[[ $id == resp_* ]]
	eventually 5 bash -c "[[ \$(psql -X -t -A -d '$JR_DATABASE' -c \"SELECT requests FROM jairouter.usage_by_tenant_model_day WHERE tenant = 'rstream'\") == 1 ]]"
	[[ $(usage_of rstream resp-stream) == "$want 0 1" ]]
	eventually 5 get_is "$k" "/v1/responses/$id" 200
	get "$KEY" "/v1/responses/$id"
	expect_openai_error 404 invalid_request_error not_found
}

@test "an Anthropic-backed model answers the Responses API, translated from chat and billed from its usage" {
	local k id
	k=$(new_tenant rxlate)
	eventually 10 created_with "$k" claude-resp ',"instructions":"Be brief.","max_output_tokens":64'
	id=$(json b.id)
	[[ $id == resp_* ]]
	[[ $(json b.object) == response ]]
	[[ $(json b.model) == claude-resp ]]
	[[ $(json b.status) == completed ]]
	[[ $(json b.store) == false ]]
	[[ $(json b.instructions) == "Be brief." ]]
	[[ $(json b.output[0].type) == message ]]
	[[ $(json b.output[0].content[0].text) == '[anthropic:'*'Tell me about gateways' ]]
	want="$(json b.usage.input_tokens) $(json b.usage.output_tokens) 0 1"
	[[ $(json 'b.usage.total_tokens === b.usage.input_tokens + b.usage.output_tokens') == true ]]
	eventually 5 bash -c "[[ \$(psql -X -t -A -d '$JR_DATABASE' -c \"SELECT requests FROM jairouter.usage_by_tenant_model_day WHERE tenant = 'rxlate'\") == 1 ]]"
	[[ $(usage_of rxlate claude-resp) == "$want" ]]
	# Not stored: nothing to retrieve, nothing to continue from.
	get "$k" "/v1/responses/$id"
	expect_openai_error 404 invalid_request_error not_found
	create "$k" claude-resp ',"tools":[{"type":"web_search"}]'
	expect_openai_error 400 invalid_request_error unsupported_by_provider
}

@test "a streamed Responses API request to an Anthropic-backed model gets the typed event sequence" {
	req -X POST -H "authorization: Bearer $KEY" -H 'content-type: application/json' \
		--data-binary '{"model":"claude-resp","input":[{"role":"user","content":[{"type":"input_text","text":"Stream please"}]}],"stream":true}' \
		/v1/responses
	expect_status 200
	[[ $(hdr content-type) == text/event-stream* ]]
	node -e '
		const raw = require("fs").readFileSync(process.argv[1], "utf8");
		const evs = raw.split("\n\n").filter((b) => b.trim()).map((b) => {
			const ev = /^event: (.+)$/m.exec(b)[1], data = JSON.parse(/^data: (.+)$/m.exec(b)[1]);
			if (data.type !== ev) throw new Error("event " + ev + " carries " + data.type);
			return data;
		});
		evs.forEach((e, i) => { if (e.sequence_number !== i) throw new Error("sequence " + i); });
		const t = evs.map((e) => e.type);
		const head = ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"];
		const tail = ["response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"];
		if (JSON.stringify(t.slice(0, 4)) !== JSON.stringify(head)) throw new Error(t.join(","));
		if (JSON.stringify(t.slice(-4)) !== JSON.stringify(tail)) throw new Error(t.join(","));
		const text = evs.filter((e) => e.type === "response.output_text.delta").map((e) => e.delta).join("");
		const fin = evs[evs.length - 1].response;
		if (!text.startsWith("[anthropic:") || fin.output[0].content[0].text !== text) throw new Error("text " + text);
		if (!(fin.usage.input_tokens > 0 && fin.usage.output_tokens > 0)) throw new Error("usage");
		if (fin.model !== "claude-resp" || fin.status !== "completed") throw new Error("final");
	' "$BATS_TEST_TMPDIR/body"
	run ! grep -q '\[DONE\]' "$BATS_TEST_TMPDIR/body"
}

@test "unknown and malformed response paths get OpenAI errors" {
	get "$KEY" /v1/responses/resp_unknown
	expect_openai_error 404 invalid_request_error not_found
	get "$KEY" '/v1/responses/resp%20x'
	expect_openai_error 404 invalid_request_error not_found
	get "$KEY" /v1/responses
	expect_openai_error 404 invalid_request_error unknown_url
	req -X POST -H "authorization: Bearer $KEY" -H 'content-type: application/json' --data-binary '{}' \
		/v1/responses/resp_x
	expect_openai_error 404 invalid_request_error unknown_url
	get "" /v1/responses/resp_unknown
	expect_openai_error 401 authentication_error
}

@test "the owners are loaded from PostgreSQL after an agent restart" {
	local id
	create "$KEY" resp-model
	expect_status 200
	id=$(json b.id)
	eventually 5 bash -c "[[ \$(psql -X -t -A -d '$JR_DATABASE' -c \"SELECT count(*) FROM jairouter.api_objects WHERE object_id = '$id'\") == 1 ]]"
	jr_agent_stop "$STACK"
	jr_agent_start "$STACK"
	eventually 10 get_is "$KEY" "/v1/responses/$id" 200
	get "$OTHER" "/v1/responses/$id"
	expect_openai_error 404 invalid_request_error not_found
	curl -fsS "$JR_AGENT_METRICS/metrics" | grep -Eq '^jairouter_objects_known [1-9]'
}
