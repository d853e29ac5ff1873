/*
 * xlate_bedrock: OpenAI chat <-> Amazon Bedrock Converse / ConverseStream, and OpenAI
 * embeddings <-> InvokeModel (Amazon Titan text embeddings, Cohere Embed on Bedrock).
 *
 * ConverseStream answers in the binary event-stream framing (eventstream.h); each
 * message's :event-type names the event and its payload is that event's JSON:
 * messageStart, contentBlockStart (toolUse), contentBlockDelta (text or toolUse.input
 * pieces), contentBlockStop, messageStop (stopReason), metadata (usage). Exceptions
 * arrive as :message-type "exception" with :exception-type and {"message"}.
 */
#include "provider.h"
#include "route.h"
#include "sigv4.h"
#include "xlate_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *text_block(const json_t *text)
{
	return json_pack("{s:O}", "text", text);
}

/* Bedrock takes images as bytes with a format name: data URLs only. */
static json_t *image_block(const char *url, struct xl_error *e)
{
	char mime[64];
	const char *b64, *fmt;

	if (!url || xl_data_url(url, mime, sizeof(mime), &b64) < 0 || strncmp(mime, "image/", 6) != 0) {
		xl_fail(e, 400, "invalid_request_error", "unsupported_content",
			"This model takes images as base64 data URLs only.");
		return NULL;
	}
	fmt = mime + 6;
	if (strcmp(fmt, "jpg") == 0)
		fmt = "jpeg";
	return json_pack("{s:{s:s,s:{s:s}}}", "image", "format", fmt, "source", "bytes", b64);
}

static const struct xl_blocks blocks = { "content", text_block, image_block };

static int on_tool_call(void *arg, const json_t *call, const json_t *fn, json_t *args,
			struct xl_error *e)
{
	(void)e;
	xl_push_grouped(((struct xl_turns *)arg)->msgs, "assistant", "content",
			json_pack("{s:{s:O,s:O,s:o}}", "toolUse", "toolUseId", json_object_get(call, "id"),
				  "name", json_object_get(fn, "name"), "input", args));
	return 0;
}

static int on_tool_result(void *arg, const json_t *msg, const char *text, struct xl_error *e)
{
	(void)e;
	xl_push_grouped(((struct xl_turns *)arg)->msgs, "user", "content",
			json_pack("{s:{s:O,s:[{s:s}]}}", "toolResult", "toolUseId",
				  json_object_get(msg, "tool_call_id"), "content", "text", text));
	return 0;
}

static const struct xl_walk walk = { xl_turns_system, xl_turns_user, xl_turns_assistant, on_tool_call,
				     on_tool_result };

/* tools -> Converse toolSpecs. */
static json_t *tool_specs(const json_t *tools)
{
	json_t *specs = json_array();
	const json_t *t;
	size_t i;

	json_array_foreach(tools, i, t) {
		const json_t *fn = json_object_get(t, "function"), *schema = json_object_get(fn, "parameters");
		json_t *spec = json_pack("{s:O}", "name", json_object_get(fn, "name"));
		xl_copy(spec, "description", fn, "description");
		json_object_set_new(spec, "inputSchema",
				    json_pack("{s:o}", "json", schema ? json_incref((json_t *)schema)
								 : json_pack("{s:s}", "type", "object")));
		json_array_append_new(specs, json_pack("{s:o}", "toolSpec", spec));
	}
	return specs;
}

/* toolConfig from tools and tool_choice; NULL for "none" (Bedrock has no such choice:
 * the tools are then not sent at all). */
static json_t *tool_config(const json_t *req)
{
	const json_t *choice = json_object_get(req, "tool_choice");
	const char *cs = json_string_value(choice);
	json_t *cfg, *tc = NULL;

	if (cs && strcmp(cs, "none") == 0)
		return NULL;
	if (cs && strcmp(cs, "required") == 0)
		tc = json_pack("{s:{}}", "any");
	else if (cs && strcmp(cs, "auto") == 0)
		tc = json_pack("{s:{}}", "auto");
	else if (json_is_object(choice))
		tc = json_pack("{s:{s:O}}", "tool", "name", json_object_get(json_object_get(choice, "function"), "name"));
	cfg = json_pack("{s:o}", "tools", tool_specs(json_object_get(req, "tools")));
	if (tc)
		json_object_set_new(cfg, "toolChoice", tc);
	return cfg;
}

