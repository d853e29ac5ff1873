/*
 * The decision pipeline end to end, without sockets: NOTIFY payload bytes in, verdict
 * and ACK bytes out, against an in-memory catalogue.
 */
#include "auth/apikey.h"
#include "pipeline/pipeline.h"
#include "spop/spop.h"
#include "state/state.h"

#include "fixtures.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>

#define KEY_OK "jr-00000000000000000000000000000000000000000000000000000000000000aa"
#define KEY_REVOKED "jr-00000000000000000000000000000000000000000000000000000000000000bb"
#define KEY_EXPIRED "jr-00000000000000000000000000000000000000000000000000000000000000cc"
#define KEY_OTHER_TENANT "jr-00000000000000000000000000000000000000000000000000000000000000dd"
#define KEY_UNKNOWN "jr-00000000000000000000000000000000000000000000000000000000000000ee"

static void put_key(struct state *s, int64_t id, int64_t tenant, const char *key, enum st_status st,
		    int64_t expires)
{
	struct st_key k;

	memset(&k, 0, sizeof(k));
	k.id = id;
	k.tenant_id = tenant;
	k.status = st;
	k.expires_at = expires;
	auth_key_hash(key, strlen(key), k.hash);
	snprintf(k.prefix, sizeof(k.prefix), "%.11s", key);
	state_put_key(s, &k);
}

static void load_catalogue(void)
{
	struct state *s = state_new();
	struct st_tenant acme = { 1, "acme", ST_ACTIVE, "" }, off = { 2, "frozen", ST_DISABLED, "" };
	struct st_model m1 = { .id = 1, .name = "demo-model", .backend = "be_mock" };
	struct st_model m2 = { .id = 2, .name = "old-model", .backend = "be_mock",
			       .status = ST_DISABLED };

	state_put_tenant(s, &acme);
	state_put_tenant(s, &off);
	m1.services = m2.services = FX_SERVICES_ALL;
	m1.caps = m2.caps = ST_CAP_STREAMING;
	state_put_model(s, &m1);
	state_put_model(s, &m2);
	put_key(s, 1, 1, KEY_OK, ST_ACTIVE, 0);
	put_key(s, 2, 1, KEY_REVOKED, ST_REVOKED, 0);
	put_key(s, 3, 1, KEY_EXPIRED, ST_ACTIVE, 1000);
	put_key(s, 4, 2, KEY_OTHER_TENANT, ST_ACTIVE, 0);
	store_replace(s);
	store_set_db_online(1);
}

/* Builds a LIST-OF-MESSAGES with one message. */
static size_t build_payload(uint8_t *buf, size_t cap, const char *msg, const struct fx_arg *args,
			    int n)
{
	size_t len = fx_build_payload(buf, cap, msg, args, n);

	CHECK(len > 0);
	return len;
}

struct outcome {
	int done_calls, release_calls;
};

static void on_done(struct pl_ctx *ctx, void *arg)
{
	(void)ctx;
	((struct outcome *)arg)->done_calls++;
}

static void on_release(struct pl_ctx *ctx, void *arg)
{
	(void)ctx;
	((struct outcome *)arg)->release_calls++;
}

struct req_spec {
	const char *method, *path, *auth, *xkey, *model;
	int64_t body_len, body_size, cred_count;
	int model_as_int;
};

static const struct req_spec base_req = { "POST", "/v1/chat/completions", "Bearer " KEY_OK, NULL,
					  "demo-model", 100, 100, 1, 0 };

/* Runs the default pipeline on a request; the verdict lands in *v. */
static void decide(const struct req_spec *r, struct pl_verdict *v)
{
	struct fx_arg args[12];
	int n = 0;
	uint8_t buf[4096];
	size_t len;
	struct pl_ctx ctx;
	struct pl_policy pol = { 0, 2000 };
	struct outcome o = { 0, 0 };

	args[n++] = (struct fx_arg){ "method", spop_cstr(r->method) };
	args[n++] = (struct fx_arg){ "path", spop_cstr(r->path) };
	args[n++] = (struct fx_arg){ "authorization", r->auth ? spop_cstr(r->auth) : (struct spop_data){ SPOP_DATA_NULL, { 0 } } };
	if (r->xkey)
		args[n++] = (struct fx_arg){ "api_key", spop_cstr(r->xkey) };
	if (r->model_as_int)
		args[n++] = (struct fx_arg){ "model", spop_int64(5) };
	else if (r->model)
		args[n++] = (struct fx_arg){ "model", spop_cstr(r->model) };
	args[n++] = (struct fx_arg){ "body_len", spop_int64(r->body_len) };
	args[n++] = (struct fx_arg){ "body_size", spop_int64(r->body_size) };
	args[n++] = (struct fx_arg){ "cred_count", spop_int64(r->cred_count) };
	args[n++] = (struct fx_arg){ "unknown_future_arg", spop_bool(1) };
	len = build_payload(buf, sizeof(buf), "jairouter-request", args, n);
	pl_ctx_init(&ctx, &pol);
	CHECK_EQ_INT(pl_request_decode(&ctx, buf, len), PL_DECODE_OK);
	CHECK_EQ_INT(pl_start(&ctx, pl_default_stages, pl_default_nstages, on_done, on_release, &o), 1);
	CHECK_EQ_INT(o.done_calls, 1);
	CHECK_EQ_INT(o.release_calls, 1);
	*v = ctx.out;
	pl_ctx_clear(&ctx);
}

