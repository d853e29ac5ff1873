#!/usr/bin/env bats
# The response cache (docs/cache.md, sql/018_cache.sql) end to end: HAProxy, the agent,
# jairouter-adapter and the OpenAI mock. A tenant that opted in for a model gets a
# repeated request (the same canonical body) answered from the adapter's memory: the
# mock's own count of answers proves that a hit never reaches it. Streams are replayed
# as the same SSE events (read by the official openai SDK); tenants never share entries
# unless the model's cache is shared; requests that ask not to be stored are neither
# served nor stored; entries expire; errors and answers over the size bound are not
# stored; hits are billed with the stored usage at the hit price factor.

bats_require_minimum_version 1.5.0

load helpers
stack_hooks

setup_file() {
	stack_start
	agent_restart_with 'usage_flush_ms = 200' 'usage_wait_ms = 2000'
	jr_ctl model add cached be_mock --price-in 1000 --price-out 1000 >/dev/null
	jr_ctl model add short be_mock >/dev/null
	jr_ctl model add small be_mock >/dev/null
	jr_ctl model add shared-m be_mock >/dev/null
	jr_ctl endpoint set be_mock "$JR_MOCK_URL/v1" >/dev/null
	KEY_A=$(new_tenant ta)
	KEY_B=$(new_tenant tb)
	KEY_C=$(new_tenant tc)
	KEY_S1=$(new_tenant s1)
	KEY_S2=$(new_tenant s2)
	KEY_P=$(new_tenant priced)
	export KEY_A KEY_B KEY_C KEY_S1 KEY_S2 KEY_P
	db_sql "SELECT jairouter.set_cache('ta', 'cached', 300, 65536);
		SELECT jairouter.set_cache('tb', 'cached', 300, 65536);
		SELECT jairouter.set_cache('ta', 'small', 300, 1024);
		SELECT jairouter.set_cache('ta', 'short', 1);
		SELECT jairouter.set_cache('s1', 'shared-m', 300, 4096, 'shared');
		SELECT jairouter.set_cache('s2', 'shared-m', 300, 4096, 'shared');
		SELECT jairouter.set_cache('priced', 'cached', 300, 4096, 'tenant', 0)" >/dev/null
	jr_haproxy_server_up be_adapter adapter1 30
	# The agent has the policies once the last one's requests carry the header.
	BATS_TEST_TMPDIR=$BATS_FILE_TMPDIR eventually 10 cache_header_found "$KEY_P"
}

teardown() {
	stack_teardown
	# the fleet test's own processes, if it stopped half-way
	jr_stop_pid "$STACK" adapter-a TERM
	jr_stop_pid "$STACK" adapter-b TERM
	jr_stop_pid "$STACK" redis-cache TERM
}

cache_header_found() {
	BODY=$(body cached "policy probe") auth_chat "$1"
	[[ -n $(hdr x-jairouter-cache) ]]
}

# body MODEL TEXT [EXTRA_JSON_FIELDS]
body() {
	printf '{"model":"%s","messages":[{"role":"user","content":"%s"}]%s}' "$1" "$2" "${3:-}"
}

# answers: how many usage objects the mock has sent (one per chat answer it gave).
answers() {
	curl -fsS "$JR_MOCK_URL/_mock/usage" | node -e 'console.log(JSON.parse(require("fs").readFileSync(0, "utf8")).answers)'
}

adapter_metric() {
	curl -fsS "$JR_ADAPTER_URL/metrics" | awk -v n="$1" '$1 == n { print $2 }'
}

agent_metric() {
	curl -fsS "$JR_AGENT_METRICS/metrics" | awk -v n="$1" '$1 == n { print $2 }'
}

# cache_is WANT KEY BODY [CURL_ARGS...]: cached_chat's cache header is WANT ('': none).
cache_is() {
	local want=$1 got
	shift
	got=$(cached_chat "$@")
	[[ $got == "$want" ]]
}

# cached_chat KEY BODY [CURL_ARGS...]: one request; checks 200 and prints the cache header.
cached_chat() {
	local key=$1 b=$2
	shift 2
	BODY=$b auth_chat "$key" "$@"
	expect_status 200 >&2 || return 1
	hdr x-jairouter-cache
}

