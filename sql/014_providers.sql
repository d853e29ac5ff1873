-- 014_providers: provider kinds for Google Cloud's Vertex AI. vertex_gemini: Gemini
-- models (generateContent); vertex_anthropic: Anthropic's models (rawPredict). Both are
-- translated by jairouter-adapter; their endpoint's base URL names the project and the
-- location, and their credential is a service account key (exchanged for access tokens)
-- or an access token. docs/adapter.md.
--
-- Idempotent: the function is replaced as a whole.

CREATE OR REPLACE FUNCTION jairouter.provider_kinds() RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
	SELECT ARRAY['openai', 'vllm', 'ollama', 'gpustack', 'xinference', 'localai', 'anthropic',
		'gemini', 'azure_openai', 'bedrock', 'cohere', 'huggingface', 'dashscope', 'hunyuan',
		'vertex_gemini', 'vertex_anthropic']
$$;
