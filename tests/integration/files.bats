#!/usr/bin/env bats
# The Files and Batch APIs end to end (docs/api.md, "Files and batches"): HAProxy +
# agent + PostgreSQL + the mock model server's /v1/files and /v1/batches
# (tests/mock/mock-files.js). An upload goes to the backend of the tenant's files model;
# only the tenant that uploaded a file (created a batch) can use it; lists are answered
# by the agent from the tenant's own records; a batch input file is checked line by
# line; oversize uploads are refused; a completed batch is billed once from its usage
# (or at the estimate without one), also when only `jairouterctl batches sync` sees it.

bats_require_minimum_version 1.5.0

load helpers
stack_hooks

setup_file() {
	stack_start
	jr_ctl model add files-model be_mock >/dev/null
	jr_ctl model add files-other be_mock >/dev/null
	jr_ctl model add files-private be_mock --private >/dev/null
	jr_ctl model add files-far be_mock2 >/dev/null
	jr_ctl tenant add acme >/dev/null
	jr_ctl tenant add globex >/dev/null
	jr_ctl tenant add initech >/dev/null
	jr_ctl tenant settings acme '{"files_model":"files-model"}' >/dev/null
	jr_ctl tenant settings globex '{"files_model":"files-model"}' >/dev/null
	KEY=$(issue_key acme)
	OTHER=$(issue_key globex)
	NONE=$(issue_key initech)
	export KEY OTHER NONE
	BATS_TEST_TMPDIR=$BATS_FILE_TMPDIR eventually 10 uploaded "$KEY" user_data
}

# upload KEY PURPOSE [FILE]: POST /v1/files (multipart, purpose before the file).
upload() {
	local f=${3:-$BATS_TEST_TMPDIR/upload.txt}
	[[ -f $f ]] || printf 'hello from a test file\n' >"$f"
	req -X POST -H "authorization: Bearer $1" -F "purpose=$2" -F "file=@$f" /v1/files
}

uploaded() {
	upload "$@"
	[[ $STATUS == 200 ]]
}

get() {
	req -H "authorization: Bearer $1" "$2"
}

get_is() {
	get "$1" "$2"
	[[ $STATUS == "$3" ]]
}

# not_found_for KEY OBJECT ID PATH...: a GET of each PATH with KEY answers 404 "No such
# OBJECT object: 'ID'." (another tenant's object).
not_found_for() {
	local key=$1 object=$2 id=$3 path
	shift 3
	for path in "$@"; do
		get "$key" "$path"
		expect_openai_error 404 invalid_request_error not_found
		[[ $(json b.error.message) == "No such $object object: '$id'." ]]
	done
}

# files_tenant NAME: a new tenant NAME whose files model is files-model, its key in K,
# once the agent takes its uploads.
files_tenant() {
	K=$(new_tenant "$1")
	jr_ctl tenant settings "$1" '{"files_model":"files-model"}' >/dev/null
	eventually 10 uploaded "$K" user_data
}

# batch_file PATH MODEL...: one chat line per model.
batch_file() {
	local path=$1 i=0 m
	shift
	: >"$path"
	for m in "$@"; do
		i=$((i + 1))
		printf '{"custom_id":"r%d","method":"POST","url":"/v1/chat/completions","body":{"model":"%s","messages":[{"role":"user","content":"Hi %d"}]}}\n' \
			"$i" "$m" "$i" >>"$path"
	done
}

@test "an upload is stored on the files model's backend and recorded for its tenant" {
	local id
	upload "$KEY" user_data
	expect_status 200
	id=$(json b.id)
	[[ $id == file-* ]]
	[[ $(json b.object) == file ]]
	[[ $(json b.purpose) == user_data ]]
	[[ $(json b.filename) == upload.txt ]]
	eventually 5 bash -c "[[ \$(psql -X -t -A -d '$JR_DATABASE' -c \"SELECT t.name || ' ' || m.name || ' ' || (o.object::json->>'purpose')
	    FROM jairouter.api_objects o JOIN jairouter.tenants t ON t.id = o.tenant_id JOIN jairouter.models m ON m.id = o.model_id
	    WHERE o.kind = 'file' AND o.object_id = '$id'\") == 'acme files-model user_data' ]]"
}

