#!/usr/bin/env bats
# Load balancing end to end (docs/routing.md): three mock model servers behind
# haproxy.cfg's be_pool, the agent choosing the server from HAProxy's stats socket and
# the end-of-request reports. A killed server stops receiving traffic within a second
# and rejoins after recovery; a server answering 500 trips its breaker and comes back
# after probes; hashing keeps a conversation on one server; a slow server gets less
# traffic under the latency strategy; a fallback model serves when the primary pool is
# down, and when nothing can serve the answer is a 503 with retry-after and the reason.

load helpers
stack_hooks

setup_file() {
	export STACK=$BATS_FILE_TMPDIR/stack
	mkdir -p "$STACK"
	local i port
	for i in 1 2 3; do
		port=$(jr_mock_start "$STACK" "pool$i")
		export "JR_POOL${i}_ADDR=127.0.0.1:$port" "POOL${i}_PORT=$port"
	done
	jr_stack_start "$STACK"
	jr_ctl tenant add acme >/dev/null
	jr_ctl model add pool-model be_pool >/dev/null
	jr_ctl model add spare-model be_mock2 >/dev/null
	# Quick breaker and warm-up for the test pool; the fallback chain.
	sql "INSERT INTO jairouter.routing_policies (backend, breaker_consecutive, breaker_error_rate,
		breaker_open_ms, breaker_probes, slow_start_ms) VALUES ('be_pool', 3, 0, 1000, 1, 1000)"
	sql "SELECT jairouter.set_model_fallbacks('pool-model', ARRAY['spare-model'])"
	# A virtual model over a cheap model without tools and a dearer one with them.
	jr_ctl model add cheap-model be_mock --context 100000 --price-in 0.1 --price-out 0.2 >/dev/null
	jr_ctl model add tool-model be_mock2 --tools --context 100000 --price-in 1 --price-out 2 >/dev/null
	jr_ctl model add auto be_mock --tools --vision >/dev/null
	sql "SELECT jairouter.set_virtual_model('auto', ARRAY['tool-model', 'cheap-model'])"
	KEY=$(issue_key acme)
	export KEY
	[[ -n $KEY ]]
	BATS_TEST_TMPDIR=$BATS_FILE_TMPDIR eventually 10 pool_served
}

teardown_file() {
	local i
	for i in 1 2 3; do
		[[ -n ${STACK:-} ]] && jr_stop_pid "$STACK" "mock-pool$i" TERM
	done
	stack_teardown_file
}

# sql TEXT: a fixed statement against the stack's database (no values from outside).
sql() {
	psql -X -q -v ON_ERROR_STOP=1 -d "$JR_DATABASE" -c "$1" >/dev/null
}

strategy() {
	sql "SELECT jairouter.set_model_strategy('pool-model', '$1', ${2:-NULL})"
}

# haproxy_cmd COMMAND: one command on HAProxy's runtime API.
haproxy_cmd() {
	node -e '
		const c = require("net").connect(process.argv[1], () => c.end(process.argv[2] + "\n"));
		c.pipe(process.stdout);' "$JR_STATS_SOCK" "$1"
}

# mock_behaviour N JSON: the server-wide behaviour of pool mock N.
mock_behaviour() {
	local port_var=POOL$1_PORT
	curl -fsS -X PUT --max-time 5 --data-binary "$2" "http://127.0.0.1:${!port_var}/_mock/behaviour" >/dev/null
}

# agent_metric SERIES: the value of one series on the agent's /metrics.
agent_metric() {
	curl -fsS --max-time 2 "$JR_AGENT_METRICS/metrics" | awk -v s="$1" 'index($0, s " ") == 1 { print $2 }'
}

usable() {
	agent_metric "jairouter_lb_server_usable{backend=\"be_pool\",server=\"$1\",health=\"$2\"}"
}

# pool_chat [CURL_ARGS...]: one pool-model request; SERVED gets the mock's name.
pool_chat() {
	BODY=$(chat_body pool-model) auth_chat "$KEY" "$@"
	SERVED=$(hdr x-mock-server)
}

pool_served() {
	pool_chat
	expect_status 200
}

# spread N [CURL_ARGS...]: N requests; COUNT[name] per server, FAILED for non-200s.
spread() {
	local n=$1 i
	shift
	unset COUNT
	declare -gA COUNT=([pool1]=0 [pool2]=0 [pool3]=0 [mock2]=0)
	FAILED=0
	for ((i = 0; i < n; i++)); do
		pool_chat "$@"
		if [[ $STATUS == 200 && -n $SERVED ]]; then
			COUNT[$SERVED]=$((${COUNT[$SERVED]:-0} + 1))
		else
			FAILED=$((FAILED + 1))
		fi
	done
	echo "served: pool1=${COUNT[pool1]} pool2=${COUNT[pool2]} pool3=${COUNT[pool3]} mock2=${COUNT[mock2]} failed=$FAILED"
}

