#!/usr/bin/env bash
# jairouterctl and the SQL functions end to end, against the database in
# $JAIROUTER_DATABASE (migrated, empty). tests/pg/run.sh provides one.
# Prints "ok NAME" / "not ok NAME" per check and "N passed, N failed" last.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

# shellcheck source=tests/pg/checks.bash
source tests/pg/checks.bash

# ---- tenants --------------------------------------------------------------------------

t_tenant_add() {
	ctl tenant add acme | grep -q 'tenant acme added (id [0-9]*)' &&
		equals "$(q -c "SELECT status FROM jairouter.tenants WHERE name = 'acme'")" active
}
check tenant_add t_tenant_add
check tenant_add_duplicate fails_with 'tenant "acme" already exists' ctl tenant add acme
check tenant_add_empty fails_with 'invalid tenant name' ctl tenant add ''
check tenant_add_blank_padded fails_with 'invalid tenant name' ctl tenant add ' acme2'
check tenant_add_control_char fails_with 'invalid tenant name' ctl tenant add $'a\tb'
check tenant_add_too_long fails_with 'invalid tenant name' ctl tenant add "$(printf 'a%.0s' {1..64})"
check tenant_add_63_bytes ctl tenant add "$(printf 'b%.0s' {1..63})"
check tenant_add_missing_arg fails_with 'usage: tenant add NAME' ctl tenant add

t_tenant_disable_enable() {
	ctl tenant disable acme | grep -q 'tenant acme disabled' &&
		equals "$(q -c "SELECT status FROM jairouter.tenants WHERE name = 'acme'")" disabled &&
		ctl tenant enable acme | grep -q 'tenant acme active' &&
		equals "$(q -c "SELECT status FROM jairouter.tenants WHERE name = 'acme'")" active
}
check tenant_disable_enable t_tenant_disable_enable
check tenant_disable_unknown fails_with 'tenant "nope" not found' ctl tenant disable nope
check tenant_list ctl tenant list

t_updated_at() {
	local before after
	before=$(q -c "SELECT updated_at FROM jairouter.tenants WHERE name = 'acme'")
	ctl tenant disable acme >/dev/null && ctl tenant enable acme >/dev/null
	after=$(q -c "SELECT updated_at FROM jairouter.tenants WHERE name = 'acme'")
	[[ $before != "$after" ]]
}
check tenant_updated_at_moves t_updated_at

# ---- keys -----------------------------------------------------------------------------

t_key_issue() {
	local hash_ok
	ctl key issue acme --name ci >"$tmp/key" 2>"$tmp/key.err" || return 1
	key=$(cat "$tmp/key")
	# stdout: the key alone; stderr: the one-time note, with the prefix only.
	[[ $(wc -l <"$tmp/key") == 1 && $key =~ ^jr-[0-9a-f]{64}$ ]] || return 1
	grep -q 'cannot be shown again' "$tmp/key.err" || return 1
	grep -qF "${key:0:11}" "$tmp/key.err" && ! grep -qF "$key" "$tmp/key.err" || return 1
	hash_ok=$(q -v key="$key" <<'SQL'
SELECT count(*) FROM jairouter.api_keys
WHERE key_hash = sha256(convert_to(:'key', 'UTF8')) AND prefix = left(:'key', 11)
	AND name = 'ci' AND status = 'active' AND expires_at IS NULL;
SQL
	)
	equals "$hash_ok" 1
}
check key_issue_prints_once_stores_hash t_key_issue

# Nowhere in the schema's data (a full dump) does the clear key appear.
t_key_not_stored() {
	"$pg_bin/pg_dump" --data-only --schema=jairouter -d "$JAIROUTER_DATABASE" >"$tmp/dump" &&
		[[ -s $tmp/dump ]] && ! grep -qF "$key" "$tmp/dump" &&
		! grep -qF "${key:3}" "$tmp/dump" && grep -qF "${key:0:11}" "$tmp/dump"
}
check key_not_stored_in_clear t_key_not_stored

t_key_list() {
	ctl key list acme >"$tmp/list" && grep -qF "${key:0:11}" "$tmp/list" &&
		! grep -qF "$key" "$tmp/list" && ctl key list | grep -qF "${key:0:11}"
}
check key_list_prefixes_only t_key_list
check key_list_unknown_tenant fails_with 'tenant "nope" not found' ctl key list nope

