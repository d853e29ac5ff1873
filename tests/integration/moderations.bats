#!/usr/bin/env bats
# POST /v1/moderations end to end (docs/catalogue.md): the service type `moderations`
# routes by model like embeddings, obeys the catalogue's and the tenant's service lists,
# and is billed at the prompt estimate (OpenAI's answer carries no usage).

bats_require_minimum_version 1.5.0

load helpers
stack_hooks

setup_file() {
	stack_start
	jr_ctl model add mod-model be_mock --services moderations >/dev/null
	jr_ctl model add chat-only be_mock >/dev/null
	jr_ctl tenant add acme >/dev/null
	KEY=$(issue_key acme)
	export KEY
	BATS_TEST_TMPDIR=$BATS_FILE_TMPDIR eventually 10 moderated "$KEY" mod-model
}

mod_body() {
	printf '{"model":"%s","input":["a harmless sentence","mock-flag this one"]}' "$1"
}

# moderate KEY MODEL
moderate() {
	req -X POST -H "authorization: Bearer $1" -H 'content-type: application/json' \
		--data-binary "$(mod_body "$2")" /v1/moderations
}

moderated() {
	moderate "$@"
	[[ $STATUS == 200 ]]
}

@test "a moderation reaches the model's backend and is billed at the prompt estimate" {
	local k bytes
	jr_ctl tenant add modbill >/dev/null
	k=$(issue_key modbill)
	eventually 10 moderated "$k" mod-model
	[[ $(json 'b.results.length') == 2 ]]
	[[ $(json 'b.results[1].flagged') == true ]]
	[[ $(hdr x-mock-model) == mod-model ]]
	bytes=$(mod_body mod-model | wc -c)
	eventually 5 bash -c "[[ \$(psql -X -t -A -d '$JR_DATABASE' -c \"SELECT requests FROM jairouter.usage_by_tenant_model_day WHERE tenant = 'modbill'\") == 1 ]]"
	[[ $(db_sql "SELECT prompt_tokens || ' ' || completion_tokens || ' ' || estimated_requests FROM jairouter.usage_by_tenant_model_day WHERE tenant = 'modbill'") == "$(((bytes + 3) / 4)) 0 1" ]]
}

@test "a model without the moderations service, and a tenant without it, are refused" {
	local k
	moderate "$KEY" chat-only
	expect_openai_error 400 invalid_request_error model_not_supported
	jr_ctl tenant add modnone >/dev/null
	jr_ctl tenant services modnone chat >/dev/null
	k=$(issue_key modnone)
	eventually 10 bash -c "curl -s -o /dev/null -w '%{http_code}' -X POST -H 'authorization: Bearer $k' -H 'content-type: application/json' --data-binary '$(mod_body mod-model)' '$JR_URL/v1/moderations' | grep -qx 403"
	moderate "$k" mod-model
	expect_openai_error 403 permission_error service_not_allowed
}

@test "a moderation without a model is refused: the gateway routes by model" {
	req -X POST -H "authorization: Bearer $KEY" -H 'content-type: application/json' \
		--data-binary '{"input":"text"}' /v1/moderations
	expect_openai_error 400 invalid_request_error missing_model
}
