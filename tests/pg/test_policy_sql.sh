#!/usr/bin/env bash
# Tenant policy in SQL (sql/004_tenant_policy.sql) and its jairouterctl commands, against
# the database in $JAIROUTER_DATABASE (migrated, empty): grants and the access rule, key
# restrictions and rotation, credentials, the audit log, notifications, exit codes.
# Prints "ok NAME" / "not ok NAME" per check and "N passed, N failed" last.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export JAIROUTER_ACTOR=policy-test

# shellcheck source=tests/pg/checks.bash
source tests/pg/checks.bash

# exits_with CODE TEXT CMD...: CMD exits with CODE and says TEXT on stderr.
exits_with() {
	local code=$1 text=$2 rc=0
	shift 2
	"$@" >"$tmp/f.out" 2>"$tmp/f.err" || rc=$?
	cat "$tmp/f.out" "$tmp/f.err"
	((rc == code)) && grep -qF -- "$text" "$tmp/f.err"
}

may_use() {
	q -c "SELECT jairouter.tenant_may_use(jairouter.tenant_id('$1'), jairouter.model_id('$2'))"
}

ctl tenant add t1 >/dev/null
ctl tenant add t2 >/dev/null
ctl model add pub be_a >/dev/null
ctl model add priv be_a >/dev/null
ctl model add other be_b >/dev/null

# ---- migration ------------------------------------------------------------------------

check migration_004_reapplies q -1 -f sql/004_tenant_policy.sql

# ---- visibility, groups, grants ------------------------------------------------------

t_visibility() {
	ctl model visibility priv private | grep -q 'model priv is private' &&
		equals "$(may_use t1 pub)" t && equals "$(may_use t1 priv)" f
}
check visibility_private_hidden t_visibility
check visibility_bad_value exits_with 1 'invalid visibility "secret"' ctl model visibility priv secret

t_grants() {
	ctl grant allow t1 priv >/dev/null && equals "$(may_use t1 priv)" t &&
		equals "$(may_use t2 priv)" f &&
		ctl group add g1 >/dev/null && ctl group add-model g1 priv >/dev/null &&
		ctl group add-model g1 pub >/dev/null &&
		ctl grant deny t1 @g1 >/dev/null &&
		equals "$(may_use t1 priv)" f && equals "$(may_use t1 pub)" f &&
		ctl group remove-model g1 pub >/dev/null && equals "$(may_use t1 pub)" t &&
		ctl grant allow t1 @g1 >/dev/null && equals "$(may_use t1 priv)" t &&
		equals "$(q -c "SELECT count(*) FROM jairouter.tenant_grants WHERE tenant_id = jairouter.tenant_id('t1')")" 2
}
check grants_deny_wins_and_upsert t_grants
check grant_list ctl grant list t1
check grant_remove_missing exits_with 3 'tenant "t2" has no grant on "priv"' ctl grant remove t2 priv
check grant_unknown_group exits_with 3 'model group "nope" not found' ctl grant allow t1 @nope
check grant_unknown_model exits_with 3 'model "nope" not found' ctl grant deny t1 nope
check group_duplicate exits_with 4 'model group "g1" already exists' ctl group add g1
check group_bad_name exits_with 1 'invalid group name' ctl group add 'a@b'
check grant_usage exits_with 2 'usage: grant allow TENANT MODEL|@GROUP' ctl grant allow t1

t_cascade() {
	local id
	ctl model add doomed be_a >/dev/null && ctl grant deny t2 doomed >/dev/null &&
		ctl group add-model g1 doomed >/dev/null &&
		id=$(q -c "SELECT jairouter.model_id('doomed')") &&
		q -c "DELETE FROM jairouter.models WHERE name = 'doomed'" &&
		equals "$(q -c "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM jairouter.audit_log
			WHERE op = 'DELETE' AND (old_row ->> 'model_id')::bigint = $id")" model_group_members,tenant_grants
}
check model_delete_cascades_audited t_cascade

# ---- tenant policy ----------------------------------------------------------------------

t_services() {
	ctl tenant services t2 chat,embeddings >/dev/null &&
		equals "$(q -c "SELECT array_to_string(allowed_services, ',') FROM jairouter.tenants WHERE name = 't2'")" chat,embeddings &&
		ctl tenant services t2 all >/dev/null &&
		equals "$(q -c "SELECT allowed_services IS NULL FROM jairouter.tenants WHERE name = 't2'")" t
}
check tenant_services t_services
check tenant_services_unknown exits_with 1 'unknown service type "chats"' ctl tenant services t2 chats

