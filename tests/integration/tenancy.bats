#!/usr/bin/env bats
# Tenant policy end to end (docs/tenancy.md): private models and grants, client IP
# allow-lists (tenant, key, X-Forwarded-For from a trusted proxy), service types, key
# model lists, key rotation, and provider credentials injected by HAProxy. The stack
# starts once for the file; HAProxy trusts X-Forwarded-For from 127.0.0.1 only.

load helpers
stack_hooks

setup_file() {
	export STACK=$BATS_FILE_TMPDIR/stack
	mkdir -p "$STACK"
	export JR_TRUSTED_PROXIES=$BATS_FILE_TMPDIR/trusted-proxies.lst
	printf '# the test client\n127.0.0.1\n' >"$JR_TRUSTED_PROXIES"
	jr_stack_start "$STACK"
	jr_ctl tenant add acme >/dev/null
	jr_ctl tenant add globex >/dev/null
	jr_ctl model add test-model be_mock >/dev/null
	jr_ctl model add public-model be_mock >/dev/null
	jr_ctl model add acme-secret be_mock >/dev/null
	jr_ctl model visibility acme-secret private >/dev/null
	jr_ctl grant allow acme acme-secret >/dev/null
	jr_ctl model add vault-model be_mock2 >/dev/null
	jr_ctl model add keyed-model be_mock2 >/dev/null
	KEY_A=$(issue_key acme)
	KEY_G=$(issue_key globex)
	export KEY_A KEY_G
	stack_master_keys
	BATS_TEST_TMPDIR=$BATS_FILE_TMPDIR eventually 10 status_is "$KEY_A" 200
	BATS_TEST_TMPDIR=$BATS_FILE_TMPDIR eventually 10 status_is "$KEY_G" 200
}

# model_status KEY MODEL STATUS [CURL_ARGS...]: a chat request for MODEL answers STATUS.
model_status() {
	local key=$1 model=$2 want=$3
	shift 3
	BODY=$(chat_body "$model") auth_chat "$key" "$@"
	expect_status "$want"
}

# listed KEY: the ids GET /v1/models returns for KEY, comma-separated.
listed() {
	req -H "authorization: Bearer $1" /v1/models
	expect_status 200 && json 'b.data.map(m => m.id).sort().join(",")'
}

jr_psql() {
	"${JR_PG_BIN:-/usr/lib/postgresql/15/bin}/psql" -X -v ON_ERROR_STOP=1 -d "$JR_DATABASE" "$@"
}

# injected HEADER MODEL SHA: a request for MODEL reaches the model server carrying
# HEADER, whose SHA-256 is SHA.
injected() {
	BODY=$(chat_body "$2") auth_chat "$KEY_A"
	expect_status 200 && [[ $(hdr "x-mock-$1-sha256") == "$3" ]]
}

sha() {
	printf '%s' "$1" | sha256sum | cut -d' ' -f1
}

@test "a private model works for the tenant granted it and is unknown (404) to another tenant" {
	model_status "$KEY_A" acme-secret 200
	model_status "$KEY_G" acme-secret 404
	expect_openai_error 404 invalid_request_error model_not_found
	private_msg=$(json 'b.error.message')
	[[ $(json 'b.error.param') == model ]]
	model_status "$KEY_G" no-such-model 404
	expect_openai_error 404 invalid_request_error model_not_found
	# Word for word the answer for a model that does not exist.
	[[ ${private_msg/acme-secret/no-such-model} == "$(json 'b.error.message')" ]]
}

@test "GET /v1/models lists a private model only to the tenant granted it" {
	[[ $(listed "$KEY_A") == acme-secret,keyed-model,public-model,test-model,vault-model ]]
	[[ $(listed "$KEY_G") == keyed-model,public-model,test-model,vault-model ]]
	req -H "authorization: Bearer $KEY_G" /v1/models/acme-secret
	expect_openai_error 404 invalid_request_error model_not_found
	req -H "authorization: Bearer $KEY_A" /v1/models/acme-secret
	expect_status 200
}