/* inferenceConfig: maxTokens, temperature, topP, stopSequences (NULL when empty). */
static json_t *inference_config(const json_t *req)
{
	json_t *inf = json_object(), *v;
	json_int_t max = xl_max_tokens(req);

	if (max > 0)
		json_object_set_new(inf, "maxTokens", json_integer(max));
	xl_copy(inf, "temperature", req, "temperature");
	xl_copy(inf, "topP", req, "top_p");
	if ((v = xl_stop_array(req)))
		json_object_set_new(inf, "stopSequences", v);
	if (json_object_size(inf))
		return inf;
	json_decref(inf);
	return NULL;
}

json_t *xl_bedrock_request(const json_t *req, struct xl_error *e)
{
	const json_t *messages = json_object_get(req, "messages");
	struct xl_turns c = { json_array(), json_array(), &blocks, "assistant", messages };
	json_t *out, *v;

	if (xl_walk_messages(messages, &walk, &c, e) < 0) {
		json_decref(c.msgs);
		json_decref(c.sys);
		return NULL;
	}
	out = json_pack("{s:o}", "messages", c.msgs);
	if (json_array_size(c.sys))
		json_object_set(out, "system", c.sys);
	json_decref(c.sys);
	if ((v = inference_config(req)))
		json_object_set_new(out, "inferenceConfig", v);
	if (json_array_size(json_object_get(req, "tools")) && (v = tool_config(req)))
		json_object_set_new(out, "toolConfig", v);
	return out;
}

static const char *finish_of(const char *r)
{
	if (!r || strcmp(r, "end_turn") == 0 || strcmp(r, "stop_sequence") == 0)
		return "stop";
	if (strcmp(r, "max_tokens") == 0)
		return "length";
	if (strcmp(r, "tool_use") == 0)
		return "tool_calls";
	if (strcmp(r, "guardrail_intervened") == 0 || strcmp(r, "content_filtered") == 0)
		return "content_filter";
	return "stop";
}

static void read_usage(const json_t *usage, struct xl_usage *u)
{
	if (!json_is_object(usage))
		return;
	u->prompt = json_integer_value(json_object_get(usage, "inputTokens"));
	u->completion = json_integer_value(json_object_get(usage, "outputTokens"));
	u->have = 1;
}

json_t *xl_bedrock_response(const json_t *resp, const struct xl_meta *m, struct xl_usage *u,
			    struct xl_error *e)
{
	const json_t *content = json_object_get(json_object_get(json_object_get(resp, "output"), "message"), "content"), *b;
	json_t *calls, *msg;
	char *text = NULL;
	size_t i, tl = 0;

	if (!json_is_array(content)) {
		xl_fail(e, 502, "server_error", "bad_upstream_response", "The model provider's answer has no output message.");
		return NULL;
	}
	calls = json_array();
	json_array_foreach(content, i, b) {
		const char *t = json_string_value(json_object_get(b, "text"));
		const json_t *tu = json_object_get(b, "toolUse");
		if (t)
			xl_append_text(&text, &tl, t);
		else if (json_is_object(tu))
			xl_append_call(calls, json_object_get(tu, "toolUseId"), json_object_get(tu, "name"),
				       json_object_get(tu, "input"));
	}
	msg = xl_assistant_message(text, calls);
	free(text);
	read_usage(json_object_get(resp, "usage"), u);
	return json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:s}],s:o}", "id", m->id, "object",
			 "chat.completion", "created", (json_int_t)m->created, "model", m->model,
			 "choices", "index", 0, "message", msg, "finish_reason",
			 finish_of(json_string_value(json_object_get(resp, "stopReason"))), "usage",
			 xl_usage_json(u));
}

/* ---- streams: one handler per event type ---------------------------------------------- */

static void on_block_start(struct xl_stream *s, const json_t *j, json_int_t index)
{
	const json_t *tu = json_object_get(json_object_get(j, "start"), "toolUse");

	if (json_is_object(tu) && index >= 0 && index < XL_BLOCKS_MAX) {
		s->tool_of_block[index] = (int16_t)s->ntools++;
		xl_emit_tool(s, s->tool_of_block[index], json_string_value(json_object_get(tu, "toolUseId")),
			     json_string_value(json_object_get(tu, "name")), "");
	}
}

static void on_block_delta(struct xl_stream *s, const json_t *j, json_int_t index)
{
	const json_t *d = json_object_get(j, "delta");
	const char *t = json_string_value(json_object_get(d, "text"));
	const char *in = json_string_value(json_object_get(json_object_get(d, "toolUse"), "input"));

	if (t)
		xl_emit_text(s, t, strlen(t));
	else if (in && *in && index >= 0 && index < XL_BLOCKS_MAX && s->tool_of_block[index] >= 0)
		xl_emit_tool(s, s->tool_of_block[index], NULL, NULL, in);
}