@test "round robin: the agent names each server in turn and HAProxy uses it" {
	strategy round_robin
	sleep 0.3 # the change reaches the agent (LISTEN/NOTIFY)
	spread 9
	[[ ${COUNT[pool1]} == 3 && ${COUNT[pool2]} == 3 && ${COUNT[pool3]} == 3 && $FAILED == 0 ]]
	[[ $(hdr x-jairouter-model) == pool-model ]]
	[[ -z $(hdr x-jairouter-fallback) ]]
	grep -q 'be=be_pool srv=pool[123] .* ls=pool[123] ' "$STACK/haproxy.log"
}

@test "hashing on the affinity header keeps a conversation on one server" {
	strategy hash "'header'"
	sleep 0.3
	local first='' i
	for i in 1 2 3 4 5 6; do
		pool_chat -H 'x-session-id: conversation-42'
		expect_status 200
		[[ -z $first ]] && first=$SERVED
		[[ $SERVED == "$first" ]]
	done
	# Other conversations spread over the pool.
	declare -A seen=()
	for i in $(seq 1 12); do
		pool_chat -H "x-session-id: conversation-$i"
		expect_status 200
		seen[$SERVED]=1
	done
	((${#seen[@]} >= 2))
}

# pool2_open: one more request, then whether pool2's breaker is open.
pool2_open() {
	pool_chat
	[[ $(agent_metric 'jairouter_lb_breaker_state{backend="be_pool",server="pool2"}') == 1 ]]
}

@test "a server answering 500 trips its breaker; the client sees the upstream error; probes bring it back" {
	strategy round_robin
	sleep 0.3
	mock_behaviour 2 '{"status":500}'
	# The upstream error reaches the client unchanged (no fallback served it).
	for _ in 1 2 3; do
		pool_chat
		[[ $STATUS == 500 ]] && break
	done
	expect_openai_error 500 server_error
	[[ $(json 'b.error.message') == *"(x-mock-status)"* ]]
	eventually 5 pool2_open
	spread 9
	[[ ${COUNT[pool2]} == 0 && $FAILED == 0 ]]
	[[ $(agent_metric 'jairouter_lb_breaker_opened_total{backend="be_pool",server="pool2"}') -ge 1 ]]
	# Healthy again: after open_ms a probe goes through, succeeds, and pool2 rejoins.
	mock_behaviour 2 '{"status":null}'
	eventually 10 bash -c "curl -sS -o /dev/null -D - -H 'authorization: Bearer $KEY' -H 'content-type: application/json' \
		--data-binary '$(chat_body pool-model)' '$JR_URL/v1/chat/completions' | grep -qi '^x-mock-server: pool2'"
	eventually 3 bash -c "[[ \$(curl -fsS '$JR_AGENT_METRICS/metrics' | grep -F 'jairouter_lb_breaker_state{backend=\"be_pool\",server=\"pool2\"}') == *' 0' ]]"
}

pool3_out() {
	pool_chat
	[[ $(usable pool3 down) == 0 ]]
}

@test "a killed server stops receiving traffic within a second and rejoins after recovery" {
	strategy round_robin
	sleep 0.3
	jr_stop_pid "$STACK" mock-pool3 KILL
	# Requests keep flowing: the first refused connection marks it down in HAProxy,
	# the agent sees it at its next poll.
	within_ms 1000 pool3_out
	spread 6
	[[ ${COUNT[pool3]} == 0 && $FAILED == 0 ]]
	# Back on the same port: health checks bring it UP, the agent warms it up.
	jr_spawn "$STACK" mock-pool3 node "$JR_ROOT/tests/mock/mock-openai.js" --port "$POOL3_PORT" --name pool3
	eventually 15 bash -c "curl -sS -o /dev/null -D - -H 'authorization: Bearer $KEY' -H 'content-type: application/json' \
		--data-binary '$(chat_body pool-model)' '$JR_URL/v1/chat/completions' | grep -qi '^x-mock-server: pool3'"
}

@test "a slow server gets less traffic under the latency strategy" {
	strategy latency
	sleep 0.3
	mock_behaviour 2 '{"delay_ms":300}'
	spread 30
	mock_behaviour 2 '{"delay_ms":0}'
	[[ $FAILED == 0 ]]
	local fast=$((COUNT[pool1] < COUNT[pool3] ? COUNT[pool1] : COUNT[pool3]))
	((COUNT[pool2] * 3 < fast))
}

@test "a server added at run time takes traffic (slow start); removed, it is forgotten" {
	strategy round_robin
	local out
	out=$(haproxy_cmd "add server be_pool/pool4 127.0.0.1:$POOL1_PORT weight 1")
	[[ $out == *"New server registered"* ]] || { echo "$out"; return 1; }
	haproxy_cmd "enable server be_pool/pool4"
	eventually 3 bash -c "curl -fsS '$JR_AGENT_METRICS/metrics' | grep -qF 'server=\"pool4\",health=\"up\"} 1'"
	eventually 10 pool4_chosen
	grep -q 'srv=pool4 .* ls=pool4 ' "$STACK/haproxy.log"
	haproxy_cmd "disable server be_pool/pool4"
	eventually 3 bash -c "! curl -fsS '$JR_AGENT_METRICS/metrics' | grep -qF 'server=\"pool4\",health=\"up\"} 1'"
	out=$(haproxy_cmd "del server be_pool/pool4")
	[[ $out == *"Server deleted"* ]] || { echo "$out"; return 1; }
	eventually 3 bash -c "! curl -fsS '$JR_AGENT_METRICS/metrics' | grep -qF 'server=\"pool4\"'"
	spread 6
	[[ $FAILED == 0 ]]
}

pool4_chosen() {
	pool_chat
	[[ $(agent_metric 'jairouter_lb_server_selections_total{backend="be_pool",server="pool4"}') -ge 1 ]]
}

@test "a fallback model serves when the primary pool is down, and says so" {
	strategy round_robin
	local i
	for i in 1 2 3; do haproxy_cmd "set server be_pool/pool$i state maint"; done
	eventually 3 bash -c "[[ \$(curl -fsS '$JR_AGENT_METRICS/metrics' | grep -cF 'health=\"maint\"} 0') == 3 ]]"
	pool_chat
	expect_status 200
	[[ $SERVED == mock2 ]]
	[[ $(hdr x-jairouter-model) == spare-model ]]
	[[ $(hdr x-mock-model) == spare-model ]] # the body names the model that serves
	[[ $(hdr x-jairouter-fallback) == down ]]
	[[ $(agent_metric 'jairouter_lb_fallbacks_total{reason="down"}') -ge 1 ]]
	# The fallback's pool down too: nothing can serve.
	haproxy_cmd "set server be_mock2/mock1 state maint"
	eventually 3 bash -c "[[ \$(curl -fsS '$JR_AGENT_METRICS/metrics' | grep -F 'backend=\"be_mock2\"' | grep -cF 'health=\"maint\"} 0') == 1 ]]"
	pool_chat
	expect_openai_error 503 server_error upstream_unavailable
	[[ -n $(hdr retry-after) ]]
	[[ $(json 'b.error.message') == *"pool-model"*"down"* ]]
	haproxy_cmd "set server be_mock2/mock1 state ready"
	for i in 1 2 3; do haproxy_cmd "set server be_pool/pool$i state ready"; done
	eventually 5 pool_back
}

pool_back() {
	pool_chat
	[[ $STATUS == 200 && $SERVED == pool* && -z $(hdr x-jairouter-fallback) ]]
}

@test "a virtual model goes to the cheapest member that covers the request" {
	BODY=$(chat_body auto) auth_chat "$KEY"
	expect_status 200
	[[ $(hdr x-jairouter-model) == cheap-model && $(hdr x-mock-model) == cheap-model ]]
	[[ $(hdr x-mock-server) == mock1 && -z $(hdr x-jairouter-fallback) ]]
	BODY=$(chat_body auto ',"tools":[{"type":"function","function":{"name":"f","parameters":{}}}]') auth_chat "$KEY"
	expect_status 200
	[[ $(hdr x-jairouter-model) == tool-model && $(hdr x-mock-model) == tool-model ]]
	[[ $(hdr x-mock-server) == mock2 ]]
	[[ $(agent_metric 'jairouter_lb_model_selections_total{model="tool-model"}') -ge 1 ]]
	[[ $(agent_metric 'jairouter_lb_model_selections_total{model="cheap-model"}') -ge 1 ]]
	# Images: no member has vision.
	BODY='{"model":"auto","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:,"}}]}]}' \
		auth_chat "$KEY"
	expect_openai_error 400 invalid_request_error model_not_supported
	[[ $(json 'b.error.message') == *"images"* ]]
}
