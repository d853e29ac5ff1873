/* The agent's adapter stage (spoa/src/pipeline/adapter.c): which requests detour
 * through jairouter-adapter, and the route it writes for them. */
#include "testlib.h"

#include "fixtures.h"
#include "pipeline/pipeline.h"
#include "state/endpoints.h"
#include "state/policy.h"
#include "state/state.h"

#define KEY "jr-00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define KEY_M "jr-ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
#define KEY_C "jr-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void put_model(struct state *s, int64_t id, const char *name, const char *backend,
		      const char *provider, const char *upstream)
{
	struct st_model m;

	memset(&m, 0, sizeof(m));
	m.id = id;
	snprintf(m.name, sizeof(m.name), "%s", name);
	snprintf(m.backend, sizeof(m.backend), "%s", backend);
	snprintf(m.provider, sizeof(m.provider), "%s", provider);
	snprintf(m.upstream, sizeof(m.upstream), "%s", upstream ? upstream : "");
	m.services = FX_SERVICES_ALL;
	m.caps = ST_CAP_STREAMING;
	m.price_in = m.price_out = -1;
	state_put_model(s, &m);
}

static void put_key(struct state *s, int64_t id, int64_t tenant, const char *key)
{
	struct st_key k;

	memset(&k, 0, sizeof(k));
	k.id = id;
	k.tenant_id = tenant;
	auth_key_hash(key, strlen(key), k.hash);
	snprintf(k.prefix, sizeof(k.prefix), "%.11s", key);
	state_put_key(s, &k);
}

static void load(void)
{
	struct state *s = state_new();
	struct st_tenant t1 = { 1, "acme", ST_ACTIVE, "" }, t2 = { 2, "masked", ST_ACTIVE, "" };
	struct st_tenant t3 = { 3, "cached", ST_ACTIVE, "" };
	struct st_endpoint e1 = { .id = 1, .backend = "be_mock", .base_url = "http://10.0.0.1:8000/v1", .meter = 1 };
	struct st_endpoint e2 = { .id = 2, .backend = "be_bedrock", .region = "eu-west-1", .meter = 1 };
	struct st_endpoint e3 = { .id = 3, .backend = "be_vertex",
				  .base_url = "https://us-east5-aiplatform.googleapis.com/v1/projects/p/locations/us-east5" };
	struct st_endpoint e4 = { .id = 4, .backend = "be_hy", .api_version = "native" };
	struct st_endpoint e5 = { .id = 5, .backend = "be_nometer", .base_url = "http://10.0.0.2/v1", .meter = 0 };
	struct st_endpoint e6 = { .id = 6, .backend = "be_tgi", .base_url = "http://10.0.0.3:8080", .api_version = "native-llama3",
				  .meter = 1 };
	struct st_endpoint e7 = { .id = 7, .backend = "be_tgi_x", .base_url = "http://10.0.0.4:8080", .api_version = "nativex" };
	struct st_masking mk = { .tenant_id = 2, .enabled = 1, .policy = "{\"rules\":[{\"detector\":\"email\"}]}" };
	/* "cached" caches gpt (its own entries) and nometer (shared); plain has no endpoint */
	struct st_cache c1 = { .id = 1, .tenant_id = 3, .model_id = 1, .ttl_s = 60, .max_entry_bytes = 4096,
			       .hit_price_factor = 0.1 };
	struct st_cache c2 = { .id = 2, .tenant_id = 3, .model_id = 12, .ttl_s = 5, .max_entry_bytes = 2048,
			       .shared = 1 };
	struct st_cache c3 = { .id = 3, .tenant_id = 3, .model_id = 2, .ttl_s = 5, .max_entry_bytes = 2048 };

	state_put_tenant(s, &t1);
	state_put_tenant(s, &t2);
	state_put_tenant(s, &t3);
	put_key(s, 3, 3, KEY_C);
	put_key(s, 1, 1, KEY);
	put_key(s, 2, 2, KEY_M);
	put_model(s, 1, "gpt", "be_mock", "vllm", "Qwen/Qwen2.5");
	put_model(s, 2, "plain", "be_plain", "openai", NULL);
	put_model(s, 3, "claude", "be_prov", "anthropic", "claude-up");
	put_model(s, 4, "br", "be_bedrock", "bedrock", "anthropic.claude-v2:1");
	put_model(s, 5, "co", "be_prov", "cohere", "command-r");
	put_model(s, 6, "az", "be_az", "azure_openai", "deploy");
	put_model(s, 7, "vx", "be_vertex", "vertex_anthropic", "claude-3-5-haiku@20241022");
	put_model(s, 8, "vx-none", "be_vertex_none", "vertex_gemini", "gemini-2.0-flash");
	put_model(s, 9, "hy", "be_hy", "hunyuan", "hunyuan-lite");
	put_model(s, 10, "hy-compat", "be_plain", "hunyuan", "hunyuan-lite");
	put_model(s, 11, "renamed", "be_plain", "openai", "up-name");
	put_model(s, 12, "nometer", "be_nometer", "openai", NULL);
	put_model(s, 13, "tgi", "be_tgi", "huggingface", "tgi");
	put_model(s, 14, "tgi-x", "be_tgi_x", "huggingface", "tgi");
	adapter_put_endpoint(state_adapter(s), &e1);
	adapter_put_endpoint(state_adapter(s), &e2);
	adapter_put_endpoint(state_adapter(s), &e3);
	adapter_put_endpoint(state_adapter(s), &e4);
	adapter_put_endpoint(state_adapter(s), &e5);
	adapter_put_endpoint(state_adapter(s), &e6);
	adapter_put_endpoint(state_adapter(s), &e7);
	adapter_put_masking(state_adapter(s), &mk);
	adapter_put_cache(state_adapter(s), &c1);
	adapter_put_cache(state_adapter(s), &c2);
	adapter_put_cache(state_adapter(s), &c3);
	store_replace(s);
	store_set_db_online(1);
}

