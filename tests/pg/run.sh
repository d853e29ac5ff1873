#!/usr/bin/env bash
# The PostgreSQL suite: a throwaway PostgreSQL 15 on a free loopback port, the
# migrations (applied twice: they must be idempotent), then
#   tests/pg/test_sql.sh     jairouterctl and the SQL functions, end to end
#   tests/pg/test_policy_sql.sh  tenant policy: grants, key rotation, credentials, audit
#   tests/pg/test_routing_sql.sh routing policies, fallback chains, virtual models
#   tests/pg/test_reports_sql.sh usage per hour and end user, usage reports, advice rules
#   tests/pg/test_cache_sql.sh   response cache policies (sql/018_cache.sql)
#   test_pgsync              the agent's synchroniser under ASan + UBSan
#   test_writers             the usage and security-audit writers, likewise
#   test_dbwriter            the batch writer they share (pg/writer.c), likewise
# each against a database of its own. The last line is the summed
# "N passed, N failed"; the exit status is non-zero on any failure.
#
#   tests/pg/run.sh              build (MODE=asan) and run everything
#   JR_PG_KEEP=1 tests/pg/run.sh keep the data directory and print its path
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
# shellcheck source=scripts/lib/common.sh
source scripts/lib/common.sh
# shellcheck source=scripts/lib/pg.sh
source scripts/lib/pg.sh

dir=$(mktemp -d /tmp/jr-pgtest.XXXXXX)
chmod 755 "$dir"
passed=0
failed=0

cleanup() {
	pg_stop "$dir/pg" >/dev/null 2>&1 || true
	if [[ -n ${JR_PG_KEEP:-} ]]; then
		echo "# kept $dir"
	else
		rm -rf "$dir"
	fi
}
trap cleanup EXIT

# tally LOG: adds the last "N passed, N failed" of LOG; a run that printed none is a failure.
tally() {
	local counts p f
	counts=$(grep -Eo '^[0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1) || true
	if [[ -z $counts ]]; then
		failed=$((failed + 1))
		return
	fi
	read -r p _ f _ <<<"$counts"
	passed=$((passed + p))
	failed=$((failed + f))
}

# build_test NAME: tests/pg/NAME.c against the ASan library, into $dir/NAME.
build_test() {
	local cflags libs
	make -s MODE=asan build/asan/libjrspoa.a >&2 || return 1
	cflags=$(pkg-config --cflags libevent libevent_pthreads libpq openssl jansson hiredis libcurl)
	libs=$(pkg-config --libs libevent libevent_pthreads libpq openssl jansson hiredis libcurl)
	# shellcheck disable=SC2086 # word splitting of the pkg-config flags is intended
	cc -std=c11 -D_GNU_SOURCE -pthread -Wall -Wextra -Wshadow -Wstrict-prototypes \
		-Wmissing-prototypes -Wformat=2 -Wvla -Werror -Ispoa/src $cflags \
		-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all \
		-o "$dir/$1" "tests/pg/$1.c" build/asan/libjrspoa.a $libs -lm
}

# run_c_test NAME DB: runs $dir/NAME under the sanitizers and tallies it.
run_c_test() {
	[[ -x $dir/$1 ]] || return 0
	echo "# $1 (ASan + UBSan)"
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1} \
		UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
		"$dir/$1" "$2" 2>&1 | tee "$dir/$1.log" || true
	tally "$dir/$1.log"
	if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$dir/$1.log"; then
		echo "not ok sanitizer_clean_$1"
		failed=$((failed + 1))
	fi
}

migrate_twice() {
	if JAIROUTER_DATABASE=$1 scripts/migrate >"$dir/migrate.log" 2>&1 &&
		JAIROUTER_DATABASE=$1 scripts/migrate >>"$dir/migrate.log" 2>&1 &&
		grep -q 'already applied: 002_functions' "$dir/migrate.log"; then
		return 0
	fi
	cat "$dir/migrate.log" >&2
	return 1
}

port=$(jr_free_port)
echo "# PostgreSQL on 127.0.0.1:$port ($dir/pg)"
if ! pg_start "$dir/pg" "$port"; then
	echo "0 passed, 1 failed"
	exit 1
fi
sql_db=$(pg_create_db "$port" jr_sql)
sync_db=$(pg_create_db "$port" jr_pgsync)
policy_db=$(pg_create_db "$port" jr_policy)
routing_db=$(pg_create_db "$port" jr_routing)
identity_db=$(pg_create_db "$port" jr_identity)
writers_db=$(pg_create_db "$port" jr_writers)
dbwriter_db=$(pg_create_db "$port" jr_dbwriter)
reports_db=$(pg_create_db "$port" jr_reports)
cache_db=$(pg_create_db "$port" jr_cache)

jr_step migrate_sql_db migrate_twice "$sql_db"
jr_step migrate_pgsync_db migrate_twice "$sync_db"
jr_step migrate_policy_db migrate_twice "$policy_db"
jr_step migrate_routing_db migrate_twice "$routing_db"
jr_step migrate_identity_db migrate_twice "$identity_db"
jr_step migrate_writers_db migrate_twice "$writers_db"
jr_step migrate_reports_db migrate_twice "$reports_db"
jr_step migrate_cache_db migrate_twice "$cache_db"
jr_step build_test_pgsync build_test test_pgsync
jr_step build_test_writers build_test test_writers
jr_step build_test_dbwriter build_test test_dbwriter

echo "# test_sql.sh"
JAIROUTER_DATABASE=$sql_db bash tests/pg/test_sql.sh 2>&1 | tee "$dir/test_sql.log" || true
tally "$dir/test_sql.log"

echo "# test_policy_sql.sh"
JAIROUTER_DATABASE=$policy_db bash tests/pg/test_policy_sql.sh 2>&1 | tee "$dir/test_policy_sql.log" || true
tally "$dir/test_policy_sql.log"

echo "# test_routing_sql.sh"
JAIROUTER_DATABASE=$routing_db bash tests/pg/test_routing_sql.sh 2>&1 | tee "$dir/test_routing_sql.log" || true
tally "$dir/test_routing_sql.log"

echo "# test_identity_sql.sh"
JAIROUTER_DATABASE=$identity_db bash tests/pg/test_identity_sql.sh 2>&1 | tee "$dir/test_identity_sql.log" || true
tally "$dir/test_identity_sql.log"

echo "# test_reports_sql.sh"
JAIROUTER_DATABASE=$reports_db bash tests/pg/test_reports_sql.sh 2>&1 | tee "$dir/test_reports_sql.log" || true
tally "$dir/test_reports_sql.log"

echo "# test_cache_sql.sh"
JAIROUTER_DATABASE=$cache_db bash tests/pg/test_cache_sql.sh 2>&1 | tee "$dir/test_cache_sql.log" || true
tally "$dir/test_cache_sql.log"

run_c_test test_pgsync "$sync_db"
run_c_test test_writers "$writers_db"
run_c_test test_dbwriter "$dbwriter_db"

if ((failed > 0)); then
	echo "# server log (last 50 lines)"
	tail -n 50 "$dir/pg/postgres.log" 2>/dev/null | sed 's/^/# /' || true
fi
echo "$passed passed, $failed failed"
((failed == 0))
