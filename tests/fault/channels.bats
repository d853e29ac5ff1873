#!/usr/bin/env bats
# The fault suite's side channels: what the agent serves or feeds besides the decisions
# (its administration API, the OTLP exporter, the access log) failing under the same
# bounded load as tests/fault/fault.bats (FAULT_TOTAL requests at FAULT_RATE per second,
# a tenth with unknown keys). Counts only, never timings: every request answered with
# JSON, usage rows equal to the 200s, and what each channel loses is counted by its own
# metric. docs/operations.md, "Failures", has the numbers.
#
# The stack starts with tracing at 100 % towards a collector that accepts and never
# reads, and with its access log on a FIFO whose reader reads nothing, so both channels
# are stalled from the start.

bats_require_minimum_version 1.5.0

load helpers

# sink NAME ARGS...: tests/fault/sinks.py in the background, its pid in STACK/NAME.pid,
# once it printed its ready line.
sink() {
	local name=$1 i
	shift
	python3 "$BATS_TEST_DIRNAME/sinks.py" "$@" >"$STACK/$name.out" 2>"$STACK/$name.err" 3>&- &
	echo "$! python3" >"$STACK/$name.pid"
	for ((i = 0; i < 300; i++)); do
		[[ -s $STACK/$name.out ]] && return 0
		sleep 0.05
	done
	echo "sinks.py $* did not start: $(cat "$STACK/$name.err")"
	return 1
}

sink_stop() {
	local pid
	pid=$(cut -d' ' -f1 "$STACK/$1.pid" 2>/dev/null) || return 0
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	rm -f "$STACK/$1.pid"
}

setup_file() {
	export STACK=$BATS_FILE_TMPDIR/stack
	mkdir -p "$STACK"
	local ports
	mapfile -t ports < <(jr_free_ports 1)
	export OTLP_PORT=${ports[0]} TRACE_QUEUE_MAX=512 ALOG_KB=64
	mkfifo "$STACK/access.fifo"
	sink otlp blackhole "$OTLP_PORT"
	sink alog fifo "$STACK/access.fifo" "$STACK/access.copy"
	export JR_TRACE_SAMPLE_PCT=100
	export FAULT_AGENT_CONF="access_log = \"$STACK/access.fifo\"
access_log_max_kb = $ALOG_KB
trace_otlp_url = http://127.0.0.1:$OTLP_PORT/v1/traces
trace_queue_max = $TRACE_QUEUE_MAX
trace_flush_ms = 200"
	fault_stack_start "$STACK"
	jr_ctl model add fault-model be_mock >/dev/null
	fault_tenant warmup
	export FAULT_WARM_KEY=$FAULT_KEY
}

teardown_file() {
	sink_stop stall1
	sink_stop stall2
	jr_stack_stop "$STACK"
	sink_stop otlp
	sink_stop alog
}

