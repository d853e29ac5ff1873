#!/usr/bin/env bash
# The deploy suite: the systemd units and the Kubernetes manifests of deploy/.
#
#   systemd     `systemd-analyze verify` of jairouter-spoa@a.service (template and
#               credentials drop-in), jairouter-adapter.service and Debian's haproxy.service
#               with the JAiRouter drop-in, against the built binaries (bound over
#               /usr/local/bin in a private mount namespace); clean means no output at all.
#               The checker is shown to be live: a unit and a drop-in with an unknown key
#               must be reported. `systemd-analyze security --offline` exposure of each
#               unit at most 2.0.
#   Kubernetes  `kubectl kustomize` of every overlay (production with throwaway secret
#               files), each rendered object validated offline by tests/deploy/validate.mjs
#               (Kubernetes and Prometheus Operator schemas, references between objects);
#               a broken render must be refused; the agent configurations pass
#               `jairouter-spoa -t`, the HAProxy files `haproxy -c`.
# Prints "ok NAME" / "not ok NAME" per check and "N passed, N failed" last.
# kubectl: the one on PATH, else Debian's kubernetes-client is installed (root).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
# shellcheck source=scripts/lib/common.sh
source scripts/lib/common.sh

dir=$(mktemp -d /tmp/jr-deploy.XXXXXX)
trap 'rm -rf "$dir"' EXIT
passed=0
failed=0

# The release binaries: the units name them, the agent checks the manifests' configurations.
make -s -j2 build/release/jairouter-spoa build/release/jairouter-adapter >&2

# ---- systemd ---------------------------------------------------------------------------

units=(jairouter-spoa@a.service jairouter-adapter.service haproxy.service)

# unit_tree DEST: the units and drop-ins of deploy/systemd as systemd would find them.
unit_tree() {
	mkdir -p "$1"
	cp -r deploy/systemd/*.service deploy/systemd/*.service.d "$1"/
}

# verify_units TREE OUT: systemd-analyze verify with TREE first in the unit path and the
# built binaries at /usr/local/bin (private mount namespace: nothing changes outside).
verify_units() {
	local tree=$1 out=$2
	# shellcheck disable=SC2016 # expanded by the inner bash
	unshare -m --propagation private bash -c '
		mount --bind "$1" /usr/local/bin || exit 1
		shift 2
		SYSTEMD_UNIT_PATH="$0:" systemd-analyze verify --man=no "$@"
	' "$tree" "$dir/bin" "$tree" "${units[@]}" >"$out" 2>&1
}

units_verify_clean() {
	local rc=0
	unit_tree "$dir/units"
	verify_units "$dir/units" "$dir/verify.out" || rc=$?
	if ((rc != 0)) || [[ -s $dir/verify.out ]]; then
		sed 's/^/# /' "$dir/verify.out"
		return 1
	fi
}

# verify_reports KEY_FILE: a copy of the units with "Bogus=1" in KEY_FILE's [Service] must be
# reported by name.
verify_reports() {
	local tree=$dir/broken-$RANDOM
	unit_tree "$tree"
	sed -i 's/^\[Service\]$/[Service]\nBogusSetting=1/' "$tree/$1"
	verify_units "$tree" "$dir/broken.out" || true
	grep -q "BogusSetting" "$dir/broken.out"
}

# exposure UNIT: systemd-analyze security's overall exposure (0 safest, 10 unsafe) <= 2.0.
exposure() {
	local unit=$1 score
	score=$(SYSTEMD_UNIT_PATH="$dir/units:" systemd-analyze security --offline=yes "$unit" 2>/dev/null |
		sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
	echo "# $unit exposure: ${score:-unknown}"
	[[ -n $score ]] && awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }'
}

if ((EUID == 0)) && command -v systemd-analyze >/dev/null; then
	mkdir -p "$dir/bin"
	cp build/release/jairouter-spoa build/release/jairouter-adapter "$dir/bin/"
	jr_step systemd_units_verify_clean units_verify_clean
	jr_step systemd_verify_reports_bad_unit verify_reports jairouter-adapter.service
	jr_step systemd_verify_reads_drop_ins verify_reports jairouter-spoa@.service.d/credentials.conf
	jr_step systemd_agent_exposure exposure jairouter-spoa@a.service
	jr_step systemd_adapter_exposure exposure jairouter-adapter.service
else
	echo "not ok systemd_units: needs root (a private mount namespace) and systemd-analyze"
	failed=$((failed + 1))
fi

# ---- Kubernetes ------------------------------------------------------------------------

kubectl_ready() {
	command -v kubectl >/dev/null && return 0
	((EUID == 0)) || return 1
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends kubernetes-client >&2
}

validator_ready() {
	[[ -d tests/deploy/node_modules/kubernetes-models ]] && return 0
	(cd tests/deploy && npm ci --no-audit --no-fund >&2)
}

# render OVERLAY OUT: kubectl kustomize of a copy of deploy/kubernetes (production gets
# throwaway secret files: the real ones are never in the repository).
render() {
	local overlay=$1 out=$2 tree=$dir/kubernetes
	if [[ ! -d $tree ]]; then
		cp -r deploy/kubernetes "$tree"
		mkdir -p "$tree/overlays/production/secrets"
		printf '[jairouter]\nhost=db.internal\ndbname=jairouter\nuser=jairouter\npassword=test-only\nsslmode=verify-full\n' \
			>"$tree/overlays/production/secrets/pg_service.conf"
		printf 'k1:%s\n' "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" \
			>"$tree/overlays/production/secrets/master.keys"
	fi
	kubectl kustomize "$tree/overlays/$overlay" >"$out" 2>"$out.err" || {
		sed 's/^/# /' "$out.err"
		return 1
	}
}

validate() {
	node tests/deploy/validate.mjs "$1" "$2" >"$1.checks" 2>&1
	local rc=$?
	grep -c '^ok ' "$1.checks" | sed 's/^/# checks passed: /'
	grep '^not ok ' "$1.checks" | sed 's/^/# /' || true
	return "$rc"
}

# A broken render (a replica count that is not a number, a mount of a missing volume) must
# be refused.
validator_refuses() {
	sed -e '0,/replicas: [0-9]*/s//replicas: three/' -e '0,/- mountPath: \/tmp/s//- mountPath: \/elsewhere\n          name: no-such-volume\n        - mountPath: \/tmp/' \
		"$dir/production.yaml" >"$dir/broken.yaml"
	! node tests/deploy/validate.mjs "$dir/broken.yaml" broken >"$dir/broken.checks" 2>&1 &&
		grep -q 'replicas must be integer' "$dir/broken.checks" &&
		grep -q 'no volume no-such-volume' "$dir/broken.checks"
}

