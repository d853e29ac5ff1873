#!/usr/bin/env bats
# Identities beyond API keys, end to end (docs/identity.md): JWTs from issuers configured
# in SQL (static keys; key rotation through NOTIFY), the attack suite (each refusal is 401
# and leaves the right row in jairouter.security_audit), revocation within a second, RBAC
# through the gateway, the address lock-out and its recovery, and audit rows free of
# secrets. HAProxy trusts X-Forwarded-For from 127.0.0.1, so every test picks its own
# client address and the lock-out of one never touches another.

load helpers
stack_hooks

setup_file() {
	export STACK=$BATS_FILE_TMPDIR/stack KEYS=$BATS_FILE_TMPDIR/keys
	mkdir -p "$STACK"
	export JR_TRUSTED_PROXIES=$BATS_FILE_TMPDIR/trusted-proxies.lst
	printf '127.0.0.1\n' >"$JR_TRUSTED_PROXIES"
	# Lock-out after 4 failures within 60 s, for 2 s (no slow phase: quick to test).
	export JR_ABUSE_MAX_FAILURES=4
	jr_stack_start "$STACK"
	printf 'abuse_slow_after = 0\nabuse_block_s = 2\n' >>"$STACK/agent.conf"
	kill -HUP "$(jr_pid_of "$STACK/agent.pid")"
	node "$BATS_TEST_DIRNAME/jwt-mint.mjs" keygen "$KEYS"
	jr_ctl tenant add acme >/dev/null
	jr_ctl tenant add globex >/dev/null
	jr_ctl model add test-model be_mock >/dev/null
	jr_ctl model add big-model be_mock --services chat,embeddings >/dev/null
	db_sql -v rsa="$(cat "$KEYS/rsa.jwk")" -v ec="$(cat "$KEYS/ec.jwk")" -v hs="$(cat "$KEYS/hs.jwk")" \
		-v rsapem="$(cat "$KEYS/rsa.pub.pem")" <<'SQL'
INSERT INTO jairouter.jwt_issuers (name, issuer, algorithms, audience, tenant_id, role_claim)
	SELECT 'corp', 'https://idp.test', '{RS256,ES256}', 'jairouter', id, 'roles'
	FROM jairouter.tenants WHERE name = 'acme';
INSERT INTO jairouter.jwt_issuers (name, issuer, algorithms, tenant_claim, role_claim, default_roles)
	VALUES ('org', 'https://org.test', '{HS256,RS256}', 'org', 'scope', '{user}');
INSERT INTO jairouter.jwt_issuer_keys (issuer_id, kid, jwk)
	SELECT id, 'rsa-1', :'rsa' FROM jairouter.jwt_issuers WHERE name = 'corp';
INSERT INTO jairouter.jwt_issuer_keys (issuer_id, kid, jwk)
	SELECT id, 'ec-1', :'ec' FROM jairouter.jwt_issuers WHERE name = 'corp';
INSERT INTO jairouter.jwt_issuer_keys (issuer_id, kid, jwk)
	SELECT id, 'h1', :'hs' FROM jairouter.jwt_issuers WHERE name = 'org';
INSERT INTO jairouter.jwt_issuer_keys (issuer_id, kid, jwk)
	SELECT id, 'r1', :'rsapem' FROM jairouter.jwt_issuers WHERE name = 'org';
INSERT INTO jairouter.roles (name, allow) VALUES ('user', '{service:chat,model:test-model}');
INSERT INTO jairouter.roles (name, allow) VALUES ('admin', '{*}');
INSERT INTO jairouter.roles (tenant_id, name, allow, deny)
	SELECT id, 'no-big', '{service:*,model:*}', '{model:big-model}' FROM jairouter.tenants WHERE name = 'acme';
INSERT INTO jairouter.roles (name, allow) VALUES ('embedder', '{service:embeddings,model:*}');
SQL
	BATS_TEST_TMPDIR=$BATS_FILE_TMPDIR eventually 10 token_status "$(corp_token)" 200
}

# absent TEXT FILE: FILE does not contain TEXT (a bare "! grep" would not fail a bats test).
absent() {
	! grep -q -- "$1" "$2"
}

mint() {
	node "$BATS_TEST_DIRNAME/jwt-mint.mjs" "$@"
}

now() {
	date +%s
}

# corp_token [ROLES_JSON] [EXTRA_CLAIMS]: an RS256 token of the corp issuer (tenant acme).
corp_token() {
	local t
	t=$(now)
	mint sign "$KEYS" RS256 rsa-1 "{\"iss\":\"https://idp.test\",\"aud\":\"jairouter\",\"sub\":\"alice\",\"exp\":$((t + 600)),\"iat\":$((t - 5)),\"roles\":${1:-[\"user\"]}${2:-}}"
}