@test "a repeated request is answered from the cache and does not reach the model server" {
	local n0
	n0=$(answers)
	cache_is miss "$KEY_A" "$(body cached "first question")"
	cp "$BATS_TEST_TMPDIR/body" "$BATS_TEST_TMPDIR/first"
	[[ $(answers) == $((n0 + 1)) ]]
	# The same request with other whitespace and member order: the same canonical body.
	cache_is hit "$KEY_A" '{ "messages": [ {"content": "first question", "role": "user"} ],
		"model": "cached" }'
	[[ $(answers) == $((n0 + 1)) ]]
	cmp "$BATS_TEST_TMPDIR/first" "$BATS_TEST_TMPDIR/body"
	[[ $(hdr content-type) == application/json* ]]
	[[ -n $(hdr x-request-id) ]]
	# Another request is another entry.
	cache_is miss "$KEY_A" "$(body cached "second question")"
	[[ $(answers) == $((n0 + 2)) ]]
}

@test "a streamed answer is replayed as the same SSE stream, read by the official openai SDK" {
	local n0 first second
	n0=$(answers)
	first=$(node "$JR_ROOT/tests/clients/cache-stream.mjs" "$JR_URL" "$KEY_A" cached "stream me")
	second=$(node "$JR_ROOT/tests/clients/cache-stream.mjs" "$JR_URL" "$KEY_A" cached "stream me")
	echo "$first"
	echo "$second"
	[[ $(answers) == $((n0 + 1)) ]]
	node -e '
		const [a, b] = process.argv.slice(1).map(JSON.parse);
		if (a.cache !== "miss" || b.cache !== "hit") throw new Error("headers " + a.cache + " " + b.cache);
		if (!a.text || a.text !== b.text || a.chunks !== b.chunks || a.chunks < 2) throw new Error("different streams");
		if (a.finish !== "stop" || b.finish !== "stop" || a.id !== b.id) throw new Error("finish or id differ");
	' "$first" "$second"
	# The raw replay: SSE events ending with [DONE].
	BODY=$(body cached "stream me" ',"stream":true') auth_chat "$KEY_A" -N
	expect_status 200
	[[ $(hdr x-jairouter-cache) == hit ]]
	[[ $(hdr content-type) == text/event-stream* ]]
	[[ $(tail -c 15 "$BATS_TEST_TMPDIR/body") == *"data: [DONE]"* ]]
	[[ $(answers) == $((n0 + 1)) ]]
}

@test "tenants never share entries unless the model's cache is shared" {
	local n0
	n0=$(answers)
	cache_is miss "$KEY_A" "$(body cached "isolated")"
	cache_is miss "$KEY_B" "$(body cached "isolated")"
	[[ $(answers) == $((n0 + 2)) ]]
	cache_is hit "$KEY_B" "$(body cached "isolated")"
	# A tenant without a policy: no header, every request reaches the model server.
	cache_is '' "$KEY_C" "$(body cached "isolated")"
	[[ $(answers) == $((n0 + 3)) ]]
	# Shared scope: s2 gets the entry s1's request stored.
	cache_is miss "$KEY_S1" "$(body shared-m "shared question")"
	cache_is hit "$KEY_S2" "$(body shared-m "shared question")"
	[[ $(answers) == $((n0 + 4)) ]]
}

@test "requests that ask not to be stored are neither served from the cache nor stored" {
	local n0
	n0=$(answers)
	cache_is bypass "$KEY_A" "$(body cached "private")" -H 'cache-control: no-store'
	cache_is bypass "$KEY_A" "$(body cached "private")" -H 'Cache-Control: max-age=0, no-cache'
	cache_is bypass "$KEY_A" "$(body cached "private" ',"store":false')"
	[[ $(answers) == $((n0 + 3)) ]]
	# Nothing was stored: the first cacheable request is a miss.
	cache_is miss "$KEY_A" "$(body cached "private")"
	# An entry exists now, but no-store still goes to the model server.
	cache_is bypass "$KEY_A" "$(body cached "private")" -H 'cache-control: no-store'
	[[ $(answers) == $((n0 + 5)) ]]
}

