#!/usr/bin/env bats
# The Files API end to end (docs/api.md, "Files and batches"): HAProxy + agent +
# PostgreSQL + the mock model server's /v1/files (tests/mock/mock-files.js). An upload
# goes to the backend of the tenant's files model; only the tenant that uploaded a file
# retrieves, downloads or deletes it; lists are answered by the agent from the tenant's
# own records; a batch input file is checked line by line; oversize uploads are refused.

bats_require_minimum_version 1.5.0

setup_file() {
	load helpers
	export STACK=$BATS_FILE_TMPDIR/stack
	jr_stack_start "$STACK"
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

teardown_file() {
	stack_teardown_file
}

setup() {
	load helpers
}

teardown() {
	stack_teardown
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
	for path in "/v1/files/$id" "/v1/files/$id/content" "/api/v1/files/$id"; do
		get "$OTHER" "$path"
		expect_openai_error 404 invalid_request_error not_found
		[[ $(json b.error.message) == "No such File object: '$id'." ]]
	done
	req -X DELETE -H "authorization: Bearer $OTHER" "/v1/files/$id"
	expect_openai_error 404 invalid_request_error not_found
	req -X DELETE -H "authorization: Bearer $KEY" "/v1/files/$id"
	expect_status 200
	[[ $(json b.deleted) == true ]]
	get "$KEY" "/v1/files/$id"
	expect_status 404
}

@test "a tenant lists only its own files, newest first, with OpenAI's cursor fields" {
	local k other mine=() id
	k=$(new_tenant lister)
	jr_ctl tenant settings lister '{"files_model":"files-model"}' >/dev/null
	eventually 10 uploaded "$k" user_data
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
