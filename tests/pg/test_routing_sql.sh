#!/usr/bin/env bash
# Routing in SQL (sql/005_routing.sql, docs/routing.md): the scopes and checks of
# routing_policies, fallback chains and virtual models, their functions, and the change
# notifications the agent listens to. Run by tests/pg/run.sh against a migrated database.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=tests/pg/checks.bash
source tests/pg/checks.bash

ctl model add m-a be_a >/dev/null
ctl model add m-b be_b >/dev/null
ctl model add m-c be_c >/dev/null
ctl model add auto be_a >/dev/null

check strategy_set bash -c "q -c \"SELECT jairouter.set_model_strategy('m-a', 'hash', 'header')\" >/dev/null"
t_strategy_update() {
	q -c "SELECT jairouter.set_model_strategy('m-a', 'latency')" >/dev/null
	equals "$(q -c "SELECT strategy || '/' || coalesce(hash_key, '-') FROM jairouter.routing_policies WHERE model_id = jairouter.model_id('m-a')")" "latency/-"
}
check strategy_updated_in_place t_strategy_update
check strategy_unknown_refused refused "SELECT jairouter.set_model_strategy('m-a', 'fastest')"
check strategy_unknown_model refused "SELECT jairouter.set_model_strategy('nope', 'random')"
check backend_row_with_breaker q -c "INSERT INTO jairouter.routing_policies (backend, breaker_consecutive, breaker_open_ms) VALUES ('be_a', 3, 1000)"
check backend_row_unique refused "INSERT INTO jairouter.routing_policies (backend, strategy) VALUES ('be_a', 'random')"
check backend_name_checked refused "INSERT INTO jairouter.routing_policies (backend) VALUES ('mock')"
check service_row q -c "INSERT INTO jairouter.routing_policies (service, strategy) VALUES ('chat', 'latency')"
check service_unknown refused "INSERT INTO jairouter.routing_policies (service) VALUES ('telepathy')"
check global_row q -c "INSERT INTO jairouter.routing_policies (strategy, breaker_probes) VALUES ('least_conn', 2)"
check global_row_unique refused "INSERT INTO jairouter.routing_policies (strategy) VALUES ('random')"
check one_scope_only refused "INSERT INTO jairouter.routing_policies (backend, service) VALUES ('be_b', 'embeddings')"
check breaker_not_per_model refused "INSERT INTO jairouter.routing_policies (model_id, breaker_consecutive) VALUES (jairouter.model_id('m-b'), 3)"
check breaker_ranges refused "INSERT INTO jairouter.routing_policies (backend, breaker_error_rate) VALUES ('be_c', 1.5)"
check hash_bound_range refused "INSERT INTO jairouter.routing_policies (backend, hash_bound) VALUES ('be_c', 0.5)"

t_fallbacks() {
	equals "$(q -c "SELECT jairouter.set_model_fallbacks('m-a', ARRAY['m-b', 'm-c'], ARRAY['down'])")" 2 &&
		equals "$(q -c "SELECT string_agg(m.name || ':' || array_to_string(f.reasons, '+'), ',' ORDER BY f.position) FROM jairouter.model_fallbacks f JOIN jairouter.models m ON m.id = f.fallback_model_id WHERE f.model_id = jairouter.model_id('m-a')")" "m-b:down,m-c:down"
}
check fallbacks_in_order t_fallbacks
check fallbacks_default_reasons bash -c "q -c \"SELECT jairouter.set_model_fallbacks('m-b', ARRAY['m-c'])\" >/dev/null && [[ \$(q -c \"SELECT array_to_string(reasons, '+') FROM jairouter.model_fallbacks WHERE model_id = jairouter.model_id('m-b')\") == down+circuit_open+saturated ]]"
check fallback_to_itself refused "SELECT jairouter.set_model_fallbacks('m-a', ARRAY['m-a'])"
check fallback_twice refused "SELECT jairouter.set_model_fallbacks('m-a', ARRAY['m-b', 'm-b'])"
check fallback_bad_reason refused "SELECT jairouter.set_model_fallbacks('m-a', ARRAY['m-b'], ARRAY['bored'])"
check fallback_chain_cleared bash -c "[[ \$(q -c \"SELECT jairouter.set_model_fallbacks('m-a', '{}')\") == 0 && \$(q -c \"SELECT count(*) FROM jairouter.model_fallbacks WHERE model_id = jairouter.model_id('m-a')\") == 0 ]]"

check virtual_set bash -c "[[ \$(q -c \"SELECT jairouter.set_virtual_model('auto', ARRAY['m-b', 'm-a'], 2000)\") == 2 ]]"
check virtual_member_not_virtual refused "SELECT jairouter.set_virtual_model('m-c', ARRAY['auto'])"
check virtual_not_itself refused "SELECT jairouter.set_virtual_model('auto', ARRAY['auto'])"
check virtual_budget_range refused "SELECT jairouter.set_virtual_model('m-c', ARRAY['m-a'], 0)"
check virtual_cleared bash -c "q -c \"SELECT jairouter.set_virtual_model('auto', ARRAY[]::text[])\" >/dev/null && [[ \$(q -c 'SELECT count(*) FROM jairouter.virtual_model_members') == 0 ]]"
check model_delete_cascades bash -c "q -c \"SELECT jairouter.set_model_fallbacks('m-c', ARRAY['m-b'])\" >/dev/null && q -c \"DELETE FROM jairouter.models WHERE name = 'm-b'\" && [[ \$(q -c 'SELECT count(*) FROM jairouter.model_fallbacks') == 0 ]]"

t_notify() {
	"$pg_bin/psql" -X -q -d "$JAIROUTER_DATABASE" -c "LISTEN jairouter_changes" \
		-c "SELECT jairouter.set_model_strategy('m-c', 'random')" \
		-c "SELECT jairouter.set_model_fallbacks('m-c', ARRAY['m-a'])" \
		-c "SELECT jairouter.set_virtual_model('auto', ARRAY['m-a'])" -c "SELECT 1" >"$tmp/n" 2>&1
	grep -qE 'payload "routing_policies:I:[0-9]+"' "$tmp/n" &&
		grep -qE 'payload "model_fallbacks:I:[0-9]+"' "$tmp/n" &&
		grep -qE 'payload "virtual_models:I:[0-9]+"' "$tmp/n" &&
		grep -qE 'payload "virtual_model_members:I:[0-9]+"' "$tmp/n"
}
check notify_routing_tables t_notify

echo "$passed passed, $failed failed"
((failed == 0))
