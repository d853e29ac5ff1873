#!/usr/bin/env bash
# The image suite: builds the Dockerfile without a container daemon or registry and serves a
# chat completion through the result.
#
#   1. a debian:12 base made by debootstrap (minbase, no documentation), kept as a tar in
#      build/image/ so later runs skip it, imported under the name the FROM line uses;
#   2. buildah bud --isolation chroot (layers cached in build/image/storage);
#   3. in the image: non-root, no compiler, `jairouter-spoa -t` on a good and a bad
#      configuration, `haproxy -c` on the shipped files;
#   4. PostgreSQL on loopback (scripts/lib/pg.sh), the migrations and jairouterctl from the
#      image, the mock model server on the host, then the agent, the adapter and HAProxy,
#      each started from the image with `buildah run --isolation chroot --network host`;
#   5. a chat completion through HAProxy (200 and the mock's answer), a bad key (401), the
#      image's HEALTHCHECK command; every process stopped with SIGTERM and exiting 0.
# Prints "ok NAME" / "not ok NAME" per check and "N passed, N failed" last; the logs of
# every process on failure.
#
#   tests/image/run.sh                  build (cached) and test
#   JR_IMAGE_KEEP=1 tests/image/run.sh  keep the test directory and print its path
# Environment: JR_DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
# shellcheck source=scripts/lib/common.sh
source scripts/lib/common.sh
# shellcheck source=scripts/lib/pg.sh
source scripts/lib/pg.sh

((EUID == 0)) || {
	echo "tests/image/run.sh: buildah and debootstrap need root" >&2
	echo "0 passed, 1 failed"
	exit 1
}

cache=$root/build/image
image=localhost/jairouter:test
base=docker.io/library/debian:12
mirror=${JR_DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$cache"
dir=$(mktemp -d /tmp/jr-image.XXXXXX)
chmod 755 "$dir"
passed=0
failed=0

# bah ARGS...: buildah with this suite's own storage (build/image), never the host's.
bah() {
	buildah --root "$cache/storage" --runroot "$cache/runroot" --storage-driver overlay "$@"
}

# ---- the base image --------------------------------------------------------------------

# make_base_tar TAR: a Debian 12 minbase root file system, trimmed like Debian's own
# container images (no documentation, manual pages or translations; no package lists).
make_base_tar() {
	local tar=$1 rootfs=$cache/rootfs
	rm -rf "$rootfs"
	debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 || {
		tail -n 30 "$cache/debootstrap.log" >&2
		return 1
	}
	cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian}/debian-security bookworm-security main
EOF
	cat >"$rootfs/etc/dpkg/dpkg.cfg.d/excludes" <<'EOF'
# No documentation in a container image (as Debian's own images).
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
	cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
	find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
	rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* \
		"$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
		"$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/*
	tar --numeric-owner -C "$rootfs" -cf "$tar.part" . && mv "$tar.part" "$tar"
	rm -rf "$rootfs"
}

base_image() {
	local tar=$cache/debian-12-minbase.tar ctr
	if bah inspect --type image "$base" >/dev/null 2>&1; then
		echo "# base $base already in build/image/storage"
		return 0
	fi
	if [[ ! -s $tar ]]; then
		echo "# debootstrap bookworm from $mirror"
		make_base_tar "$tar" || return 1
	fi
	ctr=$(bah from scratch) || return 1
	bah add "$ctr" "$tar" / >/dev/null &&
		bah config --cmd /bin/bash --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr" &&
		bah commit --rm -q "$ctr" "$base" >/dev/null
}

build_image() {
	bah bud --isolation chroot --format docker --layers --pull=never -t "$image" -f Dockerfile . \
		>"$cache/build.log" 2>&1 || {
		tail -n 60 "$cache/build.log" >&2
		return 1
	}
}

# ---- running things in the image -------------------------------------------------------

# new_ctr NAME: a working container of the image, jr-image-NAME-PID (printed; cleanup
# removes it by that name).
new_ctr() {
	local name=jr-image-$1-$$ nofile
	# The caller's hard file limit (buildah's default, 1024, is below what HAProxy's maxconn
	# needs; a container engine gives far more).
	nofile=$(ulimit -Hn)
	[[ $nofile == unlimited ]] && nofile=65536
	bah from --pull=never --ulimit "nofile=$nofile:$nofile" --name "$name" "$image" >/dev/null || return 1
	echo "$name"
}

