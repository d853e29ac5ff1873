# shellcheck shell=bash
# jairouterctl's commands for limits, token issuers, roles, routing and platform tenants.
# Sourced by scripts/jairouterctl (which provides sql, need_args, usage_error). Each
# command calls jairouter.admin_cli() (sql/011_admin_api.sql): the very operations the
# administration API serves (docs/admin-api.md), run as a local platform administrator,
# so the CLI and the API share their rules, checks and change log. Values go to psql as
# variables (:'name'), never into SQL text.

admin_usage() {
	cat <<'USAGE'

  platform on|off TENANT          a platform tenant's administrators manage every tenant
  platform list

  role add NAME [--tenant T] [--allow P,P] [--deny P,P]
                                  a role (global, or a tenant's own); permissions:
                                  admin, usage:read, audit:read, service:S, model:M,
                                  group:G, * (docs/identity.md)
  role list [--tenant T] / role remove NAME [--tenant T]
  role assign KEY ROLE / role unassign KEY ROLE   KEY: a prefix (jr-1a2b3c4d) or an id

  limit set SCOPE DIMENSION ALGORITHM AMOUNT [--tenant T] [--key PREFIX] [--model M]
            [--window-ms N] [--burst N] [--warmup-ms N]       (docs/limits.md)
  limit list [--tenant T] / limit remove ID

  issuer add NAME ISS --algorithms A,B (--tenant T | --tenant-claim CLAIM)
            [--audience AUD] [--role-claim CLAIM] [--discovery URL] [--default-roles R,R]
  issuer list / issuer show NAME / issuer remove NAME / issuer enable|disable NAME
  issuer key add NAME KID FILE    a JWK (JSON) or PEM public key read from FILE
  issuer key remove NAME KID

  routing show MODEL
  routing strategy MODEL STRATEGY|inherit [--hash-key K]
  routing fallbacks MODEL A,B|none [--reasons down,circuit_open,saturated]
  routing virtual MODEL A,B|none [--latency-budget-ms N]      (docs/routing.md)
USAGE
}

# admin_opts ALLOWED -- ARGS...: parses "--name value" options into the associative
# array opt (names with '-' as '_') and the rest into the array pos.
admin_opts() {
	local allowed=" $1 " name
	shift 2
	pos=()
	while (($#)); do
		case $1 in
		--*)
			name=${1#--}
			[[ $allowed == *" $name "* ]] || usage_error "unknown option $1"
			(($# >= 2)) || usage_error "$1 needs a value"
			opt[${name//-/_}]=$2
			shift 2
			;;
		*)
			pos+=("$1")
			shift
			;;
		esac
	done
}

platform_cmd() {
	local sub=${1:-}
	shift || true
	case $sub in
	on | off)
		need_args 1 $# "usage: platform on|off TENANT"
		sql -At -v tenant="$1" -v on="$sub" <<'SQL'
SELECT jairouter.admin_cli('tenants.patch', jsonb_build_object('tenant', :'tenant', 'if_match', '*'),
	jsonb_build_object('platform', :'on' = 'on')) \g /dev/null
SELECT 'tenant ' || :'tenant' || ' is ' || CASE WHEN :'on' = 'on' THEN 'a platform tenant' ELSE 'no longer a platform tenant' END;
SQL
		;;
	list)
		need_args 0 $# "usage: platform list"
		sql <<'SQL'
SELECT t ->> 'name' AS tenant, t ->> 'status' AS status
FROM jsonb_array_elements(jairouter.admin_cli('tenants.list', '{"limit": "500"}') -> 'data') t
WHERE (t ->> 'platform')::boolean ORDER BY 1;
SQL
		;;
	*) usage_error "usage: platform on|off|list ..." ;;
	esac
}

role_cmd() {
	local sub=${1:-}
	local -A opt=()
	local pos=()
	shift || true
	case $sub in
	add)
		admin_opts "tenant allow deny" -- "$@"
		((${#pos[@]} == 1)) || usage_error "usage: role add NAME [--tenant T] [--allow P,P] [--deny P,P]"
		sql -At -v name="${pos[0]}" -v tenant="${opt[tenant]:-}" -v allow="${opt[allow]:-}" \
			-v deny="${opt[deny]:-}" <<'SQL'
SELECT 'role ' || (r ->> 'name') || ' (id ' || (r ->> 'id') || ', ' || coalesce('tenant ' || (r ->> 'tenant'), 'global') || ') added'
FROM jairouter.admin_cli('roles.create', '{}', jsonb_strip_nulls(jsonb_build_object('name', :'name',
	'tenant', NULLIF(:'tenant', ''), 'allow', string_to_array(NULLIF(:'allow', ''), ','),
	'deny', string_to_array(NULLIF(:'deny', ''), ',')))) r;
SQL
		;;
	list)
		admin_opts "tenant" -- "$@"
		((${#pos[@]} == 0)) || usage_error "usage: role list [--tenant T]"
		sql -v tenant="${opt[tenant]:-}" <<'SQL'
SELECT (r ->> 'id')::bigint AS id, r ->> 'name' AS name, coalesce(r ->> 'tenant', '(global)') AS tenant,
	array_to_string(ARRAY(SELECT jsonb_array_elements_text(r -> 'allow')), ',') AS allow,
	array_to_string(ARRAY(SELECT jsonb_array_elements_text(r -> 'deny')), ',') AS deny
FROM jsonb_array_elements(jairouter.admin_cli('roles.list',
	jsonb_build_object('tenant', NULLIF(:'tenant', ''))) -> 'data') r;
SQL
		;;
	remove)
		admin_opts "tenant" -- "$@"
		((${#pos[@]} == 1)) || usage_error "usage: role remove NAME [--tenant T]"
		sql -At -v name="${pos[0]}" -v tenant="${opt[tenant]:-}" <<'SQL'
SELECT jairouter.admin_cli('roles.delete', jsonb_build_object('id', coalesce((SELECT id::text
	FROM jairouter.roles WHERE name = :'name'
		AND tenant_id IS NOT DISTINCT FROM (SELECT id FROM jairouter.tenants WHERE name = NULLIF(:'tenant', ''))),
	'none'))) \g /dev/null
SELECT 'role ' || :'name' || ' removed';
SQL
		;;
	assign | unassign)
		need_args 2 $# "usage: role $sub KEY ROLE"
		sql -At -v key="$1" -v role="$2" -v sub="$sub" <<'SQL'
SELECT CASE WHEN :'sub' = 'assign'
	THEN jairouter.admin_cli('keys.roles.add', jsonb_build_object('id', jairouter.find_key(:'key')::text),
		jsonb_build_object('role', :'role'))
	ELSE jairouter.admin_cli('keys.roles.remove', jsonb_build_object('id', jairouter.find_key(:'key')::text,
		'role', :'role')) END \g /dev/null
SELECT 'key ' || :'key' || CASE WHEN :'sub' = 'assign' THEN ' now holds role ' ELSE ' no longer holds role ' END || :'role';
SQL
		;;
	*) usage_error "usage: role add|list|remove|assign|unassign ..." ;;
	esac
}

limit_cmd() {
	local sub=${1:-}
	local -A opt=()
	local pos=()
	shift || true
	case $sub in
	set)
		admin_opts "tenant key model window-ms burst warmup-ms" -- "$@"
		((${#pos[@]} == 4)) || usage_error "usage: limit set SCOPE DIMENSION ALGORITHM AMOUNT [OPTIONS]"
		sql -At -v scope="${pos[0]}" -v dim="${pos[1]}" -v algo="${pos[2]}" -v amount="${pos[3]}" \
			-v tenant="${opt[tenant]:-}" -v key="${opt[key]:-}" -v model="${opt[model]:-}" \
			-v window="${opt[window_ms]:-}" -v burst="${opt[burst]:-}" -v warmup="${opt[warmup_ms]:-}" <<'SQL'
SELECT 'limit ' || (l ->> 'id') || ' set'
FROM jairouter.admin_cli('limits.create', '{}', jsonb_strip_nulls(jsonb_build_object(
	'scope', :'scope', 'dimension', :'dim', 'algorithm', :'algo', 'amount', (:'amount')::numeric,
	'tenant', NULLIF(:'tenant', ''), 'key', NULLIF(:'key', ''), 'model', NULLIF(:'model', ''),
	'window_ms', NULLIF(:'window', '')::bigint, 'burst', NULLIF(:'burst', '')::bigint,
	'warmup_ms', NULLIF(:'warmup', '')::bigint))) l;
SQL
		;;
	list)
		admin_opts "tenant" -- "$@"
		((${#pos[@]} == 0)) || usage_error "usage: limit list [--tenant T]"
		sql -v tenant="${opt[tenant]:-}" <<'SQL'
SELECT (l ->> 'id')::bigint AS id, l ->> 'scope' AS scope, l ->> 'dimension' AS dimension,
	l ->> 'algorithm' AS algorithm, l ->> 'amount' AS amount, l ->> 'window_ms' AS window_ms,
	l ->> 'tenant' AS tenant, l ->> 'key' AS key, l ->> 'model' AS model, l ->> 'enabled' AS enabled
FROM jsonb_array_elements(jairouter.admin_cli('limits.list',
	jsonb_build_object('tenant', NULLIF(:'tenant', ''))) -> 'data') l;
SQL
		;;
	remove)
		need_args 1 $# "usage: limit remove ID"
		sql -At -v id="$1" <<'SQL'
SELECT jairouter.admin_cli('limits.delete', jsonb_build_object('id', :'id')) \g /dev/null
SELECT 'limit ' || :'id' || ' removed';
SQL
		;;
	*) usage_error "usage: limit set|list|remove ..." ;;
	esac
}

issuer_add() {
	local -A opt=()
	local pos=()
	admin_opts "algorithms tenant tenant-claim audience role-claim discovery default-roles" -- "$@"
	if ((${#pos[@]} != 2)) || [[ -z ${opt[algorithms]:-} ]]; then
		usage_error "usage: issuer add NAME ISS --algorithms A,B (--tenant T | --tenant-claim CLAIM) [OPTIONS]"
	fi
	sql -At -v name="${pos[0]}" -v iss="${pos[1]}" -v algs="${opt[algorithms]}" \
		-v tenant="${opt[tenant]:-}" -v tclaim="${opt[tenant_claim]:-}" -v aud="${opt[audience]:-}" \
		-v rclaim="${opt[role_claim]:-}" -v disc="${opt[discovery]:-}" -v droles="${opt[default_roles]:-}" <<'SQL'
SELECT 'issuer ' || (i ->> 'name') || ' (id ' || (i ->> 'id') || ') added'
FROM jairouter.admin_cli('issuers.create', '{}', jsonb_strip_nulls(jsonb_build_object('name', :'name',
	'issuer', :'iss', 'algorithms', string_to_array(:'algs', ','), 'tenant', NULLIF(:'tenant', ''),
	'tenant_claim', NULLIF(:'tclaim', ''), 'audience', NULLIF(:'aud', ''),
	'role_claim', NULLIF(:'rclaim', ''), 'discovery_url', NULLIF(:'disc', ''),
	'default_roles', string_to_array(NULLIF(:'droles', ''), ',')))) i;
SQL
}

issuer_key() {
	local sub=${1:-}
	shift || true
	case $sub in
	add)
		need_args 3 $# "usage: issuer key add NAME KID FILE"
		[[ -r $3 ]] || usage_error "cannot read $3"
		sql -At -v name="$1" -v kid="$2" -v material="$(cat "$3")" <<'SQL'
SELECT jairouter.admin_cli('issuers.keys.add', jsonb_build_object('issuer', :'name'),
	jsonb_build_object('kid', :'kid', 'jwk', CASE WHEN btrim(:'material') LIKE '{%'
		THEN (:'material')::jsonb ELSE to_jsonb(:'material'::text) END)) \g /dev/null
SELECT 'key ' || :'kid' || ' added to issuer ' || :'name';
SQL
		;;
	remove)
		need_args 2 $# "usage: issuer key remove NAME KID"
		sql -At -v name="$1" -v kid="$2" <<'SQL'
SELECT jairouter.admin_cli('issuers.keys.delete', jsonb_build_object('issuer', :'name', 'kid', :'kid')) \g /dev/null
SELECT 'key ' || :'kid' || ' removed from issuer ' || :'name';
SQL
		;;
	*) usage_error "usage: issuer key add|remove ..." ;;
	esac
}

issuer_cmd() {
	local sub=${1:-}
	shift || true
	case $sub in
	add) issuer_add "$@" ;;
	key) issuer_key "$@" ;;
	list)
		need_args 0 $# "usage: issuer list"
		sql <<'SQL'
SELECT i ->> 'name' AS name, i ->> 'issuer' AS issuer, coalesce(i ->> 'tenant', 'claim ' || (i ->> 'tenant_claim')) AS tenant,
	array_to_string(ARRAY(SELECT jsonb_array_elements_text(i -> 'algorithms')), ',') AS algorithms,
	i ->> 'status' AS status, jsonb_array_length(i -> 'keys') AS keys
FROM jsonb_array_elements(jairouter.admin_cli('issuers.list', '{}') -> 'data') i;
SQL
		;;
	show)
		need_args 1 $# "usage: issuer show NAME"
		sql -At -v name="$1" <<'SQL'
SELECT jsonb_pretty(jairouter.admin_cli('issuers.get', jsonb_build_object('issuer', :'name')));
SQL
		;;
	remove)
		need_args 1 $# "usage: issuer remove NAME"
		sql -At -v name="$1" <<'SQL'
SELECT jairouter.admin_cli('issuers.delete', jsonb_build_object('issuer', :'name')) \g /dev/null
SELECT 'issuer ' || :'name' || ' removed';
SQL
		;;
	enable | disable)
		need_args 1 $# "usage: issuer $sub NAME"
		sql -At -v name="$1" -v st="${sub%able}" <<'SQL'
SELECT jairouter.admin_cli('issuers.patch', jsonb_build_object('issuer', :'name', 'if_match', '*'),
	jsonb_build_object('status', CASE :'st' WHEN 'en' THEN 'active' ELSE 'disabled' END)) \g /dev/null
SELECT 'issuer ' || :'name' || CASE :'st' WHEN 'en' THEN ' enabled' ELSE ' disabled' END;
SQL
		;;
	*) usage_error "usage: issuer add|list|show|remove|enable|disable|key ..." ;;
	esac
}

# routing_put MODEL JSON: replaces the given fields of the model's routing.
routing_put() {
	sql -At -v model="$1" -v patch="$2" <<'SQL'
SELECT jsonb_pretty(jairouter.admin_cli('routing.put', jsonb_build_object('model', :'model', 'if_match', '*'),
	jairouter.admin_cli('routing.get', jsonb_build_object('model', :'model')) || (:'patch')::jsonb));
SQL
}

routing_cmd() {
	local sub=${1:-}
	local -A opt=()
	local pos=()
	shift || true
	case $sub in
	show)
		need_args 1 $# "usage: routing show MODEL"
		sql -At -v model="$1" <<'SQL'
SELECT jsonb_pretty(jairouter.admin_cli('routing.get', jsonb_build_object('model', :'model')));
SQL
		;;
	strategy)
		admin_opts "hash-key" -- "$@"
		((${#pos[@]} == 2)) || usage_error "usage: routing strategy MODEL STRATEGY|inherit [--hash-key K]"
		routing_put "${pos[0]}" "$(sql -At -v s="${pos[1]}" -v h="${opt[hash_key]:-}" <<'SQL'
SELECT jsonb_build_object('strategy', NULLIF(:'s', 'inherit'), 'hash_key', NULLIF(:'h', ''));
SQL
		)"
		;;
	fallbacks)
		admin_opts "reasons" -- "$@"
		((${#pos[@]} == 2)) || usage_error "usage: routing fallbacks MODEL A,B|none [--reasons R,R]"
		routing_put "${pos[0]}" "$(sql -At -v f="${pos[1]}" -v r="${opt[reasons]:-}" <<'SQL'
SELECT jsonb_build_object('fallbacks', coalesce(string_to_array(NULLIF(:'f', 'none'), ','), '{}'),
	'fallback_reasons', string_to_array(NULLIF(:'r', ''), ','));
SQL
		)"
		;;
	virtual)
		admin_opts "latency-budget-ms" -- "$@"
		((${#pos[@]} == 2)) || usage_error "usage: routing virtual MODEL A,B|none [--latency-budget-ms N]"
		routing_put "${pos[0]}" "$(sql -At -v m="${pos[1]}" -v b="${opt[latency_budget_ms]:-}" <<'SQL'
SELECT jsonb_build_object('virtual_members', coalesce(string_to_array(NULLIF(:'m', 'none'), ','), '{}'),
	'latency_budget_ms', NULLIF(:'b', '')::integer);
SQL
		)"
		;;
	*) usage_error "usage: routing show|strategy|fallbacks|virtual ..." ;;
	esac
}
