# shellcheck shell=bash
# Helpers of the SQL test scripts (tests/pg/test_*.sh), sourced from the repository root.
# Sets up what every script needs: the database ($JAIROUTER_DATABASE, required), $pg_bin,
# a scratch directory $tmp removed on exit, and the $passed / $failed counters.

[[ -n ${JAIROUTER_DATABASE:-} ]] || {
	echo "JAIROUTER_DATABASE is not set" >&2
	exit 2
}
pg_bin=${JR_PG_BIN:-/usr/lib/postgresql/15/bin}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

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

# fails_with TEXT CMD...: CMD must exit non-zero and say TEXT on stderr, nothing on stdout.
fails_with() {
	local text=$1 rc=0
	shift
	"$@" >"$tmp/f.out" 2>"$tmp/f.err" || rc=$?
	cat "$tmp/f.out" "$tmp/f.err"
	((rc != 0)) && grep -qF -- "$text" "$tmp/f.err" && [[ ! -s $tmp/f.out ]]
}

# refused SQL: the statement fails.
refused() {
	if q -c "$1" >"$tmp/r" 2>&1; then
		echo "accepted: $1"
		return 1
	fi
}

# accepted SQL: the statement succeeds.
accepted() {
	q -c "$1" >/dev/null
}

# One-line checks run q in a child bash (check NAME bash -c "q ...").
export pg_bin
export -f q