# in_image CTR CMD...: runs CMD in CTR as the image's user, with the host's network and the
# test directory at /jrtest (read-only).
in_image() {
	local ctr=$1
	shift
	bah run --isolation chroot --network host -v "$dir:/jrtest:ro" \
		--env PGSERVICEFILE=/jrtest/pg_service.conf "$ctr" -- "$@"
}

# descendants PID: every process below PID (the program buildah run started, its children).
descendants() {
	local pid=$1 kids k
	kids=$(awk -v p="$pid" '$4 == p { print $1 }' /proc/[0-9]*/stat 2>/dev/null || true)
	for k in $kids; do
		echo "$k"
		descendants "$k"
	done
}

# stop_in_image NAME PROGRAM [SIGNAL]: SIGNAL (TERM) to PROGRAM below the `buildah run`
# recorded as NAME, then waits for buildah run; succeeds when it exits 0 within 30 s.
stop_in_image() {
	local name=$1 prog=$2 sig=${3:-TERM} pid p i rc
	pid=$(jr_pid_of "$dir/$name.pid") || return 1
	for p in $(descendants "$pid"); do
		if [[ $(cat "/proc/$p/comm" 2>/dev/null) == "$prog" ]]; then
			kill -s "$sig" "$p" 2>/dev/null || true
		fi
	done
	for ((i = 0; i < 300; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "# $name did not stop within 30 s" >&2
		return 1
	fi
	rc=$(sed -n 's/^exit status \([0-9]*\)$/\1/p' "$dir/$name.log" | tail -n 1)
	rm -f "$dir/$name.pid"
	[[ $rc == 0 ]] || {
		echo "# $name exited with status ${rc:-unknown}" >&2
		return 1
	}
}

# spawn_in_image NAME CTR CMD...: in_image in the background, output to DIR/NAME.log, the
# exit status appended as "exit status N".
spawn_in_image() {
	local name=$1 ctr=$2
	shift 2
	jr_spawn "$dir" "$name" bash -c '"$@"; echo "exit status $?"' buildah \
		buildah --root "$cache/storage" --runroot "$cache/runroot" --storage-driver overlay \
		run --isolation chroot --network host -v "$dir:/jrtest:ro" \
		--env PGSERVICEFILE=/jrtest/pg_service.conf "$ctr" -- "$@"
}

cleanup() {
	local name c
	for name in haproxy adapter agent; do
		if jr_pid_alive "$dir/$name.pid"; then
			stop_in_image "$name" "${progs[$name]:-none}" KILL >/dev/null 2>&1 || true
		fi
	done
	jr_stop_pid "$dir" mock-mock1 TERM
	pg_stop "$dir/pg" >/dev/null 2>&1 || true
	for c in tools agent adapter haproxy; do
		bah rm "jr-image-$c-$$" >/dev/null 2>&1 || true
	done
	if [[ -n ${JR_IMAGE_KEEP:-} ]]; then
		echo "# kept $dir"
	else
		rm -rf "$dir"
	fi
}
declare -A progs=([agent]=jairouter-spoa [adapter]=jairouter-adapt [haproxy]=haproxy)
trap cleanup EXIT
# `timeout` (scripts/test) sends TERM: stop everything on the way out all the same.
trap 'exit 143' TERM INT
# Working containers left by a run that was killed (this suite's own storage only).
bah rm --all >/dev/null 2>&1 || true

# ---- the checks ------------------------------------------------------------------------

jr_step base_image base_image
jr_step build_image build_image
if ((failed > 0)); then
	echo "$passed passed, $failed failed"
	exit 1
fi
size=$(bah images --noheading --format '{{.Size}}' "$image")
echo "# image $image: $size"
# Debian's base is 78 MB of it; the runtime stage adds HAProxy, psql, curl and the libraries
# (101 MB in all when this was written).
size_small() {
	awk -v s="$size" 'BEGIN { split(s, a, " "); exit !((a[2] == "MB" && a[1] + 0 < 150) || a[2] == "kB") }'
}
jr_step image_under_150_MB size_small

tools=$(new_ctr tools)

runs_as_jairouter() {
	[[ $(in_image "$tools" id -un) == jairouter ]]
}
no_compiler() {
	local out
	# shellcheck disable=SC2016 # expanded by the image's shell
	out=$(in_image "$tools" sh -c 'for c in cc gcc clang make; do command -v "$c"; done; true')
	[[ -z $out ]] || {
		echo "# found in the runtime stage: $out" >&2
		return 1
	}
}
jr_step runs_as_non_root runs_as_jairouter
jr_step no_build_tools_in_runtime no_compiler

mapfile -t p < <(jr_free_ports 7)
pg_port=${p[0]} spoa_port=${p[1]} metrics_port=${p[2]} report_port=${p[3]}
http_port=${p[4]} stats_port=${p[5]} adapter_port=${p[6]}

cat >"$dir/agent.conf" <<EOF
# Written by tests/image/run.sh.
listen = 127.0.0.1:$spoa_port
metrics_listen = 127.0.0.1:$metrics_port
report_listen = 127.0.0.1:$report_port
workers = 2
database = "service=jairouter"
abuse_max_failures = 0
EOF
# The database connection as the Kubernetes manifests give it: a libpq service file
# (PGSERVICEFILE), read alike by the agent, jairouter-migrate and jairouterctl.
cat >"$dir/pg_service.conf" <<EOF
[jairouter]
host=127.0.0.1
port=$pg_port
dbname=jairouter
user=jairouter
EOF
printf 'listen = 127.0.0.1:%s\nworkers = lots\n' "$spoa_port" >"$dir/bad.conf"
chmod 644 "$dir/agent.conf" "$dir/bad.conf" "$dir/pg_service.conf"

agent_config_ok() {
	in_image "$tools" jairouter-spoa -t -c /jrtest/agent.conf
}
agent_config_bad() {
	local rc=0
	in_image "$tools" jairouter-spoa -t -c /jrtest/bad.conf >"$dir/bad-conf.out" 2>&1 || rc=$?
	((rc != 0)) && grep -q workers "$dir/bad-conf.out"
}
jr_step agent_config_check agent_config_ok
jr_step agent_config_check_refuses_bad_file agent_config_bad

# The HAProxy of the image, on this test's ports: the demo's operator file, the gateway and
# the demo's model backends, as the Dockerfile documents.
haproxy_files=(-f /etc/jairouter/haproxy/haproxy.cfg -f /etc/jairouter/haproxy/jairouter.cfg
	-f /etc/jairouter/haproxy/models.cfg)
haproxy_env=(env JR_LISTEN="127.0.0.1:$http_port" JR_STATS_LISTEN="127.0.0.1:$stats_port"
	JR_SPOA_ADDR="127.0.0.1:$spoa_port" JR_REPORT_ADDR="127.0.0.1:$report_port"
	JR_ADAPTER_ADDR="127.0.0.1:$adapter_port" JR_INSTANCE="jr-image-$http_port")
haproxy_check() {
	in_image "$tools" "${haproxy_env[@]}" JR_MOCK_ADDR=127.0.0.1:1 haproxy -c -q "${haproxy_files[@]}"
}
jr_step haproxy_config_check haproxy_check

echo "# PostgreSQL on 127.0.0.1:$pg_port"
db=
if pg_start "$dir/pg" "$pg_port" >"$dir/pg-start.log" 2>&1; then
	db=$(pg_create_db "$pg_port" jairouter 2>>"$dir/pg-start.log") || db=
fi
jr_step postgres_started test -n "$db"

migrate_twice() {
	in_image "$tools" env JAIROUTER_DATABASE=service=jairouter jairouter-migrate >"$dir/migrate.log" 2>&1 &&
		in_image "$tools" env JAIROUTER_DATABASE=service=jairouter jairouter-migrate >>"$dir/migrate.log" 2>&1 &&
		grep -q '^applying 001' "$dir/migrate.log" &&
		grep -q '^already applied: 001' "$dir/migrate.log"
}
jr_step migrations_from_image migrate_twice

key=
catalogue() {
	local ctl=(in_image "$tools" env JAIROUTER_DATABASE=service=jairouter JAIROUTER_ACTOR=image-test jairouterctl)
	"${ctl[@]}" tenant add imgtest >/dev/null &&
		"${ctl[@]}" model add img-model be_mock >/dev/null &&
		key=$("${ctl[@]}" key issue imgtest | grep -Eo 'jr-[0-9a-f]{64}' | tail -n 1) &&
		[[ -n $key ]]
}
jr_step jairouterctl_from_image catalogue

mock_port=
mock_port=$(jr_mock_start "$dir" mock1) || true
jr_step mock_model_server test -n "$mock_port"

agent_ctr=$(new_ctr agent)
adapter_ctr=$(new_ctr adapter)
haproxy_ctr=$(new_ctr haproxy)

start_agent() {
	spawn_in_image agent "$agent_ctr" jairouter-spoa -c /jrtest/agent.conf
	jr_wait_http "http://127.0.0.1:$metrics_port/readyz" 60
}
start_adapter() {
	spawn_in_image adapter "$adapter_ctr" jairouter-adapter --listen "127.0.0.1:$adapter_port" \
		--report "127.0.0.1:$report_port"
	jr_wait_http "http://127.0.0.1:$adapter_port/health" 60
}
start_haproxy() {
	spawn_in_image haproxy "$haproxy_ctr" "${haproxy_env[@]}" JR_MOCK_ADDR="127.0.0.1:$mock_port" \
		haproxy -dMglobal -db "${haproxy_files[@]}"
	export JR_STATS_URL=http://127.0.0.1:$stats_port
	jr_wait_http "$JR_STATS_URL/stats" 60 &&
		jr_haproxy_server_up spoa-agents agent1 60 &&
		jr_haproxy_server_up be_mock mock1 60
}
jr_step agent_ready_from_image start_agent
jr_step adapter_ready_from_image start_adapter
jr_step haproxy_ready_from_image start_haproxy

chat() {
	local code
	code=$(curl -sS --max-time 10 -o "$dir/chat.json" -w '%{http_code}' \
		"http://127.0.0.1:$http_port/v1/chat/completions" \
		-H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
		-d '{"model":"img-model","messages":[{"role":"user","content":"Hello"}]}') || return 1
	if [[ $code == 200 ]] &&
		jq -e '.choices[0].message.content | startswith("Hello from mock1! This is a mock reply from model img-model")' \
			"$dir/chat.json" >/dev/null; then
		return 0
	fi
	echo "# HTTP $code: $(head -c 500 "$dir/chat.json")" >&2
	return 1
}
bad_key() {
	local code
	code=$(curl -sS --max-time 10 -o "$dir/bad.json" -w '%{http_code}' \
		"http://127.0.0.1:$http_port/v1/chat/completions" \
		-H "Authorization: Bearer jr-$(printf '0%.0s' {1..64})" -H 'Content-Type: application/json' \
		-d '{"model":"img-model","messages":[{"role":"user","content":"Hello"}]}') || return 1
	if [[ $code == 401 ]] && jq -e '.error.type == "authentication_error"' "$dir/bad.json" >/dev/null; then
		return 0
	fi
	echo "# HTTP $code: $(head -c 500 "$dir/bad.json")" >&2
	return 1
}
healthcheck() {
	in_image "$tools" env JR_HEALTH_URL="http://127.0.0.1:$metrics_port/healthz" jairouter-healthcheck &&
		in_image "$tools" env JR_HEALTH_URL="http://127.0.0.1:$adapter_port/health" jairouter-healthcheck
}
jr_step chat_completion_through_image chat
jr_step bad_key_refused bad_key
jr_step image_healthcheck healthcheck

# HAProxy's graceful stop is SIGUSR1 (requests in flight finish); SIGTERM is its hard stop.
jr_step haproxy_stops stop_in_image haproxy haproxy USR1
jr_step adapter_stops stop_in_image adapter "${progs[adapter]}"
jr_step agent_stops stop_in_image agent jairouter-spoa

if ((failed > 0)); then
	jr_dump_logs "$dir"
	echo "===== $dir/pg/postgres.log"
	tail -n 50 "$dir/pg/postgres.log" 2>/dev/null || true
fi
echo "$passed passed, $failed failed"
((failed == 0))
