/*
 * The spine's decision stages: identity -> tenant -> request -> authz -> route.
 * Each reads the catalogue under the store's read lock and copies out what later stages
 * need, so no pointer into the store outlives its lock.
 */
#include "pipeline/pipeline.h"

#include "auth/apikey.h"
#include "form/multipart.h"
#include "jwt/jwt.h"
#include "lb/lb.h"
#include "pipeline/limits.h"
#include "state/policy.h"
#include "util/json.h"
#include "util/pct.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MODEL_ECHO_MAX 128 /* longest model name quoted back in an error message */

static enum pl_result deny_auth(struct pl_ctx *ctx, enum pl_reason reason, const char *code,
				const char *message)
{
	return pl_deny(ctx, 401, reason, "authentication_error", code, NULL, "%s", message);
}

static enum pl_result key_unknown(struct pl_ctx *ctx)
{
	if (!store_db_online()) {
		/* Maybe a key issued after our last sync: ask the client to retry, do not
		 * tell it the key is wrong. */
		pl_deny(ctx, 503, PL_R_DATABASE_UNAVAILABLE, "server_error", "database_unavailable",
			NULL, "The gateway cannot verify this API key right now. Please retry shortly.");
		ctx->out.retry_after = 5;
		return PL_DONE;
	}
	return deny_auth(ctx, PL_R_INVALID_KEY, "invalid_api_key", "Incorrect API key provided.");
}

static enum pl_result key_refused(struct pl_ctx *ctx, const struct st_key *k)
{
	char when[32], msg[96];
	struct tm tm;
	time_t t;

	if (k->status == ST_REVOKED)
		return deny_auth(ctx, PL_R_REVOKED_KEY, "invalid_api_key", "This API key has been revoked.");
	if (k->status != ST_ACTIVE)
		return deny_auth(ctx, PL_R_DISABLED_KEY, "invalid_api_key", "This API key is disabled.");
	t = (time_t)k->expires_at;
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(msg, sizeof(msg), "This API key expired at %s.", when);
	return deny_auth(ctx, PL_R_EXPIRED_KEY, "expired_api_key", msg);
}

static enum pl_result credential_problem(struct pl_ctx *ctx, int rc)
{
	if (rc == 0)
		return deny_auth(ctx, PL_R_MISSING_CREDENTIALS, "missing_api_key",
				 "You didn't provide an API key. Send it as 'Authorization: Bearer "
				 "YOUR_KEY' or in the 'x-api-key' header.");
	return deny_auth(ctx, PL_R_INVALID_KEY, "invalid_api_key",
			 "The Authorization header must be 'Bearer YOUR_KEY'.");
}

/* API keys here; any other bearer token goes to pl_identity_token() (identity.c). */
static enum pl_result identity_inner(struct pl_ctx *ctx)
{
	const struct pl_request *in = &ctx->in;
	const struct st_key *k;
	const char *tok = NULL;
	size_t len = 0;
	uint8_t hash[ST_HASH_LEN];
	struct st_key copy;
	int rc;

	if (in->cred_count > 1)
		return pl_deny(ctx, 400, PL_R_AMBIGUOUS_CREDENTIALS, "invalid_request_error",
			       "ambiguous_credentials", NULL,
			       "Send exactly one credential: one Authorization header or one x-api-key header.");
	rc = auth_credential(in->authorization.ptr, in->authorization.len, in->api_key.ptr,
			     in->api_key.len, &tok, &len);
	if (rc <= 0)
		return credential_problem(ctx, rc);
	if (!store_ready()) {
		pl_deny(ctx, 503, PL_R_NOT_READY, "server_error", "gateway_not_ready", NULL,
			"The gateway is starting and has not loaded its catalogue yet. Please retry.");
		ctx->out.retry_after = 1;
		return PL_DONE;
	}
	if (!auth_key_wellformed(tok, len)) {
		/* Tokens come as Authorization: Bearer only (x-api-key holds API keys). */
		if (in->authorization.ptr && jwt_looks_like(tok, len))
			return pl_identity_token(ctx, tok, len);
		if (in->authorization.ptr && !(len > 3 && memcmp(tok, AUTH_KEY_PREFIX, 3) == 0))
			return pl_identity_opaque(ctx, tok, len);
		return deny_auth(ctx, PL_R_INVALID_KEY, "invalid_api_key", "Incorrect API key provided.");
	}
	auth_key_hash(tok, len, hash);
	k = state_find_key(store_read_begin(), hash);
	if (k)
		copy = *k;
	store_read_end();
	if (!k)
		return key_unknown(ctx);
	if (copy.status != ST_ACTIVE || (copy.expires_at && ctx->policy.now_unix >= copy.expires_at))
		return key_refused(ctx, &copy);
	ctx->tenant_id = copy.tenant_id;
	ctx->key_id = copy.id;
	ctx->auth_kind = PL_AUTH_KEY;
	snprintf(ctx->out.key_prefix, sizeof(ctx->out.key_prefix), "%s", copy.prefix);
	return PL_NEXT;
}

