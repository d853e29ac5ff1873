#!/usr/bin/env bats
# The model catalogue end to end: every service type through the gateway, aliases,
# service-type and streaming refusals, the upstream-name rewrite (the model server
# sees the upstream name and otherwise the client's exact bytes), multipart forms
# with the model before and after the file, and bodies too large to inspect.

setup_file() {
	load helpers
	stack_start
	jr_ctl tenant add acme >/dev/null
	jr_ctl model add chat-model be_mock >/dev/null
	jr_ctl model alias chat-model chat-alias >/dev/null
	jr_ctl model add embed-model be_mock --services embeddings >/dev/null
	jr_ctl model add rerank-model be_mock --provider cohere --services rerank >/dev/null
	jr_ctl model add tts-model be_mock --services audio_speech >/dev/null
	jr_ctl model add stt-model be_mock --services audio_transcriptions --upstream whisper-large-v3 >/dev/null
	jr_ctl model add image-model be_mock --services images_generations,images_edits >/dev/null
	jr_ctl model add renamed-model be_mock --provider vllm --upstream 'Qwen/Qwen2.5-7B "Instruct"' \
		--services chat,completions >/dev/null
	jr_ctl model add batch-model be_mock --no-streaming >/dev/null
	KEY=$(issue_key acme)
	export KEY
	[[ -n $KEY ]]
	BATS_TEST_TMPDIR=$BATS_FILE_TMPDIR eventually 10 alias_works
}

alias_works() {
	BODY=$(chat_body chat-alias) auth_chat "$KEY"
	expect_status 200
}

teardown_file() {
	if [[ -n ${STACK:-} ]]; then
		jr_stack_stop "$STACK"
		if [[ -n ${JR_DUMP_LOGS:-} ]] || grep -qE 'Sanitizer|runtime error' "$STACK/agent.log" 2>/dev/null; then
			jr_dump_logs "$STACK" >&3
		fi
	fi
}

setup() {
	load helpers
}

teardown() {
	if [[ ${BATS_TEST_COMPLETED:-} != 1 ]]; then
		jr_dump_logs "$STACK"
	fi
}

# post PATH JSON: a JSON request with the key.
post() {
	req -X POST -H "authorization: Bearer $KEY" -H 'content-type: application/json' \
		--data-binary "$2" "$1"
}

sha() {
	sha256sum "$@" | cut -d' ' -f1
}

@test "an alias routes to its model, which the model server sees under the alias as sent" {
	BODY=$(chat_body chat-alias) auth_chat "$KEY"
	expect_status 200
	[[ $(hdr x-mock-model) == chat-alias ]]
	[[ $(hdr x-mock-body-sha256) == "$(printf '%s' "$(chat_body chat-alias)" | sha)" ]]
	grep -q 'model=chat-model' "$STACK/haproxy.log"
}

@test "embeddings, under /v1 and /api/v1" {
	post /v1/embeddings '{"model":"embed-model","input":"hello"}'
	expect_status 200
	[[ $(json 'b.object') == list ]]
	post /api/v1/embeddings '{"model":"embed-model","input":"hello"}'
	expect_status 200
	[[ $(json 'b.data[0].object') == embedding ]]
}

@test "rerank" {
	body='{"model":"rerank-model","query":"red fox","documents":["blue car","red fox"],"top_n":1}'
	post /v1/rerank "$body"
	expect_status 200
	[[ $(json 'b.results[0].index') == 1 ]]
	[[ $(hdr x-mock-body-sha256) == "$(printf '%s' "$body" | sha)" ]]
}

@test "audio speech: the binary answer passes through" {
	post /v1/audio/speech '{"model":"tts-model","input":"Hello","voice":"alloy"}'
	expect_status 200
	[[ $(hdr content-type) == audio/mpeg ]]
	[[ $(head -c 2 "$BATS_TEST_TMPDIR/body" | od -An -tx1 | tr -d ' ') == fffb ]]
	[[ $(stat -c %s "$BATS_TEST_TMPDIR/body") == 36 ]]
}

@test "image generations" {
	post /api/v1/images/generations '{"model":"image-model","prompt":"a cat","n":2}'
	expect_status 200
	[[ $(json 'b.data.length') == 2 ]]
}

@test "image edits: multipart, model after the file" {
	printf 'PNG....' >"$BATS_TEST_TMPDIR/i.png"
	req -H "authorization: Bearer $KEY" -F "image=@$BATS_TEST_TMPDIR/i.png;type=image/png" \
		-F prompt=hat -F model=image-model /v1/images/edits
	expect_status 200
	[[ $(hdr x-mock-model) == image-model ]]
	[[ $(json 'b.data[0].b64_json.length > 0') == true ]]
}

@test "a model that does not serve the service type is 400 model_not_supported" {
	post /v1/embeddings '{"model":"chat-model","input":"x"}'
	expect_openai_error 400 invalid_request_error model_not_supported
	[[ $(json 'b.error.message') == *"'embeddings'"* ]]
	[[ -z $(hdr x-mock-server) ]]
	BODY=$(chat_body image-model) auth_chat "$KEY"
	expect_openai_error 400 invalid_request_error model_not_supported
}

@test "stream: true on a model without streaming is 400; without stream it passes" {
	BODY=$(chat_body batch-model ',"stream":true') auth_chat "$KEY"
	expect_openai_error 400 invalid_request_error stream_not_supported
	[[ $(json 'b.error.param') == stream ]]
	BODY=$(chat_body batch-model) auth_chat "$KEY"
	expect_status 200
}