@test "only the uploading tenant retrieves, downloads and deletes a file" {
	local id
	printf 'line one\nline two\n' >"$BATS_TEST_TMPDIR/two.txt"
	upload "$KEY" user_data "$BATS_TEST_TMPDIR/two.txt"
	expect_status 200
	id=$(json b.id)
	eventually 5 get_is "$KEY" "/v1/files/$id" 200
	[[ $(json b.id) == "$id" ]]
	[[ $(json b.bytes) == 18 ]]
	get "$KEY" "/v1/files/$id/content"
	expect_status 200
	cmp "$BATS_TEST_TMPDIR/body" "$BATS_TEST_TMPDIR/two.txt"
	not_found_for "$OTHER" File "$id" "/v1/files/$id" "/v1/files/$id/content" "/api/v1/files/$id"
	req -X DELETE -H "authorization: Bearer $OTHER" "/v1/files/$id"
	expect_openai_error 404 invalid_request_error not_found
	req -X DELETE -H "authorization: Bearer $KEY" "/v1/files/$id"
	expect_status 200
	[[ $(json b.deleted) == true ]]
	get "$KEY" "/v1/files/$id"
	expect_status 404
	# Gone from the tenant's list too (the owner stays: another tenant still gets 404).
	eventually 5 bash -c "[[ \$(psql -X -t -A -d '$JR_DATABASE' -c \"SELECT object::json->>'deleted' FROM jairouter.api_objects WHERE object_id = '$id'\") == true ]]"
	get "$KEY" /v1/files
	[[ $(json "b.data.some((f) => f.id === '$id')") == false ]]
	get "$OTHER" "/v1/files/$id"
	expect_openai_error 404 invalid_request_error not_found
}

@test "a tenant lists only its own files, newest first, with OpenAI's cursor fields" {
	local k other mine=() id
	files_tenant lister
	k=$K
	mine+=("$(json b.id)")
	for purpose in user_data assistants batch; do
		[[ $purpose == batch ]] && batch_file "$BATS_TEST_TMPDIR/upload.txt" files-model
		upload "$k" "$purpose"
		expect_status 200
		mine+=("$(json b.id)")
	done
	upload "$OTHER" user_data
	expect_status 200
	other=$(json b.id)
	eventually 5 get_is "$k" "/v1/files/${mine[3]}" 200
	get "$k" /v1/files
	expect_status 200
	[[ $(json b.object) == list ]]
	[[ $(json b.data.length) == 4 ]]
	[[ $(json b.has_more) == false ]]
	[[ $(json 'b.data.every((f) => f.object === "file")') == true ]]
	[[ $(json "b.data.some((f) => f.id === '$other')") == false ]]
	for id in "${mine[@]}"; do
		[[ $(json "b.data.some((f) => f.id === '$id')") == true ]]
	done
	[[ $(json 'b.first_id === b.data[0].id && b.last_id === b.data[3].id') == true ]]
	# Pages: limit, after; purpose filters; order asc reverses.
	get "$k" '/v1/files?limit=2'
	[[ $(json b.data.length) == 2 ]]
	[[ $(json b.has_more) == true ]]
	get "$k" "/v1/files?limit=2&after=$(json b.last_id)"
	[[ $(json b.data.length) == 2 ]]
	[[ $(json b.has_more) == false ]]
	get "$k" '/v1/files?purpose=user_data'
	[[ $(json b.data.length) == 2 ]]
	[[ $(json 'b.data.every((f) => f.purpose === "user_data")') == true ]]
	get "$k" '/v1/files?order=asc'
	cp "$BATS_TEST_TMPDIR/body" "$BATS_TEST_TMPDIR/asc"
	get "$k" '/v1/files?order=desc'
	[[ $(json 'b.data.map((f) => f.id).reverse().join()') == \
		$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).data.map((f) => f.id).join())' "$BATS_TEST_TMPDIR/asc") ]]
	get "$k" '/v1/files?limit=0'
	expect_openai_error 400 invalid_request_error invalid_value
	[[ $(json b.error.param) == limit ]]
	get "$k" '/v1/files?order=sideways'
	expect_openai_error 400 invalid_request_error invalid_value
	# The other tenant's list does not show these.
	get "$OTHER" /v1/files
	expect_status 200
	for id in "${mine[@]}"; do
		[[ $(json "b.data.some((f) => f.id === '$id')") == false ]]
	done
}

