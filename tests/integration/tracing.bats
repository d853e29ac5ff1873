#!/usr/bin/env bats
# Tracing (docs/observability.md, "Tracing"): W3C trace context accepted from clients or
# started at the edge, sent to model servers and back to the client; spans of sampled
# requests exported over OTLP/HTTP (JSON) to a local receiver, checked for parent/child
# links, timing and the GenAI attributes.

load helpers
stack_hooks

setup_file() {
	export STACK=$BATS_FILE_TMPDIR/stack
	mkdir -p "$STACK"
	# Requests without a traceparent: all sampled here.
	export JR_TRACE_SAMPLE_PCT=100
	jr_stack_start "$STACK"
	export SPANS=$STACK/spans.jsonl
	: >"$SPANS"
	jr_spawn "$STACK" otlp python3 "$BATS_TEST_DIRNAME/otlp-receiver.py" "$SPANS"
	local port='' i
	for ((i = 0; i < 100; i++)); do
		port=$(sed -n 's/^LISTENING \([0-9][0-9]*\).*/\1/p' "$STACK/otlp.log" | head -n 1)
		[[ -n $port ]] && break
		sleep 0.1
	done
	[[ -n $port ]]
	agent_restart_with "trace_otlp_url = http://127.0.0.1:$port/v1/traces" 'trace_flush_ms = 100' \
		'usage_wait_ms = 2000'
	jr_ctl model add trace-model be_mock >/dev/null
	jr_adapter_models >/dev/null
	# trace-model's streams go direct (the rewrite detour), not through the adapter.
	jr_ctl endpoint remove be_mock >/dev/null 2>&1 || true
	jr_ctl tenant add tr >/dev/null
	export TKEY
	TKEY=$(issue_key tr)
}

teardown_file() {
	jr_stop_pid "$STACK" otlp TERM
	stack_teardown_file
}

# spans_of TRACE_ID: trace-check.mjs's summary of that trace.
spans_of() {
	node "$BATS_TEST_DIRNAME/trace-check.mjs" "$SPANS" "$1"
}

# jq_ EXPR JSON: a field of a JSON value (node).
jq_() {
	node -e 'const v = eval("(o) => " + process.argv[1])(JSON.parse(process.argv[2])); console.log(typeof v === "string" ? v : JSON.stringify(v))' "$1" "$2"
}

has_spans() {
	[[ $(jq_ 'o.count' "$(spans_of "$1")") -ge "$2" ]]
}

# complete TRACE_ID: the gateway's span and the model server's call have arrived (the
# decision's spans come first: the report line is written when the request ends).
complete() {
	[[ $(jq_ 'o.gateway !== null && o.model_server.length >= 1' "$(spans_of "$1")") == true ]]
}

@test "a client's sampled traceparent: continued, sent upstream, returned, and its spans exported linked and timed" {
	local tid=4bf92f3577b34da6a3ce929d0e0e4736 parent=00f067aa0ba902b7 tp out
	BODY=$(chat_body trace-model ',"max_tokens":6') auth_chat "$TKEY" -H "traceparent: 00-$tid-$parent-01"
	expect_status 200
	tp=$(hdr traceparent)
	[[ $tp =~ ^00-$tid-[0-9a-f]{16}-01$ ]]
	[[ ${tp:36:16} != "$parent" ]]
	# The model server received a traceparent (names only are echoed by the mock).
	[[ ,$(hdr x-mock-header-names), == *,traceparent,* ]]
	eventually 10 complete "$tid"
	out=$(spans_of "$tid")
	echo "$out"
	[[ $(jq_ 'o.errors.length' "$out") == 0 ]]
	# The gateway's span continues the client's and is the one returned.
	[[ $(jq_ 'o.gateway.parent' "$out") == "$parent" ]]
	[[ $(jq_ 'o.gateway.spanId' "$out") == "${tp:36:16}" ]]
	[[ $(jq_ 'o.decision_parent' "$out") == "${tp:36:16}" ]]
	[[ $(jq_ 'o.stages.includes("identity") && o.stages.includes("limits")' "$out") == true ]]
	# GenAI attributes: the model, the usage the mock reported, the provider.
	[[ $(jq_ 'o.gateway.attrs["gen_ai.request.model"]' "$out") == trace-model ]]
	[[ $(jq_ 'o.gateway.attrs["gen_ai.usage.input_tokens"]' "$out") == "$(json b.usage.prompt_tokens)" ]]
	[[ $(jq_ 'o.gateway.attrs["gen_ai.usage.output_tokens"]' "$out") == 6 ]]
	[[ -n $(jq_ 'o.gateway.attrs["gen_ai.system"]' "$out") ]]
	[[ $(jq_ 'o.gateway.attrs["http.response.status_code"]' "$out") == 200 ]]
	# The model server's call: a child of the gateway's span.
	[[ $(jq_ 'o.model_server.length' "$out") == 1 ]]
	[[ $(jq_ 'o.model_server[0].parent' "$out") == "${tp:36:16}" ]]
}

