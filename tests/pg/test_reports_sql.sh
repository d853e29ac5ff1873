#!/usr/bin/env bash
# Usage per hour and end user, `jairouterctl usage` reports and `jairouterctl advise`
# rules (sql/010_usage_reports.sql, scripts/lib/ctl-usage.sh), against the database in
# $JAIROUTER_DATABASE (migrated, empty; tests/pg/run.sh provides one). Usage is written
# by jairouter.usage_record, the function the agents call, with constructed batches.
# Prints "ok NAME" / "not ok NAME" per check and "N passed, N failed" last.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

# shellcheck source=tests/pg/checks.bash
source tests/pg/checks.bash
# shellcheck source=scripts/lib/common.sh
source scripts/lib/common.sh

prom_dir='' # the Prometheus of the advice checks, stopped on exit
stop_prometheus() {
	if [[ -n $prom_dir ]]; then
		jr_stop_pid "$prom_dir" prometheus TERM
		rm -rf "$prom_dir"
	fi
}
trap 'stop_prometheus; rm -rf "$tmp"' EXIT

# record AGENT SEQ HOUR TENANT KEY_ID MODEL USER REQUESTS PT CT FAILED COST_MICRO: one
# batch of one row; HOUR is a UTC timestamp, TENANT and MODEL names, USER the end user.
record() {
	q -v agent="$1" -v seq="$2" -v hour="$3" -v tenant="$4" -v key="$5" -v model="$6" \
		-v user="$7" -v r="$8" -v pt="$9" -v ct="${10}" -v f="${11}" -v c="${12}" <<'SQL'
SELECT jairouter.usage_record(:'agent', :'seq', ARRAY[extract(epoch FROM :'hour'::timestamptz)::bigint],
	ARRAY[(SELECT id FROM jairouter.tenants WHERE name = :'tenant')], ARRAY[:'key'::bigint],
	ARRAY[(SELECT id FROM jairouter.models WHERE name = :'model')], ARRAY[:'user'],
	ARRAY[:'r'::bigint], ARRAY[:'pt'::bigint], ARRAY[:'ct'::bigint], ARRAY[0::bigint],
	ARRAY[:'f'::bigint], ARRAY[:'c'::bigint]);
SQL
}

key_id() { q -c "SELECT id FROM jairouter.api_keys WHERE prefix = '$1'"; }

# ---- constructed usage ------------------------------------------------------------------

setup_data() {
	ctl tenant add search >/dev/null && ctl tenant add ads >/dev/null &&
		ctl tenant add lab >/dev/null &&
		ctl tenant labels search '{"team": "discovery"}' >/dev/null &&
		ctl tenant labels ads '{"team": "revenue"}' >/dev/null &&
		ctl model add big be_big --price-in 10 --price-out 30 --context 128000 --tools >/dev/null &&
		ctl model add small be_small --price-in 1 --price-out 2 --context 128000 --tools >/dev/null &&
		ctl model add tiny be_tiny --price-in 0.1 --price-out 0.2 --context 4096 >/dev/null &&
		ctl key issue search --name web >"$tmp/k1" 2>/dev/null &&
		ctl key issue ads --name batch >"$tmp/k2" 2>/dev/null || return 1
	k1=$(grep -Eo 'jr-[0-9a-f]{64}' "$tmp/k1")
	k2=$(grep -Eo 'jr-[0-9a-f]{64}' "$tmp/k2")
	p1=${k1:0:11} p2=${k2:0:11}
	# November 2026: search 3 users on big, ads on small; one token request (key 0).
	record a 1 '2026-11-03 09:15Z' search "$(key_id "$p1")" big alice 4 1000 500 0 25000 &&
		record a 2 '2026-11-03 09:40Z' search "$(key_id "$p1")" big bob 2 100 100 1 4000 &&
		record a 3 '2026-11-20 17:05Z' search "$(key_id "$p1")" big carol 1 10 10 0 400 &&
		record a 4 '2026-11-30 23:59Z' ads "$(key_id "$p2")" small '' 10 2000 1000 0 4000 &&
		record a 5 '2026-11-15 09:00Z' search 0 small dave 3 30 30 0 90 &&
		record a 6 '2026-12-01 00:00Z' ads "$(key_id "$p2")" small '' 7 70 70 0 210 &&
		record a 7 '2026-10-31 23:00Z' ads "$(key_id "$p2")" small '' 5 50 50 0 150
}
check setup_data setup_data

