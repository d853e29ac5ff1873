-- 017_realtime: the service type `realtime` (GET /v1/realtime, a WebSocket session;
-- docs/api.md, "Realtime"), appended to the service lists of sql/003, sql/004 and
-- sql/012 as they stand when this file runs (another migration may have appended its
-- own type before: it is kept). The agent maps names to its own bits, so the order of
-- the lists does not matter to it.
-- Idempotent: running it again changes nothing.

DO $$
DECLARE
	types text[] := jairouter.service_types();
	names text[] := jairouter.service_names();
BEGIN
	IF NOT ('realtime' = ANY (types)) THEN
		EXECUTE format('CREATE OR REPLACE FUNCTION jairouter.service_types() RETURNS text[] '
			       'LANGUAGE sql IMMUTABLE AS %L',
			       format('SELECT %L::text[]', array_append(types, 'realtime')));
	END IF;
	IF NOT ('realtime' = ANY (names)) THEN
		EXECUTE format('CREATE OR REPLACE FUNCTION jairouter.service_names() RETURNS text[] '
			       'LANGUAGE sql IMMUTABLE AS %L',
			       format('SELECT %L::text[]', array_append(names, 'realtime')));
	END IF;
END;
$$;
