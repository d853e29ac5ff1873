-- 008_adapter: what the adapter sidecar (jairouter-adapter) needs to reach a provider
-- and to mask a tenant's data. docs/adapter.md is the operator's guide.
--
--   jairouter.endpoints         one row per model backend whose requests may detour
--                               through the adapter: the provider's base URL, the AWS
--                               region (Bedrock), the api-version (Azure), and whether
--                               streamed usage is metered.
--   tenants.masking_policy      the tenant's masking rules (JSON); masking itself is on
--                               when the tenant's settings say {"masking": true}
--                               (sql/004); NULL rules = every built-in detector, "mask".
--
-- Errors follow 002/004: P0002 for a missing row, 22023 for a bad value.
-- Idempotent: every statement can run again on a database that already has it.

CREATE TABLE IF NOT EXISTS jairouter.endpoints (
	id            bigserial PRIMARY KEY,
	backend       text NOT NULL UNIQUE
		CONSTRAINT endpoints_backend_check CHECK (backend ~ '^be_[A-Za-z0-9_.-]{1,60}$'),
	base_url      text NULL
		CONSTRAINT endpoints_base_url_check CHECK (base_url IS NULL OR (
			base_url ~ '^https?://[^[:space:][:cntrl:]]+$' AND octet_length(base_url) <= 500)),
	region        text NULL
		CONSTRAINT endpoints_region_check CHECK (region IS NULL OR region ~ '^[a-z0-9-]{1,40}$'),
	api_version   text NULL
		CONSTRAINT endpoints_api_version_check CHECK (api_version IS NULL OR
			api_version ~ '^[A-Za-z0-9._-]{1,40}$'),
	meter_streams boolean NOT NULL DEFAULT true,
	created_at    timestamptz NOT NULL DEFAULT now()
);

SELECT jairouter.install_notify('endpoints');

-- A masking policy: {"responses": bool, "rules": [{"detector", "action", "label",
-- "pattern"}...]} (adapters/src/mask.h); at most 32 rules and 2000 bytes, so that it
-- fits the header HAProxy hands to the adapter.
CREATE OR REPLACE FUNCTION jairouter.masking_policy_valid(p jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
	SELECT p IS NULL OR (
		jsonb_typeof(p) = 'object'
		AND octet_length(p::text) <= 2000
		AND NOT EXISTS (SELECT 1 FROM jsonb_object_keys(p) k WHERE k NOT IN ('responses', 'rules'))
		AND (NOT p ? 'responses' OR jsonb_typeof(p -> 'responses') = 'boolean')
		AND (NOT p ? 'rules' OR (jsonb_typeof(p -> 'rules') = 'array'
			AND jsonb_array_length(p -> 'rules') <= 32
			AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(p -> 'rules') r
				WHERE jsonb_typeof(r) <> 'object'
					OR EXISTS (SELECT 1 FROM jsonb_object_keys(r) k
						WHERE k NOT IN ('detector', 'action', 'label', 'pattern'))
					OR coalesce(r ->> 'detector', '') NOT IN ('email', 'phone', 'cn_mobile',
						'cn_id', 'card', 'ipv4', 'ipv6', 'secret', 'regex')
					OR coalesce(r ->> 'action', 'mask') NOT IN ('mask', 'label', 'hash', 'reject')
					OR (r ? 'label' AND coalesce(r ->> 'label', '') !~ '^[A-Za-z0-9_-]{1,31}$')
					OR ((r ->> 'detector') = 'regex') <> (r ? 'pattern')
					OR (r ? 'pattern' AND (jsonb_typeof(r -> 'pattern') <> 'string'
						OR char_length(r ->> 'pattern') NOT BETWEEN 1 AND 512))))))
$$;

ALTER TABLE jairouter.tenants
	ADD COLUMN IF NOT EXISTS masking_policy jsonb NULL
		CONSTRAINT tenants_masking_policy_check CHECK (jairouter.masking_policy_valid(masking_policy));

-- ---- administration functions -------------------------------------------------------

-- Creates or replaces the endpoint of a backend. NULL base_url: the provider's public
-- default (docs/adapter.md).
CREATE OR REPLACE FUNCTION jairouter.set_endpoint(p_backend text, p_base_url text,
	p_region text DEFAULT NULL, p_api_version text DEFAULT NULL, p_meter boolean DEFAULT true)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	e_id bigint;
BEGIN
	INSERT INTO jairouter.endpoints (backend, base_url, region, api_version, meter_streams)
	VALUES (p_backend, NULLIF(p_base_url, ''), NULLIF(p_region, ''), NULLIF(p_api_version, ''),
		coalesce(p_meter, true))
	ON CONFLICT (backend) DO UPDATE SET base_url = EXCLUDED.base_url, region = EXCLUDED.region,
		api_version = EXCLUDED.api_version, meter_streams = EXCLUDED.meter_streams
	RETURNING id INTO e_id;
	RETURN e_id;
EXCEPTION
	WHEN check_violation THEN
		RAISE EXCEPTION 'invalid endpoint: backend be_NAME, base_url http(s)://... (at most 500 '
			'bytes), region like eu-west-1, api_version like 2024-10-21'
			USING ERRCODE = 'invalid_parameter_value';
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.remove_endpoint(p_backend text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM jairouter.endpoints WHERE backend = p_backend;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'endpoint "%" not found', p_backend USING ERRCODE = 'no_data_found';
	END IF;
END;
$$;

-- Sets a tenant's masking policy (NULL: the built-in defaults) and turns masking on.
CREATE OR REPLACE FUNCTION jairouter.set_tenant_masking(p_tenant text, p_policy jsonb)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	IF NOT jairouter.masking_policy_valid(p_policy) THEN
		RAISE EXCEPTION 'invalid masking policy: see docs/adapter.md (detectors, actions, '
			'labels, regex patterns, at most 32 rules and 2000 bytes)'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	UPDATE jairouter.tenants
	SET masking_policy = p_policy, settings = settings || '{"masking": true}'::jsonb
	WHERE name = p_tenant;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'tenant "%" not found', p_tenant USING ERRCODE = 'no_data_found';
	END IF;
END;
$$;
