/*
 * xlate_anthropic: OpenAI chat <-> Anthropic Messages (POST /v1/messages).
 *
 * Requests: system and developer messages become the top-level "system"; user parts
 * (text, images as base64 data URLs or plain URLs) become content blocks; assistant
 * tool_calls become tool_use blocks and role "tool" messages tool_result blocks in a
 * user message; consecutive messages of one role are merged (the API wants turns to
 * alternate). max_tokens is required by Anthropic: 4096 when the client gave none.
 * Streams: message_start (id, input usage) / content_block_start|delta|stop (text and
 * tool_use with input_json_delta) / message_delta (stop_reason, output usage) /
 * message_stop; usage is merged from message_start and message_delta.
 */
#include "provider.h"
#include "route.h"
#include "xlate_int.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_TOKENS 4096

static json_t *text_block(const json_t *text)
{
	return json_pack("{s:s,s:O}", "type", "text", "text", text);
}

static json_t *image_block(const char *url, struct xl_error *e)
{
	char mime[64];
	const char *b64;

	if (!url) {
		xl_fail(e, 400, "invalid_request_error", "invalid_value", "An image_url part has no url.");
		return NULL;
	}
	if (xl_data_url(url, mime, sizeof(mime), &b64) == 0)
		return json_pack("{s:s,s:{s:s,s:s,s:s}}", "type", "image", "source", "type", "base64",
				 "media_type", mime, "data", b64);
	return json_pack("{s:s,s:{s:s,s:s}}", "type", "image", "source", "type", "url", "url", url);
}

static const struct xl_blocks blocks = { "content", text_block, image_block };

static int on_tool_call(void *arg, const json_t *call, const json_t *fn, json_t *args,
			struct xl_error *e)
{
	(void)e;
	xl_push_grouped(((struct xl_turns *)arg)->msgs, "assistant", "content",
			json_pack("{s:s,s:O,s:O,s:o}", "type", "tool_use", "id", json_object_get(call, "id"),
				  "name", json_object_get(fn, "name"), "input", args));
	return 0;
}

static int on_tool_result(void *arg, const json_t *msg, const char *text, struct xl_error *e)
{
	(void)e;
	xl_push_grouped(((struct xl_turns *)arg)->msgs, "user", "content",
			json_pack("{s:s,s:O,s:s}", "type", "tool_result", "tool_use_id",
				  json_object_get(msg, "tool_call_id"), "content", text));
	return 0;
}

static const struct xl_walk walk = { xl_turns_system, xl_turns_user, xl_turns_assistant, on_tool_call,
				     on_tool_result };

static json_t *tools_of(const json_t *tools)
{
	json_t *out = json_array();
	size_t i;
	const json_t *t;

	json_array_foreach(tools, i, t) {
		const json_t *fn = json_object_get(t, "function");
		json_t *schema = json_object_get(fn, "parameters");
		json_t *o = json_pack("{s:O}", "name", json_object_get(fn, "name"));
		xl_copy(o, "description", fn, "description");
		json_object_set_new(o, "input_schema", schema ? json_deep_copy(schema)
							      : json_pack("{s:s}", "type", "object"));
		json_array_append_new(out, o);
	}
	return out;
}

static json_t *tool_choice_of(const json_t *req)
{
	const json_t *tc = json_object_get(req, "tool_choice");
	const json_t *par = json_object_get(req, "parallel_tool_calls");
	const char *s = json_string_value(tc);
	json_t *out = NULL;

	if (s && strcmp(s, "auto") == 0)
		out = json_pack("{s:s}", "type", "auto");
	else if (s && strcmp(s, "none") == 0)
		out = json_pack("{s:s}", "type", "none");
	else if (s && strcmp(s, "required") == 0)
		out = json_pack("{s:s}", "type", "any");
	else if (json_is_object(tc))
		out = json_pack("{s:s,s:O}", "type", "tool", "name",
				json_object_get(json_object_get(tc, "function"), "name"));
	if (json_is_false(par)) {
		if (!out)
			out = json_pack("{s:s}", "type", "auto");
		json_object_set_new(out, "disable_parallel_tool_use", json_true());
	}
	return out;
}

json_t *xl_anthropic_request(const json_t *req, const char *model, struct xl_error *e)
{
	const json_t *messages = json_object_get(req, "messages"), *n = json_object_get(req, "n");
	json_t *out, *msgs = json_array(), *system = json_array(), *v;
	json_int_t max = xl_max_tokens(req);

	struct xl_turns c = { msgs, system, &blocks, "assistant", messages };

	if (json_is_integer(n) && json_integer_value(n) != 1) {
		xl_fail(e, 400, "invalid_request_error", "unsupported_parameter",
			"This model returns one choice: 'n' must be 1.");
		goto fail;
	}
	if (xl_walk_messages(messages, &walk, &c, e) < 0)
		goto fail;
	out = json_pack("{s:s,s:o,s:I}", "model", model, "messages", msgs, "max_tokens",
			(json_int_t)(max > 0 ? max : DEFAULT_MAX_TOKENS));
	if (json_array_size(system))
		json_object_set_new(out, "system", system);
	else
		json_decref(system);
	xl_copy(out, "temperature", req, "temperature");
	xl_copy(out, "top_p", req, "top_p");
	xl_copy(out, "stream", req, "stream");
	if ((v = xl_stop_array(req)))
		json_object_set_new(out, "stop_sequences", v);
	if (json_array_size(json_object_get(req, "tools")))
		json_object_set_new(out, "tools", tools_of(json_object_get(req, "tools")));
	if ((v = tool_choice_of(req)))
		json_object_set_new(out, "tool_choice", v);
	if (json_is_string(json_object_get(req, "user")))
		json_object_set_new(out, "metadata", json_pack("{s:O}", "user_id",
							       json_object_get(req, "user")));
	return out;
fail:
	json_decref(msgs);
	json_decref(system);
	return NULL;
}

