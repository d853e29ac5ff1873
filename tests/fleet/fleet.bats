#!/usr/bin/env bats
# The fleet test (docs/limits.md, "Fleet"): two complete gateway nodes, each an HAProxy
# and an agent, on separate loopback addresses (node A on 127.0.0.1, node B on
# 127.0.0.2), sharing one PostgreSQL, one Redis and the mock model servers. A tenant's
# limit holds for the fleet as a whole, not per node; with Redis killed each node falls
# back to its share (limit / fleet_size), visibly, and Redis' return restores the
# fleet-wide counters.

setup_file() {
	load ../integration/helpers
	export A=$BATS_FILE_TMPDIR/a B=$BATS_FILE_TMPDIR/b
	mkdir -p "$A" "$B"
	export REDIS_PORT
	REDIS_PORT=$(jr_free_port)
	start_redis
	jr_stack_start "$A"
	# Node A: the stack's agent, restarted with Redis (a restart-only setting).
	fleet_conf >>"$A/agent.conf"
	jr_agent_stop "$A"
	jr_agent_start "$A"
	export URL_A=$JR_URL METRICS_A=$JR_AGENT_METRICS
	start_node_b
	jr_ctl model add fleet-model be_mock >/dev/null
}

teardown_file() {
	jr_stop_pid "$B" haproxy TERM
	jr_stop_pid "$B" agent TERM
	jr_stop_pid "$A" redis TERM
	[[ -n ${A:-} ]] && jr_stack_stop "$A"
	if grep -qE 'Sanitizer|runtime error' "$A/agent.log" "$B/agent.log" 2>/dev/null; then
		jr_dump_logs "$A" >&3
		jr_dump_logs "$B" >&3
	fi
}

setup() {
	load ../integration/helpers
}

teardown() {
	if [[ ${BATS_TEST_COMPLETED:-} != 1 ]]; then
		jr_dump_logs "$A"
		jr_dump_logs "$B"
	fi
}

fleet_conf() {
	printf 'redis = 127.0.0.1:%s\nfleet_size = 2\nredis_timeout_ms = 50\nusage_flush_ms = 200\n' "$REDIS_PORT"
}

start_redis() {
	jr_spawn "$A" redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' \
		--appendonly no --daemonize no
	jr_wait_tcp 127.0.0.1 "$REDIS_PORT" 10
}

