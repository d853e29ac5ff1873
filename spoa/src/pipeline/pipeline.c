#include "pipeline/pipeline.h"

#include "lb/lb.h"
#include "spop/spop.h"
#include "trace/trace.h"
#include "util/json.h"
#include "util/xalloc.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_NAME "jairouter-request"

static const char *const reason_names[PL_R__COUNT] = {
	[PL_R_OK] = "ok",
	[PL_R_MISSING_CREDENTIALS] = "missing_credentials",
	[PL_R_AMBIGUOUS_CREDENTIALS] = "ambiguous_credentials",
	[PL_R_INVALID_KEY] = "invalid_key",
	[PL_R_REVOKED_KEY] = "revoked_key",
	[PL_R_EXPIRED_KEY] = "expired_key",
	[PL_R_DISABLED_KEY] = "disabled_key",
	[PL_R_TENANT_DISABLED] = "tenant_disabled",
	[PL_R_UNKNOWN_URL] = "unknown_url",
	[PL_R_UNKNOWN_OBJECT] = "unknown_object",
	[PL_R_INVALID_UPGRADE] = "invalid_upgrade",
	[PL_R_REALTIME_UNSUPPORTED] = "realtime_unsupported",
	[PL_R_BODY_TOO_LARGE] = "body_too_large",
	[PL_R_INVALID_JSON] = "invalid_json",
	[PL_R_MISSING_MODEL] = "missing_model",
	[PL_R_INVALID_MODEL] = "invalid_model",
	[PL_R_UNKNOWN_MODEL] = "unknown_model",
	[PL_R_MODEL_DISABLED] = "model_disabled",
	[PL_R_NOT_READY] = "not_ready",
	[PL_R_DATABASE_UNAVAILABLE] = "database_unavailable",
	[PL_R_BAD_MESSAGE] = "bad_message",
	[PL_R_INTERNAL] = "internal_error",
	[PL_R_DEADLINE] = "deadline",
	[PL_R_IP_NOT_ALLOWED] = "ip_not_allowed",
	[PL_R_SERVICE_NOT_ALLOWED] = "service_not_allowed",
	[PL_R_MODEL_NOT_GRANTED] = "model_not_granted",
	[PL_R_MODEL_NOT_ALLOWED] = "model_not_allowed",
	[PL_R_CREDENTIAL_UNAVAILABLE] = "credential_unavailable",
	[PL_R_MODEL_NOT_SUPPORTED] = "model_not_supported",
	[PL_R_STREAM_NOT_SUPPORTED] = "stream_not_supported",
	[PL_R_INVALID_FORM] = "invalid_form",
	[PL_R_INVALID_TOKEN] = "invalid_token",
	[PL_R_TOKEN_EXPIRED] = "token_expired",
	[PL_R_TOKEN_REVOKED] = "token_revoked",
	[PL_R_PERMISSION_DENIED] = "permission_denied",
	[PL_R_TOO_MANY_FAILURES] = "too_many_failures",
	[PL_R_NO_UPSTREAM] = "no_upstream",
	[PL_R_RATE_LIMITED] = "rate_limited",
	[PL_R_QUOTA_EXCEEDED] = "quota_exceeded",
};

const char *pl_reason_name(enum pl_reason r)
{
	return (unsigned)r < PL_R__COUNT ? reason_names[r] : "unknown";
}

const char *pl_service_name(enum pl_service s)
{
	/* The catalogue's service type names (sql/003_catalogue.sql, state/policy.c). */
	static const char *const names[PL_SVC__COUNT] = {
		"none", "chat", "completions", "embeddings", "models", "model", "rerank",
		"audio_speech", "audio_transcriptions", "images_generations", "images_edits",
		"moderations", "realtime",
	};

	return (unsigned)s < PL_SVC__COUNT ? names[s] : "unknown";
}

void pl_ctx_init(struct pl_ctx *ctx, const struct pl_policy *policy)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->policy = *policy;
	ctx->in.body_len = ctx->in.body_size = ctx->in.cred_count = ctx->in.rt_ws = -1;
	ctx->in.model_off = ctx->in.model_raw_len = -1;
	ctx->out.rl[0].limit = ctx->out.rl[1].limit = -1;
}

void pl_ctx_clear(struct pl_ctx *ctx)
{
	OPENSSL_cleanse(ctx->out.up_value, ctx->out.up_len); /* only what was written */
	ctx->out.up_len = 0;
	free(ctx->out.body);
	ctx->out.body = NULL;
	free(ctx->payload);
	ctx->payload = NULL;
	ctx->payload_len = 0;
}

