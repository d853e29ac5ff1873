#!/usr/bin/env bash
# The response cache in SQL (sql/018_cache.sql, docs/cache.md): cache_policies' checks,
# set_cache / remove_cache, jairouterctl's cache commands, cascades, and the change
# notifications the agent listens to. Run by tests/pg/run.sh against a migrated database.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=tests/pg/checks.bash
source tests/pg/checks.bash

ctl tenant add acme >/dev/null
ctl tenant add globex >/dev/null
ctl model add m-a be_a >/dev/null
ctl model add m-b be_b >/dev/null

t_defaults() {
	q -c "SELECT jairouter.set_cache('acme', 'm-a')" >/dev/null
	equals "$(q -c "SELECT ttl_s || '/' || max_entry_bytes || '/' || scope || '/' || hit_price_factor FROM jairouter.cache_policies")" "300/1048576/tenant/0"
}
check set_cache_defaults t_defaults
t_update() {
	q -c "SELECT jairouter.set_cache('acme', 'm-a', 60, 4096, 'shared', 0.25)" >/dev/null
	equals "$(q -c "SELECT count(*) FROM jairouter.cache_policies")" 1 &&
		equals "$(q -c "SELECT ttl_s || '/' || max_entry_bytes || '/' || scope || '/' || hit_price_factor FROM jairouter.cache_policies")" "60/4096/shared/0.25"
}
check set_cache_updates_in_place t_update
check unknown_tenant fails_with 'tenant "nope" not found' q -c "SELECT jairouter.set_cache('nope', 'm-a')"
check unknown_model fails_with 'model "nope" not found' q -c "SELECT jairouter.set_cache('acme', 'nope')"
check ttl_range fails_with 'invalid cache policy' q -c "SELECT jairouter.set_cache('acme', 'm-b', 0)"
check ttl_upper_bound refused "SELECT jairouter.set_cache('acme', 'm-b', 604801)"
check entry_bound refused "SELECT jairouter.set_cache('acme', 'm-b', 60, 100)"
check scope_values refused "SELECT jairouter.set_cache('acme', 'm-b', 60, 4096, 'everyone')"
check factor_range refused "SELECT jairouter.set_cache('acme', 'm-b', 60, 4096, 'tenant', 1.5)"
check factor_not_negative refused "INSERT INTO jairouter.cache_policies (tenant_id, model_id, hit_price_factor) VALUES (jairouter.tenant_id('globex'), jairouter.model_id('m-b'), -0.1)"
check one_row_per_pair refused "INSERT INTO jairouter.cache_policies (tenant_id, model_id) VALUES (jairouter.tenant_id('acme'), jairouter.model_id('m-a'))"

check ctl_set bash -c "scripts/jairouterctl cache set globex m-b --ttl 5 --max-entry 2048 --hit-price 0.5 | grep -q 'cache on for tenant globex and model m-b'"
check ctl_list bash -c "scripts/jairouterctl cache list | grep -E 'globex +\\| m-b +\\| +5 \\| +2048 \\| tenant +\\| +0.5'"
check ctl_bad_ttl fails_with 'whole numbers' scripts/jairouterctl cache set globex m-b --ttl soon
check ctl_remove bash -c "scripts/jairouterctl cache remove globex m-b | grep -q 'cache off' && [[ \$(q -c \"SELECT count(*) FROM jairouter.cache_policies c JOIN jairouter.tenants t ON t.id = c.tenant_id WHERE t.name = 'globex'\") == 0 ]]"
check remove_missing fails_with 'no cache policy for tenant "globex" and model "m-b"' q -c "SELECT jairouter.remove_cache('globex', 'm-b')"
check model_delete_cascades bash -c "q -c \"SELECT jairouter.set_cache('globex', 'm-b')\" >/dev/null && q -c \"DELETE FROM jairouter.models WHERE name = 'm-b'\" && [[ \$(q -c 'SELECT count(*) FROM jairouter.cache_policies WHERE model_id NOT IN (SELECT id FROM jairouter.models)') == 0 && \$(q -c 'SELECT count(*) FROM jairouter.cache_policies') == 1 ]]"

t_notify() {
	"$pg_bin/psql" -X -q -d "$JAIROUTER_DATABASE" -c "LISTEN jairouter_changes" \
		-c "SELECT jairouter.set_cache('globex', 'm-a')" \
		-c "SELECT jairouter.remove_cache('globex', 'm-a')" -c "SELECT 1" >"$tmp/n" 2>&1
	grep -qE 'payload "cache_policies:I:[0-9]+"' "$tmp/n" &&
		grep -qE 'payload "cache_policies:D:[0-9]+"' "$tmp/n"
}
check notify_cache_policies t_notify

echo "$passed passed, $failed failed"
((failed == 0))
