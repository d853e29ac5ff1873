#!/usr/bin/env bash
# Fails when a gateway rule appears anywhere but in haproxy/jairouter.cfg,
# haproxy/spoe.conf and haproxy/jairouter.lua: HAProxy files elsewhere in the
# repository, and HAProxy configuration blocks in the documentation (a second copy
# for operators to paste). The one exception is the per-backend line that lets the
# agent choose the server (docs/haproxy.md, "Model backends"):
#     use-server %[var(txn.jr.server)] if { var(txn.jr.server) -m found }
# Prints the offending lines and "N passed, N failed".
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root" || exit 1

# What only the gateway's own files may contain.
rules='send-spoe-group|filter[[:space:]]+spoe|txn\.jr[._]|jairouter-decide|log-format[[:space:]]+"id=%ID|ring@jairouter-reports|lua\.jairouter-|x-jairouter-(adapter|rewrite)"|unique-id-format[[:space:]]+%\[uuid'
allowed='^[[:space:]]*use-server %\[var\(txn\.jr\.server\)\] if \{ var\(txn\.jr\.server\) -m found \}[[:space:]]*$'

fail=0
check() { # FILE LINE-PREFIXED-TEXT
	local hits
	hits=$(grep -nE "$rules" "$1" | grep -vE ":${allowed#^}" || true)
	if [[ -n $hits ]]; then
		printf 'gateway rule outside haproxy/jairouter.cfg, in %s:\n%s\n' "$1" "$hits"
		fail=$((fail + 1))
	fi
}

# HAProxy configuration files anywhere in the repository.
while IFS= read -r f; do
	case $f in
	haproxy/jairouter.cfg | haproxy/spoe.conf | haproxy/jairouter.lua) continue ;;
	esac
	check "$f"
done < <(git ls-files '*.cfg' '*.conf' 'haproxy/*')

# Configuration blocks in the docs: fenced blocks holding HAProxy sections or rules.
for f in docs/*.md README.md; do
	awk '
		/^```/ { inb = !inb; next }
		inb { printf "%d:%s\n", NR, $0 }' "$f" >"${TMPDIR:-/tmp}/one-source.$$"
	hits=$(grep -E "$rules" "${TMPDIR:-/tmp}/one-source.$$" | grep -vE "^[0-9]+:${allowed#^}" || true)
	rm -f "${TMPDIR:-/tmp}/one-source.$$"
	if [[ -n $hits ]]; then
		printf 'a copy of gateway rules to paste, in %s:\n%s\n' "$f" "$hits"
		fail=$((fail + 1))
	fi
done

if ((fail)); then
	echo "0 passed, 1 failed"
	exit 1
fi
echo "1 passed, 0 failed"