/* ---- decoding ---------------------------------------------------------------------- */

static void arg_str(struct pl_str *dst, const struct spop_data *d)
{
	if (d->type == SPOP_DATA_STRING || d->type == SPOP_DATA_BINARY) {
		dst->ptr = (const char *)d->u.str.ptr;
		dst->len = d->u.str.len;
	}
}

/* Integers arrive as INT64 from HAProxy, but any integer type is accepted. */
static int64_t arg_int(const struct spop_data *d, int64_t dflt)
{
	switch (d->type) {
	case SPOP_DATA_INT32: return d->u.i32;
	case SPOP_DATA_UINT32: return d->u.u32;
	case SPOP_DATA_INT64: return d->u.i64;
	case SPOP_DATA_UINT64: return d->u.u64 > INT64_MAX ? INT64_MAX : (int64_t)d->u.u64;
	case SPOP_DATA_BOOL: return d->u.boolean;
	default: return dflt;
	}
}

static void arg_src(struct pl_request *in, const struct spop_data *d)
{
	if (d->type == SPOP_DATA_IPV4) {
		in->src_family = 4;
		memcpy(in->src, d->u.ipv4, 4);
	} else if (d->type == SPOP_DATA_IPV6) {
		in->src_family = 6;
		memcpy(in->src, d->u.ipv6, 16);
	}
}

static void arg_model(struct pl_request *in, const struct spop_data *d)
{
	in->model_present = d->type != SPOP_DATA_NULL;
	if (d->type == SPOP_DATA_STRING)
		arg_str(&in->model, d);
}

static void arg_body(struct pl_request *in, const struct spop_data *d)
{
	if (d->type == SPOP_DATA_STRING || d->type == SPOP_DATA_BINARY) {
		in->has_body = 1;
		arg_str(&in->body, d);
	}
}

struct arg_field {
	const char *name;
	size_t offset; /* of the struct pl_str in pl_request */
};

#define S(f) { #f, offsetof(struct pl_request, f) }
static const struct arg_field str_args[] = {
	S(method), S(path), S(authorization), S(api_key), S(content_type), S(request_id),
	S(affinity), S(user), S(trace), S(rt_model), S(query),
};
#undef S

static void decode_arg(struct pl_request *in, const struct spop_kv *kv)
{
	for (size_t i = 0; i < sizeof(str_args) / sizeof(str_args[0]); i++)
		if (spop_name_eq(kv->name, kv->name_len, str_args[i].name)) {
			arg_str((struct pl_str *)((char *)in + str_args[i].offset), &kv->value);
			return;
		}
	if (spop_name_eq(kv->name, kv->name_len, "model"))
		arg_model(in, &kv->value);
	else if (spop_name_eq(kv->name, kv->name_len, "body"))
		arg_body(in, &kv->value);
	else if (spop_name_eq(kv->name, kv->name_len, "stream"))
		in->stream = arg_int(&kv->value, 0) != 0;
	else if (spop_name_eq(kv->name, kv->name_len, "body_len"))
		in->body_len = arg_int(&kv->value, -1);
	else if (spop_name_eq(kv->name, kv->name_len, "body_size"))
		in->body_size = arg_int(&kv->value, -1);
	else if (spop_name_eq(kv->name, kv->name_len, "rt_ws"))
		in->rt_ws = arg_int(&kv->value, -1);
	else if (spop_name_eq(kv->name, kv->name_len, "cred_count"))
		in->cred_count = arg_int(&kv->value, -1);
	else if (spop_name_eq(kv->name, kv->name_len, "src"))
		arg_src(in, &kv->value);
	/* Unknown arguments are ignored: a newer haproxy config may send more. */
}

static int decode_args(struct pl_request *in, struct spop_msg *m)
{
	struct spop_kv kv;
	int rc;

	while ((rc = spop_kv_next(&m->args, &kv)) > 0)
		decode_arg(in, &kv);
	return rc;
}

enum pl_decode_result pl_request_decode(struct pl_ctx *ctx, const uint8_t *payload, size_t len)
{
	struct spop_reader r;
	struct spop_msg m;
	int rc, found = 0;

	ctx->payload = xmalloc(len ? len : 1);
	memcpy(ctx->payload, payload, len);
	ctx->payload_len = len;
	spop_reader_init(&r, ctx->payload, len);
	while ((rc = spop_msg_next(&r, &m)) > 0) {
		if (found || !spop_name_eq(m.name, m.name_len, MSG_NAME))
			continue;
		found = 1;
		if (decode_args(&ctx->in, &m) < 0)
			return PL_DECODE_MALFORMED;
	}
	if (rc < 0)
		return PL_DECODE_MALFORMED;
	return found ? PL_DECODE_OK : PL_DECODE_NO_MESSAGE;
}

