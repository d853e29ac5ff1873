# shellcheck shell=bash
# Helpers of the SQL test scripts (tests/pg/test_*.sh). The caller sets $tmp (a scratch
# directory), $passed and $failed (counters), $pg_bin, and exports JAIROUTER_DATABASE.

ctl() { scripts/jairouterctl "$@"; }
q() { "$pg_bin/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$JAIROUTER_DATABASE" "$@"; }

# check NAME CMD...: one check; prints "ok NAME", or "not ok NAME" and CMD's output.
check() {
	local name=$1
	shift
	if "$@" >"$tmp/out" 2>&1; then
		echo "ok $name"
		passed=$((passed + 1))
	else
		echo "not ok $name"
		sed 's/^/#   /' "$tmp/out"
		failed=$((failed + 1))
	fi
}

# equals GOT WANT
equals() {
	[[ $1 == "$2" ]] || {
		printf 'expected [%s]\n     got [%s]\n' "$2" "$1"
		return 1
	}
}