static void expect_deny(const struct req_spec *r, int status, enum pl_reason reason, const char *code)
{
	struct pl_verdict v;

	decide(r, &v);
	CHECK_EQ_INT(v.allow, 0);
	CHECK_EQ_INT(v.status, status);
	CHECK_EQ_STR(pl_reason_name(v.reason), pl_reason_name(reason));
	if (code)
		CHECK_EQ_STR(v.err_code, code);
}

static void test_allow(void)
{
	struct pl_verdict v;
	struct req_spec r = base_req;

	decide(&r, &v);
	CHECK_EQ_INT(v.allow, 1);
	CHECK_EQ_STR(v.backend, "be_mock");
	CHECK_EQ_STR(v.model, "demo-model");
	CHECK_EQ_STR(v.tenant, "acme");
	CHECK_EQ_STR(v.key_prefix, "jr-00000000");
	r.path = "/api/v1/chat/completions"; /* the Java JAiRouter's path style */
	decide(&r, &v);
	CHECK_EQ_INT(v.allow, 1);
	r.path = "/v1/embeddings";
	r.auth = NULL;
	r.xkey = KEY_OK; /* Anthropic-style header */
	decide(&r, &v);
	CHECK_EQ_INT(v.allow, 1);
}

static void test_credentials(void)
{
	struct req_spec r = base_req;

	r.auth = NULL;
	expect_deny(&r, 401, PL_R_MISSING_CREDENTIALS, "missing_api_key");
	r.auth = "Basic dXNlcjpwYXNz";
	expect_deny(&r, 401, PL_R_INVALID_KEY, "invalid_api_key");
	r.auth = "Bearer sk-not-ours";
	expect_deny(&r, 401, PL_R_INVALID_KEY, "invalid_api_key");
	r.auth = "Bearer " KEY_UNKNOWN;
	expect_deny(&r, 401, PL_R_INVALID_KEY, "invalid_api_key");
	r.auth = "Bearer " KEY_REVOKED;
	expect_deny(&r, 401, PL_R_REVOKED_KEY, "invalid_api_key");
	r.auth = "Bearer " KEY_EXPIRED;
	expect_deny(&r, 401, PL_R_EXPIRED_KEY, "expired_api_key");
	r.auth = "Bearer " KEY_OTHER_TENANT;
	expect_deny(&r, 403, PL_R_TENANT_DISABLED, "tenant_disabled");
	r = base_req;
	r.cred_count = 2;
	expect_deny(&r, 400, PL_R_AMBIGUOUS_CREDENTIALS, "ambiguous_credentials");
}

static void test_unknown_key_while_database_down(void)
{
	struct req_spec r = base_req;
	struct pl_verdict v;

	store_set_db_online(0);
	r.auth = "Bearer " KEY_UNKNOWN;
	expect_deny(&r, 503, PL_R_DATABASE_UNAVAILABLE, "database_unavailable");
	decide(&base_req, &v); /* a cached key keeps working */
	CHECK_EQ_INT(v.allow, 1);
	store_set_db_online(1);
}

static void test_request_checks(void)
{
	struct req_spec r = base_req;

	r.path = "/v1/chat/completion";
	expect_deny(&r, 404, PL_R_UNKNOWN_URL, "unknown_url");
	r = base_req;
	r.method = "GET";
	expect_deny(&r, 404, PL_R_UNKNOWN_URL, "unknown_url");
	r = base_req;
	r.body_size = 2000000;
	r.body_len = 1048000;
	expect_deny(&r, 413, PL_R_BODY_TOO_LARGE, "request_too_large");
	r = base_req;
	r.model = NULL;
	expect_deny(&r, 400, PL_R_MISSING_MODEL, "missing_model");
	r.model_as_int = 1;
	expect_deny(&r, 400, PL_R_INVALID_MODEL, "invalid_type");
	r = base_req;
	r.model = "";
	expect_deny(&r, 400, PL_R_INVALID_MODEL, "invalid_type");
}