static void nop(struct pl_ctx *ctx, void *arg)
{
	(void)ctx;
	(void)arg;
}

/* Decides one request; *v gets the verdict. */
static void decide(const char *key, const char *path, const char *body, struct pl_verdict *v)
{
	struct fx_arg args[5];
	uint8_t buf[4096];
	char auth[128];
	size_t len;
	struct pl_ctx ctx;
	struct pl_policy pol = { 0, 2000 };
	int n = 0;

	snprintf(auth, sizeof(auth), "Bearer %s", key);
	args[n++] = (struct fx_arg){ "method", spop_cstr("POST") };
	args[n++] = (struct fx_arg){ "path", spop_cstr(path) };
	args[n++] = (struct fx_arg){ "authorization", spop_cstr(auth) };
	args[n++] = (struct fx_arg){ "cred_count", spop_int64(1) };
	args[n++] = (struct fx_arg){ "body", spop_cstr(body) };
	pl_ctx_init(&ctx, &pol);
	len = fx_build_payload(buf, sizeof(buf), "jairouter-request", args, n);
	CHECK_EQ_INT(pl_request_decode(&ctx, buf, len), PL_DECODE_OK);
	CHECK_EQ_INT(pl_start(&ctx, pl_default_stages, pl_default_nstages, nop, nop, NULL), 1);
	*v = ctx.out;
	v->body = NULL;
	pl_ctx_clear(&ctx);
}

static struct pl_verdict v;

static void chat(const char *key, const char *model, int stream)
{
	char body[256];

	snprintf(body, sizeof(body), "{\"model\":\"%s\",\"stream\":%s,\"messages\":[]}", model,
		 stream ? "true" : "false");
	decide(key, "/v1/chat/completions", body, &v);
}

/* A chat request for model (KEY, no stream) goes to backend with the adapter route
 * header adapter ("" for none). */
static void check_route(const char *model, const char *backend, const char *adapter)
{
	chat(KEY, model, 0);
	CHECK_EQ_STR(v.backend, backend);
	CHECK_EQ_STR(v.adapter, adapter);
}