static void on_event(struct xl_stream *s, const char *etype, const json_t *j)
{
	json_int_t index = json_integer_value(json_object_get(j, "contentBlockIndex"));

	if (strcmp(etype, "messageStart") == 0)
		xl_stream_start(s);
	else if (strcmp(etype, "contentBlockStart") == 0)
		on_block_start(s, j, index);
	else if (strcmp(etype, "contentBlockDelta") == 0)
		on_block_delta(s, j, index);
	else if (strcmp(etype, "messageStop") == 0)
		snprintf(s->finish, sizeof(s->finish), "%s", finish_of(json_string_value(json_object_get(j, "stopReason"))));
	else if (strcmp(etype, "metadata") == 0)
		read_usage(json_object_get(j, "usage"), &s->usage);
}

/* An exception message: throttling stays a rate limit. */
static int on_exception(struct xl_stream *s, const char *mtype, const char *xtype, const json_t *j)
{
	int throttled = xtype && strstr(xtype, "hrottling");

	xl_fail(&s->err, throttled ? 429 : 502, throttled ? "rate_limit_error" : "server_error",
		throttled ? "rate_limit_exceeded" : "upstream_error",
		"The model provider (bedrock) failed during the stream: %s: %.160s", xtype && *xtype ? xtype : mtype,
		json_string_value(json_object_get(j, "message")) ?: "no message");
	s->failed = 1;
	return -1;
}

int xl_stream_bedrock(struct xl_stream *s, const char *mtype, const char *etype,
		      const char *xtype, const char *payload, size_t len)
{
	json_t *j;
	int rc;

	if (s->failed)
		return -1;
	if (strcmp(mtype, "event") != 0) {
		j = json_loadb(payload, len, 0, NULL);
		rc = on_exception(s, mtype, xtype, j);
		json_decref(j);
		return rc;
	}
	if (!(j = xl_event_json(s, payload, len)))
		return -1;
	on_event(s, etype, j);
	json_decref(j);
	return 0;
}

/* ---- the entry ----------------------------------------------------------------------- */

static json_t *bedrock_build(const struct prov_call *c, struct up_request *u, struct xl_error *e)
{
	json_t *body;

	if (u->op == UP_EMBED) {
		u->stream = 0;
		if ((body = xl_bedrock_embed_request(c->req, c->route->model, e)) &&
		    up_url(u, c->base, "/model/%s/invoke", c->model_enc) < 0)
			return xl_url_failed(body, e);
		return body;
	}
	if ((body = xl_bedrock_request(c->req, e)) &&
	    up_url(u, c->base, "/model/%s/%s", c->model_enc, u->stream ? "converse-stream" : "converse") < 0)
		return xl_url_failed(body, e);
	return body;
}

/* ---- embeddings: InvokeModel --------------------------------------------------------- */

#define BEDROCK_COHERE_EMBED_MAX 96

json_t *xl_bedrock_embed_request(const json_t *req, const char *model, struct xl_error *e)
{
	int cohere = strncmp(model, "cohere.", 7) == 0 || strstr(model, ".cohere.") != NULL;
	json_t *texts = xl_embed_texts(req, cohere ? BEDROCK_COHERE_EMBED_MAX : 1, e), *out;

	if (!texts) {
		if (!cohere && e->status == 400)
			xl_fail(e, 400, "invalid_request_error", "invalid_value",
				"Amazon Titan embeds one text per request: 'input' must be a string.");
		return NULL;
	}
	if (cohere)
		return json_pack("{s:o,s:s}", "texts", texts, "input_type", "search_document");
	out = json_pack("{s:O}", "inputText", json_array_get(texts, 0));
	json_decref(texts);
	xl_copy(out, "dimensions", req, "dimensions");
	return out;
}

json_t *xl_bedrock_embed_response(const json_t *resp, const char *model, struct xl_usage *u,
				  struct xl_error *e)
{
	const json_t *titan = json_object_get(resp, "embedding"), *count = json_object_get(resp, "inputTextTokenCount");
	const json_t *emb = json_object_get(resp, "embeddings");

	u->prompt = json_integer_value(count);
	u->completion = 0;
	u->have = json_is_integer(count);
	if (titan)
		return xl_embed_list(json_pack("[O]", titan), model, u->prompt, e);
	/* Cohere on Bedrock: [[...]], or {"float": [[...]]} when embedding types were asked. */
	return xl_embed_list(json_incref(json_is_object(emb) ? json_object_get(emb, "float") : (json_t *)emb), model,
			     u->prompt, e);
}

struct bedrock_cred {
	char ak[128], sk[128];
	const char *token; /* the session token or NULL */
};

