-- 004_tenant_policy: who may use what. Model visibility, model groups, per-tenant grants
-- (deny wins), allowed service types, client IP allow-lists, per-tenant settings and
-- labels, per-key restrictions and rotation, encrypted provider credentials, and the
-- audit log. docs/tenancy.md is the operator's guide.
--
-- Errors follow 002_functions.sql: P0002 (no_data_found) for a missing tenant, model,
-- group, key or credential; 23505 (unique_violation) for a taken name; 22023
-- (invalid_parameter_value) for a bad value.
--
-- Idempotent: every statement can run again on a database that already has it.

-- ---- schema --------------------------------------------------------------------------

-- public: every tenant may use the model unless a grant denies it.
-- private: only tenants with an allow grant (on the model or on a group holding it).
ALTER TABLE jairouter.models ADD COLUMN IF NOT EXISTS visibility text NOT NULL DEFAULT 'public'
	CONSTRAINT models_visibility_check CHECK (visibility IN ('public', 'private'));

-- The service names of the agent's request router (enum pl_service).
CREATE OR REPLACE FUNCTION jairouter.service_names() RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
	SELECT ARRAY['chat', 'completions', 'embeddings', 'rerank', 'audio_speech',
		'audio_transcriptions', 'images_generations', 'images_edits', 'models']
$$;