t_key_revoke_prefix() {
	ctl key revoke "${key:0:11}" | grep -q 'revoked' &&
		equals "$(q -v p="${key:0:11}" <<<"SELECT status || ' ' || (revoked_at IS NOT NULL)
			FROM jairouter.api_keys WHERE prefix = :'p'")" 'revoked true' &&
		ctl key revoke "${key:0:11}" >/dev/null # again: no change, no error
}
check key_revoke_by_prefix t_key_revoke_prefix
check key_revoked_stays_revoked fails_with 'is revoked' \
	q -c "UPDATE jairouter.api_keys SET status = 'active', revoked_at = NULL WHERE status = 'revoked'"

t_key_revoke_id() {
	local k id
	k=$(ctl key issue acme 2>/dev/null)
	id=$(q -v k="$k" <<<"SELECT id FROM jairouter.api_keys WHERE key_hash = sha256(convert_to(:'k', 'UTF8'))")
	ctl key revoke "$id" >/dev/null &&
		equals "$(q -c "SELECT status FROM jairouter.api_keys WHERE id = $id")" revoked
}
check key_revoke_by_id t_key_revoke_id

t_key_revoke_ambiguous() {
	q -c "INSERT INTO jairouter.api_keys (tenant_id, prefix, key_hash)
		SELECT jairouter.tenant_id('acme'), 'jr-00000000', sha256(convert_to(i::text, 'UTF8'))
		FROM generate_series(1, 2) i" &&
		fails_with 'matches 2 keys' ctl key revoke jr-00000000
}
check key_revoke_ambiguous_prefix t_key_revoke_ambiguous
check key_revoke_bad_ref fails_with 'invalid key reference' ctl key revoke "x' OR true --"
check key_revoke_unknown fails_with 'key not found' ctl key revoke jr-ffffffff
check key_issue_unknown_tenant fails_with 'tenant "nope" not found' ctl key issue nope
check key_issue_past_expiry fails_with 'not in the future' ctl key issue acme --expires '2000-01-01'
check key_issue_bad_expiry fails_with 'invalid input syntax' ctl key issue acme --expires 'soon'
check key_issue_bad_option fails_with 'usage: key issue' ctl key issue acme extra

t_key_expiry() {
	ctl key issue acme --expires '2030-01-01 00:00Z' >"$tmp/k2" 2>/dev/null &&
		equals "$(q -v k="$(cat "$tmp/k2")" <<<"SELECT extract(epoch FROM expires_at)::bigint
			FROM jairouter.api_keys WHERE key_hash = sha256(convert_to(:'k', 'UTF8'))")" 1893456000
}
check key_issue_with_expiry t_key_expiry

# ---- models ---------------------------------------------------------------------------

t_model() {
	ctl model add gpt-4o be_openai | grep -q 'model gpt-4o -> be_openai added' &&
		ctl model list | grep -q 'be_openai' &&
		ctl model disable gpt-4o >/dev/null &&
		equals "$(q -c "SELECT status FROM jairouter.models WHERE name = 'gpt-4o'")" disabled &&
		ctl model enable gpt-4o >/dev/null &&
		equals "$(q -c "SELECT status FROM jairouter.models WHERE name = 'gpt-4o'")" active
}
check model_add_list_disable_enable t_model
check model_add_duplicate fails_with 'model "gpt-4o" already exists' ctl model add gpt-4o be_x
check model_add_bad_backend fails_with 'invalid backend name' ctl model add m2 'be x;'
check model_add_long_name fails_with 'invalid model name' ctl model add "$(printf 'm%.0s' {1..128})" be
check model_disable_unknown fails_with 'model "nope" not found' ctl model disable nope

# ---- injection-looking input is data ----------------------------------------------------

t_literal_names() {
	local n1="x'; DROP TABLE jairouter.tenants; --" n2=":'name' :\"name\" \\g" n3="\$(touch $tmp/pwned)"
	local m1="m\"); DELETE FROM jairouter.models; --"
	ctl tenant add "$n1" >/dev/null && ctl tenant add "$n2" >/dev/null &&
		ctl tenant add "$n3" >/dev/null && ctl model add "$m1" be_lit >/dev/null &&
		ctl key issue "$n1" >/dev/null 2>&1 || return 1
	[[ ! -e $tmp/pwned ]] || return 1
	equals "$(q -v a="$n1" -v b="$n2" -v c="$n3" <<<"SELECT count(*) FROM jairouter.tenants
		WHERE name IN (:'a', :'b', :'c')")" 3 &&
		equals "$(q -v m="$m1" <<<"SELECT backend FROM jairouter.models WHERE name = :'m'")" be_lit &&
		equals "$(q -c "SELECT count(*) > 1 FROM jairouter.models")" t &&
		ctl key list "$n1" | grep -q 'jr-'
}
check injection_names_stored_literally t_literal_names

