#!/usr/bin/env bats
# JAiRouter added to an existing HAProxy: ../shared/fixtures/operator-haproxy with the
# steps of docs/haproxy.md applied by scripts/compose-operator (JR_STACK_LAYOUT=operator),
# compared with the same fixture running alone, in front of the same website and
# internal API. The operator's traffic, headers, compression, redirect, rate limit
# and access log must not change; the configuration must differ by the documented
# line only; a reload under load must lose nothing. The rate-limit test comes last:
# it leaves 127.0.0.1 over the operator's limit for ten seconds.

bats_require_minimum_version 1.5.0

setup_file() {
	load ../integration/helpers
	export JR_STACK_LAYOUT=operator
	export STACK=$BATS_FILE_TMPDIR/stack
	jr_stack_start "$STACK"
	jr_ctl tenant add acme >/dev/null
	jr_ctl model add test-model be_mock >/dev/null
	KEY=$(issue_key acme)
	export KEY
	[[ -n $KEY ]]
	BATS_TEST_TMPDIR=$BATS_FILE_TMPDIR eventually 10 status_is "$KEY" 200
	alone_start
}

teardown_file() {
	jr_stop_pid "$STACK" alone TERM
	jr_stop_pid "$STACK" alone-syslog TERM
	stack_teardown_file
}

setup() {
	load ../integration/helpers
}

teardown() {
	stack_teardown
}

FIXTURE=$BATS_TEST_DIRNAME/../../../shared/fixtures/operator-haproxy
DOC_LINE='    use_backend jairouter if { path_beg /v1/ /api/v1/ /jairouter/ }'

# alone_start: the fixture as it is, alone, on its own ports and log receiver, in
# front of the composition's website and API servers. Exports ALONE_URL,
# ALONE_HTTP_URL.
alone_start() {
	local port ports
	jr_spawn "$STACK" alone-syslog node "$JR_ROOT/tests/dropin/op-servers.js" syslog --port 0 \
		--out "$STACK/alone-access.log"
	port=$(jr_listening_port "$STACK" alone-syslog)
	mapfile -t ports < <(jr_free_ports 3)
	(
		export OP_HTTPS_BIND=127.0.0.1:${ports[0]} OP_HTTP_BIND=127.0.0.1:${ports[1]}
		export OP_STATS_BIND=127.0.0.1:${ports[2]} OP_LOG=udp@127.0.0.1:$port
		export OP_STATS_SOCK=$STACK/alone.sock
		jr_spawn "$STACK" alone haproxy -db -n 8000 -f "$FIXTURE/haproxy.cfg"
	)
	export ALONE_URL=https://127.0.0.1:${ports[0]} ALONE_HTTP_URL=http://127.0.0.1:${ports[1]}
	jr_wait_http "$ALONE_URL/healthz" 30
	# The composition's website server is the same process: both see it UP.
	jr_wait_http "$JR_URL/healthz" 30
}

# probe HTTPS_URL HTTP_URL: the operator's own requests, one normalised line each:
# status, the headers the fixture sets or negotiates, and the body's hash.
probe() {
	local base=$1 plain=$2 p h="$BATS_TEST_TMPDIR/h" b="$BATS_TEST_TMPDIR/b" code data
	for p in "GET /" "GET /index.html" "GET /style.css" "GET /missing" "GET /healthz" \
		"GET /internal/api/items?id=1" "POST /internal/api/items"; do
		data=()
		[[ $p == POST* ]] && data=(--data-binary x=1)
		code=$(curl -sS --http2 -o "$b" -D "$h" -w '%{http_version} %{http_code}' \
			-H 'accept-encoding: gzip' -X "${p%% *}" "${data[@]}" "$base${p#* }")
		printf '%s %s | %s | enc=%s hsts=%s nosniff=%s type=%s | %s\n' "$p" "$code" \
			"$(grep -ci '^x-jairouter-' "$h")" \
			"$(hdr_of "$h" content-encoding)" "$(hdr_of "$h" strict-transport-security)" \
			"$(hdr_of "$h" x-content-type-options)" "$(hdr_of "$h" content-type)" \
			"$(sha256sum <"$b" | cut -c1-16)"
	done
	code=$(curl -sS -o /dev/null -D "$h" -w '%{http_code}' "$plain/some/page?q=1")
	printf 'redirect %s %s\n' "$code" "$(hdr_of "$h" location | sed -E 's#//127\.0\.0\.1:[0-9]+/#//HOST/#')"
}

