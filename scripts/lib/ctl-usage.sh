# shellcheck shell=bash
# jairouterctl usage and advise: usage reports and advice from the usage the gateway
# recorded (sql/010_usage_reports.sql; docs/reports.md). Sourced by scripts/jairouterctl,
# whose sql, usage_error and die functions it uses. Values reach SQL as psql variables;
# the only SQL text built here comes from fixed tables of column expressions.

usage_usage() {
	cat <<'USAGE'
usage: jairouterctl usage [--by DIMS] [--from DATE] [--to DATE] [--month YYYY-MM]
                          [--tenant T] [--model M] [--key PREFIX] [--user U]
                          [--top N] [--sort requests|tokens|cost] [--format table|csv|json]
       jairouterctl usage top users|models|tenants|keys [N] [OPTIONS]
       jairouterctl usage hours [OPTIONS]      requests by UTC hour of day (all 24)

  DIMS: comma-separated, in output order: tenant, model, key, user, day, hour,
  hour-of-day, month, label:NAME (a tenant label, e.g. label:team). Default: tenant.
  Range: --from and --to are UTC days, both included (default: this month so far);
  --month YYYY-MM is that whole month. Each row: requests, prompt_tokens,
  completion_tokens, total_tokens, failed_requests, cost; the last row ("total")
  sums the whole range, also when --top keeps only the first N rows. Rows come in
  time order when the first dimension is day, hour, month or hour-of-day, else by
  cost (largest first); --sort orders by requests, tokens or cost.
  Dimensions user, hour and hour-of-day (and --user) read jairouter.usage_hourly,
  the others jairouter.usage_daily.

  Monthly cost per team:  jairouterctl usage --month 2026-11 --by label:team,tenant --format csv
USAGE
}

# usage_dim DIM: prints the SQL expression of a dimension (over the report view aliased v
# and the tenant row t).
usage_dim() {
	case $1 in
	tenant) echo 'v.tenant' ;;
	model) echo 'v.model' ;;
	key) echo 'v.key' ;;
	user) echo "CASE v.\"user\" WHEN '' THEN '(none)' ELSE v.\"user\" END" ;;
	day) echo 'v.day::text' ;;
	month) echo "to_char(v.day, 'YYYY-MM')" ;;
	hour) echo "to_char(v.hour AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:00')" ;;
	hour-of-day) echo 'v.hour_of_day' ;;
	label:*) echo "coalesce(t.labels ->> :'label', '(none)')" ;;
	*) return 1 ;;
	esac
}

# usage_col DIM: the output column name of a dimension.
usage_col() {
	case $1 in
	hour-of-day) echo hour_of_day ;;
	label:*) echo "${1#label:}" ;;
	*) echo "$1" ;;
	esac
}

usage_check_day() {
	[[ $2 =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]] || usage_error "usage: $1 takes a UTC day, YYYY-MM-DD (got '$2')"
}

usage_cmd() {
	local by=tenant from='' to='' month='' tenant='' model='' key='' user='' top=0 sort=
	local format=table
	case ${1:-} in
	-h | --help | help) usage_usage && return 0 ;;
	top)
		[[ ${2:-} =~ ^(users|models|tenants|keys)$ ]] || usage_error "usage: usage top users|models|tenants|keys [N]"
		by=${2%s}
		top=10
		sort=cost
		shift 2
		if [[ ${1:-} =~ ^[0-9]+$ ]]; then top=$1 && shift; fi
		;;
	hours) by=hour-of-day && shift ;;
	esac
	while (($#)); do
		[[ $1 == -h || $1 == --help ]] && usage_usage && return 0
		(($# >= 2)) || usage_error "usage: $1 needs a value ('usage --help')"
		case $1 in
		--by) by=$2 ;;
		--from) usage_check_day --from "$2" && from=$2 ;;
		--to) usage_check_day --to "$2" && to=$2 ;;
		--month)
			[[ $2 =~ ^[0-9]{4}-(0[1-9]|1[0-2])$ ]] || usage_error "usage: --month takes YYYY-MM (got '$2')"
			month=$2
			;;
		--tenant) tenant=$2 ;;
		--model) model=$2 ;;
		--key) key=$2 ;;
		--user) user=$2 ;;
		--top)
			[[ $2 =~ ^[0-9]{1,6}$ ]] || usage_error "usage: --top takes a number of rows (got '$2')"
			top=$2
			;;
		--sort)
			[[ $2 =~ ^(requests|tokens|cost)$ ]] || usage_error "usage: --sort requests|tokens|cost (got '$2')"
			sort=$2
			;;
		--format)
			[[ $2 =~ ^(table|csv|json)$ ]] || usage_error "usage: --format table|csv|json (got '$2')"
			format=$2
			;;
		*) usage_error "usage: unknown option '$1' ('usage --help')" ;;
		esac
		shift 2
	done
	if [[ -n $month ]]; then
		[[ -z $from && -z $to ]] || usage_error "usage: --month or --from/--to, not both"
		from=$month-01
		to=$(date -u -d "$from +1 month -1 day" +%F) || usage_error "usage: bad month '$month'"
	fi
	usage_report "$by" "${from:-$(date -u +%Y-%m-01)}" "${to:-$(date -u +%F)}" "$tenant" \
		"$model" "$key" "$user" "$top" "$sort" "$format"
}