@test "a deny grant hides a public model, and a group grant admits a private one" {
	jr_ctl grant deny globex public-model >/dev/null
	eventually 5 model_status "$KEY_G" public-model 404
	[[ $(listed "$KEY_G") == keyed-model,test-model,vault-model ]]
	jr_ctl grant remove globex public-model >/dev/null
	jr_ctl group add secrets >/dev/null
	jr_ctl group add-model secrets acme-secret >/dev/null
	jr_ctl grant allow globex @secrets >/dev/null
	eventually 5 model_status "$KEY_G" acme-secret 200
	eventually 5 model_status "$KEY_G" public-model 200
	jr_ctl grant remove globex @secrets >/dev/null
	eventually 5 model_status "$KEY_G" acme-secret 404
}

@test "a tenant IP allow-list without 127.0.0.1 refuses with 403 permission_error; one with it admits" {
	jr_ctl tenant ip-allow globex 10.0.0.0/8,2001:db8::/32 >/dev/null
	eventually 5 model_status "$KEY_G" public-model 403
	expect_openai_error 403 permission_error ip_not_allowed
	[[ $(json 'b.error.message') == *127.0.0.1* ]]
	jr_ctl tenant ip-allow globex 127.0.0.0/8 >/dev/null
	eventually 5 model_status "$KEY_G" public-model 200
	jr_ctl tenant ip-allow globex any >/dev/null
}

@test "X-Forwarded-For counts only from a trusted proxy" {
	jr_ctl tenant ip-allow globex 10.9.0.0/16 >/dev/null
	eventually 5 model_status "$KEY_G" public-model 403
	# From 127.0.0.1 (trusted): the client is the last X-Forwarded-For entry.
	model_status "$KEY_G" public-model 200 -H 'x-forwarded-for: 192.0.2.1, 10.9.9.9'
	# From 127.0.0.2 (not trusted): the header is ignored.
	model_status "$KEY_G" public-model 403 --interface 127.0.0.2 -H 'x-forwarded-for: 10.9.9.9'
	expect_openai_error 403 permission_error ip_not_allowed
	[[ $(json 'b.error.message') == *127.0.0.2* ]]
	jr_ctl tenant ip-allow globex any >/dev/null
	eventually 5 model_status "$KEY_G" public-model 200
}

@test "a key's own IP allow-list and model list" {
	local net_key model_key
	net_key=$(jr_ctl key issue acme --name net --ip-allow 192.0.2.0/24 | grep -Eo 'jr-[0-9a-f]{64}')
	model_key=$(jr_ctl key issue acme --name narrow --models public-model | grep -Eo 'jr-[0-9a-f]{64}')
	eventually 5 model_status "$model_key" public-model 200
	model_status "$net_key" public-model 403
	expect_openai_error 403 permission_error ip_not_allowed
	[[ $(json 'b.error.message') == *"API key"* ]]
	model_status "$model_key" acme-secret 403
	expect_openai_error 403 permission_error model_not_allowed
	[[ $(listed "$model_key") == public-model ]]
}

@test "a tenant limited to some service types gets 403 for the others" {
	jr_ctl tenant services globex embeddings >/dev/null
	eventually 5 model_status "$KEY_G" public-model 403
	expect_openai_error 403 permission_error service_not_allowed
	req -H "authorization: Bearer $KEY_G" /v1/models
	expect_openai_error 403 permission_error service_not_allowed
	jr_ctl tenant services globex all >/dev/null
	eventually 5 model_status "$KEY_G" public-model 200
}

@test "key rotation: the old key works through the overlap, the new one at once, restrictions follow" {
	local old new
	old=$(jr_ctl key issue acme --name rotating --models public-model | grep -Eo 'jr-[0-9a-f]{64}')
	eventually 5 model_status "$old" public-model 200
	new=$(jr_ctl key rotate "${old:0:11}" --overlap 1h 2>"$BATS_TEST_TMPDIR/rotate.err" | grep -Eo 'jr-[0-9a-f]{64}')
	[[ -n $new && $new != "$old" ]]
	grep -q "replaces ${old:0:11}" "$BATS_TEST_TMPDIR/rotate.err"
	eventually 5 model_status "$new" public-model 200
	model_status "$old" public-model 200
	model_status "$new" acme-secret 403
	expect_openai_error 403 permission_error model_not_allowed
	# The end of the overlap: the old key is refused as expired, the new one goes on.
	jr_ctl key expire "${old:0:11}" now >/dev/null
	eventually 5 model_status "$old" public-model 401
	expect_openai_error 401 authentication_error expired_api_key
	model_status "$new" public-model 200
}