hdr_of() {
	awk -v n="$2" '{ sub(/\r$/, "") } index($0, ":") && tolower(substr($0, 1, index($0, ":") - 1)) == n {
		v = substr($0, index($0, ":") + 1); sub(/^[ \t]+/, "", v); print v }' "$1"
}

# oplog FILE: the operator's log lines normalised: RFC 5424 header kept to its
# fixed fields, client ports, dates, timers, counters and listener ports replaced.
oplog() {
	sed -E -e 's/^(<[0-9]+>1) [^ ]+ [^ ]+ haproxy [0-9]+ - - /\1 TS HOST haproxy PID - - /' \
		-e 's/127\.0\.0\.1:[0-9]+/127.0.0.1:P/g' -e 's/\[[^]]+\]/[DATE]/' \
		-e 's# -?[0-9]+/-?[0-9]+/-?[0-9]+/-?[0-9]+/-?[0-9]+ # T/T/T/T/T #' \
		-e 's# [0-9]+/[0-9]+/[0-9]+/[0-9]+/[0-9]+ [0-9]+/[0-9]+ # AC/FC/BC/SC/RC SQ/BQ #' "$1"
}

@test "the composition is the fixture plus the documented line, nothing else" {
	diff "$FIXTURE/haproxy.cfg" "$JR_OPERATOR_DIR/haproxy.cfg" >"$BATS_TEST_TMPDIR/diff" || true
	cat "$BATS_TEST_TMPDIR/diff"
	[[ $(grep -c '^[<>]' "$BATS_TEST_TMPDIR/diff") -eq 1 ]]
	[[ $(grep '^>' "$BATS_TEST_TMPDIR/diff") == "> $DOC_LINE" ]]
	# The same line, verbatim, in the documented procedure.
	grep -qxF "$DOC_LINE" "$JR_ROOT/docs/haproxy.md"
}

@test "the website, internal API, compression, security headers and redirect answer as without the gateway" {
	probe "$ALONE_URL" "$ALONE_HTTP_URL" >"$BATS_TEST_TMPDIR/alone"
	probe "$JR_URL" "$OP_HTTP_URL" >"$BATS_TEST_TMPDIR/composed"
	cat "$BATS_TEST_TMPDIR/composed"
	diff "$BATS_TEST_TMPDIR/alone" "$BATS_TEST_TMPDIR/composed"
	# The probe exercised what it claims to: gzip, HSTS, a 301 to https, the API.
	grep -q '^GET / 2 200 | 0 | enc=gzip hsts=max-age=31536000 nosniff=nosniff type=text/html' "$BATS_TEST_TMPDIR/composed"
	grep -q '^GET /internal/api/items?id=1 2 200 | 0 | enc= hsts=max-age=31536000' "$BATS_TEST_TMPDIR/composed"
	grep -q '^redirect 301 https://HOST/some/page?q=1$' "$BATS_TEST_TMPDIR/composed"
}

@test "the operator's access log: the same lines for its traffic, and AI requests in its format" {
	: >"$STACK/op-access.log"
	: >"$STACK/alone-access.log"
	probe "$ALONE_URL" "$ALONE_HTTP_URL" >/dev/null
	probe "$JR_URL" "$OP_HTTP_URL" >/dev/null
	eventually 5 test "$(wc -l <"$STACK/op-access.log")" -ge 8
	eventually 5 test "$(wc -l <"$STACK/alone-access.log")" -ge 8
	sleep 0.3
	oplog "$STACK/alone-access.log" >"$BATS_TEST_TMPDIR/alone"
	oplog "$STACK/op-access.log" >"$BATS_TEST_TMPDIR/composed"
	cat "$BATS_TEST_TMPDIR/composed"
	diff "$BATS_TEST_TMPDIR/alone" "$BATS_TEST_TMPDIR/composed"
	# An AI request: one line in the operator's RFC 5424 format, naming the gateway.
	auth_chat "$KEY"
	expect_status 200
	eventually 5 grep -qE 'jairouter/gateway(-t[0-9]+)? .* 200 .*"POST https://127.0.0.1:[0-9]*/v1/chat/completions HTTP/2.0"$' "$STACK/op-access.log"
	grep 'jairouter/gateway' "$STACK/op-access.log" | grep -qE '^<134>1 [^ ]+ - haproxy [0-9]+ - - op 127\.0\.0\.1:'
	# The gateway's report lines go to the agent's ring, never into the operator's log.
	run ! grep -qE ' end=1$' "$STACK/op-access.log"
}

