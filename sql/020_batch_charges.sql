-- 020_batch_charges: a batch's bill tells the agent which batches it added, so that the
-- agent that added one (and only it) charges the batch's tokens and cost to the tenant's
-- live quota and budget counters (docs/limits.md, "Files and batches").
--
-- Idempotent: every statement can run again on a database that already has it.

-- bill_batches_charged(batches, tenants, keys, models, requests, input tokens, output
-- tokens, estimated): bills as bill_batches (sql/016) does, and returns one row per batch
-- billed now: its ids, its tokens (input + output) and its cost in micro-units of the
-- catalogue's currency (the budget counters' unit). A batch already billed, by this call
-- or an earlier one of any agent, returns nothing: its counters were charged then.
CREATE OR REPLACE FUNCTION jairouter.bill_batches_charged(p_batch text[], p_tenant bigint[],
	p_key bigint[], p_model bigint[], p_requests bigint[], p_input bigint[],
	p_output bigint[], p_estimated boolean[])
RETURNS TABLE (batch text, tenant bigint, api_key bigint, model bigint, tokens bigint,
	cost_micro bigint)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
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
	INSERT INTO jairouter.usage_daily AS u (day, tenant_id, key_id, model_id, requests,
		prompt_tokens, completion_tokens, estimated_requests, cost)
	SELECT (now() AT TIME ZONE 'UTC')::date, j.tenant_id, j.key_id, j.model_id, sum(j.requests),
		sum(j.input_tokens), sum(j.output_tokens),
		sum(CASE WHEN j.estimated THEN j.requests ELSE 0 END), sum(j.cost)
	FROM jr_batch_bill j GROUP BY j.tenant_id, j.key_id, j.model_id
	ON CONFLICT (day, tenant_id, key_id, model_id) DO UPDATE SET
		requests = u.requests + EXCLUDED.requests,
		prompt_tokens = u.prompt_tokens + EXCLUDED.prompt_tokens,
		completion_tokens = u.completion_tokens + EXCLUDED.completion_tokens,
		estimated_requests = u.estimated_requests + EXCLUDED.estimated_requests,
		cost = u.cost + EXCLUDED.cost, updated_at = now();
	INSERT INTO jairouter.usage_hourly AS u (hour, tenant_id, key_id, model_id, end_user,
		requests, prompt_tokens, completion_tokens, estimated_requests, cost)
	SELECT date_trunc('hour', now()), j.tenant_id, j.key_id, j.model_id, '', sum(j.requests),
		sum(j.input_tokens), sum(j.output_tokens),
		sum(CASE WHEN j.estimated THEN j.requests ELSE 0 END), sum(j.cost)
	FROM jr_batch_bill j GROUP BY j.tenant_id, j.key_id, j.model_id
	ON CONFLICT (hour, tenant_id, key_id, model_id, end_user) DO UPDATE SET
		requests = u.requests + EXCLUDED.requests,
		prompt_tokens = u.prompt_tokens + EXCLUDED.prompt_tokens,
		completion_tokens = u.completion_tokens + EXCLUDED.completion_tokens,
		estimated_requests = u.estimated_requests + EXCLUDED.estimated_requests,
		cost = u.cost + EXCLUDED.cost, updated_at = now();
	RETURN QUERY SELECT j.batch_id, j.tenant_id, j.key_id, j.model_id,
		j.input_tokens + j.output_tokens, ceil(j.cost * 1000000)::bigint
	FROM jr_batch_bill j ORDER BY j.batch_id;
	TRUNCATE jr_batch_bill;
END
$$;

-- bill_batches (sql/016) keeps its signature and result (how many batches were billed
-- now) for the callers that only count; the agent calls bill_batches_charged.
CREATE OR REPLACE FUNCTION jairouter.bill_batches(p_batch text[], p_tenant bigint[],
	p_key bigint[], p_model bigint[], p_requests bigint[], p_input bigint[],
	p_output bigint[], p_estimated boolean[])
RETURNS bigint LANGUAGE sql VOLATILE AS $$
	SELECT count(*) FROM jairouter.bill_batches_charged(p_batch, p_tenant, p_key, p_model,
		p_requests, p_input, p_output, p_estimated)
$$;
