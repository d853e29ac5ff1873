#!/usr/bin/env bats
# Limits, quotas, budgets and usage accounting end to end (docs/limits.md): every scope
# and dimension through HAProxy and the agent, the 429 envelopes and x-ratelimit-*
# headers, concurrency slots released on completion and on client abort, live changes,
# usage rows in PostgreSQL equal to what the mock reported, and usage kept across a
# restart. One stack for the file; every test uses its own tenant so counters never mix.

load helpers
stack_hooks

setup_file() {
	stack_start
	# Usage is written every 200 ms here (restart-only setting); the access log on.
	agent_restart_with 'usage_flush_ms = 200' 'usage_wait_ms = 300' "access_log = $STACK/access.log"
	jr_ctl model add lim-model be_mock >/dev/null
	jr_ctl model add other-model be_mock >/dev/null
}

# lchat KEY [CURL_ARGS...]: a chat request for lim-model.
lchat() {
	local key=$1
	shift
	BODY=${BODY:-$(chat_body lim-model)} auth_chat "$key" "$@"
}

# count_status N KEY STATUS: sends N requests, prints how many answered STATUS.
count_status() {
	local n=$1 key=$2 want=$3 got=0 i
	for ((i = 0; i < n; i++)); do
		lchat "$key"
		[[ $STATUS == "$want" ]] && got=$((got + 1))
	done
	echo "$got"
}

prefix_of() {
	printf '%s' "${1:0:11}"
}

@test "requests per minute per key: N admitted, then 429 rate_limit_exceeded with retry-after and headers" {
	local k1 k2
	k1=$(new_tenant rpm)
	k2=$(issue_key rpm)
	db_sql "SELECT jairouter.set_limit('key', 'requests', 'sliding_window', 3, 60000, 'rpm')" >/dev/null
	sleep 0.3
	lchat "$k1"
	expect_status 200
	[[ $(hdr x-ratelimit-limit-requests) == 3 ]]
	[[ $(hdr x-ratelimit-remaining-requests) == 2 ]]
	[[ -n $(hdr x-ratelimit-reset-requests) ]]
	lchat "$k1"
	lchat "$k1"
	expect_status 200
	[[ $(hdr x-ratelimit-remaining-requests) == 0 ]]
	lchat "$k1"
	expect_openai_error 429 rate_limit_error rate_limit_exceeded
	[[ $(hdr retry-after) -ge 1 && $(hdr retry-after) -le 60 ]]
	[[ $(hdr x-ratelimit-remaining-requests) == 0 ]]
	# Another key of the tenant has its own counter.
	lchat "$k2"
	expect_status 200
}

@test "a tenant default applies to its keys and a key override replaces it; changes apply live" {
	local k1 k2 id
	k1=$(new_tenant ovr)
	k2=$(issue_key ovr)
	id=$(db_sql "SELECT jairouter.set_limit('key', 'requests', 'sliding_window', 1, 60000, 'ovr')")
	db_sql "SELECT jairouter.set_limit('key', 'requests', 'sliding_window', 4, 60000, NULL, '$(prefix_of "$k2")')" >/dev/null
	sleep 0.3
	[[ $(count_status 3 "$k1" 200) == 1 ]]
	[[ $(count_status 6 "$k2" 200) == 4 ]]
	# Raising the tenant default takes effect at once (a changed row starts fresh).
	db_sql "UPDATE jairouter.limits SET amount = 5 WHERE id = $id" >/dev/null
	sleep 0.3
	[[ $(count_status 6 "$k1" 200) == 5 ]]
	# Disabling it removes it.
	db_sql "UPDATE jairouter.limits SET enabled = false WHERE id = $id" >/dev/null
	sleep 0.3
	[[ $(count_status 3 "$k1" 200) == 3 ]]
}

@test "tenant, model and tenant x model scopes count across keys" {
	local k1 k2
	k1=$(new_tenant scp)
	k2=$(issue_key scp)
	db_sql "SELECT jairouter.set_limit('tenant', 'requests', 'token_bucket', 3, 60000, 'scp')" >/dev/null
	sleep 0.3
	[[ $(count_status 2 "$k1" 200) == 2 ]]
	[[ $(count_status 3 "$k2" 200) == 1 ]]
	# tenant x model: only lim-model is limited for tenant scm.
	k1=$(new_tenant scm)
	db_sql "SELECT jairouter.set_limit('tenant_model', 'requests', 'leaky_bucket', 2, 60000, 'scm', NULL, 'lim-model')" >/dev/null
	sleep 0.3
	[[ $(count_status 4 "$k1" 200) == 2 ]]
	BODY=$(chat_body other-model) lchat "$k1"
	expect_status 200
}