static void direct_requests_stay_direct(void)
{
	chat(KEY, "gpt", 0);
	CHECK_EQ_INT(v.allow, 1);
	CHECK_EQ_STR(v.backend, "be_mock");
	CHECK_EQ_STR(v.adapter, "");
	CHECK_EQ_STR(v.upstream_model, "Qwen/Qwen2.5"); /* the direct path's body rewrite */
	/* streamed, but its backend has no endpoint: nothing to meter through */
	chat(KEY, "plain", 1);
	CHECK_EQ_STR(v.backend, "be_plain");
	CHECK_EQ_STR(v.adapter, "");
	/* Cohere's rerank is what /v1/rerank clients speak */
	decide(KEY, "/v1/rerank", "{\"model\":\"co\",\"query\":\"q\",\"documents\":[\"a\"]}", &v);
	CHECK_EQ_STR(v.backend, "be_prov");
	CHECK_EQ_STR(v.adapter, "");
}

static void metered_stream(void)
{
	chat(KEY, "gpt", 1);
	CHECK_EQ_INT(v.allow, 1);
	CHECK_EQ_STR(v.backend, "be_adapter");
	CHECK_EQ_STR(v.adapter, "p=vllm&u=http%3A%2F%2F10.0.0.1%3A8000%2Fv1&m=Qwen%2FQwen2.5&pm=gpt&mt=1&t=acme&be=be_mock");
	CHECK_EQ_STR(v.upstream_model, ""); /* the adapter renames, no Lua rewrite */
	CHECK_EQ_STR(v.model_rewrite, "");
}

/* A direct stream: the usage plan HAProxy's Lua filter carries out (jairouter.lua). */
static void direct_stream_usage_plan(void)
{
	static const char ins[] = PL_METER_INSERT, rep[] = PL_METER_REPLACE;
	const char *b1 = "{\"model\":\"plain\",\"stream\":true,\"messages\":[]}";
	const char *b3 = "{\"model\":\"plain\",\"stream_options\":{\"include_usage\":false},\"stream\":true}";
	uint8_t ack[16384];
	int n;

	/* no stream_options: inserted before the closing brace, the chunk removed */
	decide(KEY, "/v1/chat/completions", b1, &v);
	CHECK_EQ_STR(v.backend, "be_plain");
	CHECK_EQ_INT(v.meter, PL_METER_STRIP);
	CHECK_EQ_INT(v.meter_off, (int64_t)strlen(b1) - 1);
	CHECK_EQ_INT(v.meter_len, 0);
	CHECK_EQ_INT(v.body_delta, (int64_t)sizeof(ins) - 1);
	n = pl_ack_encode(&v, 1, 1, ack, sizeof(ack), sizeof(ack));
	CHECK(n > 0 && fx_contains(ack, (size_t)n, "meter_off") && fx_contains(ack, (size_t)n, "strip"));
	/* the client asked: nothing spliced, the chunk kept */
	decide(KEY, "/v1/chat/completions",
	       "{\"model\":\"plain\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}", &v);
	CHECK_EQ_INT(v.meter, PL_METER_KEEP);
	CHECK_EQ_INT(v.body_delta, 0);
	/* include_usage false: the value replaced */
	decide(KEY, "/v1/chat/completions", b3, &v);
	CHECK_EQ_INT(v.meter, PL_METER_STRIP);
	CHECK_EQ_INT(v.meter_off, (int64_t)(strstr(b3, "{\"include") - b3));
	CHECK_EQ_INT(v.meter_len, (int64_t)strlen("{\"include_usage\":false}"));
	CHECK_EQ_INT(v.body_delta, (int64_t)sizeof(rep) - 1 - v.meter_len);
	/* two stream_options: which one the server reads is unknown, so no plan */
	decide(KEY, "/v1/chat/completions",
	       "{\"model\":\"plain\",\"stream\":true,\"stream_options\":{},\"stream_options\":{}}", &v);
	CHECK_EQ_INT(v.allow, 1);
	CHECK_EQ_INT(v.meter, PL_METER_NONE);
	/* not a stream, or a stream through the adapter (which meters it itself) */
	chat(KEY, "plain", 0);
	CHECK_EQ_INT(v.meter, PL_METER_NONE);
	chat(KEY, "gpt", 1);
	CHECK_EQ_STR(v.backend, "be_adapter");
	CHECK_EQ_INT(v.meter, PL_METER_NONE);
	/* an endpoint with meter_streams off: direct, billed at the estimate */
	chat(KEY, "nometer", 1);
	CHECK_EQ_STR(v.backend, "be_nometer");
	CHECK_EQ_STR(v.adapter, "");
	CHECK_EQ_INT(v.meter, PL_METER_NONE);
	/* a renamed model: the body delta counts both splices */
	decide(KEY, "/v1/chat/completions", "{\"model\":\"renamed\",\"stream\":true}", &v);
	CHECK_EQ_INT(v.meter, PL_METER_STRIP);
	CHECK_EQ_STR(v.model_rewrite, "\"up-name\"");
	CHECK_EQ_INT(v.body_delta, (int64_t)sizeof(ins) - 1 + (int64_t)strlen("\"up-name\"") -
				   (int64_t)strlen("\"renamed\""));
}

