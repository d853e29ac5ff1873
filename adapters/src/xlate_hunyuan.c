/*
 * xlate_hunyuan: OpenAI chat <-> Tencent Hunyuan's native API (ChatCompletions, version
 * 2023-09-01: POST https://hunyuan.tencentcloudapi.com/ with X-TC-Action, X-TC-Version,
 * X-TC-Timestamp and a TC3-HMAC-SHA256 signature, tc3.h): the entry prov_hunyuan, used
 * when a model's provider kind is "hunyuan" and its endpoint's api-version "native"
 * (otherwise Hunyuan's OpenAI-compatible API is forwarded as it is).
 *
 * Requests: {"Model", "Messages": [{"Role", "Content"}], "Stream", "Temperature", "TopP"};
 * message contents are text (parts joined); images and tools are refused with a 400.
 * Answers: {"Response": {"Id", "Choices": [{"Message": {"Content"}, "FinishReason"}],
 * "Usage": {"PromptTokens", "CompletionTokens"}}}; a failure is {"Response": {"Error":
 * {"Code", "Message"}}} with HTTP 200, mapped by its code. Streams: SSE events whose
 * data is one {"Choices": [{"Delta": {"Content"}, "FinishReason"}], "Usage"} each.
 */
#include "provider.h"
#include "route.h"
#include "tc3.h"
#include "xlate_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HUNYUAN_VERSION "2023-09-01"
#define HUNYUAN_CT "application/json"

static json_t *message_of(const json_t *m, struct xl_error *e)
{
	const char *role = json_string_value(json_object_get(m, "role"));
	const json_t *content = json_object_get(m, "content"), *part;
	char *text;
	json_t *out;
	size_t i;

	if (!role || (strcmp(role, "system") && strcmp(role, "developer") && strcmp(role, "user") &&
		      strcmp(role, "assistant")) || json_object_get(m, "tool_calls")) {
		xl_fail(e, 400, "invalid_request_error", "unsupported_by_provider",
			"This model (Hunyuan's native API) takes system, user and assistant text messages only.");
		return NULL;
	}
	json_array_foreach(content, i, part) {
		const char *type = json_string_value(json_object_get(part, "type"));
		if (!type || strcmp(type, "text") != 0) {
			xl_fail(e, 400, "invalid_request_error", "unsupported_by_provider",
				"This model (Hunyuan's native API) takes text content only.");
			return NULL;
		}
	}
	text = xl_text_of(content);
	out = json_pack("{s:s,s:s}", "Role", strcmp(role, "developer") == 0 ? "system" : role, "Content",
			text ? text : "");
	free(text);
	return out;
}

json_t *xl_hunyuan_request(const json_t *req, const char *model, struct xl_error *e)
{
	const json_t *messages = json_object_get(req, "messages"), *m;
	json_t *out, *list = json_array(), *one;
	size_t i;

	if (json_object_get(req, "tools") || !json_is_array(messages) || !json_array_size(messages)) {
		json_decref(list);
		xl_fail(e, 400, "invalid_request_error", json_object_get(req, "tools") ? "unsupported_by_provider" : "invalid_value",
			json_object_get(req, "tools") ? "This model (Hunyuan's native API) does not take tools through the gateway."
						      : "'messages' must be a non-empty array.");
		return NULL;
	}
	json_array_foreach(messages, i, m) {
		if (!(one = message_of(m, e))) {
			json_decref(list);
			return NULL;
		}
		json_array_append_new(list, one);
	}
	out = json_pack("{s:s,s:o,s:b}", "Model", model, "Messages", list, "Stream",
			json_is_true(json_object_get(req, "stream")));
	xl_copy(out, "Temperature", req, "temperature");
	xl_copy(out, "TopP", req, "top_p");
	return out;
}

/* FinishReason: "stop", "length", "sensitive" (moderation), "tool_calls", "" (not yet). */
static const char *finish_of(const char *fr)
{
	if (!fr || !fr[0])
		return NULL;
	if (strcmp(fr, "length") == 0)
		return "length";
	if (strcmp(fr, "sensitive") == 0)
		return "content_filter";
	if (strcmp(fr, "tool_calls") == 0)
		return "tool_calls";
	return "stop";
}

static void read_usage(const json_t *j, struct xl_usage *u)
{
	const json_t *usage = json_object_get(j, "Usage");

	if (!json_is_object(usage))
		return;
	u->prompt = json_integer_value(json_object_get(usage, "PromptTokens"));
	u->completion = json_integer_value(json_object_get(usage, "CompletionTokens"));
	u->have = 1;
}

/* Response.Error -> e, by Tencent Cloud's error code. */
static void error_of(const json_t *err, struct xl_error *e)
{
	const char *code = json_string_value(json_object_get(err, "Code")) ?: "";
	const char *msg = json_string_value(json_object_get(err, "Message")) ?: "no message";

	if (strncmp(code, "AuthFailure", 11) == 0 || strncmp(code, "UnauthorizedOperation", 21) == 0)
		xl_fail(e, 502, "server_error", "upstream_authentication_failed",
			"The model provider (hunyuan) refused the gateway's credential (%s).", code);
	else if (strncmp(code, "LimitExceeded", 13) == 0 || strncmp(code, "RequestLimitExceeded", 20) == 0)
		xl_fail(e, 429, "rate_limit_error", "rate_limit_exceeded", "The model provider (hunyuan) answered %s: %.160s",
			code, msg);
	else if (strncmp(code, "InvalidParameter", 16) == 0 || strncmp(code, "MissingParameter", 16) == 0)
		xl_fail(e, 400, "invalid_request_error", "upstream_invalid_request",
			"The model provider (hunyuan) answered %s: %.160s", code, msg);
	else
		xl_fail(e, 502, "server_error", "upstream_error", "The model provider (hunyuan) answered %s: %.160s", code,
			msg);
}

