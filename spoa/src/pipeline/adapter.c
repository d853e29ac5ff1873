/*
 * The adapter stage: after route has allowed a request, decides whether it must detour
 * through jairouter-adapter, and if so writes the adapter's route (out.adapter) and
 * sends it to HAProxy's be_adapter backend. docs/adapter.md explains the rules:
 *
 *   - the client speaks Anthropic's API (POST /v1/messages);
 *   - the model's provider does not speak OpenAI's API (anthropic, gemini, bedrock,
 *     cohere's chat and embeddings, ollama whose endpoint says api-version "native") or needs another
 *     URL layout (azure_openai);
 *   - the tenant has masking on (settings.masking; its policy in masking_policy),
 *     for JSON bodies (multipart uploads go direct, unmasked);
 *   - the request is streamed and the model's backend has an endpoint with
 *     meter_streams (usage read from the stream and reported).
 *
 * The route, "k=v&k=v" with percent-encoded values (adapters/src/route.h), carries the
 * provider kind, base URL, upstream and public model names, region, api-version, the
 * metering flag, the tenant and its masking policy. The provider credential travels as
 * for direct requests (the up_* variables). The model-name rewrite of direct requests
 * is not planned for a detour: the adapter writes the upstream name itself.
 *
 * A stream that does not detour has its usage read by HAProxy (jairouter.cfg sends it
 * through fe_jairouter_rewrite, whose Lua filter reads the final usage chunk): when the
 * client did not ask for it with stream_options.include_usage, the plan asks for it
 * (one splice in the body) and the filter removes that chunk from the answer.
 */
#include "pipeline/pipeline.h"

#include "state/endpoints.h"
#include "state/state.h"
#include "util/pct.h"

#include <stdio.h>
#include <string.h>

#define ADAPTER_BACKEND "be_adapter"

/* Provider kinds whose API is not OpenAI's (or whose URLs differ). Cohere's rerank and
 * embed endpoints are the ones /v1/rerank clients already speak: only its chat is
 * translated. */
static int needs_translation(const char *kind, enum pl_service svc)
{
	static const char *const kinds[] = { "anthropic", "gemini", "bedrock", "azure_openai",
					     "vertex_gemini", "vertex_anthropic" };

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kind, kinds[i]) == 0)
			return 1;
	return strcmp(kind, "cohere") == 0 && (svc == PL_SVC_CHAT || svc == PL_SVC_EMBEDDINGS);
}

/* Kinds that speak OpenAI's API and also a native one (api-version "native"). */
static int has_native_api(const char *kind)
{
	return strcmp(kind, "ollama") == 0 || strcmp(kind, "hunyuan") == 0 || strcmp(kind, "dashscope") == 0;
}

/* Kinds with a public default base URL (the adapter knows it). An OpenAI-compatible
 * model is normally served by its HAProxy backend: its endpoint must be configured. */
static int has_default_url(const char *kind)
{
	return strcmp(kind, "anthropic") == 0 || strcmp(kind, "gemini") == 0 ||
	       strcmp(kind, "bedrock") == 0 || strcmp(kind, "cohere") == 0;
}

struct writer {
	char *buf;
	size_t cap, len;
	int bad;
};

/* Appends "&key=value" (percent-encoded value); skipped when value is empty. */
static void field(struct writer *w, const char *key, const char *value)
{
	size_t kl = strlen(key);
	int n;

	if (!value || !value[0] || w->bad)
		return;
	if (w->len + kl + 3 > w->cap) {
		w->bad = 1;
		return;
	}
	if (w->len)
		w->buf[w->len++] = '&';
	memcpy(w->buf + w->len, key, kl);
	w->len += kl;
	w->buf[w->len++] = '=';
	n = pct_encode(value, strlen(value), PCT_UNRESERVED, w->buf + w->len, w->cap - w->len);
	if (n < 0) {
		w->bad = 1;
		return;
	}
	w->len += (size_t)n;
}

