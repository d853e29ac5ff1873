#!/usr/bin/env bash
# Self-test of tests/mock/mock-openai.js: starts it on kernel-chosen ports and
# checks every endpoint and hook with curl and jq. Prints "N passed, N failed"
# last; exits non-zero when a check failed.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mock=$here/mock-openai.js
tmp=$(mktemp -d)
pids=()
pass=0
fail=0

cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT

for tool in node curl jq sha256sum; do
	command -v "$tool" >/dev/null || {
		echo "self-test: $tool is required" >&2
		echo "0 passed, 1 failed"
		exit 1
	}
done

# start NAME ARGS...: starts a mock, sets $port.
start() {
	local name=$1 log=$tmp/$1.log i
	shift
	node "$mock" --port 0 --name "$name" "$@" >"$log" 2>&1 &
	pids+=($!)
	port=
	for ((i = 0; i < 100; i++)); do
		port=$(sed -n 's/^LISTENING \([0-9][0-9]*\)$/\1/p' "$log" | head -n 1)
		[[ -n $port ]] && return 0
		sleep 0.05
	done
	echo "mock $name did not print LISTENING:" >&2
	cat "$log" >&2
	return 1
}

ok() {
	pass=$((pass + 1))
	echo "ok - $1"
}
not_ok() {
	fail=$((fail + 1))
	echo "not ok - $1"
	[[ -n ${2:-} ]] && printf '  # %s\n' "$2"
}

# check NAME COMMAND...: passes when COMMAND succeeds.
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else not_ok "$name" "status=$status body=$(head -c 400 "$tmp/body")"; fi
}

# req METHOD PATH [BODY] [curl args...]: sets $status; body in $tmp/body, headers in $tmp/hdr.
req() {
	local method=$1 path=$2 body=${3-}
	shift 3 2>/dev/null || shift $#
	local args=(-s -o "$tmp/body" -D "$tmp/hdr" -w '%{http_code}' -X "$method")
	if [[ -n $body ]]; then
		args+=(-H 'content-type: application/json' --data-binary "$body")
	fi
	status=$(curl "${args[@]}" "$@" "$base$path")
}
hdr() {
	tr -d '\r' <"$tmp/hdr" | awk -v h="$(echo "$1" | tr 'A-Z' 'a-z')" -F': ' 'tolower($1) == h { sub(/^[^:]*: ?/, ""); print; exit }'
}
j() { jq -e "$@" "$tmp/body" >/dev/null 2>&1; }

start m1 || {
	echo "0 passed, 1 failed"
	exit 1
}
base=http://127.0.0.1:$port
ok "mock prints LISTENING <port> ($port)"

# --- health
req GET /health
check "GET /health is 200 ok" test "$status" = 200 -a "$(cat "$tmp/body")" = ok

# --- chat, non-streamed
CHAT='{"model":"demo-model","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello, mock!"}]}'
req POST /v1/chat/completions "$CHAT"
check "chat: 200 application/json" test "$status" = 200 -a "$(hdr content-type)" = application/json
check "chat: chat.completion object" j '.object == "chat.completion" and (.id | startswith("chatcmpl-")) and (.created | type == "number")'
check "chat: model echoed" j '.model == "demo-model"'
check "chat: assistant message names the server" j '.choices[0].message.role == "assistant" and (.choices[0].message.content | contains("Hello from m1"))'
check "chat: finish_reason stop" j '.choices[0].finish_reason == "stop" and .choices[0].index == 0'
# "Be brief." (9) + "Hello, mock!" (12) = 21 chars -> 6 tokens
check "chat: prompt_tokens = ceil(chars/4)" j '.usage.prompt_tokens == 6'
check "chat: total = prompt + completion" j '.usage.completion_tokens > 0 and .usage.total_tokens == .usage.prompt_tokens + .usage.completion_tokens'
reply=$(jq -r '.choices[0].message.content' "$tmp/body")
ctoks=$(jq -r '.usage.completion_tokens' "$tmp/body")
check "chat: completion_tokens = words of reply" test "$ctoks" = "$(wc -w <<<"$reply" | tr -d ' ')"
check "chat: x-mock-server header" test "$(hdr x-mock-server)" = m1
check "chat: auth headers seen absent" test "$(hdr x-mock-saw-authorization)/$(hdr x-mock-saw-x-api-key)" = absent/absent
check "chat: body sha256 echoed" test "$(hdr x-mock-body-sha256)" = "$(printf '%s' "$CHAT" | sha256sum | cut -d' ' -f1)"
check "chat: x-mock-request-id empty without x-request-id" test -z "$(hdr x-mock-request-id)"
check "chat: x-request-id generated" test -n "$(hdr x-request-id)"
check "chat: keep-alive" test "$(hdr connection)" = keep-alive
req POST /v1/chat/completions "$CHAT"
check "chat: reply is deterministic" test "$(jq -r '.choices[0].message.content' "$tmp/body")" = "$reply"