@test "an unknown model is 404 model_not_found, a removed alias too" {
	BODY=$(chat_body no-such-model) auth_chat "$KEY"
	expect_openai_error 404 invalid_request_error model_not_found
	jr_ctl model alias chat-model short-lived >/dev/null
	BODY=$(chat_body short-lived) eventually 5 status_is "$KEY" 200
	jr_ctl model unalias short-lived >/dev/null
	BODY=$(chat_body short-lived) eventually 5 status_is "$KEY" 404
}

@test "upstream name: only the model value changes, every other byte is the client's" {
	body='{"temperature":0.5,"model":"renamed-model","messages":[{"role":"user","content":"say \"model\": \"x\""}],"extra":{"model":"inner"},"z":[1,2]}'
	expected='{"temperature":0.5,"model":"Qwen/Qwen2.5-7B \"Instruct\"","messages":[{"role":"user","content":"say \"model\": \"x\""}],"extra":{"model":"inner"},"z":[1,2]}'
	BODY=$body auth_chat "$KEY"
	expect_status 200
	[[ $(hdr x-mock-model) == 'Qwen/Qwen2.5-7B "Instruct"' ]]
	[[ $(hdr x-mock-body-sha256) == "$(printf '%s' "$expected" | sha)" ]]
	grep -q 'model=renamed-model' "$STACK/haproxy.log"
}

@test "upstream name: an escaped model value is rewritten whole" {
	body='{"model":"renamed\u002dmodel","messages":[{"role":"user","content":"hi"}]}'
	expected='{"model":"Qwen/Qwen2.5-7B \"Instruct\"","messages":[{"role":"user","content":"hi"}]}'
	BODY=$body auth_chat "$KEY"
	expect_status 200
	[[ $(hdr x-mock-body-sha256) == "$(printf '%s' "$expected" | sha)" ]]
}

@test "transcriptions: model before the file, rewritten to the upstream name in the form" {
	printf 'RIFF0123456789' >"$BATS_TEST_TMPDIR/a.wav"
	req -H "authorization: Bearer $KEY" -F model=stt-model -F "file=@$BATS_TEST_TMPDIR/a.wav;type=audio/wav" \
		/v1/audio/transcriptions
	expect_status 200
	[[ $(hdr x-mock-model) == whisper-large-v3 ]]
	[[ $(json 'b.text') == *"14 bytes of a.wav with whisper-large-v3"* ]]
}

@test "transcriptions: model after the file" {
	printf 'RIFF0123456789' >"$BATS_TEST_TMPDIR/a.wav"
	req -H "authorization: Bearer $KEY" -F "file=@$BATS_TEST_TMPDIR/a.wav" -F model=stt-model \
		/api/v1/audio/transcriptions
	expect_status 200
	[[ $(hdr x-mock-model) == whisper-large-v3 ]]
}

@test "a form with two model fields, or a broken form, is 400 and never routed" {
	printf 'x' >"$BATS_TEST_TMPDIR/a.wav"
	req -H "authorization: Bearer $KEY" -F model=stt-model -F model=tts-model \
		-F "file=@$BATS_TEST_TMPDIR/a.wav" /v1/audio/transcriptions
	expect_openai_error 400 invalid_request_error duplicate_field
	req -X POST -H "authorization: Bearer $KEY" -H 'content-type: multipart/form-data; boundary=zz' \
		--data-binary 'not a form' /v1/audio/transcriptions
	expect_openai_error 400 invalid_request_error invalid_multipart
	req -X POST -H "authorization: Bearer $KEY" -H 'content-type: multipart/form-data' \
		--data-binary 'x' /v1/audio/transcriptions
	expect_openai_error 400 invalid_request_error invalid_multipart
	[[ -z $(hdr x-mock-server) ]]
}

@test "a file larger than tune.bufsize: model after it is 413, model before it passes whole" {
	head -c $((1536 * 1024)) /dev/zero >"$BATS_TEST_TMPDIR/big.wav"
	req -H "authorization: Bearer $KEY" -F "file=@$BATS_TEST_TMPDIR/big.wav" -F model=image-model \
		-F prompt=x /v1/images/edits
	expect_openai_error 413 invalid_request_error request_too_large
	[[ -z $(hdr x-mock-server) ]]
	req -H "authorization: Bearer $KEY" -F model=stt-model -F "file=@$BATS_TEST_TMPDIR/big.wav" \
		/v1/audio/transcriptions
	expect_status 200
	[[ $(json 'b.text') == *"1572864 bytes of big.wav with whisper-large-v3"* ]]
}

@test "GET /v1/models lists canonical names; an alias resolves in /v1/models/{id}" {
	req -H "authorization: Bearer $KEY" /v1/models
	expect_status 200
	[[ $(json 'b.data.map(m => m.id).includes("chat-model")') == true ]]
	[[ $(json 'b.data.map(m => m.id).includes("chat-alias")') == false ]]
	req -H "authorization: Bearer $KEY" /v1/models/chat-alias
	expect_status 200
	[[ $(json 'b.id') == chat-model ]]
}

@test "an alias may not take a model's name, nor a model an alias's" {
	run jr_ctl model alias chat-model embed-model
	((status == 4 || status == 1))
	[[ $output == *"already taken"* ]]
	run jr_ctl model add chat-alias be_mock
	((status != 0))
}