# Node B: its own agent and HAProxy on 127.0.0.2, same database, Redis and mocks.
start_node_b() {
	local p
	mapfile -t p < <(jr_free_ports 4)
	cat >"$B/agent.conf" <<CONF
listen = 127.0.0.2:${p[0]}
metrics_listen = 127.0.0.2:${p[1]}
report_listen = 127.0.0.2:${p[2]}
workers = 2
database = "$JR_DATABASE"
log_level = info
CONF
	fleet_conf >>"$B/agent.conf"
	(
		export JR_AGENT_METRICS=http://127.0.0.2:${p[1]}
		jr_agent_start "$B"
	) || return 1
	(
		export JR_LISTEN=127.0.0.2:${p[3]} JR_SPOA_ADDR=127.0.0.2:${p[0]} JR_REPORT_ADDR=127.0.0.2:${p[2]}
		export JR_STATS_LISTEN=127.0.0.2:$(jr_free_port) JR_STATS_SOCK=$B/haproxy.sock
		((${#JR_STATS_SOCK} > 100)) && JR_STATS_SOCK=$(mktemp -u /tmp/jr-haproxy.XXXXXX.sock)
		export JR_STATS_URL=http://$JR_STATS_LISTEN
		jr_haproxy_start "$B"
	) || return 1
	export URL_B=http://127.0.0.2:${p[3]} METRICS_B=http://127.0.0.2:${p[1]}
}

# hit URL KEY [BODY]: one chat request; prints its status on a line of its own.
hit() {
	curl -sS --max-time 10 -o /dev/null -w '%{http_code}\n' \
		-H "authorization: Bearer $2" -H 'content-type: application/json' \
		--data-binary "${3:-$(chat_body fleet-model)}" "$1/v1/chat/completions" || echo 000
}

# hammer KEY N [BODY]: N requests alternating between the nodes, two clients at a time;
# prints "admitted refused429 other".
hammer() {
	local key=$1 n=$2 body=${3:-} i
	for ((i = 0; i < n; i++)); do
		hit "$URL_A" "$key" "$body" &
		hit "$URL_B" "$key" "$body"
		wait
	done | awk '/^200/ { a++ } /^429/ { r++ } /^[0-9]/ && !/^200/ && !/^429/ { o++ }
		END { printf "%d %d %d\n", a, r, o }'
}

sql() {
	psql -X -q -t -A -v ON_ERROR_STOP=1 -d "$JR_DATABASE" -c "$1"
}

@test "both nodes serve and report fleet mode" {
	local k
	jr_ctl tenant add t-up >/dev/null
	k=$(issue_key t-up)
	eventually 5 bash -c "[[ \$(curl -s -o /dev/null -w '%{http_code}' -H 'authorization: Bearer $k' -H 'content-type: application/json' --data-binary '$(chat_body fleet-model)' $URL_B/v1/chat/completions) == 200 ]]"
	[[ $(hit "$URL_A" "$k") == 200 ]]
	curl -fsS "$METRICS_A/healthz" | grep -q '"limits":"fleet"'
	curl -fsS "$METRICS_B/healthz" | grep -q '"limits":"fleet"'
}

@test "a tenant limited to N requests per minute gets N admitted across both nodes" {
	local k out
	jr_ctl tenant add t-rpm >/dev/null
	k=$(issue_key t-rpm)
	sql "SELECT jairouter.set_limit('tenant', 'requests', 'sliding_window', 20, 60000, 't-rpm')" >/dev/null
	sleep 0.5
	out=$(hammer "$k" 25)
	echo "admitted refused other: $out"
	# Exact: one Lua script per request in one Redis (tolerance 0).
	[[ $out == "20 30 0" ]]
	curl -fsS "$METRICS_A/metrics" | grep -q 'jairouter_limit_decisions_total{where="fleet"} [1-9]'
	curl -fsS "$METRICS_B/metrics" | grep -q 'jairouter_limit_decisions_total{where="fleet"} [1-9]'
}

@test "a token quota holds across both nodes (reserved at admission, reconciled to real usage)" {
	local k out used
	jr_ctl tenant add t-quota >/dev/null
	k=$(issue_key t-quota)
	sql "SELECT jairouter.set_limit('tenant', 'quota', 'day', 400, NULL, 't-quota')" >/dev/null
	sleep 0.5
	out=$(hammer "$k" 30 "$(chat_body fleet-model ',"max_tokens":40')")
	echo "admitted refused other: $out"
	read -r adm ref oth <<<"$out"
	((ref > 0 && oth == 0 && adm > 0))
	# What the upstream really used (usage rows, written by both agents) stays within
	# the quota, and the quota was used up to within one reservation.
	eventually 5 bash -c "[[ \$(psql -X -t -A -d '$JR_DATABASE' -c \"SELECT requests FROM jairouter.usage_by_tenant_model_day WHERE tenant = 't-quota'\") == $adm ]]"
	used=$(sql "SELECT total_tokens FROM jairouter.usage_by_tenant_model_day WHERE tenant = 't-quota'")
	echo "used $used of 400"
	((used <= 400 && used >= 400 - 2 * 80))
}

@test "a money budget holds across both nodes (catalogue prices, reconciled to real usage)" {
	local k out cost
	jr_ctl tenant add t-budget >/dev/null
	k=$(issue_key t-budget)
	jr_ctl model add priced-model be_mock >/dev/null
	sql "SELECT jairouter.set_model_price('priced-model', 1000, 1000)" >/dev/null
	# 0.001 per token: a budget of 0.4 is 400 tokens' worth.
	sql "SELECT jairouter.set_limit('tenant', 'budget', 'day', 0.4, NULL, 't-budget')" >/dev/null
	sleep 0.5
	out=$(hammer "$k" 30 "$(chat_body priced-model ',"max_tokens":40')")
	echo "admitted refused other: $out"
	read -r adm ref oth <<<"$out"
	((ref > 0 && oth == 0 && adm > 0))
	eventually 5 bash -c "[[ \$(psql -X -t -A -d '$JR_DATABASE' -c \"SELECT requests FROM jairouter.usage_by_tenant_model_day WHERE tenant = 't-budget'\") == $adm ]]"
	cost=$(sql "SELECT (cost * 1000)::int FROM jairouter.usage_by_tenant_model_day WHERE tenant = 't-budget'")
	echo "spent $cost thousandths of 400"
	((cost <= 400 && cost >= 400 - 2 * 80))
}

# get URL KEY PATH: GET with KEY; body in $BATS_TEST_TMPDIR/body, status printed.
get() {
	curl -sS --max-time 10 -o "$BATS_TEST_TMPDIR/body" -w '%{http_code}' -H "authorization: Bearer $2" "$1$3" || echo 000
}

@test "a completed batch seen by both agents is billed once (docs/api.md, \"Billing a batch\")" {
	local k input batch tokens
	jr_ctl tenant add t-batch >/dev/null
	jr_ctl tenant settings t-batch '{"files_model":"fleet-model"}' >/dev/null
	k=$(issue_key t-batch)
	printf '{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"fleet-model","messages":[{"role":"user","content":"one"}]}}\n' >"$BATS_TEST_TMPDIR/in.jsonl"
	eventually 10 bash -c "curl -sS -o '$BATS_TEST_TMPDIR/up' -w '%{http_code}' -H 'authorization: Bearer $k' -F purpose=batch -F 'file=@$BATS_TEST_TMPDIR/in.jsonl' $URL_A/v1/files | grep -qx 200"
	input=$(jq -r .id "$BATS_TEST_TMPDIR/up")
	# Node B learns the owner from PostgreSQL's notification.
	eventually 10 bash -c "[[ \$(curl -s -o /dev/null -w '%{http_code}' -H 'authorization: Bearer $k' $URL_B/v1/files/$input) == 200 ]]"
	curl -sS -o "$BATS_TEST_TMPDIR/body" -H "authorization: Bearer $k" -H 'content-type: application/json' \
		--data-binary "{\"input_file_id\":\"$input\",\"endpoint\":\"/v1/chat/completions\",\"completion_window\":\"24h\"}" "$URL_A/v1/batches"
	batch=$(jq -r .id "$BATS_TEST_TMPDIR/body")
	[[ $batch == batch_* ]]
	eventually 10 bash -c "[[ \$(curl -s -o /dev/null -w '%{http_code}' -H 'authorization: Bearer $k' $URL_A/v1/batches/$batch) == 200 ]]"
	[[ $(get "$URL_A" "$k" "/v1/batches/$batch") == 200 ]]
	[[ $(jq -r .status "$BATS_TEST_TMPDIR/body") == finalizing ]]
	# A daily token quota shared in Redis, set before the batch completes (retrieves
	# reserve no tokens): the batch's tokens are charged to it once, by one agent.
	sql "SELECT jairouter.set_limit('tenant', 'quota', 'day', 1000000, NULL, 't-batch')" >/dev/null
	sleep 0.5
	[[ $(get "$URL_A" "$k" "/v1/batches/$batch") == 200 ]]
	[[ $(jq -r .status "$BATS_TEST_TMPDIR/body") == completed ]]
	tokens="$(jq -r .usage.input_tokens "$BATS_TEST_TMPDIR/body") $(jq -r .usage.output_tokens "$BATS_TEST_TMPDIR/body")"
	# Node B sees it completed too (its row came by notification), and A again.
	eventually 10 bash -c "[[ \$(curl -s -o /dev/null -w '%{http_code}' -H 'authorization: Bearer $k' $URL_B/v1/batches/$batch) == 200 ]]"
	[[ $(get "$URL_B" "$k" "/v1/batches/$batch") == 200 ]]
	[[ $(get "$URL_A" "$k" "/v1/batches/$batch") == 200 ]]
	eventually 5 bash -c "curl -fsS '$METRICS_A/metrics' | grep -Eq '^jairouter_batches_bills_sent_total [2-9]'"
	eventually 5 bash -c "curl -fsS '$METRICS_B/metrics' | grep -Eq '^jairouter_batches_bills_sent_total [1-9]'"
	[[ $(sql "SELECT count(*) FROM jairouter.batch_usage WHERE batch_id = '$batch'") == 1 ]]
	[[ $(sql "SELECT prompt_tokens || ' ' || completion_tokens FROM jairouter.usage_by_tenant_model_day
	    WHERE tenant = 't-batch' AND model = 'fleet-model'") == "$tokens" ]]
	local tid n
	tid=$(sql "SELECT id FROM jairouter.tenants WHERE name = 't-batch'")
	n=$(($(awk '{ print $1 + $2 }' <<<"$tokens")))
	eventually 5 bash -c "[[ \$(redis-cli -p $REDIS_PORT --scan --pattern 'jr:*:t$tid:p*' | xargs -r redis-cli -p $REDIS_PORT MGET | awk '{ s += \$1 } END { print s + 0 }') == $n ]]"
	[[ $(curl -fsS "$METRICS_A/metrics" "$METRICS_B/metrics" | awk '$1 == "jairouter_limit_batches_charged_total" { s += $2 } END { print s }') == 1 ]]
}

@test "Redis killed: each node enforces its share, visibly; Redis back: fleet-wide again" {
	local k out
	jr_ctl tenant add t-redis >/dev/null
	k=$(issue_key t-redis)
	sql "SELECT jairouter.set_limit('tenant', 'requests', 'sliding_window', 10, 60000, 't-redis')" >/dev/null
	sleep 0.5
	jr_stop_pid "$A" redis KILL
	out=$(hammer "$k" 10)
	echo "without Redis: $out"
	# Never unlimited: each node admits 10 / 2 = 5.
	[[ $out == "10 10 0" ]]
	curl -fsS "$METRICS_A/healthz" | grep -q '"limits":"fleet-fallback"'
	curl -fsS "$METRICS_A/metrics" | grep -q 'jairouter_limit_fleet_fallback 1'
	curl -fsS "$METRICS_B/metrics" | grep -q 'jairouter_limit_decisions_total{where="fallback"} [1-9]'
	grep -q 'enforcing limits locally' "$A/agent.log"
	start_redis
	# Recovery: a new tenant's limit is fleet-wide again.
	jr_ctl tenant add t-back >/dev/null
	k=$(issue_key t-back)
	sql "SELECT jairouter.set_limit('tenant', 'requests', 'sliding_window', 6, 60000, 't-back')" >/dev/null
	eventually 10 bash -c "curl -fsS '$METRICS_A/healthz' | grep -q '\"limits\":\"fleet\"' && curl -fsS '$METRICS_B/healthz' | grep -q '\"limits\":\"fleet\"'" || {
		# A probe request lets each node notice Redis is back.
		for i in 1 2 3 4 5 6; do hit "$URL_A" "$(issue_key t-up)" >/dev/null; hit "$URL_B" "$(issue_key t-up)" >/dev/null; sleep 0.5; done
		curl -fsS "$METRICS_A/healthz" | grep -q '"limits":"fleet"'
	}
	out=$(hammer "$k" 8)
	echo "Redis back: $out"
	[[ $out == "6 10 0" ]]
	grep -q 'Redis answers again' "$A/agent.log"
}
