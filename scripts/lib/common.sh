# shellcheck shell=bash
# Helpers shared by scripts/demo, scripts/test, the bats suites and the benchmark.
# Source it; it sets no shell options of its own.
#
#   jr_step NAME CMD...           one counted check: "ok NAME" / "not ok NAME"
#   jr_free_port                  a free TCP port on 127.0.0.1 (below the ephemeral range)
#   jr_free_ports N               N distinct free ports, one per line
#   jr_wait_http URL SECONDS      until URL answers 2xx
#   jr_wait_tcp HOST PORT SECONDS until HOST:PORT accepts connections
#   jr_dump_logs DIR              print every DIR/*.log with a header
#   jr_stack_start DIR            PostgreSQL + migrations + mocks + agent + HAProxy
#                                 (HAProxy on $JR_HTTP_PORT when set, else a free port);
#                                 JR_STACK_LAYOUT=operator: inside the operator fixture
#                                 composition, over TLS (jr_operator_prepare);
#                                 JR_STACK_LAYOUT=direct: clients on the gateway's own
#                                 listener over TLS (JR_GATEWAY_LISTEN, JR_GATEWAY_CERT),
#                                 the demo's frontend beside it
#   jr_haproxy_start DIR / jr_haproxy_files           (re)start HAProxy / its -f arguments
#   jr_stack_stop DIR             stop all of it
#   jr_agent_start DIR / jr_agent_stop DIR [SIGNAL]   restart the agent alone
#   jr_pg_start DIR / jr_pg_stop DIR                  restart PostgreSQL alone
#   jr_ctl ARGS...                scripts/jairouterctl against the stack's database
#   jr_adapter_start DIR          jairouter-adapter and the provider mock (docs/adapter.md)
#
# jr_stack_start exports (and writes to DIR/env):
#   JR_URL JR_STATS_URL JR_STATS_SOCK JR_AGENT_ADDR JR_AGENT_METRICS JR_DATABASE
#   JR_PG_PORT JR_MOCK_URL JR_MOCK2_URL JR_STACK_DIR
#   JR_ADAPTER_ADDR JR_ADAPTER_URL JR_PROVIDERS_URL (tests/mock/mock-providers.js, whose
#   credentials are JR_PROVIDERS_KEY, JR_PROVIDERS_AWS for Bedrock, JR_PROVIDERS_ENTRA
#   (CLIENT_ID:SECRET) for Entra ID, JR_PROVIDERS_GOOGLE_KEY (PEM) and
#   JR_PROVIDERS_GOOGLE_EMAIL for a Google service account, JR_PROVIDERS_WEB_TOKEN_FILE for
#   AWS STS AssumeRoleWithWebIdentity, JR_PROVIDERS_TC (SECRET_ID:SECRET_KEY) for Tencent
#   Cloud's signed API)
# Every process logs into DIR/<name>.log and has its pid in DIR/<name>.pid.

