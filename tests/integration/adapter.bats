#!/usr/bin/env bats
# jairouter-adapter end to end (docs/adapter.md): HAProxy + agent + adapter + provider
# mocks. Anthropic-, Gemini-, Bedrock- and Cohere-backed models answer OpenAI requests,
# streamed and not; Anthropic-style clients (POST /v1/messages) reach an OpenAI-backed
# model; streamed usage is metered and reported; tenant data is masked; provider errors,
# errors in the middle of a stream and client disconnects behave. The provider mock
# (tests/mock/mock-providers.js) checks each provider's credential header and Bedrock's
# SigV4 signature, and echoes the text it received.

bats_require_minimum_version 1.5.0

load helpers
stack_hooks

setup_file() {
	export STACK=$BATS_FILE_TMPDIR/stack
	mkdir -p "$STACK"
	# A UDP collector stands in for the agent's report listener.
	export REPORTS=$BATS_FILE_TMPDIR/reports.log
	: >"$REPORTS"
	node -e '
		const s = require("dgram").createSocket("udp4");
		s.on("message", (m) => require("fs").appendFileSync(process.argv[1], m.toString() + "\n"));
		s.bind(0, "127.0.0.1", () => console.log("LISTENING " + s.address().port));
		process.on("SIGTERM", () => process.exit(0));' "$REPORTS" >"$STACK/reports.log" 2>&1 &
	echo "$! node" >"$STACK/reports.pid"
	export JR_ADAPTER_REPORT_ADDR=127.0.0.1:$(jr_listening_port "$STACK" reports)
	jr_stack_start "$STACK"
	jr_ctl tenant add acme >/dev/null
	jr_ctl tenant add masked >/dev/null
	jr_ctl model add claude-pub be_prov --provider anthropic --upstream claude-up >/dev/null
	jr_ctl model add gemini-pub be_prov --provider gemini --upstream gemini-up --services chat,embeddings >/dev/null
	jr_ctl model add bedrock-pub be_bedrock --provider bedrock --upstream 'anthropic.claude-3-haiku-20240307-v1:0' >/dev/null
	jr_ctl model add cohere-pub be_prov --provider cohere --upstream command-r >/dev/null
	jr_ctl model add gpt-pub be_mock --provider vllm --upstream gpt-up >/dev/null
	jr_ctl model add ollama-pub be_ollama --provider ollama --upstream llama3.2 --services chat,embeddings >/dev/null
	jr_ctl model add audio-pub be_mock --services audio_speech,audio_transcriptions >/dev/null
	jr_ctl endpoint set be_prov "$JR_PROVIDERS_URL" >/dev/null
	jr_ctl endpoint set be_bedrock "$JR_PROVIDERS_URL" --region eu-west-1 >/dev/null
	jr_ctl endpoint set be_mock "$JR_MOCK_URL/v1" >/dev/null
	jr_ctl endpoint set be_ollama "$JR_PROVIDERS_URL" --api-version native >/dev/null
	KEY=$(issue_key acme)
	KEY_M=$(issue_key masked)
	export KEY KEY_M
	stack_master_keys
	printf '%s' "$JR_PROVIDERS_KEY" | jr_ctl credential set be_prov --header x-api-key --scheme raw >/dev/null
	printf '%s' "$JR_PROVIDERS_AWS" | jr_ctl credential set be_bedrock --header authorization --scheme bearer >/dev/null
	printf '%s' "$JR_PROVIDERS_KEY" | jr_ctl credential set be_ollama --header authorization --scheme bearer >/dev/null
	jr_haproxy_server_up be_adapter adapter1 30
	BATS_TEST_TMPDIR=$BATS_FILE_TMPDIR eventually 10 model_answers claude-pub
	BATS_TEST_TMPDIR=$BATS_FILE_TMPDIR eventually 10 model_answers bedrock-pub
}

teardown_file() {
	stack_teardown_file
	jr_stop_pid "$STACK" reports TERM
}

jr_psql() {
	"${JR_PG_BIN:-/usr/lib/postgresql/15/bin}/psql" -X -v ON_ERROR_STOP=1 -d "$JR_DATABASE" "$@"
}

model_answers() {
	BODY=$(chat_body "$1") auth_chat "$KEY"
	expect_status 200
}

# stream KEY BODY [PATH]: a streamed request; the raw SSE in $BATS_TEST_TMPDIR/body.
stream() {
	local key=$1 body=$2 path=${3:-$CHAT_PATH}
	req -N -X POST -H 'content-type: application/json' -H "authorization: Bearer $key" \
		--data-binary "$body" "$path"
}