static void test_models(void)
{
	struct req_spec r = base_req;

	r.model = "nope";
	expect_deny(&r, 404, PL_R_UNKNOWN_MODEL, "model_not_found");
	r.model = "old-model";
	expect_deny(&r, 404, PL_R_MODEL_DISABLED, "model_disabled");
	r.model = "demo-mode"; /* prefixes never match */
	expect_deny(&r, 404, PL_R_UNKNOWN_MODEL, "model_not_found");
}

static void expect_respond(const struct req_spec *r, const char *body)
{
	struct fx_arg args[4];
	uint8_t buf[1024];
	size_t len;
	struct pl_ctx ctx;
	struct pl_policy pol = { 0, 2000 };
	struct outcome o = { 0, 0 };

	args[0] = (struct fx_arg){ "method", spop_cstr(r->method) };
	args[1] = (struct fx_arg){ "path", spop_cstr(r->path) };
	args[2] = (struct fx_arg){ "authorization", spop_cstr(r->auth) };
	len = build_payload(buf, sizeof(buf), "jairouter-request", args, 3);
	pl_ctx_init(&ctx, &pol);
	CHECK_EQ_INT(pl_request_decode(&ctx, buf, len), PL_DECODE_OK);
	pl_start(&ctx, pl_default_stages, pl_default_nstages, on_done, on_release, &o);
	if (body) {
		CHECK_EQ_INT(ctx.out.respond, 1);
		CHECK_EQ_INT(ctx.out.status, 200);
		CHECK_EQ_STR(ctx.out.body, body);
	} else {
		CHECK_EQ_INT(ctx.out.respond, 0);
		CHECK_EQ_INT(ctx.out.status, 404);
	}
	pl_ctx_clear(&ctx);
}

static void test_models_endpoints(void)
{
	struct req_spec r = base_req;

	r.method = "GET";
	r.path = "/v1/models";
	/* Only active models are listed. */
	expect_respond(&r, "{\"object\":\"list\",\"data\":[{\"id\":\"demo-model\",\"object\":"
			   "\"model\",\"created\":0,\"owned_by\":\"jairouter\"}]}");
	r.path = "/api/v1/models/demo%2dmodel";
	expect_respond(&r, "{\"id\":\"demo-model\",\"object\":\"model\",\"created\":0,"
			   "\"owned_by\":\"jairouter\"}");
	r.path = "/v1/models/old-model";
	expect_respond(&r, NULL);
	r.path = "/v1/models/bad%zz";
	expect_respond(&r, NULL);
	r.path = "/v1/models/nul%00x";
	expect_respond(&r, NULL);
}

/* The body-carrying contract: HAProxy sends `body`, the agent reads the model itself. */
static void decide_body(const char *body, struct pl_verdict *v)
{
	struct fx_arg args[5];
	uint8_t buf[4096];
	size_t len;
	struct pl_ctx ctx;
	struct pl_policy pol = { 0, 2000 };
	struct outcome o = { 0, 0 };

	args[0] = (struct fx_arg){ "method", spop_cstr("POST") };
	args[1] = (struct fx_arg){ "path", spop_cstr("/v1/chat/completions") };
	args[2] = (struct fx_arg){ "authorization", spop_cstr("Bearer " KEY_OK) };
	args[3] = (struct fx_arg){ "body", spop_str(body, strlen(body)) };
	args[3].value.type = SPOP_DATA_BINARY;
	len = build_payload(buf, sizeof(buf), "jairouter-request", args, 4);
	pl_ctx_init(&ctx, &pol);
	CHECK_EQ_INT(pl_request_decode(&ctx, buf, len), PL_DECODE_OK);
	pl_start(&ctx, pl_default_stages, pl_default_nstages, on_done, on_release, &o);
	*v = ctx.out;
	pl_ctx_clear(&ctx);
}

static void expect_body(const char *body, int status, const char *code)
{
	struct pl_verdict v;

	decide_body(body, &v);
	CHECK_EQ_INT(v.allow, status == 200);
	if (status != 200) {
		CHECK_EQ_INT(v.status, status);
		CHECK_EQ_STR(v.err_code, code);
	}
}