t_ip_allow() {
	ctl tenant ip-allow t2 '10.0.0.0/8, 2001:db8::/32' >/dev/null &&
		equals "$(q -c "SELECT array_to_string(ip_allow, ',') FROM jairouter.tenants WHERE name = 't2'")" 10.0.0.0/8,2001:db8::/32 &&
		ctl tenant ip-allow t2 any >/dev/null &&
		equals "$(q -c "SELECT ip_allow IS NULL FROM jairouter.tenants WHERE name = 't2'")" t
}
check tenant_ip_allow t_ip_allow
check tenant_ip_allow_host_bits exits_with 1 'invalid CIDR "10.0.0.1/8"' ctl tenant ip-allow t2 10.0.0.1/8
check tenant_ip_allow_garbage exits_with 1 'invalid CIDR "nonsense"' ctl tenant ip-allow t2 nonsense

t_settings() {
	ctl tenant settings t1 '{"on_error":"fail-open","masking":true}' >/dev/null &&
		ctl tenant settings t1 '{"masking":null}' >/dev/null &&
		equals "$(ctl tenant settings t1)" '{"on_error": "fail-open"}'
}
check tenant_settings_merge t_settings
check tenant_settings_unknown_key exits_with 1 'invalid settings' ctl tenant settings t1 '{"colour":"red"}'
check tenant_settings_bad_on_error exits_with 1 'invalid settings' ctl tenant settings t1 '{"on_error":"maybe"}'
check tenant_labels_bad_name exits_with 1 'invalid labels' ctl tenant labels t1 '{"Team-Name":"x"}'
check tenant_show ctl tenant show t1
check tenant_show_missing exits_with 3 'tenant "nobody" not found' ctl tenant show nobody

# ---- keys -----------------------------------------------------------------------------

t_key_restricted() {
	local key
	key=$(ctl key issue t1 --name bot --models pub,priv --ip-allow 192.0.2.0/24 2>/dev/null) &&
		equals "$(q -c "SELECT array_to_string(models, ',') || ' ' || array_to_string(ip_allow, ',')
			FROM jairouter.api_keys WHERE prefix = '${key:0:11}'")" 'pub,priv 192.0.2.0/24'
}
check key_issue_restricted t_key_restricted
check key_issue_unknown_model exits_with 3 'model "ghost" not found' ctl key issue t1 --models ghost

t_rotate() {
	local old new row
	old=$(ctl key issue t2 --name rot --models pub 2>/dev/null)
	new=$(ctl key rotate "${old:0:11}" --overlap 10m 2>"$tmp/rot.err")
	[[ $new =~ ^jr-[0-9a-f]{64}$ && $new != "$old" ]] || return 1
	grep -q "replaces ${old:0:11}" "$tmp/rot.err" || return 1
	row=$(q -c "SELECT n.tenant_id = o.tenant_id AND n.name = o.name AND n.models = o.models
		AND n.expires_at IS NULL AND o.status = 'active'
		AND o.expires_at BETWEEN now() + interval '9 minutes' AND now() + interval '11 minutes'
		FROM jairouter.api_keys n JOIN jairouter.api_keys o ON o.id = n.rotated_from
		WHERE n.key_hash = sha256(convert_to('$new', 'UTF8'))")
	equals "$row" t
}
check key_rotate_overlap t_rotate

t_rotate_keeps_earlier_expiry() {
	local old
	old=$(ctl key issue t2 --expires "$(date -u -d '+5 minutes' '+%Y-%m-%d %H:%M:%SZ')" 2>/dev/null)
	ctl key rotate "${old:0:11}" --overlap 1d >/dev/null 2>&1 &&
		equals "$(q -c "SELECT expires_at < now() + interval '6 minutes' FROM jairouter.api_keys WHERE prefix = '${old:0:11}'")" t
}
check key_rotate_keeps_earlier_expiry t_rotate_keeps_earlier_expiry

t_rotate_revoked() {
	local k
	k=$(ctl key issue t2 2>/dev/null)
	ctl key revoke "${k:0:11}" >/dev/null && exits_with 1 'is not active; issue a new key instead' ctl key rotate "${k:0:11}"
}
check key_rotate_revoked_refused t_rotate_revoked
check key_rotate_bad_overlap exits_with 1 'overlap must be zero or positive' ctl key rotate 1 --overlap -1h
check key_rotate_unknown exits_with 3 'key not found' ctl key rotate jr-00000000

t_expire() {
	local k
	k=$(ctl key issue t2 2>/dev/null)
	ctl key expire "${k:0:11}" now | grep -q 'expires at' &&
		ctl key expire "${k:0:11}" never | grep -q 'never expires'
}
check key_expire t_expire
check key_help ctl key --help

# ---- credentials ------------------------------------------------------------------------

t_slot() {
	local a b
	a=$(q -c "SELECT jairouter.credential_slot('backend', 'be_x')")
	b=$(q -c "SELECT jairouter.credential_slot('backend', 'be_x')")
	[[ $a != "$b" ]] &&
		q -c "SELECT jairouter.set_credential($b, 'backend', 'be_x', 'authorization', 'bearer',
			'k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')" >/dev/null &&
		equals "$(q -c "SELECT jairouter.credential_slot('backend', 'be_x')")" "$b" &&
		equals "$(q -c "SELECT jairouter.credential_aad($b, 'model', 'priv', 'x-api-key', 'raw')")" \
			"jairouter-credential:v1:$b:model:$(q -c "SELECT jairouter.model_id('priv')"):x-api-key:raw"
}
check credential_slot_and_aad t_slot
check credential_malformed exits_with 1 'malformed sealed credential' \
	q -c "SELECT jairouter.set_credential(99, 'backend', 'be_y', 'authorization', 'bearer', 'k1:short')"