# sse_json EXPR: evaluates EXPR over the array `c` of the stream's JSON data events.
sse_json() {
	node -e '
		const fs = require("fs");
		const c = fs.readFileSync(process.argv[1], "utf8").split("\n")
			.filter(l => l.startsWith("data: ") && l !== "data: [DONE]").map(l => JSON.parse(l.slice(6)));
		const v = eval(process.argv[2]);
		process.stdout.write(typeof v === "string" ? v : JSON.stringify(v));
	' "$BATS_TEST_TMPDIR/body" "$1"
}

# metric_above NAME N: the adapter's metric NAME is above N (evaluated at each call).
metric_above() {
	(($(adapter_metric "$1") > $2))
}

adapter_metric() {
	curl -fsS "$JR_ADAPTER_URL/metrics" | awk -v n="$1" '$1 == n { print $2 }'
}

@test "an Anthropic-backed model answers an OpenAI chat request (credential, public model name, no internal headers)" {
	BODY=$(chat_body claude-pub) auth_chat "$KEY"
	expect_status 200
	[[ $(json 'b.object') == chat.completion ]]
	[[ $(json 'b.model') == claude-pub ]]
	[[ $(json 'b.choices[0].message.content') == '[anthropic:claude-up] Say hi' ]]
	[[ $(json 'b.choices[0].finish_reason') == stop ]]
	[[ $(json 'b.usage.total_tokens') -gt 0 ]]
	# Only the gateway's public response headers (overhead, model, fallback) may carry the prefix.
	[[ -z $(grep -iE '^x-jairouter-' "$BATS_TEST_TMPDIR/headers" | grep -viE '^x-jairouter-(overhead-ms|model|fallback):') ]]
	[[ -n $(hdr x-request-id) ]]
}

@test "Anthropic, Gemini, Bedrock, Cohere and Ollama (native NDJSON) streams become OpenAI chunks ending in [DONE]" {
	local m
	for m in claude-pub gemini-pub bedrock-pub cohere-pub ollama-pub; do
		stream "$KEY" "{\"model\":\"$m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"one two three\"}]}"
		expect_status 200
		[[ $(hdr content-type) == text/event-stream* ]]
		[[ $(tail -c 14 "$BATS_TEST_TMPDIR/body") == $'data: [DONE]\n\n' || $(tail -n 2 "$BATS_TEST_TMPDIR/body" | head -n 1) == 'data: [DONE]' ]]
		[[ $(sse_json 'c.map(x => x.choices[0]?.delta?.content || "").join("")') == *"one two three" ]]
		[[ $(sse_json 'c[c.length-1].choices[0].finish_reason') == stop ]]
		[[ $(sse_json 'c.every(x => x.object === "chat.completion.chunk" && x.model === "'$m'")') == true ]]
		# the client did not ask for usage: no usage chunk
		[[ $(sse_json 'c.some(x => x.usage)') == false ]]
	done
}

@test "tool calls stream as OpenAI tool_call deltas (Anthropic input_json_delta, Bedrock toolUse)" {
	local m
	for m in claude-pub bedrock-pub gemini-pub ollama-pub; do
		stream "$KEY" "{\"model\":\"$m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"weather TOOL\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\"}}}]}"
		expect_status 200
		[[ $(sse_json 'c.flatMap(x => x.choices[0]?.delta?.tool_calls || []).map(t => t.function.arguments).join("")' | tr -d ' ') == '{"city":"Paris"}' ]]
		[[ $(sse_json 'c.flatMap(x => x.choices[0]?.delta?.tool_calls || []).find(t => t.id).function.name') == get_weather ]]
		[[ $(sse_json 'c[c.length-1].choices[0].finish_reason') == tool_calls ]]
	done
}

@test "include_usage: the usage chunk of a translated stream merges Anthropic's message_start and message_delta" {
	stream "$KEY" '{"model":"claude-pub","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"a b c"}]}'
	expect_status 200
	[[ $(sse_json 'c[c.length-1].choices.length') == 0 ]]
	[[ $(sse_json 'c[c.length-1].usage.completion_tokens') == 4 ]]
	[[ $(sse_json 'c[c.length-1].usage.prompt_tokens') -gt 1 ]]
}