@test "an entry expires after its time to live" {
	local n0
	n0=$(answers)
	cache_is miss "$KEY_A" "$(body short "brief")"
	cache_is hit "$KEY_A" "$(body short "brief")"
	sleep 1.2
	cache_is miss "$KEY_A" "$(body short "brief")"
	[[ $(answers) == $((n0 + 2)) ]]
	(($(adapter_metric 'jairouter_adapter_cache_dropped_total{reason="expired"}') >= 1))
}

@test "errors and answers over the size bound are not stored" {
	local n0 too0
	n0=$(answers)
	curl -fsS -X PUT -H 'content-type: application/json' --data '{"status":500}' "$JR_MOCK_URL/_mock/behaviour" >/dev/null
	BODY=$(body cached "failing") auth_chat "$KEY_A"
	curl -fsS -X PUT -H 'content-type: application/json' --data '{"status":null}' "$JR_MOCK_URL/_mock/behaviour" >/dev/null
	((STATUS >= 500))
	cache_is miss "$KEY_A" "$(body cached "failing")"
	# An answer of 300 words is larger than the policy's 1024 bytes.
	too0=$(adapter_metric 'jairouter_adapter_cache_dropped_total{reason="too_large"}')
	cache_is miss "$KEY_A" "$(body small "CHUNKS:300")"
	(($(stat -c %s "$BATS_TEST_TMPDIR/body") > 1024))
	cache_is miss "$KEY_A" "$(body small "CHUNKS:300")"
	[[ $(adapter_metric 'jairouter_adapter_cache_dropped_total{reason="too_large"}') == $((too0 + 2)) ]]
	[[ $(answers) == $((n0 + 3)) ]]
}

# usage_of TENANT: "requests prompt completion cost" from the usage rows.
usage_of() {
	db_sql "SELECT coalesce(sum(requests),0) || ' ' || coalesce(sum(prompt_tokens),0) || ' ' || coalesce(sum(completion_tokens),0) || ' ' || coalesce(sum(cost),0) FROM jairouter.usage_daily u JOIN jairouter.tenants t ON t.id = u.tenant_id WHERE t.name = '$1'"
}

usage_is() {
	[[ $(usage_of "$1") == "$2" ]]
}

@test "a hit is metered with the stored usage and priced with the hit factor" {
	local before after hits0 req pt ct cost
	# The policy probe of setup_file is in the rows already (a miss, then maybe hits).
	eventually 10 bash -c "[[ \$(psql -X -q -t -A -d '$JR_DATABASE' -c \"SELECT count(*) FROM jairouter.usage_daily u JOIN jairouter.tenants t ON t.id = u.tenant_id WHERE t.name = 'priced'\") == 1 ]]"
	hits0=$(agent_metric jairouter_limit_cache_hits_total)
	cache_is miss "$KEY_P" "$(body cached "metered question")"
	sleep 0.5
	eventually 10 bash -c "[[ \$(psql -X -q -t -A -d '$JR_DATABASE' -c \"SELECT sum(requests) FROM jairouter.usage_daily u JOIN jairouter.tenants t ON t.id = u.tenant_id WHERE t.name = 'priced'\") -ge 2 ]]"
	before=$(usage_of priced)
	cache_is hit "$KEY_P" "$(body cached "metered question")"
	read -r req pt ct cost <<<"$before"
	# One more request, the miss's tokens once more, no more cost (factor 0).
	local miss_pt miss_ct
	miss_pt=$(json 'b.usage.prompt_tokens')
	miss_ct=$(json 'b.usage.completion_tokens')
	eventually 10 usage_is priced "$((req + 1)) $((pt + miss_pt)) $((ct + miss_ct)) $cost"
	(($(agent_metric jairouter_limit_cache_hits_total) == hits0 + 1))
	# The miss itself was priced: tokens at 1000 per million each.
	[[ $cost != 0 && $cost != 0.000000 ]]
}