@test "model and backend scopes count across tenants; a warm-up limit starts at its cold rate" {
	local k1 k2
	jr_ctl model add scoped-a be_mock2 >/dev/null
	jr_ctl model add scoped-b be_mock2 >/dev/null
	k1=$(new_tenant mscope1)
	k2=$(new_tenant mscope2)
	# scoped-a: 3 per minute whoever asks; each backend: 5 per minute (one row without a
	# model filter: one counter per backend; only be_mock2's is used here, and the row is
	# disabled at the end so the other tests' be_mock is not limited).
	db_sql "SELECT jairouter.set_limit('model', 'requests', 'sliding_window', 3, 60000, NULL, NULL, 'scoped-a')" >/dev/null
	bid=$(db_sql "SELECT jairouter.set_limit('backend', 'requests', 'sliding_window', 5, 60000)")
	sleep 0.3
	BODY=$(chat_body scoped-a) count_status 2 "$k1" 200 >/dev/null
	[[ $(BODY=$(chat_body scoped-a) count_status 2 "$k2" 200) == 1 ]]
	[[ $(BODY=$(chat_body scoped-b) count_status 4 "$k2" 200) == 2 ]]
	db_sql "UPDATE jairouter.limits SET enabled = false WHERE id = $bid" >/dev/null
	sleep 0.3
	# Warm-up: 60 per second after 10 minutes, 60 / 3 = 20 available at the start.
	k1=$(new_tenant warm)
	db_sql "INSERT INTO jairouter.limits (tenant_id, scope, dimension, algorithm, amount, window_ms, warmup_ms)
	     SELECT id, 'tenant', 'requests', 'warmup', 60, 1000, 600000 FROM jairouter.tenants WHERE name = 'warm'" >/dev/null
	sleep 0.3
	lchat "$k1"
	expect_status 200
	[[ $(hdr x-ratelimit-limit-requests) == 60 ]]
	rem=$(hdr x-ratelimit-remaining-requests)
	((rem >= 18 && rem <= 21))
}

@test "client IP and end-user scopes" {
	local k
	k=$(new_tenant ipu)
	db_sql "SELECT jairouter.set_limit('user', 'requests', 'sliding_window', 2, 60000, 'ipu')" >/dev/null
	sleep 0.3
	lchat "$k" -H 'x-jairouter-user: alice'
	lchat "$k" -H 'x-jairouter-user: alice'
	expect_status 200
	lchat "$k" -H 'x-jairouter-user: alice'
	expect_status 429
	lchat "$k" -H 'x-jairouter-user: bob'
	expect_status 200
	k=$(new_tenant ipt)
	db_sql "SELECT jairouter.set_limit('ip', 'requests', 'sliding_window', 1, 60000, 'ipt')" >/dev/null
	sleep 0.3
	[[ $(count_status 3 "$k" 200) == 1 ]]
}

@test "tokens per minute: reservation from max_tokens, a request larger than the limit is refused" {
	local k
	k=$(new_tenant tpm)
	db_sql "SELECT jairouter.set_limit('key', 'tokens', 'token_bucket', 1000, 60000, 'tpm')" >/dev/null
	sleep 0.3
	BODY=$(chat_body lim-model ',"max_tokens":5000') lchat "$k"
	expect_openai_error 429 rate_limit_error rate_limit_exceeded
	grep -q 'can' "$BATS_TEST_TMPDIR/body"
	BODY=$(chat_body lim-model ',"max_tokens":400') lchat "$k"
	expect_status 200
	[[ $(hdr x-ratelimit-limit-tokens) == 1000 ]]
	rem=$(hdr x-ratelimit-remaining-tokens)
	((rem < 600))
	# The mock used far fewer tokens than reserved: the refund makes room again.
	eventually 5 bash -c "BODY='$(chat_body lim-model ',"max_tokens":900')'; curl -s -o /dev/null -w '%{http_code}' -H 'authorization: Bearer $k' -H 'content-type: application/json' --data-binary \"\$BODY\" $JR_URL/v1/chat/completions | grep -qx 200"
}