# usage_report BY FROM TO TENANT MODEL KEY USER TOP SORT FORMAT
usage_report() {
	local by=$1 from=$2 to=$3 format=${10} label='' dims=() cols=() exprs=() d e i
	local usage_hourly_only=0 view range group sel order total_pad='' q gcols rcols
	IFS=, read -r -a dims <<<"$by"
	((${#dims[@]} >= 1 && ${#dims[@]} <= 4)) || usage_error "usage: --by takes 1 to 4 dimensions"
	for d in "${dims[@]}"; do
		e=$(usage_dim "$d") || usage_error "usage: unknown dimension '$d' (tenant, model, key, user, day, hour, hour-of-day, month, label:NAME)"
		if [[ $d == label:* ]]; then
			[[ -z $label ]] || usage_error "usage: at most one label: dimension"
			label=${d#label:}
			[[ $label =~ ^[A-Za-z_][A-Za-z0-9_]{0,62}$ ]] || usage_error "usage: bad label name '$label'"
		fi
		[[ $d == user || $d == hour || $d == hour-of-day ]] && usage_hourly_only=1
		exprs+=("$e")
		cols+=("$(usage_col "$d")")
	done
	[[ -n $7 ]] && usage_hourly_only=1
	if ((usage_hourly_only)); then
		view=jairouter.usage_hourly_report
		range="v.hour >= :'from'::date AND v.hour < :'to'::date + 1"
	else
		view=jairouter.usage_daily_report
		range="v.day BETWEEN :'from'::date AND :'to'::date"
	fi
	sel='' group='' gcols='' rcols=''
	for i in "${!exprs[@]}"; do
		sel+="${exprs[$i]} AS \"${cols[$i]}\", "
		group+="${group:+, }$((i + 1))"
		gcols+=", g.\"${cols[$i]}\""
		rcols+="r.\"${cols[$i]}\", "
		((i == 0)) || total_pad+=', NULL'
	done
	# Rows by the first dimension when it is a time, else by --sort (largest first).
	case $9 in
	requests) order='g.requests DESC' ;;
	tokens) order='g.total_tokens DESC' ;;
	cost) order='g.cost DESC' ;;
	*) [[ ${dims[0]} =~ ^(day|hour|month)$ ]] && order='NULL' || order='g.cost DESC' ;;
	esac
	# The hours of the day with no traffic are listed too (0 requests).
	local fill='' gsel ucol="''"
	gsel=$(printf 'g0."%s", ' "${cols[@]}")
	gsel=${gsel%, }
	if [[ $by == hour-of-day ]]; then
		fill="RIGHT JOIN generate_series(0, 23) AS hs(h) ON hs.h = g0.\"hour_of_day\""
		gsel='hs.h AS "hour_of_day"'
		order='g.hour_of_day'
	fi
	((usage_hourly_only)) && ucol='v."user"'
	q=$(
		cat <<SQL
WITH src AS (
	SELECT ${sel}v.requests, v.prompt_tokens, v.completion_tokens, v.total_tokens,
		v.failed_requests, v.cost
	FROM $view v LEFT JOIN jairouter.tenants t ON t.name = v.tenant
	WHERE $range
		AND (:'tenant' = '' OR v.tenant = :'tenant') AND (:'model' = '' OR v.model = :'model')
		AND (:'key' = '' OR v.key = :'key')
		AND (:'user' = '' OR $ucol = :'user')
), g0 AS (
	SELECT $(printf '"%s", ' "${cols[@]}")sum(requests)::bigint AS requests,
		sum(prompt_tokens)::bigint AS prompt_tokens, sum(completion_tokens)::bigint AS completion_tokens,
		sum(total_tokens)::bigint AS total_tokens, sum(failed_requests)::bigint AS failed_requests,
		sum(cost)::numeric(20,6) AS cost
	FROM src GROUP BY $group
), g AS (
	SELECT $gsel,
		coalesce(g0.requests, 0) AS requests, coalesce(g0.prompt_tokens, 0) AS prompt_tokens,
		coalesce(g0.completion_tokens, 0) AS completion_tokens,
		coalesce(g0.total_tokens, 0) AS total_tokens,
		coalesce(g0.failed_requests, 0) AS failed_requests, coalesce(g0.cost, 0)::numeric(20,6) AS cost
	FROM g0 $fill
), r AS (
	SELECT row_number() OVER (ORDER BY $order$gcols) AS o, g.* FROM g
	ORDER BY o LIMIT NULLIF(:top::integer, 0)
), tot AS (
	SELECT coalesce(sum(requests), 0)::bigint AS requests,
		coalesce(sum(prompt_tokens), 0)::bigint AS prompt_tokens,
		coalesce(sum(completion_tokens), 0)::bigint AS completion_tokens,
		coalesce(sum(total_tokens), 0)::bigint AS total_tokens,
		coalesce(sum(failed_requests), 0)::bigint AS failed_requests,
		coalesce(sum(cost), 0)::numeric(20,6) AS cost
	FROM src
)
SQL
	)
	if [[ $format == json ]]; then
		sql -At -v from="$from" -v to="$to" -v tenant="$4" -v model="$5" -v key="$6" -v user="$7" \
			-v top="$8" -v label="$label" -v by="$by" <<SQL
$q
SELECT json_build_object('from', :'from', 'to', :'to', 'by', string_to_array(:'by', ','),
	'rows', coalesce((SELECT json_agg(x) FROM (SELECT ${rcols}r.requests, r.prompt_tokens,
		r.completion_tokens, r.total_tokens, r.failed_requests, r.cost FROM r ORDER BY r.o) x), '[]'),
	'total', (SELECT row_to_json(tot) FROM tot));
SQL
		return
	fi
	local opts=()
	[[ $format == csv ]] && opts=(--csv)
	sql "${opts[@]}" -v from="$from" -v to="$to" -v tenant="$4" -v model="$5" -v key="$6" \
		-v user="$7" -v top="$8" -v label="$label" <<SQL
$q
SELECT $(printf '"%s"::text, ' "${cols[@]}")requests, prompt_tokens, completion_tokens, total_tokens,
	failed_requests, cost FROM (
	SELECT r.o, $(printf 'r."%s"::text, ' "${cols[@]}")r.requests, r.prompt_tokens, r.completion_tokens,
		r.total_tokens, r.failed_requests, r.cost FROM r
	UNION ALL
	SELECT NULL, 'total'$total_pad, requests, prompt_tokens, completion_tokens, total_tokens,
		failed_requests, cost FROM tot
) x ORDER BY x.o NULLS LAST;
SQL
}

