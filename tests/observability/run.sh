#!/usr/bin/env bash
# The observability suite: the Prometheus rules, their unit tests, the Alertmanager
# configuration and the Grafana dashboards (static checks), then a real Prometheus
# scraping a real stack under a small bounded traffic (every expression of the rules and
# dashboards returns data), then a real Alertmanager: the agent is killed, the agent-down
# alert reaches a webhook receiver started here and the symptoms it inhibits do not.
# Prints one "ok"/"not ok" line per check, then "N passed, N failed".
#
#   tests/observability/run.sh
#   JR_OBS_STATIC=1 tests/observability/run.sh    the static checks only
# Functions below run indirectly, through check and until_ok.
# shellcheck disable=SC2317
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root" || exit 1
# shellcheck source=scripts/lib/common.sh
source scripts/lib/common.sh

passed=0
failed=0
here=tests/observability

# check NAME CMD...: one check; its output is shown when it fails.
check() {
	local name=$1 out rc=0
	shift
	out=$("$@" 2>&1) || rc=$?
	if ((rc == 0)); then
		echo "ok $name"
		passed=$((passed + 1))
	else
		echo "not ok $name"
		printf '    %s\n' "${out//$'\n'/$'\n'    }"
		failed=$((failed + 1))
	fi
}


# ---- static checks ----------------------------------------------------------------
routes_test() { # routes_test RECEIVER LABELS...: the route Alertmanager picks
	local want=$1 got
	shift
	got=$(amtool config routes test --config.file=deploy/alertmanager/alertmanager.yml "$@")
	[[ $got == "$want" ]] || {
		echo "labels $* went to '$got', expected '$want'"
		return 1
	}
}
alert_routing() {
	routes_test gateway-oncall alertname=JairouterAgentDown severity=critical team=gateway &&
		routes_test gateway-tickets alertname=JairouterBreakerOpen severity=warning team=gateway &&
		routes_test tenant-owners alertname=JairouterTenantBudgetForecastExhausted severity=info team=tenant tenant=acme
}

