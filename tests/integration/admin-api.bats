#!/usr/bin/env bats
# The administration API end to end (docs/admin-api.md): through HAProxy's listener under
# /jairouter/admin/v1/, callers checked by the model API's identity stages, authorised by
# their roles (admin, usage:read, audit:read) and by tenant (a platform tenant's
# administrators see every tenant, a tenant's administrators only their own), every
# change in the change log with its actor. The address lock-out test runs last: it
# locks 127.0.0.1 out.

bats_require_minimum_version 1.5.0

load helpers
stack_hooks

setup_file() {
	export STACK=$BATS_FILE_TMPDIR/stack
	mkdir -p "$STACK"
	export JR_ABUSE_MAX_FAILURES=8
	# The platform key makes a few hundred calls in this file: 6,000 a minute (a bucket of
	# 1,000) until the rate test lowers it.
	# Master keys, so that the API can seal provider credentials.
	(umask 077 && printf 'k1:%s\n' "$(openssl rand -hex 32)" >"$BATS_FILE_TMPDIR/master.keys")
	export JR_AGENT_EXTRA_CONF=$'abuse_slow_after = 0\nabuse_block_s = 30\nadmin_api_rate = 6000\n'"master_key_file = \"$BATS_FILE_TMPDIR/master.keys\""
	jr_stack_start "$STACK"
	jr_ctl tenant add ops >/dev/null
	jr_ctl tenant add acme >/dev/null
	jr_ctl tenant add globex >/dev/null
	jr_ctl model add test-model be_mock >/dev/null
	jr_ctl model price test-model 2.5 10 >/dev/null
	jr_ctl platform on ops >/dev/null
	jr_ctl role add platform-admin --allow admin >/dev/null
	jr_ctl role add acme-admin --tenant acme --allow admin >/dev/null
	jr_ctl role add usage-reader --allow usage:read >/dev/null
	jr_ctl role add auditor --allow audit:read >/dev/null
	PLAT=$(issue_key ops)
	ACME=$(issue_key acme)
	READER=$(issue_key acme)
	AUDITOR=$(issue_key acme)
	PLAIN=$(issue_key acme)
	GLOBEX=$(issue_key globex)
	jr_ctl role assign "${PLAT:0:11}" platform-admin >/dev/null
	jr_ctl role assign "${ACME:0:11}" acme-admin >/dev/null
	jr_ctl role assign "${READER:0:11}" usage-reader >/dev/null
	jr_ctl role assign "${AUDITOR:0:11}" auditor >/dev/null
	export PLAT ACME READER AUDITOR PLAIN GLOBEX
	BATS_TEST_TMPDIR=$BATS_FILE_TMPDIR eventually 10 admin_status "$PLAT" GET /me 200
	BATS_TEST_TMPDIR=$BATS_FILE_TMPDIR eventually 10 admin_status "$ACME" GET /tenants 200
}

# adm KEY METHOD PATH [CURL_ARGS...]: a request to /jairouter/admin/v1PATH ("" KEY: none).
adm() {
	local key=$1 method=$2 path=$3 auth=()
	shift 3
	[[ -n $key ]] && auth=(-H "authorization: Bearer $key")
	req -X "$method" "${auth[@]}" "$@" "/jairouter/admin/v1$path"
}

admin_status() {
	adm "$1" "$2" "$3"
	[[ $STATUS == "$4" ]]
}

# expect_json EXPR: the JavaScript expression over the body (as b) is true.
expect_json() {
	local v
	v=$(json "$1") || true
	if [[ $v != true ]]; then
		echo "not true: $1 (got $v)"
		show_response
		return 1
	fi
}

@test "no credential: 401 in the OpenAI error format" {
	adm "" GET /me
	expect_openai_error 401 authentication_error missing_api_key
}

@test "me: the caller, its tenant, roles and permissions" {
	adm "$PLAT" GET /me
	expect_status 200
	expect_json "b.actor === 'key:${PLAT:0:11}' && b.tenant === 'ops' && b.platform === true"
	expect_json "JSON.stringify(b.roles) === '[\"platform-admin\"]' && JSON.stringify(b.permissions) === '[\"admin\"]'"
	adm "$PLAIN" GET /me
	expect_status 200
	expect_json "b.tenant === 'acme' && b.permissions.length === 0 && b.roles.length === 0"
}

