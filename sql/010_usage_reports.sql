-- 010_usage_reports: usage per hour and end user (jairouter.usage_hourly), the cap that
-- bounds its end users per tenant and day, the failed-request count, and the views that
-- `jairouterctl usage` and `jairouterctl advise` read. docs/reports.md is the guide.
--
-- Idempotent: every statement can run again on a database that already has it.

-- ---- settings ------------------------------------------------------------------------

-- One row. users_per_tenant_day: how many distinct end users a tenant keeps per UTC day
-- in usage_hourly; the usage of further users that day is recorded under the reserved
-- end user '(other)'. retention_days: how long usage_hourly and usage_users keep rows
-- (usage_prune_hourly; usage_daily is kept for good).
CREATE TABLE IF NOT EXISTS jairouter.usage_settings (
	id                   boolean PRIMARY KEY DEFAULT true CONSTRAINT usage_settings_one CHECK (id),
	users_per_tenant_day integer NOT NULL DEFAULT 1000
		CONSTRAINT usage_settings_users_check CHECK (users_per_tenant_day BETWEEN 1 AND 1000000),
	retention_days       integer NOT NULL DEFAULT 90
		CONSTRAINT usage_settings_retention_check CHECK (retention_days BETWEEN 1 AND 3660)
);
INSERT INTO jairouter.usage_settings (id) VALUES (true) ON CONFLICT DO NOTHING;

-- ---- usage per hour and end user -----------------------------------------------------

-- The same measure as usage_daily (the agents write both in one statement), per UTC hour
-- and end user: a verified token's `sub`, else the value of the user header
-- (JR_USER_HEADER), else '' (no end user). End-user ids are stored as the tenant gave
-- them (at most 128 bytes, control characters and invalid UTF-8 replaced by '?'); never
-- an API key. failed_requests: requests that ended with a status of 500 or more, or
-- without a response, except when the client went away first.
CREATE TABLE IF NOT EXISTS jairouter.usage_hourly (
	hour              timestamptz NOT NULL,
	tenant_id         bigint NOT NULL,
	key_id            bigint NOT NULL,
	model_id          bigint NOT NULL,
	end_user          text NOT NULL DEFAULT ''
		CONSTRAINT usage_hourly_user_check CHECK (octet_length(end_user) <= 128),
	requests          bigint NOT NULL DEFAULT 0,
	prompt_tokens     bigint NOT NULL DEFAULT 0,
	completion_tokens bigint NOT NULL DEFAULT 0,
	estimated_requests bigint NOT NULL DEFAULT 0,
	failed_requests   bigint NOT NULL DEFAULT 0,
	cost              numeric(20,6) NOT NULL DEFAULT 0,
	updated_at        timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (hour, tenant_id, key_id, model_id, end_user)
);
CREATE INDEX IF NOT EXISTS usage_hourly_tenant_idx ON jairouter.usage_hourly (tenant_id, hour);
CREATE INDEX IF NOT EXISTS usage_hourly_model_idx ON jairouter.usage_hourly (model_id, hour);

ALTER TABLE jairouter.usage_daily
	ADD COLUMN IF NOT EXISTS failed_requests bigint NOT NULL DEFAULT 0;