/* ---- running ----------------------------------------------------------------------- */

/* The one place the router's in-flight slot is given back: the request holds it only
 * when the final verdict sends it to that server (not refused by a later stage or the
 * deadline, not detoured through the adapter). Runs once per decision, from finish(). */
static void settle_slot(struct pl_ctx *ctx)
{
	const struct pl_verdict *v = &ctx->out;

	if (!ctx->slot_server[0])
		return;
	if (!v->allow || strcmp(v->server, ctx->slot_server) != 0 ||
	    strcmp(v->backend, ctx->slot_backend) != 0)
		lb_release(ctx->slot_backend, ctx->slot_server);
	ctx->slot_server[0] = ctx->slot_backend[0] = '\0';
}

static void finish(struct pl_ctx *ctx)
{
	settle_slot(ctx);
	ctx->finished = 1;
	ctx->done(ctx, ctx->arg);
}

/* Runs stages from ctx->next until one is final or pending. */
static int run_stages(struct pl_ctx *ctx)
{
	while (ctx->next < ctx->nstages) {
		enum pl_result r = ctx->stages[ctx->next++].run(ctx);
		if (ctx->traced && ctx->next <= PL_TRACE_STAGES)
			ctx->stage_end_ns[ctx->next - 1] = trace_now_ns();
		if (r == PL_PENDING) {
			ctx->pending = 1;
			return 0;
		}
		if (r == PL_DONE)
			break;
	}
	if (ctx->next >= ctx->nstages && !ctx->out.allow && ctx->out.status == 0)
		pl_fail(ctx, PL_R_INTERNAL); /* no stage gave a verdict: a bug, never an allow */
	finish(ctx);
	ctx->release(ctx, ctx->arg);
	return 1;
}

int pl_start(struct pl_ctx *ctx, const struct pl_stage *stages, size_t nstages, pl_done_fn done,
	     pl_release_fn release, void *arg)
{
	ctx->stages = stages;
	ctx->nstages = nstages;
	/* Sampled: the context's flags (its last hex digit) are odd. */
	ctx->traced = trace_enabled() && ctx->in.trace.len == 55 &&
		      ctx->in.trace.ptr[54] && strchr("13579bdf", ctx->in.trace.ptr[54]) != NULL;
	if (ctx->traced)
		ctx->trace_start_ns = trace_now_ns();
	ctx->next = 0;
	ctx->done = done;
	ctx->release = release;
	ctx->arg = arg;
	return run_stages(ctx);
}

void pl_resume(struct pl_ctx *ctx, enum pl_result r)
{
	ctx->pending = 0;
	if (ctx->abandoned) {
		ctx->release(ctx, ctx->arg);
		return;
	}
	if (r == PL_DONE)
		ctx->next = ctx->nstages;
	run_stages(ctx);
}

void pl_abandon(struct pl_ctx *ctx)
{
	if (ctx->finished || !ctx->pending)
		return;
	ctx->abandoned = 1;
	pl_fail(ctx, PL_R_DEADLINE);
	finish(ctx);
}

/* ---- verdicts ------------------------------------------------------------------------ */

enum pl_result pl_deny(struct pl_ctx *ctx, int status, enum pl_reason reason, const char *type,
		       const char *code, const char *param, const char *fmt, ...)
{
	struct pl_verdict *v = &ctx->out;
	va_list ap;

	v->allow = 0;
	v->status = status;
	v->reason = reason;
	v->err_type = type;
	v->err_code = code;
	v->err_param = param;
	va_start(ap, fmt);
	vsnprintf(v->message, sizeof(v->message), fmt, ap);
	va_end(ap);
	return PL_DONE;
}

enum pl_result pl_respond(struct pl_ctx *ctx, int status, char *body, size_t len)
{
	struct pl_verdict *v = &ctx->out;

	free(v->body);
	v->allow = 0;
	v->respond = 1;
	v->status = status;
	v->reason = PL_R_OK;
	v->body = body;
	v->body_len = len;
	return PL_DONE;
}

enum pl_result pl_fail(struct pl_ctx *ctx, enum pl_reason reason)
{
	struct pl_verdict *v = &ctx->out;

	if (ctx->policy.on_error_allow && v->backend[0]) {
		/* Fail open only to a route already resolved: never to an unchosen backend. */
		v->allow = 1;
		v->reason = reason;
		return PL_DONE;
	}
	pl_deny(ctx, 503, reason, "server_error", "gateway_error", NULL,
		"The gateway could not complete its policy decision (%s). Please retry.",
		pl_reason_name(reason));
	v->retry_after = 1;
	return PL_DONE;
}