req POST /v1/chat/completions "$CHAT" -H 'Authorization: Bearer sk-secret-value' -H 'x-api-key: k-secret' -H 'x-request-id: rid-123'
check "chat: credentials seen present" test "$(hdr x-mock-saw-authorization)/$(hdr x-mock-saw-x-api-key)" = present/present
check "chat: credential values never echoed" bash -c "! grep -q secret '$tmp/hdr' '$tmp/body'"
check "chat: x-request-id echoed" test "$(hdr x-mock-request-id)/$(hdr x-request-id)" = rid-123/rid-123

# multimodal content parts count their text
req POST /v1/chat/completions '{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"12345678"},{"type":"image_url","image_url":{"url":"data:,"}}]}]}'
check "chat: content parts counted" j '.usage.prompt_tokens == 2'

req POST /v1/chat/completions '{"model":"m","max_tokens":3,"messages":[{"role":"user","content":"hi"}]}'
check "chat: max_tokens truncates, finish_reason length" j '.usage.completion_tokens == 3 and .choices[0].finish_reason == "length" and .choices[0].message.content == "Hello from m1!"'
req POST /v1/chat/completions '{"model":"m","max_completion_tokens":2,"messages":[{"role":"user","content":"hi"}]}'
check "chat: max_completion_tokens truncates" j '.usage.completion_tokens == 2 and .choices[0].message.content == "Hello from"'
req POST /v1/chat/completions '{"model":"m","max_tokens":0,"messages":[{"role":"user","content":"hi"}]}'
check "chat: max_tokens 0 -> 400" test "$status" = 400

# --- chat, streamed
sse() { grep '^data: ' "$tmp/body" | sed 's/^data: //'; }
req POST /v1/chat/completions '{"model":"demo-model","stream":true,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello, mock!"}]}'
check "stream: text/event-stream" test "$status" = 200 -a "$(hdr content-type | cut -d';' -f1)" = text/event-stream
check "stream: ends with [DONE]" test "$(sse | tail -n 1)" = '[DONE]'
check "stream: every data line but the last is a chunk" bash -c "grep '^data: ' '$tmp/body' | sed 's/^data: //' | sed '\$d' | jq -se 'all(.object == \"chat.completion.chunk\" and .model == \"demo-model\")' >/dev/null"
check "stream: events separated by blank lines" bash -c "awk 'NR % 2 == 0 && \$0 != \"\" { bad = 1 } END { exit bad }' '$tmp/body'"
check "stream: first delta role assistant, content empty" bash -c "grep -m1 '^data: ' '$tmp/body' | sed 's/^data: //' | jq -e '.choices[0].delta.role == \"assistant\" and .choices[0].delta.content == \"\"' >/dev/null"
streamed=$(sse | sed '$d' | jq -rj '.choices[0].delta.content // empty')
check "stream: concatenated text = non-streamed reply" test "$streamed" = "$reply"
check "stream: one finish_reason stop, on the last chunk" bash -c "grep '^data: ' '$tmp/body' | sed 's/^data: //' | sed '\$d' | jq -se '[.[] | .choices[0].finish_reason | select(. != null)] == [\"stop\"] and (last.choices[0].finish_reason == \"stop\")' >/dev/null"
check "stream: no usage chunk unless asked" bash -c "! grep -q usage '$tmp/body'"
check "stream: one id for all chunks" test "$(sse | sed '$d' | jq -r .id | sort -u | wc -l)" = 1