# raw_tls URL BYTES: sends BYTES as they are over TLS to URL's host and port, prints
# the answer's status line and body (headers other than the status line vary).
raw_tls() {
	node -e '
		const tls = require("tls"); const u = new URL(process.argv[1]);
		const s = tls.connect({ host: u.hostname, port: Number(u.port), servername: undefined,
			ALPNProtocols: ["http/1.1"], rejectUnauthorized: false }, () => s.end(process.argv[2]));
		let out = ""; s.on("data", (d) => { out += d; });
		s.on("close", () => { const [head, ...body] = out.split("\r\n\r\n");
			console.log(head.split("\r\n")[0]); console.log(body.join("\r\n\r\n")); });
		s.on("error", (e) => { console.log("error " + e.code); });' "$1" "$2"
}

@test "errors the operator's frontend raises while parsing a request are the same with the gateway" {
	local many=() i
	for url in "$ALONE_URL" "$JR_URL"; do
		raw_tls "$url" $'GARBAGE LINE\r\n\r\n'
		raw_tls "$url" $'GET /v1/models HTTP/1.1\r\nhost: x\r\nbad header\r\n\r\n'
	done >"$BATS_TEST_TMPDIR/raw"
	cat "$BATS_TEST_TMPDIR/raw"
	# Four answers: the fixture's two, then the composition's two, identical (HAProxy
	# 2.6's built-in 400: docs/haproxy.md, "Errors").
	[[ $(grep -c '^HTTP/1.1 400' "$BATS_TEST_TMPDIR/raw") -eq 4 ]]
	half=$(($(wc -l <"$BATS_TEST_TMPDIR/raw") / 2))
	diff <(head -n "$half" "$BATS_TEST_TMPDIR/raw") <(tail -n +"$((half + 1))" "$BATS_TEST_TMPDIR/raw")
	# More than 101 headers, over HTTP/1.1: the same answer too.
	for ((i = 0; i < 105; i++)); do many+=(-H "x-h$i: v"); done
	a=$(curl -sS --http1.1 -o /dev/null -w '%{http_code}' "${many[@]}" "$ALONE_URL/v1/models")
	b=$(curl -sS --http1.1 -o /dev/null -w '%{http_code}' "${many[@]}" "$JR_URL/v1/models")
	[[ $a == 400 && $b == "$a" ]]
}

@test "no gateway rule outside haproxy/jairouter.cfg (one source)" {
	run bash "$JR_ROOT/tests/dropin/one-source.sh"
	echo "$output"
	[[ $status -eq 0 ]]
}

# load_run N CONCURRENCY: N chat requests, each on a new connection (HTTP/1.1 over TLS,
# what most SDK clients do between retries), CONCURRENCY at a time. Prints the
# status of each (000: no answer at all).
load_run() {
	local n=$1 c=$2 per i j
	per=$((n / c))
	for ((j = 0; j < c; j++)); do
		for ((i = 0; i < per; i++)); do
			curl -sS -o /dev/null -w '%{http_code}\n' --max-time 30 --http1.1 "$JR_URL$CHAT_PATH" \
				-H "authorization: Bearer $KEY" -H 'content-type: application/json' \
				--data-binary "$(chat_body test-model)" 2>/dev/null || echo 000
		done &
	done
	wait
}

# workers_at_least LINE N: HAProxy's log after LINE names at least N new workers.
workers_at_least() {
	(($(tail -n +"$(($1 + 1))" "$STACK/haproxy.log" | grep -c 'New worker .* forked') >= $2))
}

# former_workers_exited LINE N: HAProxy's log after LINE says N old workers exited
# (kept hop connections must not hold a reloaded worker alive).
former_workers_exited() {
	(($(tail -n +"$(($1 + 1))" "$STACK/haproxy.log" | grep -c 'Former worker .* exited') >= $2))
}

report_lines() {
	curl -fsS --max-time 5 "$JR_AGENT_METRICS/metrics" | awk '$1 == "jairouter_report_lines_total" { print $2 }'
}

lines_at_least() {
	(($(report_lines) >= $1))
}