static int put_lit(char *buf, size_t cap, size_t *used, const char *s)
{
	size_t n = strlen(s);

	if (*used + n + 1 > cap)
		return -1;
	memcpy(buf + *used, s, n + 1);
	*used += n;
	return 0;
}

static int put_json_str_or_null(char *buf, size_t cap, size_t *used, const char *s)
{
	if (!s)
		return put_lit(buf, cap, used, "null");
	if (put_lit(buf, cap, used, "\"") < 0 || json_escape(buf, cap, used, s, strlen(s)) < 0)
		return -1;
	return put_lit(buf, cap, used, "\"");
}

int pl_error_json(const struct pl_verdict *v, char *buf, size_t cap)
{
	size_t used = 0;

	if (put_lit(buf, cap, &used, "{\"error\":{\"message\":") < 0 ||
	    put_json_str_or_null(buf, cap, &used, v->message) < 0 ||
	    put_lit(buf, cap, &used, ",\"type\":") < 0 ||
	    put_json_str_or_null(buf, cap, &used, v->err_type ? v->err_type : "server_error") < 0 ||
	    put_lit(buf, cap, &used, ",\"param\":") < 0 ||
	    put_json_str_or_null(buf, cap, &used, v->err_param) < 0 ||
	    put_lit(buf, cap, &used, ",\"code\":") < 0 ||
	    put_json_str_or_null(buf, cap, &used, v->err_code) < 0 || put_lit(buf, cap, &used, "}}") < 0)
		return -1;
	return (int)used;
}

static void set_str_var(struct spop_writer *w, const char *name, const char *value)
{
	struct spop_data d = spop_cstr(value);

	spop_action_set_var(w, SPOP_SCOPE_TXN, name, &d);
}

static void set_int_var(struct spop_writer *w, const char *name, int64_t value)
{
	struct spop_data d = spop_int64(value);

	spop_action_set_var(w, SPOP_SCOPE_TXN, name, &d);
}

/* The provider credential, in the variable of its header (spoe.conf registers them). */
static void set_upstream_var(struct spop_writer *w, const struct pl_verdict *v)
{
	static const char *const names[] = { NULL, "up_authorization", "up_x_api_key", "up_api_key" };
	struct spop_data d;

	if (v->up_header <= 0 || v->up_header >= (int)(sizeof(names) / sizeof(names[0])) || !v->up_len)
		return;
	d = spop_str(v->up_value, v->up_len);
	spop_action_set_var(w, SPOP_SCOPE_TXN, names[v->up_header], &d);
}

/* The upstream model name and where HAProxy's Lua filter puts it (haproxy/jairouter.lua). */
static void set_rewrite_vars(struct spop_writer *w, const struct pl_verdict *v)
{
	if (!v->upstream_model[0])
		return;
	set_str_var(w, "upstream_model", v->upstream_model);
	set_int_var(w, "model_off", v->model_off);
	set_int_var(w, "model_len", v->model_len);
	set_str_var(w, "model_rewrite", v->model_rewrite);
}

/* How HAProxy reads a direct stream's usage (haproxy/jairouter.lua, "usage"). */
static void set_meter_vars(struct spop_writer *w, const struct pl_verdict *v)
{
	if (v->meter == PL_METER_NONE)
		return;
	set_str_var(w, "meter", v->meter == PL_METER_STRIP ? "strip" : "keep");
	if (v->meter == PL_METER_STRIP) {
		set_int_var(w, "meter_off", v->meter_off);
		set_int_var(w, "meter_len", v->meter_len);
	}
	set_int_var(w, "body_delta", v->body_delta);
}

/* "6m0s", "1.5s", "20ms": the duration format of OpenAI's x-ratelimit-reset-* headers. */
static void fmt_reset(char *buf, size_t cap, int64_t ms)
{
	if (ms < 1000)
		snprintf(buf, cap, "%lldms", (long long)(ms < 0 ? 0 : ms));
	else if (ms < 60000)
		snprintf(buf, cap, "%lld.%03llds", (long long)(ms / 1000), (long long)(ms % 1000));
	else if (ms < 3600000)
		snprintf(buf, cap, "%lldm%llds", (long long)(ms / 60000), (long long)(ms % 60000 / 1000));
	else
		snprintf(buf, cap, "%lldh%lldm%llds", (long long)(ms / 3600000),
			 (long long)(ms % 3600000 / 60000), (long long)(ms % 60000 / 1000));
}

