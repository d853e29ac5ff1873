#!/usr/bin/env bats
# Providers whose credential is exchanged for an access token (docs/adapter.md, "Access
# tokens"): Azure OpenAI with Entra ID client credentials, Gemini and Anthropic models on
# Vertex AI with a Google service account key, Bedrock with an STS web identity role;
# embeddings translated for Cohere and Bedrock (Titan, Cohere on Bedrock); Tencent
# Hunyuan's native API (TC3-HMAC-SHA256, verified by the mock), DashScope's and Hugging Face
# TGI's (/generate with a chat template). Through HAProxy, the agent, the adapter
# and tests/mock/mock-providers.js, which issues the tokens (checking the client secret,
# or the service account's RS256 assertion with the key's public half) and accepts only
# tokens it issued and that have not expired. Token fetches are counted by the mock
# (GET /_tokens) and by the adapter's metrics.

bats_require_minimum_version 1.5.0

load helpers
stack_hooks

setup_file() {
	stack_start
	jr_ctl tenant add acme >/dev/null
	jr_ctl model add az-entra be_az_entra --provider azure_openai --upstream gpt-4o-dep >/dev/null
	jr_ctl model add az-short be_az_short --provider azure_openai --upstream gpt-4o-dep >/dev/null
	jr_ctl model add az-bad be_az_bad --provider azure_openai --upstream gpt-4o-dep >/dev/null
	jr_ctl model add az-cold be_az_cold --provider azure_openai --upstream gpt-4o-dep >/dev/null
	jr_ctl model add vx-gemini be_vertex --provider vertex_gemini --upstream gemini-2.0-flash --services chat,embeddings >/dev/null
	jr_ctl model add bedrock-sts be_bedrock_sts --provider bedrock --upstream 'anthropic.claude-3-haiku-20240307-v1:0' >/dev/null
	jr_ctl model add bedrock-sts-bad be_bedrock_sts_bad --provider bedrock --upstream 'anthropic.claude-3-haiku-20240307-v1:0' >/dev/null
	jr_ctl model add cohere-embed be_cohere --provider cohere --upstream embed-v4.0 --services embeddings >/dev/null
	jr_ctl model add titan-embed be_bedrock_sts --provider bedrock --upstream amazon.titan-embed-text-v2:0 --services embeddings >/dev/null
	jr_ctl model add br-cohere-embed be_bedrock_sts --provider bedrock --upstream cohere.embed-english-v3 --services embeddings >/dev/null
	jr_ctl model add hy-native be_hunyuan --provider hunyuan --upstream hunyuan-lite >/dev/null
	jr_ctl model add hy-bad be_hunyuan_bad --provider hunyuan --upstream hunyuan-lite >/dev/null
	jr_ctl model add ds-native be_dashscope --provider dashscope --upstream qwen-plus >/dev/null
	jr_ctl model add tgi-native be_tgi --provider huggingface --upstream tgi >/dev/null
	jr_ctl model add tgi-llama be_tgi_llama --provider huggingface --upstream tgi >/dev/null
	jr_ctl model add tgi-badtpl be_tgi_bad --provider huggingface --upstream tgi >/dev/null
	jr_ctl model add vx-claude be_vertex --provider vertex_anthropic --upstream 'claude-3-5-haiku@20241022' >/dev/null
	for be in be_az_entra be_az_short be_az_bad be_az_cold; do
		jr_ctl endpoint set "$be" "$JR_PROVIDERS_URL" >/dev/null
	done
	jr_ctl endpoint set be_bedrock_sts "$JR_PROVIDERS_URL" --region eu-west-1 >/dev/null
	jr_ctl endpoint set be_bedrock_sts_bad "$JR_PROVIDERS_URL" --region eu-west-1 >/dev/null
	jr_ctl endpoint set be_cohere "$JR_PROVIDERS_URL" >/dev/null
	jr_ctl endpoint set be_dashscope "$JR_PROVIDERS_URL" --api-version native >/dev/null
	jr_ctl endpoint set be_tgi "$JR_PROVIDERS_URL" --api-version native >/dev/null
	jr_ctl endpoint set be_tgi_llama "$JR_PROVIDERS_URL" --api-version native-llama3 >/dev/null
	jr_ctl endpoint set be_tgi_bad "$JR_PROVIDERS_URL" --api-version native-alpaca >/dev/null
	jr_ctl endpoint set be_hunyuan "$JR_PROVIDERS_URL" --region ap-guangzhou --api-version native >/dev/null
	jr_ctl endpoint set be_hunyuan_bad "$JR_PROVIDERS_URL" --api-version native >/dev/null
	jr_ctl endpoint set be_vertex "$JR_PROVIDERS_URL/v1/projects/jr-test/locations/us-east5" >/dev/null
	KEY=$(issue_key acme)
	export KEY
	stack_master_keys
	export ENTRA_SECRET=${JR_PROVIDERS_ENTRA#*:}
	entra_cred "${JR_PROVIDERS_ENTRA%%:*}" "$ENTRA_SECRET" | jr_ctl credential set be_az_entra --header api-key --scheme raw >/dev/null
	entra_cred "short-${JR_PROVIDERS_ENTRA%%:*}" "$ENTRA_SECRET" | jr_ctl credential set be_az_short --header api-key --scheme raw >/dev/null
	entra_cred "${JR_PROVIDERS_ENTRA%%:*}" wrong-secret | jr_ctl credential set be_az_bad --header api-key --scheme raw >/dev/null
	# The same application with its scope spelled out: another credential, cold in the cache.
	entra_cred "${JR_PROVIDERS_ENTRA%%:*}" "$ENTRA_SECRET" https://cognitiveservices.azure.com/.default |
		jr_ctl credential set be_az_cold --header api-key --scheme raw >/dev/null
	printf '%s' "$JR_PROVIDERS_TC" | jr_ctl credential set be_hunyuan --header authorization --scheme bearer >/dev/null
	printf '%s:wrong' "${JR_PROVIDERS_TC%%:*}" | jr_ctl credential set be_hunyuan_bad --header authorization --scheme bearer >/dev/null
	printf '%s' "$JR_PROVIDERS_KEY" | jr_ctl credential set be_dashscope --header authorization --scheme bearer >/dev/null
	for be in be_tgi be_tgi_llama be_tgi_bad; do
		printf '%s' "$JR_PROVIDERS_KEY" | jr_ctl credential set "$be" --header authorization --scheme bearer >/dev/null
	done
	printf '%s' "$JR_PROVIDERS_KEY" | jr_ctl credential set be_cohere --header authorization --scheme bearer >/dev/null
	service_account | jr_ctl credential set be_vertex --header authorization --scheme bearer >/dev/null
	jr_sts_credential "$JR_PROVIDERS_WEB_TOKEN_FILE" | jr_ctl credential set be_bedrock_sts --header authorization --scheme bearer >/dev/null
	printf 'not-the-token\n' >"$BATS_FILE_TMPDIR/wrong-token"
	jr_sts_credential "$BATS_FILE_TMPDIR/wrong-token" | jr_ctl credential set be_bedrock_sts_bad --header authorization --scheme bearer >/dev/null
	jr_haproxy_server_up be_adapter adapter1 30
}

# entra_cred CLIENT_ID SECRET [SCOPE]: the Entra ID credential, the mock as the authority host.
entra_cred() {
	node -e 'process.stdout.write(JSON.stringify({tenant_id: "jr-tenant", client_id: process.argv[1],
		client_secret: process.argv[2], authority_host: process.argv[3], scope: process.argv[4]}))' \
		"$1" "$2" "$JR_PROVIDERS_URL" "${3:-}"
}