/* The address lock-out and the audit of refusals wrap the credential checks. */
static enum pl_result stage_identity(struct pl_ctx *ctx)
{
	return pl_identity_guard(ctx, identity_inner);
}

static enum pl_result stage_tenant(struct pl_ctx *ctx)
{
	const struct st_tenant *t = state_find_tenant(store_read_begin(), ctx->tenant_id);
	enum st_status status = t ? t->status : ST_DISABLED;

	if (t)
		snprintf(ctx->out.tenant, sizeof(ctx->out.tenant), "%s", t->name);
	store_read_end();
	if (!t)
		return deny_auth(ctx, PL_R_INVALID_KEY, "invalid_api_key", "Incorrect API key provided.");
	if (status != ST_ACTIVE)
		return pl_deny(ctx, 403, PL_R_TENANT_DISABLED, "permission_error", "tenant_disabled",
			       NULL, "The tenant '%s' is disabled. Contact your administrator.",
			       ctx->out.tenant);
	return PL_NEXT;
}

struct route_entry {
	const char *method;
	const char *path; /* after the optional "/api" prefix */
	enum pl_service service;
};

static const struct route_entry routes[] = {
	{ "POST", "/v1/chat/completions", PL_SVC_CHAT },
	{ "POST", "/v1/completions", PL_SVC_COMPLETIONS },
	{ "POST", "/v1/embeddings", PL_SVC_EMBEDDINGS },
	{ "POST", "/v1/rerank", PL_SVC_RERANK },
	{ "POST", "/v1/audio/speech", PL_SVC_AUDIO_SPEECH },
	{ "POST", "/v1/audio/transcriptions", PL_SVC_AUDIO_TRANSCRIPTIONS },
	{ "POST", "/v1/images/generations", PL_SVC_IMAGES_GENERATIONS },
	{ "POST", "/v1/images/edits", PL_SVC_IMAGES_EDITS },
	{ "POST", "/v1/moderations", PL_SVC_MODERATIONS },
	/* Anthropic-style clients: a chat request, translated by jairouter-adapter. */
	{ "POST", "/v1/messages", PL_SVC_CHAT },
	{ "GET", "/v1/models", PL_SVC_MODELS },
	{ "GET", "/v1/realtime", PL_SVC_REALTIME },
};

#define MODELS_PREFIX "/v1/models/"

static int is_answered_here(enum pl_service s)
{
	return s == PL_SVC_MODELS || s == PL_SVC_MODEL_GET;
}

static int str_is(const struct pl_str *s, const char *lit)
{
	return s->ptr && s->len == strlen(lit) && memcmp(s->ptr, lit, s->len) == 0;
}

/* The Java JAiRouter serves both /v1/... and /api/v1/...: so do we. */
static enum pl_service service_of(const struct pl_request *in)
{
	struct pl_str path = in->path;

	if (path.ptr && path.len > 4 && memcmp(path.ptr, "/api/", 5) == 0)
		path.ptr += 4, path.len -= 4;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (str_is(&in->method, routes[i].method) && str_is(&path, routes[i].path))
			return routes[i].service;
	if (str_is(&in->method, "GET") && path.ptr && path.len > strlen(MODELS_PREFIX) &&
	    memcmp(path.ptr, MODELS_PREFIX, strlen(MODELS_PREFIX)) == 0)
		return PL_SVC_MODEL_GET;
	return PL_SVC_NONE;
}

/* The model id of GET /v1/models/{id}, percent-decoded (ids may hold '/'). Returns the
 * length, or -1 when malformed or too long. */