# sql/014: the Vertex AI provider kinds are accepted; others still are not.
t_vertex_kinds() {
	ctl model add vx-gemini-sql be_vx_sql --provider vertex_gemini >/dev/null &&
		ctl model add vx-claude-sql be_vx_sql --provider vertex_anthropic >/dev/null &&
		equals "$(q -c "SELECT string_agg(provider, ',' ORDER BY name) FROM jairouter.models
			WHERE name IN ('vx-gemini-sql', 'vx-claude-sql')")" vertex_anthropic,vertex_gemini &&
		! ctl model add vx-bad-sql be_vx_sql --provider vertex_llama >/dev/null 2>&1
}
check vertex_provider_kinds t_vertex_kinds

# sql/016: the files_model setting is a model name; api_objects keeps an object's JSON
# (at most 16 KiB).
t_files_setting() {
	ctl tenant add files-sql >/dev/null &&
		ctl tenant settings files-sql '{"files_model":"gpt-files"}' >/dev/null &&
		equals "$(q -c "SELECT settings->>'files_model' FROM jairouter.tenants WHERE name = 'files-sql'")" gpt-files &&
		! ctl tenant settings files-sql '{"files_model":42}' >/dev/null 2>&1 &&
		! ctl tenant settings files-sql '{"files_model":""}' >/dev/null 2>&1 &&
		! q -c "SELECT jairouter.set_tenant_settings('files-sql', jsonb_build_object('files_model', 'a' || chr(10)))" >/dev/null 2>&1 &&
		ctl tenant settings files-sql '{"files_model":null}' >/dev/null &&
		equals "$(q -c "SELECT settings ? 'files_model' FROM jairouter.tenants WHERE name = 'files-sql'")" f
}
check files_model_setting t_files_setting

t_object_json() {
	q -c "INSERT INTO jairouter.api_objects (kind, object_id, tenant_id, object)
		SELECT 'file', 'file-sql-1', id, '{\"id\":\"file-sql-1\"}' FROM jairouter.tenants WHERE name = 'files-sql'" &&
		equals "$(q -c "SELECT object::json->>'id' FROM jairouter.api_objects WHERE object_id = 'file-sql-1'")" file-sql-1 &&
		! q -c "UPDATE jairouter.api_objects SET object = repeat('x', 16385) WHERE object_id = 'file-sql-1'" >/dev/null 2>&1
}
check api_objects_object_json t_object_json

# sql/016: bill_batches bills a batch once (given twice in one call, or again by another
# agent), at the model's prices times batch_price_factor, into usage_daily and
# usage_hourly; open_batches lists the recorded batches not final and not billed.
t_bill_batches() {
	local args
	ctl model add batch-sql-model be_batch_sql --price-in 2 --price-out 8 >/dev/null || return 1
	args="'{b1,b1}'::text[], ARRAY[t.id, t.id], '{7,7}'::bigint[], ARRAY[m.id, m.id], '{3,3}'::bigint[],
		'{1000,1000}'::bigint[], '{500,500}'::bigint[], '{f,f}'::boolean[]"
	equals "$(q -c "SELECT jairouter.bill_batches($args) FROM jairouter.tenants t, jairouter.models m
		WHERE t.name = 'files-sql' AND m.name = 'batch-sql-model'")" 1 &&
		equals "$(q -c "SELECT jairouter.bill_batches($args) FROM jairouter.tenants t, jairouter.models m
			WHERE t.name = 'files-sql' AND m.name = 'batch-sql-model'")" 0 &&
		equals "$(q -c "SELECT requests || ' ' || prompt_tokens || ' ' || completion_tokens || ' ' || estimated_requests || ' ' || cost
			FROM jairouter.usage_by_tenant_model_day WHERE tenant = 'files-sql' AND model = 'batch-sql-model'")" '3 1000 500 0 0.003000' &&
		equals "$(q -c "SELECT sum(prompt_tokens) FROM jairouter.usage_hourly h JOIN jairouter.tenants t ON t.id = h.tenant_id
			WHERE t.name = 'files-sql'")" 1000 &&
		q -c "UPDATE jairouter.usage_settings SET batch_price_factor = 1" &&
		equals "$(q -c "SELECT jairouter.bill_batches('{b2}', ARRAY[t.id], '{7}', ARRAY[m.id], '{1}', '{1000}', '{500}', '{t}')
			FROM jairouter.tenants t, jairouter.models m WHERE t.name = 'files-sql' AND m.name = 'batch-sql-model'")" 1 &&
		equals "$(q -c "SELECT cost || ' ' || estimated FROM jairouter.batch_usage WHERE batch_id = 'b2'")" '0.006000 true' &&
		equals "$(q -c "SELECT estimated_requests FROM jairouter.usage_by_tenant_model_day WHERE tenant = 'files-sql' AND model = 'batch-sql-model'")" 1 &&
		q -c "UPDATE jairouter.usage_settings SET batch_price_factor = 0.5" &&
		! q -c "UPDATE jairouter.usage_settings SET batch_price_factor = -1" >/dev/null 2>&1 &&
		# An unknown model or tenant is skipped.
		equals "$(q -c "SELECT jairouter.bill_batches('{b3}', '{999999}', '{0}', '{999999}', '{1}', '{1}', '{1}', '{f}')")" 0
}
check bill_batches_once t_bill_batches

