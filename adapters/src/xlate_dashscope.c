/*
 * xlate_dashscope: OpenAI chat <-> Alibaba Cloud Model Studio's (Bailian) native DashScope
 * API (POST /api/v1/services/aigc/text-generation/generation): the entry prov_dashscope,
 * used when a model's provider kind is "dashscope" and its endpoint's api-version
 * "native" (otherwise DashScope's OpenAI-compatible mode is forwarded as it is).
 *
 * Requests: {"model", "input": {"messages"}, "parameters": {"result_format": "message",
 * "temperature", "top_p", "max_tokens", "stop", "seed", "tools", "tool_choice",
 * "incremental_output"}}; the messages are OpenAI's (DashScope takes the same roles, tool
 * calls and tool results). Streams ask with X-DashScope-SSE: enable and
 * incremental_output: each SSE event ("event:result") holds the new part of the message.
 * Answers: {"output": {"choices": [{"message", "finish_reason"}]}, "usage":
 * {"input_tokens", "output_tokens"}, "request_id"}; errors {"code", "message"}.
 */
#include "provider.h"
#include "route.h"
#include "xlate_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *xl_dashscope_request(const json_t *req, const char *model, struct xl_error *e)
{
	const json_t *messages = json_object_get(req, "messages");
	json_t *params = json_pack("{s:s}", "result_format", "message"), *stop = xl_stop_array(req);
	json_int_t max = xl_max_tokens(req);

	if (!json_is_array(messages) || !json_array_size(messages)) {
		json_decref(params);
		json_decref(stop);
		xl_fail(e, 400, "invalid_request_error", "invalid_value", "'messages' must be a non-empty array.");
		return NULL;
	}
	xl_copy(params, "temperature", req, "temperature");
	xl_copy(params, "top_p", req, "top_p");
	xl_copy(params, "seed", req, "seed");
	xl_copy(params, "tools", req, "tools");
	xl_copy(params, "tool_choice", req, "tool_choice");
	xl_copy(params, "parallel_tool_calls", req, "parallel_tool_calls");
	if (max > 0)
		json_object_set_new(params, "max_tokens", json_integer(max));
	if (stop)
		json_object_set_new(params, "stop", stop);
	if (json_is_true(json_object_get(req, "stream")))
		json_object_set_new(params, "incremental_output", json_true());
	return json_pack("{s:s,s:{s:O},s:o}", "model", model, "input", "messages", messages, "parameters", params);
}

/* DashScope says "null" (a string) while a stream goes on. */
static const char *finish_of(const json_t *fr)
{
	const char *v = json_string_value(fr);

	if (!v || !v[0] || strcmp(v, "null") == 0)
		return NULL;
	if (strcmp(v, "length") == 0 || strcmp(v, "tool_calls") == 0)
		return v;
	return "stop";
}

static void read_usage(const json_t *j, struct xl_usage *u)
{
	const json_t *usage = json_object_get(j, "usage");

	if (!json_is_integer(json_object_get(usage, "input_tokens")))
		return;
	u->prompt = json_integer_value(json_object_get(usage, "input_tokens"));
	u->completion = json_integer_value(json_object_get(usage, "output_tokens"));
	u->have = 1;
}

json_t *xl_dashscope_response(const json_t *resp, const struct xl_meta *m, struct xl_usage *u,
			      struct xl_error *e)
{
	const json_t *choices = json_object_get(json_object_get(resp, "output"), "choices"), *c;
	json_t *out = json_array();
	size_t i;

	json_array_foreach(choices, i, c) {
		const json_t *msg = json_object_get(c, "message");
		const char *fr = finish_of(json_object_get(c, "finish_reason"));
		if (!json_is_object(msg))
			break;
		json_array_append_new(out, json_pack("{s:I,s:O,s:s}", "index", (json_int_t)i, "message", msg,
						     "finish_reason", fr ? fr : "stop"));
	}
	if (!json_array_size(out) || json_array_size(out) != json_array_size(choices)) {
		json_decref(out);
		xl_fail(e, 502, "server_error", "bad_upstream_response", "The model provider's answer has no choices.");
		return NULL;
	}
	read_usage(resp, u);
	return json_pack("{s:s,s:s,s:I,s:s,s:o,s:o}", "id", json_string_value(json_object_get(resp, "request_id")) ?: m->id,
			 "object", "chat.completion", "created", (json_int_t)m->created, "model", m->model, "choices", out,
			 "usage", xl_usage_json(u));
}

/* The tool calls of one incremental message: OpenAI's delta shape already. */
static void emit_tools(struct xl_stream *s, const json_t *calls)
{
	const json_t *tc;
	size_t k;

	json_array_foreach(calls, k, tc) {
		const json_t *fn = json_object_get(tc, "function"), *index = json_object_get(tc, "index");
		int idx = json_is_integer(index) ? (int)json_integer_value(index) : (int)k;
		if (idx < 0 || idx >= XL_BLOCKS_MAX)
			continue;
		if (idx + 1 > s->ntools)
			s->ntools = idx + 1;
		xl_emit_tool(s, idx, json_string_value(json_object_get(tc, "id")),
			     json_string_value(json_object_get(fn, "name")), json_string_value(json_object_get(fn, "arguments")));
	}
}

static int dashscope_sse(struct xl_stream *s, const char *event, json_t *j)
{
	const json_t *c = json_array_get(json_object_get(json_object_get(j, "output"), "choices"), 0);
	const json_t *msg = json_object_get(c, "message");
	const char *t = json_string_value(json_object_get(msg, "content"));
	const char *fr = finish_of(json_object_get(c, "finish_reason"));

	if ((event && strcmp(event, "error") == 0) || json_is_string(json_object_get(j, "code"))) {
		xl_fail(&s->err, 502, "server_error", "upstream_error",
			"The model provider (dashscope) failed during the stream: %.60s: %.140s",
			json_string_value(json_object_get(j, "code")) ?: "error",
			json_string_value(json_object_get(j, "message")) ?: "no message");
		return -1;
	}
	read_usage(j, &s->usage);
	xl_stream_start(s);
	if (t && t[0])
		xl_emit_text(s, t, strlen(t));
	emit_tools(s, json_object_get(msg, "tool_calls"));
	if (fr)
		snprintf(s->finish, sizeof(s->finish), "%s", fr);
	return 0;
}

/* ---- the entry ----------------------------------------------------------------------- */

static json_t *dashscope_build(const struct prov_call *c, struct up_request *u, struct xl_error *e)
{
	json_t *body = xl_dashscope_request(c->req, c->route->model, e);

	if (body && (up_url(u, c->base, "/api/v1/services/aigc/text-generation/generation") < 0 ||
		     (u->stream && up_add_header(u, "X-DashScope-SSE: enable") < 0)))
		return xl_url_failed(body, e);
	return body;
}

static json_t *dashscope_answer(json_t *resp, const struct prov_answer *a, struct xl_usage *u,
				struct xl_error *e)
{
	return xl_dashscope_response(resp, a->meta, u, e);
}

const struct provider prov_dashscope = {
	.default_url = "https://dashscope.aliyuncs.com",
	.framing = PROV_SSE,
	.ops = PROV_OP(UP_CHAT),
	.auth_header = "Authorization",
	.auth_scheme = "Bearer ",
	.request = dashscope_build,
	.response = dashscope_answer,
	.sse = dashscope_sse,
};