check prometheus_rules_valid promtool check rules deploy/prometheus/rules/*.yml
check prometheus_rules_unit_tests promtool test rules deploy/prometheus/tests/*.yml
check every_alert_has_a_unit_test python3 $here/exprs.py alerts-tested
check prometheus_config_valid promtool check config deploy/prometheus/prometheus.yml
check alertmanager_config_valid amtool check-config deploy/alertmanager/alertmanager.yml
check alertmanager_routes alert_routing
check access_log_shipping_recipe python3 $here/logging.py deploy/logging/vector.toml
check dashboards_generated python3 deploy/grafana/generate.py --check
check dashboards_schema python3 $here/exprs.py dashboards-schema
if [[ -n ${JR_OBS_STATIC:-} ]]; then
	echo "$passed passed, $failed failed"
	exit $((failed > 0))
fi

# ---- a real Prometheus and Alertmanager against a real stack ----------------------------
dir=$(mktemp -d /tmp/jr-obs.XXXXXX)
cleanup() {
	jr_stop_pid "$dir" prometheus TERM
	jr_stop_pid "$dir" alertmanager TERM
	jr_stop_pid "$dir" webhook TERM
	jr_stack_stop "$dir/stack"
	rm -rf "$dir"
}
trap cleanup EXIT

# until SECONDS CMD...: polls CMD until it succeeds, at most SECONDS.
until_ok() {
	local deadline=$((SECONDS + $1))
	shift
	while ((SECONDS < deadline)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	"$@"
}

prom_value() { # prom_value EXPR: the first sample's value, "" when none
	curl -fsS --max-time 5 -G --data-urlencode "query=$1" "$prom_url/api/v1/query" |
		jq -r '.data.result[0].value[1] // empty'
}
prom_has() { [[ -n $(prom_value "$1") ]]; }

start_observers() {
	local prom_port am_port hook_port
	mkdir -p "$dir/rules" "$dir/prom-data" "$dir/am-data"
	jr_spawn "$dir" webhook node "$here/webhook.mjs" --port 0 --out "$dir/notifications.jsonl"
	hook_port=$(jr_listening_port "$dir" webhook) || return 1
	am_port=$(jr_free_port) && prom_port=$(jr_free_port) || return 1
	python3 $here/exprs.py test-alertmanager "http://127.0.0.1:$hook_port" "$dir/alertmanager.yml" &&
		python3 $here/exprs.py test-rules "$dir/rules" || return 1
	cat >"$dir/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["$dir/rules/*.yml"]
alerting:
  alertmanagers:
    - static_configs: [{ targets: ["127.0.0.1:$am_port"] }]
scrape_configs:
  - job_name: jairouter-agent
    static_configs: [{ targets: ["${JR_AGENT_METRICS#http://}"] }]
  - job_name: haproxy
    static_configs: [{ targets: ["$JR_STATS_LISTEN"] }]
  - job_name: jairouter-adapter
    static_configs: [{ targets: ["$JR_ADAPTER_ADDR"] }]
EOF
	jr_spawn "$dir" alertmanager prometheus-alertmanager --config.file="$dir/alertmanager.yml" \
		--storage.path="$dir/am-data" --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address=
	jr_spawn "$dir" prometheus prometheus --config.file="$dir/prometheus.yml" \
		--storage.tsdb.path="$dir/prom-data" --web.listen-address="127.0.0.1:$prom_port"
	prom_url=http://127.0.0.1:$prom_port
	am_url=http://127.0.0.1:$am_port
	jr_wait_http "$am_url/-/ready" 30 && jr_wait_http "$prom_url/-/ready" 30
}

scraped_all() {
	[[ $(prom_value 'count(up{job=~"jairouter-agent|haproxy|jairouter-adapter"} == 1)') == 3 ]]
}

# The notifications the webhook received: "<receiver path> <alertname> <depends_on>" lines.
received() {
	[[ -f $dir/notifications.jsonl ]] || return 0
	jq -r '.path as $p | .body.alerts[] | select(.status == "firing") | "\($p) \(.labels.alertname) \(.labels.depends_on // "-")"' \
		"$dir/notifications.jsonl"
}
agent_down_notified() { received | grep -q ' JairouterAgentDown '; }
symptoms_notified() { # prints how many firing symptom notifications arrived
	received | awk '$3 == "agent"' | wc -l
}
prom_firing() { prom_has "ALERTS{alertname=\"$1\",alertstate=\"firing\"}"; }
am_suppressed() { # am_suppressed ALERTNAME: Alertmanager holds it, inhibited
	curl -fsS --max-time 5 "$am_url/api/v2/alerts?inhibited=true&filter=alertname%3D%22$1%22" |
		jq -e 'map(select(.status.state == "suppressed" and (.status.inhibitedBy | length) > 0)) | length > 0' >/dev/null
}
no_symptoms() {
	local n
	n=$(symptoms_notified)
	((n == 0)) || {
		echo "$n symptom notification(s) arrived:"
		received
		return 1
	}
}

# expect_value EXPR VALUE: Prometheus' value of EXPR is VALUE.
expect_value() {
	local got
	got=$(prom_value "$1")
	[[ $got == "$2" ]] || {
		echo "$1 = '$got', expected $2"
		return 1
	}
}
tenant_counts() {
	local beta='tenant="obs-beta",model="obs-model"' rc=0
	# obs-beta: 5 requests against 3 a minute (tenant scope): 3 answered, 2 refused.
	expect_value "jairouter_tenant_requests_total{$beta,code=\"2xx\"}" 3 || rc=1
	expect_value "jairouter_tenant_requests_total{$beta,code=\"4xx\"}" 2 || rc=1
	expect_value "jairouter_tenant_limit_refusals_total{$beta,scope=\"tenant\",dimension=\"requests\"}" 2 || rc=1
	expect_value "jairouter_tenant_denied_total{$beta,reason=\"rate_limited\"}" 2 || rc=1
	# obs-acme: 8 answered (2 streamed), 1 upstream 500, 1 unknown model; its labels.
	expect_value 'jairouter_tenant_requests_total{tenant="obs-acme",model="obs-model",code="2xx"}' 8 || rc=1
	expect_value 'jairouter_tenant_requests_total{tenant="obs-acme",model="obs-model",code="5xx"}' 1 || rc=1
	expect_value 'jairouter_tenant_streamed_requests_total{tenant="obs-acme",model="obs-model"}' 2 || rc=1
	expect_value 'jairouter_tenant_denied_total{tenant="obs-acme",model="none",reason="unknown_model"}' 1 || rc=1
	expect_value 'jairouter_tenant_info{tenant="obs-acme",label_team="search",label_plan="gold"}' 1 || rc=1
	expect_value 'jairouter_tenant_limit{tenant="obs-acme",dimension="budget",period="month"}' 1000 || rc=1
	# The bad key: no tenant, no model.
	expect_value 'jairouter_tenant_denied_total{tenant="none",model="none",reason="invalid_key"}' 1 || rc=1
	return "$rc"
}
no_key_labels() { # no label value looks like a key or its prefix
	local n
	n=$(curl -fsS --max-time 5 "$JR_AGENT_METRICS/metrics" | grep -v '^#' | grep -c '"jr-') || true
	((n == 0)) || {
		echo "$n series with a key-like label value"
		return 1
	}
}

symptoms_suppressed() {
	am_suppressed JairouterAgentUnavailableToHAProxy && am_suppressed JairouterGatewayFailingClosed
}

live_suite() {
	jr_stack_start "$dir/stack" >"$dir/stack.log" 2>&1 || {
		cat "$dir/stack.log"
		return 1
	}
	start_observers || return 1
	check prometheus_scrapes_agent_haproxy_adapter until_ok 60 scraped_all
	check traffic_answered bash -c "bash $here/traffic.sh >'$dir/traffic.out' 2>&1 && grep -qx 200 '$dir/traffic.out' && grep -qx 429 '$dir/traffic.out'"
	# The streamed requests settle after usage_wait_ms (5 s): their counters must be in.
	check traffic_settled until_ok 30 prom_has 'jairouter_tenant_streamed_requests_total{tenant="obs-acme"} > 0'
	# The recorded series exists once the rule has two samples of the tenant's cost counter.
	# Its value may be 0: when every request of the traffic was billed between two scrapes
	# the counter never rises between samples (the rules' arithmetic is checked by
	# prometheus_rules_unit_tests).
	check recorded_rules_evaluated until_ok 30 prom_has 'jairouter:tenant_cost:rate1h{tenant="obs-acme"} >= 0'
	# rate() needs two scrapes of a series: the refusal counters appear with the traffic's
	# last requests, so their rates may need one more scrape interval.
	check every_expression_returns_data until_ok 60 python3 $here/exprs.py live "$prom_url"
	# The traffic's counts, attributed to their tenant and model.
	check tenant_counts_attributed until_ok 30 tenant_counts
	check no_key_in_labels no_key_labels

	# The agent dies; HAProxy fails closed (503) and loses its agent.
	jr_agent_stop "$dir/stack" KILL
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		curl -s -o /dev/null --max-time 5 "$JR_URL/v1/models" || true
	done
	check agent_down_alert_fires until_ok 60 prom_firing JairouterAgentDown
	check symptom_alert_fires until_ok 60 prom_firing JairouterAgentUnavailableToHAProxy
	check failing_closed_alert_fires until_ok 60 prom_firing JairouterGatewayFailingClosed
	check agent_down_reaches_webhook until_ok 60 agent_down_notified
	check symptoms_inhibited_in_alertmanager until_ok 30 symptoms_suppressed
	check no_symptom_reaches_webhook no_symptoms
	echo "# notifications received: $(received | sort | uniq -c | tr '\n' ';')"
}
live_suite || {
	echo "not ok live_stack"
	failed=$((failed + 1))
}
echo "$passed passed, $failed failed"
exit $((failed > 0))
