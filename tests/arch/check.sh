#!/usr/bin/env bash
# The architecture rules of docs/design.md ("Architecture rules"), checked on the source
# text of the agent (spoa/) and the adapter (adapters/). One line per rule, "ok NAME" or
# "not ok NAME" followed by what breaks it, then "N passed, N failed"; the exit status
# is non-zero when a rule is broken. Run by scripts/test as the suite "arch".
#
#   tests/arch/check.sh
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

# The longest function body allowed, in lines between the braces (the longest in the tree
# after the last clean-up is 70 lines: main's start()).
FUNC_MAX_LINES=80

# Files whose functions may be longer, each with its reason. An entry that is no longer
# needed is reported (as a note, so that a merge does not fail on it): remove it then.
FUNC_ALLOW=(
	# Every function is short enough today; a justified exception (a state dispatcher) goes
	# here with its reason.
)

# Module dependencies (A B: a file of module A includes a header of module B) that may
# close a cycle. A new cycle fails the check.
CYCLE_ALLOW=(
	# No cycle is left today; an edge that must stay for a while goes here with its reason.
)

# Files outside pg/ and redis/ that may include a database client header (the usage and
# audit writers hand their rows to pg/writer.h).
DBCLIENT_ALLOW=(
	# The adapter's one Redis client, the response cache's shared tier (docs/cache.md):
	# the adapter is its own process and does not link the agent's redis/ module.
	adapters/src/rcache.c
)

passed=0
failed=0

# rule NAME FN: FN prints one line per violation; none is a pass.
rule() {
	local name=$1 out
	out=$("$2")
	if [[ -z $out ]]; then
		echo "ok $name"
		passed=$((passed + 1))
	else
		echo "not ok $name"
		printf '    %s\n' "${out//$'\n'/$'\n'    }"
		failed=$((failed + 1))
	fi
}

listed() { # listed WORD ARRAY...: whether WORD is one of the rest
	local w=$1 x
	shift
	for x in "$@"; do
		[[ $x == "$w" ]] && return 0
	done
	return 1
}

# The SPOP codec is pure: its own header and the C library, nothing else.
spop_is_pure() {
	local libc='assert|ctype|errno|inttypes|limits|stdarg|stdbool|stddef|stdint|stdio|stdlib|string'
	grep -HnE '^[[:space:]]*#[[:space:]]*include' spoa/src/spop/*.[ch] |
		grep -vE "#[[:space:]]*include[[:space:]]*(<($libc)\.h>|\"spop/[a-z_]+\.h\")" || true
}

# libpq and hiredis only under spoa/src/pg/ and spoa/src/redis/.
db_clients_in_place() {
	local line file
	grep -HnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"](libpq-fe\.h|postgresql/|hiredis/|hiredis\.h)' \
		spoa/main.c spoa/src/*/*.[ch] adapters/main.c adapters/src/*.[ch] |
		while IFS= read -r line; do
			file=${line%%:*}
			[[ $file == spoa/src/pg/* || $file == spoa/src/redis/* ]] && continue
			listed "$file" "${DBCLIENT_ALLOW[@]}" || echo "$line"
		done
}

# C source without comments and string literals (so that neither can trip a rule).
code_only() {
	awk '
	{
		out = ""; i = 1; n = length($0)
		while (i <= n) {
			c = substr($0, i, 1); d = substr($0, i, 2)
			if (incomment) { if (d == "*/") { incomment = 0; i += 2 } else i++; continue }
			if (d == "/*") { incomment = 1; i += 2; continue }
			if (d == "//") break
			if (c == "\"" || c == "\047") {
				q = c; i++
				while (i <= n && substr($0, i, 1) != q) i += (substr($0, i, 1) == "\\") ? 2 : 1
				i++; out = out q q; continue
			}
			out = out c; i++
		}
		print FILENAME ":" FNR ": " out
	}' "$@"
}

# Translators turn bytes into bytes: no sockets, HTTP client, event loop or files.
translators_do_no_io() {
	local calls='socket|connect|accept|bind|listen|send|sendto|recv|recvfrom|read|write|open|close|fopen|fdopen|fclose|fread|fwrite|fgets|fputs|fprintf|printf|puts|popen|json_dumpf|json_dump_file|json_loadf|json_load_file|curl_[a-z_]+|event_[a-z_]+|evbuffer_[a-z_]+|bufferevent_[a-z_]+|evhttp_[a-z_]+'
	local heads='curl/|event2/|sys/socket\.h|netinet/|arpa/|unistd\.h|fcntl\.h|sys/stat\.h'
	grep -HnE "^[[:space:]]*#[[:space:]]*include[[:space:]]*<($heads)" adapters/src/xlate_*.c || true
	code_only adapters/src/xlate_*.c | grep -E "(^|[^A-Za-z0-9_.>])($calls)[[:space:]]*\(" || true
}