@test "a provider credential reaches the model server; the client's key never does" {
	printf 'sk-provider-test\n' | jr_ctl credential set be_mock2 --header authorization --scheme bearer >/dev/null
	eventually 5 injected authorization vault-model "$(sha 'Bearer sk-provider-test')"
	model_status "$KEY_A" vault-model 200
	[[ $(hdr x-mock-server) == mock2 ]]
	[[ $(hdr x-mock-authorization-sha256) == "$(sha 'Bearer sk-provider-test')" ]]
	[[ $(hdr x-mock-saw-x-api-key) == absent ]]
	# Sent as x-api-key, the client's key is dropped as well.
	BODY=$(chat_body vault-model) chat -H "x-api-key: $KEY_A"
	expect_status 200
	[[ $(hdr x-mock-authorization-sha256) == "$(sha 'Bearer sk-provider-test')" ]]
	[[ $(hdr x-mock-saw-x-api-key) == absent ]]
	# A backend without a credential gets no credential at all.
	model_status "$KEY_A" public-model 200
	[[ $(hdr x-mock-saw-authorization) == absent ]]
	# The secret is in no log and not in the database.
	if grep -rq 'sk-provider-test' "$STACK"/*.log; then return 1; fi
	[[ -z $(jr_psql -At -c "SELECT 1 FROM jairouter.provider_credentials WHERE ciphertext LIKE '%sk-provider%'") ]]
	[[ -z $(jr_psql -At -c "SELECT 1 FROM jairouter.audit_log WHERE new_row ? 'ciphertext'") ]]
}

@test "a model's own credential wins over its backend's, in the header it names" {
	printf 'sk-ant-test' | jr_ctl credential set --model keyed-model --header x-api-key --scheme raw >/dev/null
	eventually 5 injected x-api-key keyed-model "$(sha sk-ant-test)"
	model_status "$KEY_A" keyed-model 200
	[[ $(hdr x-mock-saw-authorization) == absent ]]
	jr_ctl credential list | grep -q 'keyed-model'
	if jr_ctl credential list | grep -q 'sk-ant'; then return 1; fi
}

@test "master key rotation: add a key, reseal, drop the old key; injection never stops" {
	printf 'k2:%s\n' "$(openssl rand -hex 32)" >>"$JAIROUTER_MASTER_KEY_FILE"
	agent_reload_keys
	grep -q 'master keys: 2 loaded' "$STACK/agent.log"
	jr_ctl credential reseal | grep -q '2 credential(s) resealed'
	[[ $(jr_psql -At -c "SELECT string_agg(DISTINCT key_id, ',') FROM jairouter.provider_credentials") == k2 ]]
	sed -i '/^k1:/d' "$JAIROUTER_MASTER_KEY_FILE"
	agent_reload_keys
	model_status "$KEY_A" vault-model 200
	[[ $(hdr x-mock-authorization-sha256) == "$(sha 'Bearer sk-provider-test')" ]]
	model_status "$KEY_A" keyed-model 200
	[[ $(hdr x-mock-x-api-key-sha256) == "$(sha sk-ant-test)" ]]
}

@test "a credential sealed for another record is refused (503), never sent empty" {
	# Copy vault-model's backend credential onto a new backend row: the AAD differs.
	jr_psql -q -c "INSERT INTO jairouter.provider_credentials (scope, backend, header, scheme, key_id, ciphertext)
		SELECT 'backend', 'be_mock', header, scheme, key_id, ciphertext
		FROM jairouter.provider_credentials WHERE backend = 'be_mock2'"
	eventually 5 model_status "$KEY_A" public-model 503
	expect_openai_error 503 server_error upstream_credential_unavailable
	grep -q 'provider credential [0-9]* cannot be used' "$STACK/agent.log"
	jr_ctl credential delete be_mock >/dev/null
	eventually 5 model_status "$KEY_A" public-model 200
}

@test "every change above is in the audit log with who made it" {
	run jr_ctl audit --limit 500
	[[ $status == 0 ]]
	for t in tenants api_keys models tenant_grants model_groups model_group_members provider_credentials; do
		grep -q " $t " <<<"$output"
	done
	JAIROUTER_ACTOR=alice jr_ctl tenant labels globex '{"team":"search"}' >/dev/null
	[[ $(jr_psql -At -c "SELECT actor || ' ' || app FROM jairouter.audit_log ORDER BY id DESC LIMIT 1") == 'alice jairouterctl' ]]
}