# service_account: a Google service account key file (one line), the mock as token_uri.
service_account() {
	node -e 'process.stdout.write(JSON.stringify({type: "service_account", project_id: "jr-test",
		private_key_id: "k1", private_key: require("fs").readFileSync(process.argv[1], "utf8"),
		client_email: process.argv[2], token_uri: process.argv[3] + "/token"}))' \
		"$JR_PROVIDERS_GOOGLE_KEY" "$JR_PROVIDERS_GOOGLE_EMAIL" "$JR_PROVIDERS_URL"
}


# tokens KIND: how many tokens of KIND (entra, google) the mock has issued.
tokens() {
	curl -fsS "$JR_PROVIDERS_URL/_tokens" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>
		process.stdout.write(String(JSON.parse(s)[process.argv[1]])))' "$1"
}

# tokens_are KIND N: the mock has issued N tokens of KIND (evaluated at each call).
tokens_are() {
	[[ $(tokens "$1") == "$2" ]]
}

# metric_above NAME N: the adapter's metric NAME is above N (evaluated at each call).
metric_above() {
	(($(adapter_metric "$1") > $2))
}

adapter_metric() {
	curl -fsS "$JR_ADAPTER_URL/metrics" | awk -v n="$1" '$1 == n { print $2 }'
}

# parallel_chats MODEL N: N requests at once; their statuses, one a line, in $BATS_TEST_TMPDIR/statuses.
parallel_chats() {
	local i
	for ((i = 0; i < $2; i++)); do
		curl -sS --max-time 30 -o "$BATS_TEST_TMPDIR/body.$i" -w '%{http_code}\n' \
			-H "authorization: Bearer $KEY" -H 'content-type: application/json' \
			--data-binary "$(chat_body "$1")" "$JR_URL$CHAT_PATH" >"$BATS_TEST_TMPDIR/status.$i" &
	done
	wait
	cat "$BATS_TEST_TMPDIR"/status.* >"$BATS_TEST_TMPDIR/statuses"
	rm -f "$BATS_TEST_TMPDIR"/status.*
}

