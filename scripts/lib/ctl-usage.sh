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