@test "a key without the admin permission is refused (403 permission_error)" {
	adm "$PLAIN" GET /tenants
	expect_openai_error 403 permission_error permission_denied
	adm "$READER" GET /tenants/acme/keys
	expect_openai_error 403 permission_error permission_denied
	# A security event, as an RBAC refusal of a model request is; and a metric.
	eventually 10 security_audit_has "admin:tenants.list" "${PLAIN:0:11}"
	curl -fsS "$JR_AGENT_METRICS/metrics" >"$BATS_TEST_TMPDIR/metrics"
	grep -qE '^jairouter_admin_api_responses_total\{status="403"\} [1-9]' "$BATS_TEST_TMPDIR/metrics"
	grep -qE '^jairouter_admin_api_responses_total\{status="200"\} [1-9]' "$BATS_TEST_TMPDIR/metrics"
	grep -qx 'jairouter_admin_api_database_up 1' "$BATS_TEST_TMPDIR/metrics"
}

# security_audit_has REASON KEY_PREFIX: a permission_denied row for that key.
security_audit_has() {
	[[ $(psql -X -q -At -d "$JR_DATABASE" -c "SELECT count(*) FROM jairouter.security_audit
		WHERE event = 'permission_denied' AND reason = '$1' AND key_prefix = '$2' AND status = 403") -ge 1 ]]
}

@test "tenants: a platform administrator sees all, a tenant administrator its own" {
	adm "$PLAT" GET /tenants
	expect_status 200
	expect_json "b.data.map(t => t.name).join() === 'ops,acme,globex' && b.next_cursor === null"
	adm "$ACME" GET /tenants
	expect_status 200
	expect_json "b.data.length === 1 && b.data[0].name === 'acme' && typeof b.data[0].id === 'number'"
}

@test "pagination: limit, an opaque cursor, bounds" {
	adm "$PLAT" GET '/tenants?limit=2'
	expect_status 200
	expect_json "b.data.length === 2 && typeof b.next_cursor === 'string'"
	cursor=$(json b.next_cursor)
	adm "$PLAT" GET "/tenants?limit=2&cursor=$cursor"
	expect_status 200
	expect_json "b.data.length === 1 && b.data[0].name === 'globex' && b.next_cursor === null"
	adm "$PLAT" GET '/tenants?limit=501'
	expect_openai_error 400 invalid_request_error invalid_limit
	adm "$PLAT" GET '/tenants?cursor=bm9wZQ'
	expect_openai_error 400 invalid_request_error invalid_cursor
	adm "$PLAT" GET '/tenants?page=2'
	expect_openai_error 400 invalid_request_error unknown_parameter
}

@test "issue a key: 201, the secret once, and it works on the model API" {
	adm "$ACME" POST /tenants/acme/keys -H 'content-type: application/json' \
		--data-binary '{"name":"ci-bot","expires_at":null}'
	expect_status 201
	expect_json "/^jr-[0-9a-f]{64}$/.test(b.key) && b.prefix === b.key.slice(0, 11) && b.name === 'ci-bot'"
	expect_json "b.tenant === 'acme' && b.revoked_at === null && b.expires_at === null && 'last_used_at' in b"
	key=$(json b.key)
	eventually 10 status_is "$key" 200
	adm "$ACME" GET /tenants/acme/keys
	expect_status 200
	expect_json "b.data.some(k => k.name === 'ci-bot') && b.data.every(k => !('key' in k))"
	expect_json "b.data.every(k => ['id','prefix','name','created_at','expires_at','revoked_at','last_used_at'].every(f => f in k))"
	run ! grep -F "$key" "$STACK/agent.log" "$STACK/haproxy.log"
}

@test "issue a key with an Idempotency-Key: the repeat returns the same key, without its secret" {
	adm "$ACME" POST /tenants/acme/keys -H 'Idempotency-Key: deploy-42' --data-binary '{"name":"deploy"}'
	expect_status 201
	id=$(json b.id)
	adm "$ACME" POST /tenants/acme/keys -H 'Idempotency-Key: deploy-42' --data-binary '{"name":"deploy"}'
	expect_status 200
	expect_json "b.id === $id && b.key === null && b.replayed === true"
	adm "$ACME" POST /tenants/acme/keys -H 'Idempotency-Key: deploy-42' --data-binary '{"name":"other"}'
	expect_openai_error 409 invalid_request_error idempotency_key_reused
	run psql -X -q -At -d "$JR_DATABASE" -c "SELECT count(*) FROM jairouter.api_keys WHERE name IN ('deploy', 'other')"
	[[ $output == 1 ]]
}

@test "a tenant administrator cannot reach another tenant" {
	adm "$ACME" GET /tenants/globex/keys
	expect_openai_error 404 invalid_request_error tenant_not_found
	adm "$ACME" POST /tenants/globex/keys --data-binary '{"name":"x"}'
	expect_openai_error 404 invalid_request_error tenant_not_found
	gid=$(psql -X -q -At -d "$JR_DATABASE" -c "SELECT id FROM jairouter.api_keys WHERE prefix = '${GLOBEX:0:11}'")
	adm "$ACME" DELETE "/keys/$gid"
	expect_openai_error 404 invalid_request_error key_not_found
	status_is "$GLOBEX" 200
}

@test "revoke a key: 200 with revoked_at, and the model API refuses it" {
	adm "$ACME" POST /tenants/acme/keys --data-binary '{"name":"short-lived"}'
	expect_status 201
	id=$(json b.id)
	key=$(json b.key)
	eventually 10 status_is "$key" 200
	adm "$ACME" DELETE "/keys/$id"
	expect_status 200
	expect_json "b.id === $id && typeof b.revoked_at === 'string'"
	eventually 10 status_is "$key" 401
	adm "$ACME" DELETE "/keys/${ACME:0:11}"
	expect_openai_error 400 invalid_request_error invalid_key_id
}

@test "models: prices and currency" {
	adm "$PLAT" GET /models
	expect_status 200
	expect_json "b.data.length === 1 && b.data[0].id === 'test-model' && b.data[0].provider === 'openai'"
	expect_json "b.data[0].price_in === 2.5 && b.data[0].price_out === 10 && b.data[0].currency === 'USD'"
}

@test "limits: a tenant's and the global ones" {
	jr_ctl limit set tenant requests token_bucket 100000 --tenant acme --window-ms 60000 >/dev/null
	jr_ctl limit set tenant requests token_bucket 50 --tenant globex --window-ms 60000 >/dev/null
	adm "$ACME" GET '/limits?tenant=acme'
	expect_status 200
	expect_json "b.data.length === 1 && b.data[0].tenant === 'acme' && b.data[0].amount === 100000 && b.data[0].dimension === 'requests'"
	adm "$PLAT" GET /limits
	expect_status 200
	expect_json "b.data.length === 2"
}

@test "usage: grouped by day, model and key; usage:read suffices" {
	# ACME's key holds only the admin role (no service): PLAIN, without roles, calls.
	eventually 10 status_is "$PLAIN" 200
	eventually 20 usage_has_rows
	adm "$READER" GET '/usage?group_by=model'
	expect_status 200
	expect_json "b.data.length === 1 && b.data[0].model === 'test-model' && b.data[0].requests >= 1"
	expect_json "['requests','prompt_tokens','completion_tokens','cost','currency'].every(f => f in b.data[0])"
	adm "$READER" GET '/usage?group_by=key'
	expect_status 200
	expect_json "b.data.every(r => /^jr-[0-9a-f]{8}$/.test(r.key))"
	adm "$READER" GET '/usage?tenant=globex'
	expect_openai_error 404 invalid_request_error tenant_not_found
	adm "$READER" GET '/usage?group_by=hour'
	expect_openai_error 400 invalid_request_error invalid_group_by
	adm "$READER" GET '/usage?from=yesterday'
	expect_openai_error 400 invalid_request_error invalid_from
}

usage_has_rows() {
	adm "$PLAT" GET '/usage?group_by=day&tenant=acme'
	[[ $STATUS == 200 ]] && [[ $(json 'b.data.length') -ge 1 ]]
}

@test "audit: changes made through the API carry their actor; tenants see their own" {
	adm "$AUDITOR" GET '/audit?limit=500'
	expect_status 200
	expect_json "b.data.some(a => a.actor === 'key:${ACME:0:11}' && a.action === 'insert' && a.table === 'api_keys')"
	expect_json "b.data.every(a => ['at','actor','action','target'].every(f => f in a))"
	expect_json "b.data.every(a => !JSON.stringify(a).includes('key_hash'))"
	expect_json "!b.data.some(a => a.new && a.new.tenant_id !== undefined && a.new.tenant_id !== $(tenant_id acme))"
	adm "$AUDITOR" GET '/audit?limit=1'
	expect_status 200
	expect_json "b.data.length === 1 && typeof b.next_cursor === 'string'"
	adm "$ACME" GET /audit
	expect_status 200
	adm "$READER" GET /audit
	expect_openai_error 403 permission_error permission_denied
}

tenant_id() {
	psql -X -q -At -d "$JR_DATABASE" -c "SELECT id FROM jairouter.tenants WHERE name = '$1'"
}

@test "update a tenant: If-Match required (428), stale (412), then applied with a new ETag" {
	adm "$PLAT" GET /tenants/globex
	expect_status 200
	etag=$(hdr etag)
	[[ $etag == '"'*'"' ]]
	adm "$PLAT" PATCH /tenants/globex --data-binary '{"status":"disabled"}'
	expect_openai_error 428 invalid_request_error if_match_required
	adm "$PLAT" PATCH /tenants/globex -H 'If-Match: "0000"' --data-binary '{"status":"disabled"}'
	expect_openai_error 412 invalid_request_error etag_mismatch
	adm "$PLAT" PATCH /tenants/globex -H "If-Match: $etag" --data-binary '{"status":"disabled"}'
	expect_status 200
	expect_json "b.status === 'disabled'"
	[[ $(hdr etag) != "$etag" ]]
	eventually 10 status_is "$GLOBEX" 403
	adm "$PLAT" PATCH /tenants/globex -H "If-Match: $etag" --data-binary '{"status":"active"}'
	expect_openai_error 412 invalid_request_error etag_mismatch
	adm "$PLAT" PATCH /tenants/globex -H 'If-Match: *' --data-binary '{"status":"active"}'
	expect_status 200
	eventually 10 status_is "$GLOBEX" 200
	adm "$ACME" PATCH /tenants/acme -H 'If-Match: *' --data-binary '{"platform":true}'
	expect_openai_error 403 permission_error permission_denied
}

@test "bad requests: invalid JSON, a body too large, unknown paths and methods" {
	adm "$ACME" POST /tenants/acme/keys --data-binary '{"name":'
	expect_openai_error 400 invalid_request_error invalid_json
	adm "$ACME" POST /tenants/acme/keys --data-binary '["a"]'
	expect_openai_error 400 invalid_request_error invalid_json
	printf '{"name":"\xff\xfe"}' >"$BATS_TEST_TMPDIR/latin.json"
	adm "$ACME" POST /tenants/acme/keys --data-binary "@$BATS_TEST_TMPDIR/latin.json"
	expect_openai_error 400 invalid_request_error invalid_json
	adm "$ACME" POST /tenants/acme/keys --data-binary '{"name":"a\u0000b"}'
	expect_openai_error 400 invalid_request_error invalid_json
	adm "$ACME" POST /tenants/acme/keys --data-binary '{"name":"x","scope":"all"}'
	expect_openai_error 400 invalid_request_error unknown_field
	head -c 70000 /dev/zero | tr '\0' 'a' | sed 's/^/{"name":"/; s/$/"}/' >"$BATS_TEST_TMPDIR/big.json"
	adm "$ACME" POST /tenants/acme/keys --data-binary "@$BATS_TEST_TMPDIR/big.json"
	expect_openai_error 413 invalid_request_error request_too_large
	adm "$ACME" GET /nothing-here
	expect_openai_error 404 invalid_request_error unknown_url
	adm "$ACME" DELETE /tenants/acme/keys
	expect_openai_error 405 invalid_request_error method_not_allowed
	[[ $(hdr allow) == 'GET, POST' ]]
	adm "$ACME" OPTIONS /me
	expect_openai_error 405 invalid_request_error method_not_allowed
}

@test "roles: a tenant administrator manages its own roles and its keys' roles" {
	adm "$ACME" POST /roles --data-binary '{"name":"chat-only","allow":["service:chat","model:*"]}'
	expect_status 201
	expect_json "b.tenant === 'acme' && b.allow.length === 2"
	rid=$(json b.id)
	adm "$ACME" POST /roles --data-binary '{"name":"chat-only"}'
	expect_openai_error 409 invalid_request_error role_exists
	adm "$ACME" POST /roles --data-binary '{"name":"bad","allow":["fly"]}'
	expect_openai_error 400 invalid_request_error invalid_role
	adm "$ACME" POST /tenants/acme/keys --data-binary '{"name":"chatter"}'
	expect_status 201
	kid=$(json b.id)
	key=$(json b.key)
	adm "$ACME" POST "/keys/$kid/roles" --data-binary '{"role":"chat-only"}'
	expect_status 200
	expect_json "JSON.stringify(b.roles) === '[\"chat-only\"]'"
	eventually 10 status_is "$key" 200
	req -H "authorization: Bearer $key" /v1/models
	expect_openai_error 403 permission_error permission_denied
	adm "$ACME" DELETE "/keys/$kid/roles/chat-only"
	expect_status 200
	expect_json "b.roles.length === 0"
	adm "$ACME" GET /roles
	expect_status 200
	expect_json "b.data.some(r => r.name === 'platform-admin' && r.tenant === null) && b.data.every(r => r.tenant === null || r.tenant === 'acme')"
	gid=$(psql -X -q -At -d "$JR_DATABASE" -c "SELECT id FROM jairouter.roles WHERE name = 'platform-admin'")
	adm "$ACME" DELETE "/roles/$gid"
	expect_openai_error 404 invalid_request_error role_not_found
	adm "$ACME" DELETE "/roles/$rid"
	expect_status 200
	expect_json "b.deleted === true"
}

@test "limits: platform administrators change them, tenant administrators only read" {
	adm "$PLAT" POST /limits --data-binary '{"scope":"tenant","dimension":"requests","algorithm":"token_bucket","amount":1,"window_ms":60000,"tenant":"globex"}'
	expect_status 201
	expect_json "b.tenant === 'globex' && b.amount === 1 && b.window_ms === 60000"
	lid=$(json b.id)
	adm "$PLAT" POST /limits --data-binary '{"scope":"tenant","dimension":"requests","algorithm":"day","amount":1}'
	expect_openai_error 400 invalid_request_error invalid_limit
	adm "$ACME" POST /limits --data-binary '{"scope":"tenant","dimension":"requests","algorithm":"token_bucket","amount":1000000,"window_ms":1000,"tenant":"acme"}'
	expect_openai_error 403 permission_error permission_denied
	adm "$ACME" DELETE "/limits/$lid"
	expect_openai_error 403 permission_error permission_denied
	adm "$PLAT" DELETE "/limits/$lid"
	expect_status 200
	adm "$PLAT" DELETE "/limits/$lid"
	expect_openai_error 404 invalid_request_error limit_not_found
}

@test "issuers: created, read with an ETag, changed with If-Match; secrets are write-only" {
	adm "$PLAT" POST /issuers --data-binary '{"name":"corp-sso","issuer":"https://login.example.com","algorithms":["RS256"],"tenant":"acme","introspection_url":"https://login.example.com/introspect","introspection_client_id":"gw","introspection_client_secret":"s3cret-value"}'
	expect_status 201
	expect_json "b.name === 'corp-sso' && b.tenant === 'acme' && b.introspection_client_secret_set === true"
	run ! grep -F s3cret-value "$BATS_TEST_TMPDIR/body"
	adm "$PLAT" POST /issuers/corp-sso/keys --data-binary '{"kid":"k1","jwk":{"kty":"oct","k":"c2hhcmVkLXNlY3JldC1vZi1hdC1sZWFzdC0zMi1ieXRlcy1sb25n"}}'
	expect_status 201
	expect_json "b.keys.length === 1 && b.keys[0].kid === 'k1' && b.keys[0].kty === 'oct' && !('jwk' in b.keys[0])"
	run ! grep -F c2hhcmVk "$BATS_TEST_TMPDIR/body"
	adm "$ACME" GET /issuers/corp-sso
	expect_status 200
	etag=$(hdr etag)
	adm "$ACME" PATCH /issuers/corp-sso -H "If-Match: $etag" --data-binary '{"status":"disabled"}'
	expect_openai_error 403 permission_error permission_denied
	adm "$PLAT" PATCH /issuers/corp-sso --data-binary '{"status":"disabled"}'
	expect_openai_error 428 invalid_request_error if_match_required
	adm "$PLAT" PATCH /issuers/corp-sso -H "If-Match: $etag" --data-binary '{"status":"disabled","audience":"jairouter"}'
	expect_status 200
	expect_json "b.status === 'disabled' && b.audience === 'jairouter' && b.introspection_client_secret_set === true"
	adm "$PLAT" PATCH /issuers/corp-sso -H "If-Match: $etag" --data-binary '{"status":"active"}'
	expect_openai_error 412 invalid_request_error etag_mismatch
	adm "$GLOBEX" GET /issuers/corp-sso
	expect_openai_error 403 permission_error permission_denied
	adm "$PLAT" DELETE /issuers/corp-sso/keys/k1
	expect_status 200
	expect_json "b.keys.length === 0"
	adm "$PLAT" DELETE /issuers/corp-sso
	expect_status 200
	adm "$PLAT" GET /issuers/corp-sso
	expect_openai_error 404 invalid_request_error issuer_not_found
}

@test "routing: a model's strategy, fallbacks and virtual members, replaced with If-Match" {
	jr_ctl model add spare-model be_mock2 >/dev/null
	adm "$PLAT" GET /models/test-model/routing
	expect_status 200
	expect_json "b.model === 'test-model' && b.strategy === null && b.fallbacks.length === 0"
	etag=$(hdr etag)
	adm "$PLAT" PUT /models/test-model/routing -H "If-Match: $etag" --data-binary '{"strategy":"least_conn","fallbacks":["spare-model"]}'
	expect_status 200
	expect_json "b.strategy === 'least_conn' && JSON.stringify(b.fallbacks) === '[\"spare-model\"]'"
	adm "$PLAT" PUT /models/test-model/routing --data-binary '{}'
	expect_openai_error 428 invalid_request_error if_match_required
	adm "$PLAT" PUT /models/test-model/routing -H 'If-Match: *' --data-binary '{"strategy":"sideways"}'
	expect_openai_error 400 invalid_request_error
	adm "$PLAT" PUT /models/test-model/routing -H 'If-Match: *' --data-binary '{}'
	expect_status 200
	expect_json "b.strategy === null && b.fallbacks.length === 0"
	adm "$PLAT" GET /models/no-such-model/routing
	expect_openai_error 404 invalid_request_error model_not_found
}

@test "jairouterctl covers the same ground (roles, limits, issuers, routing, platform)" {
	run jr_ctl role add ops-reader --allow usage:read,audit:read
	[[ $status == 0 && $output == *'ops-reader'* ]]
	run jr_ctl role list
	[[ $status == 0 && $output == *'usage:read,audit:read'* ]]
	run jr_ctl role add ops-reader
	[[ $status == 4 ]]
	run jr_ctl role assign "${PLAIN:0:11}" ops-reader
	[[ $status == 0 ]]
	adm "$PLAIN" GET /me
	expect_json "b.permissions.includes('usage:read') && b.permissions.includes('audit:read')"
	run jr_ctl role unassign "${PLAIN:0:11}" ops-reader
	[[ $status == 0 ]]
	run jr_ctl role remove ops-reader
	[[ $status == 0 ]]
	run jr_ctl limit set key requests token_bucket 5 --key "${PLAIN:0:11}" --window-ms 1000
	[[ $status == 0 ]]
	lid=$(grep -Eo '[0-9]+' <<<"$output" | head -n 1)
	run jr_ctl limit list --tenant acme
	[[ $status == 0 && $output == *"${PLAIN:0:11}"* ]]
	run jr_ctl limit remove "$lid"
	[[ $status == 0 ]]
	run jr_ctl limit remove "$lid"
	[[ $status == 3 ]]
	printf '{"kty":"oct","k":"c2hhcmVkLXNlY3JldC1vZi1hdC1sZWFzdC0zMi1ieXRlcy1sb25n"}' >"$BATS_TEST_TMPDIR/k.jwk"
	run jr_ctl issuer add partners https://auth.partner.example --algorithms HS256 --tenant-claim org
	[[ $status == 0 ]]
	run jr_ctl issuer key add partners k9 "$BATS_TEST_TMPDIR/k.jwk"
	[[ $status == 0 ]]
	run jr_ctl issuer list
	[[ $status == 0 && $output == *partners*'claim org'* ]]
	run jr_ctl issuer disable partners
	[[ $status == 0 ]]
	run jr_ctl issuer show partners
	[[ $status == 0 && $output == *'"status": "disabled"'* && $output != *c2hhcmVk* ]]
	run jr_ctl issuer remove partners
	[[ $status == 0 ]]
	run jr_ctl routing strategy test-model round_robin
	[[ $status == 0 && $output == *round_robin* ]]
	run jr_ctl routing strategy test-model inherit
	[[ $status == 0 && $output == *'"strategy": null'* ]]
	run jr_ctl routing fallbacks test-model no-such-model
	[[ $status == 3 ]]
	run jr_ctl platform list
	[[ $status == 0 && $output == *ops* && $output != *acme* ]]
	run jr_ctl audit --limit 50
	[[ $status == 0 && $output == *jwt_issuers* ]]
}

@test "masking: a tenant administrator sets its own tenant's, with If-Match" {
	adm "$ACME" GET /tenants/acme/masking
	expect_status 200
	expect_json "b.tenant === 'acme' && b.enabled === false && b.policy === null"
	etag=$(hdr etag)
	adm "$ACME" PUT /tenants/acme/masking -H "If-Match: $etag" \
		--data-binary '{"enabled":true,"policy":{"rules":[{"detector":"email","action":"mask"}]}}'
	expect_status 200
	expect_json "b.enabled === true && b.policy.rules[0].detector === 'email'"
	run psql -X -q -At -d "$JR_DATABASE" -c "SELECT settings ->> 'masking' FROM jairouter.tenants WHERE name = 'acme'"
	[[ $output == true ]]
	adm "$ACME" PUT /tenants/acme/masking -H 'If-Match: *' --data-binary '{"enabled":true,"policy":{"rules":"all"}}'
	expect_openai_error 400 invalid_request_error
	adm "$ACME" PUT /tenants/globex/masking -H 'If-Match: *' --data-binary '{"enabled":true}'
	expect_openai_error 404 invalid_request_error tenant_not_found
	adm "$ACME" PUT /tenants/acme/masking -H 'If-Match: *' --data-binary '{"enabled":false}'
	expect_status 200
	expect_json "b.enabled === false"
	adm "$ACME" GET /endpoints
	expect_openai_error 403 permission_error permission_denied
}

@test "a JWT caller: the same identity code, its roles from the token, its subject as actor" {
	local keys=$BATS_TEST_TMPDIR/keys token exp
	node "$BATS_TEST_DIRNAME/jwt-mint.mjs" keygen "$keys" >/dev/null
	jr_ctl issuer add sso https://sso.test --algorithms RS256 --tenant acme >/dev/null
	jr_ctl issuer key add sso rsa-1 "$keys/rsa.jwk" >/dev/null
	exp=$(($(date +%s) + 300))
	token=$(node "$BATS_TEST_DIRNAME/jwt-mint.mjs" sign "$keys" RS256 rsa-1 \
		"{\"iss\":\"https://sso.test\",\"sub\":\"alice\",\"exp\":$exp,\"roles\":[\"acme-admin\"]}")
	eventually 10 admin_status "$token" GET /me 200
	expect_json "b.actor === 'user:alice@https://sso.test' && b.tenant === 'acme' && JSON.stringify(b.permissions) === '[\"admin\"]'"
	adm "$token" POST /tenants/acme/keys --data-binary '{"name":"from-sso"}'
	expect_status 201
	adm "$AUDITOR" GET '/audit?limit=5'
	expect_json "b.data.some(a => a.actor === 'user:alice@https://sso.test' && a.new && a.new.name === 'from-sso')"
	adm "$token" GET /tenants/globex/keys
	expect_openai_error 404 invalid_request_error tenant_not_found
	token=$(node "$BATS_TEST_DIRNAME/jwt-mint.mjs" sign "$keys" RS256 rsa-1 \
		"{\"iss\":\"https://sso.test\",\"sub\":\"bob\",\"exp\":$exp,\"roles\":[]}")
	adm "$token" GET /tenants/acme/keys
	expect_openai_error 403 permission_error permission_denied
	adm "${token%?}x" GET /me
	expect_openai_error 401 authentication_error invalid_token
	jr_ctl issuer remove sso >/dev/null
}

@test "credentials: sealed by the agent, injected upstream, never shown or stored in clear" {
	local secret=sk-admin-api-$RANDOM$RANDOM want
	adm "$ACME" PUT /credentials/backend/be_mock --data-binary "{\"secret\":\"$secret\"}"
	expect_openai_error 403 permission_error permission_denied
	adm "$PLAT" PUT /credentials/backend/be_mock \
		--data-binary "{\"secret\":\"$secret\",\"header\":\"x-api-key\",\"scheme\":\"raw\"}"
	expect_status 200
	expect_json "b.scope === 'backend' && b.target === 'be_mock' && b.header === 'x-api-key' && b.master_key_id === 'k1' && !('secret' in b)"
	run ! grep -F "$secret" "$BATS_TEST_TMPDIR/body"
	want=$(printf '%s' "$secret" | sha256sum | cut -d' ' -f1)
	eventually 10 upstream_key_is "$want"
	run psql -X -q -At -d "$JR_DATABASE" -c "SELECT count(*) FROM jairouter.provider_credentials WHERE ciphertext LIKE '%$secret%'"
	[[ $output == 0 ]]
	run ! grep -rF "$secret" "$STACK"/*.log
	adm "$PLAT" GET /credentials
	expect_status 200
	expect_json "b.data.length === 1 && !JSON.stringify(b).includes('$secret')"
	adm "$PLAT" DELETE /credentials/backend/be_mock
	expect_status 200
	eventually 10 upstream_key_is ""
}

# upstream_key_is SHA256: the mock saw an x-api-key with that SHA-256 ("" none) on a chat
# request of PLAIN's.
upstream_key_is() {
	auth_chat "$PLAIN"
	[[ $STATUS == 200 && $(hdr x-mock-x-api-key-sha256) == "$1" ]]
}

# burst KEY N: N requests of GET /me with KEY; prints how many got 429.
burst() {
	local key=$1 n=$2 i limited=0
	for ((i = 0; i < n; i++)); do
		adm "$key" GET /me
		[[ $STATUS == 429 ]] && limited=$((limited + 1))
	done
	echo "$limited"
}

@test "the per-caller rate (admin_api_rate, reloaded by SIGHUP) answers 429 with retry-after" {
	local key pid
	key=$(issue_key acme)
	eventually 10 admin_status "$key" GET /me 200
	pid=$(jr_pid_of "$STACK/agent.pid")
	printf 'admin_api_rate = 30\n' >>"$STACK/agent.conf"
	kill -HUP "$pid"
	# 30 a minute: a burst of 5, then one every 2 s.
	eventually 10 [ "$(burst "$key" 8)" -ge 1 ]
	adm "$key" GET /me
	expect_openai_error 429 rate_limit_error rate_limit_exceeded
	[[ $(hdr retry-after) =~ ^[1-9][0-9]*$ ]]
	# Another caller has its own bucket.
	adm "$PLAT" GET /me
	expect_status 200
	sed -i '/^admin_api_rate = 30$/d' "$STACK/agent.conf"
	kill -HUP "$pid"
	eventually 10 admin_status "$key" GET /me 200
	# Back at 6,000 a minute, a new caller's bucket holds 1,000.
	key=$(issue_key acme)
	eventually 10 admin_status "$key" GET /me 200
	[[ $(burst "$key" 50) == 0 ]]
}

@test "docs/admin-api.openapi.yaml: valid OpenAPI 3.1, the route table's operations, each answering as documented" {
	[[ -d $JR_ROOT/tests/openapi/node_modules ]] || {
		echo "tests/openapi/node_modules is missing: run scripts/setup"
		return 1
	}
	jr_ctl model add routing-model be_mock >/dev/null
	run env OA_PLATFORM_KEY="$PLAT" OA_PLAIN_KEY="$PLAIN" OA_MODEL=routing-model \
		node "$JR_ROOT/tests/openapi/check.mjs"
	echo "$output"
	[[ $status == 0 ]]
	[[ $output == *'every documented operation was exercised'* && $output == *' 0 failed' ]]
}

@test "the address lock-out covers the administration API (runs last)" {
	local i
	for i in $(seq 1 12); do
		adm "jr-$(printf '%064d' "$i")" GET /me
		[[ $STATUS == 429 ]] && break
	done
	expect_openai_error 429 rate_limit_error too_many_failed_attempts
	[[ -n $(hdr retry-after) ]]
	adm "$PLAT" GET /me
	expect_openai_error 429 rate_limit_error too_many_failed_attempts
}