@test "a client's unsampled traceparent: propagated and returned, nothing exported" {
	local tid=0af7651916cd43dd8448eb211c80319c other=1af7651916cd43dd8448eb211c80319c
	BODY=$(chat_body trace-model) auth_chat "$TKEY" -H "traceparent: 00-$tid-b7ad6b7169203331-00"
	expect_status 200
	[[ $(hdr traceparent) =~ ^00-$tid-[0-9a-f]{16}-00$ ]]
	# A sampled request afterwards: once its spans are in, the first one's would be too.
	BODY=$(chat_body trace-model) auth_chat "$TKEY" -H "traceparent: 00-$other-b7ad6b7169203331-01"
	eventually 10 complete "$other"
	[[ $(jq_ 'o.count' "$(spans_of "$tid")") == 0 ]]
}

@test "no traceparent (or a malformed one): the trace starts at the gateway, its id the request id's" {
	local tp rid out
	BODY=$(chat_body trace-model) auth_chat "$TKEY" -H 'traceparent: 00-zz-nothex-01'
	expect_status 200
	tp=$(hdr traceparent)
	rid=$(hdr x-request-id)
	[[ $tp =~ ^00-[0-9a-f]{32}-[0-9a-f]{16}-01$ ]]
	[[ ${tp:3:32} == "${rid//-/}" ]]
	eventually 10 complete "${tp:3:32}"
	out=$(spans_of "${tp:3:32}")
	[[ $(jq_ 'o.errors.length' "$out") == 0 ]]
	[[ $(jq_ 'o.gateway.parent' "$out") == "" ]]
}

@test "a direct stream: the model server's span comes from the rewrite detour, with the usage it read" {
	local tid=5bf92f3577b34da6a3ce929d0e0e4736 tp out
	curl -sS -N --max-time 10 -D "$BATS_TEST_TMPDIR/headers" -o "$BATS_TEST_TMPDIR/body" \
		-H "authorization: Bearer $TKEY" -H 'content-type: application/json' \
		-H "traceparent: 00-$tid-00f067aa0ba902b7-01" \
		--data-binary "$(chat_body trace-model ',"stream":true,"max_tokens":4')" "$JR_URL/v1/chat/completions"
	tp=$(hdr traceparent)
	eventually 10 complete "$tid"
	out=$(spans_of "$tid")
	echo "$out"
	[[ $(jq_ 'o.errors.length' "$out") == 0 ]]
	[[ $(jq_ 'o.model_server.length' "$out") == 1 ]]
	[[ $(jq_ 'o.model_server[0].parent' "$out") == "${tp:36:16}" ]]
	[[ $(jq_ 'o.model_server[0].attrs["gen_ai.usage.output_tokens"]' "$out") == 4 ]]
}

@test "through the adapter: its span, its translation and the provider call, linked under the gateway's span" {
	local tid=6bf92f3577b34da6a3ce929d0e0e4736 tp out
	BODY=$(chat_body anthropic-model ',"max_tokens":5') auth_chat "$TKEY" -H "traceparent: 00-$tid-00f067aa0ba902b7-01"
	expect_status 200
	tp=$(hdr traceparent)
	eventually 10 complete "$tid"
	out=$(spans_of "$tid")
	echo "$out"
	[[ $(jq_ 'o.errors.length' "$out") == 0 ]]
	[[ $(jq_ 'o.adapter.length' "$out") == 1 ]]
	[[ $(jq_ 'o.adapter[0].parent' "$out") == "${tp:36:16}" ]]
	[[ $(jq_ 'o.model_server.length' "$out") == 1 ]]
	[[ $(jq_ 'o.model_server[0].parent' "$out") == "$(jq_ 'o.adapter[0].spanId' "$out")" ]]
	[[ $(jq_ 'o.model_server[0].attrs["gen_ai.system"]' "$out") == anthropic ]]
	[[ $(jq_ 'o.model_server[0].attrs["gen_ai.usage.output_tokens"]' "$out") == "$(json b.usage.completion_tokens)" ]]
}

@test "the exporter's counters: spans exported, none dropped or failed" {
	curl -fsS "$JR_AGENT_METRICS/metrics" >"$BATS_TEST_TMPDIR/metrics"
	grep -qE '^jairouter_trace_spans_exported_total [1-9]' "$BATS_TEST_TMPDIR/metrics"
	grep -q '^jairouter_trace_spans_dropped_total 0$' "$BATS_TEST_TMPDIR/metrics"
	grep -q '^jairouter_trace_spans_failed_total 0$' "$BATS_TEST_TMPDIR/metrics"
}