@test "a batch input file naming a model the tenant may not use is refused, naming the line" {
	batch_file "$BATS_TEST_TMPDIR/b.jsonl" files-model files-private
	upload "$KEY" batch "$BATS_TEST_TMPDIR/b.jsonl"
	expect_openai_error 400 invalid_request_error model_not_found
	# shellcheck disable=SC2016 # backquotes of the message
	[[ $(json b.error.message) == 'Line 2 of the batch file: the model `files-private` does not exist or you do not have access to it.' ]]
	batch_file "$BATS_TEST_TMPDIR/b.jsonl" nope-model
	upload "$KEY" batch "$BATS_TEST_TMPDIR/b.jsonl"
	expect_openai_error 400 invalid_request_error model_not_found
	# A model on another backend cannot run in this tenant's batches.
	batch_file "$BATS_TEST_TMPDIR/b.jsonl" files-other files-far
	upload "$KEY" batch "$BATS_TEST_TMPDIR/b.jsonl"
	expect_openai_error 400 invalid_request_error model_not_supported
	[[ $(json b.error.message) == 'Line 2 of the batch file:'* ]]
	# An endpoint the gateway does not serve, a line that is not JSON.
	printf '{"custom_id":"a","method":"POST","url":"/v1/fine_tuning/jobs","body":{"model":"files-model"}}\n' >"$BATS_TEST_TMPDIR/b.jsonl"
	upload "$KEY" batch "$BATS_TEST_TMPDIR/b.jsonl"
	expect_openai_error 400 invalid_request_error invalid_batch_line
	printf '\n{"custom_id":"a","method":"POST","url":"/v1/embeddings","body":{"model":"files-model","input":"x"}}\nnot json\n' >"$BATS_TEST_TMPDIR/b.jsonl"
	upload "$KEY" batch "$BATS_TEST_TMPDIR/b.jsonl"
	expect_openai_error 400 invalid_request_error invalid_batch_line
	[[ $(json b.error.message) == 'Line 3 of the batch file is not'* ]]
	# A model the key's role may not use: 403.
	batch_file "$BATS_TEST_TMPDIR/b.jsonl" files-model files-other
	jr_ctl role add acme-files-only --tenant acme --allow 'service:chat,model:files-model' >/dev/null
	local k prefix
	k=$(issue_key acme)
	prefix=${k:0:11}
	jr_ctl role assign "$prefix" acme-files-only >/dev/null
	eventually 10 bash -c "curl -s -o /dev/null -w '%{http_code}' -H 'authorization: Bearer $k' -F purpose=batch -F 'file=@$BATS_TEST_TMPDIR/b.jsonl' $JR_URL/v1/files | grep -qx 403"
	upload "$k" batch "$BATS_TEST_TMPDIR/b.jsonl"
	expect_openai_error 403 permission_error permission_denied
	# shellcheck disable=SC2016 # backquotes of the message
	[[ $(json b.error.message) == 'Line 2 of the batch file: you may not use the model `files-other`.' ]]
	# "Batch " is read as a batch too (a lenient server might); a purpose sent as a file
	# part is refused.
	batch_file "$BATS_TEST_TMPDIR/b.jsonl" files-model files-private
	upload "$KEY" 'Batch ' "$BATS_TEST_TMPDIR/b.jsonl"
	expect_openai_error 400 invalid_request_error model_not_found
	printf 'batch' >"$BATS_TEST_TMPDIR/purpose.txt"
	req -X POST -H "authorization: Bearer $KEY" -F "purpose=@$BATS_TEST_TMPDIR/purpose.txt" -F "file=@$BATS_TEST_TMPDIR/b.jsonl" /v1/files
	expect_openai_error 400 invalid_request_error invalid_type
	[[ $(json b.error.param) == purpose ]]
	# All lines allowed: stored.
	batch_file "$BATS_TEST_TMPDIR/b.jsonl" files-model files-other
	upload "$KEY" batch "$BATS_TEST_TMPDIR/b.jsonl"
	expect_status 200
	[[ $(json b.purpose) == batch ]]
}

