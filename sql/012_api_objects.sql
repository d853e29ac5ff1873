-- 012_api_objects: the objects a model server keeps between requests on a tenant's
-- behalf (a Responses API response; later files and batches), and who owns them; the
-- service type `moderations`.
--
--   jairouter.api_objects   one row per object id the gateway saw created: its kind,
--                           the id the model server gave it, the owning tenant and the
--                           model (whose backend holds it). The agent writes a row when
--                           the creating request ends (docs/api.md) and refuses every
--                           other tenant's request that names the id (404).
--
-- Rows are kept until jairouter.purge_api_objects removes them: every agent holds all
-- rows in memory (about 200 bytes each), so run it from cron with the retention of
-- the model servers (OpenAI keeps responses 30 days).
-- Idempotent: every statement can run again on a database that already has it.

CREATE TABLE IF NOT EXISTS jairouter.api_objects (
	id         bigserial PRIMARY KEY,
	kind       text NOT NULL
		CONSTRAINT api_objects_kind_check CHECK (kind IN ('response', 'file', 'batch')),
	object_id  text NOT NULL
		CONSTRAINT api_objects_object_id_check CHECK (object_id ~ '^[A-Za-z0-9_.-]{1,120}$'),
	tenant_id  bigint NOT NULL REFERENCES jairouter.tenants (id) ON DELETE CASCADE,
	model_id   bigint NULL REFERENCES jairouter.models (id) ON DELETE CASCADE,
	created_at timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT api_objects_kind_object_key UNIQUE (kind, object_id)
);

CREATE INDEX IF NOT EXISTS api_objects_created_idx ON jairouter.api_objects (created_at);

SELECT jairouter.install_notify('api_objects');

-- A service type for POST /v1/moderations (routed and billed like embeddings): the
-- lists of sql/003 and sql/004 with it appended (the agent's bit order).
CREATE OR REPLACE FUNCTION jairouter.service_types() RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
	SELECT ARRAY['chat', 'completions', 'embeddings', 'rerank', 'audio_speech',
		'audio_transcriptions', 'images_generations', 'images_edits', 'moderations']
$$;

CREATE OR REPLACE FUNCTION jairouter.service_names() RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
	SELECT ARRAY['chat', 'completions', 'embeddings', 'rerank', 'audio_speech',
		'audio_transcriptions', 'images_generations', 'images_edits', 'models', 'moderations']
$$;

-- Removes rows older than p_age; returns how many went.
CREATE OR REPLACE FUNCTION jairouter.purge_api_objects(p_age interval DEFAULT '30 days')
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
BEGIN
	IF p_age IS NULL OR p_age < interval '0' THEN
		RAISE EXCEPTION 'invalid age: %', p_age USING ERRCODE = '22023';
	END IF;
	DELETE FROM jairouter.api_objects WHERE created_at < now() - p_age;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END;
$$;
