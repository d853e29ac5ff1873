-- 007_identity: identities beyond API keys. JWT issuers (static keys or an OIDC discovery
-- document), their keys, revoked tokens and subjects, roles and permissions (RBAC) with
-- their assignment to API keys, and the security audit (authentication failures,
-- denials, lockouts). docs/identity.md is the operator's guide.
--
-- Idempotent: every statement can run again on a database that already has it.

-- ---- issuers ---------------------------------------------------------------------------

-- The algorithms the agent implements (spoa/src/jwt/jwt.h). `none` is not one of them.
CREATE OR REPLACE FUNCTION jairouter.jwt_algorithms() RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
	SELECT ARRAY['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'ES256',
		'ES384', 'EdDSA']
$$;

-- A claim name, or a dotted path into nested objects ("realm_access.roles").
CREATE OR REPLACE FUNCTION jairouter.claim_path_valid(p text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
	SELECT p ~ '^[A-Za-z0-9_:/-]{1,64}(\.[A-Za-z0-9_:/-]{1,64}){0,3}$'
$$;

CREATE TABLE IF NOT EXISTS jairouter.jwt_issuers (
	id            bigserial PRIMARY KEY,
	name          text NOT NULL UNIQUE
		CONSTRAINT jwt_issuers_name_check CHECK (name ~ '^[A-Za-z0-9_.-]{1,48}$'),
	-- The exact `iss` value of the tokens.
	issuer        text NOT NULL UNIQUE
		CONSTRAINT jwt_issuers_issuer_check CHECK (octet_length(issuer) BETWEEN 1 AND 255
			AND issuer !~ '[[:cntrl:]]'),
	-- OIDC: where the discovery document is (NULL: static keys from jwt_issuer_keys only).
	discovery_url text NULL,
	-- Pinned: a token whose `alg` is not listed is refused, whatever its key.
	algorithms    text[] NOT NULL
		CONSTRAINT jwt_issuers_algorithms_check CHECK (cardinality(algorithms) >= 1
			AND algorithms <@ jairouter.jwt_algorithms()),
	audience      text NULL
		CONSTRAINT jwt_issuers_audience_check CHECK (octet_length(audience) BETWEEN 1 AND 255),
	leeway_s      integer NOT NULL DEFAULT 60
		CONSTRAINT jwt_issuers_leeway_check CHECK (leeway_s BETWEEN 0 AND 600),
	require_exp   boolean NOT NULL DEFAULT true,
	-- The tenant: fixed, or the tenant name in a claim (exactly one of the two).
	tenant_id     bigint NULL REFERENCES jairouter.tenants (id) ON DELETE CASCADE,
	tenant_claim  text NULL
		CONSTRAINT jwt_issuers_tenant_claim_check CHECK (jairouter.claim_path_valid(tenant_claim)),
	-- Roles: the values of role_claim (a string, an array of strings, or a space-separated
	-- list such as `scope`), renamed through role_map when it is not empty (only mapped
	-- values count then), else used as role names; default_roles when none matched.
	role_claim    text NULL DEFAULT 'roles'
		CONSTRAINT jwt_issuers_role_claim_check CHECK (jairouter.claim_path_valid(role_claim)),
	role_map      jsonb NOT NULL DEFAULT '{}'
		CONSTRAINT jwt_issuers_role_map_check CHECK (jsonb_typeof(role_map) = 'object'),
	default_roles text[] NULL
		CONSTRAINT jwt_issuers_default_roles_check CHECK (cardinality(default_roles) <= 16),
	status        text NOT NULL DEFAULT 'active'
		CONSTRAINT jwt_issuers_status_check CHECK (status IN ('active', 'disabled')),
	created_at    timestamptz NOT NULL DEFAULT now(),
	updated_at    timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT jwt_issuers_tenant_check CHECK ((tenant_id IS NULL) <> (tenant_claim IS NULL))
);

-- OAuth 2.0 token introspection (RFC 7662) for opaque bearer tokens: the endpoint, the
-- client credentials the gateway authenticates with (HTTP Basic; the secret is a secret:
-- restrict who may read this table), and what a failed introspection answers: 503
-- 'unavailable' (retry later) or 401 'reject'.
ALTER TABLE jairouter.jwt_issuers
	ADD COLUMN IF NOT EXISTS introspection_url text NULL
		CONSTRAINT jwt_issuers_introspection_url_check
		CHECK (octet_length(introspection_url) <= 500 AND introspection_url ~ '^https?://[^[:space:][:cntrl:]]+$'),
	ADD COLUMN IF NOT EXISTS introspection_client_id text NULL
		CONSTRAINT jwt_issuers_introspection_client_id_check
		CHECK (octet_length(introspection_client_id) BETWEEN 1 AND 127 AND introspection_client_id !~ '[[:cntrl:]:]'),
	ADD COLUMN IF NOT EXISTS introspection_client_secret text NULL
		CONSTRAINT jwt_issuers_introspection_secret_check
		CHECK (octet_length(introspection_client_secret) BETWEEN 1 AND 255 AND introspection_client_secret !~ '[[:cntrl:]]'),
	ADD COLUMN IF NOT EXISTS introspection_failure text NOT NULL DEFAULT 'unavailable'
		CONSTRAINT jwt_issuers_introspection_failure_check CHECK (introspection_failure IN ('unavailable', 'reject'));

-- (PostgreSQL regular expressions allow at most 255 repetitions: the length is its own test.)
ALTER TABLE jairouter.jwt_issuers DROP CONSTRAINT IF EXISTS jwt_issuers_discovery_check;
ALTER TABLE jairouter.jwt_issuers ADD CONSTRAINT jwt_issuers_discovery_check
	CHECK (octet_length(discovery_url) <= 500 AND discovery_url ~ '^https?://[^[:space:][:cntrl:]]+$');

-- Static verification keys: a public JWK, a PEM public key, or an `oct` JWK (a shared
-- HMAC secret of at least 32 bytes; such a row is a secret: restrict who may read it).
CREATE TABLE IF NOT EXISTS jairouter.jwt_issuer_keys (
	id         bigserial PRIMARY KEY,
	issuer_id  bigint NOT NULL REFERENCES jairouter.jwt_issuers (id) ON DELETE CASCADE,
	kid        text NULL
		CONSTRAINT jwt_issuer_keys_kid_check CHECK (octet_length(kid) BETWEEN 1 AND 127
			AND kid !~ '[[:cntrl:]]'),
	jwk        text NOT NULL
		CONSTRAINT jwt_issuer_keys_jwk_check CHECK (octet_length(jwk) BETWEEN 2 AND 16384),
	status     text NOT NULL DEFAULT 'active'
		CONSTRAINT jwt_issuer_keys_status_check CHECK (status IN ('active', 'disabled')),
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS jwt_issuer_keys_kid_idx ON jairouter.jwt_issuer_keys (issuer_id, kid)
	WHERE kid IS NOT NULL;

-- ---- revocation ------------------------------------------------------------------------

-- A revoked token id. expires_at: after it the token is dead anyway and the row may go
-- (jairouter.purge_identity()).
CREATE TABLE IF NOT EXISTS jairouter.revoked_tokens (
	id         bigserial PRIMARY KEY,
	issuer_id  bigint NOT NULL REFERENCES jairouter.jwt_issuers (id) ON DELETE CASCADE,
	jti        text NOT NULL CONSTRAINT revoked_tokens_jti_check CHECK (octet_length(jti) BETWEEN 1 AND 255),
	expires_at timestamptz NULL,
	reason     text NULL,
	revoked_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (issuer_id, jti)
);

-- A revoked user: tokens of this subject issued before not_before (their `iat`; a token
-- without `iat` counts as issued before) are refused. Moving not_before forward logs the
-- user out everywhere; deleting the row lifts it.
CREATE TABLE IF NOT EXISTS jairouter.revoked_subjects (
	id         bigserial PRIMARY KEY,
	issuer_id  bigint NOT NULL REFERENCES jairouter.jwt_issuers (id) ON DELETE CASCADE,
	subject    text NOT NULL CONSTRAINT revoked_subjects_subject_check CHECK (octet_length(subject) BETWEEN 1 AND 255),
	not_before timestamptz NOT NULL DEFAULT now(),
	reason     text NULL,
	revoked_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (issuer_id, subject)
);

-- ---- roles -----------------------------------------------------------------------------

-- A permission is one of:
--   *                       everything
--   service:<service>|*     call a service type (jairouter.service_names())
--   model:<model name>|*    use a model (by its canonical name)
--   group:<group name>      use the models of a model group
--   usage:read, audit:read, admin
CREATE OR REPLACE FUNCTION jairouter.permission_valid(p text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
	SELECT p = '*' OR p IN ('usage:read', 'audit:read', 'admin')
		OR p = 'service:*' OR (p LIKE 'service:%' AND substr(p, 9) = ANY (jairouter.service_names()))
		OR p ~ '^model:[^[:space:][:cntrl:]]{1,127}$'
		OR p ~ '^group:[^[:space:][:cntrl:]@]{1,63}$'
$$;

CREATE OR REPLACE FUNCTION jairouter.permissions_valid(ps text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
	SELECT cardinality(ps) <= 64 AND NOT EXISTS (SELECT 1 FROM unnest(ps) p
		WHERE p IS NULL OR NOT jairouter.permission_valid(p))
$$;

-- tenant_id NULL: a global role every tenant may use; else a tenant's own role (it hides
-- a global role of the same name for that tenant). Deny wins over every allow of every
-- role the caller holds.
CREATE TABLE IF NOT EXISTS jairouter.roles (
	id         bigserial PRIMARY KEY,
	tenant_id  bigint NULL REFERENCES jairouter.tenants (id) ON DELETE CASCADE,
	name       text NOT NULL CONSTRAINT roles_name_check CHECK (name ~ '^[A-Za-z0-9_.:/-]{1,63}$'),
	allow      text[] NOT NULL DEFAULT '{}'
		CONSTRAINT roles_allow_check CHECK (jairouter.permissions_valid(allow)),
	deny       text[] NOT NULL DEFAULT '{}'
		CONSTRAINT roles_deny_check CHECK (jairouter.permissions_valid(deny)),
	created_at timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT roles_tenant_name_key UNIQUE NULLS NOT DISTINCT (tenant_id, name)
);

-- Roles of an API key. A key without any role keeps the behaviour it had before RBAC
-- (everything its tenant may use); a key with roles is held to them.
CREATE TABLE IF NOT EXISTS jairouter.api_key_roles (
	id      bigserial PRIMARY KEY,
	key_id  bigint NOT NULL REFERENCES jairouter.api_keys (id) ON DELETE CASCADE,
	role_id bigint NOT NULL REFERENCES jairouter.roles (id) ON DELETE CASCADE,
	UNIQUE (key_id, role_id)
);
CREATE INDEX IF NOT EXISTS api_key_roles_role_idx ON jairouter.api_key_roles (role_id);

-- ---- security audit --------------------------------------------------------------------

-- Written by the agents in batches: authentication failures, denials, lockouts. Never a
-- secret: API keys appear as their 11-character prefix, tokens as issuer, subject and
-- jti only.
CREATE TABLE IF NOT EXISTS jairouter.security_audit (
	id         bigserial PRIMARY KEY,
	at         timestamptz NOT NULL DEFAULT now(),
	node       text NULL,
	event      text NOT NULL,
	reason     text NOT NULL,
	client     inet NULL,
	key_prefix text NULL,
	issuer     text NULL,
	subject    text NULL,
	jti        text NULL,
	tenant_id  bigint NULL,
	request_id text NULL,
	status     integer NULL
);
CREATE INDEX IF NOT EXISTS security_audit_at_idx ON jairouter.security_audit (at);
CREATE INDEX IF NOT EXISTS security_audit_client_idx ON jairouter.security_audit (client, at);

-- Retention: deletes audit rows (security_audit and the change log audit_log) older than
-- keep, and revocations of tokens that have expired anyway. Run it from cron (docs).
CREATE OR REPLACE FUNCTION jairouter.purge_identity(keep interval DEFAULT interval '90 days')
RETURNS TABLE (security_rows bigint, change_rows bigint, revoked_rows bigint)
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM jairouter.security_audit WHERE at < now() - keep;
	GET DIAGNOSTICS security_rows = ROW_COUNT;
	DELETE FROM jairouter.audit_log WHERE at < now() - keep;
	GET DIAGNOSTICS change_rows = ROW_COUNT;
	DELETE FROM jairouter.revoked_tokens WHERE expires_at < now() - interval '1 day';
	GET DIAGNOSTICS revoked_rows = ROW_COUNT;
	RETURN NEXT;
END;
$$;

-- ---- triggers: change notifications, audit of changes ------------------------------------

-- The change log never holds a key: public or secret, jwk is dropped.
CREATE OR REPLACE FUNCTION jairouter.audit_redact(r jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT r - 'key_hash' - 'ciphertext' - 'jwk' - 'introspection_client_secret'
$$;

DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['jwt_issuers', 'jwt_issuer_keys', 'revoked_tokens',
			'revoked_subjects', 'roles', 'api_key_roles'] LOOP
		PERFORM jairouter.install_notify(t);
		EXECUTE format('DROP TRIGGER IF EXISTS %I ON jairouter.%I', t || '_audit', t);
		EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON jairouter.%I '
			'FOR EACH ROW EXECUTE FUNCTION jairouter.audit_change()', t || '_audit', t);
	END LOOP;
	EXECUTE 'DROP TRIGGER IF EXISTS jwt_issuers_touch ON jairouter.jwt_issuers';
	EXECUTE 'CREATE TRIGGER jwt_issuers_touch BEFORE UPDATE ON jairouter.jwt_issuers '
		'FOR EACH ROW EXECUTE FUNCTION jairouter.touch_updated_at()';
END;
$$;