static void translated_providers(void)
{
	check_route("claude", "be_adapter", "p=anthropic&m=claude-up&pm=claude&t=acme&be=be_prov");
	chat(KEY, "br", 1);
	CHECK_EQ_STR(v.adapter, "p=bedrock&m=anthropic.claude-v2%3A1&pm=br&r=eu-west-1&mt=1&t=acme&be=be_bedrock");
	chat(KEY, "co", 0);
	CHECK_EQ_STR(v.adapter, "p=cohere&m=command-r&pm=co&t=acme&be=be_prov");
	/* Azure has no public default URL: its backend needs an endpoint */
	chat(KEY, "az", 0);
	CHECK_EQ_INT(v.allow, 0);
	CHECK_EQ_INT(v.status, 503);
	CHECK_EQ_STR(v.err_code, "adapter_endpoint_missing");
}

/* Vertex AI kinds (16 characters: the kind's whole name reaches the route) and the native
 * APIs of OpenAI-compatible kinds. */
static void cloud_providers(void)
{
	check_route("vx", "be_adapter",
		    "p=vertex_anthropic&u=https%3A%2F%2Fus-east5-aiplatform.googleapis.com%2Fv1%2Fprojects%2Fp"
		    "%2Flocations%2Fus-east5&m=claude-3-5-haiku%4020241022&pm=vx&t=acme&be=be_vertex");
	/* Vertex AI has no public default URL: the project is in the endpoint's. */
	chat(KEY, "vx-none", 0);
	CHECK_EQ_INT(v.status, 503);
	CHECK_EQ_STR(v.err_code, "adapter_endpoint_missing");
	check_route("hy", "be_adapter", "p=hunyuan&m=hunyuan-lite&pm=hy&av=native&t=acme&be=be_hy");
	/* Without "native", Hunyuan's OpenAI-compatible API is the model's own backend. */
	check_route("hy-compat", "be_plain", "");
	/* TGI's native API: "native-<template>" too; another api-version is not native. */
	check_route("tgi", "be_adapter",
		    "p=huggingface&u=http%3A%2F%2F10.0.0.3%3A8080&m=tgi&pm=tgi&av=native-llama3&t=acme&be=be_tgi");
	check_route("tgi-x", "be_tgi_x", "");
}

static void messages_clients(void)
{
	decide(KEY, "/v1/messages", "{\"model\":\"gpt\",\"max_tokens\":5,\"messages\":[]}", &v);
	CHECK_EQ_STR(v.backend, "be_adapter");
	CHECK(strncmp(v.adapter, "p=vllm&u=", 9) == 0);
	/* an OpenAI-compatible backend without an endpoint is never sent to a public URL */
	decide(KEY, "/v1/messages", "{\"model\":\"plain\",\"max_tokens\":5,\"messages\":[]}", &v);
	CHECK_EQ_INT(v.status, 503);
	CHECK_EQ_STR(v.err_code, "adapter_endpoint_missing");
}