@test "oversize uploads are refused with 413 and an OpenAI error" {
	# A batch file larger than the inspection buffer (tune.bufsize, 1 MiB).
	node -e 'const l = JSON.stringify({custom_id: "x", method: "POST", url: "/v1/chat/completions",
		body: {model: "files-model", messages: [{role: "user", content: "y".repeat(1000)}]}});
		process.stdout.write((l + "\n").repeat(1200))' >"$BATS_TEST_TMPDIR/big.jsonl"
	upload "$KEY" batch "$BATS_TEST_TMPDIR/big.jsonl"
	expect_openai_error 413 invalid_request_error batch_file_too_large
	# Another purpose: the files_max_bytes option (set to 2 MiB here).
	printf 'files_max_bytes = 2097152\n' >>"$STACK/agent.conf"
	kill -HUP "$(jr_pid_of "$STACK/agent.pid")"
	head -c 3000000 /dev/zero >"$BATS_TEST_TMPDIR/big.bin"
	eventually 10 bash -c "curl -s -o /dev/null -w '%{http_code}' -H 'authorization: Bearer $KEY' -F purpose=user_data -F 'file=@$BATS_TEST_TMPDIR/big.bin' $JR_URL/v1/files | grep -qx 413"
	upload "$KEY" user_data "$BATS_TEST_TMPDIR/big.bin"
	expect_openai_error 413 invalid_request_error file_too_large
	# Under the limit, but beyond the buffer: stored, uninspected.
	head -c 1500000 /dev/zero >"$BATS_TEST_TMPDIR/mid.bin"
	upload "$KEY" user_data "$BATS_TEST_TMPDIR/mid.bin"
	expect_status 200
	[[ $(json b.bytes) == 1500000 ]]
}

@test "a tenant without a files model gets an error naming the setting" {
	upload "$NONE" user_data
	expect_openai_error 400 invalid_request_error files_not_configured
	[[ $(json b.error.message) == *"'files_model'"* ]]
	get "$NONE" /v1/files
	expect_status 200
	[[ $(json b.data.length) == 0 ]]
	# Other methods and sub-paths stay unknown URLs.
	req -X PUT -H "authorization: Bearer $KEY" /v1/files
	expect_openai_error 404 invalid_request_error unknown_url
	get "$KEY" /v1/files/x/y
	expect_openai_error 404 invalid_request_error unknown_url
}

# ---- batches -----------------------------------------------------------------------------

# new_batch KEY MODEL...: uploads a batch file (one chat line per model) and creates a
# batch from it; sets BATCH (its id) and INPUT (the file's id).
new_batch() {
	local key=$1
	shift
	batch_file "$BATS_TEST_TMPDIR/in.jsonl" "$@"
	upload "$key" batch "$BATS_TEST_TMPDIR/in.jsonl"
	expect_status 200
	INPUT=$(json b.id)
	eventually 5 get_is "$key" "/v1/files/$INPUT" 200
	req -X POST -H "authorization: Bearer $key" -H 'content-type: application/json' \
		--data-binary "{\"input_file_id\":\"$INPUT\",\"endpoint\":\"/v1/chat/completions\",\"completion_window\":\"24h\"}" /v1/batches
	expect_status 200
	BATCH=$(json b.id)
	[[ $BATCH == batch_* ]]
	eventually 5 bash -c "[[ \$(psql -X -t -A -d '$JR_DATABASE' -c \"SELECT count(*) FROM jairouter.api_objects WHERE object_id = '$BATCH'\") == 1 ]]"
}

# batch_usage TENANT MODEL: requests prompt completion estimated of usage_daily.
batch_usage() {
	db_sql "SELECT coalesce(sum(requests), 0) || ' ' || coalesce(sum(prompt_tokens), 0) || ' ' ||
	    coalesce(sum(completion_tokens), 0) || ' ' || coalesce(sum(estimated_requests), 0)
	    FROM jairouter.usage_by_tenant_model_day WHERE tenant = '$1' AND model = '$2'"
}