# sql/020: bill_batches_charged returns the batches it billed now (tokens, cost in
# micro-units) and nothing for a batch billed before, so that one agent charges it once.
t_bill_batches_charged() {
	local args
	args="'{c1,c1,b1}'::text[], ARRAY[t.id, t.id, t.id], '{7,7,7}'::bigint[], ARRAY[m.id, m.id, m.id],
		'{2,2,2}'::bigint[], '{1000,1000,1}'::bigint[], '{500,500,1}'::bigint[], '{f,f,f}'::boolean[]"
	equals "$(q -c "SELECT string_agg(c.batch || ' ' || c.api_key || ' ' || c.tokens || ' ' || c.cost_micro, ',')
		FROM jairouter.tenants t, jairouter.models m, jairouter.bill_batches_charged($args) c
		WHERE t.name = 'files-sql' AND m.name = 'batch-sql-model'")" 'c1 7 1500 3000' &&
		equals "$(q -c "SELECT count(*) FROM jairouter.tenants t, jairouter.models m,
			jairouter.bill_batches_charged($args) c WHERE t.name = 'files-sql' AND m.name = 'batch-sql-model'")" 0 &&
		equals "$(q -c "SELECT requests FROM jairouter.batch_usage WHERE batch_id = 'c1'")" 2
}
check bill_batches_charged_once t_bill_batches_charged

t_open_batches() {
	q -c "INSERT INTO jairouter.api_objects (kind, object_id, tenant_id, object)
		SELECT 'batch', x.id, t.id, x.o FROM jairouter.tenants t,
		(VALUES ('batch_open', '{\"status\":\"in_progress\"}'), ('batch_done', '{\"status\":\"completed\"}'),
			('b1', '{\"status\":\"finalizing\"}'), ('batch_none', NULL)) AS x(id, o)
		WHERE t.name = 'files-sql'" &&
		equals "$(q -c "SELECT string_agg(batch_id, ',' ORDER BY batch_id) FROM jairouter.open_batches()")" batch_none,batch_open
}
check open_batches t_open_batches

# ---- plumbing -------------------------------------------------------------------------

t_notify() {
	q -c "LISTEN jairouter_changes" -c "SELECT jairouter.add_tenant('notified')" \
		-c "SELECT jairouter.set_tenant_status('notified', 'disabled')" -c "SELECT 1" >"$tmp/n" 2>&1
	local id
	id=$(q -c "SELECT id FROM jairouter.tenants WHERE name = 'notified'")
	grep -qF "payload \"tenants:I:$id\"" "$tmp/n" && grep -qF "payload \"tenants:U:$id\"" "$tmp/n"
}
check notify_payloads t_notify
check migrations_recorded equals "$(q -c "SELECT string_agg(version, ',' ORDER BY version)
	FROM jairouter.schema_migrations")" "$(basename -s .sql sql/[0-9]*.sql | paste -sd,)"
check unknown_command fails_with "unknown command 'frobnicate'" ctl frobnicate
check help ctl help
check no_database fails_with 'JAIROUTER_DATABASE is not set' env -u JAIROUTER_DATABASE scripts/jairouterctl tenant list

echo "$passed passed, $failed failed"
((failed == 0))