static void masking_tenant(void)
{
	uint8_t ack[16384];
	int n;

	chat(KEY_M, "gpt", 0);
	CHECK_EQ_STR(v.backend, "be_adapter");
	CHECK_EQ_STR(v.adapter, "p=vllm&u=http%3A%2F%2F10.0.0.1%3A8000%2Fv1&m=Qwen%2FQwen2.5&pm=gpt&t=masked&be=be_mock"
				"&mask=%7B%22rules%22%3A%5B%7B%22detector%22%3A%22email%22%7D%5D%7D");
	/* the ACK carries it as txn.jr.adapter */
	n = pl_ack_encode(&v, 1, 1, ack, sizeof(ack), sizeof(ack));
	CHECK(n > 0);
	CHECK(fx_contains(ack, (size_t)n, "adapter"));
	CHECK(fx_contains(ack, (size_t)n, "&mask=%7B%22rules"));
	CHECK(fx_contains(ack, (size_t)n, "be_adapter"));
}

/* A cached tenant and model detour with the cache fields; other tenants, uncached
 * models, other services and models the adapter cannot reach do not. */
static void cached_tenant(void)
{
	chat(KEY_C, "gpt", 0);
	CHECK_EQ_STR(v.backend, "be_adapter");
	CHECK_EQ_STR(v.adapter, "p=vllm&u=http%3A%2F%2F10.0.0.1%3A8000%2Fv1&m=Qwen%2FQwen2.5&pm=gpt&t=cached&be=be_mock"
				"&c=60&cmax=4096&cs=t3.m1");
	chat(KEY_C, "gpt", 1); /* streamed: metered and cached */
	CHECK_EQ_STR(v.adapter, "p=vllm&u=http%3A%2F%2F10.0.0.1%3A8000%2Fv1&m=Qwen%2FQwen2.5&pm=gpt&mt=1&t=cached"
				"&be=be_mock&c=60&cmax=4096&cs=t3.m1");
	chat(KEY_C, "nometer", 0);
	CHECK_EQ_STR(v.adapter, "p=openai&u=http%3A%2F%2F10.0.0.2%2Fv1&m=nometer&pm=nometer&t=cached&be=be_nometer"
				"&c=5&cmax=2048&cs=s.m12");
	decide(KEY_C, "/v1/embeddings", "{\"model\":\"gpt\",\"input\":\"a\"}", &v);
	CHECK_EQ_STR(v.backend, "be_adapter");
	CHECK(strstr(v.adapter, "&c=60&cmax=4096&cs=t3.m1") != NULL);
	/* rerank is not cached: direct */
	decide(KEY_C, "/v1/rerank", "{\"model\":\"gpt\",\"query\":\"q\",\"documents\":[\"a\"]}", &v);
	CHECK_EQ_STR(v.backend, "be_mock");
	CHECK_EQ_STR(v.adapter, "");
	/* no endpoint row and no public default URL: direct, uncached (not refused) */
	chat(KEY_C, "plain", 0);
	CHECK_EQ_INT(v.allow, 1);
	CHECK_EQ_STR(v.backend, "be_plain");
	CHECK_EQ_STR(v.adapter, "");
	/* another tenant: no cache fields */
	chat(KEY_M, "gpt", 0);
	CHECK_EQ_STR(v.backend, "be_adapter"); /* masked, not cached */
	CHECK(strstr(v.adapter, "&c=") == NULL);
}

int main(void)
{
	store_init();
	load();
	RUN(direct_requests_stay_direct);
	RUN(metered_stream);
	RUN(direct_stream_usage_plan);
	RUN(translated_providers);
	RUN(cloud_providers);
	RUN(messages_clients);
	RUN(masking_tenant);
	RUN(cached_tenant);
	store_destroy();
	TEST_END();
}