/* Anthropic counts cache reads and writes apart from input_tokens; OpenAI's
 * prompt_tokens includes them. */
static int64_t input_tokens(const json_t *usage)
{
	return json_integer_value(json_object_get(usage, "input_tokens")) +
	       json_integer_value(json_object_get(usage, "cache_creation_input_tokens")) +
	       json_integer_value(json_object_get(usage, "cache_read_input_tokens"));
}

/* The answer's text blocks joined (new string, NULL when none) and its tool_use blocks
 * as OpenAI tool calls appended to calls. */
static char *answer_blocks(const json_t *content, json_t *calls)
{
	const json_t *b;
	size_t i, tl = 0;
	char *text = NULL;

	json_array_foreach(content, i, b) {
		const char *type = json_string_value(json_object_get(b, "type"));
		if (type && strcmp(type, "text") == 0) {
			const char *t = json_string_value(json_object_get(b, "text"));
			xl_append_text(&text, &tl, t ? t : "");
		} else if (type && strcmp(type, "tool_use") == 0) {
			xl_append_call(calls, json_object_get(b, "id"), json_object_get(b, "name"),
				       json_object_get(b, "input"));
		}
	}
	return text;
}

json_t *xl_anthropic_response(const json_t *resp, const struct xl_meta *m, struct xl_usage *u,
			      struct xl_error *e)
{
	const json_t *content = json_object_get(resp, "content"), *usage = json_object_get(resp, "usage");
	json_t *calls, *msg;
	char *text;

	if (!json_is_array(content)) {
		xl_fail(e, 502, "server_error", "bad_upstream_response", "The model provider's answer has no content.");
		return NULL;
	}
	calls = json_array();
	text = answer_blocks(content, calls);
	msg = xl_assistant_message(text, calls);
	free(text);
	u->prompt = input_tokens(usage);
	u->completion = json_integer_value(json_object_get(usage, "output_tokens"));
	u->have = json_is_object(usage);
	return json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:s}],s:o}", "id",
			 json_string_value(json_object_get(resp, "id")) ?: m->id, "object", "chat.completion",
			 "created", (json_int_t)m->created, "model", m->model, "choices", "index", 0, "message", msg,
			 "finish_reason", xl_finish_from_anthropic(json_string_value(json_object_get(resp, "stop_reason"))),
			 "usage", xl_usage_json(u));
}

/* ---- streams: one handler per event type ---------------------------------------------- */

static int on_message_start(struct xl_stream *s, const json_t *j, json_int_t index)
{
	const json_t *msg = json_object_get(j, "message"), *usage = json_object_get(msg, "usage");

	(void)index;
	if (json_is_object(usage)) {
		s->usage.prompt = input_tokens(usage);
		s->usage.completion = json_integer_value(json_object_get(usage, "output_tokens"));
		s->usage.have = 1;
	}
	if (json_string_value(json_object_get(msg, "id")))
		snprintf(s->id, sizeof(s->id), "%s", json_string_value(json_object_get(msg, "id")));
	xl_stream_start(s);
	return 0;
}

static int on_block_start(struct xl_stream *s, const json_t *j, json_int_t index)
{
	const json_t *b = json_object_get(j, "content_block");
	const char *bt = json_string_value(json_object_get(b, "type"));
	const char *t = json_string_value(json_object_get(b, "text"));

	if (bt && strcmp(bt, "tool_use") == 0 && index >= 0 && index < XL_BLOCKS_MAX) {
		s->tool_of_block[index] = (int16_t)s->ntools++;
		xl_emit_tool(s, s->tool_of_block[index], json_string_value(json_object_get(b, "id")),
			     json_string_value(json_object_get(b, "name")), "");
	} else if (bt && strcmp(bt, "text") == 0 && t) {
		xl_emit_text(s, t, strlen(t));
	}
	return 0;
}