billed_rows() {
	db_sql "SELECT count(*) FROM jairouter.batch_usage WHERE batch_id = '$1'"
}

billed_once() {
	[[ $(billed_rows "$1") == 1 ]]
}

@test "only the creating tenant retrieves, cancels and lists a batch; another tenant's file cannot start one" {
	local k o
	k=$(new_tenant bat-a)
	o=$(new_tenant bat-b)
	jr_ctl tenant settings bat-a '{"files_model":"files-model"}' >/dev/null
	jr_ctl tenant settings bat-b '{"files_model":"files-model"}' >/dev/null
	eventually 10 uploaded "$k" user_data
	new_batch "$k" files-model
	[[ $(json b.status) == validating ]]
	not_found_for "$o" Batch "$BATCH" "/v1/batches/$BATCH" "/api/v1/batches/$BATCH"
	req -X POST -H "authorization: Bearer $o" "/v1/batches/$BATCH/cancel"
	expect_openai_error 404 invalid_request_error not_found
	# B cannot start a batch from A's file.
	req -X POST -H "authorization: Bearer $o" -H 'content-type: application/json' \
		--data-binary "{\"input_file_id\":\"$INPUT\",\"endpoint\":\"/v1/chat/completions\",\"completion_window\":\"24h\"}" /v1/batches
	expect_openai_error 404 invalid_request_error not_found
	[[ $(json b.error.param) == input_file_id ]]
	# Endpoints the gateway does not serve; a file of another purpose.
	req -X POST -H "authorization: Bearer $k" -H 'content-type: application/json' \
		--data-binary "{\"input_file_id\":\"$INPUT\",\"endpoint\":\"/v1/fine_tuning/jobs\",\"completion_window\":\"24h\"}" /v1/batches
	expect_openai_error 400 invalid_request_error invalid_value
	[[ $(json b.error.param) == endpoint ]]
	upload "$k" user_data
	eventually 5 get_is "$k" "/v1/files/$(json b.id)" 200
	req -X POST -H "authorization: Bearer $k" -H 'content-type: application/json' \
		--data-binary "{\"input_file_id\":\"$(json b.id)\",\"endpoint\":\"/v1/chat/completions\",\"completion_window\":\"24h\"}" /v1/batches
	expect_openai_error 400 invalid_request_error invalid_value
	# Lists: A sees its batch (its latest state), B never does.
	get "$k" /v1/batches
	expect_status 200
	[[ $(json b.data.length) == 1 ]]
	[[ $(json b.data[0].id) == "$BATCH" ]]
	[[ $(json b.data[0].object) == batch ]]
	get "$o" /v1/batches
	expect_status 200
	[[ $(json b.data.length) == 0 ]]
	# The owner retrieves and cancels.
	get "$k" "/v1/batches/$BATCH"
	expect_status 200
	[[ $(json b.status) == in_progress ]]
	req -X POST -H "authorization: Bearer $k" "/v1/batches/$BATCH/cancel"
	expect_status 200
	[[ $(json b.status) == cancelling ]]
	eventually 5 bash -c "[[ \$(psql -X -t -A -d '$JR_DATABASE' -c \"SELECT object::json->>'status' FROM jairouter.api_objects WHERE object_id = '$BATCH'\") == cancelling ]]"
	get "$k" /v1/batches
	[[ $(json b.data[0].status) == cancelling ]]
	get "$k" "/v1/batches/$BATCH"
	[[ $(json b.status) == cancelled ]]
	# A cancelled batch bills nothing.
	sleep 1.5
	[[ $(billed_rows "$BATCH") == 0 ]]
}

