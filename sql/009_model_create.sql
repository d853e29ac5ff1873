-- 009_model_create: a model created with its visibility, grants and groups in one step.
--
-- Creating a model and then making it private (or granting it, or putting it in a group
-- some tenant is denied) in separate statements leaves a window in which every agent
-- has loaded the model as public: other tenants list it and can call it. create_model
-- does all of it in one transaction, so the agents' first sight of the model is its
-- final state. jairouterctl model add uses it (--private, --public, --grant, --group).

CREATE OR REPLACE FUNCTION jairouter.create_model(p_name text, p_backend text,
	p_visibility text DEFAULT 'public', p_grants text[] DEFAULT '{}',
	p_groups text[] DEFAULT '{}')
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	new_id bigint;
	item text;
BEGIN
	IF p_visibility IS NULL OR p_visibility NOT IN ('public', 'private') THEN
		RAISE EXCEPTION 'invalid visibility "%": expected public or private', p_visibility
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	new_id := jairouter.add_model(p_name, p_backend);
	UPDATE jairouter.models SET visibility = p_visibility WHERE id = new_id;
	FOREACH item IN ARRAY coalesce(p_groups, '{}') LOOP
		PERFORM jairouter.group_add_model(item, p_name);
	END LOOP;
	FOREACH item IN ARRAY coalesce(p_grants, '{}') LOOP
		PERFORM jairouter.grant_model(item, p_name, 'allow');
	END LOOP;
	RETURN new_id;
END;
$$;