/* What the stage reads from the store, copied out under the lock. */
struct view {
	char provider[ST_PROVIDER_MAX];
	char upstream[ST_MODEL_MAX];
	int has_endpoint;
	struct st_endpoint ep;
	int masking;
	char mask[EP_MASK_MAX];
};

static int read_view(const struct pl_ctx *ctx, const char *backend, struct view *v)
{
	const struct state *s = store_read_begin();
	const struct st_model *m = state_find_model(s, ctx->out.model, strlen(ctx->out.model));
	const struct st_endpoint *e = adapter_find_endpoint(state_adapter(s), backend);
	const struct st_masking *mk = adapter_find_masking(state_adapter(s), ctx->tenant_id);

	memset(v, 0, sizeof(*v));
	if (m) {
		snprintf(v->provider, sizeof(v->provider), "%s", m->provider);
		snprintf(v->upstream, sizeof(v->upstream), "%s", m->upstream[0] ? m->upstream : m->name);
	}
	if (e) {
		v->has_endpoint = 1;
		v->ep = *e;
	}
	if (mk) {
		v->masking = 1;
		snprintf(v->mask, sizeof(v->mask), "%s", mk->policy[0] ? mk->policy : "{}");
	}
	store_read_end();
	return m ? 0 : -1;
}

static int is_messages_path(const struct pl_str *path)
{
	static const char p1[] = "/v1/messages", p2[] = "/api/v1/messages";

	return path->ptr && ((path->len == sizeof(p1) - 1 && memcmp(path->ptr, p1, path->len) == 0) ||
			     (path->len == sizeof(p2) - 1 && memcmp(path->ptr, p2, path->len) == 0));
}

/* A Responses API request to a translating provider is answered by the adapter from
 * chat and never stored (docs/api.md): there is nothing to retrieve or delete. */
static enum pl_result not_stored(struct pl_ctx *ctx)
{
	ctx->out.allow = 0;
	if (ctx->obj_op)
		return pl_deny(ctx, 400, PL_R_MODEL_NOT_SUPPORTED, "invalid_request_error", "model_not_supported",
			       NULL, "Files and batches are served by OpenAI-compatible backends only; the "
			       "model `%s` is not one.", ctx->out.model);
	return pl_deny(ctx, 404, PL_R_UNKNOWN_OBJECT, "invalid_request_error", "not_found", NULL,
		       "No response found: responses of the model `%s` are not stored.", ctx->out.model);
}

/* The usage plan of a direct stream (out->meter). A body with several stream_options
 * members gets none: which one the server reads is its parser's choice, so such a stream
 * is billed at the estimate. The splice replaces a stream_options that does not ask for
 * usage (its other members go: include_usage is the one OpenAI's servers document with
 * it). */
static void plan_meter(struct pl_ctx *ctx)
{
	const struct jscan_top *j = &ctx->json;
	struct pl_verdict *out = &ctx->out;
	int64_t rewrite = out->model_rewrite[0] ? (int64_t)strlen(out->model_rewrite) - out->model_len : 0;

	out->meter = PL_METER_NONE;
	if (!ctx->in.stream || ctx->in.is_form || j->root != JSCAN_OBJECT ||
	    (ctx->service != PL_SVC_CHAT && ctx->service != PL_SVC_COMPLETIONS) ||
	    j->stream_options_count > 1)
		return;
	out->body_delta = rewrite;
	if (j->include_usage) {
		out->meter = PL_METER_KEEP;
		return;
	}
	out->meter = PL_METER_STRIP;
	if (j->stream_options_count == 0) {
		out->meter_off = (int64_t)j->root_close_offset;
		out->meter_len = 0;
		out->body_delta += (int64_t)sizeof(PL_METER_INSERT) - 1;
	} else {
		out->meter_off = (int64_t)j->stream_options_offset;
		out->meter_len = (int64_t)j->stream_options_raw_len;
		out->body_delta += (int64_t)sizeof(PL_METER_REPLACE) - 1 - out->meter_len;
	}
}