@test "a completed batch is billed once, from its usage, at the batch price, across repeated retrieves and an agent restart" {
	local k want tokens
	jr_ctl model price files-other 2 8 >/dev/null
	files_tenant bat-bill
	k=$K
	new_batch "$k" files-other files-other files-other
	# validating -> in_progress -> finalizing -> completed: one step per retrieve.
	get "$k" "/v1/batches/$BATCH"
	get "$k" "/v1/batches/$BATCH"
	[[ $(json b.status) == finalizing ]]
	[[ $(json b.usage) == undefined ]]
	get "$k" "/v1/batches/$BATCH"
	expect_status 200
	[[ $(json b.status) == completed ]]
	[[ $(json b.request_counts.completed) == 3 ]]
	tokens="$(json b.usage.input_tokens) $(json b.usage.output_tokens)"
	[[ $(json b.usage.output_tokens) == 18 ]]
	for _ in 1 2 3; do
		get "$k" "/v1/batches/$BATCH"
		expect_status 200
	done
	get "$k" /v1/batches
	[[ $(json b.data[0].status) == completed ]]
	# The output file is the tenant's (recorded from the batch), no one else's.
	local out
	get "$k" "/v1/batches/$BATCH"
	out=$(json b.output_file_id)
	eventually 5 get_is "$k" "/v1/files/$out/content" 200
	[[ $(wc -l <"$BATS_TEST_TMPDIR/body") == 3 ]]
	get "$OTHER" "/v1/files/$out/content"
	expect_openai_error 404 invalid_request_error not_found
	get "$k" '/v1/files?purpose=batch_output'
	[[ $(json b.data[0].id) == "$out" ]]
	eventually 5 billed_once "$BATCH"
	[[ $(db_sql "SELECT input_tokens || ' ' || output_tokens || ' ' || requests || ' ' || estimated FROM jairouter.batch_usage WHERE batch_id = '$BATCH'") == "$tokens 3 false" ]]
	# Cost: (input x 2 + output x 8) / 1e6 at the batch factor (0.5 by default).
	want=$(node -e "const [i, o] = process.argv[1].split(' ').map(Number); console.log(((i * 2 + o * 8) / 1e6 * 0.5).toFixed(6))" "$tokens")
	[[ $(db_sql "SELECT cost FROM jairouter.batch_usage WHERE batch_id = '$BATCH'") == "$want" ]]
	# Another agent process (the restarted one) sees it completed again: nothing more.
	jr_agent_stop "$STACK"
	jr_agent_start "$STACK"
	eventually 10 get_is "$k" "/v1/batches/$BATCH" 200
	get "$k" "/v1/batches/$BATCH"
	eventually 5 bash -c "curl -fsS '$JR_AGENT_METRICS/metrics' | grep -Eq '^jairouter_batches_bills_sent_total [1-9]'"
	[[ $(billed_rows "$BATCH") == 1 ]]
	# usage_daily: the batch's 3 requests and tokens once, besides the plain requests
	# (the retrieves, which carry no tokens) billed to files-other.
	[[ $(db_sql "SELECT prompt_tokens || ' ' || completion_tokens FROM jairouter.usage_by_tenant_model_day WHERE tenant = 'bat-bill' AND model = 'files-other'") == "$tokens" ]]
	[[ $(db_sql "SELECT cost FROM jairouter.usage_by_tenant_model_day WHERE tenant = 'bat-bill' AND model = 'files-other'") == "$want" ]]
}

@test "a batch answer longer than the report line carries is still listed and billed once from its fields" {
	local k meta tokens
	files_tenant bat-big
	k=$K
	batch_file "$BATS_TEST_TMPDIR/in.jsonl" files-model files-model
	upload "$k" batch "$BATS_TEST_TMPDIR/in.jsonl"
	INPUT=$(json b.id)
	eventually 5 get_is "$k" "/v1/files/$INPUT" 200
	# 16 metadata values of 200 characters: a batch object of about 4.3 KB.
	meta=$(node -e 'const m = {}; for (let i = 0; i < 16; i++) m["k" + i] = "v".repeat(200); console.log(JSON.stringify(m))')
	req -X POST -H "authorization: Bearer $k" -H 'content-type: application/json' \
		--data-binary "{\"input_file_id\":\"$INPUT\",\"endpoint\":\"/v1/chat/completions\",\"completion_window\":\"24h\",\"metadata\":$meta}" /v1/batches
	expect_status 200
	BATCH=$(json b.id)
	(($(wc -c <"$BATS_TEST_TMPDIR/body") > 2048))
	eventually 5 get_is "$k" "/v1/batches/$BATCH" 200
	get "$k" "/v1/batches/$BATCH"
	get "$k" "/v1/batches/$BATCH"
	[[ $(json b.status) == completed ]]
	tokens="$(json b.usage.input_tokens) $(json b.usage.output_tokens)"
	eventually 5 billed_once "$BATCH"
	[[ $(db_sql "SELECT input_tokens || ' ' || output_tokens || ' ' || requests || ' ' || estimated FROM jairouter.batch_usage WHERE batch_id = '$BATCH'") == "$tokens 2 false" ]]
	# Listed from those fields; the output file is the tenant's.
	get "$k" /v1/batches
	[[ $(json b.data[0].id) == "$BATCH" ]]
	[[ $(json b.data[0].status) == completed ]]
	[[ $(json b.data[0].input_file_id) == "$INPUT" ]]
	get "$k" "/v1/batches/$BATCH"
	eventually 5 get_is "$k" "/v1/files/$(json b.output_file_id)/content" 200
}

