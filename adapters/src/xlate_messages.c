/*
 * xlate_messages: Anthropic-style clients (POST /v1/messages, @anthropic-ai/sdk) in
 * front of any model: their request becomes an OpenAI chat request (then translated
 * for the model's provider as usual), and the OpenAI answer or chunks become an
 * Anthropic message or its event stream (message_start, content_block_start/delta/
 * stop, message_delta with the usage, message_stop).
 */
#include "xlate_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *blocks_text(const json_t *content)
{
	return xl_text_of(content); /* a string, or its text blocks joined */
}

/* An image block's source as a URL ("data:" for base64); new string or NULL. */
static char *image_url_of(const json_t *b)
{
	const json_t *src = json_object_get(b, "source");
	const char *st = json_string_value(json_object_get(src, "type"));
	const char *mt = json_string_value(json_object_get(src, "media_type"));
	const char *d = json_string_value(json_object_get(src, "data"));
	const char *url = json_string_value(json_object_get(src, "url"));
	char *out = NULL;

	if (st && strcmp(st, "base64") == 0 && mt && d && asprintf(&out, "data:%s;base64,%s", mt, d) >= 0)
		return out;
	if (st && strcmp(st, "url") == 0 && url)
		return strdup(url);
	return NULL;
}

/* What one message's blocks become: text and image parts, tool calls, and tool
 * messages appended to the conversation as they come. */
struct msg_parts {
	json_t *out, *parts, *calls;
};

/* One content block. 0, or -1 with e set. */
static int convert_block(struct msg_parts *mp, const json_t *b, size_t i, struct xl_error *e)
{
	const char *type = json_string_value(json_object_get(b, "type"));
	char *t;

	if (!type)
		return 0;
	if (strcmp(type, "text") == 0) {
		json_array_append_new(mp->parts, json_pack("{s:s,s:O}", "type", "text", "text", json_object_get(b, "text")));
	} else if (strcmp(type, "image") == 0) {
		if (!(t = image_url_of(b))) {
			xl_fail(e, 400, "invalid_request_error", "invalid_value",
				"messages[%zu]: an image block needs a base64 or url source.", i);
			return -1;
		}
		json_array_append_new(mp->parts, json_pack("{s:s,s:{s:s}}", "type", "image_url", "image_url", "url", t));
		free(t);
	} else if (strcmp(type, "tool_use") == 0) {
		t = xl_dump_object(json_object_get(b, "input"));
		json_array_append_new(mp->calls, json_pack("{s:O,s:s,s:{s:O,s:s}}", "id", json_object_get(b, "id"), "type",
							   "function", "function", "name", json_object_get(b, "name"),
							   "arguments", t ? t : "{}"));
		free(t);
	} else if (strcmp(type, "tool_result") == 0) {
		t = blocks_text(json_object_get(b, "content"));
		json_array_append_new(mp->out, json_pack("{s:s,s:O,s:s}", "role", "tool", "tool_call_id",
							 json_object_get(b, "tool_use_id"), "content", t ? t : ""));
		free(t);
	}
	/* thinking and other block types have no OpenAI form: dropped. */
	return 0;
}

/* The message itself, when its blocks left any parts or calls. */
static void append_message(const struct msg_parts *mp, const char *role)
{
	json_t *msg;
	char *t;

	if (!json_array_size(mp->parts) && !json_array_size(mp->calls))
		return;
	msg = json_pack("{s:s}", "role", role);
	if (strcmp(role, "assistant") == 0) {
		t = xl_text_of(mp->parts);
		json_object_set_new(msg, "content", t && *t ? json_string(t) : json_null());
		free(t);
		if (json_array_size(mp->calls))
			json_object_set(msg, "tool_calls", mp->calls);
	} else {
		json_object_set(msg, "content", mp->parts);
	}
	json_array_append_new(mp->out, msg);
}