# reloads_under_load: restarts the stack's HAProxy in master-worker mode, sends 800
# requests (4 at a time, each on a new connection) while the master is told to
# reload three times. Sets ANSWERED (200s), TOTAL (answers of any kind) and LINES
# (report lines the agent received for them).
reloads_under_load() {
	local files master i before n
	mapfile -t files < <(jr_haproxy_files)
	jr_stop_pid "$STACK" haproxy TERM
	n=$(wc -l <"$STACK/haproxy.log")
	jr_haproxy_env
	jr_haproxy_spawn "$STACK" haproxy -W -db "${files[@]}"
	jr_wait_http "$JR_STATS_URL/stats" 30
	jr_haproxy_server_up spoa-agents agent1 30
	jr_haproxy_server_up be_mock mock1 30
	status_is "$KEY" 200
	master=$(jr_pid_of "$STACK/haproxy.pid")
	sleep 1
	before=$(report_lines)
	load_run 800 4 >"$BATS_TEST_TMPDIR/codes" &
	# Three reloads during the load, each once the previous one has started its worker.
	for i in 1 2 3; do
		sleep 0.5
		kill -USR2 "$master"
		eventually 15 workers_at_least "$n" $((i + 1))
	done
	wait
	sort "$BATS_TEST_TMPDIR/codes" | uniq -c
	TOTAL=$(grep -vc '^000$' "$BATS_TEST_TMPDIR/codes" || true)
	ANSWERED=$(grep -c '^200$' "$BATS_TEST_TMPDIR/codes" || true)
	# The reloads happened: three new workers were started, without an alert.
	tail -n +"$((n + 1))" "$STACK/haproxy.log" | grep -v '^id=' >"$BATS_TEST_TMPDIR/master.log"
	[[ $(grep -c 'New worker .* forked' "$BATS_TEST_TMPDIR/master.log") -ge 4 ]]
	run ! grep -q 'ALERT' "$BATS_TEST_TMPDIR/master.log"
	# Every old worker finishes once its requests are answered.
	eventually 60 former_workers_exited "$n" 3
	eventually 10 lines_at_least $((before + 800)) || true
	sleep 0.5
	LINES=$(($(report_lines) - before))
	echo "answered $ANSWERED of 800 (any status: $TOTAL); report lines received: $LINES"
}

@test "hitless reloads (master-worker, USR2) under load, reports over UDP: every request answered, every line delivered" {
	export JR_REPORT_OVER_UDP=1
	reloads_under_load
	unset JR_REPORT_OVER_UDP
	((TOTAL == 800 && ANSWERED == 800))
	((LINES == 800))
}

@test "hitless reloads under load, reports through the rings: every request answered, no line twice" {
	reloads_under_load
	((TOTAL == 800 && ANSWERED == 800))
	# A ring's forwarder stops with its worker: lines written in an old worker's last
	# moments can stay undelivered (measured: 0 to 6 of 800 over three reloads); their
	# requests are billed at the estimate when their reservation's lease ends
	# (docs/haproxy.md, "Report transport"). The count is printed, not bounded: HAProxy 2.6
	# gives no bound. Reports over UDP (the test above) lose none.
	echo "lines lost over three reloads: $((800 - LINES))"
	((LINES <= 800))
}

@test "the operator's stick-table rate limit answers 429 with the gateway as without it" {
	local url ok limited client=127.0.0.77
	# The table counts requests per source address over 10 s and weighs in the previous
	# 10 s: a source address no other test uses starts from an empty entry, whatever the
	# earlier tests sent and however long they took.
	for url in "$ALONE_URL" "$JR_URL"; do
		curl -sS -Z --parallel-max 50 --http2 --interface "$client" -o /dev/null -w '%{http_code}\n' \
			"$url/healthz?n=[1-2100]" 2>/dev/null | sort | uniq -c >"$BATS_TEST_TMPDIR/codes-${url##*:}" || true
		cat "$BATS_TEST_TMPDIR/codes-${url##*:}"
		grep -q ' 429$' "$BATS_TEST_TMPDIR/codes-${url##*:}"
	done
	# The same limit with and without the gateway: 2000 in the window, then 429 (a small
	# tolerance: HAProxy's counter is shared by its threads).
	for url in "$ALONE_URL" "$JR_URL"; do
		ok=$(awk '$2 == 200 { print $1 }' "$BATS_TEST_TMPDIR/codes-${url##*:}")
		limited=$(awk '$2 == 429 { print $1 }' "$BATS_TEST_TMPDIR/codes-${url##*:}")
		((ok >= 1980 && ok <= 2000 && ok + limited == 2100))
	done
	# AI requests from that client are refused by the operator's rule too, before
	# the gateway: the operator's frontend runs first. (A GET: HAProxy refuses an HTTP/2
	# upload it has not read with RST_STREAM, which curl may report instead of the 429.)
	req --interface "$client" -H "authorization: Bearer $KEY" /v1/models
	expect_status 429
}
