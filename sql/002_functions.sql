-- 002_functions: administration functions (used by scripts/jairouterctl). Errors are
-- raised with a readable message and a standard SQLSTATE:
--   P0002 no_data_found      the named tenant, key or model does not exist
--   23505 unique_violation   the name is taken
--   22023 invalid_parameter_value  a bad status, expiry or key reference
-- Keys are never stored or logged in clear: issue_key returns the key once and keeps
-- only its SHA-256 and its 11-character prefix.

-- A revoked key stays revoked: un-revoking would resurrect a secret that was reported
-- as leaked. Issue a new key instead.
CREATE OR REPLACE FUNCTION jairouter.api_keys_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF OLD.status = 'revoked' AND NEW.status <> 'revoked' THEN
		RAISE EXCEPTION 'key % (%) is revoked; issue a new key', OLD.id, OLD.prefix
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NEW.key_hash <> OLD.key_hash OR NEW.prefix <> OLD.prefix THEN
		RAISE EXCEPTION 'a key''s hash and prefix cannot change'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS api_keys_guard ON jairouter.api_keys;
CREATE TRIGGER api_keys_guard BEFORE UPDATE ON jairouter.api_keys
	FOR EACH ROW EXECUTE FUNCTION jairouter.api_keys_guard();

CREATE OR REPLACE FUNCTION jairouter.check_status(p_status text, p_allowed text[])
RETURNS void LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	IF p_status IS NULL OR NOT (p_status = ANY (p_allowed)) THEN
		RAISE EXCEPTION 'invalid status "%": expected one of %', p_status,
			array_to_string(p_allowed, ', ')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
END;
$$;

-- ---- tenants -------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION jairouter.add_tenant(p_name text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	new_id bigint;
BEGIN
	INSERT INTO jairouter.tenants (name) VALUES (p_name) RETURNING id INTO new_id;
	RETURN new_id;
EXCEPTION
	WHEN unique_violation THEN
		RAISE EXCEPTION 'tenant "%" already exists', p_name USING ERRCODE = 'unique_violation';
	WHEN check_violation OR not_null_violation THEN
		RAISE EXCEPTION 'invalid tenant name "%": 1 to 63 bytes, no control characters, '
			'no leading or trailing blanks', p_name USING ERRCODE = 'invalid_parameter_value';
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.set_tenant_status(p_name text, p_status text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM jairouter.check_status(p_status, ARRAY['active', 'disabled']);
	UPDATE jairouter.tenants SET status = p_status WHERE name = p_name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'tenant "%" not found', p_name USING ERRCODE = 'no_data_found';
	END IF;
END;
$$;

-- The id of a tenant, or an error when it does not exist.
CREATE OR REPLACE FUNCTION jairouter.tenant_id(p_name text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
	t_id bigint;
BEGIN
	SELECT id INTO t_id FROM jairouter.tenants WHERE name = p_name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'tenant "%" not found', p_name USING ERRCODE = 'no_data_found';
	END IF;
	RETURN t_id;
END;
$$;

-- ---- API keys ------------------------------------------------------------------------

-- Returns the new key, once. 256 bits come from two gen_random_uuid() (PostgreSQL's
-- strong random source, built in since 13; 244 of the bits are random, the rest are
-- the UUID version and variant), written as 64 hex digits.
CREATE OR REPLACE FUNCTION jairouter.issue_key(p_tenant text, p_name text DEFAULT NULL,
	p_expires_at timestamptz DEFAULT NULL)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	t_id bigint := jairouter.tenant_id(p_tenant);
	k text;
BEGIN
	IF p_expires_at IS NOT NULL AND p_expires_at <= now() THEN
		RAISE EXCEPTION 'expiry % is not in the future', p_expires_at
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	k := 'jr-' || replace(gen_random_uuid()::text, '-', '')
		|| replace(gen_random_uuid()::text, '-', '');
	INSERT INTO jairouter.api_keys (tenant_id, name, prefix, key_hash, expires_at)
	VALUES (t_id, coalesce(p_name, 'default'), left(k, 11),
		sha256(convert_to(k, 'UTF8')), p_expires_at);
	RETURN k;
EXCEPTION
	WHEN check_violation THEN
		RAISE EXCEPTION 'invalid key name "%": 1 to 128 characters, no control characters',
			p_name USING ERRCODE = 'invalid_parameter_value';
END;
$$;

-- Finds one key by id (digits), by prefix ("jr-" and 8 hex digits) or by the full key
-- (hashed here, never stored). An ambiguous prefix is an error that lists the ids.
CREATE OR REPLACE FUNCTION jairouter.find_key(p_ref text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
	ids bigint[];
BEGIN
	IF p_ref ~ '^[0-9]{1,18}$' THEN
		SELECT array_agg(id) INTO ids FROM jairouter.api_keys WHERE id = p_ref::bigint;
	ELSIF p_ref ~ '^jr-[0-9a-f]{64}$' THEN
		SELECT array_agg(id) INTO ids FROM jairouter.api_keys
		WHERE key_hash = sha256(convert_to(p_ref, 'UTF8'));
	ELSIF p_ref ~ '^jr-[0-9a-f]{8}$' THEN
		SELECT array_agg(id ORDER BY id) INTO ids FROM jairouter.api_keys WHERE prefix = p_ref;
	ELSE
		RAISE EXCEPTION 'invalid key reference: expected an id or a prefix like jr-1a2b3c4d'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF ids IS NULL THEN
		RAISE EXCEPTION 'key not found' USING ERRCODE = 'no_data_found';
	END IF;
	IF cardinality(ids) > 1 THEN
		RAISE EXCEPTION 'prefix % matches % keys (ids %): use the id', p_ref,
			cardinality(ids), array_to_string(ids, ', ')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN ids[1];
END;
$$;

-- Revokes one key; returns its id. Revoking a revoked key changes nothing.
CREATE OR REPLACE FUNCTION jairouter.revoke_key(p_ref text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	k_id bigint := jairouter.find_key(p_ref);
BEGIN
	UPDATE jairouter.api_keys SET status = 'revoked', revoked_at = now()
	WHERE id = k_id AND status <> 'revoked';
	RETURN k_id;
END;
$$;

-- ---- models --------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION jairouter.add_model(p_name text, p_backend text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	new_id bigint;
BEGIN
	IF p_backend IS NULL OR p_backend !~ '^[A-Za-z0-9._:-]{1,63}$' THEN
		RAISE EXCEPTION 'invalid backend name "%": 1 to 63 of A-Z a-z 0-9 . _ : -', p_backend
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	INSERT INTO jairouter.models (name, backend) VALUES (p_name, p_backend)
	RETURNING id INTO new_id;
	RETURN new_id;
EXCEPTION
	WHEN unique_violation THEN
		RAISE EXCEPTION 'model "%" already exists', p_name USING ERRCODE = 'unique_violation';
	WHEN check_violation OR not_null_violation THEN
		RAISE EXCEPTION 'invalid model name "%": 1 to 127 bytes, no control characters, '
			'no leading or trailing blanks', p_name USING ERRCODE = 'invalid_parameter_value';
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.set_model_status(p_name text, p_status text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM jairouter.check_status(p_status, ARRAY['active', 'disabled']);
	UPDATE jairouter.models SET status = p_status WHERE name = p_name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'model "%" not found', p_name USING ERRCODE = 'no_data_found';
	END IF;
END;
$$;
