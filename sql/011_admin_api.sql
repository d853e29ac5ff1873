-- 011_admin_api: the administration API's operations (docs/admin-api.md). The agent's
-- admin listener authenticates the caller with the model API's own identity code, then
-- calls jairouter.admin_api() once per request; every rule of the API (who may see and
-- change what, pagination, ETags, idempotent key issuance) lives here, next to the data,
-- so that the API and scripts/jairouterctl share one implementation.
--
-- Idempotent: every statement can run again on a database that already has it.

-- A platform tenant's administrators manage every tenant; any other tenant's
-- administrators manage their own tenant only.
ALTER TABLE jairouter.tenants ADD COLUMN IF NOT EXISTS platform boolean NOT NULL DEFAULT false;

-- Key issuance with an Idempotency-Key: the first answer's key id, kept for 24 hours.
-- A repeated request gets the same key back without its secret (never stored).
CREATE TABLE IF NOT EXISTS jairouter.admin_idempotency (
	tenant_id  bigint NOT NULL REFERENCES jairouter.tenants (id) ON DELETE CASCADE,
	idem_key   text NOT NULL CONSTRAINT admin_idempotency_key_check
		CHECK (octet_length(idem_key) BETWEEN 1 AND 255),
	request    jsonb NOT NULL,
	key_id     bigint NOT NULL REFERENCES jairouter.api_keys (id) ON DELETE CASCADE,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tenant_id, idem_key)
);

-- The catalogue's currency (prices, costs, budgets): the setting jairouter.currency
-- (ALTER DATABASE ... SET jairouter.currency = 'EUR'), USD when unset.
CREATE OR REPLACE FUNCTION jairouter.currency() RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT coalesce(nullif(current_setting('jairouter.currency', true), ''), 'USD')
$$;

-- Tables changed through the API that the earlier migrations left out of the change log.
DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['limits', 'routing_policies', 'model_fallbacks', 'virtual_models',
			'virtual_model_members', 'endpoints', 'model_aliases'] LOOP
		CONTINUE WHEN to_regclass('jairouter.' || t) IS NULL;
		EXECUTE format('DROP TRIGGER IF EXISTS %I ON jairouter.%I', t || '_audit', t);
		EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON jairouter.%I '
			'FOR EACH ROW EXECUTE FUNCTION jairouter.audit_change()', t || '_audit', t);
	END LOOP;
END;
$$;

-- ---- helpers ---------------------------------------------------------------------------