t_batch_once() {
	equals "$(record a 1 '2026-11-03 09:15Z' search 0 big alice 4 1000 500 0 25000)" 0 &&
		equals "$(q -c "SELECT requests FROM jairouter.usage_hourly_report WHERE \"user\" = 'alice'")" 4
}
check usage_batch_applied_once t_batch_once

t_daily_and_hourly_agree() {
	equals "$(q -c 'SELECT sum(requests) || sum(cost) FROM jairouter.usage_daily')" \
		"$(q -c 'SELECT sum(requests) || sum(cost) FROM jairouter.usage_hourly')"
}
check usage_daily_equals_hourly t_daily_and_hourly_agree

# ---- reports ---------------------------------------------------------------------------

t_monthly_by_team() {
	ctl usage --month 2026-11 --by label:team --format csv >"$tmp/m.csv" || return 1
	cat "$tmp/m.csv"
	equals "$(cat "$tmp/m.csv")" "team,requests,prompt_tokens,completion_tokens,total_tokens,failed_requests,cost
discovery,10,1140,640,1780,1,0.029490
revenue,10,2000,1000,3000,0,0.004000
total,20,3140,1640,4780,1,0.033490"
}
check usage_monthly_cost_per_team t_monthly_by_team

t_by_user_top() {
	ctl usage top users 2 --month 2026-11 --tenant search --format json >"$tmp/u.json" || return 1
	cat "$tmp/u.json"
	equals "$(jq -r '[.rows[] | .user + "=" + (.requests | tostring)] | join(",")' "$tmp/u.json")" \
		"alice=4,bob=2" &&
		equals "$(jq -r '.total.requests' "$tmp/u.json")" 10 &&
		equals "$(jq -r '.from + " " + .to' "$tmp/u.json")" "2026-11-01 2026-11-30"
}
check usage_top_users_json t_by_user_top

t_by_key() {
	ctl usage --from 2026-11-01 --to 2026-11-30 --by key --sort requests --format csv >"$tmp/k.csv" || return 1
	cat "$tmp/k.csv"
	grep -qx "$p2,10,2000,1000,3000,0,0.004000" "$tmp/k.csv" &&
		grep -q '^(token),3,' "$tmp/k.csv" && ! grep -qF -- "$k1" "$tmp/k.csv" &&
		! grep -qF -- "$k2" "$tmp/k.csv"
}
check usage_by_key_prefix_never_key t_by_key

t_range_inclusive() {
	ctl usage --from 2026-11-30 --to 2026-12-01 --by day --format csv >"$tmp/d.csv" || return 1
	cat "$tmp/d.csv"
	equals "$(cut -d, -f1,2 "$tmp/d.csv" | tr '\n' ' ')" "day,requests 2026-11-30,10 2026-12-01,7 total,17 "
}
check usage_from_to_inclusive t_range_inclusive

t_hours() {
	ctl usage hours --month 2026-11 --format csv >"$tmp/h.csv" || return 1
	equals "$(wc -l <"$tmp/h.csv")" 26 &&
		grep -qx '9,9,1130,630,1760,1,0.029090' "$tmp/h.csv" && grep -qx '3,0,0,0,0,0,0.000000' "$tmp/h.csv" &&
		grep -q '^total,20,' "$tmp/h.csv"
}
check usage_requests_by_hour_of_day t_hours

t_by_model_day_table() {
	ctl usage --month 2026-11 --by model,day >"$tmp/t.txt" || return 1
	cat "$tmp/t.txt"
	grep -Eq '^ big +\| 2026-11-03 +\| +6 ' "$tmp/t.txt" && grep -Eq '^ total ' "$tmp/t.txt"
}
check usage_by_model_day_table t_by_model_day_table