-- The end users usage_hourly keeps per tenant and UTC day (the cap's ledger).
CREATE TABLE IF NOT EXISTS jairouter.usage_users (
	day       date NOT NULL,
	tenant_id bigint NOT NULL,
	end_user  text NOT NULL,
	PRIMARY KEY (tenant_id, day, end_user)
);

-- usage_user(day, tenant, user): the end user to record: the user itself while the
-- tenant has fewer than users_per_tenant_day users that day (or already has this one),
-- else '(other)'. '' (no end user) stays ''. Serialised per tenant and day (advisory
-- lock), so concurrent agents never keep more than the cap.
CREATE OR REPLACE FUNCTION jairouter.usage_user(p_day date, p_tenant bigint, p_user text)
RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	cap integer;
	n integer;
BEGIN
	IF p_user = '' OR p_user = '(other)' THEN
		RETURN p_user;
	END IF;
	IF EXISTS (SELECT 1 FROM jairouter.usage_users
			WHERE tenant_id = p_tenant AND day = p_day AND end_user = p_user) THEN
		RETURN p_user;
	END IF;
	PERFORM pg_advisory_xact_lock(hashtextextended('jairouter.usage_users:' || p_tenant || ':' || p_day, 0));
	SELECT users_per_tenant_day INTO cap FROM jairouter.usage_settings;
	SELECT count(*) INTO n FROM jairouter.usage_users WHERE tenant_id = p_tenant AND day = p_day;
	IF n >= coalesce(cap, 1000) THEN
		RETURN '(other)';
	END IF;
	INSERT INTO jairouter.usage_users (day, tenant_id, end_user) VALUES (p_day, p_tenant, p_user)
		ON CONFLICT DO NOTHING;
	RETURN p_user;
END
$$;

-- usage_record(agent, seq, hours, tenants, keys, models, users, requests, prompt tokens,
-- completion tokens, estimated, failed, cost in micro-units): one agent batch, applied
-- once per (agent, seq) to usage_daily and usage_hourly. Returns the rows it added to
-- (0 for a batch already applied). Hours are Unix seconds of the UTC hour's start.
CREATE OR REPLACE FUNCTION jairouter.usage_record(p_agent text, p_seq bigint, p_hour bigint[],
	p_tenant bigint[], p_key bigint[], p_model bigint[], p_user text[], p_requests bigint[],
	p_pt bigint[], p_ct bigint[], p_est bigint[], p_failed bigint[], p_cost bigint[])
RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	n bigint;
	v record;
	kept text;
BEGIN
	INSERT INTO jairouter.usage_batches (agent, seq) VALUES (p_agent, p_seq) ON CONFLICT DO NOTHING;
	IF NOT FOUND THEN
		RETURN 0;
	END IF;
	CREATE TEMPORARY TABLE IF NOT EXISTS jr_usage_batch (h timestamptz, d date, t bigint,
		k bigint, m bigint, u text, r bigint, pt bigint, ct bigint, e bigint, f bigint,
		c numeric) ON COMMIT DROP;
	TRUNCATE jr_usage_batch;
	INSERT INTO jr_usage_batch
	SELECT to_timestamp(x.h), (to_timestamp(x.h) AT TIME ZONE 'UTC')::date, x.t, x.k, x.m,
		coalesce(x.u, ''), x.r, x.pt, x.ct, x.e, x.f, x.c::numeric / 1000000
	FROM unnest(p_hour, p_tenant, p_key, p_model, p_user, p_requests, p_pt, p_ct, p_est,
		p_failed, p_cost) AS x(h, t, k, m, u, r, pt, ct, e, f, c);
	GET DIAGNOSTICS n = ROW_COUNT;
	INSERT INTO jairouter.usage_daily AS u (day, tenant_id, key_id, model_id, requests,
		prompt_tokens, completion_tokens, estimated_requests, failed_requests, cost)
	SELECT d, t, k, m, sum(r), sum(pt), sum(ct), sum(e), sum(f), sum(c)
	FROM jr_usage_batch GROUP BY d, t, k, m
	ON CONFLICT (day, tenant_id, key_id, model_id) DO UPDATE SET
		requests = u.requests + EXCLUDED.requests,
		prompt_tokens = u.prompt_tokens + EXCLUDED.prompt_tokens,
		completion_tokens = u.completion_tokens + EXCLUDED.completion_tokens,
		estimated_requests = u.estimated_requests + EXCLUDED.estimated_requests,
		failed_requests = u.failed_requests + EXCLUDED.failed_requests,
		cost = u.cost + EXCLUDED.cost, updated_at = now();
	-- One user at a time, in a stable order, so that which users are kept at the cap
	-- does not depend on the order of the batch.
	FOR v IN SELECT DISTINCT b.d, b.t, b.u FROM jr_usage_batch b WHERE b.u <> '' ORDER BY 1, 2, 3
	LOOP
		kept := jairouter.usage_user(v.d, v.t, v.u);
		IF kept <> v.u THEN
			UPDATE jr_usage_batch b SET u = kept WHERE b.d = v.d AND b.t = v.t AND b.u = v.u;
		END IF;
	END LOOP;
	INSERT INTO jairouter.usage_hourly AS u (hour, tenant_id, key_id, model_id, end_user,
		requests, prompt_tokens, completion_tokens, estimated_requests, failed_requests, cost)
	SELECT h, t, k, m, b.u, sum(r), sum(pt), sum(ct), sum(e), sum(f), sum(c)
	FROM jr_usage_batch b GROUP BY h, t, k, m, b.u
	ON CONFLICT (hour, tenant_id, key_id, model_id, end_user) DO UPDATE SET
		requests = u.requests + EXCLUDED.requests,
		prompt_tokens = u.prompt_tokens + EXCLUDED.prompt_tokens,
		completion_tokens = u.completion_tokens + EXCLUDED.completion_tokens,
		estimated_requests = u.estimated_requests + EXCLUDED.estimated_requests,
		failed_requests = u.failed_requests + EXCLUDED.failed_requests,
		cost = u.cost + EXCLUDED.cost, updated_at = now();
	TRUNCATE jr_usage_batch;
	RETURN n;
END
$$;

-- Drops usage_hourly and usage_users rows older than retention_days (or p_days).
-- Returns the rows removed. usage_daily is not touched.
CREATE OR REPLACE FUNCTION jairouter.usage_prune_hourly(p_days integer DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	keep integer := coalesce(p_days, (SELECT retention_days FROM jairouter.usage_settings), 90);
	a bigint;
	b bigint;
BEGIN
	DELETE FROM jairouter.usage_hourly WHERE hour < now() - make_interval(days => keep);
	GET DIAGNOSTICS a = ROW_COUNT;
	DELETE FROM jairouter.usage_users
		WHERE day < (now() AT TIME ZONE 'UTC')::date - keep;
	GET DIAGNOSTICS b = ROW_COUNT;
	RETURN a + b;
END
$$;

-- ---- report views --------------------------------------------------------------------

-- The label a key shows in reports: its prefix (never the key), '(token)' for requests
-- authenticated by a token (no API key), '(deleted)' for a key no longer in the catalogue.
CREATE OR REPLACE FUNCTION jairouter.usage_key_label(p_key_id bigint) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN p_key_id = 0 THEN '(token)'
		ELSE coalesce((SELECT prefix FROM jairouter.api_keys WHERE id = p_key_id), '(deleted)') END
$$;

-- usage_daily by name, one row per day, tenant, key and model.
CREATE OR REPLACE VIEW jairouter.usage_daily_report AS
SELECT u.day, coalesce(t.name, '(deleted)') AS tenant, jairouter.usage_key_label(u.key_id) AS key,
	coalesce(m.name, '(deleted)') AS model, u.requests, u.prompt_tokens, u.completion_tokens,
	u.prompt_tokens + u.completion_tokens AS total_tokens, u.estimated_requests,
	u.failed_requests, u.cost
FROM jairouter.usage_daily u
LEFT JOIN jairouter.tenants t ON t.id = u.tenant_id
LEFT JOIN jairouter.models m ON m.id = u.model_id;

-- usage_hourly by name, one row per hour, tenant, key, model and end user; hour_of_day
-- is the UTC hour (0-23).
CREATE OR REPLACE VIEW jairouter.usage_hourly_report AS
SELECT u.hour, (u.hour AT TIME ZONE 'UTC')::date AS day,
	extract(hour FROM u.hour AT TIME ZONE 'UTC')::integer AS hour_of_day,
	coalesce(t.name, '(deleted)') AS tenant, jairouter.usage_key_label(u.key_id) AS key,
	coalesce(m.name, '(deleted)') AS model, u.end_user AS "user", u.requests, u.prompt_tokens,
	u.completion_tokens, u.prompt_tokens + u.completion_tokens AS total_tokens,
	u.estimated_requests, u.failed_requests, u.cost
FROM jairouter.usage_hourly u
LEFT JOIN jairouter.tenants t ON t.id = u.tenant_id
LEFT JOIN jairouter.models m ON m.id = u.model_id;

-- The monthly cost report: one row per UTC month and tenant, with the tenant's labels
-- (e.g. {"team": "search"}) for a platform team's charge-back.
CREATE OR REPLACE VIEW jairouter.usage_monthly_by_tenant AS
SELECT to_char(date_trunc('month', u.day), 'YYYY-MM') AS month,
	coalesce(t.name, '(deleted)') AS tenant, coalesce(t.labels, '{}') AS labels,
	sum(u.requests) AS requests, sum(u.prompt_tokens) AS prompt_tokens,
	sum(u.completion_tokens) AS completion_tokens,
	sum(u.prompt_tokens + u.completion_tokens) AS total_tokens,
	sum(u.failed_requests) AS failed_requests, sum(u.cost) AS cost
FROM jairouter.usage_daily u
LEFT JOIN jairouter.tenants t ON t.id = u.tenant_id
GROUP BY 1, t.name, t.labels;

-- ---- advice (jairouterctl advise; docs/reports.md, "Advice") ---------------------------

-- Every rule returns rows of (rule, subject, why, suggestion) as of p_now, from the
-- usage tables, the limits and the catalogue; jairouter.advice runs them all.

-- Usage (tokens, or cost in micro-units for budgets) a limit row counts, per UTC day.
CREATE OR REPLACE FUNCTION jairouter.advice_limit_usage(p_limit jairouter.limits, p_from date, p_to date)
RETURNS TABLE (day date, used numeric) LANGUAGE sql STABLE AS $$
	SELECT u.day, sum(CASE WHEN p_limit.dimension = 'budget' THEN u.cost
		ELSE u.prompt_tokens + u.completion_tokens END)
	FROM jairouter.usage_daily u
	WHERE u.day >= p_from AND u.day < p_to
		AND (p_limit.tenant_id IS NULL OR u.tenant_id = p_limit.tenant_id)
		AND (p_limit.key_id IS NULL OR u.key_id = p_limit.key_id)
		AND (p_limit.model_id IS NULL OR u.model_id = p_limit.model_id)
	GROUP BY u.day
$$;

-- A number as the advice prints it: at most 6 decimals, no trailing zeros.
CREATE OR REPLACE FUNCTION jairouter.advice_num(v numeric) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT trim_scale(round(v, 6))::text
$$;

-- What a limit row is, in words: "limit 7 (budget 50 per month, tenant search)".
CREATE OR REPLACE FUNCTION jairouter.advice_limit_name(p_limit jairouter.limits) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT 'limit ' || p_limit.id || ' (' || p_limit.dimension || ' '
		|| jairouter.advice_num(p_limit.amount) || ' per ' || p_limit.algorithm
		|| coalesce(', tenant ' || (SELECT name FROM jairouter.tenants WHERE id = p_limit.tenant_id), '')
		|| coalesce(', key ' || (SELECT prefix FROM jairouter.api_keys WHERE id = p_limit.key_id), '')
		|| coalesce(', model ' || (SELECT name FROM jairouter.models WHERE id = p_limit.model_id), '')
		|| ')'
$$;

-- limit_unused: a quota or budget whose busiest period (day or month) in the last p_days
-- used less than p_share of it; only limits older than the window.
CREATE OR REPLACE FUNCTION jairouter.advise_limit_unused(p_now timestamptz DEFAULT now(),
	p_days integer DEFAULT 30, p_share numeric DEFAULT 0.10)
RETURNS TABLE (rule text, subject text, why text, suggestion text) LANGUAGE sql STABLE AS $$
	WITH w AS (SELECT (p_now AT TIME ZONE 'UTC')::date AS today),
	per AS (
		SELECT l, coalesce(max(p.used), 0) AS peak
		FROM jairouter.limits l, w,
		LATERAL (SELECT CASE WHEN l.algorithm = 'month' THEN date_trunc('month', d.day)::date
				ELSE d.day END AS period, sum(d.used) AS used
			FROM jairouter.advice_limit_usage(l, w.today - p_days, w.today + 1) d
			GROUP BY 1) p
		WHERE l.enabled AND l.dimension IN ('quota', 'budget')
			AND l.created_at < p_now - make_interval(days => p_days)
		GROUP BY l
		UNION ALL
		SELECT l, 0 FROM jairouter.limits l, w
		WHERE l.enabled AND l.dimension IN ('quota', 'budget')
			AND l.created_at < p_now - make_interval(days => p_days)
			AND NOT EXISTS (SELECT 1 FROM jairouter.advice_limit_usage(l, w.today - p_days, w.today + 1))
	)
	SELECT 'limit_unused', jairouter.advice_limit_name(l),
		format('the busiest %s of the last %s days used %s, %s%% of the limit (under %s%%)',
			CASE (l).algorithm WHEN 'month' THEN 'month' ELSE 'day' END, p_days,
			jairouter.advice_num(peak), jairouter.advice_num(round(100 * peak / (l).amount, 2)),
			round(100 * p_share)),
		CASE WHEN peak = 0 THEN 'remove it, or check that the traffic it was meant for still exists'
			ELSE format('lower it towards twice the peak (%s) so that it still catches a runaway client',
				jairouter.advice_num(2 * peak)) END
	FROM per WHERE peak < p_share * (l).amount
$$;

-- key_unused: an active, unexpired key older than p_days without a request in them.
CREATE OR REPLACE FUNCTION jairouter.advise_key_unused(p_now timestamptz DEFAULT now(),
	p_days integer DEFAULT 30)
RETURNS TABLE (rule text, subject text, why text, suggestion text) LANGUAGE sql STABLE AS $$
	SELECT 'key_unused', 'key ' || k.prefix || ' (' || k.name || ', tenant ' || t.name || ')',
		format('no request in the last %s days (last used: %s); created %s', p_days,
			coalesce((SELECT max(u.day)::text FROM jairouter.usage_daily u WHERE u.key_id = k.id),
				'never'), to_char(k.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')),
		'revoke it (jairouterctl key revoke ' || k.prefix || '): an unused key is only a risk'
	FROM jairouter.api_keys k JOIN jairouter.tenants t ON t.id = k.tenant_id
	WHERE k.status = 'active' AND (k.expires_at IS NULL OR k.expires_at > p_now)
		AND k.created_at < p_now - make_interval(days => p_days)
		AND NOT EXISTS (SELECT 1 FROM jairouter.usage_daily u WHERE u.key_id = k.id
			AND u.day >= (p_now AT TIME ZONE 'UTC')::date - p_days)
$$;

-- model_errors: a model whose requests failed (status >= 500 or no response) at least
-- p_rate of the time over the last p_days (at least p_min requests) and that has no
-- fallback chain.
CREATE OR REPLACE FUNCTION jairouter.advise_model_errors(p_now timestamptz DEFAULT now(),
	p_days integer DEFAULT 7, p_rate numeric DEFAULT 0.05, p_min bigint DEFAULT 20)
RETURNS TABLE (rule text, subject text, why text, suggestion text) LANGUAGE sql STABLE AS $$
	SELECT 'model_errors', 'model ' || m.name,
		format('%s of %s requests failed in the last %s days (%s%%, threshold %s%%) and it has no fallback',
			s.f, s.r, p_days, round(100.0 * s.f / s.r, 1), round(100 * p_rate)),
		'give it a fallback chain (jairouter.set_model_fallbacks, docs/routing.md) and check its servers'
	FROM (SELECT u.model_id, sum(u.requests) AS r, sum(u.failed_requests) AS f
		FROM jairouter.usage_daily u
		WHERE u.day >= (p_now AT TIME ZONE 'UTC')::date - p_days
			AND u.day <= (p_now AT TIME ZONE 'UTC')::date
		GROUP BY u.model_id) s
	JOIN jairouter.models m ON m.id = s.model_id
	WHERE s.r >= p_min AND s.f >= p_rate * s.r
		AND NOT EXISTS (SELECT 1 FROM jairouter.model_fallbacks f WHERE f.model_id = m.id)
$$;

-- Whether model b can take model a's traffic: every service, the context length and the
-- capabilities of a (a context length a does not state needs none stated by b either).
CREATE OR REPLACE FUNCTION jairouter.advice_covers(b jairouter.models, a jairouter.models)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
	SELECT b.services @> a.services
		AND (b.context_length IS NULL AND a.context_length IS NULL
			OR b.context_length >= a.context_length)
		AND (b.vision OR NOT a.vision) AND (b.tools OR NOT a.tools)
		AND (b.json_mode OR NOT a.json_mode) AND (b.streaming OR NOT a.streaming)
$$;

-- cheaper_model: for a tenant's traffic on a priced model over the last p_days, the
-- active model it may use whose capabilities cover it and whose prices would have cost at
-- least p_saving less; the largest saving only.
CREATE OR REPLACE FUNCTION jairouter.advise_cheaper_model(p_now timestamptz DEFAULT now(),
	p_days integer DEFAULT 30, p_saving numeric DEFAULT 0.20)
RETURNS TABLE (rule text, subject text, why text, suggestion text) LANGUAGE sql STABLE AS $$
	WITH use AS (
		SELECT u.tenant_id, u.model_id, sum(u.requests) AS r, sum(u.prompt_tokens) AS pt,
			sum(u.completion_tokens) AS ct, sum(u.cost) AS cost
		FROM jairouter.usage_daily u
		WHERE u.day >= (p_now AT TIME ZONE 'UTC')::date - p_days
			AND u.day <= (p_now AT TIME ZONE 'UTC')::date
		GROUP BY u.tenant_id, u.model_id HAVING sum(u.cost) > 0
	), best AS (
		SELECT DISTINCT ON (use.tenant_id, use.model_id) use.*, a.name AS a_name, b.name AS b_name,
			(use.pt * b.price_input_per_mtok + use.ct * b.price_output_per_mtok) / 1000000 AS b_cost
		FROM use JOIN jairouter.models a ON a.id = use.model_id
		JOIN jairouter.models b ON b.id <> a.id AND b.status = 'active'
			AND b.price_input_per_mtok IS NOT NULL AND b.price_output_per_mtok IS NOT NULL
			AND jairouter.advice_covers(b, a) AND jairouter.tenant_may_use(use.tenant_id, b.id)
		ORDER BY use.tenant_id, use.model_id,
			use.pt * b.price_input_per_mtok + use.ct * b.price_output_per_mtok, b.name
	)
	SELECT 'cheaper_model', 'tenant ' || t.name || ' on model ' || best.a_name,
		format('%s requests (%s prompt + %s completion tokens) cost %s in the last %s days; %s covers the services, context length and capabilities of %s and would have cost %s (%s%% less)',
			best.r, best.pt, best.ct, jairouter.advice_num(best.cost), p_days, best.b_name,
			best.a_name, jairouter.advice_num(best.b_cost), round(100 * (1 - best.b_cost / best.cost))),
		format('try %s for this tenant''s traffic (compare quality first, e.g. a virtual model with a share of it, docs/routing.md)',
			best.b_name)
	FROM best JOIN jairouter.tenants t ON t.id = best.tenant_id
	WHERE best.b_cost <= (1 - p_saving) * best.cost
$$;

-- budget_forecast: a quota or budget of the current day or month whose use so far, at
-- the same pace until the period ends, reaches its amount; once at least p_elapsed of the
-- period has passed (earlier, a pace means little).
CREATE OR REPLACE FUNCTION jairouter.advise_budget_forecast(p_now timestamptz DEFAULT now(),
	p_elapsed numeric DEFAULT 0.10)
RETURNS TABLE (rule text, subject text, why text, suggestion text) LANGUAGE sql STABLE AS $$
	WITH p AS (
		SELECT l, date_trunc(l.algorithm, p_now AT TIME ZONE 'UTC') AS start,
			date_trunc(l.algorithm, p_now AT TIME ZONE 'UTC')
				+ CASE l.algorithm WHEN 'month' THEN interval '1 month' ELSE interval '1 day' END AS stop
		FROM jairouter.limits l
		WHERE l.enabled AND l.dimension IN ('quota', 'budget')
	), f AS (
		SELECT p.*, coalesce((SELECT sum(d.used) FROM jairouter.advice_limit_usage(p.l,
				p.start::date, (p_now AT TIME ZONE 'UTC')::date + 1) d), 0) AS used,
			extract(epoch FROM (p_now AT TIME ZONE 'UTC') - p.start)
				/ extract(epoch FROM p.stop - p.start) AS elapsed
		FROM p
	)
	SELECT 'budget_forecast', jairouter.advice_limit_name(l),
		CASE WHEN used >= (l).amount THEN
			format('used %s of %s already, with %s%% of the %s left', jairouter.advice_num(used),
				jairouter.advice_num((l).amount), round(100 * (1 - elapsed)), (l).algorithm)
		ELSE format('used %s of %s in %s%% of the %s: at this pace it runs out around %s UTC',
			jairouter.advice_num(used), jairouter.advice_num((l).amount), round(100 * elapsed),
			(l).algorithm,
			to_char(start + (stop - start) * (elapsed * (l).amount / used), 'YYYY-MM-DD HH24:MI')) END,
		'raise it, or tell the tenant: requests will be refused with 429 insufficient_quota until '
			|| to_char(stop, 'YYYY-MM-DD HH24:MI') || ' UTC'
	FROM f
	WHERE elapsed >= p_elapsed AND used > 0 AND used / elapsed >= (l).amount
$$;

-- All the rules from PostgreSQL, in rule order.
CREATE OR REPLACE FUNCTION jairouter.advice(p_now timestamptz DEFAULT now(), p_days integer DEFAULT 30)
RETURNS TABLE (rule text, subject text, why text, suggestion text) LANGUAGE sql STABLE AS $$
	SELECT * FROM jairouter.advise_limit_unused(p_now, p_days)
	UNION ALL SELECT * FROM jairouter.advise_key_unused(p_now, p_days)
	UNION ALL SELECT * FROM jairouter.advise_model_errors(p_now, least(p_days, 7))
	UNION ALL SELECT * FROM jairouter.advise_cheaper_model(p_now, p_days)
	UNION ALL SELECT * FROM jairouter.advise_budget_forecast(p_now)
$$;