@test "Gemini and Ollama embeddings through the adapter; Ollama's native chat not streamed" {
	local m
	for m in gemini-pub ollama-pub; do
		req -X POST -H 'content-type: application/json' -H "authorization: Bearer $KEY" \
			--data-binary "{\"model\":\"$m\",\"input\":[\"abc\",\"de\"]}" /v1/embeddings
		expect_status 200
		[[ $(json 'b.data.length') == 2 ]]
		[[ $(json 'b.data[1].embedding[0]') == 2 ]]
		[[ $(json 'b.model') == "$m" ]]
	done
	BODY=$(chat_body ollama-pub) auth_chat "$KEY"
	expect_status 200
	[[ $(json 'b.choices[0].message.content') == '[ollama:llama3.2] Say hi' ]]
	[[ $(json 'b.usage.completion_tokens') == 3 ]]
}

@test "Anthropic-style clients (POST /v1/messages, x-api-key) reach an OpenAI-backed model" {
	req -X POST -H 'content-type: application/json' -H "x-api-key: $KEY" -H 'anthropic-version: 2023-06-01' \
		--data-binary '{"model":"gpt-pub","max_tokens":64,"system":"Be brief.","messages":[{"role":"user","content":"Say hi"}]}' /v1/messages
	expect_status 200
	[[ $(json 'b.type') == message ]]
	[[ $(json 'b.content[0].type') == text ]]
	[[ $(json 'b.stop_reason') == end_turn ]]
	[[ $(json 'b.usage.output_tokens') -gt 0 ]]
	req -N -X POST -H 'content-type: application/json' -H "x-api-key: $KEY" \
		--data-binary '{"model":"gpt-pub","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Say hi"}]}' /v1/messages
	expect_status 200
	grep -q '^event: message_start$' "$BATS_TEST_TMPDIR/body"
	grep -q '"type":"text_delta"' "$BATS_TEST_TMPDIR/body"
	grep -q '^event: message_delta$' "$BATS_TEST_TMPDIR/body"
	[[ $(tail -n 2 "$BATS_TEST_TMPDIR/body" | head -n 1) == 'data: {"type":"message_stop"}' ]]
	# a missing max_tokens is Anthropic's own 400
	req -X POST -H 'content-type: application/json' -H "x-api-key: $KEY" \
		--data-binary '{"model":"gpt-pub","messages":[{"role":"user","content":"x"}]}' /v1/messages
	expect_status 400
	[[ $(json 'b.type') == error ]]
}

@test "metered OpenAI-compatible stream: include_usage injected, its chunk stripped, usage reported" {
	local before id
	before=$(wc -l <"$REPORTS")
	stream "$KEY" '{"model":"gpt-pub","stream":true,"messages":[{"role":"user","content":"Say hi"}]}'
	expect_status 200
	id=$(hdr x-request-id)
	[[ $(sse_json 'c.some(x => x.usage)') == false ]]
	[[ $(sse_json 'c.every(x => x.model === "gpt-pub")') == true ]]
	eventually 5 grep -q "src=adapter id=$id " "$REPORTS"
	grep "id=$id " "$REPORTS" | grep -Eq ' pt=[1-9][0-9]* ct=[1-9][0-9]* st=200 stream=1 model=gpt-pub tenant=acme'
	if grep "id=$id " "$REPORTS" | grep -q 'est=1'; then false; fi
	# the client asked: the usage chunk stays
	stream "$KEY" '{"model":"gpt-pub","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Say hi"}]}'
	[[ $(sse_json 'c[c.length-1].usage.total_tokens') -gt 0 ]]
	(($(wc -l <"$REPORTS") >= before + 2))
}

@test "provider errors keep their meaning: 429 stays a rate limit, 529 is 503, a failure before the first chunk is plain JSON" {
	BODY='{"model":"claude-pub","messages":[{"role":"user","content":"STATUS:429"}]}' auth_chat "$KEY"
	expect_openai_error 429 rate_limit_error
	BODY='{"model":"claude-pub","messages":[{"role":"user","content":"STATUS:529"}]}' auth_chat "$KEY"
	expect_status 503
	BODY='{"model":"bedrock-pub","messages":[{"role":"user","content":"STATUS:429"}]}' auth_chat "$KEY"
	expect_status 429
	# a streamed request whose provider fails before the first byte: a plain JSON error
	stream "$KEY" '{"model":"gemini-pub","stream":true,"messages":[{"role":"user","content":"STATUS:500"}]}'
	expect_status 502
	[[ $(json 'b.error.type') == server_error ]]
}

