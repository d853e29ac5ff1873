-- 003_catalogue: what a model is beyond its name and backend: the upstream model name,
-- the provider kind, the service types it serves, its capabilities and prices, and its
-- aliases. docs/catalogue.md is the operator's guide.
--
-- Idempotent: every statement can run again on a database that already has it.

-- Service type names, as the agent knows them (pipeline routes, docs/catalogue.md).
CREATE OR REPLACE FUNCTION jairouter.service_types() RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
	SELECT ARRAY['chat', 'completions', 'embeddings', 'rerank', 'audio_speech',
		'audio_transcriptions', 'images_generations', 'images_edits']
$$;

CREATE OR REPLACE FUNCTION jairouter.provider_kinds() RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
	SELECT ARRAY['openai', 'vllm', 'ollama', 'gpustack', 'xinference', 'localai', 'anthropic',
		'gemini', 'azure_openai', 'bedrock', 'cohere', 'huggingface', 'dashscope', 'hunyuan']
$$;

-- upstream_name: the model name the model server expects; NULL = the public name. The
-- gateway rewrites the request's "model" only when it differs (docs/catalogue.md).
ALTER TABLE jairouter.models
	ADD COLUMN IF NOT EXISTS upstream_name text NULL
		CONSTRAINT models_upstream_name_check CHECK (upstream_name IS NULL OR (
			octet_length(upstream_name) BETWEEN 1 AND 127
			AND upstream_name !~ '[[:cntrl:]]'
			AND upstream_name = btrim(upstream_name))),
	ADD COLUMN IF NOT EXISTS provider text NOT NULL DEFAULT 'openai'
		CONSTRAINT models_provider_check CHECK (provider = ANY (jairouter.provider_kinds())),
	ADD COLUMN IF NOT EXISTS services text[] NOT NULL DEFAULT ARRAY['chat', 'completions']
		CONSTRAINT models_services_check CHECK (
			cardinality(services) >= 1
			AND array_position(services, NULL) IS NULL
			AND services <@ jairouter.service_types()),
	ADD COLUMN IF NOT EXISTS context_length integer NULL
		CONSTRAINT models_context_length_check CHECK (context_length IS NULL OR context_length > 0),
	ADD COLUMN IF NOT EXISTS vision boolean NOT NULL DEFAULT false,
	ADD COLUMN IF NOT EXISTS tools boolean NOT NULL DEFAULT false,
	ADD COLUMN IF NOT EXISTS json_mode boolean NOT NULL DEFAULT false,
	ADD COLUMN IF NOT EXISTS streaming boolean NOT NULL DEFAULT true,
	ADD COLUMN IF NOT EXISTS price_input_per_mtok numeric(12,6) NULL
		CONSTRAINT models_price_input_check CHECK (price_input_per_mtok IS NULL OR price_input_per_mtok >= 0),
	ADD COLUMN IF NOT EXISTS price_output_per_mtok numeric(12,6) NULL
		CONSTRAINT models_price_output_check CHECK (price_output_per_mtok IS NULL OR price_output_per_mtok >= 0);