# Module-level include edges "A B" of spoa/src/<module>/.
module_edges() {
	local f m d
	for f in spoa/src/*/*.[ch]; do
		m=${f#spoa/src/}
		m=${m%%/*}
		grep -oE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[a-z_]+/' "$f" |
			sed -E 's/.*"([a-z_]+)\//\1/' | while IFS= read -r d; do
			[[ $d != "$m" ]] && echo "$m $d"
		done
	done | sort -u
}

no_module_cycles() {
	local edges out
	edges=$(module_edges | while IFS= read -r e; do listed "$e" "${CYCLE_ALLOW[@]}" || echo "$e"; done)
	if ! out=$(tsort <<<"$edges" 2>&1 >/dev/null); then
		# tsort names each loop it breaks: one line per loop, "a -> b -> ...".
		awk '/input contains a loop/ { if (l) print l; l = "cycle:"; next }
			{ sub(/^tsort: /, ""); l = l " " $0 " ->" } END { if (l) print l }' <<<"$out" | sort -u
	fi
	# An allowed edge that no longer exists is stale: drop it from CYCLE_ALLOW.
	for e in "${CYCLE_ALLOW[@]}"; do
		grep -qx "$e" <<<"$(module_edges)" || echo "# note: CYCLE_ALLOW lists \"$e\", which is gone" >&2
	done
}

# Function bodies: "{" and "}" at column 0, as the house style writes them.
function_lengths() {
	awk '
	FNR == 1 { sig = ""; inbody = 0 }
	/^[A-Za-z_].*\(/ && !inbody { sig = $0 }
	/^\{/ && !inbody { inbody = 1; start = FNR; next }
	/^\}/ && inbody {
		inbody = 0; s = sig; sub(/\(.*/, "", s); k = split(s, w, /[ *]+/)
		print FILENAME ":" w[k] " " FNR - start - 1
	}' spoa/main.c spoa/src/*/*.c adapters/main.c adapters/src/*.c
}

functions_are_short() {
	local fn n f lengths
	lengths=$(function_lengths)
	while read -r fn n; do
		((n > FUNC_MAX_LINES)) || continue
		listed "${fn%:*}" "${FUNC_ALLOW[@]}" || echo "$fn: $n lines (at most $FUNC_MAX_LINES)"
	done <<<"$lengths"
	for f in "${FUNC_ALLOW[@]}"; do
		awk -v f="$f" -v max="$FUNC_MAX_LINES" 'index($1, f ":") == 1 && $2 > max { found = 1 }
			END { exit !found }' <<<"$lengths" ||
			echo "# note: FUNC_ALLOW lists $f, whose functions are all short enough now" >&2
	done
}

# Every log line of the agent and the adapter names its event (log_event, listed in
# docs/observability.md, "Agent and adapter log events"): no free-text log call.
log_lines_have_events() {
	code_only spoa/main.c spoa/src/*/*.c adapters/main.c adapters/src/*.c |
		grep -E "(^|[^A-Za-z0-9_])(log_(error|warn|info|debug)|log_msg)[[:space:]]*\(" |
		grep -v '^spoa/src/util/log\.c:' || true
}

# Every event name is in the table of docs/observability.md ("Agent and adapter log events").
log_events_documented() {
	local ev
	grep -hoE 'log_event\([[:space:]]*LOG_[A-Z]+,[[:space:]]*"[a-z0-9_]+"' \
		spoa/main.c spoa/src/*/*.c adapters/main.c adapters/src/*.c |
		sed -E 's/.*"([a-z0-9_]+)"/\1/' | sort -u | while IFS= read -r ev; do
		grep -qF "| \`$ev\` |" docs/observability.md || echo "event $ev is not in docs/observability.md"
	done
}

rule spop_codec_is_pure spop_is_pure
rule db_clients_only_in_pg_and_redis db_clients_in_place
rule translators_do_no_io translators_do_no_io
rule no_include_cycle_between_modules no_module_cycles
rule functions_at_most_${FUNC_MAX_LINES}_lines functions_are_short
rule log_lines_have_event_names log_lines_have_events
rule log_events_are_documented log_events_documented
echo "$passed passed, $failed failed"
((failed == 0))