@test "the adapter's metrics count hits, misses, stores and bytes" {
	(($(adapter_metric 'jairouter_adapter_cache_requests_total{result="hit"}') >= 5))
	(($(adapter_metric 'jairouter_adapter_cache_requests_total{result="miss"}') >= 5))
	(($(adapter_metric 'jairouter_adapter_cache_requests_total{result="bypass"}') >= 4))
	(($(adapter_metric jairouter_adapter_cache_stores_total) >= 5))
	(($(adapter_metric jairouter_adapter_cache_entries) >= 5))
	(($(adapter_metric jairouter_adapter_cache_bytes) > 0))
}

# adapter_req PORT BODY: a request straight to an adapter, with the route HAProxy would
# send for tenant ta and the model "cached"; the answer in $BATS_TEST_TMPDIR/{headers,body}.
adapter_req() {
	local route
	route="p=openai&u=$(node -e 'process.stdout.write(encodeURIComponent(process.argv[1]))' "$JR_MOCK_URL/v1")&m=cached&pm=cached&t=ta&c=60&cmax=65536&cs=t1.m1"
	STATUS=$(curl -sS --max-time 10 -o "$BATS_TEST_TMPDIR/body" -D "$BATS_TEST_TMPDIR/headers" -w '%{http_code}' \
		-H "x-jairouter-adapter: $route" -H "x-request-id: fleet-$RANDOM" -H 'content-type: application/json' \
		--data-binary "$2" "http://127.0.0.1:$1/v1/chat/completions") || STATUS=000
}

@test "adapters of a fleet share entries through Redis; without Redis each serves from its own memory" {
	local rport n0 a b bin
	rport=$(jr_free_port)
	jr_spawn "$STACK" redis-cache redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no \
		--daemonize no
	jr_wait_tcp 127.0.0.1 "$rport" 10
	bin=$(jr_adapter_bin)
	jr_spawn "$STACK" adapter-a "$bin" --listen 127.0.0.1:0 --cache-redis "127.0.0.1:$rport"
	jr_spawn "$STACK" adapter-b "$bin" --listen 127.0.0.1:0 --cache-redis "127.0.0.1:$rport"
	a=$(jr_listening_port "$STACK" adapter-a)
	b=$(jr_listening_port "$STACK" adapter-b)
	n0=$(answers)
	adapter_req "$a" "$(body cached "fleet question")"
	expect_status 200
	[[ $(hdr x-jairouter-cache) == miss ]]
	cp "$BATS_TEST_TMPDIR/body" "$BATS_TEST_TMPDIR/first"
	# Stored in Redis once the answer went out: the other adapter finds it.
	eventually 5 bash -c "[[ \$(redis-cli -p $rport --raw DBSIZE) == 1 ]]"
	adapter_req "$b" "$(body cached "fleet question")"
	expect_status 200
	[[ $(hdr x-jairouter-cache) == hit ]]
	cmp "$BATS_TEST_TMPDIR/first" "$BATS_TEST_TMPDIR/body"
	[[ $(answers) == $((n0 + 1)) ]]
	# The entry's time to live is the policy's (c=60): set in Redis with it.
	local ttl
	ttl=$(redis-cli -p "$rport" --raw PTTL "$(redis-cli -p "$rport" --raw KEYS 'jairouter:cache:*' | head -n 1)")
	((ttl > 50000 && ttl <= 60000))
	[[ $(curl -fsS "http://127.0.0.1:$b/metrics" | awk '$1 == "jairouter_adapter_cache_redis_total{op=\"get\",result=\"hit\"}" { print $2 }') == 1 ]]
	# Redis goes away: requests are still answered (a miss each), and each adapter's
	# memory still serves what it stored itself.
	jr_stop_pid "$STACK" redis-cache TERM
	adapter_req "$b" "$(body cached "fleet question")" # b's memory has no entry: a miss
	expect_status 200
	[[ $(hdr x-jairouter-cache) == miss ]]
	adapter_req "$a" "$(body cached "fleet question")"
	expect_status 200
	[[ $(hdr x-jairouter-cache) == hit ]]
	[[ $(answers) == $((n0 + 2)) ]]
	jr_stop_pid "$STACK" adapter-a TERM
	jr_stop_pid "$STACK" adapter-b TERM
	run ! grep -qE 'Sanitizer|runtime error' "$STACK/adapter-a.log" "$STACK/adapter-b.log"
}