-- settings: {"masking": bool, "on_error": "fail-open"|"fail-closed",
--            "limits": {...}  (reserved for the limits work)}; unknown keys are refused.
CREATE OR REPLACE FUNCTION jairouter.settings_valid(s jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_typeof(s) = 'object'
		AND NOT EXISTS (SELECT 1 FROM jsonb_object_keys(s) k
			WHERE k NOT IN ('masking', 'on_error', 'limits'))
		AND (NOT s ? 'masking' OR jsonb_typeof(s -> 'masking') = 'boolean')
		AND (NOT s ? 'on_error' OR s ->> 'on_error' IN ('fail-open', 'fail-closed'))
		AND (NOT s ? 'limits' OR jsonb_typeof(s -> 'limits') = 'object')
$$;

-- labels: a flat object of Prometheus label names to short strings (at most 8).
CREATE OR REPLACE FUNCTION jairouter.labels_valid(l jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_typeof(l) = 'object'
		AND (SELECT count(*) FROM jsonb_object_keys(l)) <= 8
		AND NOT EXISTS (SELECT 1 FROM jsonb_each(l) e
			WHERE e.key !~ '^[a-z_][a-z0-9_]{0,31}$'
				OR jsonb_typeof(e.value) <> 'string'
				OR char_length(e.value #>> '{}') > 64
				OR (e.value #>> '{}') ~ '[[:cntrl:]]')
$$;

ALTER TABLE jairouter.tenants
	ADD COLUMN IF NOT EXISTS allowed_services text[] NULL
		CONSTRAINT tenants_allowed_services_check
		CHECK (allowed_services <@ jairouter.service_names()),
	ADD COLUMN IF NOT EXISTS ip_allow cidr[] NULL
		CONSTRAINT tenants_ip_allow_check
		CHECK (cardinality(ip_allow) BETWEEN 1 AND 64 AND array_position(ip_allow, NULL) IS NULL),
	ADD COLUMN IF NOT EXISTS settings jsonb NOT NULL DEFAULT '{}'
		CONSTRAINT tenants_settings_check CHECK (jairouter.settings_valid(settings)),
	ADD COLUMN IF NOT EXISTS labels jsonb NOT NULL DEFAULT '{}'
		CONSTRAINT tenants_labels_check CHECK (jairouter.labels_valid(labels));

-- Per-key restrictions (NULL = none) and the key a rotation replaced.
ALTER TABLE jairouter.api_keys
	ADD COLUMN IF NOT EXISTS models text[] NULL
		CONSTRAINT api_keys_models_check
		CHECK (cardinality(models) BETWEEN 1 AND 256 AND array_position(models, NULL) IS NULL),
	ADD COLUMN IF NOT EXISTS ip_allow cidr[] NULL
		CONSTRAINT api_keys_ip_allow_check
		CHECK (cardinality(ip_allow) BETWEEN 1 AND 64 AND array_position(ip_allow, NULL) IS NULL),
	ADD COLUMN IF NOT EXISTS rotated_from bigint NULL
		REFERENCES jairouter.api_keys (id) ON DELETE SET NULL;

-- The agent reads the restricted keys alone (a sparse set).
CREATE INDEX IF NOT EXISTS api_keys_restricted_idx ON jairouter.api_keys (id)
	WHERE models IS NOT NULL OR ip_allow IS NOT NULL;

CREATE TABLE IF NOT EXISTS jairouter.model_groups (
	id         bigserial PRIMARY KEY,
	name       text NOT NULL UNIQUE
		CONSTRAINT model_groups_name_check CHECK (
			octet_length(name) BETWEEN 1 AND 63
			AND name !~ '[[:cntrl:]@]'
			AND name = btrim(name)),
	created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS jairouter.model_group_members (
	id       bigserial PRIMARY KEY,
	group_id bigint NOT NULL REFERENCES jairouter.model_groups (id) ON DELETE CASCADE,
	model_id bigint NOT NULL REFERENCES jairouter.models (id) ON DELETE CASCADE,
	UNIQUE (group_id, model_id)
);

-- One grant per (tenant, model) or (tenant, group). A deny wins over every allow.
CREATE TABLE IF NOT EXISTS jairouter.tenant_grants (
	id         bigserial PRIMARY KEY,
	tenant_id  bigint NOT NULL REFERENCES jairouter.tenants (id) ON DELETE CASCADE,
	model_id   bigint NULL REFERENCES jairouter.models (id) ON DELETE CASCADE,
	group_id   bigint NULL REFERENCES jairouter.model_groups (id) ON DELETE CASCADE,
	effect     text NOT NULL CONSTRAINT tenant_grants_effect_check CHECK (effect IN ('allow', 'deny')),
	created_at timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT tenant_grants_target_check CHECK ((model_id IS NULL) <> (group_id IS NULL))
);
CREATE UNIQUE INDEX IF NOT EXISTS tenant_grants_model_idx ON jairouter.tenant_grants (tenant_id, model_id)
	WHERE model_id IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS tenant_grants_group_idx ON jairouter.tenant_grants (tenant_id, group_id)
	WHERE group_id IS NOT NULL;

-- Upstream credentials, sealed with AES-256-GCM by `jairouter-spoa --seal` under a master
-- key that only the agents hold. ciphertext is base64(nonce | ciphertext | tag); the
-- additional data is jairouter.credential_aad(...) (binds the row id, scope, target, header
-- and scheme). The clear secret never reaches the database.
CREATE TABLE IF NOT EXISTS jairouter.provider_credentials (
	id         bigserial PRIMARY KEY,
	scope      text NOT NULL CONSTRAINT provider_credentials_scope_check
		CHECK (scope IN ('backend', 'model')),
	backend    text NULL CONSTRAINT provider_credentials_backend_check
		CHECK (backend ~ '^[A-Za-z0-9._:-]{1,63}$'),
	model_id   bigint NULL REFERENCES jairouter.models (id) ON DELETE CASCADE,
	header     text NOT NULL CONSTRAINT provider_credentials_header_check
		CHECK (header IN ('authorization', 'x-api-key', 'api-key')),
	scheme     text NOT NULL CONSTRAINT provider_credentials_scheme_check
		CHECK (scheme IN ('bearer', 'raw')),
	key_id     text NOT NULL CONSTRAINT provider_credentials_key_id_check
		CHECK (key_id ~ '^[A-Za-z0-9_.-]{1,32}$'),
	ciphertext text NOT NULL CONSTRAINT provider_credentials_ciphertext_check
		CHECK (octet_length(ciphertext) BETWEEN 40 AND 8192
			AND ciphertext ~ '^[A-Za-z0-9+/]+={0,2}$'),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT provider_credentials_target_check CHECK (
		(scope = 'backend' AND backend IS NOT NULL AND model_id IS NULL)
		OR (scope = 'model' AND model_id IS NOT NULL AND backend IS NULL))
);
CREATE UNIQUE INDEX IF NOT EXISTS provider_credentials_backend_idx
	ON jairouter.provider_credentials (backend) WHERE scope = 'backend';
CREATE UNIQUE INDEX IF NOT EXISTS provider_credentials_model_idx
	ON jairouter.provider_credentials (model_id) WHERE scope = 'model';

CREATE TABLE IF NOT EXISTS jairouter.audit_log (
	id         bigserial PRIMARY KEY,
	at         timestamptz NOT NULL DEFAULT now(),
	db_user    text NOT NULL DEFAULT current_user,
	app        text NULL,
	actor      text NULL,
	table_name text NOT NULL,
	op         text NOT NULL CHECK (op IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')),
	row_id     bigint NULL,
	old_row    jsonb NULL,
	new_row    jsonb NULL
);
CREATE INDEX IF NOT EXISTS audit_log_at_idx ON jairouter.audit_log (at);

-- ---- triggers: change notifications, updated_at, audit --------------------------------

-- Secrets never reach the audit log: the key hash and the sealed credential are dropped.
CREATE OR REPLACE FUNCTION jairouter.audit_redact(r jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT r - 'key_hash' - 'ciphertext'
$$;

CREATE OR REPLACE FUNCTION jairouter.audit_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	o jsonb;
	n jsonb;
BEGIN
	IF TG_OP IN ('UPDATE', 'DELETE') THEN
		o := jairouter.audit_redact(to_jsonb(OLD));
	END IF;
	IF TG_OP IN ('INSERT', 'UPDATE') THEN
		n := jairouter.audit_redact(to_jsonb(NEW));
	END IF;
	IF TG_OP = 'UPDATE' AND o = n THEN
		RETURN NULL; -- nothing an auditor can see changed
	END IF;
	INSERT INTO jairouter.audit_log (app, actor, table_name, op, row_id, old_row, new_row)
	VALUES (nullif(current_setting('application_name', true), ''),
		nullif(current_setting('jairouter.actor', true), ''),
		TG_TABLE_NAME, TG_OP, coalesce((n ->> 'id')::bigint, (o ->> 'id')::bigint), o, n);
	RETURN NULL;
END;
$$;

DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['model_groups', 'model_group_members', 'tenant_grants',
			'provider_credentials'] LOOP
		PERFORM jairouter.install_notify(t);
	END LOOP;
	FOREACH t IN ARRAY ARRAY['tenants', 'api_keys', 'models', 'model_groups',
			'model_group_members', 'tenant_grants', 'provider_credentials'] LOOP
		EXECUTE format('DROP TRIGGER IF EXISTS %I ON jairouter.%I', t || '_audit', t);
		EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON jairouter.%I '
			'FOR EACH ROW EXECUTE FUNCTION jairouter.audit_change()', t || '_audit', t);
	END LOOP;
END;
$$;

DROP TRIGGER IF EXISTS provider_credentials_touch ON jairouter.provider_credentials;
CREATE TRIGGER provider_credentials_touch BEFORE UPDATE ON jairouter.provider_credentials
	FOR EACH ROW EXECUTE FUNCTION jairouter.touch_updated_at();

-- ---- helpers -------------------------------------------------------------------------

-- jairouter.model_id(name) comes from 003_catalogue.sql.

CREATE OR REPLACE FUNCTION jairouter.group_id(p_name text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
	g_id bigint;
BEGIN
	SELECT id INTO g_id FROM jairouter.model_groups WHERE name = p_name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'model group "%" not found', p_name USING ERRCODE = 'no_data_found';
	END IF;
	RETURN g_id;
END;
$$;

-- Parses a comma-separated CIDR list ('' or NULL = no list). Errors name the bad entry.
CREATE OR REPLACE FUNCTION jairouter.parse_cidrs(p_list text) RETURNS cidr[]
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	item text;
	out cidr[] := '{}';
BEGIN
	IF p_list IS NULL OR btrim(p_list) = '' THEN
		RETURN NULL;
	END IF;
	FOREACH item IN ARRAY string_to_array(p_list, ',') LOOP
		BEGIN
			out := out || btrim(item)::cidr;
		EXCEPTION WHEN invalid_text_representation OR invalid_parameter_value THEN
			RAISE EXCEPTION 'invalid CIDR "%": expected e.g. 10.0.0.0/8 or 2001:db8::/32 (host bits must be zero)',
				btrim(item) USING ERRCODE = 'invalid_parameter_value';
		END;
	END LOOP;
	IF cardinality(out) > 64 THEN
		RAISE EXCEPTION 'at most 64 CIDRs per list' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN out;
END;
$$;

-- ---- tenants -------------------------------------------------------------------------

-- NULL: every service type. Names are checked against jairouter.service_names().
CREATE OR REPLACE FUNCTION jairouter.set_tenant_services(p_tenant text, p_services text[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	bad text;
BEGIN
	SELECT s INTO bad FROM unnest(p_services) s
	WHERE s IS NULL OR NOT (s = ANY (jairouter.service_names())) LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'unknown service type "%": expected some of %', bad,
			array_to_string(jairouter.service_names(), ', ')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	UPDATE jairouter.tenants SET allowed_services = p_services
	WHERE id = jairouter.tenant_id(p_tenant);
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.set_tenant_ip_allow(p_tenant text, p_cidrs text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	UPDATE jairouter.tenants SET ip_allow = jairouter.parse_cidrs(p_cidrs)
	WHERE id = jairouter.tenant_id(p_tenant);
END;
$$;

-- Merges p_patch into the tenant's jsonb column p_column ('settings' or 'labels'); a JSON
-- null value removes that key. p_rules names what the column accepts, for the error.
CREATE OR REPLACE FUNCTION jairouter.merge_tenant_json(p_tenant text, p_column text,
	p_patch jsonb, p_rules text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	result jsonb;
BEGIN
	IF p_patch IS NULL OR jsonb_typeof(p_patch) <> 'object' THEN
		RAISE EXCEPTION '% must be a JSON object', p_column USING ERRCODE = 'invalid_parameter_value';
	END IF;
	EXECUTE format('UPDATE jairouter.tenants SET %1$I = jsonb_strip_nulls(%1$I || $1) '
		'WHERE id = $2 RETURNING %1$I', p_column)
		INTO result USING p_patch, jairouter.tenant_id(p_tenant);
	RETURN result;
EXCEPTION WHEN check_violation THEN
	RAISE EXCEPTION 'invalid % %: %', p_column, p_patch, p_rules
		USING ERRCODE = 'invalid_parameter_value';
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.set_tenant_settings(p_tenant text, p_patch jsonb)
RETURNS jsonb LANGUAGE sql AS $$
	SELECT jairouter.merge_tenant_json(p_tenant, 'settings', p_patch, 'keys are masking '
		'(true|false), on_error ("fail-open"|"fail-closed") and limits (an object)')
$$;

CREATE OR REPLACE FUNCTION jairouter.set_tenant_labels(p_tenant text, p_patch jsonb)
RETURNS jsonb LANGUAGE sql AS $$
	SELECT jairouter.merge_tenant_json(p_tenant, 'labels', p_patch, 'at most 8, names like '
		'team_name (a-z, 0-9, _), string values of at most 64 characters')
$$;

-- ---- models: visibility and groups ----------------------------------------------------

CREATE OR REPLACE FUNCTION jairouter.set_model_visibility(p_model text, p_visibility text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	IF p_visibility IS NULL OR p_visibility NOT IN ('public', 'private') THEN
		RAISE EXCEPTION 'invalid visibility "%": expected public or private', p_visibility
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	UPDATE jairouter.models SET visibility = p_visibility WHERE id = jairouter.model_id(p_model);
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.add_group(p_name text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	new_id bigint;
BEGIN
	INSERT INTO jairouter.model_groups (name) VALUES (p_name) RETURNING id INTO new_id;
	RETURN new_id;
EXCEPTION
	WHEN unique_violation THEN
		RAISE EXCEPTION 'model group "%" already exists', p_name USING ERRCODE = 'unique_violation';
	WHEN check_violation OR not_null_violation THEN
		RAISE EXCEPTION 'invalid group name "%": 1 to 63 bytes, no control characters, no "@", '
			'no leading or trailing blanks', p_name USING ERRCODE = 'invalid_parameter_value';
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.group_add_model(p_group text, p_model text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO jairouter.model_group_members (group_id, model_id)
	VALUES (jairouter.group_id(p_group), jairouter.model_id(p_model))
	ON CONFLICT (group_id, model_id) DO NOTHING;
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.group_remove_model(p_group text, p_model text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM jairouter.model_group_members
	WHERE group_id = jairouter.group_id(p_group) AND model_id = jairouter.model_id(p_model);
	IF NOT FOUND THEN
		RAISE EXCEPTION 'model "%" is not in group "%"', p_model, p_group
			USING ERRCODE = 'no_data_found';
	END IF;
END;
$$;

-- ---- grants --------------------------------------------------------------------------

-- p_target: a model name, or "@group". Sets the tenant's one grant on that target.
CREATE OR REPLACE FUNCTION jairouter.grant_model(p_tenant text, p_target text, p_effect text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	t_id bigint := jairouter.tenant_id(p_tenant);
	g_id bigint;
BEGIN
	IF p_effect IS NULL OR p_effect NOT IN ('allow', 'deny') THEN
		RAISE EXCEPTION 'invalid grant "%": expected allow or deny', p_effect
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF left(p_target, 1) = '@' THEN
		INSERT INTO jairouter.tenant_grants (tenant_id, group_id, effect)
		VALUES (t_id, jairouter.group_id(substr(p_target, 2)), p_effect)
		ON CONFLICT (tenant_id, group_id) WHERE group_id IS NOT NULL
		DO UPDATE SET effect = EXCLUDED.effect RETURNING id INTO g_id;
	ELSE
		INSERT INTO jairouter.tenant_grants (tenant_id, model_id, effect)
		VALUES (t_id, jairouter.model_id(p_target), p_effect)
		ON CONFLICT (tenant_id, model_id) WHERE model_id IS NOT NULL
		DO UPDATE SET effect = EXCLUDED.effect RETURNING id INTO g_id;
	END IF;
	RETURN g_id;
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.remove_grant(p_tenant text, p_target text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	t_id bigint := jairouter.tenant_id(p_tenant);
BEGIN
	IF left(p_target, 1) = '@' THEN
		DELETE FROM jairouter.tenant_grants
		WHERE tenant_id = t_id AND group_id = jairouter.group_id(substr(p_target, 2));
	ELSE
		DELETE FROM jairouter.tenant_grants
		WHERE tenant_id = t_id AND model_id = jairouter.model_id(p_target);
	END IF;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'tenant "%" has no grant on "%"', p_tenant, p_target
			USING ERRCODE = 'no_data_found';
	END IF;
END;
$$;

-- Whether a tenant may use a model: the agent's rule, for operators and tests.
-- A deny on the model or on a group holding it wins; else an allow; else public only.
CREATE OR REPLACE FUNCTION jairouter.tenant_may_use(p_tenant_id bigint, p_model_id bigint)
RETURNS boolean LANGUAGE sql STABLE AS $$
	WITH g AS (
		SELECT effect FROM jairouter.tenant_grants
		WHERE tenant_id = p_tenant_id AND (model_id = p_model_id OR group_id IN (
			SELECT group_id FROM jairouter.model_group_members WHERE model_id = p_model_id)))
	SELECT CASE
		WHEN EXISTS (SELECT 1 FROM g WHERE effect = 'deny') THEN false
		WHEN EXISTS (SELECT 1 FROM g WHERE effect = 'allow') THEN true
		ELSE (SELECT visibility = 'public' FROM jairouter.models WHERE id = p_model_id)
	END
$$;

-- ---- keys ----------------------------------------------------------------------------

-- issue_key with restrictions: p_models (model names; NULL = every model the tenant
-- may use) and p_ip_allow (NULL = any address the tenant allows).
CREATE OR REPLACE FUNCTION jairouter.issue_key(p_tenant text, p_name text,
	p_expires_at timestamptz, p_models text[], p_ip_allow cidr[])
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	k text;
	missing text;
BEGIN
	SELECT m INTO missing FROM unnest(p_models) m
	WHERE NOT EXISTS (SELECT 1 FROM jairouter.models WHERE name = m) LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'model "%" not found', missing USING ERRCODE = 'no_data_found';
	END IF;
	k := jairouter.issue_key(p_tenant, p_name, p_expires_at);
	UPDATE jairouter.api_keys SET models = p_models, ip_allow = p_ip_allow
	WHERE key_hash = sha256(convert_to(k, 'UTF8'));
	RETURN k;
END;
$$;

-- Rotation: a new key with the old one's tenant, name and restrictions; the old key
-- keeps working for p_overlap, then expires (an earlier expiry is kept). Returns the
-- new key, once.
CREATE OR REPLACE FUNCTION jairouter.rotate_key(p_ref text, p_overlap interval DEFAULT '1 hour')
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	old jairouter.api_keys;
	k text;
BEGIN
	IF p_overlap IS NULL OR p_overlap < interval '0' THEN
		RAISE EXCEPTION 'overlap must be zero or positive' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT * INTO old FROM jairouter.api_keys WHERE id = jairouter.find_key(p_ref) FOR UPDATE;
	IF old.status <> 'active' OR (old.expires_at IS NOT NULL AND old.expires_at <= now()) THEN
		RAISE EXCEPTION 'key % (%) is not active; issue a new key instead', old.id, old.prefix
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	k := 'jr-' || replace(gen_random_uuid()::text, '-', '')
		|| replace(gen_random_uuid()::text, '-', '');
	INSERT INTO jairouter.api_keys (tenant_id, name, prefix, key_hash, models, ip_allow, rotated_from)
	VALUES (old.tenant_id, old.name, left(k, 11), sha256(convert_to(k, 'UTF8')), old.models,
		old.ip_allow, old.id);
	UPDATE jairouter.api_keys SET expires_at = least(coalesce(expires_at, 'infinity'), now() + p_overlap)
	WHERE id = old.id;
	RETURN k;
END;
$$;

-- Sets (or, with NULL, clears) a key's expiry; returns its id. A past time expires it now.
CREATE OR REPLACE FUNCTION jairouter.expire_key(p_ref text, p_when timestamptz) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	k_id bigint := jairouter.find_key(p_ref);
BEGIN
	UPDATE jairouter.api_keys SET expires_at = p_when WHERE id = k_id;
	RETURN k_id;
END;
$$;

-- ---- provider credentials ------------------------------------------------------------

-- The id a credential for this target has or will get (reserved from the sequence), so
-- that the sealed value can be bound to it before the row is written.
CREATE OR REPLACE FUNCTION jairouter.credential_slot(p_scope text, p_target text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	c_id bigint;
BEGIN
	IF p_scope = 'backend' THEN
		IF p_target IS NULL OR p_target !~ '^[A-Za-z0-9._:-]{1,63}$' THEN
			RAISE EXCEPTION 'invalid backend name "%": 1 to 63 of A-Z a-z 0-9 . _ : -', p_target
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		SELECT id INTO c_id FROM jairouter.provider_credentials
		WHERE scope = 'backend' AND backend = p_target;
	ELSIF p_scope = 'model' THEN
		SELECT id INTO c_id FROM jairouter.provider_credentials
		WHERE scope = 'model' AND model_id = jairouter.model_id(p_target);
	ELSE
		RAISE EXCEPTION 'invalid scope "%": expected backend or model', p_scope
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN coalesce(c_id, nextval(pg_get_serial_sequence('jairouter.provider_credentials', 'id')));
END;
$$;

-- The additional authenticated data a credential is sealed with. The model scope uses
-- the model's id, so renaming a model keeps its credential valid.
CREATE OR REPLACE FUNCTION jairouter.credential_aad(p_id bigint, p_scope text, p_target text,
	p_header text, p_scheme text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
	IF p_header IS NULL OR p_header NOT IN ('authorization', 'x-api-key', 'api-key') THEN
		RAISE EXCEPTION 'invalid header "%": expected authorization, x-api-key or api-key', p_header
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF p_scheme IS NULL OR p_scheme NOT IN ('bearer', 'raw') THEN
		RAISE EXCEPTION 'invalid scheme "%": expected bearer or raw', p_scheme
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN 'jairouter-credential:v1:' || p_id || ':' || p_scope || ':'
		|| CASE WHEN p_scope = 'model' THEN jairouter.model_id(p_target)::text ELSE p_target END
		|| ':' || p_header || ':' || p_scheme;
END;
$$;

-- The AAD of a stored credential (used when resealing under a new master key).
CREATE OR REPLACE FUNCTION jairouter.credential_aad_of(c jairouter.provider_credentials)
RETURNS text LANGUAGE sql STABLE AS $$
	SELECT 'jairouter-credential:v1:' || c.id || ':' || c.scope || ':'
		|| coalesce(c.backend, c.model_id::text) || ':' || c.header || ':' || c.scheme
$$;

-- p_sealed: "key_id:base64" as printed by jairouter-spoa --seal.
CREATE OR REPLACE FUNCTION jairouter.set_credential(p_id bigint, p_scope text, p_target text,
	p_header text, p_scheme text, p_sealed text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	kid text := split_part(p_sealed, ':', 1);
	ct text := substr(p_sealed, length(split_part(p_sealed, ':', 1)) + 2);
	m_id bigint;
BEGIN
	PERFORM jairouter.credential_aad(p_id, p_scope, p_target, p_header, p_scheme);
	IF p_scope = 'model' THEN
		m_id := jairouter.model_id(p_target);
	END IF;
	INSERT INTO jairouter.provider_credentials AS c (id, scope, backend, model_id, header, scheme,
		key_id, ciphertext)
	VALUES (p_id, p_scope, CASE WHEN p_scope = 'backend' THEN p_target END, m_id, p_header,
		p_scheme, kid, ct)
	ON CONFLICT (id) DO UPDATE SET header = EXCLUDED.header, scheme = EXCLUDED.scheme,
		key_id = EXCLUDED.key_id, ciphertext = EXCLUDED.ciphertext
	WHERE c.scope = EXCLUDED.scope AND c.backend IS NOT DISTINCT FROM EXCLUDED.backend
		AND c.model_id IS NOT DISTINCT FROM EXCLUDED.model_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'credential % belongs to another target', p_id
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN p_id;
EXCEPTION WHEN check_violation THEN
	RAISE EXCEPTION 'malformed sealed credential: expected KEY_ID:BASE64 from jairouter-spoa --seal'
		USING ERRCODE = 'invalid_parameter_value';
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.delete_credential(p_scope text, p_target text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	c_id bigint;
BEGIN
	IF p_scope = 'model' THEN
		DELETE FROM jairouter.provider_credentials
		WHERE scope = 'model' AND model_id = jairouter.model_id(p_target) RETURNING id INTO c_id;
	ELSE
		DELETE FROM jairouter.provider_credentials
		WHERE scope = 'backend' AND backend = p_target RETURNING id INTO c_id;
	END IF;
	IF c_id IS NULL THEN
		RAISE EXCEPTION 'no credential for % "%"', p_scope, p_target USING ERRCODE = 'no_data_found';
	END IF;
	RETURN c_id;
END;
$$;
