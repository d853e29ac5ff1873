-- 015_audit_batches: security audit rows written exactly once.
--
-- The agent writes its security audit rows in batches (spoa/src/audit/audit.c). When the
-- connection is lost after PostgreSQL committed a batch but before the agent saw the
-- answer, the agent sends the batch again on the next connection. Each batch carries an
-- id (node, process, sequence); record_security_audit inserts a batch's rows only the
-- first time that id is seen, so a resent batch adds nothing. Ids are kept for a day
-- (a resend comes within seconds of the first attempt).

CREATE TABLE IF NOT EXISTS jairouter.security_audit_batches (
	batch text PRIMARY KEY,
	at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS security_audit_batches_at_idx
	ON jairouter.security_audit_batches (at);

-- record_security_audit(batch, rows): rows is a JSON array of objects with the fields
-- at (Unix seconds), node, event, reason, client, key_prefix, issuer, subject, jti,
-- tenant_id (0: none), request_id, status. Returns the rows inserted: 0 for a batch id
-- already recorded. A concurrent resend of the same id waits for the first attempt's
-- transaction and then inserts nothing if it committed.
CREATE OR REPLACE FUNCTION jairouter.record_security_audit(p_batch text, p_rows json)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
	n integer;
BEGIN
	IF p_batch IS NULL OR p_batch = '' THEN
		RAISE EXCEPTION 'a batch id is required' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	INSERT INTO jairouter.security_audit_batches (batch) VALUES (p_batch)
		ON CONFLICT (batch) DO NOTHING;
	IF NOT FOUND THEN
		RETURN 0;
	END IF;
	INSERT INTO jairouter.security_audit (at, node, event, reason, client, key_prefix,
		issuer, subject, jti, tenant_id, request_id, status)
	SELECT to_timestamp(x.at), x.node, x.event, x.reason, x.client::inet, x.key_prefix,
		x.issuer, x.subject, x.jti, nullif(x.tenant_id, 0), x.request_id, x.status
	FROM json_to_recordset(p_rows) AS x(at double precision, node text, event text,
		reason text, client text, key_prefix text, issuer text, subject text, jti text,
		tenant_id bigint, request_id text, status integer);
	GET DIAGNOSTICS n = ROW_COUNT;
	DELETE FROM jairouter.security_audit_batches WHERE at < now() - interval '1 day';
	RETURN n;
END;
$$;