@test "token quota per day: insufficient_quota once exhausted, with retry-after" {
	local k
	k=$(new_tenant quo)
	db_sql "SELECT jairouter.set_limit('tenant', 'quota', 'day', 600, NULL, 'quo')" >/dev/null
	sleep 0.3
	BODY=$(chat_body lim-model ',"max_tokens":200') lchat "$k"
	expect_status 200
	# Reconciled down to the real usage, then exhausted by large reservations.
	sleep 0.5
	BODY=$(chat_body lim-model ',"max_tokens":590') lchat "$k"
	expect_openai_error 429 insufficient_quota insufficient_quota
	[[ $(hdr retry-after) -ge 1 ]]
}

@test "money budget per day from catalogue prices: insufficient_quota" {
	local k
	k=$(new_tenant bud)
	db_sql "SELECT jairouter.set_model_price('lim-model', 1000, 1000)" >/dev/null
	# 1000 per million tokens = 0.001 per token; a budget of 0.3 allows ~300 tokens.
	db_sql "SELECT jairouter.set_limit('tenant', 'budget', 'day', 0.3, NULL, 'bud')" >/dev/null
	sleep 0.3
	BODY=$(chat_body lim-model ',"max_tokens":100') lchat "$k"
	expect_status 200
	BODY=$(chat_body lim-model ',"max_tokens":400') lchat "$k"
	expect_openai_error 429 insufficient_quota insufficient_quota
	db_sql "SELECT jairouter.set_model_price('lim-model', 0, 0)" >/dev/null
}

@test "concurrency: a slot is taken while a request runs and released when it ends, and on client abort" {
	local k
	k=$(new_tenant conc)
	db_sql "SELECT jairouter.set_limit('key', 'concurrent', 'concurrency', 1, NULL, 'conc')" >/dev/null
	sleep 0.3
	curl -s -o /dev/null --max-time 10 -H "authorization: Bearer $k" -H 'content-type: application/json' \
		-H 'x-mock-delay-ms: 1500' --data-binary "$(chat_body lim-model)" "$JR_URL/v1/chat/completions" &
	local bg=$!
	sleep 0.5
	lchat "$k"
	expect_openai_error 429 rate_limit_error rate_limit_exceeded
	wait "$bg"
	eventually 3 status_is_lim "$k" 200
	# Client abort: curl gives up after 0.4 s. The slot stays taken while the upstream
	# still works on the request; HAProxy's report when the transaction ends (here when
	# the delayed answer arrives for a client that left) releases it.
	curl -s -o /dev/null --max-time 0.4 -H "authorization: Bearer $k" -H 'content-type: application/json' \
		-H 'x-mock-delay-ms: 1500' --data-binary "$(chat_body lim-model)" "$JR_URL/v1/chat/completions" || true
	lchat "$k"
	expect_status 429
	eventually 8 status_is_lim "$k" 200
}

quota_refused() {
	BODY=$(chat_body lim-model ',"max_tokens":100') lchat "$1"
	expect_openai_error 429 insufficient_quota insufficient_quota
}

@test "server scope counts on the server the router chose; adaptive concurrency shrinks after slow completions" {
	local k i bg
	k=$(new_tenant srv)
	db_sql "INSERT INTO jairouter.limits (tenant_id, scope, dimension, algorithm, amount, window_ms)
	     SELECT id, 'server', 'requests', 'sliding_window', 2, 60000 FROM jairouter.tenants WHERE name = 'srv'" >/dev/null
	sleep 0.3
	[[ $(count_status 3 "$k" 200) == 2 ]]
	grep -q 'tenant=srv .* ls=mock1 ' "$STACK/haproxy.log"
	# Adaptive: a ceiling of 3 in flight that each completion slower than 100 ms
	# multiplies by 0.9 (fed by the end-of-request reports): after 4 slow ones,
	# floor(3 * 0.9^4) = 1.
	k=$(new_tenant adapt)
	db_sql "INSERT INTO jairouter.limits (tenant_id, scope, dimension, algorithm, amount, min_limit, latency_target_ms)
	     SELECT id, 'tenant', 'concurrent', 'adaptive', 3, 1, 100 FROM jairouter.tenants WHERE name = 'adapt'" >/dev/null
	sleep 0.3
	for i in 1 2 3 4; do
		lchat "$k" -H 'x-mock-delay-ms: 200'
		expect_status 200
	done
	sleep 0.3 # the last report
	curl -s -o /dev/null --max-time 10 -H "authorization: Bearer $k" -H 'content-type: application/json' \
		-H 'x-mock-delay-ms: 1000' --data-binary "$(chat_body lim-model)" "$JR_URL/v1/chat/completions" &
	bg=$!
	sleep 0.3
	lchat "$k"
	expect_openai_error 429 rate_limit_error rate_limit_exceeded
	wait "$bg"
}