@test "a completed batch without usage is billed at the estimate, marked estimated" {
	local k
	files_tenant bat-est
	k=$K
	batch_file "$BATS_TEST_TMPDIR/in.jsonl" files-model files-model
	# The mock leaves usage out when a line says mock_no_usage.
	sed -i 's/"Hi 1"/"Hi 1 mock_no_usage"/' "$BATS_TEST_TMPDIR/in.jsonl"
	upload "$k" batch "$BATS_TEST_TMPDIR/in.jsonl"
	expect_status 200
	INPUT=$(json b.id)
	local bytes
	bytes=$(json b.bytes)
	eventually 5 get_is "$k" "/v1/files/$INPUT" 200
	req -X POST -H "authorization: Bearer $k" -H 'content-type: application/json' \
		--data-binary "{\"input_file_id\":\"$INPUT\",\"endpoint\":\"/v1/chat/completions\",\"completion_window\":\"24h\"}" /v1/batches
	BATCH=$(json b.id)
	eventually 5 get_is "$k" "/v1/batches/$BATCH" 200
	get "$k" "/v1/batches/$BATCH"
	get "$k" "/v1/batches/$BATCH"
	[[ $(json b.status) == completed ]]
	[[ $(json b.usage) == undefined ]]
	eventually 5 billed_once "$BATCH"
	# input: the file's bytes / 4 (limits_bytes_per_token); output: 256 per request
	# (limits_default_max_tokens).
	[[ $(db_sql "SELECT input_tokens || ' ' || output_tokens || ' ' || requests || ' ' || estimated FROM jairouter.batch_usage WHERE batch_id = '$BATCH'") == "$(((bytes + 3) / 4)) 512 2 true" ]]
}

