-- 005_routing: how the agent picks a server for a model (strategy, affinity key, slow
-- start), the circuit-breaker thresholds of each backend, and per-model fallback chains.
-- docs/routing.md is the operator's guide.
--
-- A setting left NULL is inherited: strategy settings from the model's row, then its
-- backend's row, then the row of the request's service type, then the global row (the one
-- row with no scope), then the built-in defaults. Breaker thresholds come from the
-- backend's row, then the global row, then the built-in defaults: a breaker belongs to a
-- server, and a backend's servers are shared by every model routed to it.
--
-- Errors follow 002_functions.sql: P0002 (no_data_found) for a missing model; 22023
-- (invalid_parameter_value) for a bad value.
--
-- Idempotent: every statement can run again on a database that already has it.

CREATE TABLE IF NOT EXISTS jairouter.routing_policies (
	id                   bigserial PRIMARY KEY,
	model_id             bigint NULL REFERENCES jairouter.models (id) ON DELETE CASCADE,
	backend              text NULL
		CONSTRAINT routing_policies_backend_check CHECK (backend ~ '^be_[A-Za-z0-9_.:-]{1,60}$'),
	service              text NULL
		CONSTRAINT routing_policies_service_check CHECK (service = ANY (jairouter.service_names())),
	strategy             text NULL
		CONSTRAINT routing_policies_strategy_check
		CHECK (strategy IN ('haproxy', 'random', 'round_robin', 'least_conn', 'hash', 'latency')),
	-- hash: what the affinity key is; 'header' is the header HAProxy sends as `affinity`
	-- (haproxy.cfg, JR_AFFINITY_HEADER).
	hash_key             text NULL
		CONSTRAINT routing_policies_hash_key_check
		CHECK (hash_key IN ('client_ip', 'tenant', 'api_key', 'header')),
	hash_bound           numeric NULL
		CONSTRAINT routing_policies_hash_bound_check CHECK (hash_bound BETWEEN 1 AND 10),
	slow_start_ms        integer NULL
		CONSTRAINT routing_policies_slow_start_check CHECK (slow_start_ms BETWEEN 0 AND 600000),
	breaker_consecutive  integer NULL
		CONSTRAINT routing_policies_consecutive_check CHECK (breaker_consecutive BETWEEN 0 AND 10000),
	breaker_error_rate   numeric NULL
		CONSTRAINT routing_policies_error_rate_check CHECK (breaker_error_rate BETWEEN 0 AND 1),
	breaker_min_requests integer NULL
		CONSTRAINT routing_policies_min_requests_check CHECK (breaker_min_requests BETWEEN 1 AND 100000),
	breaker_window_s     integer NULL
		CONSTRAINT routing_policies_window_check CHECK (breaker_window_s BETWEEN 1 AND 60),
	breaker_open_ms      integer NULL
		CONSTRAINT routing_policies_open_check CHECK (breaker_open_ms BETWEEN 100 AND 3600000),
	breaker_probes       integer NULL
		CONSTRAINT routing_policies_probes_check CHECK (breaker_probes BETWEEN 1 AND 100),
	-- At most one scope; none is the global row.
	CONSTRAINT routing_policies_scope_check CHECK (num_nonnulls(model_id, backend, service) <= 1),
	-- Breaker thresholds belong to backends (and the global row).
	CONSTRAINT routing_policies_breaker_scope_check CHECK (
		(model_id IS NULL AND service IS NULL) OR num_nonnulls(breaker_consecutive,
			breaker_error_rate, breaker_min_requests, breaker_window_s, breaker_open_ms,
			breaker_probes) = 0)
);

CREATE UNIQUE INDEX IF NOT EXISTS routing_policies_model_idx ON jairouter.routing_policies (model_id)
	WHERE model_id IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS routing_policies_backend_idx ON jairouter.routing_policies (backend)
	WHERE backend IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS routing_policies_service_idx ON jairouter.routing_policies (service)
	WHERE service IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS routing_policies_global_idx ON jairouter.routing_policies ((true))
	WHERE model_id IS NULL AND backend IS NULL AND service IS NULL;

SELECT jairouter.install_notify('routing_policies');

-- The reason classes that trigger a fallback: no server up (down, maintenance, drained),
-- every remaining server's breaker open, every remaining server saturated (upstream 429).
CREATE OR REPLACE FUNCTION jairouter.fallback_reasons() RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
	SELECT ARRAY['down', 'circuit_open', 'saturated']
$$;

-- Ordered alternatives of a model, tried when its own servers cannot take a request for
-- one of `reasons`. Each alternative is used only if the caller may use it and it serves
-- the request's service type (and streaming, when asked).
CREATE TABLE IF NOT EXISTS jairouter.model_fallbacks (
	id                bigserial PRIMARY KEY,
	model_id          bigint NOT NULL REFERENCES jairouter.models (id) ON DELETE CASCADE,
	position          integer NOT NULL
		CONSTRAINT model_fallbacks_position_check CHECK (position BETWEEN 1 AND 8),
	fallback_model_id bigint NOT NULL REFERENCES jairouter.models (id) ON DELETE CASCADE,
	reasons           text[] NOT NULL DEFAULT jairouter.fallback_reasons()
		CONSTRAINT model_fallbacks_reasons_check CHECK (
			cardinality(reasons) >= 1 AND reasons <@ jairouter.fallback_reasons()),
	CONSTRAINT model_fallbacks_self_check CHECK (fallback_model_id <> model_id),
	CONSTRAINT model_fallbacks_position_key UNIQUE (model_id, position),
	CONSTRAINT model_fallbacks_model_key UNIQUE (model_id, fallback_model_id)
);