static int model_id_from_path(const struct pl_str *path, char *out, size_t cap)
{
	const char *end = path->ptr + path->len;
	const char *p = (const char *)memmem(path->ptr, path->len, MODELS_PREFIX, strlen(MODELS_PREFIX)) +
			strlen(MODELS_PREFIX);

	return pct_decode(p, (size_t)(end - p), out, cap);
}

static enum pl_result deny_body(struct pl_ctx *ctx, enum pl_reason r, const char *code,
			       const char *param, const char *msg)
{
	return pl_deny(ctx, 400, r, "invalid_request_error", code, param, "%s", msg);
}

/* Reads the JSON body: the whole document must be valid, and the fields the decision
 * uses must be unambiguous (one top-level "model", whatever its escaping). */
static enum pl_result parse_json_body(struct pl_ctx *ctx)
{
	struct pl_request *in = &ctx->in;
	struct jscan_top *j = &ctx->json;
	int rc = jscan_top(in->body.ptr ? in->body.ptr : "", in->body.len, JSCAN_DEFAULT_DEPTH, j);

	if (rc == JSCAN_TOO_DEEP)
		return deny_body(ctx, PL_R_INVALID_JSON, "invalid_json", NULL,
				 "The JSON body is nested too deeply.");
	if (rc != JSCAN_OK || j->root != JSCAN_OBJECT)
		return deny_body(ctx, PL_R_INVALID_JSON, "invalid_json", NULL,
				 "We could not parse the JSON body of your request: it must be a "
				 "JSON object (Content-Type: application/json).");
	if (j->model_count > 1)
		return deny_body(ctx, PL_R_INVALID_MODEL, "duplicate_field", "model",
				 "The request body has more than one 'model' field.");
	if (j->stream_type != JSCAN_ABSENT && j->stream_type != JSCAN_BOOL &&
	    j->stream_type != JSCAN_NULL)
		return deny_body(ctx, PL_R_INVALID_JSON, "invalid_type", "stream",
				 "Invalid type for 'stream': expected a boolean.");
	in->stream = j->stream_type == JSCAN_BOOL && j->stream;
	in->model_present = j->model_count > 0;
	in->model.ptr = NULL;
	in->model.len = 0;
	if (j->model_type == JSCAN_STRING && !j->model_has_nul) {
		in->model.ptr = j->model;
		in->model.len = j->model_too_long ? ST_MODEL_MAX : j->model_len;
		in->model_off = (int64_t)j->model_offset;
		in->model_raw_len = (int64_t)j->model_raw_len;
	}
	return PL_NEXT;
}

static int body_truncated(const struct pl_request *in)
{
	return in->body_size >= 0 && in->body_len >= 0 && in->body_size > in->body_len;
}

static enum pl_result deny_too_large(struct pl_ctx *ctx, const char *what)
{
	const struct pl_request *in = &ctx->in;

	return pl_deny(ctx, 413, PL_R_BODY_TOO_LARGE, "invalid_request_error", "request_too_large",
		       NULL, "The request body (%lld bytes) is larger than the gateway can inspect "
		       "(%lld bytes)%s.", (long long)in->body_size, (long long)in->body_len, what);
}

/* A form's stream field as the usual server-side parsers read booleans; anything else
 * is refused rather than guessed. Returns 0 or 1, or -1. */