@test "jairouterctl batches sync retrieves the open batches nobody retrieves, so they are billed once" {
	local k first second
	files_tenant bat-sync
	k=$K
	new_batch "$k" files-model
	first=$BATCH
	new_batch "$k" files-model files-model
	second=$BATCH
	run jr_ctl batches list --tenant bat-sync
	[[ $status == 0 && $output == *"$first"*validating* ]]
	# Each sync moves every open batch one step; the third completes them.
	for _ in 1 2 3; do
		run jr_ctl batches sync --url "$JR_URL"
		[[ $status == 0 && $output == *"2 of 2 open batches retrieved"* ]]
	done
	eventually 5 bash -c "[[ \$(psql -X -t -A -d '$JR_DATABASE' -c \"SELECT count(*) FROM jairouter.batch_usage WHERE batch_id IN ('$first', '$second')\") == 2 ]]"
	# Nothing is open any more; the temporary keys are revoked.
	run jr_ctl batches sync --url "$JR_URL"
	[[ $status == 0 && $output == *"0 of 0 open batches retrieved"* ]]
	[[ $(db_sql "SELECT count(*) FROM jairouter.api_keys k JOIN jairouter.tenants t ON t.id = k.tenant_id
	    WHERE t.name = 'bat-sync' AND k.name = 'batches-sync' AND k.revoked_at IS NULL") == 0 ]]
	[[ $(db_sql "SELECT sum(requests) FROM jairouter.batch_usage WHERE batch_id IN ('$first', '$second')") == 3 ]]
	# Billed to the key that created the batches, not to the sync's key.
	[[ $(db_sql "SELECT count(*) FROM jairouter.batch_usage b JOIN jairouter.api_keys k ON k.id = b.key_id
	    WHERE b.batch_id IN ('$first', '$second') AND k.prefix = '${k:0:11}'") == 2 ]]
}

# metric NAME: its value on the agent's metrics page.
metric() {
	curl -fsS "$JR_AGENT_METRICS/metrics" | awk -v n="$1" '$1 == n { print $2 }'
}

# probe KEY: a small chat request (an estimate of about 16 tokens) on the files model.
probe() {
	BODY=$(chat_body files-model ',"max_tokens":1') auth_chat "$1"
}

probe_is() {
	probe "$1"
	[[ $STATUS == "$2" ]]
}

@test "a completed batch's tokens count once against its key's token quota: the next request gets insufficient_quota" {
	local k k2 tokens charged sent
	k=$(new_tenant bat-quota)
	k2=$(issue_key bat-quota)
	jr_ctl tenant settings bat-quota '{"files_model":"files-model"}' >/dev/null
	eventually 10 uploaded "$k" user_data
	# A first batch, completed before any quota: its tokens (the mock's usage is
	# deterministic, so a second batch of the same file uses as many).
	new_batch "$k" files-model files-model files-model
	get "$k" "/v1/batches/$BATCH"
	get "$k" "/v1/batches/$BATCH"
	get "$k" "/v1/batches/$BATCH"
	[[ $(json b.status) == completed ]]
	tokens=$(($(json b.usage.input_tokens) + $(json b.usage.output_tokens)))
	((tokens > 40))
	eventually 5 bash -c "[[ \$(psql -X -t -A -d '$JR_DATABASE' -c \"SELECT count(*) FROM jairouter.batch_usage WHERE batch_id = '$BATCH'\") == 1 ]]"
	# The second batch, up to finalizing; then a daily token quota on the key that
	# creates it, one token short of its usage.
	new_batch "$k" files-model files-model files-model
	get "$k" "/v1/batches/$BATCH"
	get "$k" "/v1/batches/$BATCH"
	[[ $(json b.status) == finalizing ]]
	db_sql "SELECT jairouter.set_limit('key', 'quota', 'day', $((tokens - 1)), NULL, 'bat-quota', '${k:0:11}')" >/dev/null
	eventually 5 probe_is "$k" 200
	charged=$(metric jairouter_limit_batches_charged_total)
	sent=$(metric jairouter_batches_bills_sent_total)
	# Completed: billed, and charged to the quota by the agent that billed it.
	get "$k" "/v1/batches/$BATCH"
	[[ $(json b.status) == completed ]]
	((tokens == $(json b.usage.input_tokens) + $(json b.usage.output_tokens)))
	eventually 5 bash -c "[[ \$(curl -fsS '$JR_AGENT_METRICS/metrics' | awk '\$1 == \"jairouter_limit_batches_charged_total\" { print \$2 }') == $((charged + 1)) ]]"
	probe "$k"
	expect_openai_error 429 insufficient_quota insufficient_quota
	# Seen completed again, by the overdrawn key itself (a retrieve reserves nothing: the
	# quota still admits it) and by the tenant's other key: billed nothing, charged
	# nothing more.
	get_is "$k" "/v1/batches/$BATCH" 200
	[[ $(json b.status) == completed ]]
	get_is "$k2" "/v1/batches/$BATCH" 200
	eventually 5 bash -c "(( \$(curl -fsS '$JR_AGENT_METRICS/metrics' | awk '\$1 == \"jairouter_batches_bills_sent_total\" { print \$2 }') >= $((sent + 3)) ))"
	[[ $(metric jairouter_limit_batches_charged_total) == $((charged + 1)) ]]
	[[ $(billed_rows "$BATCH") == 1 ]]
	probe "$k"
	expect_openai_error 429 insufficient_quota insufficient_quota
	probe_is "$k2" 200
}