/* "ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]" -> k. */
static int split_secret(const char *secret, struct bedrock_cred *k, struct xl_error *e)
{
	const char *c1 = secret ? strchr(secret, ':') : NULL, *c2, *end;

	if (!c1 || (size_t)(c1 - secret) >= sizeof(k->ak)) {
		xl_fail(e, 503, "server_error", "upstream_credential_unavailable",
			"The Bedrock credential must be 'ACCESS_KEY_ID:SECRET_ACCESS_KEY'.");
		return -1;
	}
	c2 = strchr(c1 + 1, ':');
	end = c2 ? c2 : c1 + 1 + strlen(c1 + 1);
	if ((size_t)(end - (c1 + 1)) >= sizeof(k->sk)) {
		xl_fail(e, 503, "server_error", "upstream_credential_unavailable",
			"The Bedrock credential is too long.");
		return -1;
	}
	snprintf(k->ak, sizeof(k->ak), "%.*s", (int)(c1 - secret), secret);
	snprintf(k->sk, sizeof(k->sk), "%.*s", (int)(end - (c1 + 1)), c1 + 1);
	k->token = c2 ? c2 + 1 : NULL;
	return 0;
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

/* The Authorization value for u (SigV4, service "bedrock"). libcurl 7.88's
 * CURLOPT_AWS_SIGV4 is not used: it signs the path as sent, where AWS wants every
 * service but S3 to sign it encoded once more (model ids hold ':'). */
static int bedrock_auth(const struct ad_route *r, const struct up_request *u,
			const struct bedrock_cred *k, const char *host, const char *path,
			const char *date, char auth[SIGV4_AUTH_MAX])
{
	struct sigv4_header hs[3] = { { "host", host }, { "x-amz-date", date },
				      { "x-amz-security-token", k->token } };
	struct sigv4_request sr = { 0 };

	sr.method = "POST";
	sr.path = path;
	sr.query = "";
	sr.headers = hs;
	sr.nheaders = k->token ? 3 : 2;
	sr.body = u->body;
	sr.body_len = u->body_len;
	sr.region = r->region[0] ? r->region : "us-east-1";
	sr.service = "bedrock";
	sr.access_key = k->ak;
	sr.secret_key = k->sk;
	sr.amz_date = date;
	return sigv4_sign(&sr, auth, SIGV4_AUTH_MAX);
}

static int bedrock_sign(const struct ad_route *r, const char *secret, time_t now,
			struct up_request *u, struct xl_error *e)
{
	char host[256], date[17], auth[SIGV4_AUTH_MAX];
	struct bedrock_cred k;
	const char *path;
	int rc;

	if (split_secret(secret, &k, e) < 0)
		return -1;
	if (split_url(u->url, host, sizeof(host), &path) < 0) {
		explicit_bzero(k.sk, sizeof(k.sk));
		xl_fail(e, 500, "server_error", "adapter_misconfigured", "The Bedrock URL is invalid.");
		return -1;
	}
	sigv4_amz_date(now, date);
	rc = bedrock_auth(r, u, &k, host, path, date, auth);
	explicit_bzero(k.sk, sizeof(k.sk));
	if (rc < 0) {
		xl_fail(e, 500, "server_error", "signing_failed", "The Bedrock request could not be signed.");
		return -1;
	}
	if (up_add_header(u, "Authorization: %s", auth) < 0 || up_add_header(u, "X-Amz-Date: %s", date) < 0 ||
	    (k.token && up_add_header(u, "X-Amz-Security-Token: %s", k.token) < 0)) {
		xl_url_failed(NULL, e);
		return -1;
	}
	return 0;
}

static json_t *bedrock_answer(json_t *resp, const struct prov_answer *a, struct xl_usage *u,
			      struct xl_error *e)
{
	if (a->op == UP_EMBED)
		return xl_bedrock_embed_response(resp, a->meta->model, u, e);
	return xl_bedrock_response(resp, a->meta, u, e);
}

static int bedrock_event(struct xl_stream *s, const struct prov_event *ev)
{
	return xl_stream_bedrock(s, ev->message_type, ev->event_type, ev->exception_type, ev->data,
				 ev->len);
}

/* A JSON credential assumes a role with a web identity token (STS); else it is the keys. */
static enum oa_grant bedrock_grant(const char *secret)
{
	return oa_grant_of(secret, OA_STS);
}

const struct provider prov_bedrock = {
	.default_url = "https://bedrock-runtime.{region}.amazonaws.com",
	.framing = PROV_EVENTSTREAM,
	.ops = PROV_OP(UP_CHAT) | PROV_OP(UP_EMBED),
	.grant = bedrock_grant,
	.request = bedrock_build,
	.sign = bedrock_sign,
	.response = bedrock_answer,
	.event = bedrock_event,
};