json_t *xl_hunyuan_response(const json_t *resp, const struct xl_meta *m, struct xl_usage *u,
			    struct xl_error *e)
{
	const json_t *r = json_object_get(resp, "Response"), *c = json_array_get(json_object_get(r, "Choices"), 0);
	const char *text = json_string_value(json_object_get(json_object_get(c, "Message"), "Content"));
	const char *fr = finish_of(json_string_value(json_object_get(c, "FinishReason")));

	if (json_is_object(json_object_get(r, "Error"))) {
		error_of(json_object_get(r, "Error"), e);
		return NULL;
	}
	if (!text) {
		xl_fail(e, 502, "server_error", "bad_upstream_response", "The model provider's answer has no choices.");
		return NULL;
	}
	read_usage(r, u);
	return json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:{s:s,s:s},s:s}],s:o}", "id",
			 json_string_value(json_object_get(r, "Id")) ?: m->id, "object", "chat.completion", "created",
			 (json_int_t)m->created, "model", m->model, "choices", "index", 0, "message", "role", "assistant",
			 "content", text, "finish_reason", fr ? fr : "stop", "usage", xl_usage_json(u));
}

static int hunyuan_sse(struct xl_stream *s, const char *event, json_t *j)
{
	const json_t *c = json_array_get(json_object_get(j, "Choices"), 0);
	const char *t = json_string_value(json_object_get(json_object_get(c, "Delta"), "Content"));
	const char *fr = finish_of(json_string_value(json_object_get(c, "FinishReason")));
	const json_t *err = json_object_get(json_object_get(j, "Response"), "Error");

	(void)event;
	if (json_is_object(err) || json_is_object(json_object_get(j, "Error"))) {
		error_of(json_is_object(err) ? err : json_object_get(j, "Error"), &s->err);
		return -1;
	}
	read_usage(j, &s->usage);
	xl_stream_start(s);
	if (t && t[0])
		xl_emit_text(s, t, strlen(t));
	if (fr)
		snprintf(s->finish, sizeof(s->finish), "%s", fr);
	return 0;
}

/* ---- the entry ----------------------------------------------------------------------- */

static json_t *hunyuan_build(const struct prov_call *c, struct up_request *u, struct xl_error *e)
{
	json_t *body = xl_hunyuan_request(c->req, c->route->model, e);

	if (body && (up_url(u, c->base, "/") < 0 || up_add_header(u, "X-TC-Action: ChatCompletions") < 0 ||
		     up_add_header(u, "X-TC-Version: %s", HUNYUAN_VERSION) < 0 ||
		     (c->route->region[0] && up_add_header(u, "X-TC-Region: %s", c->route->region) < 0)))
		return xl_url_failed(body, e);
	return body;
}

/* "SECRET_ID:SECRET_KEY": the TC3 signature over the body, the host and the content type
 * (finish_request sends "Content-Type: application/json"). */
static int hunyuan_sign(const struct ad_route *r, const char *secret, time_t now, struct up_request *u,
			struct xl_error *e)
{
	const char *colon = secret ? strchr(secret, ':') : NULL, *host = strstr(u->url, "://");
	char id[128], hostbuf[256], auth[TC3_AUTH_MAX];
	struct tc3_request t = { 0 };
	size_t hl;
	int rc;

	(void)r;
	if (!colon || (size_t)(colon - secret) >= sizeof(id) || !host) {
		xl_fail(e, 503, "server_error", "upstream_credential_unavailable",
			"The Hunyuan credential must be 'SECRET_ID:SECRET_KEY'.");
		return -1;
	}
	host += 3;
	hl = strcspn(host, "/");
	snprintf(id, sizeof(id), "%.*s", (int)(colon - secret), secret);
	snprintf(hostbuf, sizeof(hostbuf), "%.*s", (int)hl, host);
	t.secret_id = id;
	t.secret_key = colon + 1;
	t.service = "hunyuan";
	t.host = hostbuf;
	t.content_type = HUNYUAN_CT;
	t.payload = u->body;
	t.payload_len = u->body_len;
	t.timestamp = now;
	rc = tc3_sign(&t, auth, sizeof(auth));
	if (rc < 0) {
		xl_fail(e, 500, "server_error", "signing_failed", "The Hunyuan request could not be signed.");
		return -1;
	}
	if (up_add_header(u, "Authorization: %s", auth) < 0 || up_add_header(u, "X-TC-Timestamp: %lld", (long long)now) < 0) {
		xl_url_failed(NULL, e);
		return -1;
	}
	return 0;
}

static json_t *hunyuan_answer(json_t *resp, const struct prov_answer *a, struct xl_usage *u,
			      struct xl_error *e)
{
	return xl_hunyuan_response(resp, a->meta, u, e);
}

const struct provider prov_hunyuan = {
	.default_url = "https://hunyuan.tencentcloudapi.com",
	.framing = PROV_SSE,
	.ops = PROV_OP(UP_CHAT),
	.json_on_failure = 1,
	.request = hunyuan_build,
	.sign = hunyuan_sign,
	.response = hunyuan_answer,
	.sse = hunyuan_sse,
};
