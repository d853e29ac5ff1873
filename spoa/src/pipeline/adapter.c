/*
 * The adapter stage: after route has allowed a request, decides whether it must detour
 * through jairouter-adapter, and if so writes the adapter's route (out.adapter) and
 * sends it to HAProxy's be_adapter backend. docs/adapter.md explains the rules:
 *
 *   - the client speaks Anthropic's API (POST /v1/messages);
 *   - the model's provider does not speak OpenAI's API (anthropic, gemini, bedrock,
 *     cohere's chat and embeddings, ollama, hunyuan, dashscope and huggingface (TGI) whose
 *     endpoint says api-version "native") or needs another
 *     URL layout (azure_openai);
 *   - the tenant has masking on (settings.masking; its policy in masking_policy),
 *     for JSON bodies (multipart uploads go direct, unmasked);
 *   - the request is streamed and the model's backend has an endpoint with
 *     meter_streams (usage read from the stream and reported);
 *   - the tenant caches the model's answers (sql/018_cache.sql, docs/cache.md): a JSON
 *     chat, completions or embeddings request, when the adapter can reach the model
 *     (an endpoint row or a provider default URL; otherwise it goes direct, uncached).
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
#define REALTIME_BACKEND "be_adapter_rt" /* the adapter's WebSocket listener */

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

/* Kinds that speak OpenAI's API and also a native one, chosen by the endpoint's
 * api-version "native" (Hugging Face TGI also "native-<chat template>"). */
static int native_api(const char *kind, const char *api_version)
{
	if (strcmp(kind, "huggingface") == 0)
		return strcmp(api_version, "native") == 0 || strncmp(api_version, "native-", 7) == 0;
	return (strcmp(kind, "ollama") == 0 || strcmp(kind, "hunyuan") == 0 || strcmp(kind, "dashscope") == 0) &&
	       strcmp(api_version, "native") == 0;
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
	int cache;
	struct st_cache cp;
	int64_t model_id;
};