enum pl_result pl_stage_adapter(struct pl_ctx *ctx)
{
	struct pl_verdict *out = &ctx->out;
	char backend[ST_NAME_MAX];
	struct view v;
	struct writer w = { out->adapter, sizeof(out->adapter), 0, 0 };
	int messages, translate, meter;

	if (!out->allow)
		return PL_NEXT;
	snprintf(backend, sizeof(backend), "%s", out->backend);
	if (read_view(ctx, backend, &v) < 0)
		return PL_NEXT; /* the model went away meanwhile: route decided already */
	messages = is_messages_path(&ctx->in.path);
	/* Ollama's native API (/api/chat), Hunyuan's (Tencent Cloud's signed API) and
	 * DashScope's when their endpoint says api-version "native". */
	translate = needs_translation(v.provider, ctx->service) ||
		    (has_native_api(v.provider) && v.has_endpoint && strcmp(v.ep.api_version, "native") == 0);
	if (ctx->obj_use && translate)
		return not_stored(ctx);
	if (ctx->obj_use)
		return PL_NEXT; /* a stored response is read or deleted as it is */
	/* A streamed Responses API request detours whenever it can: the adapter reads the
	 * response's id (recorded for its owner) and usage from the stream. */
	meter = ctx->in.stream && v.has_endpoint && (v.ep.meter || ctx->obj_create) &&
		(ctx->service == PL_SVC_CHAT || ctx->service == PL_SVC_COMPLETIONS);
	if (!messages && !translate && !v.masking && !meter) {
		/* An endpoint row with meter_streams off: its streams are billed at the
		 * estimate (no usage requested, no detour). */
		if (!v.has_endpoint || v.ep.meter)
			plan_meter(ctx);
		return PL_NEXT;
	}
	if (ctx->in.is_form) {
		/* Multipart uploads (transcriptions, image edits) are not JSON: the adapter
		 * neither masks nor translates them. */
		if (!translate)
			return PL_NEXT;
		out->allow = 0;
		return pl_deny(ctx, 400, PL_R_MODEL_NOT_SUPPORTED, "invalid_request_error",
			       "unsupported_by_provider", "model", "The model `%s` (provider %s) does "
			       "not take multipart uploads through the gateway.", out->model, v.provider);
	}
	if (!v.has_endpoint && !has_default_url(v.provider)) {
		/* out->backend stays: the pipeline gives the chosen server back (lb/lb.h). */
		out->allow = 0;
		return pl_deny(ctx, 503, PL_R_INTERNAL, "server_error", "adapter_endpoint_missing", NULL,
			       "The model `%s` needs the gateway's adapter (%s), but its backend has no "
			       "endpoint configured (jairouter.set_endpoint).", out->model,
			       messages ? "Anthropic-style request" : translate ? "provider API"
			       : "data masking");
	}
	field(&w, "p", v.provider);
	field(&w, "u", v.has_endpoint ? v.ep.base_url : "");
	field(&w, "m", v.upstream);
	field(&w, "pm", out->model);
	field(&w, "r", v.has_endpoint ? v.ep.region : "");
	field(&w, "av", v.has_endpoint ? v.ep.api_version : "");
	field(&w, "mt", meter ? "1" : "");
	field(&w, "t", out->tenant);
	field(&w, "be", backend);
	field(&w, "mask", v.masking ? v.mask : "");
	if (w.bad) {
		out->adapter[0] = '\0';
		return pl_fail(ctx, PL_R_INTERNAL);
	}
	/* The server the route stage chose in the model's backend will not see this
	 * request: the adapter is its upstream now; the pipeline gives its slot back. */
	out->server[0] = '\0';
	/* The adapter renames the model itself: no body rewrite on the way there. */
	out->upstream_model[0] = '\0';
	out->model_rewrite[0] = '\0';
	snprintf(out->backend, sizeof(out->backend), "%s", ADAPTER_BACKEND);
	return PL_NEXT;
}