# The agent configurations of the manifests pass `jairouter-spoa -t` (production's master
# key path pointed at a throwaway key file with the permissions the agent demands).
agent_conf_ok() {
	build/release/jairouter-spoa -t -c "$1" >"$dir/agent-t.out" 2>&1 || {
		sed 's/^/# /' "$dir/agent-t.out"
		return 1
	}
}
agent_conf_production() {
	local conf=$dir/spoa-production.conf
	(umask 077 && printf 'k1:%s\n' "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" >"$dir/master.keys")
	sed "s|^master_key_file = .*|master_key_file = $dir/master.keys|" \
		deploy/kubernetes/overlays/production/jairouter-spoa.conf >"$conf"
	grep -q "^master_key_file = $dir/master.keys" "$conf" && agent_conf_ok "$conf"
}
# HAProxy accepts the pod's files: the operator file and model backends of the ConfigMap
# around the gateway's own jairouter.cfg, as the container's command loads them.
haproxy_conf_kubernetes() {
	JR_HAPROXY_DIR=$root/haproxy haproxy -c -q -f deploy/kubernetes/base/config/haproxy.cfg \
		-f haproxy/jairouter.cfg -f deploy/kubernetes/base/config/models.cfg >"$dir/haproxy-c.out" 2>&1 || {
		sed 's/^/# /' "$dir/haproxy-c.out"
		return 1
	}
}
jr_step haproxy_config_kubernetes haproxy_conf_kubernetes
jr_step agent_config_kubernetes_base agent_conf_ok deploy/kubernetes/base/config/jairouter-spoa.conf
jr_step agent_config_kubernetes_production agent_conf_production

jr_step kubectl_available kubectl_ready
jr_step validator_installed validator_ready
echo "# $(kubectl version --client 2>/dev/null | head -n 2 | tr '\n' ' ')"
for overlay in dev production; do
	if [[ -f deploy/kubernetes/overlays/$overlay/kustomization.yaml ]]; then
		jr_step "kustomize_$overlay" render "$overlay" "$dir/$overlay.yaml"
		jr_step "manifests_valid_$overlay" validate "$dir/$overlay.yaml" "$overlay"
	fi
done
jr_step validator_refuses_broken_render validator_refuses

echo "$passed passed, $failed failed"
((failed == 0))