# token_status TOKEN STATUS [IP] [MODEL] [PATH]: one request with TOKEN answers STATUS.
token_status() {
	local path=${5:-$CHAT_PATH}
	req -X POST -H 'content-type: application/json' -H "authorization: Bearer $1" \
		-H "x-forwarded-for: ${3:-10.0.0.1}" --data-binary "${BODY:-$(chat_body "${4:-test-model}")}" "$path"
	expect_status "$2"
}

# audited REASON [EVENT] [CLIENT]: a security_audit row with that reason (and client
# address); the writer flushes every 200 ms.
audited() {
	local n
	n=$(db_sql -c "SELECT count(*) FROM jairouter.security_audit WHERE reason = '$1' AND event = '${2:-auth_failure}'
		AND ('${3:-}' = '' OR client = '${3:-0.0.0.0}'::inet)")
	((n > 0))
}

# audited_from IP: a security_audit row for that client address.
audited_from() {
	(($(db_sql -c "SELECT count(*) FROM jairouter.security_audit WHERE client = '$1'") > 0))
}

# refused TOKEN CODE REASON IP: 401 with the OpenAI code, and the audit row.
refused() {
	token_status "$1" 401 "$4"
	expect_openai_error 401 authentication_error "$2"
	eventually 5 audited "$3" auth_failure "$4"
}

@test "a JWT of a configured issuer is accepted (RS256, ES256) and cached tokens keep working" {
	token_status "$(corp_token)" 200
	local t tok
	t=$(now)
	tok=$(mint sign "$KEYS" ES256 ec-1 "{\"iss\":\"https://idp.test\",\"aud\":\"jairouter\",\"sub\":\"bob\",\"exp\":$((t + 60)),\"roles\":[\"user\"]}")
	token_status "$tok" 200
	token_status "$tok" 200
}

@test "tenant from a claim, roles from a scope string, HS256 with an oct key" {
	local t
	t=$(now)
	token_status "$(mint sign "$KEYS" HS256 h1 "{\"iss\":\"https://org.test\",\"org\":\"globex\",\"sub\":\"g1\",\"exp\":$((t + 60)),\"scope\":\"openid user\"}")" 200
}

@test "attack suite: alg none, HS256 keyed with the RSA public key, expired, not yet valid" {
	local t p
	t=$(now)
	p="{\"iss\":\"https://idp.test\",\"aud\":\"jairouter\",\"sub\":\"mallory\",\"exp\":$((t + 600)),\"roles\":[\"admin\"]}"
	refused "$(mint sign "$KEYS" none rsa-1 "$p")" invalid_token algorithm_not_allowed 10.1.0.1
	# The org issuer allows HS256 and RS256; its RSA key is never an HMAC secret.
	refused "$(mint hs-with-pubkey "$KEYS" r1 "{\"iss\":\"https://org.test\",\"org\":\"acme\",\"exp\":$((t + 600))}")" \
		invalid_token unknown_key 10.1.0.2
	refused "$(mint sign "$KEYS" RS256 rsa-1 "{\"iss\":\"https://idp.test\",\"aud\":\"jairouter\",\"exp\":$((t - 120))}")" \
		token_expired expired 10.1.0.3
	refused "$(mint sign "$KEYS" RS256 rsa-1 "{\"iss\":\"https://idp.test\",\"aud\":\"jairouter\",\"exp\":$((t + 900)),\"nbf\":$((t + 600))}")" \
		invalid_token not_yet_valid 10.1.0.4
}

@test "attack suite: wrong iss, wrong aud, unknown kid, tampered payload, oversized token" {
	local t good
	t=$(now)
	refused "$(mint sign "$KEYS" RS256 rsa-1 "{\"iss\":\"https://evil.test\",\"aud\":\"jairouter\",\"exp\":$((t + 600))}")" \
		invalid_token unknown_issuer 10.1.1.1
	refused "$(mint sign "$KEYS" RS256 rsa-1 "{\"iss\":\"https://idp.test\",\"aud\":\"other\",\"exp\":$((t + 600))}")" \
		invalid_token wrong_audience 10.1.1.2
	refused "$(mint sign "$KEYS" RS256 gone-kid "{\"iss\":\"https://idp.test\",\"aud\":\"jairouter\",\"exp\":$((t + 600))}")" \
		invalid_token unknown_key 10.1.1.3
	good=$(corp_token)
	refused "$(mint tamper "$good" "{\"iss\":\"https://idp.test\",\"aud\":\"jairouter\",\"sub\":\"root\",\"exp\":$((t + 600)),\"roles\":[\"admin\"]}")" \
		invalid_token bad_signature 10.1.1.4
	refused "$(head -c 9000 /dev/zero | tr '\0' a).b.c" invalid_token too_large 10.1.1.5
}

@test "attack suite: a token for a disabled tenant, a revoked jti (refused within a second)" {
	local t tok
	t=$(now)
	jr_ctl tenant add frozen >/dev/null
	jr_ctl tenant disable frozen >/dev/null
	refused "$(mint sign "$KEYS" HS256 h1 "{\"iss\":\"https://org.test\",\"org\":\"frozen\",\"exp\":$((t + 600))}")" \
		invalid_token tenant_disabled 10.1.2.1
	tok=$(corp_token '["user"]' ',"jti":"tok-42"')
	token_status "$tok" 200 10.1.2.2
	db_sql -c "INSERT INTO jairouter.revoked_tokens (issuer_id, jti, reason)
		SELECT id, 'tok-42', 'test' FROM jairouter.jwt_issuers WHERE name = 'corp'"
	within_ms 1500 token_status "$tok" 401 10.1.2.2
	expect_openai_error 401 authentication_error token_revoked
	eventually 5 audited revoked auth_failure 10.1.2.2
	# The revocation itself is in the change log.
	[[ $(db_sql -c "SELECT count(*) FROM jairouter.audit_log WHERE table_name = 'revoked_tokens' AND op = 'INSERT'") -ge 1 ]]
}

@test "a revoked subject: tokens issued before not_before are refused, newer ones pass" {
	local t old new
	t=$(now)
	old=$(mint sign "$KEYS" RS256 rsa-1 "{\"iss\":\"https://idp.test\",\"aud\":\"jairouter\",\"sub\":\"carol\",\"exp\":$((t + 600)),\"iat\":$((t - 100)),\"roles\":[\"user\"]}")
	new=$(mint sign "$KEYS" RS256 rsa-1 "{\"iss\":\"https://idp.test\",\"aud\":\"jairouter\",\"sub\":\"carol\",\"exp\":$((t + 600)),\"iat\":$((t + 30)),\"roles\":[\"user\"]}")
	token_status "$old" 200 10.1.3.1
	db_sql -c "INSERT INTO jairouter.revoked_subjects (issuer_id, subject, not_before)
		SELECT id, 'carol', now() FROM jairouter.jwt_issuers WHERE name = 'corp'"
	within_ms 1500 token_status "$old" 401 10.1.3.1
	token_status "$new" 200 10.1.3.1
}

@test "key rotation without a restart: a new kid is accepted once its row is inserted" {
	local t tok
	t=$(now)
	tok=$(mint sign "$KEYS" EdDSA ed-new "{\"iss\":\"https://idp.test\",\"aud\":\"jairouter\",\"sub\":\"dave\",\"exp\":$((t + 600)),\"roles\":[\"user\"]}")
	token_status "$tok" 401 10.1.4.1
	db_sql -c "UPDATE jairouter.jwt_issuers SET algorithms = '{RS256,ES256,EdDSA}' WHERE name = 'corp'"
	db_sql -v ed="$(cat "$KEYS/ed.jwk")" <<'SQL'
INSERT INTO jairouter.jwt_issuer_keys (issuer_id, kid, jwk)
	SELECT id, 'ed-new', :'ed' FROM jairouter.jwt_issuers WHERE name = 'corp';
SQL
	within_ms 1500 token_status "$tok" 200 10.1.4.1
	# and a key taken out of service stops verifying at once, cached tokens included
	db_sql -c "UPDATE jairouter.jwt_issuer_keys SET status = 'disabled' WHERE kid = 'ed-new'"
	within_ms 1500 token_status "$tok" 401 10.1.4.1
}

@test "RBAC: the 403 names the missing permission; deny wins; keys with roles are held to them" {
	token_status "$(corp_token '["user"]')" 403 10.2.0.1 big-model
	expect_openai_error 403 permission_error permission_denied
	[[ $(json 'b.error.message') == *"'model:big-model'"* ]]
	token_status "$(corp_token '["user"]')" 403 10.2.0.1 test-model /v1/embeddings
	[[ $(json 'b.error.message') == *"'service:embeddings'"* ]]
	token_status "$(corp_token '["no-big","admin"]')" 403 10.2.0.1 big-model
	[[ $(json 'b.error.message') == *"denied by your role 'no-big'"* ]]
	token_status "$(corp_token '["admin"]')" 200 10.2.0.1 big-model
	eventually 5 audited 'model:big-model' permission_denied 10.2.0.1
	# API keys: without roles as before; with a role, held to it
	local key
	key=$(issue_key acme)
	token_status "$key" 200 10.2.0.2 big-model
	db_sql -c "INSERT INTO jairouter.api_key_roles (key_id, role_id)
		SELECT k.id, r.id FROM jairouter.api_keys k, jairouter.roles r
		WHERE k.prefix = '${key:0:11}' AND r.name = 'embedder'"
	within_ms 1500 token_status "$key" 403 10.2.0.2 big-model
	BODY='{"model":"big-model","input":"hi"}' token_status "$key" 200 10.2.0.2 big-model /v1/embeddings
}

@test "brute force: repeated bad credentials lock the address out (429, retry-after), then it recovers" {
	local key i
	key=$(issue_key acme)
	for i in 1 2 3 4; do
		token_status "jr-bad$i" 401 10.3.0.1
	done
	token_status "$key" 429 10.3.0.1
	expect_openai_error 429 rate_limit_error too_many_failed_attempts
	[[ -n $(hdr retry-after) ]]
	token_status "$key" 200 10.3.0.2 # another address is not affected
	eventually 5 audited too_many_failures lockout 10.3.0.1
	# counted on /metrics (numbers only), and the audit rows were written in batches
	curl -fsS "$JR_AGENT_METRICS/metrics" >"$BATS_TEST_TMPDIR/metrics"
	grep -qE '^jairouter_abuse_lockouts_total [1-9]' "$BATS_TEST_TMPDIR/metrics"
	grep -qE '^jairouter_abuse_refused_total [1-9]' "$BATS_TEST_TMPDIR/metrics"
	grep -qE '^jairouter_audit_written_total [1-9]' "$BATS_TEST_TMPDIR/metrics"
	absent '10\.3\.0\.1' "$BATS_TEST_TMPDIR/metrics"
	eventually 10 token_status "$key" 200 10.3.0.1
}

@test "audit rows carry prefixes, issuers and reasons, never a key or a token" {
	local key tok
	key=$(issue_key acme)
	tok=$(corp_token)
	# a wrong key that shares a real key's prefix: only the prefix is audited
	token_status "${key:0:63}0000" 401 10.4.0.1
	# a token with a valid shape but a payload changed after signing
	tok=$(mint tamper "$tok" "{\"iss\":\"https://idp.test\",\"aud\":\"jairouter\",\"sub\":\"eve\",\"exp\":$(($(now) + 600))}")
	token_status "$tok" 401 10.4.0.2
	eventually 5 audited_from 10.4.0.1
	eventually 5 audited_from 10.4.0.2
	[[ $(db_sql -c "SELECT key_prefix FROM jairouter.security_audit WHERE client = '10.4.0.1'") == "${key:0:11}" ]]
	[[ $(db_sql -c "SELECT issuer FROM jairouter.security_audit WHERE client = '10.4.0.2'") == https://idp.test ]]
	db_sql -c "SELECT * FROM jairouter.security_audit" >"$BATS_TEST_TMPDIR/audit.txt"
	db_sql -c "SELECT * FROM jairouter.audit_log" >>"$BATS_TEST_TMPDIR/audit.txt"
	grep -q "${key:0:11}" "$BATS_TEST_TMPDIR/audit.txt"
	absent "${key:11}" "$BATS_TEST_TMPDIR/audit.txt"
	absent "${tok:0:40}" "$BATS_TEST_TMPDIR/audit.txt"
	# nor the issuers' keys (the change log drops the jwk column)
	absent "$(node -p 'JSON.parse(require("fs").readFileSync(process.argv[1])).k' "$KEYS/hs.jwk")" \
		"$BATS_TEST_TMPDIR/audit.txt"
	absent "${tok:0:40}" "$STACK/agent.log"
}

@test "usage of a token request is recorded under its subject (not a user header), as key (token)" {
	local t tok
	t=$(now)
	tok=$(mint sign "$KEYS" RS256 rsa-1 "{\"iss\":\"https://idp.test\",\"aud\":\"jairouter\",\"sub\":\"usage-sub-1\",\"exp\":$((t + 600)),\"roles\":[\"user\"]}")
	token_status "$tok" 200 10.0.0.61
	req -X POST -H 'content-type: application/json' -H "authorization: Bearer $tok" \
		-H 'x-forwarded-for: 10.0.0.61' -H 'x-jairouter-user: someone-else' \
		--data-binary "$(chat_body test-model)" "$CHAT_PATH"
	expect_status 200
	eventually 5 bash -c "[[ \$(psql -X -At -d '$JR_DATABASE' -c \"SELECT sum(requests) FROM jairouter.usage_hourly_report WHERE \\\"user\\\" = 'usage-sub-1'\") == 2 ]]"
	[[ $(db_sql -c "SELECT DISTINCT tenant || ' ' || key FROM jairouter.usage_hourly_report WHERE \"user\" = 'usage-sub-1'") == "acme (token)" ]]
	[[ $(db_sql -c "SELECT count(*) FROM jairouter.usage_hourly WHERE end_user = 'someone-else'") == 0 ]]
}