/* One Anthropic message -> OpenAI messages appended to out. */
static int convert_message(json_t *out, const json_t *m, size_t i, struct xl_error *e)
{
	const char *role = json_string_value(json_object_get(m, "role"));
	const json_t *content = json_object_get(m, "content"), *b;
	struct msg_parts mp = { out, NULL, NULL };
	size_t k;
	int rc = 0;

	if (!role || (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0)) {
		xl_fail(e, 400, "invalid_request_error", "invalid_value",
			"messages[%zu].role must be 'user' or 'assistant'.", i);
		return -1;
	}
	if (json_is_string(content)) {
		json_array_append_new(out, json_pack("{s:s,s:O}", "role", role, "content", content));
		return 0;
	}
	if (!json_is_array(content)) {
		xl_fail(e, 400, "invalid_request_error", "invalid_type",
			"messages[%zu].content must be a string or an array of blocks.", i);
		return -1;
	}
	mp.parts = json_array();
	mp.calls = json_array();
	json_array_foreach(content, k, b)
		if ((rc = convert_block(&mp, b, i, e)) < 0)
			break;
	if (rc == 0)
		append_message(&mp, role);
	json_decref(mp.parts);
	json_decref(mp.calls);
	return rc;
}

static json_t *tools_to_openai(const json_t *tools)
{
	json_t *ot = json_array();
	const json_t *t;
	size_t i;

	json_array_foreach(tools, i, t) {
		json_t *fn = json_pack("{s:O}", "name", json_object_get(t, "name"));
		xl_copy(fn, "description", t, "description");
		xl_copy(fn, "parameters", t, "input_schema");
		json_array_append_new(ot, json_pack("{s:s,s:o}", "type", "function", "function", fn));
	}
	return ot;
}

/* Anthropic's tool_choice object -> OpenAI's tool_choice (and parallel_tool_calls). */
static void tool_choice_to_openai(json_t *out, const json_t *tc)
{
	const char *type = json_string_value(json_object_get(tc, "type"));

	if (type && strcmp(type, "any") == 0)
		json_object_set_new(out, "tool_choice", json_string("required"));
	else if (type && strcmp(type, "none") == 0)
		json_object_set_new(out, "tool_choice", json_string("none"));
	else if (type && strcmp(type, "tool") == 0)
		json_object_set_new(out, "tool_choice", json_pack("{s:s,s:{s:O}}", "type", "function", "function",
								 "name", json_object_get(tc, "name")));
	else
		json_object_set_new(out, "tool_choice", json_string("auto"));
	if (json_is_true(json_object_get(tc, "disable_parallel_tool_use")))
		json_object_set_new(out, "parallel_tool_calls", json_false());
}

/* The system prompt and the messages; NULL with e set. */
static json_t *messages_to_openai(const json_t *req, struct xl_error *e)
{
	const json_t *messages = json_object_get(req, "messages"), *m, *sys = json_object_get(req, "system");
	json_t *msgs;
	size_t i;

	if (!json_is_array(messages) || !json_array_size(messages)) {
		xl_fail(e, 400, "invalid_request_error", "invalid_value", "'messages' must be a non-empty array.");
		return NULL;
	}
	msgs = json_array();
	if (sys) {
		char *t = blocks_text(sys);
		json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "system", "content", t ? t : ""));
		free(t);
	}
	json_array_foreach(messages, i, m) {
		if (convert_message(msgs, m, i, e) < 0) {
			json_decref(msgs);
			return NULL;
		}
	}
	return msgs;
}

json_t *xl_msg_to_openai(const json_t *req, struct xl_error *e)
{
	const json_t *tools = json_object_get(req, "tools"), *tc = json_object_get(req, "tool_choice");
	json_t *user = json_object_get(json_object_get(req, "metadata"), "user_id"), *msgs, *out;

	if (!json_is_integer(json_object_get(req, "max_tokens"))) {
		xl_fail(e, 400, "invalid_request_error", "missing_field", "max_tokens: Field required");
		return NULL;
	}
	if (!json_is_string(json_object_get(req, "model"))) {
		xl_fail(e, 400, "invalid_request_error", "missing_field", "model: Field required");
		return NULL;
	}
	if (!(msgs = messages_to_openai(req, e)))
		return NULL;
	out = json_pack("{s:O,s:o,s:O}", "model", json_object_get(req, "model"), "messages", msgs, "max_tokens",
			json_object_get(req, "max_tokens"));
	xl_copy(out, "temperature", req, "temperature");
	xl_copy(out, "top_p", req, "top_p");
	xl_copy(out, "stop", req, "stop_sequences");
	if (json_is_true(json_object_get(req, "stream"))) {
		json_object_set_new(out, "stream", json_true());
		json_object_set_new(out, "stream_options", json_pack("{s:b}", "include_usage", 1));
	}
	if (json_is_string(user))
		json_object_set(out, "user", user);
	if (json_array_size(tools))
		json_object_set_new(out, "tools", tools_to_openai(tools));
	if (json_is_object(tc))
		tool_choice_to_openai(out, tc);
	return out;
}