CREATE INDEX IF NOT EXISTS model_fallbacks_fallback_idx ON jairouter.model_fallbacks (fallback_model_id);

SELECT jairouter.install_notify('model_fallbacks');

-- Replaces the fallback chain of a model: p_fallbacks in order (an empty array removes
-- it), each with p_reasons (NULL: every reason class).
CREATE OR REPLACE FUNCTION jairouter.set_model_fallbacks(p_model text, p_fallbacks text[],
	p_reasons text[] DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	m_id bigint := jairouter.model_id(p_model);
	n integer := 0;
	f text;
BEGIN
	IF cardinality(p_fallbacks) > 8 THEN
		RAISE EXCEPTION 'a fallback chain has at most 8 models' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	DELETE FROM jairouter.model_fallbacks WHERE model_id = m_id;
	FOREACH f IN ARRAY coalesce(p_fallbacks, '{}') LOOP
		n := n + 1;
		INSERT INTO jairouter.model_fallbacks (model_id, position, fallback_model_id, reasons)
		VALUES (m_id, n, jairouter.model_id(f), coalesce(p_reasons, jairouter.fallback_reasons()));
	END LOOP;
	RETURN n;
EXCEPTION WHEN check_violation OR unique_violation THEN
	RAISE EXCEPTION 'invalid fallback chain for "%": %', p_model, SQLERRM
		USING ERRCODE = 'invalid_parameter_value';
END;
$$;

-- Sets the strategy of a model (p_strategy NULL: inherit), with its hash key when
-- p_strategy is 'hash'.
CREATE OR REPLACE FUNCTION jairouter.set_model_strategy(p_model text, p_strategy text,
	p_hash_key text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	m_id bigint := jairouter.model_id(p_model);
BEGIN
	INSERT INTO jairouter.routing_policies (model_id, strategy, hash_key)
	VALUES (m_id, p_strategy, p_hash_key)
	ON CONFLICT (model_id) WHERE model_id IS NOT NULL
	DO UPDATE SET strategy = EXCLUDED.strategy, hash_key = EXCLUDED.hash_key;
EXCEPTION WHEN check_violation THEN
	RAISE EXCEPTION 'invalid strategy for "%": %', p_model, SQLERRM
		USING ERRCODE = 'invalid_parameter_value';
END;
$$;

-- Virtual models: a catalogue model (so names, aliases, grants and listings work as for
-- any model) whose requests go to one of its members, chosen per request: the members
-- whose capabilities cover the request (service type, streaming, tools, images, context
-- length), that the caller may use and that have a usable server, cheapest first for the
-- expected tokens, preferring those within the latency budget. The virtual model's own
-- backend is never used.
CREATE TABLE IF NOT EXISTS jairouter.virtual_models (
	id                bigserial PRIMARY KEY,
	model_id          bigint NOT NULL UNIQUE REFERENCES jairouter.models (id) ON DELETE CASCADE,
	latency_budget_ms integer NULL
		CONSTRAINT virtual_models_budget_check CHECK (latency_budget_ms BETWEEN 1 AND 600000)
);

CREATE TABLE IF NOT EXISTS jairouter.virtual_model_members (
	id               bigserial PRIMARY KEY,
	virtual_model_id bigint NOT NULL REFERENCES jairouter.virtual_models (id) ON DELETE CASCADE,
	position         integer NOT NULL
		CONSTRAINT virtual_model_members_position_check CHECK (position BETWEEN 1 AND 16),
	model_id         bigint NOT NULL REFERENCES jairouter.models (id) ON DELETE CASCADE,
	CONSTRAINT virtual_model_members_position_key UNIQUE (virtual_model_id, position),
	CONSTRAINT virtual_model_members_model_key UNIQUE (virtual_model_id, model_id)
);

CREATE INDEX IF NOT EXISTS virtual_model_members_model_idx ON jairouter.virtual_model_members (model_id);

SELECT jairouter.install_notify('virtual_models');
SELECT jairouter.install_notify('virtual_model_members');

-- Makes p_model virtual over p_members (in order: ties in cost go to the first), or plain
-- again with an empty array. A member may not be virtual itself.
CREATE OR REPLACE FUNCTION jairouter.set_virtual_model(p_model text, p_members text[],
	p_latency_budget_ms integer DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	m_id bigint := jairouter.model_id(p_model);
	v_id bigint;
	n integer := 0;
	f text;
	f_id bigint;
BEGIN
	IF cardinality(p_members) > 16 THEN
		RAISE EXCEPTION 'a virtual model has at most 16 members' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	DELETE FROM jairouter.virtual_models WHERE model_id = m_id;
	IF coalesce(cardinality(p_members), 0) = 0 THEN
		RETURN 0;
	END IF;
	INSERT INTO jairouter.virtual_models (model_id, latency_budget_ms)
	VALUES (m_id, p_latency_budget_ms) RETURNING id INTO v_id;
	FOREACH f IN ARRAY p_members LOOP
		f_id := jairouter.model_id(f);
		IF f_id = m_id OR EXISTS (SELECT 1 FROM jairouter.virtual_models WHERE model_id = f_id) THEN
			RAISE EXCEPTION 'model "%" cannot be a member of "%" (virtual)', f, p_model
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		n := n + 1;
		INSERT INTO jairouter.virtual_model_members (virtual_model_id, position, model_id)
		VALUES (v_id, n, f_id);
	END LOOP;
	RETURN n;
EXCEPTION WHEN check_violation OR unique_violation THEN
	RAISE EXCEPTION 'invalid virtual model "%": %', p_model, SQLERRM
		USING ERRCODE = 'invalid_parameter_value';
END;
$$;
