/*
 * Catalogue decisions in the pipeline: service types from the path, aliases, the
 * service-type and streaming refusals, multipart bodies, and the rewrite plan HAProxy
 * receives when the upstream name differs.
 */
#include "auth/apikey.h"
#include "pipeline/pipeline.h"
#include "spop/spop.h"
#include "state/policy.h"
#include "state/state.h"

#include "fixtures.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>

#define KEY "jr-00000000000000000000000000000000000000000000000000000000000000aa"

static uint32_t svc(const char *name)
{
	return 1u << policy_service_bit(name, strlen(name));
}

static void put_model(struct state *s, int64_t id, const char *name, const char *upstream,
		      uint32_t services, uint32_t caps, enum st_status st)
{
	struct st_model m = { .id = id, .backend = "be_mock", .status = st };

	snprintf(m.name, sizeof(m.name), "%s", name);
	snprintf(m.upstream, sizeof(m.upstream), "%s", upstream);
	m.services = services;
	m.caps = caps;
	state_put_model(s, &m);
}

static void load(void)
{
	struct state *s = state_new();
	struct st_tenant t = { 1, "acme", ST_ACTIVE, "" };
	struct st_key k;
	struct st_alias a = { 1, 1, "chat-alias" }, dangling = { 2, 99, "ghost" };

	memset(&k, 0, sizeof(k));
	k.id = k.tenant_id = 1;
	auth_key_hash(KEY, strlen(KEY), k.hash);
	state_put_tenant(s, &t);
	state_put_key(s, &k);
	put_model(s, 1, "chat", "", svc("chat") | svc("completions"), ST_CAP_STREAMING, ST_ACTIVE);
	put_model(s, 2, "batch", "", svc("chat"), 0, ST_ACTIVE);
	put_model(s, 3, "stt", "whisper-large-v3", svc("audio_transcriptions"), 0, ST_ACTIVE);
	put_model(s, 4, "renamed", "Up \"Q\"", svc("chat") | svc("rerank"), ST_CAP_STREAMING, ST_ACTIVE);
	put_model(s, 5, "off", "", svc("chat"), ST_CAP_STREAMING, ST_DISABLED);
	put_model(s, 6, "img", "", svc("images_generations") | svc("images_edits") |
		  svc("audio_speech") | svc("embeddings"), 0, ST_ACTIVE);
	state_put_alias(s, &a);
	state_put_alias(s, &dangling);
	store_replace(s);
	store_set_db_online(1);
}

struct rq {
	const char *path, *ctype, *body;
	int64_t body_size; /* 0: the body's length */
	int no_body; /* send the legacy `model` argument "renamed" instead of the body */
};

static void noop(struct pl_ctx *ctx, void *arg)
{
	(void)ctx;
	(void)arg;
}

static void put_str(struct spop_writer *w, const char *name, const char *v)
{
	struct spop_data d = spop_cstr(v);

	spop_put_kv(w, name, &d);
}

/* One decision over a POST with the given path, content type and body. */
static void decide(const struct rq *r, struct pl_verdict *v)
{
	static uint8_t buf[65536];
	struct spop_writer w;
	const char *msg = "jairouter-request";
	size_t blen = r->body ? strlen(r->body) : 0;
	struct spop_data body = spop_str(r->body ? r->body : "", blen);
	struct spop_data size = spop_int64(r->body_size ? r->body_size : (int64_t)blen);
	struct spop_data len = spop_int64((int64_t)blen);
	struct pl_ctx ctx;
	struct pl_policy pol = { 0, 2000 };
	int n;

	spop_writer_init(&w, buf, sizeof(buf));
	n = spop_varint_encode(strlen(msg), buf, 10);
	memcpy(buf + n, msg, strlen(msg));
	buf[(size_t)n + strlen(msg)] = 7;
	w.len = (size_t)n + strlen(msg) + 1;
	put_str(&w, "method", "POST");
	put_str(&w, "path", r->path);
	put_str(&w, "authorization", "Bearer " KEY);
	put_str(&w, "content_type", r->ctype ? r->ctype : "application/json");
	spop_put_kv(&w, "body_size", &size);
	spop_put_kv(&w, "body_len", &len);
	if (r->no_body) /* an older configuration: the model as an argument */
		put_str(&w, "model", "renamed");
	else
		spop_put_kv(&w, "body", &body);
	CHECK(!w.overflow);
	pl_ctx_init(&ctx, &pol);
	CHECK_EQ_INT(pl_request_decode(&ctx, buf, w.len), PL_DECODE_OK);
	CHECK_EQ_INT(pl_start(&ctx, pl_default_stages, pl_default_nstages, noop, noop, NULL), 1);
	*v = ctx.out;
	v->body = NULL;
	pl_ctx_clear(&ctx);
}