teardown() {
	if [[ -n ${BATS_TEST_COMPLETED:-} ]]; then
		return 0
	fi
	jr_dump_logs "$STACK" | tail -n 200
	for f in "$STACK"/*.err; do
		[[ -s $f ]] && { echo "== $f"; tail -n 20 "$f"; }
	done
	return 0
}

# admin_get KEY: GET /jairouter/admin/v1/me through HAProxy; the status, the body in
# STACK/admin.body, the headers in STACK/admin.headers.
admin_get() {
	curl -sS -o "$STACK/admin.body" -D "$STACK/admin.headers" -w '%{http_code}' --max-time 20 \
		-H "authorization: Bearer $1" "$JR_URL/jairouter/admin/v1/me"
}

fd_count() {
	find "/proc/$(jr_pid_of "$STACK/agent.pid")/fd" -mindepth 1 -maxdepth 1 | wc -l
}

@test "administration API flooded with stalled connections under load: every chat request answered, admin 503 admin_busy at its bound, descriptors bounded" {
	local fds0 fds n over
	fault_tenant adminflood
	fds0=$(fd_count)
	fault_load_start "$STACK" adminflood --bad-every 10
	fault_load_reached "$STACK" adminflood $((FAULT_TOTAL / 10))
	# Past the bound that is served (256), below the one where the listener waits (320).
	sink stall1 stall "$JR_ADMIN_ADDR" 288
	n=$(fault_wait_metric jairouter_admin_api_connections -ge 288 20)
	[ "$n" -ge 288 ]
	[ "$(admin_get "$FAULT_KEY")" -eq 503 ]
	grep -qF '"code":"admin_busy"' "$STACK/admin.body"
	grep -qiF 'retry-after: 1' "$STACK/admin.headers"
	# Past the hard bound: the listener waits, the agent's descriptors stop growing.
	sink stall2 stall "$JR_ADMIN_ADDR" 100
	n=$(fault_wait_metric jairouter_admin_api_connections -ge 320 20)
	fds=$(fd_count)
	fault_load_wait "$STACK" adminflood
	fault_common_checks
	over=$(fault_metric jairouter_admin_api_connections_refused_total)
	echo "admin connections open: $n (stalled clients: 388), refused requests: $over; agent descriptors: $fds0 before, $fds at the bound"
	[ "$n" -eq 320 ]
	[ "$over" -ge 1 ]
	# 320 admin connections, and room for SPOP, PostgreSQL and the metrics scrape.
	[ "$fds" -le $((fds0 + 320 + 32)) ]
	local billed
	billed=$(fault_usage_settles adminflood "$(fault_get ok)" 20)
	echo "200s: $(fault_get ok), usage rows: $billed"
	[ "$(fault_get ok)" -eq $((FAULT_TOTAL - FAULT_TOTAL / 10)) ]
	[ "$billed" -eq "$(fault_get ok)" ]
	# The stalled clients gone, the API answers again.
	sink_stop stall2
	sink_stop stall1
	n=$(fault_wait_metric jairouter_admin_api_connections -le 8 20)
	[ "$n" -le 8 ]
	local st
	st=$(admin_get "$FAULT_KEY")
	echo "after the flood: $st $(cat "$STACK/admin.body")"
	[[ $st == 200 || $st == 403 ]]
}

@test "OTLP collector black-holing, then down, tracing at 100 %: every request answered, spans dropped and counted, the queue never past its bound" {
	local q0 d0 f0 e0 q1 d1 f1 e1 qmax=0 qnow i
	fault_tenant otlp
	q0=$(fault_metric jairouter_trace_spans_queued_total)
	d0=$(fault_metric jairouter_trace_spans_dropped_total)
	f0=$(fault_metric jairouter_trace_spans_failed_total)
	e0=$(fault_metric jairouter_trace_spans_exported_total)
	fault_load_start "$STACK" otlp --bad-every 10
	for i in 2 4 6 8; do
		fault_load_reached "$STACK" otlp $((FAULT_TOTAL * i / 10))
		qnow=$(fault_metric jairouter_trace_queue_spans)
		((qnow > qmax)) && qmax=$qnow
		# Halfway, the collector goes away: connections are refused from then on.
		((i == 4)) && sink_stop otlp
	done
	fault_load_wait "$STACK" otlp
	fault_common_checks
	local billed
	billed=$(fault_usage_settles otlp "$(fault_get ok)" 20)
	[ "$billed" -eq "$(fault_get ok)" ]
	# The exporter empties the queue by failing fast against the closed port.
	qnow=$(fault_wait_metric jairouter_trace_queue_spans -eq 0 30)
	sleep 1 # a batch taken off the queue is counted when its POST ends
	q1=$(fault_metric jairouter_trace_spans_queued_total)
	d1=$(fault_metric jairouter_trace_spans_dropped_total)
	f1=$(fault_metric jairouter_trace_spans_failed_total)
	e1=$(fault_metric jairouter_trace_spans_exported_total)
	echo "200s: $(fault_get ok), usage rows: $billed; spans queued $((q1 - q0)), dropped $((d1 - d0)), failed $((f1 - f0)), exported $((e1 - e0)); queue at most $qmax of $TRACE_QUEUE_MAX seen"
	[ "$qnow" -eq 0 ]
	[ "$qmax" -le "$TRACE_QUEUE_MAX" ]
	[ $((d1 - d0)) -gt 0 ]
	[ $((e1 - e0)) -eq 0 ]
	# Every span since the agent started is accounted for: each queued one failed (none
	# was exported), the others were dropped.
	[ "$q1" -eq $((f1 + e1)) ]
}

@test "access log on a stalled FIFO: every request answered, usage rows equal answers, lines dropped and counted, the queued ones written once the reader reads" {
	local l0 d0 l1 d1 lost queued
	fault_tenant alog
	l0=$(fault_metric jairouter_access_log_lines_total)
	d0=$(fault_metric jairouter_access_log_dropped_total)
	fault_load_start "$STACK" alog --bad-every 10
	fault_load_wait "$STACK" alog
	fault_common_checks
	local billed
	billed=$(fault_usage_settles alog "$(fault_get ok)" 20)
	[ "$billed" -eq "$(fault_get ok)" ]
	queued=$(fault_metric jairouter_access_log_queued_bytes)
	l1=$(fault_metric jairouter_access_log_lines_total)
	d1=$(fault_metric jairouter_access_log_dropped_total)
	lost=$(fault_metric jairouter_access_log_lines_lost_total)
	echo "200s: $(fault_get ok), usage rows: $billed; access log lines queued $((l1 - l0)), dropped $((d1 - d0)), lost $lost; $queued bytes waiting (bound $((ALOG_KB * 1024)))"
	[ "$queued" -le $((ALOG_KB * 1024)) ]
	[ $((d1 - d0)) -gt 0 ]
	# One line per request, the warm-up's included: written or dropped, never unaccounted.
	[ $((l1 - l0 + d1 - d0)) -eq $((FAULT_TOTAL + 200)) ]
	# The reader wakes: every line ever queued reaches it whole; none was lost.
	kill -USR1 "$(cut -d' ' -f1 "$STACK/alog.pid")"
	local nread=0 total i
	for ((i = 0; i < 100; i++)); do
		total=$(fault_metric jairouter_access_log_lines_total)
		nread=$(wc -l <"$STACK/access.copy" 2>/dev/null || echo 0)
		((nread >= total)) && break
		sleep 0.2
	done
	echo "lines read: $nread of $total queued since the start"
	[ "$lost" -eq 0 ]
	[ "$nread" -eq "$total" ]
	[ "$(fault_metric jairouter_access_log_queued_bytes)" -eq 0 ]
	# Each line is a whole JSON object.
	node -e 'for (const l of require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean)) JSON.parse(l)' "$STACK/access.copy"
}
