#!/usr/bin/env bats
# Tokens of a real OpenID provider (tests/oidc/provider.mjs, npm oidc-provider): the agent
# fetches its discovery document and JWKS (libcurl, on the control loop), accepts its
# client-credentials access tokens (RS256 JWTs, roles from `scope` through role_map), picks
# up a rotated signing key without a restart (unknown kid -> refresh), keeps the keys it
# has while the provider is down, and checks opaque tokens by RFC 7662 introspection (with
# client authentication, a negative answer, and both failure policies).

load helpers
stack_hooks

setup_file() {
	# The provider's packages (scripts/setup installs them; a bare checkout gets them here).
	if [[ ! -d $BATS_TEST_DIRNAME/../oidc/node_modules/oidc-provider ]]; then
		(cd "$BATS_TEST_DIRNAME/../oidc" && npm ci --silent --no-audit --no-fund) >&3 2>&1 ||
			{ echo "npm ci in tests/oidc failed" >&2; return 1; }
	fi
	export STACK=$BATS_FILE_TMPDIR/stack OPKEYS=$BATS_FILE_TMPDIR/opkeys
	mkdir -p "$STACK"
	export JR_AGENT_EXTRA_CONF="oidc_min_refresh_s = 1"
	jr_stack_start "$STACK"
	export OP_PORT
	OP_PORT=$(jr_free_port)
	op node provider.mjs keygen "$OPKEYS" k1
	op node provider.mjs keygen "$OPKEYS" k2
	op_start k1
	node "$BATS_TEST_DIRNAME/jwt-mint.mjs" keygen "$BATS_FILE_TMPDIR/mint"
	jr_ctl tenant add acme >/dev/null
	jr_ctl model add test-model be_mock >/dev/null
	psql -X -q -At -v ON_ERROR_STOP=1 -d "$JR_DATABASE" -v url="http://127.0.0.1:$OP_PORT" <<'SQL'
INSERT INTO jairouter.roles (name, allow) VALUES ('user', '{service:chat,model:*}');
INSERT INTO jairouter.jwt_issuers (name, issuer, discovery_url, algorithms, audience, tenant_id,
		role_claim, role_map, introspection_url, introspection_client_id, introspection_client_secret)
	SELECT 'op', :'url', :'url' || '/.well-known/openid-configuration', '{RS256}', 'jairouter', id,
		'scope', '{"gw.chat": "user"}', :'url' || '/token/introspection', 'gw-test',
		'gw-test-secret-0123456789abcdef'
	FROM jairouter.tenants WHERE name = 'acme';
SQL
	BATS_TEST_TMPDIR=$BATS_FILE_TMPDIR eventually 15 token_status "$(op_token)" 200
}

teardown_file() {
	# Skipped before anything started: nothing to stop.
	if [[ -n ${STACK:-} ]]; then
		jr_stop_pid "$STACK" op TERM
		stack_teardown_file
	fi
}

op() {
	(cd "$BATS_TEST_DIRNAME/../oidc" && "$@")
}

# op_start K1[,K2]: the provider with those keys (the first signs).
op_start() {
	op jr_spawn "$STACK" op node provider.mjs serve "$OP_PORT" "$OPKEYS" "$1"
	jr_wait_tcp 127.0.0.1 "$OP_PORT" 20
}

# op_token [SCOPE] [RESOURCE]: a client-credentials access token (a JWT for audience
# jairouter; opaque for resource urn:opaque).
op_token() {
	curl -fsS --max-time 10 -u gw-test:gw-test-secret-0123456789abcdef -d grant_type=client_credentials \
		-d scope="${1:-gw.chat}" -d resource="${2:-urn:jairouter}" "http://127.0.0.1:$OP_PORT/token" |
		node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>process.stdout.write(JSON.parse(s).access_token))'
}

token_status() {
	req -X POST -H 'content-type: application/json' -H "authorization: Bearer $1" \
		--data-binary "$(chat_body test-model)" "$CHAT_PATH"
	expect_status "$2"
}

kid_of() {
	node -e 'process.stdout.write(JSON.parse(Buffer.from(process.argv[1].split(".")[0], "base64url")).kid)' "$1"
}

# refresh_fails: a token with an unknown kid (refused) asks for a refresh, which fails
# while the provider is down, and the agent says so.
refresh_fails() {
	local t
	t=$(date +%s)
	token_status "$(node "$BATS_TEST_DIRNAME/jwt-mint.mjs" sign "$BATS_FILE_TMPDIR/mint" RS256 k9 \
		"{\"iss\":\"http://127.0.0.1:$OP_PORT\",\"aud\":\"jairouter\",\"exp\":$((t + 60))}")" 401
	grep -q 'oidc: issuer .* failed' "$STACK/agent.log"
}

@test "an access token of the OpenID provider is accepted; its scope maps to a role" {
	local tok
	tok=$(op_token)
	[[ $(kid_of "$tok") == k1 ]]
	token_status "$tok" 200
	# a token without the mapped scope has no role: 403 naming the permission
	token_status "$(op_token gw.admin)" 403
	expect_openai_error 403 permission_error permission_denied
}

@test "key rotation at the provider: tokens signed with the new key are accepted without a restart" {
	local old new
	old=$(op_token)
	jr_stop_pid "$STACK" op TERM
	op_start k2,k1
	new=$(op_token)
	[[ $(kid_of "$new") == k2 ]]
	# The first sight of kid k2 asks for a refresh; it is accepted once the JWKS is fetched.
	eventually 15 token_status "$new" 200
	token_status "$old" 200
}

@test "opaque tokens are checked by introspection; inactive ones are refused" {
	local tok
	tok=$(op_token gw.chat urn:opaque)
	[[ $tok != *.*.* ]]
	token_status "$tok" 200
	token_status "$tok" 200 # cached
	token_status "not-a-token-the-provider-knows" 401
	expect_openai_error 401 authentication_error invalid_token
	[[ $(json 'b.error.message') == *"not active"* ]]
	# the client authenticated itself: a wrong secret makes introspection fail (503 by default)
	psql -X -q -At -d "$JR_DATABASE" -c "UPDATE jairouter.jwt_issuers SET introspection_client_secret = 'wrong'"
	within_ms 2000 token_status "$(op_token gw.chat urn:opaque)" 503
	expect_openai_error 503 server_error identity_provider_unavailable
	psql -X -q -At -d "$JR_DATABASE" -c "UPDATE jairouter.jwt_issuers SET introspection_failure = 'reject'"
	within_ms 2000 token_status "$(op_token gw.chat urn:opaque)" 401
	psql -X -q -At -d "$JR_DATABASE" -c "UPDATE jairouter.jwt_issuers SET introspection_failure = 'unavailable',
		introspection_client_secret = 'gw-test-secret-0123456789abcdef'"
	within_ms 2000 token_status "$(op_token gw.chat urn:opaque)" 200
}

@test "the provider down: the keys already fetched keep verifying new tokens" {
	local tok
	tok=$(op_token)
	jr_stop_pid "$STACK" op TERM
	token_status "$tok" 200
	# an unknown kid now asks for a refresh that fails: the old keys stay
	eventually 10 refresh_fails
	token_status "$tok" 200
	op_start k2,k1
}