check usage_unknown_dimension fails_with "unknown dimension 'colour'" ctl usage --by colour
check usage_bad_format fails_with 'usage: --format table|csv|json' ctl usage --format xml
check usage_month_and_from fails_with 'not both' ctl usage --month 2026-11 --from 2026-11-02
check usage_bad_day fails_with 'takes a UTC day' ctl usage --from 'yesterday'

t_usage_exit_2() {
	local rc=0
	ctl usage --by colour >/dev/null 2>&1 || rc=$?
	equals "$rc" 2
}
check usage_usage_error_exit_2 t_usage_exit_2

t_user_cap() {
	q -c 'UPDATE jairouter.usage_settings SET users_per_tenant_day = 2' &&
		record b 1 '2026-11-05 10:00Z' lab 0 tiny u1 1 1 1 0 1 &&
		record b 2 '2026-11-05 11:00Z' lab 0 tiny u2 1 1 1 0 1 &&
		record b 3 '2026-11-05 12:00Z' lab 0 tiny u3 1 1 1 0 1 &&
		record b 4 '2026-11-05 13:00Z' lab 0 tiny u1 1 1 1 0 1 &&
		record b 5 '2026-11-06 10:00Z' lab 0 tiny u3 1 1 1 0 1 &&
		q -c 'UPDATE jairouter.usage_settings SET users_per_tenant_day = 1000' || return 1
	ctl usage --tenant lab --by day,user --from 2026-11-05 --to 2026-11-06 --format csv >"$tmp/c.csv"
	cat "$tmp/c.csv"
	equals "$(cut -d, -f1-3 "$tmp/c.csv" | tr '\n' ' ')" \
		"day,user,requests 2026-11-05,(other),1 2026-11-05,u1,2 2026-11-05,u2,1 2026-11-06,u3,1 total,,5 "
}
check usage_user_cap_folds_into_other t_user_cap

t_prune() {
	local daily
	daily=$(q -c "SELECT count(*) FROM jairouter.usage_daily")
	q -c "INSERT INTO jairouter.usage_hourly (hour, tenant_id, key_id, model_id, end_user, requests)
		VALUES (now() - interval '400 days', 1, 0, 1, 'old', 1)" &&
		equals "$(q -c 'SELECT jairouter.usage_prune_hourly(365) > 0')" t &&
		equals "$(q -c "SELECT count(*) FROM jairouter.usage_hourly WHERE end_user = 'old'")" 0 &&
		equals "$(q -c "SELECT count(*) FROM jairouter.usage_daily")" "$daily"
}
check usage_prune_hourly_keeps_daily t_prune

# ---- advice ------------------------------------------------------------------------------
# As of 2026-11-25 12:00 UTC (82% of November gone), over the last 30 days.

at='2026-11-25 12:00Z'

setup_advice() {
	local kq kq2 kb kr
	ctl tenant add quiet >/dev/null && ctl tenant add busy >/dev/null &&
		ctl model add flaky be_flaky >/dev/null && ctl model add flaky2 be_flaky >/dev/null &&
		ctl model add solid be_solid >/dev/null || return 1
	kq=$(ctl key issue quiet --name main 2>/dev/null | grep -Eo 'jr-[0-9a-f]{8}' | head -n 1)
	kq2=$(ctl key issue quiet --name old 2>/dev/null | grep -Eo 'jr-[0-9a-f]{8}' | head -n 1)
	kr=$(ctl key issue quiet --name recent 2>/dev/null | grep -Eo 'jr-[0-9a-f]{8}' | head -n 1)
	kb=$(ctl key issue busy --name main 2>/dev/null | grep -Eo 'jr-[0-9a-f]{8}' | head -n 1)
	echo "$kq2" >"$tmp/old_key"
	echo "$kr" >"$tmp/recent_key"
	q -c "UPDATE jairouter.api_keys SET created_at = '2026-09-01Z' WHERE prefix IN ('$kq', '$kq2', '$kb')" &&
		q -c "UPDATE jairouter.api_keys SET created_at = '2026-11-20Z' WHERE prefix = '$kr'" &&
		q -c "SELECT jairouter.set_limit('tenant', 'quota', 'month', 1000000, NULL, 'quiet')" &&
		q -c "SELECT jairouter.set_limit('tenant', 'quota', 'month', 10000, NULL, 'busy')" &&
		q -c "UPDATE jairouter.limits SET created_at = '2026-09-01Z'" &&
		q -c "SELECT jairouter.set_model_fallbacks('flaky2', ARRAY['solid'])" &&
		record c 1 '2026-11-10 10:00Z' quiet "$(key_id "$kq")" solid '' 5 4000 1000 0 0 &&
		record c 2 '2026-11-12 10:00Z' busy "$(key_id "$kb")" solid '' 90 6000 3000 0 0 &&
		record c 3 '2026-11-24 10:00Z' busy "$(key_id "$kb")" flaky '' 100 100 100 10 0 &&
		record c 4 '2026-11-24 11:00Z' busy "$(key_id "$kb")" flaky2 '' 100 100 100 10 0 &&
		record c 5 '2026-11-24 12:00Z' busy "$(key_id "$kb")" solid '' 100 100 100 1 0 &&
		ctl advise --at "$at" --format csv >"$tmp/advice.csv" &&
		ctl advise --at "$at" >"$tmp/advice.txt" &&
		ctl advise --at "$at" --format json >"$tmp/advice.json"
	cat "$tmp/advice.txt"
}
check advise_setup setup_advice