/* Text and tool-input deltas; thinking and signature deltas have no OpenAI chunk form. */
static int on_block_delta(struct xl_stream *s, const json_t *j, json_int_t index)
{
	const json_t *d = json_object_get(j, "delta");
	const char *dt = json_string_value(json_object_get(d, "type"));
	const char *t = json_string_value(json_object_get(d, "text"));
	const char *pj = json_string_value(json_object_get(d, "partial_json"));

	if (dt && strcmp(dt, "text_delta") == 0 && t)
		xl_emit_text(s, t, strlen(t));
	else if (dt && strcmp(dt, "input_json_delta") == 0 && index >= 0 && index < XL_BLOCKS_MAX &&
		 s->tool_of_block[index] >= 0 && pj && *pj)
		xl_emit_tool(s, s->tool_of_block[index], NULL, NULL, pj);
	return 0;
}

static int on_message_delta(struct xl_stream *s, const json_t *j, json_int_t index)
{
	const json_t *usage = json_object_get(j, "usage");
	const char *r = json_string_value(json_object_get(json_object_get(j, "delta"), "stop_reason"));

	(void)index;
	if (r)
		snprintf(s->finish, sizeof(s->finish), "%s", xl_finish_from_anthropic(r));
	if (json_is_object(usage)) {
		/* output_tokens here is the running total, not an increment; newer API
		 * versions repeat the input counts too. */
		if (json_is_integer(json_object_get(usage, "output_tokens")))
			s->usage.completion = json_integer_value(json_object_get(usage, "output_tokens"));
		if (input_tokens(usage) > 0)
			s->usage.prompt = input_tokens(usage);
		s->usage.have = 1;
	}
	return 0;
}

static int on_message_stop(struct xl_stream *s, const json_t *j, json_int_t index)
{
	(void)j, (void)index;
	xl_stream_end(s);
	return 0;
}

static int on_error(struct xl_stream *s, const json_t *j, json_int_t index)
{
	const json_t *err = json_object_get(j, "error");
	const char *et = json_string_value(json_object_get(err, "type"));
	int overloaded = et && strcmp(et, "overloaded_error") == 0;

	(void)index;
	xl_fail(&s->err, overloaded ? 503 : 502, "server_error", overloaded ? "upstream_overloaded" : "upstream_error",
		"The model provider (anthropic) failed during the stream: %.180s",
		json_string_value(json_object_get(err, "message")) ?: "no message");
	return -1;
}

static const struct {
	const char *type;
	int (*fn)(struct xl_stream *s, const json_t *j, json_int_t index);
} handlers[] = {
	{ "message_start", on_message_start }, { "content_block_start", on_block_start },
	{ "content_block_delta", on_block_delta }, { "message_delta", on_message_delta },
	{ "message_stop", on_message_stop },     { "error", on_error },
};

/* ping and unknown event types are ignored, as Anthropic asks clients to do. */
static int anthropic_sse(struct xl_stream *s, const char *event, json_t *j)
{
	const char *type = json_string_value(json_object_get(j, "type"));

	if (!type)
		type = event;
	for (size_t i = 0; type && i < sizeof(handlers) / sizeof(handlers[0]); i++)
		if (strcmp(type, handlers[i].type) == 0)
			return handlers[i].fn(s, j, json_integer_value(json_object_get(j, "index")));
	return 0;
}

/* ---- the entry ----------------------------------------------------------------------- */

#define ANTHROPIC_VERSION "2023-06-01"

static json_t *anthropic_build(const struct prov_call *c, struct up_request *u, struct xl_error *e)
{
	json_t *body;

	if (!(body = xl_anthropic_request(c->req, c->route->model, e)))
		return NULL;
	if (up_url(u, c->base, "/v1/messages") < 0 ||
	    up_add_header(u, "anthropic-version: %s", ANTHROPIC_VERSION) < 0)
		return xl_url_failed(body, e);
	return body;
}

static json_t *anthropic_answer(json_t *resp, const struct prov_answer *a, struct xl_usage *u,
				struct xl_error *e)
{
	return xl_anthropic_response(resp, a->meta, u, e);
}

const struct provider prov_anthropic = {
	.default_url = "https://api.anthropic.com",
	.framing = PROV_SSE,
	.ops = PROV_OP(UP_CHAT),
	.auth_header = "x-api-key",
	.request = anthropic_build,
	.response = anthropic_answer,
	.sse = anthropic_sse,
};

/* ---- Anthropic's models on Vertex AI ------------------------------------------------- */

#define VERTEX_ANTHROPIC_VERSION "vertex-2023-10-16"

/* The Messages body without "model" (the path names it) and with anthropic_version;
 * the base URL names the project and the location, as for Gemini on Vertex. */
static json_t *vertex_build(const struct prov_call *c, struct up_request *u, struct xl_error *e)
{
	json_t *body;

	if (!(body = xl_anthropic_request(c->req, c->route->model, e)))
		return NULL;
	json_object_del(body, "model");
	json_object_set_new(body, "anthropic_version", json_string(VERTEX_ANTHROPIC_VERSION));
	if (up_url(u, c->base, "/publishers/anthropic/models/%s:%s", c->model_enc,
		   u->stream ? "streamRawPredict" : "rawPredict") < 0)
		return xl_url_failed(body, e);
	return body;
}

const struct provider prov_vertex_anthropic = {
	XL_VERTEX_PROVIDER(vertex_build),
	.response = anthropic_answer,
	.sse = anthropic_sse,
};