static void expect(const struct rq *r, int allow, int status, const char *code)
{
	struct pl_verdict v;

	decide(r, &v);
	CHECK_EQ_INT(v.allow, allow);
	if (!allow) {
		CHECK_EQ_INT(v.status, status);
		CHECK_EQ_STR(v.err_code, code);
		if (!v.err_code || strcmp(v.err_code, code) != 0)
			fprintf(stderr, "  path %s: %s\n", r->path, v.message);
	}
}

#define CHAT(model) "{\"model\":\"" model "\",\"messages\":[]}"

static void test_service_types(void)
{
	struct pl_verdict v;
	struct rq r = { "/v1/audio/speech", NULL, "{\"model\":\"img\",\"input\":\"x\"}", 0, 0 };

	expect(&r, 1, 0, NULL);
	r.path = "/api/v1/images/generations";
	expect(&r, 1, 0, NULL);
	r.path = "/v1/embeddings";
	expect(&r, 1, 0, NULL);
	r.path = "/v1/rerank";
	decide(&r, &v);
	CHECK_EQ_INT(v.status, 400);
	CHECK_EQ_STR(v.err_code, "model_not_supported");
	CHECK_EQ_STR(v.err_param, "model");
	CHECK(strstr(v.message, "'rerank'") != NULL);
	CHECK_EQ_STR(pl_reason_name(v.reason), "model_not_supported");
	CHECK_EQ_INT(v.backend[0], 0);
	r.path = "/v1/audio/voices";
	expect(&r, 0, 404, "unknown_url");
	for (int s = 0; s < PL_SVC__COUNT; s++)
		if (s != PL_SVC_NONE && s != PL_SVC_MODEL_GET)
			CHECK(policy_service_bit(pl_service_name((enum pl_service)s),
						 strlen(pl_service_name((enum pl_service)s))) >= 0);
}

static void test_aliases_and_status(void)
{
	struct pl_verdict v;
	struct rq r = { "/v1/chat/completions", NULL, CHAT("chat-alias"), 0, 0 };

	decide(&r, &v);
	CHECK_EQ_INT(v.allow, 1);
	CHECK_EQ_STR(v.model, "chat"); /* the canonical name */
	CHECK_EQ_STR(v.upstream_model, "");
	r.body = CHAT("ghost"); /* an alias whose model is gone */
	expect(&r, 0, 404, "model_not_found");
	r.body = CHAT("nope");
	expect(&r, 0, 404, "model_not_found");
	r.body = CHAT("off");
	expect(&r, 0, 404, "model_disabled");
}

static void test_streaming(void)
{
	struct rq r = { "/v1/chat/completions", NULL,
			"{\"model\":\"batch\",\"stream\":true,\"messages\":[]}", 0, 0 };
	struct pl_verdict v;

	decide(&r, &v);
	CHECK_EQ_INT(v.status, 400);
	CHECK_EQ_STR(v.err_code, "stream_not_supported");
	CHECK_EQ_STR(v.err_param, "stream");
	r.body = "{\"model\":\"batch\",\"stream\":false,\"messages\":[]}";
	expect(&r, 1, 0, NULL);
	r.body = "{\"model\":\"chat\",\"stream\":true,\"messages\":[]}";
	expect(&r, 1, 0, NULL);
}