status_is_lim() {
	lchat "$1"
	expect_status "$2"
}

@test "usage rows in PostgreSQL equal what the mock reported; nothing for refused requests" {
	local k i pt=0 ct=0 got
	k=$(new_tenant use)
	db_sql "SELECT jairouter.set_limit('key', 'requests', 'sliding_window', 5, 60000, 'use')" >/dev/null
	sleep 0.3
	for ((i = 0; i < 7; i++)); do
		BODY=$(chat_body lim-model ",\"max_tokens\":$((i + 3))") lchat "$k"
		if [[ $STATUS == 200 ]]; then
			pt=$((pt + $(json b.usage.prompt_tokens)))
			ct=$((ct + $(json b.usage.completion_tokens)))
		fi
	done
	eventually 5 bash -c "[[ \$(psql -X -t -A -d '$JR_DATABASE' -c \"SELECT requests FROM jairouter.usage_by_tenant_model_day WHERE tenant = 'use'\") == 5 ]]"
	got=$(db_sql "SELECT prompt_tokens || ' ' || completion_tokens || ' ' || estimated_requests FROM jairouter.usage_by_tenant_model_day WHERE tenant = 'use' AND model = 'lim-model'")
	[[ $got == "$pt $ct 0" ]]
}

@test "usage per hour and end user: the user header and no user, never the key; jairouterctl usage reports it" {
	local k got
	k=$(new_tenant euh)
	lchat "$k" -H 'x-jairouter-user: alice@example.com'
	expect_status 200
	lchat "$k" -H 'x-jairouter-user: alice@example.com'
	lchat "$k"
	eventually 5 bash -c "[[ \$(psql -X -t -A -d '$JR_DATABASE' -c \"SELECT sum(requests) FROM jairouter.usage_hourly_report WHERE tenant = 'euh'\") == 3 ]]"
	got=$(db_sql "SELECT string_agg(\"user\" || '=' || requests, ',' ORDER BY \"user\") FROM jairouter.usage_hourly_report WHERE tenant = 'euh'")
	echo "users: $got"
	[[ $got == "=1,alice@example.com=2" ]]
	[[ $(db_sql "SELECT count(*) FROM jairouter.usage_hourly_report WHERE tenant = 'euh' AND key = '$(prefix_of "$k")'") == 2 ]]
	[[ $(db_sql "SELECT count(*) FROM jairouter.usage_hourly WHERE end_user LIKE '%$k%'") == 0 ]]
	got=$(jr_ctl usage --by user --tenant euh --format csv)
	echo "$got"
	grep -q '^alice@example.com,2,' <<<"$got"
	grep -q '^total,3,' <<<"$got"
}

# access_line ID: the access log's line of request ID (jq -c), once written.
access_line() {
	eventually 5 bash -c "grep -q '\"request_id\":\"$1\"' '$STACK/access.log'"
	jq -c --arg id "$1" 'select(.request_id == $id)' "$STACK/access.log"
}

