-- 006_limits_usage: rate limits, quotas and budgets (jairouter.limits), and the usage the
-- gateway measured (jairouter.usage_daily), with views per tenant, model and day.
-- docs/limits.md is the operator's guide.
--
-- Idempotent: every statement can run again on a database that already has it.

-- ---- limit definitions ---------------------------------------------------------------

-- One row is one limit. Filters: tenant_id, key_id, model_id (NULL = any). scope: what is
-- counted together. dimension: what is counted. A request is subject to every matching
-- row, except that among rows of the same scope, dimension and window (or period) only
-- the most specific applies (key > tenant + model > tenant > model > global): a tenant
-- row is the default of its keys, a key or model row overrides it.
--
--   dimension  algorithm                                          window / period
--   requests   token_bucket, leaky_bucket, sliding_window, warmup window_ms
--   tokens     token_bucket, leaky_bucket, sliding_window, warmup window_ms
--   concurrent concurrency, adaptive                              -
--   quota      day, month   (tokens per UTC day or month)         -
--   budget     day, month   (amount in the catalogue's currency, from model prices)
CREATE TABLE IF NOT EXISTS jairouter.limits (
	id          bigserial PRIMARY KEY,
	tenant_id   bigint NULL REFERENCES jairouter.tenants (id) ON DELETE CASCADE,
	key_id      bigint NULL REFERENCES jairouter.api_keys (id) ON DELETE CASCADE,
	model_id    bigint NULL REFERENCES jairouter.models (id) ON DELETE CASCADE,
	scope       text NOT NULL CONSTRAINT limits_scope_check
		CHECK (scope IN ('tenant', 'key', 'user', 'ip', 'model', 'tenant_model', 'backend',
			'server')),
	dimension   text NOT NULL CONSTRAINT limits_dimension_check
		CHECK (dimension IN ('requests', 'tokens', 'concurrent', 'quota', 'budget')),
	algorithm   text NOT NULL CONSTRAINT limits_algorithm_check
		CHECK (algorithm IN ('token_bucket', 'leaky_bucket', 'sliding_window', 'warmup',
			'concurrency', 'adaptive', 'day', 'month')),
	amount      numeric(20,6) NOT NULL CONSTRAINT limits_amount_check CHECK (amount > 0),
	window_ms   bigint NULL CONSTRAINT limits_window_check CHECK (window_ms IS NULL OR window_ms > 0),
	burst       bigint NULL CONSTRAINT limits_burst_check CHECK (burst IS NULL OR burst > 0),
	-- warmup: the ramp (ms) and the cold rate divisor; adaptive: the floor and the latency
	-- above which a completion counts as slow.
	warmup_ms   bigint NULL CONSTRAINT limits_warmup_check CHECK (warmup_ms IS NULL OR warmup_ms > 0),
	cold_factor integer NOT NULL DEFAULT 3 CONSTRAINT limits_cold_check CHECK (cold_factor >= 1),
	min_limit   integer NOT NULL DEFAULT 1 CONSTRAINT limits_min_check CHECK (min_limit >= 1),
	latency_target_ms bigint NOT NULL DEFAULT 30000
		CONSTRAINT limits_latency_check CHECK (latency_target_ms > 0),
	enabled     boolean NOT NULL DEFAULT true,
	note        text NULL,
	created_at  timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT limits_shape_check CHECK (
		CASE dimension
		WHEN 'requests' THEN algorithm IN ('token_bucket', 'leaky_bucket', 'sliding_window', 'warmup')
			AND window_ms IS NOT NULL
		WHEN 'tokens' THEN algorithm IN ('token_bucket', 'leaky_bucket', 'sliding_window', 'warmup')
			AND window_ms IS NOT NULL
		WHEN 'concurrent' THEN algorithm IN ('concurrency', 'adaptive')
		ELSE algorithm IN ('day', 'month')
		END),
	CONSTRAINT limits_warmup_shape_check CHECK (algorithm <> 'warmup' OR warmup_ms IS NOT NULL),
	-- Whole units except for budgets (money).
	CONSTRAINT limits_integer_check CHECK (dimension = 'budget' OR amount = trunc(amount))
);
CREATE INDEX IF NOT EXISTS limits_tenant_idx ON jairouter.limits (tenant_id);
CREATE INDEX IF NOT EXISTS limits_key_idx ON jairouter.limits (key_id);

-- A key row must belong to the tenant it names (or name none: the key implies it).
CREATE OR REPLACE FUNCTION jairouter.limits_fill_tenant() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.key_id IS NOT NULL THEN
		NEW.tenant_id := (SELECT tenant_id FROM jairouter.api_keys WHERE id = NEW.key_id);
	END IF;
	RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS limits_fill_tenant ON jairouter.limits;
CREATE TRIGGER limits_fill_tenant BEFORE INSERT OR UPDATE ON jairouter.limits
	FOR EACH ROW EXECUTE FUNCTION jairouter.limits_fill_tenant();

SELECT jairouter.install_notify('limits');

-- set_limit(scope, dimension, algorithm, amount, window_ms, tenant, key prefix, model):
-- adds a limit by names; returns its id. Tenant, key and model may be NULL (any).
CREATE OR REPLACE FUNCTION jairouter.set_limit(p_scope text, p_dimension text, p_algorithm text,
	p_amount numeric, p_window_ms bigint, p_tenant text DEFAULT NULL, p_key_prefix text DEFAULT NULL,
	p_model text DEFAULT NULL, p_burst bigint DEFAULT NULL, p_warmup_ms bigint DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	t bigint; k bigint; m bigint; r bigint;
BEGIN
	IF p_tenant IS NOT NULL THEN
		SELECT id INTO t FROM jairouter.tenants WHERE name = p_tenant;
		IF t IS NULL THEN
			RAISE EXCEPTION 'no tenant named %', p_tenant USING ERRCODE = 'no_data_found';
		END IF;
	END IF;
	IF p_key_prefix IS NOT NULL THEN
		SELECT id INTO k FROM jairouter.api_keys WHERE prefix = p_key_prefix;
		IF k IS NULL THEN
			RAISE EXCEPTION 'no key with prefix %', p_key_prefix USING ERRCODE = 'no_data_found';
		END IF;
	END IF;
	IF p_model IS NOT NULL THEN
		SELECT id INTO m FROM jairouter.models WHERE name = p_model;
		IF m IS NULL THEN
			RAISE EXCEPTION 'no model named %', p_model USING ERRCODE = 'no_data_found';
		END IF;
	END IF;
	INSERT INTO jairouter.limits (tenant_id, key_id, model_id, scope, dimension, algorithm,
		amount, window_ms, burst, warmup_ms)
	VALUES (t, k, m, p_scope, p_dimension, p_algorithm, p_amount, p_window_ms, p_burst, p_warmup_ms)
	RETURNING id INTO r;
	RETURN r;
END
$$;

-- ---- usage ---------------------------------------------------------------------------

-- Usage measured by the gateway, per tenant, key, model and UTC day. The agents add to
-- these rows in batches (one statement per flush); `estimated_requests` counts requests
-- whose usage the upstream did not report (estimated from the request). cost is in the
-- catalogue's currency, at the prices in force when the request ended.
CREATE TABLE IF NOT EXISTS jairouter.usage_daily (
	day               date NOT NULL,
	tenant_id         bigint NOT NULL,
	key_id            bigint NOT NULL,
	model_id          bigint NOT NULL,
	requests          bigint NOT NULL DEFAULT 0,
	prompt_tokens     bigint NOT NULL DEFAULT 0,
	completion_tokens bigint NOT NULL DEFAULT 0,
	estimated_requests bigint NOT NULL DEFAULT 0,
	cost              numeric(20,6) NOT NULL DEFAULT 0,
	updated_at        timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (day, tenant_id, key_id, model_id)
);
CREATE INDEX IF NOT EXISTS usage_daily_tenant_idx ON jairouter.usage_daily (tenant_id, day);

-- Batches already applied, so that a batch re-sent after a lost acknowledgement is not
-- counted twice (agent = a random id per agent process, seq = its batch number).
CREATE TABLE IF NOT EXISTS jairouter.usage_batches (
	agent      text NOT NULL,
	seq        bigint NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (agent, seq)
);

-- "Usage and cost per tenant per model per day", by name.
CREATE OR REPLACE VIEW jairouter.usage_by_tenant_model_day AS
SELECT u.day, t.name AS tenant, m.name AS model,
	sum(u.requests) AS requests, sum(u.prompt_tokens) AS prompt_tokens,
	sum(u.completion_tokens) AS completion_tokens,
	sum(u.prompt_tokens + u.completion_tokens) AS total_tokens,
	sum(u.estimated_requests) AS estimated_requests, sum(u.cost) AS cost
FROM jairouter.usage_daily u
LEFT JOIN jairouter.tenants t ON t.id = u.tenant_id
LEFT JOIN jairouter.models m ON m.id = u.model_id
GROUP BY u.day, t.name, m.name;

-- The same per key (prefix only: never the key).
CREATE OR REPLACE VIEW jairouter.usage_by_key_day AS
SELECT u.day, t.name AS tenant, k.prefix AS key_prefix, m.name AS model, u.requests, u.prompt_tokens,
	u.completion_tokens, u.estimated_requests, u.cost
FROM jairouter.usage_daily u
LEFT JOIN jairouter.tenants t ON t.id = u.tenant_id
LEFT JOIN jairouter.api_keys k ON k.id = u.key_id
LEFT JOIN jairouter.models m ON m.id = u.model_id;

-- Keep the batch ledger short: entries older than 7 days can no longer be re-sent.
CREATE OR REPLACE FUNCTION jairouter.usage_prune_batches() RETURNS bigint
LANGUAGE sql AS $$
	WITH d AS (DELETE FROM jairouter.usage_batches WHERE applied_at < now() - interval '7 days'
		RETURNING 1)
	SELECT count(*) FROM d
$$;
