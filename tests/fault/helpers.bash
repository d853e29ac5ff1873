# shellcheck shell=bash
# Helpers of the fault suite (tests/fault/fault.bats): a gateway with room for a
# second agent, bounded load in the background, counts of what the clients saw
# and of what was billed.

# shellcheck source=scripts/lib/common.sh
source "$BATS_TEST_DIRNAME/../../scripts/lib/common.sh"

# Load of every scenario: a fixed count at a steady rate (about 300 requests/s).
FAULT_TOTAL=${FAULT_TOTAL:-1500}
FAULT_RATE=${FAULT_RATE:-300}

# fault_stack_start DIR: jr_stack_start, with JR_SPOA2_ADDR and JR_REPORT2_ADDR
# set so that HAProxy knows a second agent (started by fault_agent2_start).
fault_stack_start() {
	local dir=$1 ports
	mapfile -t ports < <(jr_free_ports 3)
	export JR_SPOA2_ADDR=127.0.0.1:${ports[0]} JR_REPORT2_ADDR=127.0.0.1:${ports[1]}
	export FAULT_AGENT2_METRICS=http://127.0.0.1:${ports[2]}
	# Faster stops in tests: the SPOP drain and the report hand-over are bounded by it.
	# FAULT_AGENT_CONF: more lines for the agent's file.
	export JR_AGENT_EXTRA_CONF="drain_timeout_ms = 3000${FAULT_AGENT_CONF:+$'\n'$FAULT_AGENT_CONF}"
	jr_stack_start "$dir"
}

# fault_agent_spawn DIR NAME BIN: another process on DIR/agent.conf (same
# addresses: SO_REUSEPORT), logging to DIR/NAME.log.
fault_agent_spawn() {
	local dir=$1 name=$2 bin=$3
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1} \
		UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
		jr_spawn "$dir" "$name" "$bin" -c "$dir/agent.conf"
}

# fault_wait_log FILE PATTERN SECONDS: until FILE has a line matching PATTERN.
fault_wait_log() {
	local file=$1 pattern=$2 deadline=$((SECONDS + ${3:-30}))
	until grep -q -- "$pattern" "$file" 2>/dev/null; do
		((SECONDS < deadline)) || {
			echo "no '$pattern' in $file within ${3:-30}s"
			return 1
		}
		sleep 0.1
	done
}

# fault_agent2_start DIR: the second agent, in DIR/a2, on JR_SPOA2_ADDR.
fault_agent2_start() {
	local dir=$1/a2
	mkdir -p "$dir"
	jr_agent_config "$dir" "${JR_SPOA2_ADDR##*:}" "${FAULT_AGENT2_METRICS##*:}" "$JR_DATABASE" \
		"${JR_REPORT2_ADDR##*:}"
	JR_AGENT_METRICS=$FAULT_AGENT2_METRICS jr_agent_start "$dir" &&
		jr_haproxy_server_up spoa-agents agent2 30
}

# fault_tenant NAME: a tenant allowed the stack's test model, and a key for it
# (FAULT_KEY). Each scenario has its own, so its usage rows are its own.
fault_tenant() {
	jr_ctl tenant add "$1" >/dev/null
	FAULT_KEY=$(jr_ctl key issue "$1" | grep -Eo 'jr-[0-9a-f]{64}' | tail -n 1)
	[[ -n $FAULT_KEY ]]
}

# fault_load_start DIR NAME [LOAD_ARGS...]: the load in the background; its result
# goes to DIR/NAME.json, its progress to DIR/NAME.progress.
fault_load_start() {
	local dir=$1 name=$2
	shift 2
	# HAProxy 2.6 opens SPOE connections per thread on demand; a cold burst can leave a
	# NOTIFY waiting for "timeout processing" (docs/operations.md). A short warm-up
	# with a key of its own (its usage is not counted) opens them first.
	node "$BATS_TEST_DIRNAME/load.js" --url "$JR_URL" --key "$FAULT_WARM_KEY" --model fault-model \
		--total 200 --rate 400 >"$dir/$name.warm.json" 2>&1 3>&- || true
	FAULT_LOG_MARK=$(wc -l <"$dir/haproxy.log")
	echo 0 >"$dir/$name.progress"
	node "$BATS_TEST_DIRNAME/load.js" --url "$JR_URL" --key "$FAULT_KEY" --model fault-model \
		--total "$FAULT_TOTAL" --rate "$FAULT_RATE" --progress "$dir/$name.progress" "$@" \
		>"$dir/$name.json" 2>"$dir/$name.err" 3>&- &
	FAULT_LOAD_PID=$!
}