@test "access log: one JSON line per request, with usage and cost from the agent, and refusals with their code" {
	local k id1 id2 id3 line
	k=$(new_tenant alg)
	jr_ctl model add alog-model be_mock --price-in 2 --price-out 4 >/dev/null
	db_sql "SELECT jairouter.set_limit('key', 'requests', 'sliding_window', 2, 60000, 'alg')" >/dev/null
	sleep 0.5
	BODY=$(chat_body alog-model) lchat "$k" -H 'x-jairouter-user: carol'
	expect_status 200
	id1=$(hdr x-request-id)
	BODY=$(chat_body alog-model ',"stream":true') lchat "$k"
	expect_status 200
	id2=$(hdr x-request-id)
	BODY=$(chat_body alog-model) lchat "$k"
	expect_status 429
	id3=$(hdr x-request-id)
	line=$(access_line "$id1")
	echo "$line"
	jq -e --arg p "$(prefix_of "$k")" '.tenant == "alg" and .key_prefix == $p and .end_user == "carol"
		and .model == "alog-model" and .status == 200 and .verdict == "allow" and .error_code == null
		and .prompt_tokens > 0 and .completion_tokens > 0
		and .total_tokens == .prompt_tokens + .completion_tokens and .usage_estimated == false
		and (.cost - (.prompt_tokens * 2 + .completion_tokens * 4) / 1000000 | fabs) < 0.000002
		and .time_total_ms >= 0 and .time_decision_ms >= 0 and .method == "POST"
		and .path == "/v1/chat/completions" and .backend == "be_mock" and .truncated == false
		and (.ts | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$"))' <<<"$line"
	line=$(access_line "$id2")
	echo "$line"
	jq -e '.status == 200 and .total_tokens > 0 and .end_user == null' <<<"$line"
	line=$(access_line "$id3")
	echo "$line"
	jq -e --arg p "$(prefix_of "$k")" '.status == 429 and .verdict == "deny"
		and .error_code == "rate_limit_exceeded" and .retry_after_s >= 1 and .prompt_tokens == null
		and .tenant == "alg" and .key_prefix == $p' <<<"$line"
	# Every line is one JSON object; no key in it.
	jq -e -s 'length >= 3' "$STACK/access.log"
	run grep -cF -- "$k" "$STACK/access.log"
	[[ $output == 0 ]]
	curl -fsS "$JR_AGENT_METRICS/metrics" | grep -q '^jairouter_access_log_dropped_total 0'
}

@test "streamed responses without usage are billed as estimated, never zero" {
	local k got
	k=$(new_tenant str)
	# x-mock-no-usage: a model server that never sends usage in streams.
	BODY=$(chat_body lim-model ',"stream":true,"max_tokens":50') lchat "$k" -H 'x-mock-no-usage: 1'
	expect_status 200
	eventually 5 bash -c "[[ \$(psql -X -t -A -d '$JR_DATABASE' -c \"SELECT estimated_requests FROM jairouter.usage_by_tenant_model_day WHERE tenant = 'str'\") == 1 ]]"
	got=$(db_sql "SELECT completion_tokens FROM jairouter.usage_by_tenant_model_day WHERE tenant = 'str'")
	[[ $got == 50 ]]
}

@test "usage flushed before a graceful restart is kept, and the restart writes what was pending" {
	local k before after
	k=$(new_tenant rst)
	for i in 1 2 3; do lchat "$k"; done
	jr_agent_stop "$STACK"
	before=$(db_sql "SELECT requests FROM jairouter.usage_by_tenant_model_day WHERE tenant = 'rst'")
	[[ $before == 3 ]]
	jr_agent_start "$STACK"
	eventually 10 status_is_lim "$k" 200
	eventually 5 bash -c "[[ \$(psql -X -t -A -d '$JR_DATABASE' -c \"SELECT requests FROM jairouter.usage_by_tenant_model_day WHERE tenant = 'rst'\") == 4 ]]"
	curl -fsS "$JR_AGENT_METRICS/metrics" | grep -q '^jairouter_limit_admitted_total'
	curl -fsS "$JR_AGENT_METRICS/healthz" | grep -q '"limits":"local"'
}

@test "budget exhausted while a stream is in flight: the stream completes, the next request is refused" {
	local k
	k=$(new_tenant mid)
	db_sql "SELECT jairouter.set_model_price('other-model', 1000, 1000)" >/dev/null
	# 0.001 per token: a budget of 0.2 holds one reservation of ~150 tokens, not two.
	db_sql "SELECT jairouter.set_limit('tenant', 'budget', 'day', 0.2, NULL, 'mid')" >/dev/null
	sleep 0.3
	curl -sS -N --max-time 10 -o "$BATS_TEST_TMPDIR/stream" -H "authorization: Bearer $k" \
		-H 'content-type: application/json' -H 'x-mock-delay-ms: 1200' \
		--data-binary "$(chat_body other-model ',"stream":true,"max_tokens":120')" \
		"$JR_URL/v1/chat/completions" &
	local bg=$!
	sleep 0.4
	BODY=$(chat_body other-model ',"max_tokens":120') lchat "$k"
	expect_openai_error 429 insufficient_quota insufficient_quota
	wait "$bg"
	grep -q 'data: \[DONE\]' "$BATS_TEST_TMPDIR/stream"
	db_sql "SELECT jairouter.set_model_price('other-model', 0, 0)" >/dev/null
}

@test "PostgreSQL down: usage is kept in memory and written when it returns" {
	local k
	k=$(new_tenant pgd)
	lchat "$k"
	expect_status 200
	jr_pg_stop "$STACK"
	# Cached keys keep working; their usage waits.
	lchat "$k"
	expect_status 200
	lchat "$k"
	expect_status 200
	eventually 3 bash -c "curl -fsS '$JR_AGENT_METRICS/metrics' | grep -q '^jairouter_usage_rows_pending [1-9]'"
	jr_pg_start "$STACK"
	eventually 20 bash -c "[[ \$(psql -X -t -A -d '$JR_DATABASE' -c \"SELECT requests FROM jairouter.usage_by_tenant_model_day WHERE tenant = 'pgd'\") == 3 ]]"
	curl -fsS "$JR_AGENT_METRICS/metrics" | grep -q '^jairouter_usage_rows_dropped_total 0'
}

@test "a stream metered by the adapter is billed with the usage the adapter reports, not estimated" {
	local k got
	k=$(new_tenant met)
	jr_ctl model add metered-model be_mock2 >/dev/null
	db_sql "SELECT jairouter.set_endpoint('be_mock2', '$JR_MOCK2_URL/v1')" >/dev/null
	sleep 0.3
	BODY=$(chat_body metered-model ',"stream":true,"max_tokens":50') lchat "$k" -N
	expect_status 200
	grep -q 'data: \[DONE\]' "$BATS_TEST_TMPDIR/body"
	eventually 5 bash -c "[[ \$(psql -X -t -A -d '$JR_DATABASE' -c \"SELECT requests FROM jairouter.usage_by_tenant_model_day WHERE tenant = 'met'\") == 1 ]]"
	got=$(db_sql "SELECT estimated_requests || ' ' || prompt_tokens || ' ' || completion_tokens FROM jairouter.usage_by_tenant_model_day WHERE tenant = 'met'")
	echo "usage: $got"
	read -r est pt ct <<<"$got"
	((est == 0 && pt > 0 && ct > 0 && ct != 50))
}

@test "without Redis a restart does not reset quotas and budgets: counters start from this month's usage rows" {
	local k tid mid kid
	k=$(new_tenant seeded)
	db_sql "SELECT jairouter.set_limit('tenant', 'quota', 'month', 1000, NULL, 'seeded')" >/dev/null
	sleep 0.3
	lchat "$k"
	expect_status 200
	# Usage recorded earlier this month (another agent, or before a restart): 950 tokens.
	tid=$(db_sql "SELECT id FROM jairouter.tenants WHERE name = 'seeded'")
	kid=$(db_sql "SELECT id FROM jairouter.api_keys WHERE tenant_id = $tid")
	mid=$(db_sql "SELECT id FROM jairouter.models WHERE name = 'lim-model'")
	db_sql "INSERT INTO jairouter.usage_daily (day, tenant_id, key_id, model_id, requests, prompt_tokens, completion_tokens)
	     VALUES (date_trunc('month', now() AT TIME ZONE 'UTC')::date, $tid, $kid, $mid, 9, 450, 500)
	     ON CONFLICT (day, tenant_id, key_id, model_id) DO UPDATE SET requests = usage_daily.requests + 9,
	     prompt_tokens = usage_daily.prompt_tokens + 450, completion_tokens = usage_daily.completion_tokens + 500" >/dev/null
	n=$(grep -c 'seeds the local quota' "$STACK/agent.log" || true)
	jr_agent_stop "$STACK"
	jr_agent_start "$STACK"
	eventually 5 bash -c "(( \$(grep -c 'seeds the local quota' '$STACK/agent.log') > $n ))"
	# (retried while HAProxy sees the restarted agent come back; a refusal charges nothing)
	eventually 10 quota_refused "$k"
	BODY=$(chat_body lim-model ',"max_tokens":5') lchat "$k"
	expect_status 200
}