# fires RULE SUBJECT: the advice has that rule for a subject that is, or ends with, SUBJECT.
fires() {
	jq -e --arg r "$1" --arg s "$2" 'any(.[]; .rule == $r and (.subject | endswith($s)))' \
		"$tmp/advice.json" >/dev/null
}

t_limit_unused() {
	fires limit_unused '(quota 1000000 per month, tenant quiet)' &&
		! fires limit_unused '(quota 10000 per month, tenant busy)' &&
		grep -q 'the busiest month of the last 30 days used 5000, 0.5% of the limit' "$tmp/advice.csv"
}
check advise_limit_unused t_limit_unused

t_key_unused() {
	fires key_unused "key $(cat "$tmp/old_key") (old, tenant quiet)" &&
		! fires key_unused "key $(cat "$tmp/recent_key") (recent, tenant quiet)" &&
		! fires key_unused '(main, tenant quiet)' && ! fires key_unused '(main, tenant busy)' &&
		grep -q 'last used: never' "$tmp/advice.csv"
}
check advise_key_unused t_key_unused

t_model_errors() {
	fires model_errors 'model flaky' && ! fires model_errors 'model flaky2' &&
		! fires model_errors 'model solid' && grep -q '10 of 100 requests failed in the last 7 days' "$tmp/advice.csv"
}
check advise_model_errors_without_fallback t_model_errors

t_cheaper_model() {
	fires cheaper_model 'tenant search on model big' && ! fires cheaper_model 'tenant ads on model small' &&
		grep -q 'small covers the services, context length and capabilities of big and would have cost 0.00233 (92% less)' "$tmp/advice.csv"
}
check advise_cheaper_model_covering t_cheaper_model

t_budget_forecast() {
	fires budget_forecast '(quota 10000 per month, tenant busy)' &&
		! fires budget_forecast '(quota 1000000 per month, tenant quiet)' &&
		grep -q 'used 9600 of 10000 in 82% of the month: at this pace it runs out around 2026-11-26 12:30 UTC' "$tmp/advice.csv"
}
check advise_budget_forecast t_budget_forecast

t_advise_formats() {
	equals "$(jq -r '[.[] | .rule] | unique | join(",")' "$tmp/advice.json")" \
		"budget_forecast,cheaper_model,key_unused,limit_unused,model_errors" &&
		equals "$(jq length "$tmp/advice.json")" "$(($(wc -l <"$tmp/advice.csv") - 1))" &&
		grep -q '^  why: ' "$tmp/advice.txt" && grep -q '^  do:  ' "$tmp/advice.txt"
}
check advise_formats_agree t_advise_formats

t_advise_nothing_before_data() {
	equals "$(ctl advise --at '2026-06-01 00:00Z')" 'no advice'
}
check advise_nothing_without_data t_advise_nothing_before_data
check advise_bad_days fails_with "advise: --days takes 1 to 9999" ctl advise --days 0