# fault_load_reached DIR NAME COUNT: until COUNT requests of the load have finished.
fault_load_reached() {
	local deadline=$((SECONDS + 60)) n
	while ((SECONDS < deadline)); do
		n=$(cat "$1/$2.progress" 2>/dev/null || echo 0)
		((${n:-0} >= $3)) && return 0
		sleep 0.05
	done
	echo "the load did not reach $3 requests"
	return 1
}

# fault_load_wait DIR NAME: waits for the load; its result in FAULT_RESULT.
fault_load_wait() {
	wait "$FAULT_LOAD_PID" || {
		echo "load.js failed:"
		cat "$1/$2.err"
		return 1
	}
	FAULT_RESULT=$(cat "$1/$2.json")
	echo "load: $FAULT_RESULT"
}

# fault_get FIELD: a number from the load's result (status codes as status.NNN).
fault_get() {
	node -e 'const r = JSON.parse(process.argv[1]); const v = process.argv[2].split(".").reduce((o, k) => (o || {})[k], r); console.log(v || 0)' \
		"$FAULT_RESULT" "$1"
}

# fault_spoe_failures DIR KIND: HAProxy's lines since the load started whose SPOE
# exchange failed: KIND timeout (spoe_err 1: no answer within "timeout processing", which
# a starved CPU produces whatever the scenario) or connection (spoe_err 256 and up: the
# agent's connection closed under the request).
fault_spoe_failures() {
	local re
	case $2 in
	timeout) re=' spoe_err=1 ' ;;
	connection) re=' spoe_err=2[0-9][0-9] ' ;;
	esac
	tail -n +$((FAULT_LOG_MARK + 1)) "$1/haproxy.log" | grep -c -- "$re" || true
}

# fault_usage TENANT: requests recorded in jairouter.usage_daily for TENANT.
fault_usage() {
	psql -X -qAt -d "$JR_DATABASE" -v t="$1" <<'SQL'
SELECT coalesce(sum(u.requests), 0) FROM jairouter.usage_daily u
JOIN jairouter.tenants t ON t.id = u.tenant_id WHERE t.name = :'t';
SQL
}

# fault_usage_settles TENANT EXPECTED SECONDS: waits until the usage of TENANT
# stops changing (two equal reads a flush apart) or equals EXPECTED; prints it.
fault_usage_settles() {
	local t=$1 want=$2 deadline=$((SECONDS + ${3:-20})) last=-1 now
	while ((SECONDS < deadline)); do
		now=$(fault_usage "$t")
		((now == want)) && break
		((now == last)) && break
		last=$now
		sleep 1.5
	done
	fault_usage "$t"
}

# fault_common_checks: what holds in every scenario.
fault_common_checks() {
	local v
	for v in unanswered non_json bad_admitted no_retry_after; do
		if (($(fault_get "$v") != 0)); then
			echo "expected $v = 0"
			return 1
		fi
	done
	(($(fault_get answered) == FAULT_TOTAL)) || {
		echo "expected every request answered"
		return 1
	}
}

# fault_metric NAME: the agent's metric NAME (without labels), 0 when absent.
fault_metric() {
	curl -fsS "$JR_AGENT_METRICS/metrics" | awk -v n="$1" '$1 == n { v = $2 } END { printf "%d\n", v + 0 }'
}

# fault_wait_metric NAME OP VALUE SECONDS: until the metric compares so (OP: -eq, -ge,
# -le); prints its last value.
fault_wait_metric() {
	local deadline=$((SECONDS + $4)) v ok
	while :; do
		v=$(fault_metric "$1")
		case $2 in
		-eq) ok=$((v == $3)) ;;
		-ge) ok=$((v >= $3)) ;;
		-le) ok=$((v <= $3)) ;;
		esac
		if ((ok || SECONDS >= deadline)); then
			echo "$v"
			return 0
		fi
		sleep 0.2
	done
}