static int form_bool(const char *p, size_t n)
{
	static const char *const yes[] = { "true", "1", "yes", "on", "t", "y" };
	static const char *const no[] = { "false", "0", "no", "off", "f", "n", "" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (n == strlen(yes[i]) && strncasecmp(p, yes[i], n) == 0)
			return 1;
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (n == strlen(no[i]) && strncasecmp(p, no[i], n) == 0)
			return 0;
	return -1;
}

/* Takes model and stream from a parsed form (fields of complete parts only). */
static enum pl_result form_fields(struct pl_ctx *ctx, const struct mp_form *f)
{
	struct pl_request *in = &ctx->in;
	const char *body = in->body.ptr;
	int stream = 0;

	if (f->model.count > 1)
		return deny_body(ctx, PL_R_INVALID_MODEL, "duplicate_field", "model",
				 "The form has more than one 'model' field.");
	if (f->stream.count > 1 || (f->stream.count && f->stream.is_file) ||
	    (f->stream.count && (stream = form_bool(body + f->stream.offset, f->stream.len)) < 0))
		return deny_body(ctx, PL_R_INVALID_FORM, "invalid_type", "stream",
				 "Invalid 'stream' form field: expected one 'true' or 'false'.");
	in->stream = stream;
	in->model_present = f->model.count > 0;
	in->model.ptr = NULL;
	in->model.len = 0;
	if (f->model.count && !f->model.is_file && !memchr(body + f->model.offset, 0, f->model.len)) {
		in->model.ptr = body + f->model.offset;
		in->model.len = f->model.len;
		in->model_off = (int64_t)f->model.offset;
		in->model_raw_len = (int64_t)f->model.len;
	}
	return PL_NEXT;
}

/* Reads a multipart/form-data body (audio transcriptions, image edits): the model is
 * its `model` field. HAProxy may have buffered only a prefix; a field is trusted only
 * from a complete part, and a model not found in the prefix is 413, never a guess. */
static enum pl_result parse_form_body(struct pl_ctx *ctx)
{
	const struct pl_request *in = &ctx->in;
	char b[MP_BOUNDARY_MAX + 1];
	int bl = mp_boundary(in->content_type.ptr, in->content_type.len, b);
	int truncated = body_truncated(in);
	struct mp_form f;

	if (bl < 0)
		return deny_body(ctx, PL_R_INVALID_FORM, "invalid_multipart", NULL,
				 "The multipart/form-data Content-Type needs a valid boundary parameter.");
	if (mp_parse(in->body.ptr ? in->body.ptr : "", in->body.len, b, (size_t)bl, &f) < 0 ||
	    (!truncated && !f.complete))
		return deny_body(ctx, PL_R_INVALID_FORM, "invalid_multipart", NULL,
				 "We could not parse the multipart/form-data body of your request.");
	if (truncated && !f.model.count)
		return deny_too_large(ctx, ", and its 'model' field is not within the part the "
				      "gateway can read: send 'model' before the file, or a smaller file");
	return form_fields(ctx, &f);
}

static enum pl_result check_model_arg(struct pl_ctx *ctx)
{
	const struct pl_request *in = &ctx->in;

	if (!in->model_present)
		return pl_deny(ctx, 400, PL_R_MISSING_MODEL, "invalid_request_error", "missing_model",
			       "model", "You must provide a model parameter: the request body must be "
			       "a JSON object with a string 'model' field.");
	if (!in->model.ptr || in->model.len == 0)
		return pl_deny(ctx, 400, PL_R_INVALID_MODEL, "invalid_request_error", "invalid_type",
			       "model", "Invalid type for 'model': expected a non-empty string.");
	if (in->model.len >= ST_MODEL_MAX)
		return pl_deny(ctx, 400, PL_R_INVALID_MODEL, "invalid_request_error", "invalid_value",
			       "model", "Invalid 'model': longer than %d characters.", ST_MODEL_MAX - 1);
	return PL_NEXT;
}

/* GET /v1/realtime?model=M: HAProxy checked the upgrade headers (rt_ws) and sends the
 * query's model (rt_model, percent-encoded); there is no body. */
static enum pl_result realtime_request(struct pl_ctx *ctx)
{
	struct pl_request *in = &ctx->in;
	int n;

	if (in->rt_ws != 1)
		return pl_deny(ctx, 400, PL_R_INVALID_UPGRADE, "invalid_request_error", "invalid_upgrade",
			       NULL, "The Realtime API is a WebSocket: send GET /v1/realtime?model=MODEL with "
			       "'Upgrade: websocket', 'Connection: Upgrade', a 'Sec-WebSocket-Key' and "
			       "'Sec-WebSocket-Version: 13'.");
	in->model_present = in->rt_model.ptr != NULL;
	in->model.ptr = NULL;
	in->model.len = 0;
	if (in->rt_model.ptr) {
		n = pct_decode(in->rt_model.ptr, in->rt_model.len, ctx->rt_model, sizeof(ctx->rt_model));
		if (n < 0 || memchr(ctx->rt_model, 0, (size_t)n))
			return pl_deny(ctx, 400, PL_R_INVALID_MODEL, "invalid_request_error", "invalid_value",
				       "model", "Invalid 'model' query parameter.");
		in->model.ptr = ctx->rt_model;
		in->model.len = (size_t)n;
	}
	if (!in->model_present)
		return pl_deny(ctx, 400, PL_R_MISSING_MODEL, "invalid_request_error", "missing_model",
			       "model", "You must provide a model parameter: /v1/realtime?model=MODEL.");
	return check_model_arg(ctx);
}

static enum pl_result stage_request(struct pl_ctx *ctx)
{
	const struct pl_request *in = &ctx->in;
	int ml = in->method.ptr ? (int)(in->method.len > 16 ? 16 : in->method.len) : 0;
	int pl = in->path.ptr ? (int)(in->path.len > 128 ? 128 : in->path.len) : 0;
	struct pl_str api_path = in->path;

	if (api_path.ptr && api_path.len > 4 && memcmp(api_path.ptr, "/api/", 5) == 0)
		api_path.ptr += 4, api_path.len -= 4;

	ctx->service = service_of(in);
	if (ctx->service == PL_SVC_NONE && !pl_objects_match(ctx, &api_path))
		return pl_deny(ctx, 404, PL_R_UNKNOWN_URL, "invalid_request_error", "unknown_url", NULL,
			       "Invalid URL (%.*s %.*s)", ml, in->method.ptr ? in->method.ptr : "",
			       pl, in->path.ptr ? in->path.ptr : "");
	if (is_answered_here(ctx->service))
		return PL_NEXT;
	if (ctx->obj_use)
		return pl_objects_check(ctx);
	if (ctx->service == PL_SVC_REALTIME)
		return realtime_request(ctx);
	ctx->in.is_form = mp_is_form(in->content_type.ptr, in->content_type.len);
	if (in->has_body && ctx->in.is_form)
		return parse_form_body(ctx) == PL_DONE ? PL_DONE : check_model_arg(ctx);
	/* HAProxy hands us at most one buffer of body: if the announced size is larger,
	 * the JSON document is cut and its 'model' cannot be trusted. */
	if (body_truncated(in))
		return deny_too_large(ctx, "");
	if (in->has_body && parse_json_body(ctx) == PL_DONE)
		return PL_DONE;
	return check_model_arg(ctx) == PL_DONE ? PL_DONE : pl_objects_check(ctx);
}

static void model_json(struct jbuf *b, const struct st_model *m)
{
	jbuf_puts(b, "{\"id\":");
	jbuf_put_string(b, m->name, strlen(m->name));
	jbuf_printf(b, ",\"object\":\"model\",\"created\":%lld,\"owned_by\":\"jairouter\"}",
		    (long long)m->created);
}

struct list_arg {
	struct jbuf *b;
	const struct state *s;
	const struct pl_ctx *ctx;
};

static void list_one(const struct st_model *m, void *arg)
{
	const struct list_arg *a = arg;
	struct jbuf *b = a->b;

	if (m->status != ST_ACTIVE || !pl_model_visible(a->s, a->ctx, m) ||
	    !pl_rbac_allows_model(a->s, a->ctx, m))
		return;
	if (b->p[b->len - 1] == '}')
		jbuf_put(b, ",", 1);
	model_json(b, m);
}

/* GET /v1/models: every active model the caller may use (pl_model_visible), in
 * OpenAI's list format. */
static enum pl_result list_models(struct pl_ctx *ctx)
{
	struct jbuf b = { NULL, 0, 0 };
	struct list_arg a = { &b, NULL, ctx };

	jbuf_puts(&b, "{\"object\":\"list\",\"data\":[");
	a.s = store_read_begin();
	state_each_model(a.s, list_one, &a);
	store_read_end();
	jbuf_puts(&b, "]}");
	return pl_respond(ctx, 200, b.p, b.len);
}

/* GET /v1/models/{id}: one model object, or 404 as for an unknown model. */
static enum pl_result get_model(struct pl_ctx *ctx)
{
	char id[ST_MODEL_MAX];
	int n = model_id_from_path(&ctx->in.path, id, sizeof(id));
	const struct state *s;
	const struct st_model *m;
	struct jbuf b = { NULL, 0, 0 };

	if (n < 0)
		return pl_deny(ctx, 404, PL_R_UNKNOWN_MODEL, "invalid_request_error", "model_not_found",
			       "model", "The model does not exist or you do not have access to it.");
	s = store_read_begin();
	m = state_resolve_model(s, id, (size_t)n);
	if (m && m->status == ST_ACTIVE && pl_model_visible(s, ctx, m) && pl_rbac_allows_model(s, ctx, m))
		model_json(&b, m);
	store_read_end();
	if (!b.p)
		return pl_deny(ctx, 404, PL_R_UNKNOWN_MODEL, "invalid_request_error", "model_not_found",
			       "model", "The model `%.*s` does not exist or you do not have access to it.",
			       n > MODEL_ECHO_MAX ? MODEL_ECHO_MAX : n, id);
	return pl_respond(ctx, 200, b.p, b.len);
}

/* The upstream name goes into the body in place of the client's model value: the
 * agent says where (its own parse of the body) and with which bytes; HAProxy's Lua
 * filter (haproxy/jairouter.lua) splices them in and fixes Content-Length. Without a
 * body the place is unknown, and the request is refused rather than sent with the
 * wrong model. */
static enum pl_result plan_rewrite(struct pl_ctx *ctx)
{
	struct pl_verdict *out = &ctx->out;
	const struct pl_request *in = &ctx->in;
	size_t used = 0, n = strlen(out->upstream_model);
	char *w = out->model_rewrite;

	if (in->model_off < 0 || in->model_raw_len <= 0) {
		out->backend[0] = out->upstream_model[0] = '\0';
		return pl_deny(ctx, 503, PL_R_INTERNAL, "server_error", "model_rewrite_unavailable",
			       NULL, "The model `%s` must be sent upstream under another name, but "
			       "the gateway did not receive the request body to rewrite it.", out->model);
	}
	out->model_off = in->model_off;
	out->model_len = in->model_raw_len;
	if (in->is_form) {
		memcpy(w, out->upstream_model, n + 1); /* no control characters (SQL check) */
		return PL_NEXT;
	}
	w[used++] = '"';
	if (json_escape(w, sizeof(out->model_rewrite) - 1, &used, out->upstream_model, n) < 0)
		return pl_fail(ctx, PL_R_INTERNAL);
	w[used++] = '"';
	w[used] = '\0';
	return PL_NEXT;
}

/* What the catalogue says about the resolved model, copied out under the lock. */
struct model_view {
	enum st_status status;
	uint32_t services, caps;
};

/* Service type and capabilities: 400 for a request this model cannot serve. */
static enum pl_result check_catalogue(struct pl_ctx *ctx, const struct model_view *v)
{
	const char *svc = pl_service_name(ctx->service);
	int bit = policy_service_bit(svc, strlen(svc));

	if (bit < 0 || !(v->services & (1u << bit))) {
		ctx->out.backend[0] = '\0';
		return pl_deny(ctx, 400, PL_R_MODEL_NOT_SUPPORTED, "invalid_request_error",
			       "model_not_supported", "model", "The model `%s` does not support the "
			       "'%s' service.", ctx->out.model, svc);
	}
	if (ctx->in.stream && !(v->caps & ST_CAP_STREAMING)) {
		ctx->out.backend[0] = '\0';
		return pl_deny(ctx, 400, PL_R_STREAM_NOT_SUPPORTED, "invalid_request_error",
			       "stream_not_supported", "stream", "The model `%s` does not support "
			       "streaming: send the request without \"stream\": true.", ctx->out.model);
	}
	/* No body to rewrite: a stored response's path names no model, and a realtime
	 * session's upstream name is written by the adapter (pipeline/adapter.c). */
	if (ctx->obj_use || ctx->service == PL_SVC_REALTIME)
		ctx->out.upstream_model[0] = '\0';
	return ctx->out.upstream_model[0] ? plan_rewrite(ctx) : PL_NEXT;
}

/* Copies the resolved model (by name or alias) into the verdict. NULL when unknown. */
static const struct st_model *resolve(struct pl_ctx *ctx, struct model_view *v)
{
	const struct pl_request *in = &ctx->in;
	const struct st_model *m = state_resolve_model(store_read_begin(), in->model.ptr, in->model.len);

	if (m) {
		v->status = m->status;
		v->services = m->services;
		v->caps = m->caps;
		snprintf(ctx->out.model, sizeof(ctx->out.model), "%s", m->name);
		snprintf(ctx->out.backend, sizeof(ctx->out.backend), "%s", m->backend);
		if (m->upstream[0] && strcmp(m->upstream, m->name) != 0)
			snprintf(ctx->out.upstream_model, sizeof(ctx->out.upstream_model), "%s", m->upstream);
	}
	store_read_end();
	return m;
}

static enum pl_result stage_authz(struct pl_ctx *ctx)
{
	const struct pl_request *in = &ctx->in;
	int ml = (int)(in->model.len > MODEL_ECHO_MAX ? MODEL_ECHO_MAX : in->model.len);
	struct model_view v;

	if (ctx->service == PL_SVC_MODELS)
		return list_models(ctx);
	if (ctx->service == PL_SVC_MODEL_GET)
		return get_model(ctx);
	if (ctx->obj_op == PL_OBJ_FILE_LIST || ctx->obj_op == PL_OBJ_BATCH_LIST)
		return pl_files_list(ctx);
	if (!resolve(ctx, &v))
		return pl_deny(ctx, 404, PL_R_UNKNOWN_MODEL, "invalid_request_error", "model_not_found",
			       "model", "The model `%.*s` does not exist or you do not have access to it.",
			       ml, in->model.ptr);
	if (v.status != ST_ACTIVE) {
		ctx->out.backend[0] = ctx->out.upstream_model[0] = '\0';
		return pl_deny(ctx, 404, PL_R_MODEL_DISABLED, "invalid_request_error", "model_disabled",
			       "model", "The model `%.*s` is currently disabled.", ml, in->model.ptr);
	}
	return check_catalogue(ctx, &v);
}

/* Nothing in the model's fallback chain can serve (lb/lb.h): 503 with the reason. */
static enum pl_result no_server(struct pl_ctx *ctx, const struct lb_route *r)
{
	static const char *const codes[LB_W__COUNT] = { "upstream_unavailable", "upstream_unavailable",
						       "circuit_open", "upstream_saturated" };
	static const char *const texts[LB_W__COUNT] = {
		"no server is available", "every server is down, draining or in maintenance",
		"every available server is failing (circuit breaker open)",
		"every available server is saturated (it answered 429)" };
	unsigned w = (unsigned)r->why < LB_W__COUNT ? (unsigned)r->why : 0;

	ctx->out.backend[0] = ctx->out.upstream_model[0] = '\0';
	pl_deny(ctx, 503, PL_R_NO_UPSTREAM, "server_error", codes[w], NULL,
		"The model `%s` cannot take requests right now: %s. Please retry later.",
		ctx->out.model, texts[w]);
	ctx->out.retry_after = r->retry_after_s > 0 ? r->retry_after_s : 1;
	return PL_DONE;
}

/* A fallback model serves: the verdict names it (the client learns it from the
 * x-jairouter-model header), with its own upstream name, rewrite plan and provider
 * credential. */
static enum pl_result switch_model(struct pl_ctx *ctx, const struct lb_route *r)
{
	struct model_view v = { ST_ACTIVE, r->services, r->caps };
	struct pl_verdict *out = &ctx->out;
	enum pl_result rc;
	const char *up;

	OPENSSL_cleanse(out->up_value, out->up_len);
	out->up_len = 0;
	out->up_header = 0;
	snprintf(out->model, sizeof(out->model), "%s", r->model);
	snprintf(out->backend, sizeof(out->backend), "%s", r->backend);
	out->upstream_model[0] = out->model_rewrite[0] = '\0';
	/* The body names the model the client asked for: the new model's server must read its
	 * own name there (its upstream name when it has one). */
	up = r->upstream[0] ? r->upstream : r->model;
	if (!str_is(&ctx->in.model, up))
		snprintf(out->upstream_model, sizeof(out->upstream_model), "%s", up);
	if ((rc = check_catalogue(ctx, &v)) != PL_NEXT)
		return rc;
	if (r->kind == LB_ROUTE_FALLBACK)
		snprintf(out->fallback, sizeof(out->fallback), "%s", lb_why_name(r->why));
	/* The new model passes the same checks as the one asked for, roles included. */
	if ((rc = pl_stage_grants(ctx)) != PL_NEXT)
		return rc;
	return pl_stage_rbac_model(ctx);
}

/* A virtual model none of whose members covers the request (lb/lb.h): 400, naming what
 * the request needs. */
static enum pl_result unfit(struct pl_ctx *ctx, const struct lb_route *r)
{
	ctx->out.backend[0] = ctx->out.upstream_model[0] = '\0';
	return pl_deny(ctx, 400, PL_R_MODEL_NOT_SUPPORTED, "invalid_request_error", "model_not_supported",
		       "model", "No model behind `%s` can serve this request (it needs%s%s%s a context of "
		       "%lld tokens).", ctx->out.model, r->need_caps & ST_CAP_TOOLS ? " tools," : "",
		       r->need_caps & ST_CAP_VISION ? " images," : "",
		       r->need_caps & ST_CAP_STREAMING ? " streaming," : "", (long long)r->need_tokens);
}

/* What the router needs of this request (lb/lb.h). */
static void route_request(const struct pl_ctx *ctx, struct lb_request *q)
{
	const char *svc = pl_service_name(ctx->service);

	memset(q, 0, sizeof(*q));
	q->model = ctx->out.model;
	q->backend = ctx->out.backend;
	q->service = (int)ctx->service;
	q->service_bit = policy_service_bit(svc, strlen(svc));
	q->stream = ctx->in.stream;
	q->tenant_id = ctx->tenant_id;
	q->key_id = ctx->key_id;
	q->src_family = ctx->in.src_family;
	q->src = ctx->in.src;
	q->affinity = ctx->in.affinity.ptr;
	q->affinity_len = ctx->in.affinity.len;
	q->body = ctx->in.body.ptr;
	q->body_len = ctx->in.body.len;
	if (ctx->json.max_tokens_type == JSCAN_NUMBER && ctx->json.max_tokens > 0)
		q->max_tokens = ctx->json.max_tokens;
}

/* The server (lb/): the model's own backend, or a fallback model, or 503. Later stages
 * (limits, ...) still run: PL_NEXT with the allow verdict set. A named server's in-flight
 * slot now belongs to the pipeline (ctx->slot_*), which settles it when the decision ends. */
static enum pl_result stage_route(struct pl_ctx *ctx)
{
	struct lb_request q;
	struct lb_route r;

	if (!ctx->out.backend[0])
		return pl_fail(ctx, PL_R_INTERNAL);
	route_request(ctx, &q);
	lb_route(&q, &r);
	if (r.server[0]) {
		snprintf(ctx->slot_backend, sizeof(ctx->slot_backend), "%s",
			 r.kind == LB_ROUTE_PRIMARY ? ctx->out.backend : r.backend);
		snprintf(ctx->slot_server, sizeof(ctx->slot_server), "%s", r.server);
	}
	if (r.kind == LB_ROUTE_NONE)
		return no_server(ctx, &r);
	if (r.kind == LB_ROUTE_UNFIT)
		return unfit(ctx, &r);
	if ((r.kind == LB_ROUTE_FALLBACK || r.kind == LB_ROUTE_VIRTUAL) && switch_model(ctx, &r) != PL_NEXT)
		return PL_DONE; /* refused: the slot goes back when the decision ends */
	snprintf(ctx->out.server, sizeof(ctx->out.server), "%s", r.server);
	ctx->out.allow = 1;
	ctx->out.reason = PL_R_OK;
	return PL_NEXT; /* the limits stage may still refuse (pipeline/limits.c) */
}

const struct pl_stage pl_default_stages[] = {
	{ "identity", stage_identity },
	{ "tenant", stage_tenant },
	{ "client_ip", pl_stage_client_ip },
	{ "request", stage_request },
	{ "access", pl_stage_access },
	{ "rbac_service", pl_stage_rbac_service },
	{ "authz", stage_authz },
	{ "grants", pl_stage_grants },
	{ "rbac_model", pl_stage_rbac_model },
	{ "route", stage_route },
	{ "limits", pl_stage_limits },
	{ "adapter", pl_stage_adapter },
};

const size_t pl_default_nstages = sizeof(pl_default_stages) / sizeof(pl_default_stages[0]);

/* The administration API's caller is known: what it may do is its roles' business
 * (pl_rbac_actions) and the API's, not a model request's. */
static enum pl_result stage_admin_caller(struct pl_ctx *ctx)
{
	ctx->out.allow = 1;
	return PL_DONE;
}

const struct pl_stage pl_admin_stages[] = {
	{ "identity", stage_identity },
	{ "tenant", stage_tenant },
	{ "client_ip", pl_stage_client_ip },
	{ "admin_caller", stage_admin_caller },
};

const size_t pl_admin_nstages = sizeof(pl_admin_stages) / sizeof(pl_admin_stages[0]);