static void test_json_body(void)
{
	expect_body("{\"model\":\"demo-model\",\"messages\":[],\"stream\":true}", 200, NULL);
	expect_body("{\"model\":\"demo-model\",\"messages\":[", 400, "invalid_json");
	expect_body("not json", 400, "invalid_json");
	expect_body("[\"model\"]", 400, "invalid_json");
	expect_body("", 400, "invalid_json");
	expect_body("{\"messages\":[]}", 400, "missing_model");
	expect_body("{\"model\":42}", 400, "invalid_type");
	expect_body("{\"model\":\"demo\\u0000model\"}", 400, "invalid_type");
	expect_body("{\"model\":\"demo-model\",\"stream\":\"yes\"}", 400, "invalid_type");
	/* The smuggling attempt: route by one model, run another. */
	expect_body("{\"model\":\"demo-model\",\"model\":\"premium\"}", 400, "duplicate_field");
	expect_body("{\"model\":\"demo-model\",\"mod\\u0065l\":\"premium\"}", 400, "duplicate_field");
	/* Escapes in the value are decoded before the lookup. */
	expect_body("{\"model\":\"demo\\u002dmodel\"}", 200, NULL);
	expect_body("{\"model\":\"nope\"}", 404, "model_not_found");
}

static void test_auth_before_everything(void)
{
	struct req_spec r = base_req;

	/* An unauthenticated caller learns nothing about paths or models. */
	r.auth = NULL;
	r.model = "nope";
	r.path = "/v1/secret";
	expect_deny(&r, 401, PL_R_MISSING_CREDENTIALS, NULL);
}

static void test_error_json(void)
{
	struct req_spec r = base_req;
	struct pl_verdict v;
	char buf[PL_ERROR_MAX];

	r.model = "x\"y\n";
	decide(&r, &v);
	CHECK(pl_error_json(&v, buf, sizeof(buf)) > 0);
	CHECK_EQ_STR(buf, "{\"error\":{\"message\":\"The model `x\\\"y\\n` does not exist or you do "
			  "not have access to it.\",\"type\":\"invalid_request_error\",\"param\":"
			  "\"model\",\"code\":\"model_not_found\"}}");
	r = base_req;
	r.auth = NULL;
	decide(&r, &v);
	CHECK(pl_error_json(&v, buf, sizeof(buf)) > 0);
	CHECK(strstr(buf, "\"type\":\"authentication_error\",\"param\":null,") != NULL);
}

static void test_ack(void)
{
	struct pl_verdict v;
	struct req_spec r = base_req;
	uint8_t buf[2048];
	struct spop_frame f;
	uint32_t len;
	int n;

	decide(&r, &v);
	n = pl_ack_encode(&v, 7, 3, buf, sizeof(buf), 16380);
	CHECK(n > 0);
	CHECK_EQ_INT(spop_frame_length(buf, (size_t)n, 16380, &len), 4);
	CHECK_EQ_INT(len + 4, n);
	CHECK_EQ_INT(spop_frame_decode(buf + 4, len, &f), 0);
	CHECK_EQ_INT(f.type, SPOP_FRAME_ACK);
	CHECK_EQ_INT(f.flags, SPOP_FLAG_FIN);
	CHECK_EQ_INT(f.stream_id, 7);
	CHECK_EQ_INT(f.frame_id, 3);
	CHECK(fx_contains(buf, (size_t)n, "verdict") && fx_contains(buf, (size_t)n, "allow"));
	CHECK(fx_contains(buf, (size_t)n, "be_mock"));
	/* A denial at the smallest frame size HAProxy allows still goes out, without body. */
	r.model = "nope-nope-nope-nope-nope-nope-nope-nope-nope-nope-nope-nope-nope-nope-nope-nope-"
		  "nope-nope-nope-nope-nope-nope-nope-nope";
	decide(&r, &v);
	n = pl_ack_encode(&v, 1, 1, buf, sizeof(buf), 16380);
	CHECK(n > 0 && fx_contains(buf, (size_t)n, "model_not_found"));
	n = pl_ack_encode(&v, 1, 1, buf, sizeof(buf), 256);
	CHECK(n > 0 && n <= 260);
	CHECK(fx_contains(buf, (size_t)n, "deny") && !fx_contains(buf, (size_t)n, "model_not_found"));
	/* A direct answer too large for the frame becomes a 500 naming the limit. */
	memset(&v, 0, sizeof(v));
	v.respond = 1;
	v.status = 200;
	v.body = malloc(5000);
	memset(v.body, 'x', 5000);
	v.body_len = 5000;
	n = pl_ack_encode(&v, 1, 1, buf, sizeof(buf), 1024);
	CHECK(n > 0 && fx_contains(buf, (size_t)n, "response_too_large") && fx_contains(buf, (size_t)n, "deny"));
	free(v.body);
}