static void msg_id(const char *src, char *out, size_t cap)
{
	if (src && strncmp(src, "msg_", 4) == 0)
		snprintf(out, cap, "%s", src);
	else
		snprintf(out, cap, "msg_%s", src ? src : "jairouter");
}

json_t *xl_openai_to_msg(const json_t *resp)
{
	const json_t *c = json_array_get(json_object_get(resp, "choices"), 0);
	const json_t *msg = json_object_get(c, "message"), *tc, *usage = json_object_get(resp, "usage");
	json_t *content = json_array();
	const char *text = json_string_value(json_object_get(msg, "content"));
	char id[128];
	size_t i;

	if (text && *text)
		json_array_append_new(content, json_pack("{s:s,s:s}", "type", "text", "text", text));
	json_array_foreach(json_object_get(msg, "tool_calls"), i, tc) {
		const json_t *fn = json_object_get(tc, "function");
		json_t *input = xl_parse_args(json_object_get(fn, "arguments"));
		json_array_append_new(content, json_pack("{s:s,s:O,s:O,s:o}", "type", "tool_use", "id",
							 json_object_get(tc, "id"), "name",
							 json_object_get(fn, "name"), "input",
							 input ? input : json_object()));
	}
	msg_id(json_string_value(json_object_get(resp, "id")), id, sizeof(id));
	return json_pack("{s:s,s:s,s:s,s:O,s:o,s:s,s:n,s:{s:I,s:I}}", "id", id, "type", "message",
			 "role", "assistant", "model", json_object_get(resp, "model"), "content", content,
			 "stop_reason",
			 xl_finish_to_anthropic(json_string_value(json_object_get(c, "finish_reason"))),
			 "stop_sequence", "usage", "input_tokens",
			 json_integer_value(json_object_get(usage, "prompt_tokens")), "output_tokens",
			 json_integer_value(json_object_get(usage, "completion_tokens")));
}

json_t *xl_error_to_msg(const struct xl_error *e)
{
	const char *t = e->type ? e->type : "api_error";

	if (strcmp(t, "server_error") == 0)
		t = e->status == 503 ? "overloaded_error" : "api_error";
	return json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type", t, "message", e->message);
}

/* ---- the event stream ------------------------------------------------------------- */

static void event(struct xl_msg_stream *m, const char *name, json_t *data)
{
	char *s = json_dumps(data, JSON_COMPACT);
	char head[64];
	int n = snprintf(head, sizeof(head), "event: %s\ndata: ", name);

	json_decref(data);
	if (!s)
		return;
	m->out(m->arg, head, (size_t)n);
	m->out(m->arg, s, strlen(s));
	m->out(m->arg, "\n\n", 2);
	free(s);
}

void xl_msg_stream_init(struct xl_msg_stream *m, const char *model, xl_bytes_fn out, void *arg)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->model, sizeof(m->model), "%s", model ? model : "");
	m->out = out;
	m->arg = arg;
}

static void start(struct xl_msg_stream *m, const char *id)
{
	if (m->started)
		return;
	m->started = 1;
	msg_id(id, m->id, sizeof(m->id));
	event(m, "message_start",
	      json_pack("{s:s,s:{s:s,s:s,s:s,s:s,s:[],s:n,s:n,s:{s:i,s:i}}}", "type", "message_start",
			"message", "id", m->id, "type", "message", "role", "assistant", "model", m->model,
			"content", "stop_reason", "stop_sequence", "usage", "input_tokens", 0,
			"output_tokens", 0));
}