static void test_rewrite_json(void)
{
	const char *body = "{\"a\":{\"model\":\"x\"}, \"model\" : \"ren\\u0061med\",\"z\":1}";
	struct rq r = { "/v1/chat/completions", NULL, body, 0, 0 };
	struct pl_verdict v;

	decide(&r, &v);
	CHECK_EQ_INT(v.allow, 1);
	CHECK_EQ_STR(v.model, "renamed");
	CHECK_EQ_STR(v.upstream_model, "Up \"Q\"");
	CHECK_EQ_STR(v.model_rewrite, "\"Up \\\"Q\\\"\"");
	CHECK_EQ_INT(v.model_off, strstr(body, "\"ren") - body);
	CHECK_EQ_INT(v.model_len, strlen("\"ren\\u0061med\""));
	/* No body (a configuration that sends only the model): refused, never sent as is. */
	r.no_body = 1;
	decide(&r, &v);
	CHECK_EQ_INT(v.allow, 0);
	CHECK_EQ_INT(v.status, 503);
	CHECK_EQ_STR(v.err_code, "model_rewrite_unavailable");
}

#define FORM_CT "multipart/form-data; boundary=BB"
#define FPART(name, value) "--BB\r\nContent-Disposition: form-data; name=\"" name "\"\r\n\r\n" value "\r\n"
#define FFILE "--BB\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\nRIFF\r\n"
#define FEND "--BB--\r\n"

static void test_forms(void)
{
	const char *body = FFILE FPART("model", "stt") FEND;
	struct rq r = { "/v1/audio/transcriptions", FORM_CT, body, 0, 0 };
	struct pl_verdict v;

	decide(&r, &v);
	CHECK_EQ_INT(v.allow, 1);
	CHECK_EQ_STR(v.model, "stt");
	CHECK_EQ_STR(v.model_rewrite, "whisper-large-v3"); /* raw in a form */
	CHECK_EQ_INT(v.model_off, strstr(body, "\r\n\r\nstt") + 4 - body);
	CHECK_EQ_INT(v.model_len, 3);
	r.body = FPART("model", "stt") FPART("model", "img") FFILE FEND;
	expect(&r, 0, 400, "duplicate_field");
	r.body = FPART("model", "stt") FPART("stream", "maybe") FEND;
	expect(&r, 0, 400, "invalid_type");
	r.body = FPART("model", "stt") FPART("stream", "true") FEND; /* stt cannot stream */
	expect(&r, 0, 400, "stream_not_supported");
	r.body = FFILE FEND;
	expect(&r, 0, 400, "missing_model");
	r.body = FPART("model", "stt") "--BB\r\n"; /* not truncated, yet unfinished */
	expect(&r, 0, 400, "invalid_multipart");
	r.ctype = "multipart/form-data";
	r.body = FPART("model", "stt") FEND;
	expect(&r, 0, 400, "invalid_multipart");
}

static void test_truncated_forms(void)
{
	struct rq r = { "/v1/audio/transcriptions", FORM_CT, FPART("model", "stt") FFILE, 1 << 20, 0 };

	/* The model's part is complete inside the prefix: routed. */
	expect(&r, 1, 0, NULL);
	/* The model is after the cut: 413, never a guess. */
	r.body = FFILE FPART("model", "stt");
	r.body_size = 1 << 20;
	r.body = "--BB\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nRIFF";
	expect(&r, 0, 413, "request_too_large");
	/* A truncated JSON body is 413 as before. */
	r.ctype = NULL;
	r.body = "{\"model\":\"chat\",";
	expect(&r, 0, 413, "request_too_large");
}

int main(void)
{
	store_init();
	load();
	RUN(test_service_types);
	RUN(test_aliases_and_status);
	RUN(test_streaming);
	RUN(test_rewrite_json);
	RUN(test_forms);
	RUN(test_truncated_forms);
	store_destroy();
	TEST_END();
}