# ---- advice from Prometheus: a real Prometheus holding constructed series ----------------
# One hour of samples ending at $t_end, backfilled with promtool: tenant busy refused 100 of
# 400 requests (quota), tenant quiet 5 of 400 (under the 10 refusals floor); be_flaky/s1's
# breaker opened 5 times, be_solid/s1's once.

# openmetrics END: the series, one sample a minute for an hour, counters from 0.
openmetrics() {
	local end=$1 i t f
	for s in 'jairouter_tenant_limit_refusals_total{tenant="busy",model="solid",scope="tenant",dimension="quota"} 100' \
		'jairouter_tenant_limit_refusals_total{tenant="quiet",model="solid",scope="tenant",dimension="quota"} 5' \
		'jairouter_tenant_requests_total{tenant="busy",model="solid",code="2xx"} 300' \
		'jairouter_tenant_requests_total{tenant="busy",model="solid",code="4xx"} 100' \
		'jairouter_tenant_requests_total{tenant="quiet",model="solid",code="2xx"} 400' \
		'jairouter_lb_breaker_opened_total{backend="be_flaky",server="s1"} 5' \
		'jairouter_lb_breaker_opened_total{backend="be_solid",server="s1"} 1'; do
		f=${s% *}
		for ((i = 0; i <= 60; i++)); do
			t=$((end - 3600 + 60 * i))
			echo "$f $((${s##* } * i / 60)) $t"
		done
	done
	echo '# EOF'
}

t_advise_prometheus() {
	local port end
	if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
		echo "prometheus and promtool are needed (packages.txt)"
		return 1
	fi
	prom_dir=$(mktemp -d /tmp/jr-advise-prom.XXXXXX)
	end=$((($(date +%s) / 60) * 60 - 600))
	openmetrics "$end" >"$prom_dir/series.om"
	mkdir -p "$prom_dir/data"
	promtool tsdb create-blocks-from openmetrics "$prom_dir/series.om" "$prom_dir/data" >/dev/null || return 1
	printf 'global:\n  scrape_interval: 1m\n' >"$prom_dir/prometheus.yml"
	port=$(jr_free_port) || return 1
	jr_spawn "$prom_dir" prometheus prometheus --config.file="$prom_dir/prometheus.yml" \
		--storage.tsdb.path="$prom_dir/data" --storage.tsdb.retention.time=10y \
		--web.listen-address="127.0.0.1:$port"
	jr_wait_http "http://127.0.0.1:$port/-/ready" 30 || return 1
	ctl advise --at "$(date -u -d "@$end" '+%F %TZ')" --prometheus "http://127.0.0.1:$port" \
		--format json >"$tmp/prom.json" || return 1
	jq -c '.[] | select(.rule == "limit_refusals" or .rule == "breaker_trips")' "$tmp/prom.json"
	equals "$(jq -r '[.[] | select(.rule == "limit_refusals") | .subject] | join(";")' "$tmp/prom.json")" \
		"tenant busy, tenant quota limits" &&
		jq -e 'any(.[]; .rule == "limit_refusals" and (.why | startswith("limit refusals were 25.0% of the tenant'"'"'s requests over the last 7d")))' "$tmp/prom.json" >/dev/null &&
		equals "$(jq -r '[.[] | select(.rule == "breaker_trips") | .subject + " " + .why] | join(";")' "$tmp/prom.json")" \
			"server be_flaky/s1 its circuit breaker opened 5 times in the last 7d (Prometheus)"
}
check advise_prometheus_refusals_and_breakers t_advise_prometheus

t_advise_prometheus_down() {
	local rc=0
	ctl advise --prometheus "http://127.0.0.1:$(jr_free_port)" >"$tmp/down.out" 2>"$tmp/down.err" || rc=$?
	cat "$tmp/down.err"
	((rc == 1)) && grep -q 'did not answer' "$tmp/down.err" && [[ ! -s $tmp/down.out ]]
}
check advise_prometheus_unreachable t_advise_prometheus_down

echo "$passed passed, $failed failed"
((failed == 0))