static int read_view(const struct pl_ctx *ctx, const char *backend, struct view *v)
{
	const struct state *s = store_read_begin();
	const struct st_model *m = state_find_model(s, ctx->out.model, strlen(ctx->out.model));
	const struct st_endpoint *e = adapter_find_endpoint(state_adapter(s), backend);
	const struct st_masking *mk = adapter_find_masking(state_adapter(s), ctx->tenant_id);
	const struct st_cache *cp = m ? adapter_find_cache(state_adapter(s), ctx->tenant_id, m->id) : NULL;

	memset(v, 0, sizeof(*v));
	if (m) {
		v->model_id = m->id;
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
	if (cp) {
		v->cache = 1;
		v->cp = *cp;
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

/* Whether this request's answer may come from (and go into) the response cache: the
 * tenant caches the model, the request is JSON to chat, completions or embeddings, and
 * the adapter can reach the model. The request's own wishes (no-store) are the
 * adapter's to read. */
static int plan_cache(const struct pl_ctx *ctx, const struct view *v)
{
	return v->cache && !ctx->in.is_form && !ctx->obj_use && !ctx->obj_create &&
	       (ctx->service == PL_SVC_CHAT || ctx->service == PL_SVC_COMPLETIONS ||
		ctx->service == PL_SVC_EMBEDDINGS) &&
	       (v->has_endpoint || has_default_url(v->provider));
}

/* The route's cache fields: time to live, largest entry, and the scope that goes into
 * every key: the tenant's and the model's ids ("t<tenant>.m<model>"), or only the
 * model's when its cache is shared ("s.m<model>"). Ids, not names: a tenant or model
 * deleted and created again under the same name never meets the old one's entries. */
static void cache_fields(struct writer *w, const struct st_cache *c, int64_t tenant_id, int64_t model_id)
{
	char ttl[24], max[24], scope[48];

	snprintf(ttl, sizeof(ttl), "%lld", (long long)c->ttl_s);
	snprintf(max, sizeof(max), "%lld", (long long)c->max_entry_bytes);
	if (c->shared)
		snprintf(scope, sizeof(scope), "s.m%lld", (long long)model_id);
	else
		snprintf(scope, sizeof(scope), "t%lld.m%lld", (long long)tenant_id, (long long)model_id);
	field(w, "c", ttl);
	field(w, "cmax", max);
	field(w, "cs", scope);
}

/* A realtime session always detours: only the adapter reads the WebSocket frames and
 * their usage. It relays to OpenAI-compatible servers only (their `/realtime` under the
 * endpoint's base URL), and masking cannot apply to a session's frames. */
static enum pl_result realtime_route(struct pl_ctx *ctx, const char *backend, const struct view *v)
{
	struct pl_verdict *out = &ctx->out;
	struct writer w = { out->adapter, sizeof(out->adapter), 0, 0 };

	out->allow = 0;
	if (needs_translation(v->provider, ctx->service) ||
	    (v->has_endpoint && native_api(v->provider, v->ep.api_version)))
		return pl_deny(ctx, 400, PL_R_REALTIME_UNSUPPORTED, "invalid_request_error",
			       "unsupported_by_provider", "model", "The model `%s` (provider %s) does not "
			       "serve the Realtime API through the gateway: only OpenAI-compatible servers "
			       "do.", out->model, v->provider);
	if (!v->has_endpoint)
		return pl_deny(ctx, 503, PL_R_REALTIME_UNSUPPORTED, "server_error", "adapter_endpoint_missing",
			       NULL, "The model `%s` needs the gateway's adapter (realtime session), but its "
			       "backend has no endpoint configured (jairouter.set_endpoint).", out->model);
	if (v->masking)
		return pl_deny(ctx, 403, PL_R_REALTIME_UNSUPPORTED, "permission_error",
			       "realtime_masking_unsupported", NULL, "The tenant '%s' masks its data, which "
			       "realtime sessions cannot do: they are refused.", out->tenant);
	field(&w, "p", v->provider);
	field(&w, "u", v->ep.base_url);
	field(&w, "m", v->upstream);
	field(&w, "pm", out->model);
	field(&w, "t", out->tenant);
	field(&w, "be", backend);
	if (w.bad) {
		out->adapter[0] = '\0';
		return pl_fail(ctx, PL_R_INTERNAL);
	}
	out->allow = 1;
	out->server[0] = '\0';
	out->upstream_model[0] = '\0';
	out->model_rewrite[0] = '\0';
	snprintf(out->backend, sizeof(out->backend), "%s", REALTIME_BACKEND);
	return PL_NEXT;
}

enum pl_result pl_stage_adapter(struct pl_ctx *ctx)
{
	struct pl_verdict *out = &ctx->out;
	char backend[ST_NAME_MAX];
	struct view v;
	struct writer w = { out->adapter, sizeof(out->adapter), 0, 0 };
	int messages, translate, meter, cache;

	if (!out->allow)
		return PL_NEXT;
	snprintf(backend, sizeof(backend), "%s", out->backend);
	if (read_view(ctx, backend, &v) < 0)
		return PL_NEXT; /* the model went away meanwhile: route decided already */
	if (ctx->service == PL_SVC_REALTIME)
		return realtime_route(ctx, backend, &v);
	messages = is_messages_path(&ctx->in.path);
	/* Ollama's native API (/api/chat), Hunyuan's (Tencent Cloud's signed API),
	 * DashScope's and TGI's (/generate) when their endpoint says api-version "native". */
	translate = needs_translation(v.provider, ctx->service) ||
		    (v.has_endpoint && native_api(v.provider, v.ep.api_version));
	if (ctx->obj_use && translate)
		return not_stored(ctx);
	if (ctx->obj_use)
		return PL_NEXT; /* a stored response is read or deleted as it is */
	/* A streamed Responses API request detours whenever it can: the adapter reads the
	 * response's id (recorded for its owner) and usage from the stream. */
	meter = ctx->in.stream && v.has_endpoint && (v.ep.meter || ctx->obj_create) &&
		(ctx->service == PL_SVC_CHAT || ctx->service == PL_SVC_COMPLETIONS);
	cache = plan_cache(ctx, &v);
	if (!messages && !translate && !v.masking && !meter && !cache) {
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
	if (cache)
		cache_fields(&w, &v.cp, ctx->tenant_id, v.model_id);
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
