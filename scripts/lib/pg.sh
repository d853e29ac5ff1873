# shellcheck shell=bash
# A throwaway PostgreSQL 15 for the demo, the tests and the benchmark. Source it; it
# sets no shell options of its own.
#
#   pg_start DIR PORT       initdb DIR/data (first time) and start on 127.0.0.1:PORT,
#                           unix socket in DIR (or a short /tmp dir when DIR is too
#                           long for a socket path), log in DIR/postgres.log
#   pg_stop DIR             fast shutdown (no error when not running)
#   pg_create_db PORT DB    creates role "jairouter" and database DB owned by it;
#                           prints postgresql://jairouter@127.0.0.1:PORT/DB
#   pg_superuser_uri PORT [DB]  postgresql://postgres@127.0.0.1:PORT/DB (default postgres)
#
# Authentication is "trust", and the server listens on 127.0.0.1 only: this instance
# is for tests on one machine, never for data that matters. initdb refuses to run as
# root, so as root DIR is owned by the "postgres" user and the server runs as it.
# The binaries come from $JR_PG_BIN (default /usr/lib/postgresql/15/bin), never PATH:
# /usr/local/bin/postgres may be something else entirely.

JR_PG_BIN=${JR_PG_BIN:-/usr/lib/postgresql/15/bin}

# _pg_as_owner CMD...: runs CMD as the data directory's owner.
_pg_as_owner() {
	if ((EUID == 0)); then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

_pg_log() {
	printf '%s %s\n' "[$(date +%H:%M:%S)]" "$*" >&2
}

# _pg_sockdir DIR: the socket directory for DIR. A unix socket path
# ("DIR/.s.PGSQL.65535") must fit in 107 bytes; a long DIR gets a short /tmp
# directory instead, remembered in DIR/socket_dir.
_pg_sockdir() {
	local dir=$1 s
	if [[ -f $dir/socket_dir ]]; then
		cat "$dir/socket_dir"
		return 0
	fi
	if ((${#dir} <= 80)); then
		s=$dir
	else
		s=$(mktemp -d /tmp/jr-pg.XXXXXX)
		chmod 755 "$s"
		if ((EUID == 0)); then chown postgres: "$s"; fi
	fi
	printf '%s\n' "$s" >"$dir/socket_dir"
	printf '%s\n' "$s"
}

_pg_init() {
	local dir=$1 port=$2 sock=$3
	_pg_as_owner "$JR_PG_BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 \
		--locale=C.UTF-8 --no-instructions >"$dir/initdb.log" 2>&1 || {
		cat "$dir/initdb.log" >&2
		return 1
	}
	# Settings for a short-lived test server: loopback only, fast, logs kept.
	_pg_as_owner tee -a "$dir/data/postgresql.conf" >/dev/null <<CONF
# Added by scripts/lib/pg.sh (throwaway instance)
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sock'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 100
log_min_messages = warning
log_connections = off
CONF
}

pg_start() {
	local dir=$1 port=$2 sock i
	[[ -n $dir && -n $port ]] || {
		_pg_log "usage: pg_start DIR PORT"
		return 2
	}
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if ((EUID == 0)); then
		id postgres >/dev/null 2>&1 || {
			_pg_log "running as root needs a 'postgres' user"
			return 1
		}
		chown postgres: "$dir"
	fi
	sock=$(_pg_sockdir "$dir")
	if [[ ! -f $dir/data/PG_VERSION ]]; then
		_pg_init "$dir" "$port" "$sock" || return 1
	fi
	# The port and socket are given again on the command line: a data directory from
	# an earlier run may have been written with another port.
	_pg_as_owner "$JR_PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -s \
		-o "-p $port -k '$sock'" start || {
		_pg_log "pg_ctl start failed; server log follows"
		cat "$dir/postgres.log" >&2 2>/dev/null || true
		return 1
	}
	printf '%s\n' "$port" >"$dir/port"
	for ((i = 0; i < 300; i++)); do
		if "$JR_PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -t 1 -U postgres -d postgres; then
			return 0
		fi
		sleep 0.1
	done
	_pg_log "PostgreSQL on 127.0.0.1:$port not ready after 30s; server log follows"
	cat "$dir/postgres.log" >&2 2>/dev/null || true
	return 1
}

pg_stop() {
	local dir=$1 sock
	[[ -d $dir/data ]] || return 0
	if _pg_as_owner "$JR_PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
		_pg_as_owner "$JR_PG_BIN/pg_ctl" -D "$dir/data" -s -m fast -t 30 stop || {
			_pg_log "pg_ctl stop failed; server log follows"
			tail -n 50 "$dir/postgres.log" >&2 2>/dev/null || true
			return 1
		}
	fi
	if [[ -f $dir/socket_dir ]]; then
		sock=$(cat "$dir/socket_dir")
		if [[ $sock == /tmp/jr-pg.* ]]; then rm -rf "$sock" "$dir/socket_dir"; fi
	fi
}

pg_superuser_uri() {
	printf 'postgresql://postgres@127.0.0.1:%s/%s\n' "$1" "${2:-postgres}"
}

pg_create_db() {
	local port=$1 db=$2 su
	[[ -n $port && $db =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || {
		_pg_log "usage: pg_create_db PORT DBNAME (DBNAME: lower-case letters, digits, _)"
		return 2
	}
	su=$(pg_superuser_uri "$port")
	"$JR_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$su" -v db="$db" >&2 <<'SQL' || return 1
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'jairouter') AS need_role \gset
\if :need_role
CREATE ROLE jairouter LOGIN;
\endif
SELECT NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') AS need_db \gset
\if :need_db
CREATE DATABASE :"db" OWNER jairouter;
\endif
SQL
	printf 'postgresql://jairouter@127.0.0.1:%s/%s\n' "$port" "$db"
}