req POST /v1/chat/completions '{"model":"demo-model","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello, mock!"}]}'
check "stream+usage: last chunk has choices [] and usage" bash -c "grep '^data: ' '$tmp/body' | sed 's/^data: //' | sed '\$d' | tail -n 1 | jq -e '.choices == [] and .usage.prompt_tokens == 6 and .usage.completion_tokens == $ctoks' >/dev/null"
check "stream+usage: other chunks carry usage null" bash -c "grep '^data: ' '$tmp/body' | sed 's/^data: //' | sed '\$d' | sed '\$d' | jq -se 'all(has(\"usage\") and .usage == null)' >/dev/null"
check "stream+usage: then [DONE]" test "$(sse | tail -n 1)" = '[DONE]'

req POST /v1/chat/completions '{"model":"m","stream":true,"max_tokens":2,"messages":[{"role":"user","content":"hi"}]}'
check "stream: max_tokens truncates with finish_reason length" bash -c "grep '^data: ' '$tmp/body' | sed 's/^data: //' | sed '\$d' | jq -rsj '[.[] | .choices[0].delta.content // empty] | join(\"\")' | grep -qx 'Hello from' && grep -q '\"finish_reason\":\"length\"' '$tmp/body'"

# --- legacy completions
req POST /v1/completions '{"model":"demo-model","prompt":"Say hi"}'
check "completions: text_completion" j '.object == "text_completion" and (.id | startswith("cmpl-")) and .model == "demo-model"'
check "completions: text and usage" j '(.choices[0].text | contains("Hello from m1")) and .choices[0].finish_reason == "stop" and .usage.prompt_tokens == 2 and .usage.total_tokens == .usage.prompt_tokens + .usage.completion_tokens'
ctext=$(jq -r '.choices[0].text' "$tmp/body")
req POST /v1/completions '{"model":"demo-model","prompt":"Say hi","stream":true,"stream_options":{"include_usage":true}}'
check "completions stream: text concatenates, usage, [DONE]" bash -c "
	d=\$(grep '^data: ' '$tmp/body' | sed 's/^data: //')
	[[ \$(tail -n 1 <<<\"\$d\") == '[DONE]' ]] &&
	[[ \$(sed '\$d' <<<\"\$d\" | jq -rj '.choices[0].text // empty') == '$ctext' ]] &&
	sed '\$d' <<<\"\$d\" | tail -n 1 | jq -e '.choices == [] and .usage.prompt_tokens == 2' >/dev/null"
req POST /v1/completions '{"model":"demo-model","prompt":[1,2,3,4,5]}'
check "completions: token-array prompt" j '.usage.prompt_tokens == 5'

# --- embeddings
req POST /v1/embeddings '{"model":"emb","input":"hello"}'
check "embeddings: list of embedding objects" j '.object == "list" and .model == "emb" and .data[0].object == "embedding" and .data[0].index == 0'
check "embeddings: dimension 8 by default" j '.data[0].embedding | length == 8 and all(type == "number")'
check "embeddings: usage" j '.usage.prompt_tokens == 2 and .usage.total_tokens == 2'
vec=$(jq -c '.data[0].embedding' "$tmp/body")
req POST /v1/embeddings '{"model":"emb","input":"hello"}'
check "embeddings: deterministic" test "$(jq -c '.data[0].embedding' "$tmp/body")" = "$vec"
req POST /v1/embeddings '{"model":"emb","input":["hello","world","x"],"dimensions":3}'
check "embeddings: batch, dimensions" j '(.data | length == 3) and ([.data[].index] == [0,1,2]) and all(.data[]; .embedding | length == 3)'
req POST /v1/embeddings '{"model":"emb","input":["world","hello"]}'
check "embeddings: same input, same vector in a batch" test "$(jq -c '.data[1].embedding' "$tmp/body")" = "$vec"
req POST /v1/embeddings '{"model":"emb","input":"hello","encoding_format":"base64"}'
check "embeddings: base64 decodes to the float vector" node -e '
	const fs = require("fs");
	const b = Buffer.from(JSON.parse(fs.readFileSync(process.argv[1], "utf8")).data[0].embedding, "base64");
	const got = Array.from(new Float32Array(b.buffer, b.byteOffset, b.length / 4));
	const want = JSON.parse(process.argv[2]);
	process.exit(got.length === want.length && got.every((x, i) => x === want[i]) ? 0 : 1);
' "$tmp/body" "$vec"
req POST /v1/embeddings '{"model":"emb","input":"x","encoding_format":"hex"}'
check "embeddings: bad encoding_format -> 400" test "$status" = 400

# --- models
req GET /v1/models
check "models: list object" j '.object == "list" and (.data | length >= 1) and all(.data[]; .object == "model" and (.id | type == "string") and (.owned_by | type == "string"))'

# --- errors
error_shape='(.error | keys) == ["code","message","param","type"]'
req POST /v1/chat/completions '{"model": "m", "messages": ['
check "invalid JSON -> 400 invalid_request_error" bash -c "[[ $status == 400 ]] && jq -e '$error_shape and .error.type == \"invalid_request_error\"' '$tmp/body' >/dev/null"
check "error: application/json" test "$(hdr content-type)" = application/json
req POST /v1/chat/completions '{"messages":[{"role":"user","content":"hi"}]}'
check "missing model -> 400 invalid_request_error" bash -c "[[ $status == 400 ]] && jq -e '$error_shape and .error.type == \"invalid_request_error\"' '$tmp/body' >/dev/null"
req POST /v1/embeddings '{"input":"x"}'
check "embeddings missing model -> 400" test "$status" = 400
req POST /v1/chat/completions '{"model":"m"}'
check "missing messages -> 400 param messages" bash -c "[[ $status == 400 ]] && jq -e '.error.param == \"messages\"' '$tmp/body' >/dev/null"
req POST /v1/nothing-here '{}'
check "unknown path -> 404 invalid_request_error" bash -c "[[ $status == 404 ]] && jq -e '$error_shape and .error.type == \"invalid_request_error\"' '$tmp/body' >/dev/null"
check "unknown path still has diagnostic headers" test "$(hdr x-mock-server)" = m1
req GET /v1/chat/completions
check "wrong method -> 404" test "$status" = 404

# --- hooks
req POST /v1/chat/completions "$CHAT" -H 'x-mock-status: 500'
check "x-mock-status 500 -> 500 server_error" bash -c "[[ $status == 500 ]] && jq -e '$error_shape and .error.type == \"server_error\"' '$tmp/body' >/dev/null"
req POST /v1/chat/completions "$CHAT" -H 'x-mock-status: 429'
check "x-mock-status 429 -> rate_limit_error" bash -c "[[ $status == 429 ]] && jq -e '.error.type == \"rate_limit_error\" and .error.code == \"rate_limit_exceeded\"' '$tmp/body' >/dev/null"
t0=$(date +%s%N)
req POST /v1/chat/completions "$CHAT" -H 'x-mock-delay-ms: 300'
t1=$(date +%s%N)
check "x-mock-delay-ms 300 waits >= 300 ms" test $(((t1 - t0) / 1000000)) -ge 300 -a "$status" = 200

# --- keep-alive: several requests on one connection
n=$(curl -s -o /dev/null -w '%{num_connects}\n' -H 'content-type: application/json' \
	--data-binary "$CHAT" "$base/v1/chat/completions" \
	--next -s -o /dev/null -w '%{num_connects}\n' -H 'content-type: application/json' \
	--data-binary "$CHAT" "$base/v1/chat/completions" | paste -sd' ')
check "keep-alive: second request reuses the connection" test "$n" = "1 0"

# --- --chunk-delay-ms: chunks are spread over time
start slow --chunk-delay-ms 20 || not_ok "start with --chunk-delay-ms"
t0=$(date +%s%N)
curl -s -N --data-binary '{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}' \
	"http://127.0.0.1:$port/v1/chat/completions" >"$tmp/body"
t1=$(date +%s%N)
nev=$(grep -c '^data: ' "$tmp/body")
check "chunk delay: $nev events take >= $(((nev - 1) * 20)) ms" test $(((t1 - t0) / 1000000)) -ge $(((nev - 1) * 20))
check "chunk delay: stream complete" test "$(grep '^data: ' "$tmp/body" | tail -n 1)" = 'data: [DONE]'
check "chunk delay: server name in reply" bash -c "grep '^data: {' '$tmp/body' | sed 's/^data: //' | jq -rj '.choices[0].delta.content // empty' | grep -q 'Hello from slow'"

# --- --require-key / --models
# --- rerank, audio, images (base is still m1)
req POST /v1/rerank '{"model":"rr","query":"red fox","documents":["a blue car","the red fox jumps",{"text":"fox"}],"top_n":2}'
check "rerank: results by relevance, top_n" j '(.results | length) == 2 and .results[0].index == 2 and .results[1].index == 1 and (.results[0].relevance_score | type == "number")'
check "rerank: x-mock-model" test "$(hdr x-mock-model)" = rr
req POST /v1/audio/speech '{"model":"tts-1","input":"Hello","voice":"alloy"}'
check "speech: audio/mpeg bytes" bash -c "[[ $status == 200 && \$(head -c 2 '$tmp/body' | od -An -tx1 | tr -d ' ') == fffb ]] && [[ '$(hdr content-type)' == audio/mpeg ]]"
printf 'RIFF0123' >"$tmp/a.wav"
req POST /v1/audio/transcriptions '' -F model=whisper-1 -F "file=@$tmp/a.wav;type=audio/wav"
check "transcriptions: multipart in, text out" j '.text | contains("8 bytes of a.wav with whisper-1")'
check "transcriptions: x-mock-model from the form" test "$(hdr x-mock-model)" = whisper-1
req POST /v1/audio/transcriptions '' -F "file=@$tmp/a.wav" -F model=whisper-1 -F response_format=text
check "transcriptions: response_format text" test "$(cat "$tmp/body")" = "Transcribed 8 bytes of a.wav with whisper-1."
req POST /v1/audio/transcriptions '' -F model=whisper-1
check "transcriptions: no file -> 400" test "$status" = 400
req POST /v1/images/generations '{"model":"dall-e-3","prompt":"a cat","n":2}'
check "images: b64_json data" j '(.data | length) == 2 and (.data[0].b64_json | type == "string") and (.created | type == "number")'
req POST /v1/images/generations '{"model":"dall-e-3","prompt":"a cat","response_format":"url"}'
check "images: url data" j '.data[0].url | startswith("https://")'
printf 'PNG' >"$tmp/i.png"
req POST /v1/images/edits '' -F "image=@$tmp/i.png;type=image/png" -F prompt=hat -F model=dall-e-2
check "image edits: multipart in" j '(.data | length) == 1 and (.data[0].b64_json | type == "string")'
check "image edits: body sha256" test "$(hdr x-mock-body-sha256)" != ""
req POST /v1/images/edits 'not a form'
check "image edits: not multipart -> 400" test "$status" = 400

# --- moderations
req POST /v1/moderations '{"model":"omni-moderation-latest","input":["fine text","mock-flag text"]}'
check "moderations: one result per input, the marked one flagged" j '(.id | startswith("modr-")) and .model == "omni-moderation-latest" and (.results | length) == 2 and .results[0].flagged == false and .results[1].flagged == true and .results[1].categories.violence == true'
req POST /v1/moderations '{"input":42}'
check "moderations: bad input -> 400" test "$status" = 400

# --- the Realtime API (tests/mock/mock-realtime.js), through the ws client the SDK uses
rtc=$here/../clients/realtime-session.mjs
node "$rtc" "$base" - demo-model --responses 2 >"$tmp/body" 2>&1
check "realtime: 101, two responses, usage from response.done, clean close" j '.status == 101 and .responses == 2 and .input_tokens == 34 and .output_tokens == 10 and .close_code == 1000 and .extensions == null'
req GET /_mock/realtime
check "realtime: the mock counted the session and its usage" j '.sessions == 1 and .closed == 1 and .responses == 2 and .input_tokens == 34 and .output_tokens == 10 and .last_upgrade.model == "demo-model"'
node "$rtc" "$base" - demo-model --big 70000 >"$tmp/body" 2>&1
check "realtime: the mock_delta_bytes hook sends one large delta" j '.status == 101 and .responses == 1 and .output_tokens == 1'

# --- the Responses API (tests/mock/mock-responses.js)
req POST /v1/responses '{"model":"demo-model","input":"Hello, mock!","max_output_tokens":50}'
check "responses: response object, completed" j '.object == "response" and (.id | startswith("resp_")) and .status == "completed" and .model == "demo-model"'
check "responses: output_text part" j '.output[0].type == "message" and .output[0].content[0].type == "output_text" and (.output[0].content[0].text | contains("Hello from m1"))'
check "responses: usage input/output/total" j '.usage.input_tokens == 3 and .usage.output_tokens > 0 and .usage.total_tokens == .usage.input_tokens + .usage.output_tokens'
rid=$(jq -r .id "$tmp/body")
req GET "/v1/responses/$rid"
check "responses: retrieve" j ".id == \"$rid\""
req GET "/v1/responses/$rid/input_items"
check "responses: input items" j '.object == "list" and .data[0].content[0].text == "Hello, mock!" and .has_more == false'
req POST /v1/responses "{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":\"Next\"}],\"previous_response_id\":\"$rid\"}"
check "responses: previous_response_id accepted" j ".previous_response_id == \"$rid\""
req DELETE "/v1/responses/$rid"
check "responses: delete" j ".deleted == true and .object == \"response.deleted\""
req GET "/v1/responses/$rid"
check "responses: deleted -> 404" bash -c "[[ $status == 404 ]] && jq -e '$error_shape' '$tmp/body' >/dev/null"
req POST /v1/responses '{"model":"m","input":"x","previous_response_id":"resp_nope"}'
check "responses: unknown previous_response_id -> 400" bash -c "[[ $status == 400 ]] && jq -e '.error.param == \"previous_response_id\"' '$tmp/body' >/dev/null"
req POST /v1/responses '{"model":"m","input":"x","store":false}'
rid=$(jq -r .id "$tmp/body")
req GET "/v1/responses/$rid"
check "responses: store false is not kept" test "$status" = 404
req POST /v1/responses '{"model":"m","input":"Stream it","stream":true,"max_output_tokens":2}'
check "responses stream: event and data lines agree, numbered, no [DONE]" node -e '
	const raw = require("fs").readFileSync(process.argv[1], "utf8");
	if (raw.includes("[DONE]")) process.exit(1);
	const evs = raw.split("\n\n").filter((b) => b.trim()).map((b) => {
		const d = JSON.parse(/^data: (.*)$/m.exec(b)[1]);
		if (/^event: (.*)$/m.exec(b)[1] !== d.type) process.exit(1);
		return d;
	});
	evs.forEach((e, i) => { if (e.sequence_number !== i) process.exit(1); });
	const t = evs.map((e) => e.type);
	const want = ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
		"response.output_text.delta", "response.output_text.delta", "response.output_text.done", "response.content_part.done",
		"response.output_item.done", "response.incomplete"];
	if (JSON.stringify(t) !== JSON.stringify(want)) process.exit(1);
	if (evs[9].response.usage.output_tokens !== 2) process.exit(1);
' "$tmp/body"

# --- the Files and Batch APIs (tests/mock/mock-files.js)
printf '%s\n' '{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"demo-model","messages":[{"role":"user","content":"one"}]}}' \
	'{"custom_id":"b","method":"POST","url":"/v1/chat/completions","body":{"model":"demo-model","messages":[{"role":"user","content":"two"}]}}' >"$tmp/in.jsonl"
status=$(curl -s -o "$tmp/body" -w '%{http_code}' -F purpose=batch -F "file=@$tmp/in.jsonl" "$base/v1/files")
check "files: upload -> file object" j '.object == "file" and (.id | startswith("file-")) and .purpose == "batch" and .filename == "in.jsonl" and .status == "processed"'
fid=$(jq -r .id "$tmp/body")
check "files: bytes are the file's" j ".bytes == $(wc -c <"$tmp/in.jsonl")"
req GET "/v1/files/$fid"
check "files: retrieve" j ".id == \"$fid\""
req GET "/v1/files/$fid/content"
check "files: content is the bytes uploaded" cmp -s "$tmp/body" "$tmp/in.jsonl"
check "files: content is octet-stream" bash -c "[[ \$(tr -d '\r' <'$tmp/hdr' | grep -i '^content-type:') == *application/octet-stream* ]]"
req GET /v1/files
check "files: list" j "[.data[].id] | index(\"$fid\") != null"
req POST /v1/batches "{\"input_file_id\":\"$fid\",\"endpoint\":\"/v1/chat/completions\",\"completion_window\":\"24h\"}"
check "batches: create -> validating" j '.object == "batch" and .status == "validating" and .request_counts.total == 2'
bid=$(jq -r .id "$tmp/body")
req GET "/v1/batches/$bid"
check "batches: in_progress" j '.status == "in_progress"'
req GET "/v1/batches/$bid"
req GET "/v1/batches/$bid"
check "batches: completed, with usage" j '.status == "completed" and .request_counts.completed == 2 and .usage.output_tokens == 12 and .usage.total_tokens == .usage.input_tokens + 12'
req GET "/v1/files/$(jq -r .output_file_id "$tmp/body")/content"
check "batches: output file has one result per line" bash -c "[[ \$(jq -r .custom_id '$tmp/body' | sort | paste -sd,) == a,b ]]"
req GET /v1/batches
check "batches: list" j "[.data[].id] | index(\"$bid\") != null"
req POST /v1/batches "{\"input_file_id\":\"$fid\",\"endpoint\":\"/v1/chat/completions\",\"completion_window\":\"24h\"}"
bid=$(jq -r .id "$tmp/body")
req POST "/v1/batches/$bid/cancel" ''
check "batches: cancel -> cancelling" j '.status == "cancelling"'
req GET "/v1/batches/$bid"
check "batches: then cancelled" j '.status == "cancelled" and (.usage == null)'
req POST "/v1/batches/$bid/cancel" ''
check "batches: cancel a cancelled batch -> 409" test "$status" = 409
req DELETE "/v1/files/$fid"
check "files: delete" j ".deleted == true and .id == \"$fid\""
req GET "/v1/files/$fid"
check "files: deleted -> 404" test "$status" = 404
req POST /v1/batches '{"input_file_id":"file-nope","endpoint":"/v1/chat/completions","completion_window":"24h"}'
check "batches: unknown input file -> 404" test "$status" = 404

start strict --require-key sk-good --models alpha,beta || not_ok "start with --require-key"
base=http://127.0.0.1:$port
req POST /v1/chat/completions '{"model":"alpha","messages":[{"role":"user","content":"hi"}]}' -H 'Authorization: Bearer sk-good'
check "require-key: right bearer key -> 200" test "$status" = 200
req POST /v1/chat/completions '{"model":"alpha","messages":[{"role":"user","content":"hi"}]}' -H 'x-api-key: sk-good'
check "require-key: right x-api-key -> 200" test "$status" = 200
req POST /v1/chat/completions '{"model":"alpha","messages":[{"role":"user","content":"hi"}]}' -H 'Authorization: Bearer sk-bad'
check "require-key: wrong key -> 401 authentication_error" bash -c "[[ $status == 401 ]] && jq -e '$error_shape and .error.type == \"authentication_error\" and .error.code == \"invalid_api_key\"' '$tmp/body' >/dev/null"
check "require-key: wrong key not echoed" bash -c "! grep -q sk-bad '$tmp/body' '$tmp/hdr'"
req POST /v1/chat/completions '{"model":"alpha","messages":[{"role":"user","content":"hi"}]}'
check "require-key: no key -> 401 authentication_error" bash -c "[[ $status == 401 ]] && jq -e '.error.type == \"authentication_error\"' '$tmp/body' >/dev/null"
node "$rtc" "http://127.0.0.1:$port" sk-bad alpha >"$tmp/body" 2>&1
check "require-key: a realtime upgrade with a wrong key -> 401 before the upgrade" j '.status == 401 and .body.error.code == "invalid_api_key"'
req POST /v1/chat/completions '{"model":"gamma","messages":[{"role":"user","content":"hi"}]}' -H 'Authorization: Bearer sk-good'
check "models: unknown model -> 404 model_not_found" bash -c "[[ $status == 404 ]] && jq -e '$error_shape and .error.type == \"invalid_request_error\" and .error.code == \"model_not_found\"' '$tmp/body' >/dev/null"
req GET /v1/models '' -H 'Authorization: Bearer sk-good'
check "models: list is --models" j '[.data[].id] == ["alpha","beta"]'
req GET /health
check "health needs no key" test "$status" = 200

echo "$pass passed, $fail failed"
((fail == 0))