/* The rate-limit header values (haproxy.cfg sets x-ratelimit-* from them). */
static void set_ratelimit_vars(struct spop_writer *w, const struct pl_verdict *v)
{
	static const char *const names[2][3] = { { "rl_lim_req", "rl_rem_req", "rl_reset_req" },
						 { "rl_lim_tok", "rl_rem_tok", "rl_reset_tok" } };
	char reset[32];

	for (int i = 0; i < 2; i++) {
		if (v->rl[i].limit <= 0)
			continue;
		set_int_var(w, names[i][0], v->rl[i].limit);
		set_int_var(w, names[i][1], v->rl[i].remaining);
		fmt_reset(reset, sizeof(reset), v->rl[i].reset_ms);
		set_str_var(w, names[i][2], reset);
	}
}

static int encode(const struct pl_verdict *v, uint64_t sid, uint64_t fid, uint8_t *buf, size_t cap,
		  uint32_t max_frame, int with_body)
{
	struct spop_writer w;
	char body[PL_ERROR_MAX];

	spop_writer_init(&w, buf, cap);
	spop_frame_begin(&w, SPOP_FRAME_ACK, SPOP_FLAG_FIN, sid, fid);
	set_str_var(&w, "verdict", v->allow ? "allow" : v->respond ? "respond" : "deny");
	if (v->respond) {
		struct spop_data d = spop_str(v->body, v->body_len);
		set_int_var(&w, "status", v->status);
		spop_action_set_var(&w, SPOP_SCOPE_TXN, "body", &d);
		if (v->tenant[0])
			set_str_var(&w, "tenant", v->tenant);
		if (v->key_prefix[0])
			set_str_var(&w, "key_prefix", v->key_prefix);
	} else if (v->allow) {
		set_str_var(&w, "backend", v->backend);
		if (v->model[0])
			set_str_var(&w, "model", v->model);
		if (v->tenant[0])
			set_str_var(&w, "tenant", v->tenant);
		if (v->key_prefix[0])
			set_str_var(&w, "key_prefix", v->key_prefix);
		set_rewrite_vars(&w, v);
		set_meter_vars(&w, v);
		set_upstream_var(&w, v);
		if (v->adapter[0])
			set_str_var(&w, "adapter", v->adapter);
		if (v->server[0])
			set_str_var(&w, "server", v->server);
		if (v->fallback[0])
			set_str_var(&w, "fallback", v->fallback);
		set_ratelimit_vars(&w, v);
	} else {
		set_ratelimit_vars(&w, v);
		set_int_var(&w, "status", v->status);
		/* For the end-of-request report: refusals per tenant and model (metrics). */
		if (v->tenant[0])
			set_str_var(&w, "tenant", v->tenant);
		if (v->tenant[0] && v->model[0])
			set_str_var(&w, "model", v->model);
		if (v->retry_after > 0)
			set_int_var(&w, "retry_after", v->retry_after);
		/* For the access log: the refusal's error code and key (report line ec=,
		 * key=); left out with the body when the frame is too small for them. */
		if (with_body && v->err_code)
			set_str_var(&w, "code", v->err_code);
		if (with_body && v->key_prefix[0])
			set_str_var(&w, "key_prefix", v->key_prefix);
		if (with_body && pl_error_json(v, body, sizeof(body)) > 0)
			set_str_var(&w, "error", body);
	}
	return spop_frame_end(&w, max_frame);
}

size_t pl_ack_size_hint(const struct pl_verdict *v)
{
	return 2048 + (v->respond ? v->body_len : 0) + v->up_len + strlen(v->adapter);
}

int pl_ack_encode(const struct pl_verdict *v, uint64_t sid, uint64_t fid, uint8_t *buf, size_t cap,
		  uint32_t max_frame)
{
	int n = encode(v, sid, fid, buf, cap, max_frame, 1);

	if (n < 0 && v->respond) {
		struct pl_verdict big = *v;
		big.respond = 0;
		big.status = 500;
		big.reason = PL_R_INTERNAL;
		big.err_type = "server_error";
		big.err_code = "response_too_large";
		big.err_param = NULL;
		snprintf(big.message, sizeof(big.message), "The answer (%zu bytes) does not fit the "
			 "SPOE frame (%u bytes): raise max-frame-size in spoe.conf.", v->body_len, max_frame);
		return pl_ack_encode(&big, sid, fid, buf, cap, max_frame);
	}
	/* A tiny negotiated frame size (HAProxy allows 256) cannot carry the error body:
	 * the verdict and status still go out and HAProxy answers with an empty body. */
	return n > 0 ? n : encode(v, sid, fid, buf, cap, max_frame, 0);
}