# ---- advise ------------------------------------------------------------------------------

advise_usage() {
	cat <<'USAGE'
usage: jairouterctl advise [--days N] [--at TIMESTAMP] [--prometheus URL]
                           [--format table|csv|json]

  Rules over the last N days (default 30) as of TIMESTAMP (default now), from the usage,
  limits and catalogue in PostgreSQL: limit_unused, key_unused, model_errors,
  cheaper_model, budget_forecast. With --prometheus (or $JAIROUTER_PROMETHEUS), a
  Prometheus that scrapes the agents, also: limit_refusals, breaker_trips.
  Each row: rule, subject, why (the numbers that made it fire), suggestion.
  docs/reports.md describes every rule and its thresholds.
USAGE
}

# prom_query URL PROMQL AT: Prometheus' JSON answer to an instant query at AT (Unix
# seconds); fails with a message when Prometheus does not answer.
prom_query() {
	curl -fsS --max-time 10 -G --data-urlencode "query=$2" --data-urlencode "time=$3" \
		"${1%/}/api/v1/query" || die "advise: Prometheus at $1 did not answer the query: $2"
}

advise_cmd() {
	local days=30 at='' prom=${JAIROUTER_PROMETHEUS:-} format=table refusals='' trips='' ts w=""
	while (($#)); do
		[[ $1 == -h || $1 == --help || $1 == help ]] && advise_usage && return 0
		(($# >= 2)) || usage_error "advise: $1 needs a value ('advise --help')"
		case $1 in
		--days)
			[[ $2 =~ ^[1-9][0-9]{0,3}$ ]] || usage_error "advise: --days takes 1 to 9999 (got '$2')"
			days=$2
			;;
		--at) at=$2 ;;
		--prometheus) prom=$2 ;;
		--format)
			[[ $2 =~ ^(table|csv|json)$ ]] || usage_error "advise: --format table|csv|json (got '$2')"
			format=$2
			;;
		*) usage_error "advise: unknown option '$1' ('advise --help')" ;;
		esac
		shift 2
	done
	[[ -n $at ]] || at=$(date -u '+%Y-%m-%d %H:%M:%SZ')
	if [[ -n $prom ]]; then
		ts=$(sql -At -v at="$at" <<<"SELECT extract(epoch FROM :'at'::timestamptz)::bigint;")
		w=$((days < 7 ? days : 7))d
		refusals=$(prom_query "$prom" "(sum by (tenant, scope, dimension) (increase(jairouter_tenant_limit_refusals_total[$w])) >= 10) / on (tenant) group_left sum by (tenant) (increase(jairouter_tenant_requests_total[$w])) >= 0.1" "$ts")
		trips=$(prom_query "$prom" "sum by (backend, server) (increase(jairouter_lb_breaker_opened_total[$w])) >= 3" "$ts")
	fi
	advise_report "$format" -v at="$at" -v days="$days" -v refusals="$refusals" -v trips="$trips" -v w="$w"
}

