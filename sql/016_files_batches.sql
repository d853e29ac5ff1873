-- 016_files_batches: OpenAI's Files and Batch APIs through the gateway (docs/api.md).
--
--   tenants.settings.files_model  the model whose backend stores the tenant's files (and
--                                 so runs its batches); the agent's `files_model` option
--                                 is the default for tenants without it.
--   api_objects.object            the object as the model server last answered it (a
--                                 file's creation answer, a batch's latest state): the
--                                 agent answers GET /v1/files and GET /v1/batches from
--                                 these rows, so that a tenant lists only its own ids.
--
-- Idempotent: every statement can run again on a database that already has it.

-- settings: sql/004's keys, plus files_model (a model name: 1 to 127 characters, no
-- control characters; the model need not exist yet: a request names it at run time).
CREATE OR REPLACE FUNCTION jairouter.settings_valid(s jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_typeof(s) = 'object'
		AND NOT EXISTS (SELECT 1 FROM jsonb_object_keys(s) k
			WHERE k NOT IN ('masking', 'on_error', 'limits', 'files_model'))
		AND (NOT s ? 'masking' OR jsonb_typeof(s -> 'masking') = 'boolean')
		AND (NOT s ? 'on_error' OR s ->> 'on_error' IN ('fail-open', 'fail-closed'))
		AND (NOT s ? 'limits' OR jsonb_typeof(s -> 'limits') = 'object')
		AND (NOT s ? 'files_model' OR (jsonb_typeof(s -> 'files_model') = 'string'
			AND char_length(s ->> 'files_model') BETWEEN 1 AND 127
			AND (s ->> 'files_model') !~ '[[:cntrl:]]'))
$$;

CREATE OR REPLACE FUNCTION jairouter.set_tenant_settings(p_tenant text, p_patch jsonb)
RETURNS jsonb LANGUAGE sql AS $$
	SELECT jairouter.merge_tenant_json(p_tenant, 'settings', p_patch, 'keys are masking '
		'(true|false), on_error ("fail-open"|"fail-closed"), limits (an object) and '
		'files_model (a model name)')
$$;

-- The object's JSON as last seen, at most 16 KiB (the agent keeps at most 4 KiB: a
-- file object is ~200 bytes, a batch object ~1.2 KiB).
ALTER TABLE jairouter.api_objects
	ADD COLUMN IF NOT EXISTS object text NULL
		CONSTRAINT api_objects_object_check CHECK (octet_length(object) <= 16384);