@test "Azure OpenAI with Entra ID: 8 requests at once share one token fetch; later ones use the cached token" {
	local before waits
	before=$(tokens entra)
	waits=$(adapter_metric jairouter_adapter_token_waits_total)
	parallel_chats az-entra 8
	[[ $(grep -c '^200$' "$BATS_TEST_TMPDIR/statuses") == 8 ]] || { cat "$BATS_TEST_TMPDIR"/body.*; return 1; }
	grep -qF '"content":"[azure:gpt-4o-dep] Say hi"' "$BATS_TEST_TMPDIR/body.0"
	[[ $(tokens entra) == $((before + 1)) ]]
	(($(adapter_metric jairouter_adapter_token_waits_total) > waits))
	parallel_chats az-entra 4
	[[ $(grep -c '^200$' "$BATS_TEST_TMPDIR/statuses") == 4 ]]
	[[ $(tokens entra) == $((before + 1)) ]]
	# A stream with the same token; the provider never saw an api-key header.
	stream_ok '{"model":"az-entra","stream":true,"messages":[{"role":"user","content":"one two"}]}'
	grep -qF 'data: [DONE]' "$BATS_TEST_TMPDIR/body"
	[[ $(tokens entra) == $((before + 1)) ]]
}

@test "a client that leaves while its request waits for a token: the fetch completes once and serves the next request" {
	local ok before cred route
	ok=$(adapter_metric 'jairouter_adapter_token_fetches_total{result="ok"}')
	before=$(tokens entra)
	# Straight to the adapter (HAProxy would wait for the answer of a request it has sent):
	# a credential not yet cached, a token endpoint that answers in 200 ms, a client that
	# gives up after 50.
	cred=$(entra_cred "${JR_PROVIDERS_ENTRA%%:*}" "$ENTRA_SECRET" x/.default)
	route="p=azure_openai&u=$(node -e 'process.stdout.write(encodeURIComponent(process.argv[1]))' "$JR_PROVIDERS_URL")&m=gpt-4o-dep&pm=az-cold"
	run curl -sS --max-time 0.05 -o /dev/null -H "x-jairouter-adapter: $route" -H "api-key: $cred" \
		-H 'content-type: application/json' --data-binary "$(chat_body az-cold)" "$JR_ADAPTER_URL$CHAT_PATH"
	[[ $status == 28 ]]
	eventually 5 metric_above 'jairouter_adapter_token_fetches_total{result="ok"}' "$ok"
	[[ $(tokens entra) == $((before + 1)) ]]
	# The token the abandoned request waited for serves the next one: no new fetch.
	run curl -sS --max-time 10 -H "x-jairouter-adapter: $route" -H "api-key: $cred" \
		-H 'content-type: application/json' --data-binary "$(chat_body az-cold)" "$JR_ADAPTER_URL$CHAT_PATH"
	[[ $output == *'[azure:gpt-4o-dep] Say hi'* ]]
	[[ $(tokens entra) == $((before + 1)) ]]
}

