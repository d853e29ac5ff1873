/* provider: see provider.h. The table and everything that dispatches on a family. */
#include "provider.h"

#include "util/pct.h"
#include "route.h"
#include "xlate_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct provider *const table[XL__COUNT] = {
	[XL_OPENAI] = &prov_openai,       [XL_AZURE] = &prov_azure,   [XL_ANTHROPIC] = &prov_anthropic,
	[XL_GEMINI] = &prov_gemini,       [XL_BEDROCK] = &prov_bedrock, [XL_COHERE] = &prov_cohere,
	[XL_OLLAMA] = &prov_ollama,       [XL_VERTEX_GEMINI] = &prov_vertex_gemini,
	[XL_VERTEX_ANTHROPIC] = &prov_vertex_anthropic, [XL_HUNYUAN] = &prov_hunyuan,
	[XL_DASHSCOPE] = &prov_dashscope, [XL_TGI] = &prov_tgi,
};

const struct provider *prov_get(int family)
{
	return family >= 0 && family < XL__COUNT ? table[family] : NULL;
}

/* ---- requests ------------------------------------------------------------------------ */

/* The entry's default URL with "{region}" replaced. */
static int default_url(const struct provider *p, const struct ad_route *r, char *out, size_t cap)
{
	const char *at = strstr(p->default_url, "{region}");
	int n;

	if (!at)
		n = snprintf(out, cap, "%s", p->default_url);
	else
		n = snprintf(out, cap, "%.*s%s%s", (int)(at - p->default_url), p->default_url,
			     r->region[0] ? r->region : "us-east-1", at + 8);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static int misconfigured(struct up_request *u, struct xl_error *e)
{
	up_free(u);
	xl_fail(e, 500, "server_error", "adapter_misconfigured",
		"The upstream request could not be built (URL or headers too long).");
	return -1;
}

/* The body, the credential and the content headers of a built request. */
static int finish_request(const struct provider *p, json_t *body, const char *secret,
			  const char *token, struct up_request *u)
{
	if (token && up_add_header(u, "Authorization: Bearer %s", token) < 0)
		return -1;
	if (!token && secret && p->auth_header &&
	    up_add_header(u, "%s: %s%s", p->auth_header, p->auth_scheme ? p->auth_scheme : "", secret) < 0)
		return -1;
	u->body = json_dumps(body, JSON_COMPACT);
	u->body_len = u->body ? strlen(u->body) : 0;
	if (!u->body || up_add_header(u, "Content-Type: application/json") < 0)
		return -1;
	return up_add_header(u, "Accept: %s", u->eventstream ? "application/vnd.amazon.eventstream"
					    : u->ndjson     ? "application/x-ndjson"
					    : u->stream     ? "text/event-stream"
							    : "application/json");
}

static int build(const struct ad_route *r, const char *path, const json_t *req, const char *secret,
		 const char *token, time_t now, struct up_request *u, struct xl_error *e)
{
	const struct provider *p = prov_get(r->family);
	char base[RT_URL_MAX], enc[RT_NAME_MAX * 3];
	struct prov_call c = { r, path, req, r->base_url, enc };
	json_t *body;
	int rc;

	memset(u, 0, sizeof(*u));
	u->op = up_op_of(path);
	u->stream = json_is_true(json_object_get(req, "stream"));
	if (!p || !(p->ops & PROV_OP(u->op))) {
		xl_fail(e, 400, "invalid_request_error", "unsupported_by_provider",
			"The model's provider (%s) does not offer %s through the gateway.", r->provider, path);
		return -1;
	}
	if ((!r->base_url[0] && default_url(p, r, base, sizeof(base)) < 0) ||
	    pct_encode(r->model, strlen(r->model), PCT_UNRESERVED, enc, sizeof(enc)) < 0)
		return misconfigured(u, e);
	if (!r->base_url[0])
		c.base = base;
	if (!c.base[0]) {
		up_free(u);
		xl_fail(e, 500, "server_error", "adapter_misconfigured",
			"The model's endpoint has no base URL, and its provider (%s) has no public one.", r->provider);
		return -1;
	}
	if (!(body = p->request(&c, u, e))) {
		up_free(u);
		return -1;
	}
	/* Translated embeddings: OpenAI's base64 form is made here (the SDKs ask for it). */
	u->embed_base64 = u->op == UP_EMBED && !p->openai_compatible &&
			  json_is_string(json_object_get(req, "encoding_format")) &&
			  strcmp(json_string_value(json_object_get(req, "encoding_format")), "base64") == 0;
	u->eventstream = u->stream && p->framing == PROV_EVENTSTREAM;
	u->ndjson = u->stream && p->framing == PROV_NDJSON;
	rc = finish_request(p, body, secret, token, u);
	json_decref(body);
	if (rc < 0)
		return misconfigured(u, e);
	if (p->sign && p->sign(r, secret, now, u, e) < 0) {
		up_free(u);
		return -1;
	}
	return 0;
}

int up_build(const struct ad_route *r, const char *path, const json_t *req, const char *secret,
	     time_t now, struct up_request *u, struct xl_error *e)
{
	return build(r, path, req, secret, NULL, now, u, e);
}

int up_build_token(const struct ad_route *r, const char *path, const json_t *req, const char *token,
		   time_t now, struct up_request *u, struct xl_error *e)
{
	return build(r, path, req, NULL, token, now, u, e);
}

enum oa_grant prov_grant(const struct ad_route *r, const char *secret)
{
	const struct provider *p = prov_get(r->family);

	return p && p->grant && secret ? p->grant(secret) : OA_NONE;
}

/* ---- answers ------------------------------------------------------------------------- */

json_t *prov_response(enum xl_provider p, json_t *resp, const struct prov_answer *a,
		      struct xl_usage *u, struct xl_error *e)
{
	const struct provider *entry = prov_get((int)p);

	if (!entry) {
		xl_fail(e, 502, "server_error", "bad_upstream_response", "The model provider is unknown.");
		return NULL;
	}
	json_t *out = entry->response(resp, a, u, e);

	if (out && a->embed_base64)
		xl_embed_base64(out);
	return out;
}

/* The status a client gets for a provider status, and the OpenAI error type. */
static void map_status(long status, int *out, const char **type, const char **code)
{
	*out = 502;
	*type = "server_error";
	*code = "upstream_error";
	if (status == 400 || status == 404 || status == 413 || status == 422) {
		*out = status == 422 ? 400 : (int)status;
		*type = "invalid_request_error";
	} else if (status == 401) {
		/* The provider refused the gateway's credential: not the client's fault. */
		*code = "upstream_authentication_failed";
	} else if (status == 403) {
		*code = "upstream_permission_denied";
	} else if (status == 429) {
		*out = 429;
		*type = "rate_limit_error";
		*code = "rate_limit_exceeded";
	} else if (status == 529 || status == 503) {
		*out = 503;
		*code = "upstream_overloaded";
	}
}

/* The provider's own message, wherever its error format keeps it. */
static const char *provider_message(const json_t *j)
{
	const json_t *err = json_object_get(j, "error");
	const char *m;

	if (json_is_object(err) && (m = json_string_value(json_object_get(err, "message"))))
		return m; /* OpenAI, Anthropic, Gemini */
	if ((m = json_string_value(json_object_get(j, "message"))))
		return m; /* Bedrock, Cohere */
	if ((m = json_string_value(json_object_get(j, "Message"))))
		return m;
	if (json_is_string(err))
		return json_string_value(err); /* Ollama, TGI */
	return NULL;
}

void xl_upstream_error(enum xl_provider p, long status, const char *body, size_t len,
		       struct xl_error *e)
{
	json_t *j = body ? json_loadb(body, len, 0, NULL) : NULL;
	const char *msg = j ? provider_message(j) : NULL;
	const char *type, *code;
	int st;

	map_status(status, &st, &type, &code);
	xl_fail(e, st, type, code, "The model provider (%s) answered %ld: %.180s", xl_provider_name(p),
		status, msg ? msg : "no error message");
	json_decref(j);
}

/* ---- streams ------------------------------------------------------------------------- */

void xl_stream_init(struct xl_stream *s, enum xl_provider p, const struct xl_meta *m,
		    int include_usage, xl_chunk_fn emit, void *arg)
{
	const struct provider *entry = prov_get((int)p);

	xl_stream_reset(s, m, include_usage, emit, arg);
	s->provider = (int)p;
	s->passthrough = entry && entry->openai_compatible;
}

int xl_stream_sse(struct xl_stream *s, const char *event, const char *data, size_t len)
{
	const struct provider *p = prov_get(s->provider);
	json_t *j;
	int rc;

	if (s->failed)
		return -1;
	if (s->passthrough && len == 6 && memcmp(data, "[DONE]", 6) == 0) {
		xl_stream_end(s);
		return 0;
	}
	if (!(j = xl_event_json(s, data, len)))
		return -1;
	rc = p && p->sse ? p->sse(s, event, j) : -1;
	json_decref(j);
	if (rc < 0)
		s->failed = 1;
	return rc;
}

int xl_stream_event(struct xl_stream *s, const struct prov_event *ev)
{
	const struct provider *p = prov_get(s->provider);
	int rc;

	if (s->failed)
		return -1;
	rc = p && p->event ? p->event(s, ev) : -1;
	if (rc < 0)
		s->failed = 1;
	return rc;
}