check credential_bad_header exits_with 1 'invalid header "cookie"' \
	q -c "SELECT jairouter.credential_aad(1, 'backend', 'be_y', 'cookie', 'raw')"
check credential_list_no_secret bash -c '! scripts/jairouterctl credential list | grep -q AAAAAAAA'
check credential_delete_missing exits_with 3 'no credential for backend "be_none"' ctl credential delete be_none
check credential_set_usage exits_with 2 '--header must be' ctl credential set be_x --scheme raw

# ---- audit and notifications --------------------------------------------------------------

t_audit() {
	equals "$(q -c "SELECT count(*) FROM jairouter.audit_log WHERE new_row ? 'key_hash' OR old_row ? 'key_hash'
		OR new_row ? 'ciphertext' OR old_row ? 'ciphertext'")" 0 &&
		equals "$(q -c "SELECT DISTINCT actor || '/' || app FROM jairouter.audit_log WHERE table_name = 'tenant_grants'")" \
			policy-test/jairouterctl &&
		equals "$(q -c "SELECT count(DISTINCT table_name) FROM jairouter.audit_log")" 7
}
check audit_redacted_with_actor t_audit

t_audit_noop_update() {
	local before
	before=$(q -c "SELECT count(*) FROM jairouter.audit_log")
	q -c "UPDATE jairouter.tenant_grants SET effect = effect" &&
		equals "$(q -c "SELECT count(*) FROM jairouter.audit_log")" "$before"
}
check audit_skips_noop_updates t_audit_noop_update
check audit_cli bash -c 'scripts/jairouterctl audit --limit 3 --table api_keys | grep -q api_keys'
check audit_bad_limit exits_with 2 '--limit needs a number' ctl audit --limit many

t_notify() {
	"$pg_bin/psql" -X -q -d "$JAIROUTER_DATABASE" -c "LISTEN jairouter_changes" \
		-c "SELECT jairouter.grant_model('t2', 'other', 'deny')" \
		-c "SELECT jairouter.group_add_model('g1', 'other')" \
		-c "UPDATE jairouter.provider_credentials SET scheme = 'raw'" -c "SELECT 1" >"$tmp/n" 2>&1
	grep -qE 'payload "tenant_grants:I:[0-9]+"' "$tmp/n" &&
		grep -qE 'payload "model_group_members:I:[0-9]+"' "$tmp/n" &&
		grep -qE 'payload "provider_credentials:U:[0-9]+"' "$tmp/n"
}
check notify_new_tables t_notify
check help_lists_exit_codes bash -c 'scripts/jairouterctl help | grep -q "3 not found"'

echo "$passed passed, $failed failed"
((failed == 0))