@test "an error in the middle of a stream becomes an SSE error event, then [DONE]" {
	local m
	for m in claude-pub bedrock-pub gemini-pub; do
		stream "$KEY" "{\"model\":\"$m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"a b c d FAIL_MIDSTREAM\"}]}"
		expect_status 200
		[[ $(sse_json 'c.filter(x => x.error).length') == 1 ]]
		[[ $(sse_json 'c.find(x => x.error).error.type') == server_error ]]
		[[ $(tail -n 2 "$BATS_TEST_TMPDIR/body" | head -n 1) == 'data: [DONE]' ]]
	done
}

@test "a client that disconnects mid-stream cancels the provider transfer and is reported" {
	local before
	local curl_pid
	before=$(adapter_metric jairouter_adapter_client_aborts_total)
	curl -sS -N --max-time 30 -H "authorization: Bearer $KEY" -H 'content-type: application/json' \
		--data-binary '{"model":"claude-pub","stream":true,"messages":[{"role":"user","content":"SLOW one two three four five six seven eight nine ten"}]}' \
		-o "$BATS_TEST_TMPDIR/partial" "$JR_URL$CHAT_PATH" 2>/dev/null &
	curl_pid=$!
	# the stream has started: the client goes away in the middle of it
	eventually 10 grep -q '"content":"one ' "$BATS_TEST_TMPDIR/partial"
	kill "$curl_pid"
	wait "$curl_pid" || true
	eventually 10 metric_above jairouter_adapter_client_aborts_total "$before"
	eventually 5 grep -q 'abort=1' "$REPORTS"
	grep 'abort=1' "$REPORTS" | grep -q 'model=claude-pub'
}

@test "masking: the provider sees masked data; reject refuses; answers are masked when asked" {
	jr_ctl masking set masked '{"responses": true, "rules": [{"detector": "email", "action": "label"}, {"detector": "cn_mobile", "action": "mask"}, {"detector": "card", "action": "reject"}, {"detector": "regex", "pattern": "ACME-[0-9]{4}", "action": "label", "label": "PROJECT"}]}' >/dev/null
	# a policy the adapter could not apply is refused by the database
	run jr_ctl masking set masked '{"rules": [{"detector": "regex", "action": "label"}]}'
	[[ $status != 0 ]]
	eventually 5 masked_echo
	# an OpenAI-compatible model detours through the adapter for this tenant only
	BODY='{"model":"gpt-pub","messages":[{"role":"user","content":"x"}]}' auth_chat "$KEY_M"
	expect_status 200
	# reject
	BODY='{"model":"claude-pub","messages":[{"role":"user","content":"pay with 4111 1111 1111 1111"}]}' auth_chat "$KEY_M"
	expect_openai_error 400 invalid_request_error
	[[ $(json 'b.error.code') == sensitive_data_detected ]]
	[[ $(json 'b.error.message') != *4111* ]]
	# a streamed answer is masked across chunk boundaries
	stream "$KEY_M" '{"model":"bedrock-pub","stream":true,"messages":[{"role":"user","content":"write to bob@example.com about ACME-1234 now"}]}'
	expect_status 200
	[[ $(sse_json 'c.map(x => x.choices[0]?.delta?.content || "").join("")') == '[bedrock:anthropic.claude-3-haiku-20240307-v1:0] write to [EMAIL] about [PROJECT] now' ]]
	# counts, never values
	curl -fsS "$JR_ADAPTER_URL/metrics" | grep -q 'jairouter_adapter_masked_items_total{detector="email"} [1-9]'
	if curl -fsS "$JR_ADAPTER_URL/metrics" | grep -q 'example.com'; then false; fi
	# another tenant is not masked
	BODY='{"model":"claude-pub","messages":[{"role":"user","content":"mail bob@example.com"}]}' auth_chat "$KEY"
	[[ $(json 'b.choices[0].message.content') == *bob@example.com ]]
	# masking off: the tenant's data goes as it is
	jr_ctl masking off masked >/dev/null
	eventually 5 unmasked_echo
}

unmasked_echo() {
	BODY='{"model":"claude-pub","messages":[{"role":"user","content":"mail bob@example.com"}]}' auth_chat "$KEY_M"
	[[ $(json 'b.choices[0].message.content') == *bob@example.com ]]
}

masked_echo() {
	BODY='{"model":"claude-pub","messages":[{"role":"user","content":"mail bob@example.com or 13800138000 re ACME-1234"}]}' auth_chat "$KEY_M"
	expect_status 200
	[[ $(json 'b.choices[0].message.content') == '[anthropic:claude-up] mail [EMAIL] or *********** re [PROJECT]' ]]
}

