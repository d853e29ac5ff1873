-- 016_files_batches: OpenAI's Files and Batch APIs through the gateway (docs/api.md).
--
--   tenants.settings.files_model  the model whose backend stores the tenant's files (and
--                                 so runs its batches); the agent's `files_model` option
--                                 is the default for tenants without it.
--   api_objects.key_id            the API key that created it (a batch is billed to it)
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
		CONSTRAINT api_objects_object_check CHECK (octet_length(object) <= 16384),
	-- The API key whose request created the object (a batch's usage is billed to it);
	-- no foreign key: usage rows keep the ids of deleted keys too.
	ADD COLUMN IF NOT EXISTS key_id bigint NULL;

-- ---- batch usage, billed once ----------------------------------------------------------
--
-- A batch's tokens are known when it completes: the Batch object's `usage` (input_tokens,
-- output_tokens; batches created before 2025-09-07 have none). The agents bill a batch
-- the first time they see it completed (a client's retrieve, a list, `jairouterctl
-- batches sync`); every later sighting, by any agent, finds its row here and adds nothing.

-- What batch tokens cost relative to the model's prices (OpenAI bills batches at 50 %).
ALTER TABLE jairouter.usage_settings
	ADD COLUMN IF NOT EXISTS batch_price_factor numeric(6,4) NOT NULL DEFAULT 0.5
		CONSTRAINT usage_settings_batch_factor_check CHECK (batch_price_factor BETWEEN 0 AND 10);

CREATE TABLE IF NOT EXISTS jairouter.batch_usage (
	batch_id      text PRIMARY KEY
		CONSTRAINT batch_usage_batch_id_check CHECK (batch_id ~ '^[A-Za-z0-9_.-]{1,120}$'),
	tenant_id     bigint NOT NULL REFERENCES jairouter.tenants (id) ON DELETE CASCADE,
	key_id        bigint NOT NULL DEFAULT 0,  -- the key whose request saw it completed
	model_id      bigint NOT NULL,            -- the model billed (usage_daily.model_id)
	requests      bigint NOT NULL CHECK (requests >= 0),
	input_tokens  bigint NOT NULL CHECK (input_tokens >= 0),
	output_tokens bigint NOT NULL CHECK (output_tokens >= 0),
	estimated     boolean NOT NULL,           -- no usage in the answer: the agent's estimate
	cost          numeric(20,6) NOT NULL,
	billed_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS batch_usage_tenant_idx ON jairouter.batch_usage (tenant_id, billed_at);

-- bill_batches(batches, tenants, keys, models, requests, input tokens, output tokens,
-- estimated): the batches not billed yet get their row and are added to usage_daily and
-- usage_hourly (the current UTC day and hour; requests, tokens, estimated_requests when
-- estimated, cost at the model's prices times batch_price_factor). A batch given twice,
-- or already billed, adds nothing. Rows whose tenant or model is gone are skipped.
-- Returns the batches billed now.
CREATE OR REPLACE FUNCTION jairouter.bill_batches(p_batch text[], p_tenant bigint[],
	p_key bigint[], p_model bigint[], p_requests bigint[], p_input bigint[],
	p_output bigint[], p_estimated boolean[])
RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	n bigint;
	factor numeric := coalesce((SELECT batch_price_factor FROM jairouter.usage_settings), 0.5);
BEGIN
	CREATE TEMPORARY TABLE IF NOT EXISTS jr_batch_bill (LIKE jairouter.batch_usage) ON COMMIT DROP;
	TRUNCATE jr_batch_bill;
	WITH ins AS (
		INSERT INTO jairouter.batch_usage AS b (batch_id, tenant_id, key_id, model_id, requests,
			input_tokens, output_tokens, estimated, cost)
		SELECT DISTINCT ON (x.b) x.b, x.t, x.k, x.m, greatest(x.r, 0), greatest(x.i, 0),
			greatest(x.o, 0), x.e,
			round((greatest(x.i, 0) * coalesce(m.price_input_per_mtok, 0) +
				greatest(x.o, 0) * coalesce(m.price_output_per_mtok, 0)) / 1000000 * factor, 6)
		FROM unnest(p_batch, p_tenant, p_key, p_model, p_requests, p_input, p_output, p_estimated)
			AS x(b, t, k, m, r, i, o, e)
		JOIN jairouter.models m ON m.id = x.m
		WHERE EXISTS (SELECT 1 FROM jairouter.tenants t WHERE t.id = x.t)
		ORDER BY x.b
		ON CONFLICT (batch_id) DO NOTHING
		RETURNING b.*)
	INSERT INTO jr_batch_bill SELECT * FROM ins;
	GET DIAGNOSTICS n = ROW_COUNT;
	INSERT INTO jairouter.usage_daily AS u (day, tenant_id, key_id, model_id, requests,
		prompt_tokens, completion_tokens, estimated_requests, cost)
	SELECT (now() AT TIME ZONE 'UTC')::date, tenant_id, key_id, model_id, sum(requests),
		sum(input_tokens), sum(output_tokens),
		sum(CASE WHEN estimated THEN requests ELSE 0 END), sum(cost)
	FROM jr_batch_bill GROUP BY tenant_id, key_id, model_id
	ON CONFLICT (day, tenant_id, key_id, model_id) DO UPDATE SET
		requests = u.requests + EXCLUDED.requests,
		prompt_tokens = u.prompt_tokens + EXCLUDED.prompt_tokens,
		completion_tokens = u.completion_tokens + EXCLUDED.completion_tokens,
		estimated_requests = u.estimated_requests + EXCLUDED.estimated_requests,
		cost = u.cost + EXCLUDED.cost, updated_at = now();
	INSERT INTO jairouter.usage_hourly AS u (hour, tenant_id, key_id, model_id, end_user,
		requests, prompt_tokens, completion_tokens, estimated_requests, cost)
	SELECT date_trunc('hour', now()), tenant_id, key_id, model_id, '', sum(requests),
		sum(input_tokens), sum(output_tokens),
		sum(CASE WHEN estimated THEN requests ELSE 0 END), sum(cost)
	FROM jr_batch_bill GROUP BY tenant_id, key_id, model_id
	ON CONFLICT (hour, tenant_id, key_id, model_id, end_user) DO UPDATE SET
		requests = u.requests + EXCLUDED.requests,
		prompt_tokens = u.prompt_tokens + EXCLUDED.prompt_tokens,
		completion_tokens = u.completion_tokens + EXCLUDED.completion_tokens,
		estimated_requests = u.estimated_requests + EXCLUDED.estimated_requests,
		cost = u.cost + EXCLUDED.cost, updated_at = now();
	TRUNCATE jr_batch_bill;
	RETURN n;
END
$$;

-- The batches `jairouterctl batches sync` polls: recorded, not in a final state, created
-- within p_age (a batch's completion window is 24 hours; expired ones are final too).
CREATE OR REPLACE FUNCTION jairouter.open_batches(p_age interval DEFAULT '3 days')
RETURNS TABLE (tenant text, batch_id text) LANGUAGE sql STABLE AS $$
	SELECT t.name, o.object_id FROM jairouter.api_objects o
	JOIN jairouter.tenants t ON t.id = o.tenant_id
	WHERE o.kind = 'batch' AND o.created_at > now() - p_age
		AND coalesce(o.object::jsonb ->> 'status', '') NOT IN ('completed', 'failed', 'expired', 'cancelled')
		AND NOT EXISTS (SELECT 1 FROM jairouter.batch_usage b WHERE b.batch_id = o.object_id)
	ORDER BY t.name, o.created_at
$$;