# advise_report FORMAT PSQL_VARS...: the PostgreSQL rules and the Prometheus answers
# (JSON, parsed here by PostgreSQL) as one list.
advise_report() {
	local format=$1 q
	shift
	q=$(
		cat <<'SQL'
WITH a AS (
	SELECT 1 AS o, * FROM jairouter.advice(:'at'::timestamptz, :'days'::integer)
	UNION ALL
	SELECT 2, 'limit_refusals', 'tenant ' || (r -> 'metric' ->> 'tenant') || ', ' || (r -> 'metric' ->> 'scope')
			|| ' ' || (r -> 'metric' ->> 'dimension') || ' limits',
		format('limit refusals were %s%% of the tenant''s requests over the last %s (Prometheus)',
			round(100 * (r -> 'value' ->> 1)::numeric, 1), :'w'),
		'raise the limit if the traffic is legitimate (jairouterctl usage --tenant ' || (r -> 'metric' ->> 'tenant')
			|| ' --by key,user shows who), else ask the tenant to spread it'
	FROM json_array_elements(coalesce(NULLIF(:'refusals', '')::json -> 'data' -> 'result', '[]')) r
	UNION ALL
	SELECT 3, 'breaker_trips', 'server ' || (r -> 'metric' ->> 'backend') || '/' || (r -> 'metric' ->> 'server'),
		format('its circuit breaker opened %s times in the last %s (Prometheus)',
			round((r -> 'value' ->> 1)::numeric), :'w'),
		'check the server (docs/observability.md, JairouterBreakerOpen); take it out of the backend or give its models a fallback'
	FROM json_array_elements(coalesce(NULLIF(:'trips', '')::json -> 'data' -> 'result', '[]')) r
)
SQL
	)
	case $format in
	json)
		sql -At "$@" <<<"$q SELECT coalesce(json_agg(x), '[]') FROM (SELECT rule, subject, why, suggestion FROM a ORDER BY o, rule, subject) x;"
		;;
	csv)
		sql --csv "$@" <<<"$q SELECT rule, subject, why, suggestion FROM a ORDER BY o, rule, subject;"
		;;
	*)
		sql -At "$@" <<<"$q SELECT coalesce(string_agg(format(E'%s: %s\n  why: %s\n  do:  %s', rule, subject, why, suggestion), E'\n' ORDER BY o, rule, subject), 'no advice') FROM a;"
		;;
	esac
}