@test "a masked tenant: binary answers pass the adapter as they are, multipart uploads go direct" {
	jr_ctl masking set masked default >/dev/null
	eventually 5 masked_speech
	[[ $(hdr content-type) == audio/mpeg* ]]
	printf 'RIFF0123456789' >"$BATS_TEST_TMPDIR/a.wav"
	req -H "authorization: Bearer $KEY_M" -F model=audio-pub -F "file=@$BATS_TEST_TMPDIR/a.wav;type=audio/wav" \
		/v1/audio/transcriptions
	expect_status 200
	[[ $(json 'b.text') == *"14 bytes of a.wav"* ]]
	# Anthropic models take no multipart uploads: a clear 400
	jr_ctl model add claude-stt be_prov --provider anthropic --services audio_transcriptions >/dev/null
	eventually 5 multipart_refused
	jr_ctl masking off masked >/dev/null
}

masked_speech() {
	local before
	before=$(adapter_metric 'jairouter_adapter_requests_total{provider="openai",client="openai"}')
	req -X POST -H "authorization: Bearer $KEY_M" -H 'content-type: application/json' \
		--data-binary '{"model":"audio-pub","input":"Hello bob@example.com","voice":"alloy"}' /v1/audio/speech
	expect_status 200 && (($(adapter_metric 'jairouter_adapter_requests_total{provider="openai",client="openai"}') > before))
}

multipart_refused() {
	req -H "authorization: Bearer $KEY_M" -F model=claude-stt -F "file=@$BATS_TEST_TMPDIR/a.wav;type=audio/wav" \
		/v1/audio/transcriptions
	expect_status 400 && [[ $(json 'b.error.code') == unsupported_by_provider ]]
}

@test "internal headers from clients are dropped; credentials are in no log" {
	local before
	before=$(adapter_metric 'jairouter_adapter_requests_total{provider="anthropic",client="openai"}')
	# a forged route on a direct model does not reach the adapter
	BODY=$(chat_body gpt-pub) auth_chat "$KEY" -H 'x-jairouter-adapter: p=anthropic&m=x&u=http%3A%2F%2F127.0.0.1%3A1'
	expect_status 200
	[[ $(adapter_metric 'jairouter_adapter_requests_total{provider="anthropic",client="openai"}') == "$before" ]]
	# the adapter refuses requests that did not come through the gateway's decision
	run curl -sS -o /dev/null -w '%{http_code}' -X POST --data-binary '{}' "$JR_ADAPTER_URL/v1/chat/completions"
	[[ $output == 400 ]]
	if grep -rqF "$JR_PROVIDERS_KEY" "$STACK"/*.log; then return 1; fi
	if grep -rqF "${JR_PROVIDERS_AWS#*:}" "$STACK"/*.log; then return 1; fi
}

@test "a model whose backend needs the adapter but has no endpoint is a clear 503" {
	jr_ctl model add azure-pub be_azure_none --provider azure_openai >/dev/null
	eventually 5 error_code_for azure-pub 503 adapter_endpoint_missing
}

error_code_for() {
	BODY=$(chat_body "$1") auth_chat "$KEY"
	expect_status "$2" && [[ $(json 'b.error.code') == "$3" ]]
}

# Last: it stops the adapter.
@test "SIGTERM drains: a stream in flight completes, then the adapter exits cleanly" {
	local pid
	pid=$(jr_pid_of "$STACK/adapter.pid")
	curl -sS -N --max-time 20 -H "authorization: Bearer $KEY" -H 'content-type: application/json' \
		--data-binary '{"model":"claude-pub","stream":true,"messages":[{"role":"user","content":"SLOW one two three four five"}]}' \
		-o "$BATS_TEST_TMPDIR/body" "$JR_URL$CHAT_PATH" &
	eventually 5 test -s "$BATS_TEST_TMPDIR/body"
	kill -TERM "$pid"
	wait
	[[ $(sse_json 'c.map(x => x.choices[0]?.delta?.content || "").join("")') == *"one two three four five" ]]
	[[ $(tail -n 2 "$BATS_TEST_TMPDIR/body" | head -n 1) == 'data: [DONE]' ]]
	eventually 10 bash -c "! kill -0 $pid"
	grep -q 'draining 1 request' "$STACK/adapter.log"
	run ! grep -qE 'Sanitizer|runtime error' "$STACK/adapter.log"
}
