/* upstream: see upstream.h. */
#include "upstream.h"

#include "sigv4.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AZURE_API_VERSION "2024-10-21"
#define ANTHROPIC_VERSION "2023-06-01"

enum up_op up_op_of(const char *path)
{
	if (strcmp(path, "/v1/chat/completions") == 0 || strcmp(path, "/v1/messages") == 0)
		return UP_CHAT;
	if (strcmp(path, "/v1/embeddings") == 0)
		return UP_EMBED;
	return UP_OTHER;
}

static int add_header(struct up_request *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int add_header(struct up_request *u, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	if (u->nheaders >= UP_HEADERS_MAX)
		return -1;
	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	u->headers[u->nheaders++] = s;
	return 0;
}

void up_free(struct up_request *u)
{
	for (size_t i = 0; i < u->nheaders; i++) {
		/* Headers may hold the credential. */
		explicit_bzero(u->headers[i], strlen(u->headers[i]));
		free(u->headers[i]);
	}
	u->nheaders = 0;
	free(u->body);
	u->body = NULL;
}

static const char *base_or(const struct ad_route *r, const char *dflt)
{
	return r->base_url[0] ? r->base_url : dflt;
}

/* The base URL without a trailing '/'. */
static int url_join(char *out, size_t cap, const char *base, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int url_join(char *out, size_t cap, const char *base, const char *fmt, ...)
{
	size_t bl = strlen(base);
	va_list ap;
	int n;

	while (bl && base[bl - 1] == '/')
		bl--;
	if (bl >= cap)
		return -1;
	memcpy(out, base, bl);
	va_start(ap, fmt);
	n = vsnprintf(out + bl, cap - bl, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= cap - bl ? -1 : 0;
}

/* Splits "scheme://host[:port]/path" into the Host header value and the path. */
static int split_url(const char *url, char *host, size_t hcap, const char **path)
{
	const char *p = strstr(url, "://"), *slash;
	size_t n;

	if (!p)
		return -1;
	p += 3;
	slash = strchr(p, '/');
	n = slash ? (size_t)(slash - p) : strlen(p);
	if (n == 0 || n >= hcap)
		return -1;
	memcpy(host, p, n);
	host[n] = '\0';
	*path = slash ? slash : "/";
	return 0;
}

static int sign_bedrock(const struct ad_route *r, const char *secret, time_t now,
			struct up_request *u, struct xl_error *e)
{
	char ak[128], sk[128], host[256], date[17], auth[SIGV4_AUTH_MAX], path[UP_URL_MAX];
	const char *c1, *c2, *token = NULL, *p;
	struct sigv4_header hs[3];
	struct sigv4_request sr;
	size_t nh = 0;

	if (!secret || !(c1 = strchr(secret, ':')) || (size_t)(c1 - secret) >= sizeof(ak)) {
		xl_fail(e, 503, "server_error", "upstream_credential_unavailable",
			"The Bedrock credential must be 'ACCESS_KEY_ID:SECRET_ACCESS_KEY'.");
		return -1;
	}
	memcpy(ak, secret, (size_t)(c1 - secret));
	ak[c1 - secret] = '\0';
	c2 = strchr(c1 + 1, ':');
	if ((size_t)((c2 ? c2 : c1 + 1 + strlen(c1 + 1)) - (c1 + 1)) >= sizeof(sk)) {
		xl_fail(e, 503, "server_error", "upstream_credential_unavailable",
			"The Bedrock credential is too long.");
		return -1;
	}
	snprintf(sk, sizeof(sk), "%.*s", (int)((c2 ? c2 : c1 + 1 + strlen(c1 + 1)) - (c1 + 1)), c1 + 1);
	if (c2)
		token = c2 + 1;
	if (split_url(u->url, host, sizeof(host), &p) < 0) {
		xl_fail(e, 500, "server_error", "adapter_misconfigured", "The Bedrock URL is invalid.");
		return -1;
	}
	snprintf(path, sizeof(path), "%s", p);
	sigv4_amz_date(now, date);
	hs[nh++] = (struct sigv4_header){ "host", host };
	hs[nh++] = (struct sigv4_header){ "x-amz-date", date };
	if (token)
		hs[nh++] = (struct sigv4_header){ "x-amz-security-token", token };
	memset(&sr, 0, sizeof(sr));
	sr.method = "POST";
	sr.path = path;
	sr.query = "";
	sr.headers = hs;
	sr.nheaders = nh;
	sr.body = u->body;
	sr.body_len = u->body_len;
	sr.region = r->region[0] ? r->region : "us-east-1";
	sr.service = "bedrock";
	sr.access_key = ak;
	sr.secret_key = sk;
	sr.amz_date = date;
	if (sigv4_sign(&sr, auth, sizeof(auth)) < 0) {
		explicit_bzero(sk, sizeof(sk));
		xl_fail(e, 500, "server_error", "signing_failed", "The Bedrock request could not be signed.");
		return -1;
	}
	explicit_bzero(sk, sizeof(sk));
	if (add_header(u, "Authorization: %s", auth) < 0 || add_header(u, "X-Amz-Date: %s", date) < 0 ||
	    (token && add_header(u, "X-Amz-Security-Token: %s", token) < 0))
		return -1;
	return 0;
}

int up_build(const struct ad_route *r, const char *path, const json_t *req, const char *secret,
	     time_t now, struct up_request *u, struct xl_error *e)
{
	json_t *body = NULL;
	char enc[512];
	int rc = 0;

	memset(u, 0, sizeof(*u));
	u->op = up_op_of(path);
	u->stream = json_is_true(json_object_get(req, "stream"));
	switch ((enum xl_provider)r->family) {
	case XL_OPENAI:
	case XL_AZURE:
		body = xl_openai_request(req, r->model, r->meter, &u->added_usage, e);
		if (!body)
			return -1;
		if (r->family == XL_AZURE) {
			const char *sub = strncmp(path, "/v1/", 4) == 0 ? path + 4 : path;
			if (route_encode(r->model, strlen(r->model), enc, sizeof(enc)) < 0 ||
			    url_join(u->url, sizeof(u->url), base_or(r, ""), "/openai/deployments/%s/%s?api-version=%s",
				     enc, sub, r->api_version[0] ? r->api_version : AZURE_API_VERSION) < 0)
				rc = -1;
			if (secret && add_header(u, "api-key: %s", secret) < 0)
				rc = -1;
		} else {
			const char *sub = strncmp(path, "/v1/", 4) == 0 ? path + 3 : path;
			if (url_join(u->url, sizeof(u->url), base_or(r, "https://api.openai.com/v1"), "%s", sub) < 0)
				rc = -1;
			if (secret && add_header(u, "Authorization: Bearer %s", secret) < 0)
				rc = -1;
		}
		break;
	case XL_ANTHROPIC:
		if (u->op != UP_CHAT)
			goto unsupported;
		if (!(body = xl_anthropic_request(req, r->model, e)))
			return -1;
		if (url_join(u->url, sizeof(u->url), base_or(r, "https://api.anthropic.com"), "/v1/messages") < 0 ||
		    add_header(u, "anthropic-version: %s", ANTHROPIC_VERSION) < 0 ||
		    (secret && add_header(u, "x-api-key: %s", secret) < 0))
			rc = -1;
		break;
	case XL_GEMINI:
		if (route_encode(r->model, strlen(r->model), enc, sizeof(enc)) < 0)
			rc = -1;
		if (u->op == UP_CHAT) {
			if (!(body = xl_gemini_request(req, e)))
				return -1;
			if (url_join(u->url, sizeof(u->url), base_or(r, "https://generativelanguage.googleapis.com"),
				     "/v1beta/models/%s:%s", enc,
				     u->stream ? "streamGenerateContent?alt=sse" : "generateContent") < 0)
				rc = -1;
		} else if (u->op == UP_EMBED) {
			u->stream = 0;
			if (!(body = xl_gemini_embed_request(req, r->model, &u->embed_batch, e)))
				return -1;
			if (url_join(u->url, sizeof(u->url), base_or(r, "https://generativelanguage.googleapis.com"),
				     "/v1beta/models/%s:%s", enc,
				     u->embed_batch ? "batchEmbedContents" : "embedContent") < 0)
				rc = -1;
		} else {
			goto unsupported;
		}
		if (secret && add_header(u, "x-goog-api-key: %s", secret) < 0)
			rc = -1;
		break;
	case XL_BEDROCK: {
		char dflt[128];
		if (u->op != UP_CHAT)
			goto unsupported;
		if (!(body = xl_bedrock_request(req, e)))
			return -1;
		snprintf(dflt, sizeof(dflt), "https://bedrock-runtime.%s.amazonaws.com",
			 r->region[0] ? r->region : "us-east-1");
		u->eventstream = u->stream;
		if (route_encode(r->model, strlen(r->model), enc, sizeof(enc)) < 0 ||
		    url_join(u->url, sizeof(u->url), base_or(r, dflt), "/model/%s/%s", enc,
			     u->stream ? "converse-stream" : "converse") < 0)
			rc = -1;
		break;
	}
	case XL_OLLAMA: {
		const char *base = base_or(r, "http://127.0.0.1:11434");
		if (u->op == UP_CHAT) {
			if (!(body = xl_ollama_request(req, r->model, e)))
				return -1;
			u->ndjson = u->stream;
			if (url_join(u->url, sizeof(u->url), base, "/api/chat") < 0)
				rc = -1;
		} else if (u->op == UP_EMBED) {
			u->stream = 0;
			if (!(body = xl_ollama_embed_request(req, r->model, e)))
				return -1;
			if (url_join(u->url, sizeof(u->url), base, "/api/embed") < 0)
				rc = -1;
		} else {
			goto unsupported;
		}
		if (secret && add_header(u, "Authorization: Bearer %s", secret) < 0)
			rc = -1;
		break;
	}
	case XL_COHERE:
		if (u->op != UP_CHAT)
			goto unsupported;
		if (!(body = xl_cohere_request(req, r->model, e)))
			return -1;
		if (url_join(u->url, sizeof(u->url), base_or(r, "https://api.cohere.com"), "/v2/chat") < 0 ||
		    (secret && add_header(u, "Authorization: Bearer %s", secret) < 0))
			rc = -1;
		break;
	default:
		goto unsupported;
	}
	if (rc == 0) {
		u->body = json_dumps(body, JSON_COMPACT);
		u->body_len = u->body ? strlen(u->body) : 0;
		if (!u->body || add_header(u, "Content-Type: application/json") < 0 ||
		    add_header(u, "Accept: %s", u->eventstream ? "application/vnd.amazon.eventstream"
						: u->ndjson ? "application/x-ndjson"
						: u->stream ? "text/event-stream" : "application/json") < 0)
			rc = -1;
	}
	if (rc == 0 && r->family == XL_BEDROCK && sign_bedrock(r, secret, now, u, e) < 0) {
		json_decref(body);
		up_free(u);
		return -1;
	}
	json_decref(body);
	if (rc < 0) {
		up_free(u);
		xl_fail(e, 500, "server_error", "adapter_misconfigured",
			"The upstream request could not be built (URL or headers too long).");
		return -1;
	}
	return 0;
unsupported:
	xl_fail(e, 400, "invalid_request_error", "unsupported_by_provider",
		"The model's provider (%s) does not offer %s through the gateway.", r->provider, path);
	return -1;
}