JR_ROOT=${JR_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
export JR_ROOT

# jr_step NAME CMD...: one check of a suite that counts its own results: prints
# "ok NAME" or "not ok NAME" and adds one to the caller's $passed or $failed.
jr_step() {
	local name=$1
	shift
	if "$@"; then
		echo "ok $name"
		passed=$((passed + 1))
	else
		echo "not ok $name"
		failed=$((failed + 1))
	fi
}

jr_log() {
	printf '%s %s\n' "[$(date +%H:%M:%S)]" "$*" >&2
}

jr_die() {
	jr_log "error: $*"
	return 1
}

# Ports come from the kernel (bind to port 0), never from a fixed list. All N
# sockets are held open together so the N ports are distinct.
jr_free_ports() {
	local n=${1:-1}
	node -e '
		const fs = require("fs"), net = require("net");
		// Below the kernel ephemeral range: a port handed out here is never the one
		// the kernel gives a server bound to port 0 (the mocks) or an outgoing
		// connection between now and the moment our server binds it.
		let low = 32768;
		try { low = Number(fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").split(/\s+/)[0]); } catch (e) {}
		const lo = 10000, hi = Math.max(lo + 1000, low) - 1;
		const n = Number(process.argv[1]); const socks = []; const ports = [];
		let tries = 0;
		const next = () => {
			if (ports.length === n) { console.log(ports.join("\n")); socks.forEach(s => s.close()); return; }
			if (++tries > 1000) { console.error("no free port"); process.exit(1); }
			const port = lo + Math.floor(Math.random() * (hi - lo + 1));
			if (ports.includes(port)) return next();
			const s = net.createServer();
			s.once("error", next);
			s.listen(port, "127.0.0.1", () => { socks.push(s); ports.push(port); next(); });
		};
		next();' "$n"
}

jr_free_port() {
	jr_free_ports 1
}

# jr_wait_http URL SECONDS: succeeds once URL answers with a 2xx status.
jr_wait_http() {
	local url=$1 secs=${2:-30} deadline
	deadline=$((SECONDS + secs))
	while ((SECONDS < deadline)); do
		if curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	jr_die "$url did not answer 2xx within ${secs}s"
}

# jr_wait_tcp HOST PORT SECONDS: succeeds once HOST:PORT accepts a connection.
jr_wait_tcp() {
	local host=$1 port=$2 secs=${3:-30} deadline
	deadline=$((SECONDS + secs))
	while ((SECONDS < deadline)); do
		# shellcheck disable=SC2016 # $1/$2 expand in the child shell
		if timeout 2 bash -c 'exec 9<>"/dev/tcp/$1/$2"' _ "$host" "$port" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	jr_die "$host:$port did not accept connections within ${secs}s"
}

jr_dump_logs() {
	local dir=$1 f pg=
	[[ -f $dir/pg.dir ]] && pg=$(cat "$dir/pg.dir")
	for f in "$dir"/*.log "$dir"/*/*.log ${pg:+"$pg"/*.log}; do
		[[ -f $f ]] || continue
		printf '\n===== %s (last 200 lines) =====\n' "$f"
		tail -n 200 "$f"
	done
}

# jr_spawn DIR NAME CMD...: runs CMD in the background, output to DIR/NAME.log,
# pid in DIR/NAME.pid. Standard input and fd 3 (bats) are closed so that no
# test runner waits on the child.
jr_spawn() {
	local dir=$1 name=$2
	shift 2
	if [[ -n ${JR_SPAWN_SETSID:-} ]]; then
		# Own session: a terminal's Ctrl-C reaches only the caller, which
		# stops the stack in order (scripts/demo).
		setsid "$@" </dev/null >>"$dir/$name.log" 2>&1 3>&- &
	else
		"$@" </dev/null >>"$dir/$name.log" 2>&1 3>&- &
	fi
	echo "$! $(basename "$1")" >"$dir/$name.pid"
	# Not a job of this shell: no "Killed" notices when a test kills it.
	disown "$!"
}

# jr_pid_of PIDFILE: the pid recorded by jr_spawn, if that process is still
# the program that was started (a stale file never makes us signal a stranger).
jr_pid_of() {
	local pidfile=$1 pid prog
	[[ -f $pidfile ]] || return 1
	read -r pid prog <"$pidfile" || return 1
	[[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$prog" || return 1
	echo "$pid"
}

jr_pid_alive() {
	jr_pid_of "$1" >/dev/null
}

# jr_stop_pid DIR NAME [SIGNAL]: signal the process, wait up to 10 s, then KILL.
jr_stop_pid() {
	local dir=$1 name=$2 sig=${3:-TERM} pid i
	[[ -f $dir/$name.pid ]] || return 0
	if pid=$(jr_pid_of "$dir/$name.pid"); then
		kill -s "$sig" "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			jr_log "$name (pid $pid) ignored SIG$sig for 10s: killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	[[ -n ${pid:-} ]] && { wait "$pid" 2>/dev/null || true; }
	rm -f "$dir/$name.pid"
}

jr_ctl() {
	JAIROUTER_DATABASE="$JR_DATABASE" "$JR_ROOT/scripts/jairouterctl" "$@"
}

# jr_mock_start DIR NAME: starts tests/mock/mock-openai.js on a kernel-chosen
# port and prints that port.
jr_mock_start() {
	local dir=$1 name=$2 deadline port=
	jr_spawn "$dir" "mock-$name" node "$JR_ROOT/tests/mock/mock-openai.js" --port 0 --name "$name"
	deadline=$((SECONDS + 30))
	while ((SECONDS < deadline)); do
		port=$(sed -n 's/^LISTENING \([0-9][0-9]*\).*/\1/p' "$dir/mock-$name.log" | head -n 1)
		[[ -n $port ]] && break
		jr_pid_alive "$dir/mock-$name.pid" || break
		sleep 0.1
	done
	[[ -n $port ]] || {
		jr_die "mock $name did not print LISTENING"
		return 1
	}
	jr_wait_http "http://127.0.0.1:$port/health" 30 || return 1
	echo "$port"
}

# Which agent binary: $JR_AGENT_BIN, else the ASan build, else the release one.
jr_agent_bin() {
	if [[ -n ${JR_AGENT_BIN:-} ]]; then
		echo "$JR_AGENT_BIN"
	elif [[ -x $JR_ROOT/build/asan/jairouter-spoa ]]; then
		echo "$JR_ROOT/build/asan/jairouter-spoa"
	else
		echo "$JR_ROOT/build/release/jairouter-spoa"
	fi
}

# jr_agent_config DIR SPOA_PORT METRICS_PORT DATABASE [REPORT_PORT [ADMIN_PORT]]:
# writes DIR/agent.conf (no report listener without REPORT_PORT, no administration
# API without ADMIN_PORT; HAProxy's stats socket $JR_STATS_SOCK, polled for routing,
# when set).
jr_agent_config() {
	cat >"$1/agent.conf" <<EOF
# Written by scripts/lib/common.sh for a throwaway stack.
listen = 127.0.0.1:$2
metrics_listen = 127.0.0.1:$3
report_listen = ${5:+127.0.0.1:$5}
admin_api_listen = ${6:+127.0.0.1:$6}
haproxy_stats_socket = ${JR_STATS_SOCK:-}
workers = 2
database = "$4"
log_level = ${JR_AGENT_LOG_LEVEL:-info}
# The suites send many bad credentials from 127.0.0.1: the address lock-out is off
# unless a suite asks for it (tests/integration/identity.bats).
abuse_max_failures = ${JR_ABUSE_MAX_FAILURES:-0}
${JR_AGENT_EXTRA_CONF:-}
EOF
}

# jr_agent_start DIR: starts the agent with DIR/agent.conf; waits for /readyz.
jr_agent_start() {
	local dir=$1 bin
	bin=$(jr_agent_bin)
	[[ -x $bin ]] || {
		jr_die "agent binary $bin not found (run make MODE=asan)"
		return 1
	}
	"$bin" -t -c "$dir/agent.conf" >>"$dir/agent.log" 2>&1 || {
		jr_die "agent rejected $dir/agent.conf"
		return 1
	}
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1} \
		UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
		jr_spawn "$dir" agent "$bin" -c "$dir/agent.conf"
	jr_wait_http "$JR_AGENT_METRICS/readyz" 30
}

jr_agent_stop() {
	jr_stop_pid "$1" agent "${2:-TERM}"
}

# jr_haproxy_server_up BACKEND SERVER SECONDS: waits until HAProxy's health
# checks report the server UP (stats CSV, field 18).
jr_haproxy_server_up() {
	local be=$1 srv=$2 secs=${3:-30} deadline st
	deadline=$((SECONDS + secs))
	while ((SECONDS < deadline)); do
		st=$(curl -fsS --max-time 2 "$JR_STATS_URL/stats;csv" 2>/dev/null |
			awk -F, -v b="$be" -v s="$srv" '$1 == b && $2 == s { print $18 }') || true
		[[ $st == UP* ]] && return 0
		sleep 0.2
	done
	jr_die "HAProxy server $be/$srv is not UP after ${secs}s (last state: ${st:-unknown})"
}

# jr_haproxy_files: the -f arguments of the stack's HAProxy, one per line: the
# "operator" file (haproxy/haproxy.cfg), the gateway (haproxy/jairouter.cfg) and
# the demo's model backends (haproxy/models.cfg), in that order (docs/haproxy.md).
# JR_STACK_LAYOUT=operator: the composition scripts/compose-operator wrote in
# $JR_OPERATOR_DIR (the operator's file, the test harness' stats listener, then
# the service's EXTRAOPTS).
jr_haproxy_files() {
	if [[ ${JR_STACK_LAYOUT:-} == operator ]]; then
		local extra
		# shellcheck disable=SC1091 # written by scripts/compose-operator
		extra=$(source "$JR_OPERATOR_DIR/default" && printf '%s' "$EXTRAOPTS")
		# -n: the fixture's maxconn needs more file descriptors than test machines
		# allow (tests/dropin/harness.cfg).
		printf '%s\n' -n "${JR_OPERATOR_MAXCONN:-8000}" \
			-f "$JR_OPERATOR_DIR/haproxy.cfg" -f "$JR_ROOT/tests/dropin/harness.cfg"
		# shellcheck disable=SC2086 # EXTRAOPTS is a word list, as in haproxy.service
		printf '%s\n' $extra
		return
	fi
	printf '%s\n' -f "$JR_ROOT/haproxy/haproxy.cfg" \
		-f "$JR_ROOT/haproxy/jairouter.cfg" -f "$JR_ROOT/haproxy/models.cfg"
}

# jr_haproxy_env: what the test stacks add to the shipped defaults. The internal
# sockets are named after the client-facing address (one HAProxy per address on a
# host); the report lines also go to stderr (DIR/haproxy.log); the mock's test
# hooks (x-mock-*) and the affinity header reach the model servers.
jr_haproxy_env() {
	export JR_INSTANCE=${JR_INSTANCE_OVERRIDE:-jr-${JR_LISTEN:-default}}
	# JR_REPORT_LOG=none: the report lines go to the agents only, as in production
	# (scripts/bench: a line written to a file per request is a cost of the suites);
	# jr_report_env removes it from HAProxy's environment.
	export JR_REPORT_LOG=${JR_REPORT_LOG:-stderr}
	export JR_UPSTREAM_HEADERS_EXTRA=${JR_UPSTREAM_HEADERS_EXTRA:-x-mock-[a-z0-9-]+}
	# One hop socket per HAProxy thread: HAProxy runs one thread per CPU it may use,
	# which is what nproc counts (haproxy/jairouter.cfg, JR_HOP_THREADS). 0: one hop
	# socket shared by all threads, as without the variable (for comparisons). The
	# operator composition runs without it, as the systemd drop-in installs the
	# gateway, so that the suites cover both.
	if [[ ${JR_HOP_THREADS:-} == 0 ]]; then
		unset JR_HOP_THREADS
	elif [[ ${JR_STACK_LAYOUT:-} != operator ]]; then
		export JR_HOP_THREADS=${JR_HOP_THREADS:-$(nproc)}
	fi
}

# jr_report_env CMD...: runs CMD, without JR_REPORT_LOG in its environment when that
# is "none" (jr_haproxy_env).
jr_report_env() {
	if [[ ${JR_REPORT_LOG:-} == none ]]; then
		(
			unset JR_REPORT_LOG
			"$@"
		)
	else
		"$@"
	fi
}

# jr_haproxy_malloc CMD...: runs CMD with the allocator settings HAProxy gets wherever
# the gateway ships (deploy/systemd/haproxy.service.d/jairouter.conf, the image, the
# Kubernetes pod): with 1 MiB buffers, glibc's defaults hand every buffer back to the
# kernel and fault it in again (docs/haproxy.md, "Memory allocator").
# JR_HAPROXY_MALLOC=0: glibc's defaults (for comparisons: scripts/bench, bench-memory).
jr_haproxy_malloc() {
	if [[ ${JR_HAPROXY_MALLOC:-1} == 0 ]]; then
		"$@"
		return
	fi
	MALLOC_MMAP_THRESHOLD_=16777216 MALLOC_TRIM_THRESHOLD_=33554432 "$@"
}

# jr_haproxy_pools: HAProxy's command-line options that go with the allocator settings,
# one per line: -dMglobal, the process-wide pool cache (docs/haproxy.md, "Memory
# allocator"), as the systemd drop-in, the image's documented command and the Kubernetes
# pod run it. JR_HAPROXY_GLOBAL_POOL=0: none (for comparisons).
# The operator composition gets it from its EXTRAOPTS (scripts/compose-operator, as
# docs/haproxy.md's step 4 writes it).
jr_haproxy_pools() {
	[[ ${JR_HAPROXY_GLOBAL_POOL:-1} == 0 || ${JR_STACK_LAYOUT:-} == operator ]] || echo -dMglobal
}

# jr_haproxy_spawn DIR NAME ARGS...: jr_spawn DIR NAME haproxy ARGS..., with the allocator
# settings (jr_haproxy_malloc) and options (jr_haproxy_pools) HAProxy ships with.
jr_haproxy_spawn() {
	local dir=$1 name=$2 pools
	shift 2
	mapfile -t pools < <(jr_haproxy_pools)
	jr_haproxy_malloc jr_spawn "$dir" "$name" haproxy "${pools[@]}" "$@"
}

# jr_haproxy_start DIR [ARGS...]: checks and starts the stack's HAProxy (jr_haproxy_files,
# then ARGS, e.g. a last "-f FILE" of tuning) and waits until the agent and the demo's
# model server are UP.
jr_haproxy_start() {
	local dir=$1 files
	shift
	mapfile -t files < <(jr_haproxy_files)
	jr_haproxy_env
	jr_report_env haproxy -c -q "${files[@]}" "$@" >>"$dir/haproxy.log" 2>&1 || {
		jr_die "haproxy -c failed"
		return 1
	}
	jr_report_env jr_haproxy_spawn "$dir" haproxy -db "${files[@]}" "$@"
	jr_wait_http "$JR_STATS_URL/stats" 30 &&
		jr_haproxy_server_up spoa-agents agent1 30 &&
		jr_haproxy_server_up be_mock mock1 30
}

# jr_pg_dir DIR: the PostgreSQL directory of the stack in DIR, remembered in
# DIR/pg.dir. Normally DIR/pg; as root, PostgreSQL runs as "postgres", which
# must be able to reach it: when a parent of DIR is private (mktemp -d, bats
# temporary directories), a world-traversable directory in /tmp is used.
jr_pg_dir() {
	local dir=$1 pg
	if [[ -f $dir/pg.dir ]]; then
		cat "$dir/pg.dir"
		return 0
	fi
	pg=$dir/pg
	if ((EUID == 0)) && ! runuser -u postgres -- test -x "$dir" 2>/dev/null; then
		pg=$(mktemp -d /tmp/jr-pg-data.XXXXXX)
		chmod 755 "$pg"
	fi
	printf '%s\n' "$pg" >"$dir/pg.dir"
	printf '%s\n' "$pg"
}

# jr_pg_stop DIR / jr_pg_start DIR: stop and restart the stack's PostgreSQL
# (same port).
jr_pg_stop() {
	# shellcheck source=scripts/lib/pg.sh
	source "$JR_ROOT/scripts/lib/pg.sh"
	pg_stop "$(jr_pg_dir "$1")" >>"$1/pg-stop.log" 2>&1
}

jr_pg_start() {
	# shellcheck source=scripts/lib/pg.sh
	source "$JR_ROOT/scripts/lib/pg.sh"
	pg_start "$(jr_pg_dir "$1")" "$JR_PG_PORT" >>"$1/pg-start.log" 2>&1
}

jr_write_env() {
	local dir=$1 v
	: >"$dir/env"
	for v in JR_URL JR_STATS_URL JR_STATS_SOCK JR_AGENT_ADDR JR_AGENT_METRICS JR_DATABASE \
		JR_PG_PORT JR_MOCK_URL JR_MOCK2_URL JR_STACK_DIR JR_LISTEN JR_SPOA_ADDR JR_MOCK_ADDR \
		JR_MOCK2_ADDR JR_HAPROXY_DIR JR_STATS_LISTEN JR_ADAPTER_ADDR JR_ADAPTER_RT_ADDR JR_ADAPTER_URL JR_PROVIDERS_URL \
		JR_PROVIDERS_KEY JR_PROVIDERS_AWS JR_PROVIDERS_ENTRA JR_PROVIDERS_GOOGLE_KEY JR_PROVIDERS_GOOGLE_EMAIL JR_PROVIDERS_WEB_TOKEN_FILE JR_PROVIDERS_TC JR_REPORT_ADDR JR_ADMIN_ADDR JR_STACK_LAYOUT JR_OPERATOR_DIR \
		JR_GATEWAY_LISTEN JR_GATEWAY_CERT CURL_CA_BUNDLE NODE_EXTRA_CA_CERTS OP_HTTPS_BIND OP_HTTP_BIND OP_HTTP_URL OP_WEB_ADDR \
		OP_API_ADDR OP_STATS_BIND OP_STATS_SOCK OP_LOG OP_CERT; do
		printf 'export %s=%q\n' "$v" "${!v:-}" >>"$dir/env"
	done
}

# jr_stack_start DIR: the whole gateway on free loopback ports. On failure the
# logs are dumped and the parts already started are stopped.
jr_stack_start() {
	local dir=$1
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if ! _jr_stack_start "$dir"; then
		jr_log "stack start failed; logs follow"
		jr_dump_logs "$dir" >&2
		jr_stack_stop "$dir"
		return 1
	fi
}

_jr_stack_start() {
	local dir=$1 ports pg_port spoa_port metrics_port http_port stats_port mock_port mock2_port
	local report_port admin_port
	# shellcheck source=scripts/lib/pg.sh
	source "$JR_ROOT/scripts/lib/pg.sh"
	mapfile -t ports < <(jr_free_ports 8)
	pg_port=${ports[0]} spoa_port=${ports[1]} metrics_port=${ports[2]}
	http_port=${JR_HTTP_PORT:-${ports[3]}} stats_port=${ports[4]} report_port=${ports[5]}
	admin_port=${ports[6]}
	export JR_STACK_DIR=$dir JR_PG_PORT=$pg_port

	jr_log "PostgreSQL on 127.0.0.1:$pg_port"
	pg_start "$(jr_pg_dir "$dir")" "$pg_port" >>"$dir/pg-start.log" 2>&1 || return 1
	JR_DATABASE=$(pg_create_db "$pg_port" jairouter 2>>"$dir/pg-start.log") || return 1
	export JR_DATABASE
	JAIROUTER_DATABASE=$JR_DATABASE "$JR_ROOT/scripts/migrate" >>"$dir/migrate.log" 2>&1 || {
		jr_die "migrations failed"
		return 1
	}

	mock_port=$(jr_mock_start "$dir" mock1) || return 1
	mock2_port=$(jr_mock_start "$dir" mock2) || return 1
	export JR_MOCK_URL=http://127.0.0.1:$mock_port JR_MOCK2_URL=http://127.0.0.1:$mock2_port
	jr_log "mocks on $mock_port and $mock2_port"

	export JR_AGENT_ADDR=127.0.0.1:$spoa_port JR_AGENT_METRICS=http://127.0.0.1:$metrics_port
	export JR_REPORT_ADDR=127.0.0.1:$report_port JR_ADMIN_ADDR=127.0.0.1:$admin_port
	# The agent polls HAProxy's stats socket (routing): known before either starts.
	export JR_STATS_SOCK=$dir/haproxy.sock
	# A unix socket path must fit in 108 bytes.
	if ((${#JR_STATS_SOCK} > 100)); then
		JR_STATS_SOCK=$(mktemp -u /tmp/jr-haproxy.XXXXXX.sock)
	fi
	jr_adapter_start "$dir" || return 1
	jr_agent_config "$dir" "$spoa_port" "$metrics_port" "$JR_DATABASE" "$report_port" "$admin_port"
	jr_log "agent $(jr_agent_bin) on $JR_AGENT_ADDR"
	jr_agent_start "$dir" || return 1

	export JR_LISTEN=127.0.0.1:$http_port JR_SPOA_ADDR=$JR_AGENT_ADDR
	export JR_MOCK_ADDR=127.0.0.1:$mock_port JR_MOCK2_ADDR=127.0.0.1:$mock2_port
	export JR_HAPROXY_DIR=$JR_ROOT/haproxy JR_STATS_LISTEN=127.0.0.1:$stats_port
	export JR_URL=http://$JR_LISTEN JR_STATS_URL=http://$JR_STATS_LISTEN
	if [[ ${JR_STACK_LAYOUT:-} == operator ]]; then
		jr_operator_prepare "$dir" "$http_port" || return 1
	elif [[ ${JR_STACK_LAYOUT:-} == direct ]]; then
		# The clients' port is the gateway's own listener over TLS (haproxy/jairouter.cfg,
		# JR_GATEWAY_LISTEN and JR_GATEWAY_CERT); the demo's frontend (fe_main) listens
		# beside it.
		mkdir -p "$dir/direct"
		openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
			-addext subjectAltName=IP:127.0.0.1 -keyout "$dir/direct/key.pem" \
			-out "$dir/direct/ca.pem" >>"$dir/direct/openssl.log" 2>&1 || {
			jr_die "openssl could not make the listener's certificate"
			return 1
		}
		cat "$dir/direct/ca.pem" "$dir/direct/key.pem" >"$dir/direct/cert.pem"
		export JR_GATEWAY_LISTEN=127.0.0.1:$http_port JR_GATEWAY_CERT=$dir/direct/cert.pem
		export JR_LISTEN=127.0.0.1:${ports[7]} JR_URL=https://127.0.0.1:$http_port
		export CURL_CA_BUNDLE=$dir/direct/ca.pem NODE_EXTRA_CA_CERTS=$dir/direct/ca.pem
	fi
	jr_log "HAProxy on $JR_URL (stats $JR_STATS_URL)"
	jr_haproxy_start "$dir" || return 1
	jr_write_env "$dir"
}

# jr_operator_prepare DIR HTTPS_PORT: the operator composition
# (JR_STACK_LAYOUT=operator): ../shared/fixtures/operator-haproxy with the steps of
# docs/haproxy.md applied by scripts/compose-operator into DIR/operator, a
# self-signed certificate for 127.0.0.1, the operator's website and internal API
# (tests/dropin/op-servers.js) and its RFC 5424 access log received over UDP into
# DIR/op-access.log. The gateway is then https://127.0.0.1:HTTPS_PORT (HTTP/2 by
# ALPN); curl and node trust the certificate through CURL_CA_BUNDLE and
# NODE_EXTRA_CA_CERTS.
jr_operator_prepare() {
	local dir=$1 https_port=$2 op=$1/operator port name ports
	"$JR_ROOT/scripts/compose-operator" "$op" >>"$dir/compose.log" 2>&1 || {
		jr_die "scripts/compose-operator failed"
		return 1
	}
	export JR_OPERATOR_DIR=$op
	# shellcheck disable=SC1091 # written by scripts/compose-operator
	JR_HAPROXY_DIR=$(source "$op/default" && printf '%s' "$JR_HAPROXY_DIR")
	export JR_HAPROXY_DIR
	if [[ ! -f $op/cert.pem ]]; then
		openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
			-addext subjectAltName=IP:127.0.0.1 -keyout "$op/key.pem" -out "$op/ca.pem" \
			>>"$dir/compose.log" 2>&1 || return 1
		cat "$op/ca.pem" "$op/key.pem" >"$op/cert.pem"
	fi
	for name in web api; do
		jr_spawn "$dir" "op-$name" node "$JR_ROOT/tests/dropin/op-servers.js" "$name" --port 0
		port=$(jr_listening_port "$dir" "op-$name") || return 1
		export "OP_${name^^}_ADDR=127.0.0.1:$port"
	done
	jr_spawn "$dir" op-syslog node "$JR_ROOT/tests/dropin/op-servers.js" syslog --port 0 \
		--out "$dir/op-access.log"
	port=$(jr_listening_port "$dir" op-syslog) || return 1
	mapfile -t ports < <(jr_free_ports 2)
	export OP_HTTPS_BIND=127.0.0.1:$https_port OP_HTTP_BIND=127.0.0.1:${ports[0]}
	export OP_STATS_BIND=127.0.0.1:${ports[1]} OP_CERT=$op/cert.pem
	export OP_STATS_SOCK=$JR_STATS_SOCK OP_LOG=udp@127.0.0.1:$port
	export JR_URL=https://127.0.0.1:$https_port OP_HTTP_URL=http://$OP_HTTP_BIND
	export CURL_CA_BUNDLE=$op/ca.pem NODE_EXTRA_CA_CERTS=$op/ca.pem
}

jr_stack_stop() {
	local dir=$1 pg
	[[ -d $dir ]] || return 0
	jr_stop_pid "$dir" haproxy TERM
	jr_stop_pid "$dir" op-web TERM
	jr_stop_pid "$dir" op-api TERM
	jr_stop_pid "$dir" op-syslog TERM
	jr_stop_pid "$dir" agent TERM
	jr_stop_pid "$dir" mock-mock1 TERM
	jr_stop_pid "$dir" mock-mock2 TERM
	jr_stop_pid "$dir" adapter TERM
	jr_stop_pid "$dir" mock-providers TERM
	if [[ -f $dir/pg.dir ]]; then
		jr_pg_stop "$dir" || true
		pg=$(cat "$dir/pg.dir")
		if [[ $pg == /tmp/jr-pg-data.* && -z ${JR_KEEP_PG:-} ]]; then
			rm -rf "$pg"
		fi
	fi
	if [[ -n ${JR_STATS_SOCK:-} && $JR_STATS_SOCK == /tmp/jr-haproxy.* ]]; then
		rm -f "$JR_STATS_SOCK"
	fi
}

# jr_listening_port DIR NAME: the port a process started by jr_spawn printed as
# "LISTENING <port>" (waits up to 30 s).
jr_listening_port() {
	local dir=$1 name=$2 deadline port=
	deadline=$((SECONDS + 30))
	while ((SECONDS < deadline)); do
		port=$(sed -n 's/^LISTENING \([0-9][0-9]*\).*/\1/p' "$dir/$name.log" | head -n 1)
		[[ -n $port ]] && break
		jr_pid_alive "$dir/$name.pid" || break
		sleep 0.1
	done
	[[ -n $port ]] || {
		jr_die "$name did not print LISTENING"
		return 1
	}
	echo "$port"
}

# Which adapter binary: $JR_ADAPTER_BIN, else the ASan build, else the release one.
jr_adapter_bin() {
	if [[ -n ${JR_ADAPTER_BIN:-} ]]; then
		echo "$JR_ADAPTER_BIN"
	elif [[ -x $JR_ROOT/build/asan/jairouter-adapter ]]; then
		echo "$JR_ROOT/build/asan/jairouter-adapter"
	else
		echo "$JR_ROOT/build/release/jairouter-adapter"
	fi
}

# jr_adapter_start DIR: the provider mock (Anthropic, Gemini, Bedrock, Cohere wire
# formats, with test credentials) and jairouter-adapter, each on a kernel-chosen port.
# The adapter reports usage to $JR_ADAPTER_REPORT_ADDR, else to the agent's
# $JR_REPORT_ADDR (UDP on the same address as HAProxy's ring), when either is set.
jr_adapter_start() {
	local dir=$1 bin port report=${JR_ADAPTER_REPORT_ADDR:-${JR_REPORT_ADDR:-}}
	export JR_PROVIDERS_KEY=provider-test-key JR_PROVIDERS_AWS=AKIDJRTEST:jr-test-aws-secret
	# Token-issuing credentials: an Entra ID application and a Google service account
	# whose key is made here (the mock checks the assertions' signatures with it).
	export JR_PROVIDERS_ENTRA=jr-test-client:jr-test-entra-secret JR_PROVIDERS_TC=AKIDjrtest:jr-test-tc-secret
	export JR_PROVIDERS_GOOGLE_KEY=$dir/google-sa.pem JR_PROVIDERS_GOOGLE_EMAIL=jr-test@jr-test.iam.gserviceaccount.com
	[[ -s $JR_PROVIDERS_GOOGLE_KEY ]] ||
		(umask 077 && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$JR_PROVIDERS_GOOGLE_KEY" 2>/dev/null) ||
		return 1
	# A projected service account token, as Kubernetes mounts it, for STS.
	export JR_PROVIDERS_WEB_TOKEN_FILE=$dir/web-identity-token
	[[ -s $JR_PROVIDERS_WEB_TOKEN_FILE ]] ||
		(umask 077 && printf 'eyJhbGciOiJSUzI1NiJ9.%s.sig\n' "$(openssl rand -hex 24)" >"$JR_PROVIDERS_WEB_TOKEN_FILE") ||
		return 1
	jr_spawn "$dir" mock-providers node "$JR_ROOT/tests/mock/mock-providers.js" --port 0 \
		--key "$JR_PROVIDERS_KEY" --aws-access-key "${JR_PROVIDERS_AWS%%:*}" \
		--aws-secret "${JR_PROVIDERS_AWS#*:}" --entra-client "$JR_PROVIDERS_ENTRA" \
		--google-key "$JR_PROVIDERS_GOOGLE_KEY" --google-email "$JR_PROVIDERS_GOOGLE_EMAIL" \
		--web-identity-token "$(tr -d '\n' <"$JR_PROVIDERS_WEB_TOKEN_FILE")" --tc-secret "$JR_PROVIDERS_TC"
	port=$(jr_listening_port "$dir" mock-providers) || return 1
	export JR_PROVIDERS_URL=http://127.0.0.1:$port
	bin=$(jr_adapter_bin)
	[[ -x $bin ]] || {
		jr_die "adapter binary $bin not found (run make MODE=asan)"
		return 1
	}
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1} \
		UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
		jr_spawn "$dir" adapter "$bin" --listen 127.0.0.1:0 --realtime-listen 127.0.0.1:0 \
		${report:+--report "$report"}
	port=$(jr_listening_port "$dir" adapter) || return 1
	export JR_ADAPTER_ADDR=127.0.0.1:$port JR_ADAPTER_URL=http://127.0.0.1:$port
	jr_wait_http "$JR_ADAPTER_URL/health" 30 || return 1
	# Its realtime listener (backend be_adapter_rt), printed before it serves /health.
	JR_ADAPTER_RT_ADDR=127.0.0.1:$(sed -n 's/^LISTENING_REALTIME \([0-9][0-9]*\).*/\1/p' "$dir/adapter.log" | head -n 1)
	[[ $JR_ADAPTER_RT_ADDR != *: ]] || {
		jr_die "the adapter did not print LISTENING_REALTIME"
		return 1
	}
	export JR_ADAPTER_RT_ADDR
	jr_log "adapter on $JR_ADAPTER_ADDR, provider mock on $JR_PROVIDERS_URL"
}

# jr_adapter_models TENANT: models behind the adapter for a stack started by
# jr_stack_start, in front of tests/mock/mock-providers.js: anthropic-model,
# gemini-model, bedrock-model (their provider kinds), endpoints for be_prov,
# be_bedrock and be_mock (the OpenAI mock, for /v1/messages clients and metering), the
# provider credentials (a master key file is written and the agent reloaded), and a
# grant-free public visibility; azure-model (Entra ID), vertex-gemini-model and
# vertex-claude-model (a service account); cohere-embed-model, titan-embed-model and
# bedrock-cohere-embed-model; hunyuan-model, dashscope-model and tgi-model (native APIs). Prints "anthropic=...,gemini=...,...".
jr_adapter_models() {
	local dir=$JR_STACK_DIR n
	(umask 077 && printf 'k1:%s\n' "$(openssl rand -hex 32)" >"$dir/master.keys")
	printf 'master_key_file = "%s"\n' "$dir/master.keys" >>"$dir/agent.conf"
	n=$(grep -c 'master keys:' "$dir/agent.log" || true)
	kill -HUP "$(jr_pid_of "$dir/agent.pid")" || return 1
	local deadline=$((SECONDS + 10))
	until (($(grep -c 'master keys:' "$dir/agent.log") > n)); do
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
	export JAIROUTER_MASTER_KEY_FILE=$dir/master.keys JAIROUTER_SPOA
	JAIROUTER_SPOA=$(jr_agent_bin)
	jr_ctl model add anthropic-model be_prov --provider anthropic --upstream claude-up >/dev/null &&
		jr_ctl model add gemini-model be_prov --provider gemini --upstream gemini-up >/dev/null &&
		jr_ctl model add bedrock-model be_bedrock --provider bedrock \
			--upstream 'anthropic.claude-3-haiku-20240307-v1:0' >/dev/null &&
		printf '%s' "$JR_PROVIDERS_KEY" | jr_ctl credential set be_prov --header x-api-key --scheme raw >/dev/null &&
		printf '%s' "$JR_PROVIDERS_AWS" | jr_ctl credential set be_bedrock --header authorization --scheme bearer >/dev/null &&
		jr_ctl endpoint set be_prov "$JR_PROVIDERS_URL" >/dev/null &&
		jr_ctl endpoint set be_bedrock "$JR_PROVIDERS_URL" --region eu-west-1 >/dev/null &&
		jr_ctl endpoint set be_mock "$JR_MOCK_URL/v1" >/dev/null || return 1
	# Access-token credentials (docs/adapter.md): Azure OpenAI with Entra ID, Gemini and
	# Anthropic on Vertex AI with a service account; the mock issues the tokens.
	jr_ctl model add azure-model be_azure_entra --provider azure_openai --upstream gpt-4o-dep >/dev/null &&
		jr_ctl model add vertex-gemini-model be_vertex --provider vertex_gemini --upstream gemini-2.0-flash >/dev/null &&
		jr_ctl model add vertex-claude-model be_vertex --provider vertex_anthropic \
			--upstream 'claude-3-5-haiku@20241022' >/dev/null &&
		jr_entra_credential | jr_ctl credential set be_azure_entra --header api-key --scheme raw >/dev/null &&
		jr_google_credential | jr_ctl credential set be_vertex --header authorization --scheme bearer >/dev/null &&
		jr_ctl endpoint set be_azure_entra "$JR_PROVIDERS_URL" >/dev/null &&
		jr_ctl endpoint set be_vertex "$JR_PROVIDERS_URL/v1/projects/jr-test/locations/us-east5" >/dev/null || return 1
	# Embeddings translated for Cohere and Bedrock (Amazon Titan, Cohere on Bedrock).
	jr_ctl model add cohere-embed-model be_prov --provider cohere --upstream embed-v4.0 --services embeddings >/dev/null &&
		jr_ctl model add titan-embed-model be_bedrock --provider bedrock --upstream amazon.titan-embed-text-v2:0 \
			--services embeddings >/dev/null &&
		jr_ctl model add bedrock-cohere-embed-model be_bedrock --provider bedrock --upstream cohere.embed-english-v3 \
			--services embeddings >/dev/null || return 1
	# The native APIs of Tencent Hunyuan (TC3-signed) and Alibaba DashScope.
	jr_ctl model add hunyuan-model be_hunyuan --provider hunyuan --upstream hunyuan-lite >/dev/null &&
		jr_ctl endpoint set be_hunyuan "$JR_PROVIDERS_URL" --api-version native >/dev/null &&
		printf '%s' "$JR_PROVIDERS_TC" | jr_ctl credential set be_hunyuan --header authorization --scheme bearer >/dev/null &&
		jr_ctl model add dashscope-model be_dashscope --provider dashscope --upstream qwen-plus >/dev/null &&
		jr_ctl endpoint set be_dashscope "$JR_PROVIDERS_URL" --api-version native >/dev/null &&
		printf '%s' "$JR_PROVIDERS_KEY" | jr_ctl credential set be_dashscope --header authorization --scheme bearer >/dev/null &&
		jr_ctl model add tgi-model be_tgi --provider huggingface --upstream tgi >/dev/null &&
		jr_ctl endpoint set be_tgi "$JR_PROVIDERS_URL" --api-version native >/dev/null &&
		printf '%s' "$JR_PROVIDERS_KEY" | jr_ctl credential set be_tgi --header authorization --scheme bearer >/dev/null ||
		return 1
	# Bedrock with temporary credentials (STS web identity, as on Kubernetes) and Gemini
	# embeddings (API key).
	jr_ctl model add bedrock-sts-model be_bedrock_sts --provider bedrock \
		--upstream 'anthropic.claude-3-haiku-20240307-v1:0' >/dev/null &&
		jr_sts_credential "$JR_PROVIDERS_WEB_TOKEN_FILE" |
		jr_ctl credential set be_bedrock_sts --header authorization --scheme bearer >/dev/null &&
		jr_ctl endpoint set be_bedrock_sts "$JR_PROVIDERS_URL" --region eu-west-1 >/dev/null &&
		jr_ctl model add gemini-embed-model be_prov --provider gemini --upstream text-embedding-004 \
			--services embeddings >/dev/null || return 1
	printf '%s' "anthropic=anthropic-model,gemini=gemini-model,bedrock=bedrock-model,azure=azure-model," \
		"vertex_gemini=vertex-gemini-model,vertex_anthropic=vertex-claude-model,embed_cohere=cohere-embed-model," \
		"embed_titan=titan-embed-model,embed_bedrock_cohere=bedrock-cohere-embed-model,hunyuan=hunyuan-model," \
		"dashscope=dashscope-model,tgi=tgi-model,bedrock_sts=bedrock-sts-model,embed_gemini=gemini-embed-model"
	echo
}

# jr_entra_credential: the Entra ID credential of the provider mock's test application
# (JSON, the mock as the authority host).
jr_entra_credential() {
	node -e 'process.stdout.write(JSON.stringify({tenant_id: "jr-tenant", client_id: process.argv[1],
		client_secret: process.argv[2], authority_host: process.argv[3]}))' \
		"${JR_PROVIDERS_ENTRA%%:*}" "${JR_PROVIDERS_ENTRA#*:}" "$JR_PROVIDERS_URL"
}

# jr_sts_credential TOKEN_FILE: an AWS STS web identity credential (a role and the
# projected token file, as EKS gives a pod), the provider mock as the STS endpoint.
jr_sts_credential() {
	node -e 'process.stdout.write(JSON.stringify({role_arn: "arn:aws:iam::123456789012:role/jairouter-bedrock",
		web_identity_token_file: process.argv[1], sts_endpoint: process.argv[2] + "/"}))' "$1" "$JR_PROVIDERS_URL"
}

# jr_google_credential: a service account key file (one line) for the provider mock's
# test account, the mock as token_uri.
jr_google_credential() {
	node -e 'process.stdout.write(JSON.stringify({type: "service_account", project_id: "jr-test",
		private_key_id: "k1", private_key: require("fs").readFileSync(process.argv[1], "utf8"),
		client_email: process.argv[2], token_uri: process.argv[3] + "/token"}))' \
		"$JR_PROVIDERS_GOOGLE_KEY" "$JR_PROVIDERS_GOOGLE_EMAIL" "$JR_PROVIDERS_URL"
}