@test "a token is renewed in the background once three quarters of its life have passed" {
	local before
	BODY=$(chat_body az-short) auth_chat "$KEY"
	expect_status 200
	before=$(tokens entra)
	# The mock's tokens for "short-" clients live 8 s: renewal from 6 s, stale at 8 s.
	sleep 6.5
	BODY=$(chat_body az-short) auth_chat "$KEY"
	expect_status 200
	eventually 5 tokens_are entra $((before + 1))
	# The renewed token serves past the first one's expiry, without a new fetch.
	sleep 2
	BODY=$(chat_body az-short) auth_chat "$KEY"
	expect_status 200
	[[ $(tokens entra) == $((before + 1)) ]]
}

@test "a credential the token endpoint refuses: 502 upstream_credential_rejected with Retry-After, nothing secret shown" {
	local failed
	failed=$(adapter_metric 'jairouter_adapter_token_fetches_total{result="failed"}')
	BODY=$(chat_body az-bad) auth_chat "$KEY"
	expect_openai_error 502 server_error upstream_credential_rejected
	[[ $(hdr retry-after) == 30 ]]
	[[ $(json 'b.error.message') == *invalid_client* ]]
	run ! grep -qF wrong-secret "$BATS_TEST_TMPDIR/body"
	[[ $(adapter_metric 'jairouter_adapter_token_fetches_total{result="failed"}') == $((failed + 1)) ]]
}

@test "Gemini on Vertex AI with a service account: chat and stream, one signed assertion for both" {
	local before
	before=$(tokens google)
	BODY=$(chat_body vx-gemini) auth_chat "$KEY"
	expect_status 200
	[[ $(json 'b.choices[0].message.content') == '[gemini:gemini-2.0-flash] Say hi' ]]
	[[ $(json 'b.model') == vx-gemini ]]
	stream_ok '{"model":"vx-gemini","stream":true,"messages":[{"role":"user","content":"one two three"}]}'
	grep -qF 'three' "$BATS_TEST_TMPDIR/body"
	grep -qF 'data: [DONE]' "$BATS_TEST_TMPDIR/body"
	[[ $(tokens google) == $((before + 1)) ]]
}

@test "Anthropic on Vertex AI (rawPredict, streamRawPredict) shares the service account's token" {
	local before
	BODY=$(chat_body vx-gemini) auth_chat "$KEY"
	expect_status 200
	before=$(tokens google)
	BODY=$(chat_body vx-claude) auth_chat "$KEY"
	expect_status 200
	[[ $(json 'b.choices[0].message.content') == '[anthropic:claude-3-5-haiku@20241022] Say hi' ]]
	[[ $(json 'b.usage.completion_tokens') -gt 0 ]]
	stream_ok '{"model":"vx-claude","stream":true,"messages":[{"role":"user","content":"one two"}]}'
	grep -qF 'data: [DONE]' "$BATS_TEST_TMPDIR/body"
	grep -qF '"finish_reason":"stop"' "$BATS_TEST_TMPDIR/body"
	[[ $(tokens google) == "$before" ]]
	# Embeddings are not offered on Vertex through the gateway: a clear 400.
	req -X POST -H 'content-type: application/json' -H "authorization: Bearer $KEY" \
		--data-binary '{"model":"vx-gemini","input":"x"}' /v1/embeddings
	expect_openai_error 400 invalid_request_error unsupported_by_provider
}

