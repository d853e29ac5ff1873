-- 018_cache: the response cache (docs/cache.md). A tenant opts in per model: answers to
-- identical requests (same tenant, model, path and canonical body) are served from
-- jairouter-adapter's memory for ttl_s seconds instead of reaching the model server.
--
--   jairouter.cache_policies   one row per (tenant, model) that is cached: the entry's
--                              time to live, the largest answer stored, whether the
--                              model's entries are shared by every tenant whose row says
--                              so (scope 'shared') or kept per tenant (scope 'tenant',
--                              the default), and the factor a hit's price is multiplied
--                              by (0: hits are free; 1: billed as the original).
--
-- Errors follow 002/004: P0002 for a missing row, 22023 for a bad value.
-- Idempotent: every statement can run again on a database that already has it.

CREATE TABLE IF NOT EXISTS jairouter.cache_policies (
	id               bigserial PRIMARY KEY,
	tenant_id        bigint NOT NULL REFERENCES jairouter.tenants (id) ON DELETE CASCADE,
	model_id         bigint NOT NULL REFERENCES jairouter.models (id) ON DELETE CASCADE,
	ttl_s            integer NOT NULL DEFAULT 300
		CONSTRAINT cache_policies_ttl_check CHECK (ttl_s BETWEEN 1 AND 604800),
	max_entry_bytes  integer NOT NULL DEFAULT 1048576
		CONSTRAINT cache_policies_max_entry_check CHECK (max_entry_bytes BETWEEN 1024 AND 67108864),
	scope            text NOT NULL DEFAULT 'tenant'
		CONSTRAINT cache_policies_scope_check CHECK (scope IN ('tenant', 'shared')),
	hit_price_factor double precision NOT NULL DEFAULT 0
		CONSTRAINT cache_policies_factor_check CHECK (hit_price_factor >= 0 AND hit_price_factor <= 1),
	created_at       timestamptz NOT NULL DEFAULT now(),
	UNIQUE (tenant_id, model_id)
);

SELECT jairouter.install_notify('cache_policies');

-- Turns caching on (or updates it) for a tenant and a model.
CREATE OR REPLACE FUNCTION jairouter.set_cache(p_tenant text, p_model text, p_ttl_s integer DEFAULT 300,
	p_max_entry_bytes integer DEFAULT 1048576, p_scope text DEFAULT 'tenant',
	p_hit_price_factor double precision DEFAULT 0)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	t_id bigint := (SELECT id FROM jairouter.tenants WHERE name = p_tenant);
	m_id bigint := (SELECT id FROM jairouter.models WHERE name = p_model);
	c_id bigint;
BEGIN
	IF t_id IS NULL THEN
		RAISE EXCEPTION 'tenant "%" not found', p_tenant USING ERRCODE = 'no_data_found';
	END IF;
	IF m_id IS NULL THEN
		RAISE EXCEPTION 'model "%" not found', p_model USING ERRCODE = 'no_data_found';
	END IF;
	INSERT INTO jairouter.cache_policies (tenant_id, model_id, ttl_s, max_entry_bytes, scope, hit_price_factor)
	VALUES (t_id, m_id, p_ttl_s, p_max_entry_bytes, p_scope, p_hit_price_factor)
	ON CONFLICT (tenant_id, model_id) DO UPDATE SET ttl_s = EXCLUDED.ttl_s,
		max_entry_bytes = EXCLUDED.max_entry_bytes, scope = EXCLUDED.scope,
		hit_price_factor = EXCLUDED.hit_price_factor
	RETURNING id INTO c_id;
	RETURN c_id;
EXCEPTION
	WHEN check_violation OR not_null_violation THEN
		RAISE EXCEPTION 'invalid cache policy: ttl_s 1..604800, max_entry_bytes 1024..67108864, '
			'scope tenant or shared, hit_price_factor 0..1'
			USING ERRCODE = 'invalid_parameter_value';
END;
$$;

-- Turns caching off for a tenant and a model.
CREATE OR REPLACE FUNCTION jairouter.remove_cache(p_tenant text, p_model text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM jairouter.cache_policies c USING jairouter.tenants t, jairouter.models m
	WHERE c.tenant_id = t.id AND c.model_id = m.id AND t.name = p_tenant AND m.name = p_model;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'no cache policy for tenant "%" and model "%"', p_tenant, p_model
			USING ERRCODE = 'no_data_found';
	END IF;
END;
$$;