static void test_decode_errors(void)
{
	struct pl_ctx ctx;
	struct pl_policy pol = { 0, 0 };
	struct fx_arg a = { "method", spop_cstr("POST") };
	uint8_t buf[256];
	size_t len = build_payload(buf, sizeof(buf), "some-other-message", &a, 1);

	pl_ctx_init(&ctx, &pol);
	CHECK_EQ_INT(pl_request_decode(&ctx, buf, len), PL_DECODE_NO_MESSAGE);
	pl_ctx_clear(&ctx);
	pl_ctx_init(&ctx, &pol);
	CHECK_EQ_INT(pl_request_decode(&ctx, buf, len - 2), PL_DECODE_MALFORMED);
	pl_ctx_clear(&ctx);
}

static void test_not_ready(void)
{
	struct pl_verdict v;

	store_destroy();
	store_init();
	decide(&base_req, &v);
	CHECK_EQ_INT(v.status, 503);
	CHECK_EQ_INT(v.reason, PL_R_NOT_READY);
	CHECK_EQ_INT(v.retry_after, 1);
	load_catalogue();
}

/* ---- asynchronous stages ---------------------------------------------------------- */

static enum pl_result st_pending(struct pl_ctx *ctx)
{
	(void)ctx;
	return PL_PENDING;
}

static enum pl_result st_allow(struct pl_ctx *ctx)
{
	snprintf(ctx->out.backend, sizeof(ctx->out.backend), "be_x");
	ctx->out.allow = 1;
	return PL_DONE;
}

static enum pl_result st_next(struct pl_ctx *ctx)
{
	(void)ctx;
	return PL_NEXT;
}

static const struct pl_stage async_stages[] = { { "wait", st_pending }, { "allow", st_allow } };
static const struct pl_stage empty_stages[] = { { "nothing", st_next } };

static void test_async_resume(void)
{
	struct pl_ctx ctx;
	struct pl_policy pol = { 0, 0 };
	struct outcome o = { 0, 0 };

	pl_ctx_init(&ctx, &pol);
	CHECK_EQ_INT(pl_start(&ctx, async_stages, 2, on_done, on_release, &o), 0);
	CHECK_EQ_INT(o.done_calls, 0);
	pl_resume(&ctx, PL_NEXT);
	CHECK_EQ_INT(o.done_calls, 1);
	CHECK_EQ_INT(o.release_calls, 1);
	CHECK_EQ_INT(ctx.out.allow, 1);
}

static void test_async_deadline(void)
{
	struct pl_ctx ctx;
	struct pl_policy pol = { 0, 0 };
	struct outcome o = { 0, 0 };

	pl_ctx_init(&ctx, &pol);
	CHECK_EQ_INT(pl_start(&ctx, async_stages, 2, on_done, on_release, &o), 0);
	pl_abandon(&ctx);
	CHECK_EQ_INT(o.done_calls, 1);
	CHECK_EQ_INT(o.release_calls, 0); /* the pending stage still holds the context */
	CHECK_EQ_INT(ctx.out.allow, 0);
	CHECK_EQ_INT(ctx.out.status, 503);
	CHECK_EQ_INT(ctx.out.reason, PL_R_DEADLINE);
	pl_resume(&ctx, PL_NEXT); /* late completion: no second verdict */
	CHECK_EQ_INT(o.done_calls, 1);
	CHECK_EQ_INT(o.release_calls, 1);
	CHECK_EQ_INT(ctx.out.allow, 0);
}

static void test_no_verdict_is_a_denial(void)
{
	struct pl_ctx ctx;
	struct pl_policy pol = { 1, 0 }; /* even with on_error = allow: no route, no allow */
	struct outcome o = { 0, 0 };

	pl_ctx_init(&ctx, &pol);
	CHECK_EQ_INT(pl_start(&ctx, empty_stages, 1, on_done, on_release, &o), 1);
	CHECK_EQ_INT(ctx.out.allow, 0);
	CHECK_EQ_INT(ctx.out.status, 503);
	CHECK_EQ_INT(ctx.out.reason, PL_R_INTERNAL);
}

int main(void)
{
	store_init();
	load_catalogue();
	RUN(test_allow);
	RUN(test_credentials);
	RUN(test_unknown_key_while_database_down);
	RUN(test_request_checks);
	RUN(test_models);
	RUN(test_models_endpoints);
	RUN(test_json_body);
	RUN(test_auth_before_everything);
	RUN(test_error_json);
	RUN(test_ack);
	RUN(test_decode_errors);
	RUN(test_not_ready);
	RUN(test_async_resume);
	RUN(test_async_deadline);
	RUN(test_no_verdict_is_a_denial);
	store_destroy();
	TEST_END();
}