-- Errors: SQLSTATE 'JR' and the HTTP status (JR400, JR403, JR404, JR409, JR412, JR428);
-- admin_api() turns them into the OpenAI error envelope.
CREATE OR REPLACE FUNCTION jairouter.admin_fail(p_status int, p_code text, p_message text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION '%', p_message USING ERRCODE = 'JR' || p_status::text, HINT = p_code;
END;
$$;

-- A caller is {actor, tenant_id, key_id, roles, permissions} from the agent, or
-- {actor, local: true} from scripts/jairouterctl (admin_cli below): whoever may call these
-- functions in the database may change the tables anyway, so a local caller is a platform
-- administrator. The agent never sends "local".
CREATE OR REPLACE FUNCTION jairouter.admin_is_platform(p_caller jsonb) RETURNS boolean
LANGUAGE sql STABLE AS $$
	SELECT coalesce((p_caller ->> 'local')::boolean, false)
		OR coalesce((SELECT platform FROM jairouter.tenants
			WHERE id = (p_caller ->> 'tenant_id')::bigint), false)
$$;

CREATE OR REPLACE FUNCTION jairouter.admin_has(p_caller jsonb, p_perm text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
	SELECT coalesce((p_caller ->> 'local')::boolean, false)
		OR coalesce(p_caller -> 'permissions' ? p_perm, false)
		OR coalesce(p_caller -> 'permissions' ? 'admin', false)
$$;

CREATE OR REPLACE FUNCTION jairouter.admin_require(p_caller jsonb, p_perm text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF NOT jairouter.admin_has(p_caller, p_perm) THEN
		PERFORM jairouter.admin_fail(403, 'permission_denied',
			format('Your roles do not grant the permission ''%s''.', p_perm));
	END IF;
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.admin_require_platform(p_caller jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF NOT jairouter.admin_is_platform(p_caller) THEN
		PERFORM jairouter.admin_fail(403, 'permission_denied',
			'Only the administrators of a platform tenant may do this.');
	END IF;
END;
$$;

-- The tenant a request names (by name, or by id as digits) that the caller may manage;
-- another tenant is answered as unknown so that its existence is not revealed. NULL or
-- '' names the caller's own tenant, or every tenant (NULL) for a platform caller when
-- p_all.
CREATE OR REPLACE FUNCTION jairouter.admin_tenant(p_caller jsonb, p_ref text, p_all boolean DEFAULT false)
RETURNS bigint LANGUAGE plpgsql STABLE AS $$
DECLARE
	own bigint := (p_caller ->> 'tenant_id')::bigint;
	t_id bigint;
BEGIN
	IF p_ref IS NULL OR p_ref = '' THEN
		IF p_all AND jairouter.admin_is_platform(p_caller) THEN
			RETURN NULL;
		END IF;
		RETURN own;
	END IF;
	SELECT id INTO t_id FROM jairouter.tenants
	WHERE name = p_ref OR (p_ref ~ '^[0-9]{1,18}$' AND id = p_ref::bigint)
	ORDER BY name = p_ref DESC LIMIT 1;
	IF t_id IS NULL OR (t_id <> own AND NOT jairouter.admin_is_platform(p_caller)) THEN
		PERFORM jairouter.admin_fail(404, 'tenant_not_found', format('Tenant ''%s'' not found.', p_ref));
	END IF;
	RETURN t_id;
END;
$$;

-- ?limit= (default 50, 1..500).
CREATE OR REPLACE FUNCTION jairouter.admin_limit(p_args jsonb) RETURNS int
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	v text := p_args ->> 'limit';
BEGIN
	IF v IS NULL OR v = '' THEN
		RETURN 50;
	END IF;
	IF v !~ '^[0-9]{1,4}$' OR v::int NOT BETWEEN 1 AND 500 THEN
		PERFORM jairouter.admin_fail(400, 'invalid_limit', 'limit must be an integer from 1 to 500.');
	END IF;
	RETURN v::int;
END;
$$;

-- Cursors are opaque to clients: base64url of "c1:<last id>"; pages go by descending
-- id (newest first) unless a listing says otherwise.
CREATE OR REPLACE FUNCTION jairouter.admin_cursor_make(p_id bigint) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT translate(encode(convert_to('c1:' || p_id::text, 'UTF8'), 'base64'), '+/=', '-_')
$$;

CREATE OR REPLACE FUNCTION jairouter.admin_cursor(p_args jsonb) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	v text := p_args ->> 'cursor';
	d text;
BEGIN
	IF v IS NULL OR v = '' THEN
		RETURN NULL;
	END IF;
	BEGIN
		v := translate(v, '-_', '+/');
		d := convert_from(decode(rpad(v, ((length(v) + 3) / 4) * 4, '='), 'base64'), 'UTF8');
	EXCEPTION WHEN OTHERS THEN
		d := NULL;
	END;
	IF d IS NULL OR d !~ '^c1:[0-9]{1,18}$' THEN
		PERFORM jairouter.admin_fail(400, 'invalid_cursor', 'The cursor is not one this API returned.');
	END IF;
	RETURN substr(d, 4)::bigint;
END;
$$;

-- A page: rows (already limited to lim + 1, ordered), the cursor of the last one shown.
CREATE OR REPLACE FUNCTION jairouter.admin_page(p_rows jsonb, p_lim int) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_build_object(
		'data', coalesce((SELECT jsonb_agg(r ORDER BY o) FROM jsonb_array_elements(p_rows)
			WITH ORDINALITY AS e(r, o) WHERE o <= p_lim), '[]'::jsonb),
		'next_cursor', CASE WHEN jsonb_array_length(coalesce(p_rows, '[]')) > p_lim
			THEN to_jsonb(jairouter.admin_cursor_make((p_rows -> (p_lim - 1) ->> 'id')::bigint))
			ELSE 'null'::jsonb END)
$$;

CREATE OR REPLACE FUNCTION jairouter.admin_ts(p_name text, p_value text) RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
BEGIN
	IF p_value IS NULL OR p_value = '' THEN
		RETURN NULL;
	END IF;
	IF p_value !~ '^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?)?$' THEN
		PERFORM jairouter.admin_fail(400, 'invalid_' || p_name,
			format('%s must be an RFC 3339 date-time or a date (YYYY-MM-DD).', p_name));
	END IF;
	RETURN p_value::timestamptz;
EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
	PERFORM jairouter.admin_fail(400, 'invalid_' || p_name, format('%s is not a valid date.', p_name));
	RETURN NULL;
END;
$$;

-- The ETag of a resource: a hash of what the API shows of it.
CREATE OR REPLACE FUNCTION jairouter.admin_etag(p_doc jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT '"' || left(md5(p_doc::text), 20) || '"'
$$;

-- If-Match on updates: 428 without it, 412 when it names another version.
CREATE OR REPLACE FUNCTION jairouter.admin_check_match(p_args jsonb, p_doc jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	m text := p_args ->> 'if_match';
BEGIN
	IF m IS NULL OR m = '' THEN
		PERFORM jairouter.admin_fail(428, 'if_match_required',
			'This update needs an If-Match header with the ETag of the resource (GET it first).');
	END IF;
	IF m <> '*' AND m <> jairouter.admin_etag(p_doc) THEN
		PERFORM jairouter.admin_fail(412, 'etag_mismatch',
			'The resource changed since you read it: GET it again and retry with the new ETag.');
	END IF;
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.admin_body_text(p_body jsonb, p_field text, p_required boolean)
RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	IF p_body IS NULL OR NOT p_body ? p_field OR p_body -> p_field = 'null'::jsonb THEN
		IF p_required THEN
			PERFORM jairouter.admin_fail(400, 'missing_' || p_field, format('The field ''%s'' is required.', p_field));
		END IF;
		RETURN NULL;
	END IF;
	IF jsonb_typeof(p_body -> p_field) <> 'string' THEN
		PERFORM jairouter.admin_fail(400, 'invalid_' || p_field, format('The field ''%s'' must be a string.', p_field));
	END IF;
	RETURN p_body ->> p_field;
END;
$$;

-- ---- resources as the API shows them ---------------------------------------------------

CREATE OR REPLACE FUNCTION jairouter.admin_tenant_doc(t jairouter.tenants) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('id', t.id, 'name', t.name, 'status', t.status, 'platform', t.platform,
		'created_at', t.created_at, 'updated_at', t.updated_at)
$$;

CREATE OR REPLACE FUNCTION jairouter.admin_key_doc(k jairouter.api_keys) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('id', k.id, 'tenant', (SELECT name FROM jairouter.tenants WHERE id = k.tenant_id),
		'prefix', k.prefix, 'name', k.name, 'status', k.status, 'created_at', k.created_at,
		'expires_at', k.expires_at, 'revoked_at', k.revoked_at,
		'last_used_at', (SELECT max(u.updated_at) FROM jairouter.usage_daily u WHERE u.key_id = k.id),
		'models', k.models,
		'roles', coalesce((SELECT jsonb_agg(r.name ORDER BY r.name) FROM jairouter.api_key_roles kr
			JOIN jairouter.roles r ON r.id = kr.role_id WHERE kr.key_id = k.id), '[]'::jsonb))
$$;

-- ---- operations --------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION jairouter.admin_me(p_caller jsonb) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('actor', p_caller ->> 'actor', 'tenant', t.name, 'tenant_id', t.id,
		'platform', t.platform, 'roles', coalesce(p_caller -> 'roles', '[]'::jsonb),
		'permissions', coalesce(p_caller -> 'permissions', '[]'::jsonb))
	FROM jairouter.tenants t WHERE t.id = (p_caller ->> 'tenant_id')::bigint
$$;

CREATE OR REPLACE FUNCTION jairouter.admin_tenants_list(p_caller jsonb, p_args jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
	lim int := jairouter.admin_limit(p_args);
	cur bigint := jairouter.admin_cursor(p_args);
	plat boolean := jairouter.admin_is_platform(p_caller);
BEGIN
	PERFORM jairouter.admin_require(p_caller, 'admin');
	RETURN jairouter.admin_page((SELECT jsonb_agg(d ORDER BY (d ->> 'id')::bigint)
		FROM (SELECT jairouter.admin_tenant_doc(t) d FROM jairouter.tenants t
			WHERE (plat OR t.id = (p_caller ->> 'tenant_id')::bigint)
				AND (cur IS NULL OR t.id > cur)
			ORDER BY t.id LIMIT lim + 1) s), lim);
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.admin_tenant_get(p_caller jsonb, p_args jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
	t jairouter.tenants;
BEGIN
	PERFORM jairouter.admin_require(p_caller, 'admin');
	SELECT * INTO t FROM jairouter.tenants WHERE id = jairouter.admin_tenant(p_caller, p_args ->> 'tenant');
	RETURN jairouter.admin_tenant_doc(t);
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.admin_tenant_create(p_caller jsonb, p_body jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	t jairouter.tenants;
	n text := jairouter.admin_body_text(p_body, 'name', true);
BEGIN
	PERFORM jairouter.admin_require(p_caller, 'admin');
	PERFORM jairouter.admin_require_platform(p_caller);
	IF EXISTS (SELECT 1 FROM jairouter.tenants WHERE name = n) THEN
		PERFORM jairouter.admin_fail(409, 'tenant_exists', format('Tenant ''%s'' already exists.', n));
	END IF;
	SELECT * INTO t FROM jairouter.tenants WHERE id = jairouter.add_tenant(n);
	RETURN jairouter.admin_tenant_doc(t);
END;
$$;

-- PATCH: status (active, disabled); a platform caller may also set platform.
CREATE OR REPLACE FUNCTION jairouter.admin_tenant_patch(p_caller jsonb, p_args jsonb, p_body jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	t jairouter.tenants;
	st text := jairouter.admin_body_text(p_body, 'status', false);
BEGIN
	PERFORM jairouter.admin_require(p_caller, 'admin');
	SELECT * INTO t FROM jairouter.tenants
	WHERE id = jairouter.admin_tenant(p_caller, p_args ->> 'tenant') FOR UPDATE;
	PERFORM jairouter.admin_check_match(p_args, jairouter.admin_tenant_doc(t));
	IF p_body - 'status' - 'platform' <> '{}'::jsonb THEN
		PERFORM jairouter.admin_fail(400, 'unknown_field', 'Only status and platform can be changed.');
	END IF;
	IF p_body ? 'platform' THEN
		PERFORM jairouter.admin_require_platform(p_caller);
		IF jsonb_typeof(p_body -> 'platform') <> 'boolean' THEN
			PERFORM jairouter.admin_fail(400, 'invalid_platform', 'platform must be true or false.');
		END IF;
		IF t.id = (p_caller ->> 'tenant_id')::bigint AND NOT (p_body ->> 'platform')::boolean THEN
			PERFORM jairouter.admin_fail(400, 'invalid_platform', 'A platform tenant cannot remove its own platform role.');
		END IF;
		UPDATE jairouter.tenants SET platform = (p_body ->> 'platform')::boolean WHERE id = t.id;
	END IF;
	IF st IS NOT NULL THEN
		IF t.id = (p_caller ->> 'tenant_id')::bigint AND st <> 'active' THEN
			PERFORM jairouter.admin_fail(400, 'invalid_status', 'You cannot disable your own tenant.');
		END IF;
		PERFORM jairouter.set_tenant_status(t.name, st);
	END IF;
	SELECT * INTO t FROM jairouter.tenants WHERE id = t.id;
	RETURN jairouter.admin_tenant_doc(t);
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.admin_keys_list(p_caller jsonb, p_args jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
	t_id bigint := jairouter.admin_tenant(p_caller, p_args ->> 'tenant');
	lim int := jairouter.admin_limit(p_args);
	cur bigint := jairouter.admin_cursor(p_args);
BEGIN
	PERFORM jairouter.admin_require(p_caller, 'admin');
	RETURN jairouter.admin_page((SELECT jsonb_agg(d ORDER BY (d ->> 'id')::bigint DESC)
		FROM (SELECT jairouter.admin_key_doc(k) d FROM jairouter.api_keys k
			WHERE k.tenant_id = t_id AND (cur IS NULL OR k.id < cur)
			ORDER BY k.id DESC LIMIT lim + 1) s), lim);
END;
$$;

-- Issues a key; with an idempotency key, a repeat of the same request within 24 hours
-- returns the first key without its secret (replayed: true), a different request with
-- the same idempotency key is a 409.
CREATE OR REPLACE FUNCTION jairouter.admin_key_create(p_caller jsonb, p_args jsonb, p_body jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	t_id bigint := jairouter.admin_tenant(p_caller, p_args ->> 'tenant');
	idem text := nullif(p_args ->> 'idempotency_key', '');
	req jsonb := jsonb_build_object('tenant', t_id, 'body', coalesce(p_body, '{}'::jsonb));
	nm text := jairouter.admin_body_text(p_body, 'name', false);
	exp timestamptz := jairouter.admin_ts('expires_at', jairouter.admin_body_text(p_body, 'expires_at', false));
	prev jairouter.admin_idempotency;
	k jairouter.api_keys;
	secret text;
BEGIN
	PERFORM jairouter.admin_require(p_caller, 'admin');
	IF coalesce(p_body, '{}'::jsonb) - 'name' - 'expires_at' <> '{}'::jsonb THEN
		PERFORM jairouter.admin_fail(400, 'unknown_field', 'A key takes only name and expires_at.');
	END IF;
	IF idem IS NOT NULL THEN
		DELETE FROM jairouter.admin_idempotency WHERE created_at < now() - interval '24 hours';
		PERFORM pg_advisory_xact_lock(hashtextextended(t_id::text || ':' || idem, 0));
		SELECT * INTO prev FROM jairouter.admin_idempotency WHERE tenant_id = t_id AND idem_key = idem;
		IF FOUND THEN
			IF prev.request <> req THEN
				PERFORM jairouter.admin_fail(409, 'idempotency_key_reused',
					'This Idempotency-Key was used for a different request.');
			END IF;
			SELECT * INTO k FROM jairouter.api_keys WHERE id = prev.key_id;
			RETURN jsonb_build_object('status', 200, 'body',
				jairouter.admin_key_doc(k) || jsonb_build_object('key', NULL, 'replayed', true));
		END IF;
	END IF;
	secret := jairouter.issue_key((SELECT name FROM jairouter.tenants WHERE id = t_id), nm, exp);
	SELECT * INTO k FROM jairouter.api_keys WHERE key_hash = sha256(convert_to(secret, 'UTF8'));
	IF idem IS NOT NULL THEN
		INSERT INTO jairouter.admin_idempotency (tenant_id, idem_key, request, key_id)
		VALUES (t_id, idem, req, k.id);
	END IF;
	RETURN jsonb_build_object('status', 201, 'body',
		jairouter.admin_key_doc(k) || jsonb_build_object('key', secret, 'replayed', false));
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.admin_key_revoke(p_caller jsonb, p_args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	k jairouter.api_keys;
	ref text := p_args ->> 'id';
BEGIN
	PERFORM jairouter.admin_require(p_caller, 'admin');
	IF ref !~ '^[0-9]{1,18}$' THEN
		PERFORM jairouter.admin_fail(400, 'invalid_key_id', 'A key is named by its numeric id.');
	END IF;
	SELECT * INTO k FROM jairouter.api_keys WHERE id = ref::bigint FOR UPDATE;
	IF NOT FOUND OR (k.tenant_id <> (p_caller ->> 'tenant_id')::bigint
			AND NOT jairouter.admin_is_platform(p_caller)) THEN
		PERFORM jairouter.admin_fail(404, 'key_not_found', format('Key %s not found.', ref));
	END IF;
	IF k.id = (p_caller ->> 'key_id')::bigint THEN
		PERFORM jairouter.admin_fail(400, 'own_key', 'You cannot revoke the key you are calling with.');
	END IF;
	PERFORM jairouter.revoke_key(k.id::text);
	SELECT * INTO k FROM jairouter.api_keys WHERE id = k.id;
	RETURN jsonb_build_object('id', k.id, 'prefix', k.prefix, 'status', k.status, 'revoked_at', k.revoked_at);
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.admin_models_list(p_caller jsonb, p_args jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
	plat boolean := jairouter.admin_is_platform(p_caller);
	own bigint := (p_caller ->> 'tenant_id')::bigint;
BEGIN
	PERFORM jairouter.admin_require(p_caller, 'admin');
	RETURN jsonb_build_object('data', coalesce((SELECT jsonb_agg(jsonb_build_object(
		'id', m.name, 'model_id', m.id, 'backend', m.backend, 'status', m.status,
		'provider', m.provider, 'upstream_name', m.upstream_name, 'services', m.services,
		'visibility', m.visibility, 'context_length', m.context_length,
		'price_in', m.price_input_per_mtok, 'price_out', m.price_output_per_mtok,
		'price_unit', '1M tokens', 'currency', jairouter.currency()) ORDER BY m.name)
		FROM jairouter.models m WHERE plat OR jairouter.tenant_may_use(own, m.id)), '[]'::jsonb),
		'next_cursor', NULL);
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.admin_limit_doc(l jairouter.limits) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('id', l.id,
		'tenant', (SELECT name FROM jairouter.tenants WHERE id = l.tenant_id),
		'key', (SELECT prefix FROM jairouter.api_keys WHERE id = l.key_id), 'key_id', l.key_id,
		'model', (SELECT name FROM jairouter.models WHERE id = l.model_id),
		'scope', l.scope, 'dimension', l.dimension, 'algorithm', l.algorithm, 'amount', l.amount,
		'window_ms', l.window_ms, 'burst', l.burst, 'enabled', l.enabled, 'note', l.note,
		'created_at', l.created_at)
$$;

-- A tenant administrator sees the limits that apply to the tenant: its own and the
-- global ones (read-only to it).
CREATE OR REPLACE FUNCTION jairouter.admin_limits_list(p_caller jsonb, p_args jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
	t_id bigint := jairouter.admin_tenant(p_caller, p_args ->> 'tenant', true);
BEGIN
	PERFORM jairouter.admin_require(p_caller, 'admin');
	RETURN jsonb_build_object('data', coalesce((SELECT jsonb_agg(jairouter.admin_limit_doc(l) ORDER BY l.id)
		FROM jairouter.limits l WHERE t_id IS NULL OR l.tenant_id = t_id OR l.tenant_id IS NULL), '[]'::jsonb),
		'next_cursor', NULL);
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.admin_usage(p_caller jsonb, p_args jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
	t_id bigint := jairouter.admin_tenant(p_caller, p_args ->> 'tenant', true);
	f date := coalesce(jairouter.admin_ts('from', p_args ->> 'from')::date, current_date - 30);
	t date := coalesce(jairouter.admin_ts('to', p_args ->> 'to')::date, current_date);
	g text := coalesce(nullif(p_args ->> 'group_by', ''), 'day');
BEGIN
	PERFORM jairouter.admin_require(p_caller, 'usage:read');
	IF g NOT IN ('day', 'model', 'key', 'tenant') THEN
		PERFORM jairouter.admin_fail(400, 'invalid_group_by', 'group_by must be day, model, key or tenant.');
	END IF;
	IF t < f OR t - f > 3660 THEN
		PERFORM jairouter.admin_fail(400, 'invalid_range', 'from must not be after to, at most ten years apart.');
	END IF;
	RETURN jsonb_build_object('from', f, 'to', t, 'group_by', g, 'currency', jairouter.currency(),
		'data', coalesce((SELECT jsonb_agg(jsonb_build_object(g, s.grp, 'requests', s.requests,
			'prompt_tokens', s.pt, 'completion_tokens', s.ct, 'estimated_requests', s.est,
			'cost', s.cost, 'currency', jairouter.currency()) ORDER BY s.grp)
		FROM (SELECT CASE g WHEN 'day' THEN u.day::text
				WHEN 'model' THEN coalesce(m.name, u.model_id::text)
				WHEN 'key' THEN coalesce(k.prefix, u.key_id::text)
				ELSE coalesce(tn.name, u.tenant_id::text) END AS grp,
			sum(u.requests) AS requests, sum(u.prompt_tokens) AS pt,
			sum(u.completion_tokens) AS ct, sum(u.estimated_requests) AS est, sum(u.cost) AS cost
			FROM jairouter.usage_daily u
			LEFT JOIN jairouter.models m ON m.id = u.model_id
			LEFT JOIN jairouter.api_keys k ON k.id = u.key_id
			LEFT JOIN jairouter.tenants tn ON tn.id = u.tenant_id
			WHERE u.day BETWEEN f AND t AND (t_id IS NULL OR u.tenant_id = t_id)
			GROUP BY 1) s), '[]'::jsonb));
END;
$$;

-- The change log. A tenant administrator sees the changes to rows of its tenant (the
-- tenant itself and rows carrying its tenant_id).
CREATE OR REPLACE FUNCTION jairouter.admin_audit(p_caller jsonb, p_args jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
	t_id bigint := jairouter.admin_tenant(p_caller, p_args ->> 'tenant', true);
	lim int := jairouter.admin_limit(p_args);
	cur bigint := jairouter.admin_cursor(p_args);
BEGIN
	PERFORM jairouter.admin_require(p_caller, 'audit:read');
	RETURN jairouter.admin_page((SELECT jsonb_agg(d ORDER BY (d ->> 'id')::bigint DESC)
		FROM (SELECT jsonb_build_object('id', a.id, 'at', a.at, 'actor', coalesce(a.actor, a.db_user),
				'action', lower(a.op), 'target', a.table_name || '/' || coalesce(a.row_id::text, ''),
				'table', a.table_name, 'row_id', a.row_id, 'app', a.app,
				'old', a.old_row, 'new', a.new_row) d
			FROM jairouter.audit_log a
			WHERE (cur IS NULL OR a.id < cur)
				AND (t_id IS NULL
					OR (a.table_name = 'tenants' AND a.row_id = t_id)
					OR (coalesce(a.new_row, a.old_row) ->> 'tenant_id') = t_id::text)
			ORDER BY a.id DESC LIMIT lim + 1) s), lim);
END;
$$;

-- ---- roles and their assignment to keys ---------------------------------------------------

CREATE OR REPLACE FUNCTION jairouter.admin_role_doc(r jairouter.roles) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('id', r.id, 'name', r.name,
		'tenant', (SELECT name FROM jairouter.tenants WHERE id = r.tenant_id),
		'allow', to_jsonb(r.allow), 'deny', to_jsonb(r.deny), 'created_at', r.created_at)
$$;

CREATE OR REPLACE FUNCTION jairouter.admin_text_array(p_body jsonb, p_field text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	IF p_body IS NULL OR NOT p_body ? p_field OR p_body -> p_field = 'null'::jsonb THEN
		RETURN NULL;
	END IF;
	IF jsonb_typeof(p_body -> p_field) <> 'array' OR EXISTS (SELECT 1
			FROM jsonb_array_elements(p_body -> p_field) e WHERE jsonb_typeof(e) <> 'string') THEN
		PERFORM jairouter.admin_fail(400, 'invalid_' || p_field,
			format('The field ''%s'' must be an array of strings.', p_field));
	END IF;
	RETURN ARRAY(SELECT jsonb_array_elements_text(p_body -> p_field));
END;
$$;

-- Global roles and the roles of the tenants the caller manages.
CREATE OR REPLACE FUNCTION jairouter.admin_roles_list(p_caller jsonb, p_args jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
	t_id bigint := jairouter.admin_tenant(p_caller, p_args ->> 'tenant', true);
BEGIN
	PERFORM jairouter.admin_require(p_caller, 'admin');
	RETURN jsonb_build_object('data', coalesce((SELECT jsonb_agg(jairouter.admin_role_doc(r)
			ORDER BY r.tenant_id NULLS FIRST, r.name)
		FROM jairouter.roles r WHERE t_id IS NULL OR r.tenant_id = t_id OR r.tenant_id IS NULL),
		'[]'::jsonb), 'next_cursor', NULL);
END;
$$;

-- A role of the body's tenant; without one, a global role (platform) or a role of the
-- caller's own tenant.
CREATE OR REPLACE FUNCTION jairouter.admin_role_create(p_caller jsonb, p_body jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	n text := jairouter.admin_body_text(p_body, 'name', true);
	t_ref text := jairouter.admin_body_text(p_body, 'tenant', false);
	t_id bigint;
	r jairouter.roles;
BEGIN
	PERFORM jairouter.admin_require(p_caller, 'admin');
	IF p_body - 'name' - 'tenant' - 'allow' - 'deny' <> '{}'::jsonb THEN
		PERFORM jairouter.admin_fail(400, 'unknown_field', 'A role takes name, tenant, allow and deny.');
	END IF;
	IF t_ref IS NULL AND NOT jairouter.admin_is_platform(p_caller) THEN
		t_id := (p_caller ->> 'tenant_id')::bigint;
	ELSIF t_ref IS NOT NULL THEN
		t_id := jairouter.admin_tenant(p_caller, t_ref);
	END IF;
	IF EXISTS (SELECT 1 FROM jairouter.roles WHERE name = n AND tenant_id IS NOT DISTINCT FROM t_id) THEN
		PERFORM jairouter.admin_fail(409, 'role_exists', format('Role ''%s'' already exists.', n));
	END IF;
	INSERT INTO jairouter.roles (tenant_id, name, allow, deny)
	VALUES (t_id, n, coalesce(jairouter.admin_text_array(p_body, 'allow'), '{}'),
		coalesce(jairouter.admin_text_array(p_body, 'deny'), '{}'))
	RETURNING * INTO r;
	RETURN jairouter.admin_role_doc(r);
EXCEPTION WHEN check_violation THEN
	PERFORM jairouter.admin_fail(400, 'invalid_role',
		'Invalid role: a name of 1 to 63 of A-Z a-z 0-9 _ . : / -, and permissions such as '
		'admin, usage:read, audit:read, service:chat, model:NAME, group:NAME or *.');
	RETURN NULL;
END;
$$;

-- The role the request names (id), if the caller may change it: global roles belong to
-- platform administrators.
CREATE OR REPLACE FUNCTION jairouter.admin_role_ref(p_caller jsonb, p_ref text) RETURNS jairouter.roles
LANGUAGE plpgsql STABLE AS $$
DECLARE
	r jairouter.roles;
BEGIN
	IF p_ref ~ '^[0-9]{1,18}$' THEN
		SELECT * INTO r FROM jairouter.roles WHERE id = p_ref::bigint;
	END IF;
	IF r.id IS NULL OR (NOT jairouter.admin_is_platform(p_caller)
			AND r.tenant_id IS DISTINCT FROM (p_caller ->> 'tenant_id')::bigint) THEN
		PERFORM jairouter.admin_fail(404, 'role_not_found', format('Role %s not found.', p_ref));
	END IF;
	RETURN r;
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.admin_role_delete(p_caller jsonb, p_args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	r jairouter.roles;
BEGIN
	PERFORM jairouter.admin_require(p_caller, 'admin');
	r := jairouter.admin_role_ref(p_caller, p_args ->> 'id');
	DELETE FROM jairouter.roles WHERE id = r.id;
	RETURN jsonb_build_object('id', r.id, 'name', r.name, 'deleted', true);
END;
$$;

-- The key the request names (id), if the caller manages its tenant.
CREATE OR REPLACE FUNCTION jairouter.admin_key_ref(p_caller jsonb, p_ref text) RETURNS jairouter.api_keys
LANGUAGE plpgsql STABLE AS $$
DECLARE
	k jairouter.api_keys;
BEGIN
	IF p_ref IS NULL OR p_ref !~ '^[0-9]{1,18}$' THEN
		PERFORM jairouter.admin_fail(400, 'invalid_key_id', 'A key is named by its numeric id.');
	END IF;
	SELECT * INTO k FROM jairouter.api_keys WHERE id = p_ref::bigint;
	IF k.id IS NULL OR (k.tenant_id <> (p_caller ->> 'tenant_id')::bigint
			AND NOT jairouter.admin_is_platform(p_caller)) THEN
		PERFORM jairouter.admin_fail(404, 'key_not_found', format('Key %s not found.', p_ref));
	END IF;
	RETURN k;
END;
$$;

-- A role name for a key: its tenant's role of that name, else the global one.
CREATE OR REPLACE FUNCTION jairouter.admin_role_for_key(k jairouter.api_keys, p_name text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
	r_id bigint;
BEGIN
	SELECT id INTO r_id FROM jairouter.roles WHERE name = p_name
		AND (tenant_id = k.tenant_id OR tenant_id IS NULL)
	ORDER BY tenant_id NULLS LAST LIMIT 1;
	IF r_id IS NULL THEN
		PERFORM jairouter.admin_fail(404, 'role_not_found',
			format('No role ''%s'' for the key''s tenant (its own or a global one).', p_name));
	END IF;
	RETURN r_id;
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.admin_key_role_add(p_caller jsonb, p_args jsonb, p_body jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	k jairouter.api_keys;
BEGIN
	PERFORM jairouter.admin_require(p_caller, 'admin');
	k := jairouter.admin_key_ref(p_caller, p_args ->> 'id');
	INSERT INTO jairouter.api_key_roles (key_id, role_id)
	VALUES (k.id, jairouter.admin_role_for_key(k, jairouter.admin_body_text(p_body, 'role', true)))
	ON CONFLICT DO NOTHING;
	RETURN jairouter.admin_key_doc(k);
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.admin_key_role_remove(p_caller jsonb, p_args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	k jairouter.api_keys;
BEGIN
	PERFORM jairouter.admin_require(p_caller, 'admin');
	k := jairouter.admin_key_ref(p_caller, p_args ->> 'id');
	DELETE FROM jairouter.api_key_roles
	WHERE key_id = k.id AND role_id = jairouter.admin_role_for_key(k, p_args ->> 'role');
	RETURN jairouter.admin_key_doc(k);
END;
$$;

-- ---- limits (changed by platform administrators) ---------------------------------------------

CREATE OR REPLACE FUNCTION jairouter.admin_body_int(p_body jsonb, p_field text) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	IF p_body IS NULL OR NOT p_body ? p_field OR p_body -> p_field = 'null'::jsonb THEN
		RETURN NULL;
	END IF;
	IF jsonb_typeof(p_body -> p_field) <> 'number' OR (p_body ->> p_field) !~ '^-?[0-9]{1,18}$' THEN
		PERFORM jairouter.admin_fail(400, 'invalid_' || p_field, format('The field ''%s'' must be an integer.', p_field));
	END IF;
	RETURN (p_body ->> p_field)::bigint;
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.admin_limit_create(p_caller jsonb, p_body jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	l jairouter.limits;
	l_id bigint;
BEGIN
	PERFORM jairouter.admin_require(p_caller, 'admin');
	PERFORM jairouter.admin_require_platform(p_caller);
	IF p_body - 'scope' - 'dimension' - 'algorithm' - 'amount' - 'window_ms' - 'tenant' - 'key'
			- 'model' - 'burst' - 'warmup_ms' <> '{}'::jsonb THEN
		PERFORM jairouter.admin_fail(400, 'unknown_field', 'A limit takes scope, dimension, algorithm, '
			'amount, window_ms, tenant, key (a prefix), model, burst and warmup_ms.');
	END IF;
	IF jsonb_typeof(p_body -> 'amount') IS DISTINCT FROM 'number' THEN
		PERFORM jairouter.admin_fail(400, 'invalid_amount', 'amount must be a number.');
	END IF;
	l_id := jairouter.set_limit(jairouter.admin_body_text(p_body, 'scope', true),
		jairouter.admin_body_text(p_body, 'dimension', true),
		jairouter.admin_body_text(p_body, 'algorithm', true), (p_body ->> 'amount')::numeric,
		jairouter.admin_body_int(p_body, 'window_ms'), jairouter.admin_body_text(p_body, 'tenant', false),
		jairouter.admin_body_text(p_body, 'key', false), jairouter.admin_body_text(p_body, 'model', false),
		jairouter.admin_body_int(p_body, 'burst'), jairouter.admin_body_int(p_body, 'warmup_ms'));
	SELECT * INTO l FROM jairouter.limits WHERE id = l_id;
	RETURN jairouter.admin_limit_doc(l);
EXCEPTION WHEN check_violation THEN
	PERFORM jairouter.admin_fail(400, 'invalid_limit', 'Invalid limit: ' || SQLERRM || ' (docs/limits.md).');
	RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.admin_limit_delete(p_caller jsonb, p_args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	ref text := p_args ->> 'id';
	l jairouter.limits;
BEGIN
	PERFORM jairouter.admin_require(p_caller, 'admin');
	PERFORM jairouter.admin_require_platform(p_caller);
	IF ref ~ '^[0-9]{1,18}$' THEN
		DELETE FROM jairouter.limits WHERE id = ref::bigint RETURNING * INTO l;
	END IF;
	IF l.id IS NULL THEN
		PERFORM jairouter.admin_fail(404, 'limit_not_found', format('Limit %s not found.', ref));
	END IF;
	RETURN jsonb_build_object('id', l.id, 'deleted', true);
END;
$$;

-- ---- token issuers and their keys ------------------------------------------------------------

-- Secrets stay write-only: the introspection client secret and the keys' JWKs (an `oct`
-- JWK is a shared secret) are never shown, only whether they are set.
CREATE OR REPLACE FUNCTION jairouter.admin_issuer_doc(i jairouter.jwt_issuers) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT to_jsonb(i) - 'introspection_client_secret' - 'tenant_id'
		|| jsonb_build_object('tenant', (SELECT name FROM jairouter.tenants WHERE id = i.tenant_id),
			'introspection_client_secret_set', i.introspection_client_secret IS NOT NULL,
			'keys', coalesce((SELECT jsonb_agg(jsonb_build_object('id', k.id, 'kid', k.kid,
				'kty', CASE WHEN k.jwk ~ '^\s*\{' THEN k.jwk::jsonb ->> 'kty' ELSE 'PEM' END,
				'status', k.status, 'created_at', k.created_at) ORDER BY k.id)
				FROM jairouter.jwt_issuer_keys k WHERE k.issuer_id = i.id), '[]'::jsonb))
$$;

CREATE OR REPLACE FUNCTION jairouter.admin_issuer_ref(p_caller jsonb, p_ref text) RETURNS jairouter.jwt_issuers
LANGUAGE plpgsql STABLE AS $$
DECLARE
	i jairouter.jwt_issuers;
BEGIN
	SELECT * INTO i FROM jairouter.jwt_issuers
	WHERE name = p_ref OR (p_ref ~ '^[0-9]{1,18}$' AND id = p_ref::bigint) LIMIT 1;
	IF i.id IS NULL OR (NOT jairouter.admin_is_platform(p_caller)
			AND i.tenant_id IS DISTINCT FROM (p_caller ->> 'tenant_id')::bigint) THEN
		PERFORM jairouter.admin_fail(404, 'issuer_not_found', format('Issuer ''%s'' not found.', p_ref));
	END IF;
	RETURN i;
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.admin_issuers_list(p_caller jsonb, p_args jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
	plat boolean := jairouter.admin_is_platform(p_caller);
BEGIN
	PERFORM jairouter.admin_require(p_caller, 'admin');
	RETURN jsonb_build_object('data', coalesce((SELECT jsonb_agg(jairouter.admin_issuer_doc(i) ORDER BY i.name)
		FROM jairouter.jwt_issuers i WHERE plat OR i.tenant_id = (p_caller ->> 'tenant_id')::bigint),
		'[]'::jsonb), 'next_cursor', NULL);
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.admin_issuer_get(p_caller jsonb, p_args jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
	PERFORM jairouter.admin_require(p_caller, 'admin');
	RETURN jairouter.admin_issuer_doc(jairouter.admin_issuer_ref(p_caller, p_args ->> 'issuer'));
END;
$$;

-- The fields of an issuer the API writes (docs/identity.md explains each); "tenant" is a
-- tenant's name.
CREATE OR REPLACE FUNCTION jairouter.admin_issuer_fields() RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
	SELECT ARRAY['name', 'issuer', 'discovery_url', 'algorithms', 'audience', 'leeway_s', 'require_exp',
		'tenant', 'tenant_claim', 'role_claim', 'role_map', 'default_roles', 'status',
		'introspection_url', 'introspection_client_id', 'introspection_client_secret',
		'introspection_failure']
$$;

-- The row i with the body's fields applied.
CREATE OR REPLACE FUNCTION jairouter.admin_issuer_apply(p_caller jsonb, i jairouter.jwt_issuers, p_body jsonb)
RETURNS jairouter.jwt_issuers LANGUAGE plpgsql STABLE AS $$
DECLARE
	extra text;
	b jsonb := p_body;
BEGIN
	SELECT k INTO extra FROM jsonb_object_keys(p_body) k WHERE k <> ALL (jairouter.admin_issuer_fields()) LIMIT 1;
	IF extra IS NOT NULL THEN
		PERFORM jairouter.admin_fail(400, 'unknown_field', format('An issuer has no field ''%s''.', extra));
	END IF;
	IF b ? 'tenant' THEN
		b := b - 'tenant' || jsonb_build_object('tenant_id', CASE WHEN b -> 'tenant' = 'null'::jsonb THEN NULL
			ELSE jairouter.admin_tenant(p_caller, b ->> 'tenant') END);
	END IF;
	BEGIN
		RETURN jsonb_populate_record(i, b);
	EXCEPTION WHEN OTHERS THEN
		PERFORM jairouter.admin_fail(400, 'invalid_issuer', 'Invalid issuer field: ' || SQLERRM);
		RETURN NULL;
	END;
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.admin_issuer_create(p_caller jsonb, p_body jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	i jairouter.jwt_issuers;
BEGIN
	PERFORM jairouter.admin_require(p_caller, 'admin');
	PERFORM jairouter.admin_require_platform(p_caller);
	i := jairouter.admin_issuer_apply(p_caller, i, p_body);
	INSERT INTO jairouter.jwt_issuers (name, issuer, discovery_url, algorithms, audience, leeway_s,
		require_exp, tenant_id, tenant_claim, role_claim, role_map, default_roles, status,
		introspection_url, introspection_client_id, introspection_client_secret, introspection_failure)
	VALUES (i.name, i.issuer, i.discovery_url, i.algorithms, i.audience, coalesce(i.leeway_s, 60),
		coalesce(i.require_exp, true), i.tenant_id, i.tenant_claim,
		CASE WHEN p_body ? 'role_claim' THEN i.role_claim ELSE 'roles' END, coalesce(i.role_map, '{}'),
		i.default_roles, coalesce(i.status, 'active'), i.introspection_url, i.introspection_client_id,
		i.introspection_client_secret, coalesce(i.introspection_failure, 'unavailable'))
	RETURNING * INTO i;
	RETURN jairouter.admin_issuer_doc(i);
EXCEPTION WHEN check_violation OR not_null_violation THEN
	PERFORM jairouter.admin_fail(400, 'invalid_issuer', 'Invalid issuer: ' || SQLERRM || ' (docs/identity.md).');
	RETURN NULL;
WHEN unique_violation THEN
	PERFORM jairouter.admin_fail(409, 'issuer_exists', 'An issuer with this name or iss already exists.');
	RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.admin_issuer_patch(p_caller jsonb, p_args jsonb, p_body jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	i jairouter.jwt_issuers;
BEGIN
	PERFORM jairouter.admin_require(p_caller, 'admin');
	PERFORM jairouter.admin_require_platform(p_caller);
	i := jairouter.admin_issuer_ref(p_caller, p_args ->> 'issuer');
	PERFORM jairouter.admin_check_match(p_args, jairouter.admin_issuer_doc(i));
	i := jairouter.admin_issuer_apply(p_caller, i, p_body);
	UPDATE jairouter.jwt_issuers SET name = i.name, issuer = i.issuer, discovery_url = i.discovery_url,
		algorithms = i.algorithms, audience = i.audience, leeway_s = i.leeway_s, require_exp = i.require_exp,
		tenant_id = i.tenant_id, tenant_claim = i.tenant_claim, role_claim = i.role_claim,
		role_map = i.role_map, default_roles = i.default_roles, status = i.status,
		introspection_url = i.introspection_url, introspection_client_id = i.introspection_client_id,
		introspection_client_secret = i.introspection_client_secret,
		introspection_failure = i.introspection_failure
	WHERE id = i.id RETURNING * INTO i;
	RETURN jairouter.admin_issuer_doc(i);
EXCEPTION WHEN check_violation OR not_null_violation THEN
	PERFORM jairouter.admin_fail(400, 'invalid_issuer', 'Invalid issuer: ' || SQLERRM || ' (docs/identity.md).');
	RETURN NULL;
WHEN unique_violation THEN
	PERFORM jairouter.admin_fail(409, 'issuer_exists', 'An issuer with this name or iss already exists.');
	RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.admin_issuer_delete(p_caller jsonb, p_args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	i jairouter.jwt_issuers;
BEGIN
	PERFORM jairouter.admin_require(p_caller, 'admin');
	PERFORM jairouter.admin_require_platform(p_caller);
	i := jairouter.admin_issuer_ref(p_caller, p_args ->> 'issuer');
	DELETE FROM jairouter.jwt_issuers WHERE id = i.id;
	RETURN jsonb_build_object('id', i.id, 'name', i.name, 'deleted', true);
END;
$$;

-- A verification key: {"kid": ..., "jwk": a JWK object, or a PEM public key as a string}.
CREATE OR REPLACE FUNCTION jairouter.admin_issuer_key_add(p_caller jsonb, p_args jsonb, p_body jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	i jairouter.jwt_issuers;
	material text;
BEGIN
	PERFORM jairouter.admin_require(p_caller, 'admin');
	PERFORM jairouter.admin_require_platform(p_caller);
	i := jairouter.admin_issuer_ref(p_caller, p_args ->> 'issuer');
	IF p_body - 'kid' - 'jwk' <> '{}'::jsonb THEN
		PERFORM jairouter.admin_fail(400, 'unknown_field', 'A key takes kid and jwk.');
	END IF;
	material := CASE jsonb_typeof(p_body -> 'jwk') WHEN 'object' THEN (p_body -> 'jwk')::text
		WHEN 'string' THEN p_body ->> 'jwk' END;
	IF material IS NULL THEN
		PERFORM jairouter.admin_fail(400, 'invalid_jwk', 'jwk must be a JWK object or a PEM public key.');
	END IF;
	INSERT INTO jairouter.jwt_issuer_keys (issuer_id, kid, jwk)
	VALUES (i.id, jairouter.admin_body_text(p_body, 'kid', false), material);
	SELECT * INTO i FROM jairouter.jwt_issuers WHERE id = i.id;
	RETURN jairouter.admin_issuer_doc(i);
EXCEPTION WHEN check_violation THEN
	PERFORM jairouter.admin_fail(400, 'invalid_jwk', 'Invalid key: ' || SQLERRM);
	RETURN NULL;
WHEN unique_violation THEN
	PERFORM jairouter.admin_fail(409, 'kid_exists', 'The issuer already has a key with this kid.');
	RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.admin_issuer_key_delete(p_caller jsonb, p_args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	i jairouter.jwt_issuers;
BEGIN
	PERFORM jairouter.admin_require(p_caller, 'admin');
	PERFORM jairouter.admin_require_platform(p_caller);
	i := jairouter.admin_issuer_ref(p_caller, p_args ->> 'issuer');
	DELETE FROM jairouter.jwt_issuer_keys WHERE issuer_id = i.id AND kid = p_args ->> 'kid';
	IF NOT FOUND THEN
		PERFORM jairouter.admin_fail(404, 'kid_not_found', format('The issuer has no key ''%s''.', p_args ->> 'kid'));
	END IF;
	RETURN jairouter.admin_issuer_doc(i);
END;
$$;

-- ---- routing of a model: strategy, fallback chain, virtual members --------------------------

CREATE OR REPLACE FUNCTION jairouter.admin_routing_doc(p_model_id bigint) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('model', m.name,
		'strategy', p.strategy, 'hash_key', p.hash_key,
		'fallbacks', coalesce((SELECT jsonb_agg(fm.name ORDER BY f.position) FROM jairouter.model_fallbacks f
			JOIN jairouter.models fm ON fm.id = f.fallback_model_id WHERE f.model_id = m.id), '[]'::jsonb),
		'fallback_reasons', (SELECT to_jsonb(f.reasons) FROM jairouter.model_fallbacks f
			WHERE f.model_id = m.id ORDER BY f.position LIMIT 1),
		'virtual_members', coalesce((SELECT jsonb_agg(vm.name ORDER BY mm.position)
			FROM jairouter.virtual_models v JOIN jairouter.virtual_model_members mm ON mm.virtual_model_id = v.id
			JOIN jairouter.models vm ON vm.id = mm.model_id WHERE v.model_id = m.id), '[]'::jsonb),
		'latency_budget_ms', (SELECT v.latency_budget_ms FROM jairouter.virtual_models v WHERE v.model_id = m.id))
	FROM jairouter.models m LEFT JOIN jairouter.routing_policies p ON p.model_id = m.id
	WHERE m.id = p_model_id
$$;

CREATE OR REPLACE FUNCTION jairouter.admin_model_ref(p_caller jsonb, p_name text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
	m_id bigint;
BEGIN
	SELECT id INTO m_id FROM jairouter.models WHERE name = p_name;
	IF m_id IS NULL OR NOT (jairouter.admin_is_platform(p_caller)
			OR jairouter.tenant_may_use((p_caller ->> 'tenant_id')::bigint, m_id)) THEN
		PERFORM jairouter.admin_fail(404, 'model_not_found', format('Model ''%s'' not found.', p_name));
	END IF;
	RETURN m_id;
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.admin_routing_get(p_caller jsonb, p_args jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
	PERFORM jairouter.admin_require(p_caller, 'admin');
	RETURN jairouter.admin_routing_doc(jairouter.admin_model_ref(p_caller, p_args ->> 'model'));
END;
$$;

-- PUT: the whole routing of a model; an absent field is reset (no strategy of its own, no
-- fallbacks, not virtual).
CREATE OR REPLACE FUNCTION jairouter.admin_routing_put(p_caller jsonb, p_args jsonb, p_body jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	m_id bigint;
	m text := p_args ->> 'model';
BEGIN
	PERFORM jairouter.admin_require(p_caller, 'admin');
	PERFORM jairouter.admin_require_platform(p_caller);
	m_id := jairouter.admin_model_ref(p_caller, m);
	PERFORM jairouter.admin_check_match(p_args, jairouter.admin_routing_doc(m_id));
	IF p_body - 'strategy' - 'hash_key' - 'fallbacks' - 'fallback_reasons' - 'virtual_members'
			- 'latency_budget_ms' - 'model' <> '{}'::jsonb THEN
		PERFORM jairouter.admin_fail(400, 'unknown_field', 'Routing takes strategy, hash_key, fallbacks, '
			'fallback_reasons, virtual_members and latency_budget_ms.');
	END IF;
	PERFORM jairouter.set_model_strategy(m, jairouter.admin_body_text(p_body, 'strategy', false),
		jairouter.admin_body_text(p_body, 'hash_key', false));
	PERFORM jairouter.set_model_fallbacks(m, coalesce(jairouter.admin_text_array(p_body, 'fallbacks'), '{}'),
		jairouter.admin_text_array(p_body, 'fallback_reasons'));
	PERFORM jairouter.set_virtual_model(m, coalesce(jairouter.admin_text_array(p_body, 'virtual_members'), '{}'),
		jairouter.admin_body_int(p_body, 'latency_budget_ms')::integer);
	RETURN jairouter.admin_routing_doc(m_id);
END;
$$;

-- ---- jairouterctl -------------------------------------------------------------------------------

-- The same operations for scripts/jairouterctl (a local caller, see admin_is_platform):
-- the answer's body, or an exception carrying the API's message (SQLSTATE P0002 for 404,
-- 23505 for 409, 22023 otherwise, so that jairouterctl's exit codes hold).
CREATE OR REPLACE FUNCTION jairouter.admin_cli(p_route text, p_args jsonb, p_body jsonb DEFAULT NULL)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	r jsonb := jairouter.admin_api(p_route, jsonb_build_object('actor',
		coalesce(nullif(current_setting('jairouter.actor', true), ''), current_user), 'local', true),
		p_args, p_body::text);
	st int := (r ->> 'status')::int;
BEGIN
	IF st >= 400 THEN
		RAISE EXCEPTION '%', r -> 'body' -> 'error' ->> 'message'
			USING ERRCODE = CASE st WHEN 404 THEN 'P0002' WHEN 409 THEN '23505' ELSE '22023' END;
	END IF;
	RETURN r -> 'body';
END;
$$;

-- ---- the dispatcher -----------------------------------------------------------------------

-- One API call: p_route names the operation (the agent's route table, docs/admin-api.md),
-- p_caller the authenticated caller ({actor, tenant_id, key_id, roles, permissions}),
-- p_args the path and query parameters and the If-Match and Idempotency-Key headers (all
-- strings), p_body_text the request body (a JSON object) or NULL. Returns {"status", "body", "etag"}: an error
-- is {"status": 4xx, "body": {"error": {...}}}, and nothing it changed is kept. Every
-- change is logged in jairouter.audit_log with the caller as actor.
CREATE OR REPLACE FUNCTION jairouter.admin_api(p_route text, p_caller jsonb, p_args jsonb, p_body_text text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	p_body jsonb;
	r jsonb;
	st text;
	msg text;
	hint text;
	code int;
BEGIN
	PERFORM set_config('jairouter.actor', p_caller ->> 'actor', true);
	PERFORM set_config('application_name', 'jairouter-admin-api', true);
	BEGIN
		IF p_body_text IS NOT NULL THEN
			BEGIN
				p_body := p_body_text::jsonb;
			EXCEPTION WHEN OTHERS THEN
				PERFORM jairouter.admin_fail(400, 'invalid_json', 'The request body is not valid JSON.');
			END;
			IF jsonb_typeof(p_body) <> 'object' THEN
				PERFORM jairouter.admin_fail(400, 'invalid_json', 'The request body must be a JSON object.');
			END IF;
		END IF;
		r := CASE p_route
			WHEN 'me' THEN jairouter.admin_me(p_caller)
			WHEN 'tenants.list' THEN jairouter.admin_tenants_list(p_caller, p_args)
			WHEN 'tenants.create' THEN jsonb_build_object('status', 201, 'body',
				jairouter.admin_tenant_create(p_caller, p_body))
			WHEN 'tenants.get' THEN jairouter.admin_tenant_get(p_caller, p_args)
			WHEN 'tenants.patch' THEN jairouter.admin_tenant_patch(p_caller, p_args, p_body)
			WHEN 'keys.list' THEN jairouter.admin_keys_list(p_caller, p_args)
			WHEN 'keys.create' THEN jairouter.admin_key_create(p_caller, p_args, p_body)
			WHEN 'keys.revoke' THEN jairouter.admin_key_revoke(p_caller, p_args)
			WHEN 'models.list' THEN jairouter.admin_models_list(p_caller, p_args)
			WHEN 'limits.list' THEN jairouter.admin_limits_list(p_caller, p_args)
			WHEN 'usage' THEN jairouter.admin_usage(p_caller, p_args)
			WHEN 'audit' THEN jairouter.admin_audit(p_caller, p_args)
			WHEN 'limits.create' THEN jsonb_build_object('status', 201, 'body',
				jairouter.admin_limit_create(p_caller, p_body))
			WHEN 'limits.delete' THEN jairouter.admin_limit_delete(p_caller, p_args)
			WHEN 'roles.list' THEN jairouter.admin_roles_list(p_caller, p_args)
			WHEN 'roles.create' THEN jsonb_build_object('status', 201, 'body',
				jairouter.admin_role_create(p_caller, p_body))
			WHEN 'roles.delete' THEN jairouter.admin_role_delete(p_caller, p_args)
			WHEN 'keys.roles.add' THEN jairouter.admin_key_role_add(p_caller, p_args, p_body)
			WHEN 'keys.roles.remove' THEN jairouter.admin_key_role_remove(p_caller, p_args)
			WHEN 'issuers.list' THEN jairouter.admin_issuers_list(p_caller, p_args)
			WHEN 'issuers.create' THEN jsonb_build_object('status', 201, 'body',
				jairouter.admin_issuer_create(p_caller, p_body))
			WHEN 'issuers.get' THEN jairouter.admin_issuer_get(p_caller, p_args)
			WHEN 'issuers.patch' THEN jairouter.admin_issuer_patch(p_caller, p_args, p_body)
			WHEN 'issuers.delete' THEN jairouter.admin_issuer_delete(p_caller, p_args)
			WHEN 'issuers.keys.add' THEN jsonb_build_object('status', 201, 'body',
				jairouter.admin_issuer_key_add(p_caller, p_args, p_body))
			WHEN 'issuers.keys.delete' THEN jairouter.admin_issuer_key_delete(p_caller, p_args)
			WHEN 'routing.get' THEN jairouter.admin_routing_get(p_caller, p_args)
			WHEN 'routing.put' THEN jairouter.admin_routing_put(p_caller, p_args, p_body)
			ELSE NULL END;
		IF r IS NULL THEN
			PERFORM jairouter.admin_fail(404, 'unknown_url', format('Unknown operation %s.', p_route));
		END IF;
		IF NOT (r ? 'status' AND r ? 'body') THEN
			r := jsonb_build_object('status', 200, 'body', r);
		END IF;
		IF p_route IN ('tenants.get', 'tenants.patch', 'tenants.create', 'issuers.get', 'issuers.patch',
				'issuers.create', 'routing.get', 'routing.put') THEN
			r := r || jsonb_build_object('etag', jairouter.admin_etag(r -> 'body'));
		END IF;
		RETURN r;
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
	END;
	code := CASE
		WHEN st ~ '^JR[0-9]{3}$' THEN substr(st, 3)::int
		WHEN st IN ('22023', '23514', '22P02', '22007', '22008', '22001', '23502', '22003') THEN 400
		WHEN st = '23505' THEN 409
		WHEN st = 'P0002' THEN 404
		ELSE 500 END;
	IF code = 500 THEN
		RAISE WARNING 'admin_api %: % %', p_route, st, msg;
		msg := 'The operation failed inside the database; the error is in the database log.';
	END IF;
	RETURN jsonb_build_object('status', code, 'body', jsonb_build_object('error', jsonb_build_object(
		'message', msg,
		'type', CASE code WHEN 401 THEN 'authentication_error' WHEN 403 THEN 'permission_error'
			WHEN 500 THEN 'server_error' ELSE 'invalid_request_error' END,
		'param', NULL,
		'code', coalesce(nullif(hint, ''), CASE code WHEN 404 THEN 'not_found' WHEN 409 THEN 'conflict'
			WHEN 500 THEN 'database_error' ELSE 'invalid_request' END))));
END;
$$;
