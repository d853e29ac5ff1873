-- 001_schema: the catalogue the agent loads into memory (tenants, API keys, models),
-- and the change notifications that keep every agent in step within a second.
--
-- Idempotent: every statement can run again on a database that already has it.
-- scripts/migrate runs each file in one transaction and records it in
-- jairouter.schema_migrations.

CREATE SCHEMA IF NOT EXISTS jairouter;

CREATE TABLE IF NOT EXISTS jairouter.schema_migrations (
	version    text PRIMARY KEY,
	applied_at timestamptz NOT NULL DEFAULT now()
);

-- Names are free text (they reach logs and HAProxy variables, never SQL or a shell
-- unquoted) but bounded to what the agent keeps (state.h: 63 bytes for tenant and
-- backend names, 127 for model names), without control characters and without
-- surrounding blanks.
CREATE TABLE IF NOT EXISTS jairouter.tenants (
	id         bigserial PRIMARY KEY,
	name       text NOT NULL UNIQUE
		CONSTRAINT tenants_name_check CHECK (
			octet_length(name) BETWEEN 1 AND 63
			AND name !~ '[[:cntrl:]]'
			AND name = btrim(name)),
	status     text NOT NULL DEFAULT 'active'
		CONSTRAINT tenants_status_check CHECK (status IN ('active', 'disabled')),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);

-- An API key is "jr-" and 64 hex digits. Only its SHA-256 is stored, plus the first
-- 11 characters ("jr-1a2b3c4d") to recognise it in lists and logs. A prefix is not
-- unique (32 bits): revoking by prefix refuses an ambiguous one.
CREATE TABLE IF NOT EXISTS jairouter.api_keys (
	id         bigserial PRIMARY KEY,
	tenant_id  bigint NOT NULL REFERENCES jairouter.tenants (id) ON DELETE CASCADE,
	name       text NOT NULL DEFAULT 'default'
		CONSTRAINT api_keys_name_check CHECK (
			char_length(name) BETWEEN 1 AND 128 AND name !~ '[[:cntrl:]]'),
	prefix     text NOT NULL
		CONSTRAINT api_keys_prefix_check CHECK (prefix ~ '^jr-[0-9a-f]{8}$'),
	key_hash   bytea NOT NULL UNIQUE
		CONSTRAINT api_keys_key_hash_check CHECK (octet_length(key_hash) = 32),
	status     text NOT NULL DEFAULT 'active'
		CONSTRAINT api_keys_status_check CHECK (status IN ('active', 'disabled', 'revoked')),
	expires_at timestamptz NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	revoked_at timestamptz NULL,
	CONSTRAINT api_keys_revoked_check CHECK ((status = 'revoked') = (revoked_at IS NOT NULL))
);

CREATE INDEX IF NOT EXISTS api_keys_tenant_id_idx ON jairouter.api_keys (tenant_id);
CREATE INDEX IF NOT EXISTS api_keys_prefix_idx ON jairouter.api_keys (prefix);

-- A model name as clients send it, mapped to an HAProxy backend. The backend name is
-- limited to characters HAProxy accepts in a backend name and that need no escaping
-- in a variable.
CREATE TABLE IF NOT EXISTS jairouter.models (
	id         bigserial PRIMARY KEY,
	name       text NOT NULL UNIQUE
		CONSTRAINT models_name_check CHECK (
			octet_length(name) BETWEEN 1 AND 127
			AND name !~ '[[:cntrl:]]'
			AND name = btrim(name)),
	backend    text NOT NULL
		CONSTRAINT models_backend_check CHECK (backend ~ '^[A-Za-z0-9._:-]{1,63}$'),
	status     text NOT NULL DEFAULT 'active'
		CONSTRAINT models_status_check CHECK (status IN ('active', 'disabled')),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);

-- Change notifications: one NOTIFY per changed row on channel jairouter_changes,
-- payload "<table>:<op>:<id>" (op I, U or D), e.g. "api_keys:U:42". The agent fetches
-- that row again (or drops it when gone). TRUNCATE sends "<table>:T:0", which makes
-- agents reload everything. PostgreSQL delivers notifications only after commit and
-- folds identical ones within a transaction.
CREATE OR REPLACE FUNCTION jairouter.notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	row_id bigint;
BEGIN
	IF TG_OP = 'TRUNCATE' THEN
		row_id := 0;
	ELSIF TG_OP = 'DELETE' THEN
		row_id := OLD.id;
	ELSE
		row_id := NEW.id;
	END IF;
	PERFORM pg_notify('jairouter_changes',
		TG_TABLE_NAME || ':' || left(TG_OP, 1) || ':' || row_id::text);
	RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	NEW.updated_at := now();
	RETURN NEW;
END;
$$;

-- Installs the change notification triggers on one table of the schema (every migration
-- that adds a table the agent loads calls it). Triggers are dropped and created again
-- (CREATE OR REPLACE TRIGGER needs 14+; a migration runs in one transaction, so no change
-- slips between the two).
CREATE OR REPLACE FUNCTION jairouter.install_notify(t text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format('DROP TRIGGER IF EXISTS %I ON jairouter.%I', t || '_notify', t);
	EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON jairouter.%I '
		'FOR EACH ROW EXECUTE FUNCTION jairouter.notify_change()', t || '_notify', t);
	EXECUTE format('DROP TRIGGER IF EXISTS %I ON jairouter.%I', t || '_notify_truncate', t);
	EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON jairouter.%I '
		'FOR EACH STATEMENT EXECUTE FUNCTION jairouter.notify_change()',
		t || '_notify_truncate', t);
END;
$$;

DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['tenants', 'api_keys', 'models'] LOOP
		PERFORM jairouter.install_notify(t);
	END LOOP;
	FOREACH t IN ARRAY ARRAY['tenants', 'models'] LOOP
		EXECUTE format('DROP TRIGGER IF EXISTS %I ON jairouter.%I', t || '_touch', t);
		EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE ON jairouter.%I '
			'FOR EACH ROW EXECUTE FUNCTION jairouter.touch_updated_at()', t || '_touch', t);
	END LOOP;
END;
$$;