@test "no secret, assertion or token reaches a log" {
	BODY=$(chat_body vx-gemini) auth_chat "$KEY"
	expect_status 200
	if grep -rqF "$ENTRA_SECRET" "$STACK"/*.log; then return 1; fi
	if grep -rqF 'BEGIN PRIVATE KEY' "$STACK"/*.log; then return 1; fi
	if grep -rqE '(entra|google)-[0-9]+-[0-9a-f]{24}|assertion=eyJ' "$STACK"/*.log; then return 1; fi
}

@test "Bedrock with STS AssumeRoleWithWebIdentity: temporary credentials sign the requests (session token signed), one assumption" {
	local before
	before=$(tokens sts)
	parallel_chats bedrock-sts 4
	[[ $(grep -c '^200$' "$BATS_TEST_TMPDIR/statuses") == 4 ]] || { cat "$BATS_TEST_TMPDIR"/body.*; return 1; }
	grep -qF '[bedrock:anthropic.claude-3-haiku-20240307-v1:0] Say hi' "$BATS_TEST_TMPDIR/body.0"
	stream_ok '{"model":"bedrock-sts","stream":true,"messages":[{"role":"user","content":"one two"}]}'
	grep -qF 'data: [DONE]' "$BATS_TEST_TMPDIR/body"
	[[ $(tokens sts) == $((before + 1)) ]]
	# A web identity token STS does not accept: 502, the STS error named, Retry-After.
	BODY=$(chat_body bedrock-sts-bad) auth_chat "$KEY"
	expect_openai_error 502 server_error upstream_credential_rejected
	[[ $(hdr retry-after) == 30 ]]
	run ! grep -qF not-the-token "$BATS_TEST_TMPDIR/body"
	if grep -rqF "$(tr -d '\n' <"$JR_PROVIDERS_WEB_TOKEN_FILE")" "$STACK"/*.log; then return 1; fi
}

# embed MODEL INPUT_JSON: POST /v1/embeddings.
embed() {
	req -X POST -H 'content-type: application/json' -H "authorization: Bearer $KEY" \
		--data-binary "{\"model\":\"$1\",\"input\":$2}" /v1/embeddings
}

@test "embeddings: Cohere (embed v2), Amazon Titan and Cohere on Bedrock (InvokeModel, STS credentials) answer OpenAI's list" {
	local m
	for m in cohere-embed br-cohere-embed; do
		embed "$m" '["abc","defgh"]'
		expect_status 200
		[[ $(json 'b.object') == list && $(json 'b.model') == "$m" ]]
		[[ $(json 'b.data.map(d => d.index + ":" + d.embedding[0]).join()') == '0:3,1:5' ]]
	done
	[[ $(json 'b.usage.prompt_tokens') -ge 0 ]]
	embed cohere-embed '"abcdefgh"'
	expect_status 200
	[[ $(json 'b.usage.prompt_tokens') == 2 ]]
	embed titan-embed '"abcdefgh"'
	expect_status 200
	[[ $(json 'b.data[0].embedding[0]') == 8 && $(json 'b.usage.prompt_tokens') == 2 ]]
	# Titan takes one text per request; token arrays are refused before anything leaves.
	embed titan-embed '["a","b"]'
	expect_openai_error 400 invalid_request_error invalid_value
	embed cohere-embed '[[1,2]]'
	expect_openai_error 400 invalid_request_error invalid_value
}

@test "Hunyuan's native API: TC3-signed chat and stream; its HTTP 200 errors keep their meaning" {
	BODY=$(chat_body hy-native) auth_chat "$KEY"
	expect_status 200
	[[ $(json 'b.choices[0].message.content') == '[hunyuan:hunyuan-lite] Say hi' ]]
	[[ $(json 'b.usage.completion_tokens') == 3 && $(json 'b.model') == hy-native ]]
	stream_ok '{"model":"hy-native","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"one two three"}]}'
	[[ $(sse_text) == *'one two three' ]]
	grep -qF '"finish_reason":"stop"' "$BATS_TEST_TMPDIR/body"
	grep -qF '"completion_tokens":4' "$BATS_TEST_TMPDIR/body"
	BODY='{"model":"hy-native","messages":[{"role":"user","content":"STATUS:429"}]}' auth_chat "$KEY"
	expect_openai_error 429 rate_limit_error rate_limit_exceeded
	# A wrong secret key: Tencent answers 200 with AuthFailure, streamed or not.
	BODY=$(chat_body hy-bad) auth_chat "$KEY"
	expect_openai_error 502 server_error upstream_authentication_failed
	BODY=$(chat_body hy-bad ',"stream":true') auth_chat "$KEY"
	expect_openai_error 502 server_error upstream_authentication_failed
}

# stream_ok BODY: a streamed chat request of BODY with $KEY answers 200.
stream_ok() {
	req -N -X POST -H 'content-type: application/json' -H "authorization: Bearer $KEY" \
		--data-binary "$1" "$CHAT_PATH"
	expect_status 200
}

# midstream_error_is MODEL TEXT: a stream of MODEL that the provider breaks off carries
# TEXT in an error event and still ends with [DONE].
midstream_error_is() {
	stream_ok '{"model":"'"$1"'","stream":true,"messages":[{"role":"user","content":"a b c d FAIL_MIDSTREAM"}]}'
	grep -qF "$2" "$BATS_TEST_TMPDIR/body"
	grep -qF 'data: [DONE]' "$BATS_TEST_TMPDIR/body"
}

# sse_text: the content deltas of the streamed answer in $BATS_TEST_TMPDIR/body, joined.
sse_text() {
	node -e 'const c = require("fs").readFileSync(process.argv[1], "utf8").split("\n")
		.filter(l => l.startsWith("data: ") && l !== "data: [DONE]").map(l => JSON.parse(l.slice(6)));
		process.stdout.write(c.map(x => x.choices[0]?.delta?.content || "").join(""))' "$BATS_TEST_TMPDIR/body"
}

@test "DashScope's native API: chat, incremental stream with a tool call, errors in and out of a stream" {
	BODY=$(chat_body ds-native) auth_chat "$KEY"
	expect_status 200
	[[ $(json 'b.choices[0].message.content') == '[dashscope:qwen-plus] Say hi' ]]
	[[ $(json 'b.usage.completion_tokens') == 3 && $(json 'b.model') == ds-native ]]
	stream_ok '{"model":"ds-native","stream":true,"messages":[{"role":"user","content":"one two TOOL"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]}'
	[[ $(sse_text) == *'one two TOOL' ]]
	grep -qF '"finish_reason":"tool_calls"' "$BATS_TEST_TMPDIR/body"
	grep -qF 'get_weather' "$BATS_TEST_TMPDIR/body"
	midstream_error_is ds-native 'InternalError'
	BODY='{"model":"ds-native","messages":[{"role":"user","content":"STATUS:429"}]}' auth_chat "$KEY"
	expect_openai_error 429 rate_limit_error rate_limit_exceeded
}

@test "Hugging Face TGI's native API: /generate with a chat template, token stream with usage, errors in and out of a stream" {
	# ChatML by default; the prompt tokens come from TGI's x-prompt-tokens header, the
	# completion from details.generated_tokens (3 words and the end-of-sequence token).
	BODY='{"model":"tgi-native","temperature":0,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Say hi"}]}' auth_chat "$KEY"
	expect_status 200
	[[ $(json 'b.choices[0].message.content') == '[tgi:chatml] Say hi' ]]
	[[ $(json 'b.choices[0].finish_reason') == stop && $(json 'b.model') == tgi-native ]]
	[[ $(json 'b.usage.completion_tokens') == 4 && $(json 'b.usage.prompt_tokens') -gt 0 ]]
	BODY=$(chat_body tgi-llama) auth_chat "$KEY"
	expect_status 200
	[[ $(json 'b.choices[0].message.content') == '[tgi:llama3] Say hi' ]]
	stream_ok '{"model":"tgi-native","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"one two three"}]}'
	[[ $(sse_text) == '[tgi:chatml] one two three' ]]
	grep -qF '"finish_reason":"stop"' "$BATS_TEST_TMPDIR/body"
	grep -qF '"completion_tokens":5' "$BATS_TEST_TMPDIR/body"
	run ! grep -qF 'im_end' "$BATS_TEST_TMPDIR/body"
	midstream_error_is tgi-native 'CUDA out of memory'
	BODY='{"model":"tgi-native","messages":[{"role":"user","content":"STATUS:429"}]}' auth_chat "$KEY"
	expect_openai_error 429 rate_limit_error rate_limit_exceeded
	# TGI's own validation (422) is the client's error.
	BODY='{"model":"tgi-native","stop":["a","b","c","d","e"],"messages":[{"role":"user","content":"hi"}]}' auth_chat "$KEY"
	expect_openai_error 400 invalid_request_error
	grep -qF 'up to 4 stop sequences' "$BATS_TEST_TMPDIR/body"
	BODY='{"model":"tgi-native","tools":[{"type":"function","function":{"name":"f","parameters":{}}}],"messages":[{"role":"user","content":"hi"}]}' auth_chat "$KEY"
	expect_openai_error 400 invalid_request_error unsupported_by_provider
	BODY=$(chat_body tgi-badtpl) auth_chat "$KEY"
	expect_openai_error 500 server_error adapter_misconfigured
}
