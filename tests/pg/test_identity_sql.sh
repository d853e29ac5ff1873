#!/usr/bin/env bash
# Identity in SQL (sql/007_identity.sql, docs/identity.md): the checks on issuers, keys,
# roles and permissions, the change log without key material or secrets, retention, and
# the change notifications the agent listens to. Run by tests/pg/run.sh against a migrated
# database.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=tests/pg/checks.bash
source tests/pg/checks.bash

ctl tenant add acme >/dev/null
TID=$(q -c "SELECT id FROM jairouter.tenants WHERE name = 'acme'")
ISS="INSERT INTO jairouter.jwt_issuers (name, issuer, algorithms, tenant_id, tenant_claim)"

check issuer_fixed_tenant accepted "$ISS VALUES ('corp', 'https://idp', '{RS256,ES256}', $TID, NULL)"
check issuer_claim_tenant accepted "$ISS VALUES ('multi', 'https://multi', '{HS256}', NULL, 'org')"
check issuer_needs_a_tenant refused "$ISS VALUES ('none', 'https://none', '{RS256}', NULL, NULL)"
check issuer_not_both_tenants refused "$ISS VALUES ('both', 'https://both', '{RS256}', $TID, 'org')"
check issuer_alg_none_refused refused "$ISS VALUES ('x1', 'https://x1', '{none}', $TID, NULL)"
check issuer_no_algorithms refused "$ISS VALUES ('x2', 'https://x2', '{}', $TID, NULL)"
check issuer_duplicate_iss refused "$ISS VALUES ('x3', 'https://idp', '{RS256}', $TID, NULL)"
check issuer_bad_claim_path refused "$ISS VALUES ('x4', 'https://x4', '{RS256}', NULL, 'a..b')"
check issuer_leeway_bounded refused "UPDATE jairouter.jwt_issuers SET leeway_s = 601 WHERE name = 'corp'"
check issuer_discovery_http accepted "UPDATE jairouter.jwt_issuers SET discovery_url = 'https://idp/.well-known/openid-configuration' WHERE name = 'corp'"
check issuer_discovery_not_ftp refused "UPDATE jairouter.jwt_issuers SET discovery_url = 'ftp://idp/x' WHERE name = 'corp'"
check issuer_failure_policy refused "UPDATE jairouter.jwt_issuers SET introspection_failure = 'allow' WHERE name = 'corp'"

check permission_valid_ones bash -c "[[ \$(q -c \"SELECT bool_and(jairouter.permission_valid(p)) FROM unnest(ARRAY['*','service:*','service:chat','model:gpt-4o','group:cheap','usage:read','audit:read','admin']) p\") == t ]]"
check permission_invalid_ones bash -c "[[ \$(q -c \"SELECT bool_or(jairouter.permission_valid(p)) FROM unnest(ARRAY['service:bogus','root','model:','model:a b','usage:write']) p\") == f ]]"
check role_global accepted "INSERT INTO jairouter.roles (name, allow) VALUES ('user', '{service:chat,model:*}')"
check role_tenant_same_name accepted "INSERT INTO jairouter.roles (tenant_id, name, allow, deny) VALUES ($TID, 'user', '{*}', '{model:big}')"
check role_duplicate_global refused "INSERT INTO jairouter.roles (name) VALUES ('user')"
check role_bad_permission refused "INSERT INTO jairouter.roles (name, allow) VALUES ('bad', '{service:bogus}')"

# The change log: every identity table is audited, without key material or secrets.
q -v k='{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}' >/dev/null <<'SQL'
INSERT INTO jairouter.jwt_issuer_keys (issuer_id, kid, jwk)
SELECT id, 'h1', :'k' FROM jairouter.jwt_issuers WHERE name = 'multi';
UPDATE jairouter.jwt_issuers SET introspection_url = 'https://multi/introspect',
	introspection_client_id = 'gw', introspection_client_secret = 'top-secret-value' WHERE name = 'multi';
SQL
check change_log_has_key_row bash -c "[[ \$(q -c \"SELECT count(*) FROM jairouter.audit_log WHERE table_name = 'jwt_issuer_keys'\") -ge 1 ]]"
t_change_log_clean() {
	q -c 'SELECT old_row::text, new_row::text FROM jairouter.audit_log' >"$tmp/log"
	grep -q 'introspection_url' "$tmp/log" # the rows are there ...
	if grep -q 'c2VjcmV0' "$tmp/log" || grep -q 'top-secret-value' "$tmp/log"; then
		return 1 # ... without the key or the client secret
	fi
}
check change_log_without_key_or_secret t_change_log_clean

# Revocations and their notifications.
check revocation_row accepted "INSERT INTO jairouter.revoked_subjects (issuer_id, subject) SELECT id, 'alice' FROM jairouter.jwt_issuers WHERE name = 'corp'"
check revocation_unique refused "INSERT INTO jairouter.revoked_subjects (issuer_id, subject) SELECT id, 'alice' FROM jairouter.jwt_issuers WHERE name = 'corp'"
check notify_trigger_installed bash -c "[[ \$(q -c \"SELECT count(*) FROM pg_trigger WHERE tgname IN ('jwt_issuers_notify','jwt_issuer_keys_notify','revoked_tokens_notify','revoked_subjects_notify','roles_notify','api_key_roles_notify')\") == 6 ]]"

# Retention.
q -c "INSERT INTO jairouter.security_audit (at, event, reason) VALUES (now() - interval '100 days', 'auth_failure', 'old'), (now(), 'auth_failure', 'new')" >/dev/null
q -c "INSERT INTO jairouter.revoked_tokens (issuer_id, jti, expires_at) SELECT id, 'gone', now() - interval '3 days' FROM jairouter.jwt_issuers WHERE name = 'corp'" >/dev/null
t_purge() {
	equals "$(q -c "SELECT security_rows || '/' || revoked_rows FROM jairouter.purge_identity(interval '90 days')")" "1/1"
	equals "$(q -c "SELECT string_agg(reason, ',') FROM jairouter.security_audit")" "new"
}
check purge_identity t_purge

# Security audit batches are recorded once: a batch the agent sends again after a lost
# connection (same id) adds no row.
BATCH='[{"at":1700000000.5,"node":"n1","event":"auth_failure","reason":"unknown_key","client":"192.0.2.7","key_prefix":"jr-abcd","tenant_id":0,"status":401},{"at":1700000001,"node":"n1","event":"auth_failure","reason":"expired_key","client":null,"tenant_id":0,"status":401}]'
record_batch() {
	q -v b="$BATCH" -v id="$1" <<<"SELECT jairouter.record_security_audit(:'id', :'b');"
}
t_audit_batch_once() {
	local before
	before=$(q -c "SELECT count(*) FROM jairouter.security_audit")
	equals "$(record_batch 'n1:42:1700000000:1')" 2
	equals "$(record_batch 'n1:42:1700000000:1')" 0
	equals "$(q -c "SELECT count(*) - $before FROM jairouter.security_audit")" 2
	equals "$(q -c "SELECT client || '/' || key_prefix || '/' || coalesce(tenant_id::text, 'none') FROM jairouter.security_audit WHERE reason = 'unknown_key'")" "192.0.2.7/jr-abcd/none"
	equals "$(record_batch 'n1:42:1700000000:2')" 2
}
check audit_batch_recorded_once t_audit_batch_once
check audit_batch_needs_id refused "SELECT jairouter.record_security_audit('', '[]')"

echo "$passed passed, $failed failed"
((failed == 0))