-- Another name clients may use for a model. The gateway resolves it to the model and
-- routes, prices and reports under the model's own name.
CREATE TABLE IF NOT EXISTS jairouter.model_aliases (
	id         bigserial PRIMARY KEY,
	model_id   bigint NOT NULL REFERENCES jairouter.models (id) ON DELETE CASCADE,
	alias      text NOT NULL UNIQUE
		CONSTRAINT model_aliases_alias_check CHECK (
			octet_length(alias) BETWEEN 1 AND 127
			AND alias !~ '[[:cntrl:]]'
			AND alias = btrim(alias)),
	created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS model_aliases_model_id_idx ON jairouter.model_aliases (model_id);

-- A name is either a model's or an alias, never both: otherwise "gpt-4o" could mean
-- two models. Both triggers take the same transaction lock, so two concurrent
-- transactions cannot each add one side of a clash.
CREATE OR REPLACE FUNCTION jairouter.model_names_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_advisory_xact_lock(hashtext('jairouter.model_names'));
	IF TG_TABLE_NAME = 'model_aliases' THEN
		IF EXISTS (SELECT 1 FROM jairouter.models WHERE name = NEW.alias) THEN
			RAISE EXCEPTION 'alias "%" is the name of a model', NEW.alias
				USING ERRCODE = 'unique_violation';
		END IF;
	ELSIF EXISTS (SELECT 1 FROM jairouter.model_aliases WHERE alias = NEW.name) THEN
		RAISE EXCEPTION 'model name "%" is an alias of another model', NEW.name
			USING ERRCODE = 'unique_violation';
	END IF;
	RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS model_aliases_names_guard ON jairouter.model_aliases;
CREATE TRIGGER model_aliases_names_guard BEFORE INSERT OR UPDATE OF alias ON jairouter.model_aliases
	FOR EACH ROW EXECUTE FUNCTION jairouter.model_names_guard();
DROP TRIGGER IF EXISTS models_names_guard ON jairouter.models;
CREATE TRIGGER models_names_guard BEFORE INSERT OR UPDATE OF name ON jairouter.models
	FOR EACH ROW EXECUTE FUNCTION jairouter.model_names_guard();

-- Change notifications, as for the tables of 001_schema.
SELECT jairouter.install_notify('model_aliases');

-- ---- administration functions (scripts/jairouterctl) ----------------------------------

CREATE OR REPLACE FUNCTION jairouter.model_id(p_name text) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
	m_id bigint;
BEGIN
	SELECT id INTO m_id FROM jairouter.models WHERE name = p_name;
	IF m_id IS NULL THEN
		RAISE EXCEPTION 'model "%" not found', p_name USING ERRCODE = 'no_data_found';
	END IF;
	RETURN m_id;
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.add_model_alias(p_name text, p_alias text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	new_id bigint;
BEGIN
	INSERT INTO jairouter.model_aliases (model_id, alias)
	VALUES (jairouter.model_id(p_name), p_alias)
	RETURNING id INTO new_id;
	RETURN new_id;
EXCEPTION
	WHEN unique_violation THEN
		RAISE EXCEPTION 'the name "%" is already taken by a model or an alias', p_alias
			USING ERRCODE = 'unique_violation';
	WHEN check_violation OR not_null_violation THEN
		RAISE EXCEPTION 'invalid alias "%": 1 to 127 bytes, no control characters, '
			'no leading or trailing blanks', p_alias USING ERRCODE = 'invalid_parameter_value';
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.remove_model_alias(p_alias text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM jairouter.model_aliases WHERE alias = p_alias;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'alias "%" not found', p_alias USING ERRCODE = 'no_data_found';
	END IF;
END;
$$;

CREATE OR REPLACE FUNCTION jairouter.set_model_price(p_name text, p_in numeric, p_out numeric)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	IF p_in IS NULL OR p_out IS NULL OR p_in < 0 OR p_out < 0 THEN
		RAISE EXCEPTION 'invalid price: input and output must be numbers >= 0 (per million tokens)'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	UPDATE jairouter.models SET price_input_per_mtok = p_in, price_output_per_mtok = p_out
	WHERE id = jairouter.model_id(p_name);
EXCEPTION
	WHEN numeric_value_out_of_range THEN
		RAISE EXCEPTION 'invalid price: at most 999999.999999 per million tokens'
			USING ERRCODE = 'invalid_parameter_value';
END;
$$;

-- Sets the catalogue fields of a model; NULL leaves a field as it is (an empty string
-- for p_upstream clears it: the public name is sent).
CREATE OR REPLACE FUNCTION jairouter.set_model_catalogue(p_name text, p_provider text,
	p_upstream text, p_services text[], p_context integer, p_vision boolean, p_tools boolean,
	p_json_mode boolean, p_streaming boolean) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	m_id bigint := jairouter.model_id(p_name);
BEGIN
	IF p_provider IS NOT NULL AND NOT (p_provider = ANY (jairouter.provider_kinds())) THEN
		RAISE EXCEPTION 'invalid provider "%": expected one of %', p_provider,
			array_to_string(jairouter.provider_kinds(), ', ') USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF p_services IS NOT NULL AND (cardinality(p_services) < 1
			OR NOT (p_services <@ jairouter.service_types())) THEN
		RAISE EXCEPTION 'invalid services "%": expected some of %',
			array_to_string(p_services, ','), array_to_string(jairouter.service_types(), ', ')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	UPDATE jairouter.models SET
		provider = coalesce(p_provider, provider),
		upstream_name = CASE WHEN p_upstream IS NULL THEN upstream_name
			ELSE nullif(p_upstream, '') END,
		services = coalesce(p_services, services),
		context_length = coalesce(p_context, context_length),
		vision = coalesce(p_vision, vision),
		tools = coalesce(p_tools, tools),
		json_mode = coalesce(p_json_mode, json_mode),
		streaming = coalesce(p_streaming, streaming)
	WHERE id = m_id;
EXCEPTION
	WHEN check_violation THEN
		RAISE EXCEPTION 'invalid model settings for "%": %', p_name, SQLERRM
			USING ERRCODE = 'invalid_parameter_value';
END;
$$;