static void close_block(struct xl_msg_stream *m)
{
	if (!m->block_open)
		return;
	event(m, "content_block_stop", json_pack("{s:s,s:i}", "type", "content_block_stop", "index",
						 m->nblocks - 1));
	m->block_open = 0;
}

static void open_block(struct xl_msg_stream *m, json_t *block, int is_tool)
{
	close_block(m);
	event(m, "content_block_start", json_pack("{s:s,s:i,s:o}", "type", "content_block_start",
						  "index", m->nblocks, "content_block", block));
	m->nblocks++;
	m->block_open = 1;
	m->block_is_tool = is_tool;
}

static void chunk_text(struct xl_msg_stream *m, const char *text)
{
	if (!m->block_open || m->block_is_tool)
		open_block(m, json_pack("{s:s,s:s}", "type", "text", "text", ""), 0);
	event(m, "content_block_delta", json_pack("{s:s,s:i,s:{s:s,s:s}}", "type", "content_block_delta", "index",
						  m->nblocks - 1, "delta", "type", "text_delta", "text", text));
}

/* One tool-call delta: a new call opens a tool_use block, arguments go to its block. */
static void chunk_tool(struct xl_msg_stream *m, const json_t *tc)
{
	json_int_t k = json_integer_value(json_object_get(tc, "index"));
	const json_t *fn = json_object_get(tc, "function");
	const char *args = json_string_value(json_object_get(fn, "arguments"));
	const char *id = json_string_value(json_object_get(tc, "id"));

	if (k < 0 || k >= XL_BLOCKS_MAX)
		return;
	if (!m->tool_block[k] || id) {
		open_block(m, json_pack("{s:s,s:s,s:s,s:{}}", "type", "tool_use", "id", id ?: "toolu_jairouter", "name",
					json_string_value(json_object_get(fn, "name")) ?: "", "input"), 1);
		m->tool_block[k] = m->nblocks;
	}
	if (args && *args && m->tool_block[k] == m->nblocks && m->block_open)
		event(m, "content_block_delta", json_pack("{s:s,s:i,s:{s:s,s:s}}", "type", "content_block_delta",
							  "index", m->nblocks - 1, "delta", "type", "input_json_delta",
							  "partial_json", args));
}

void xl_msg_stream_chunk(struct xl_msg_stream *m, const json_t *chunk)
{
	const json_t *c = json_array_get(json_object_get(chunk, "choices"), 0), *d, *tc;
	const json_t *usage = json_object_get(chunk, "usage");
	const char *text, *fr;
	size_t i;

	if (m->ended)
		return;
	start(m, json_string_value(json_object_get(chunk, "id")));
	if (json_is_object(usage)) {
		m->usage.prompt = json_integer_value(json_object_get(usage, "prompt_tokens"));
		m->usage.completion = json_integer_value(json_object_get(usage, "completion_tokens"));
		m->usage.have = 1;
	}
	if (!c)
		return;
	d = json_object_get(c, "delta");
	if ((text = json_string_value(json_object_get(d, "content"))) && *text)
		chunk_text(m, text);
	json_array_foreach(json_object_get(d, "tool_calls"), i, tc)
		chunk_tool(m, tc);
	if ((fr = json_string_value(json_object_get(c, "finish_reason"))))
		snprintf(m->stop_reason, sizeof(m->stop_reason), "%s", xl_finish_to_anthropic(fr));
}

void xl_msg_stream_end(struct xl_msg_stream *m)
{
	if (m->ended)
		return;
	start(m, NULL);
	close_block(m);
	m->ended = 1;
	event(m, "message_delta",
	      json_pack("{s:s,s:{s:s,s:n},s:{s:I,s:I}}", "type", "message_delta", "delta",
			"stop_reason", m->stop_reason[0] ? m->stop_reason : "end_turn", "stop_sequence",
			"usage", "input_tokens", (json_int_t)m->usage.prompt, "output_tokens",
			(json_int_t)m->usage.completion));
	event(m, "message_stop", json_pack("{s:s}", "type", "message_stop"));
}

void xl_msg_stream_error(struct xl_msg_stream *m, const struct xl_error *e)
{
	m->ended = 1;
	event(m, "error", xl_error_to_msg(e));
}
