# shellcheck shell=bash
# jairouterctl batches: the batches the gateway recorded (sql/016_files_batches.sql;
# docs/api.md "Billing a batch"). `batches sync` retrieves every open batch through the
# gateway, as its tenant, so that a batch nobody retrieves is still seen completed and
# billed (once: jairouter.bill_batches). Sourced by scripts/jairouterctl, whose sql,
# usage_error and die functions it uses. Values reach SQL as psql variables.

batches_usage() {
	cat <<'USAGE'

  batches list [--tenant T]       recorded batches: status as last seen, billed or not
  batches sync --url URL [--age 3 days]
                                  retrieve every open batch through the gateway at URL
                                  (as its tenant, with a key valid for 10 minutes and
                                  revoked after), so completed ones are billed; run it
                                  from cron (docs/api.md, "Billing a batch")
USAGE
}

batches_list() {
	local tenant=''
	while (($# > 0)); do
		case $1 in
		--tenant)
			(($# >= 2)) || usage_error "--tenant needs a value"
			tenant=$2
			shift 2
			;;
		*) usage_error "usage: batches list [--tenant T]" ;;
		esac
	done
	sql -v tenant="$tenant" <<'SQL'
SELECT t.name AS tenant, o.object_id AS batch, coalesce(o.object::jsonb ->> 'status', '?') AS status,
	o.created_at, b.billed_at, b.input_tokens, b.output_tokens, b.estimated, b.cost
FROM jairouter.api_objects o
JOIN jairouter.tenants t ON t.id = o.tenant_id
LEFT JOIN jairouter.batch_usage b ON b.batch_id = o.object_id
WHERE o.kind = 'batch' AND (:'tenant' = '' OR t.name = :'tenant')
ORDER BY o.created_at DESC;
SQL
}

# batches_get URL KEY PATH: the HTTP status of GET URL/PATH (the key goes to curl on its
# standard input, never on a command line).
batches_get() {
	printf 'header = "authorization: Bearer %s"\n' "$2" |
		curl -sS --max-time 30 -o /dev/null -w '%{http_code}' --config - "$1$3" || echo 000
}

# batches_tenant URL TENANT ID...: polls one tenant's batches with a short-lived key.
batches_tenant() {
	local url=$1 tenant=$2 key code i polled=0
	shift 2
	key=$(sql -At -v tenant="$tenant" <<'SQL'
SELECT jairouter.issue_key(:'tenant', 'batches-sync', now() + interval '10 minutes');
SQL
	)
	[[ $key =~ ^jr-[0-9a-f]{64}$ ]] || die "unexpected answer from issue_key"
	# The key reaches the agents within a second (LISTEN/NOTIFY): wait up to 10 s, asking
	# for the list (answered by the agent, it moves no batch).
	for ((i = 0; i < 100; i++)); do
		code=$(batches_get "$url" "$key" /v1/batches?limit=1)
		[[ $code == 401 ]] || break
		sleep 0.1
	done
	for id in "$@"; do
		code=$(batches_get "$url" "$key" "/v1/batches/$id")
		if [[ $code == 200 ]]; then
			polled=$((polled + 1))
		else
			printf "jairouterctl: batch %s of %s: HTTP %s\n" "$id" "$tenant" "$code" >&2
		fi
	done
	sql -At -v ref="${key:0:11}" >/dev/null <<'SQL'
SELECT jairouter.revoke_key(:'ref');
SQL
	echo "$polled"
}

batches_sync() {
	local url='' age='3 days' tenant='' id prev='' ids=() polled=0 total=0 n
	while (($# > 0)); do
		case $1 in
		--url | --age)
			(($# >= 2)) || usage_error "$1 needs a value"
			if [[ $1 == --url ]]; then url=${2%/}; else age=$2; fi
			shift 2
			;;
		*) usage_error "usage: batches sync --url URL [--age INTERVAL]" ;;
		esac
	done
	[[ -n $url ]] || usage_error "usage: batches sync --url URL [--age INTERVAL]"
	while read -r tenant id; do
		[[ -n $tenant ]] || continue
		if [[ -n $prev && $tenant != "$prev" ]]; then
			n=$(batches_tenant "$url" "$prev" "${ids[@]}")
			polled=$((polled + n))
			ids=()
		fi
		prev=$tenant
		ids+=("$id")
		total=$((total + 1))
	done < <(sql -At -F ' ' -v age="$age" <<'SQL'
SELECT tenant, batch_id FROM jairouter.open_batches(:'age'::interval);
SQL
	)
	if ((${#ids[@]})); then
		n=$(batches_tenant "$url" "$prev" "${ids[@]}")
		polled=$((polled + n))
	fi
	echo "batches sync: $polled of $total open batches retrieved"
	((polled == total))
}

batches_cmd() {
	local sub=${1:-}
	shift || true
	case $sub in
	list) batches_list "$@" ;;
	sync) batches_sync "$@" ;;
	*) usage_error "usage: batches list|sync ..." ;;
	esac
}
