/*
 * xlate_responses: Responses API clients (POST /v1/responses) in front of a model whose
 * provider does not serve that API (Anthropic, Gemini, Bedrock, Cohere, Ollama's native
 * API, Azure deployments): the request becomes an OpenAI chat request (then translated
 * for the provider as usual), and the chat answer or its chunks become a response
 * object or the Responses API's typed events (response.created, .in_progress,
 * .output_item.added, .content_part.added, .output_text.delta, ...,
 * .function_call_arguments.delta, ..., .completed), each numbered by sequence_number.
 *
 * What survives (docs/api.md): text and image input, instructions, function tools and
 * tool_choice, function_call / function_call_output items, max_output_tokens,
 * temperature, top_p, parallel_tool_calls, user, text.format (json_object,
 * json_schema), metadata (echoed). What cannot: stored state (the response is not
 * stored: "store": false in the answer, previous_response_id refused), built-in tools
 * (web search, file search, code interpreter, computer use, MCP), reasoning items,
 * background mode: refused with a 400 naming the field.
 */
#include "xlate_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int refuse(struct xl_error *e, const char *param, const char *what)
{
	xl_fail(e, 400, "invalid_request_error", "unsupported_by_provider",
		"'%s': %s is not available for this model's provider through the gateway.", param, what);
	return -1;
}

/* One content part of an input message -> a chat content part (new reference). */
static json_t *part_of(const json_t *p, size_t i, struct xl_error *e)
{
	const char *type = json_string_value(json_object_get(p, "type"));
	const json_t *img = json_object_get(p, "image_url");
	const char *url = json_is_string(img) ? json_string_value(img)
					      : json_string_value(json_object_get(img, "url"));

	if (type && (strcmp(type, "input_text") == 0 || strcmp(type, "output_text") == 0) &&
	    json_is_string(json_object_get(p, "text")))
		return json_pack("{s:s,s:O}", "type", "text", "text", json_object_get(p, "text"));
	if (type && strcmp(type, "input_image") == 0 && url)
		return json_pack("{s:s,s:{s:s}}", "type", "image_url", "image_url", "url", url);
	xl_fail(e, 400, "invalid_request_error", "unsupported_by_provider",
		"input[%zu]: content parts of type '%s' are not available for this model's provider "
		"through the gateway.", i, type ? type : "?");
	return NULL;
}

static json_t *content_of(const json_t *content, size_t i, struct xl_error *e)
{
	json_t *parts, *p;
	const json_t *c;
	size_t k;

	if (json_is_string(content))
		return json_incref((json_t *)content);
	if (!json_is_array(content)) {
		xl_fail(e, 400, "invalid_request_error", "invalid_type",
			"input[%zu].content: expected a string or an array of content parts.", i);
		return NULL;
	}
	parts = json_array();
	json_array_foreach(content, k, c) {
		if (!(p = part_of(c, i, e))) {
			json_decref(parts);
			return NULL;
		}
		json_array_append_new(parts, p);
	}
	return parts;
}

/* The assistant message that collects consecutive function_call items. */
static json_t *calls_of(json_t *messages)
{
	json_t *last = json_array_get(messages, json_array_size(messages) - 1);
	const char *role = json_string_value(json_object_get(last, "role"));

	if (!role || strcmp(role, "assistant") != 0 || !json_is_array(json_object_get(last, "tool_calls"))) {
		last = json_pack("{s:s,s:n,s:[]}", "role", "assistant", "content", "tool_calls");
		json_array_append_new(messages, last);
	}
	return json_object_get(last, "tool_calls");
}

static int item_message(json_t *messages, const json_t *it, size_t i, struct xl_error *e)
{
	const char *role = json_string_value(json_object_get(it, "role"));
	json_t *content;

	if (!role || !(strcmp(role, "user") == 0 || strcmp(role, "assistant") == 0 ||
		       strcmp(role, "system") == 0 || strcmp(role, "developer") == 0)) {
		xl_fail(e, 400, "invalid_request_error", "invalid_value",
			"input[%zu].role: expected user, assistant, system or developer.", i);
		return -1;
	}
	if (!(content = content_of(json_object_get(it, "content"), i, e)))
		return -1;
	json_array_append_new(messages, json_pack("{s:s,s:o}", "role",
						  strcmp(role, "developer") == 0 ? "system" : role,
						  "content", content));
	return 0;
}

/* One input item. 0, or -1 with e set. */
static int input_item(json_t *messages, const json_t *it, size_t i, struct xl_error *e)
{
	const char *type = json_string_value(json_object_get(it, "type"));
	const json_t *out = json_object_get(it, "output");

	if (!json_is_object(it)) {
		xl_fail(e, 400, "invalid_request_error", "invalid_type", "input[%zu]: expected an object.", i);
		return -1;
	}
	if (!type || strcmp(type, "message") == 0)
		return item_message(messages, it, i, e);
	if ((strcmp(type, "function_call") == 0 || strcmp(type, "function_call_output") == 0) &&
	    !json_is_string(json_object_get(it, "call_id"))) {
		xl_fail(e, 400, "invalid_request_error", "missing_required_parameter",
			"input[%zu].call_id: expected a string.", i);
		return -1;
	}
	if (strcmp(type, "function_call") == 0 && (!json_is_string(json_object_get(it, "name")) ||
						    !json_is_string(json_object_get(it, "arguments")))) {
		xl_fail(e, 400, "invalid_request_error", "missing_required_parameter",
			"input[%zu]: a function_call needs a name and arguments (strings).", i);
		return -1;
	}
	if (strcmp(type, "function_call") == 0) {
		json_array_append_new(calls_of(messages),
				      json_pack("{s:O,s:s,s:{s:O,s:O}}", "id", json_object_get(it, "call_id"),
						"type", "function", "function", "name", json_object_get(it, "name"),
						"arguments", json_object_get(it, "arguments")));
		return 0;
	}
	if (strcmp(type, "function_call_output") == 0) {
		json_array_append_new(messages, json_pack("{s:s,s:O,s:s}", "role", "tool", "tool_call_id",
							  json_object_get(it, "call_id"), "content",
							  json_is_string(out) ? json_string_value(out) : ""));
		return 0;
	}
	xl_fail(e, 400, "invalid_request_error", "unsupported_by_provider",
		"input[%zu]: items of type '%s' are not available for this model's provider through "
		"the gateway.", i, type);
	return -1;
}

static json_t *messages_of(const json_t *req, struct xl_error *e)
{
	const json_t *input = json_object_get(req, "input"), *it;
	const json_t *ins = json_object_get(req, "instructions");
	json_t *messages = json_array();
	size_t i;

	if (json_is_string(ins))
		json_array_append_new(messages, json_pack("{s:s,s:O}", "role", "system", "content", ins));
	if (json_is_string(input)) {
		json_array_append_new(messages, json_pack("{s:s,s:O}", "role", "user", "content", input));
		return messages;
	}
	if (!json_is_array(input) || !json_array_size(input)) {
		xl_fail(e, 400, "invalid_request_error", "invalid_value",
			"'input': expected a string or a non-empty array of input items.");
		json_decref(messages);
		return NULL;
	}
	json_array_foreach(input, i, it) {
		if (input_item(messages, it, i, e) < 0) {
			json_decref(messages);
			return NULL;
		}
	}
	return messages;
}

/* Function tools -> chat tools; any other tool type is refused. */
static int tools_of(json_t *out, const json_t *req, struct xl_error *e)
{
	const json_t *tools = json_object_get(req, "tools"), *t, *tc = json_object_get(req, "tool_choice");
	const char *type;
	json_t *list;
	size_t i;

	if (!json_array_size(tools))
		return 0;
	list = json_array();
	json_object_set_new(out, "tools", list);
	json_array_foreach(tools, i, t) {
		type = json_string_value(json_object_get(t, "type"));
		if (!type || strcmp(type, "function") != 0)
			return refuse(e, "tools", type ? type : "this tool");
		if (!json_is_string(json_object_get(t, "name"))) {
			xl_fail(e, 400, "invalid_request_error", "missing_required_parameter",
				"tools[%zu].name: expected a string.", i);
			return -1;
		}
		json_array_append_new(list, json_pack("{s:s,s:{s:O,s:O*,s:O*}}", "type", "function", "function",
						      "name", json_object_get(t, "name"), "description",
						      json_object_get(t, "description"), "parameters",
						      json_object_get(t, "parameters")));
	}
	if (json_is_string(tc))
		json_object_set(out, "tool_choice", (json_t *)tc);
	else if (json_is_object(tc) && json_is_string(json_object_get(tc, "name")))
		json_object_set_new(out, "tool_choice", json_pack("{s:s,s:{s:O}}", "type", "function", "function",
								  "name", json_object_get(tc, "name")));
	return 0;
}

/* text.format -> response_format. */
static void format_of(json_t *out, const json_t *req)
{
	const json_t *f = json_object_get(json_object_get(req, "text"), "format");
	const char *type = json_string_value(json_object_get(f, "type"));

	if (!type || strcmp(type, "text") == 0)
		return;
	if (strcmp(type, "json_object") == 0)
		json_object_set_new(out, "response_format", json_pack("{s:s}", "type", "json_object"));
	else if (strcmp(type, "json_schema") == 0)
		json_object_set_new(out, "response_format",
				    json_pack("{s:s,s:{s:O*,s:O*,s:O*}}", "type", "json_schema", "json_schema", "name",
					      json_object_get(f, "name"), "schema", json_object_get(f, "schema"),
					      "strict", json_object_get(f, "strict")));
}

/* What is refused outright: state the gateway does not keep, modes it cannot offer. */
static int unsupported(const json_t *req, struct xl_error *e)
{
	const json_t *prev = json_object_get(req, "previous_response_id");

	if (prev && !json_is_null(prev))
		return refuse(e, "previous_response_id", "a stored previous response");
	if (json_is_true(json_object_get(req, "background")))
		return refuse(e, "background", "background mode");
	if (json_object_get(req, "conversation") && !json_is_null(json_object_get(req, "conversation")))
		return refuse(e, "conversation", "a stored conversation");
	return 0;
}

json_t *xl_resp_to_openai(const json_t *req, struct xl_error *e)
{
	json_t *out, *messages;

	if (unsupported(req, e) < 0 || !(messages = messages_of(req, e)))
		return NULL;
	out = json_pack("{s:O*,s:o}", "model", json_object_get(req, "model"), "messages", messages);
	if (tools_of(out, req, e) < 0) {
		json_decref(out);
		return NULL;
	}
	format_of(out, req);
	xl_copy(out, "max_tokens", req, "max_output_tokens");
	xl_copy(out, "temperature", req, "temperature");
	xl_copy(out, "top_p", req, "top_p");
	xl_copy(out, "parallel_tool_calls", req, "parallel_tool_calls");
	xl_copy(out, "user", req, "user");
	if (json_is_true(json_object_get(req, "stream"))) {
		json_object_set_new(out, "stream", json_true());
		json_object_set_new(out, "stream_options", json_pack("{s:b}", "include_usage", 1));
	}
	return out;
}

/* ---- answers ------------------------------------------------------------------------ */

static json_t *usage_of(const struct xl_usage *u)
{
	return json_pack("{s:I,s:{s:i},s:I,s:{s:i},s:I}", "input_tokens", (json_int_t)u->prompt,
			 "input_tokens_details", "cached_tokens", 0, "output_tokens", (json_int_t)u->completion,
			 "output_tokens_details", "reasoning_tokens", 0, "total_tokens",
			 (json_int_t)(u->prompt + u->completion));
}

/* The response object around output; the request's settings echoed as OpenAI does. */
static json_t *response_of(const struct xl_resp_meta *m, const char *status, const char *finish,
			   json_t *output, json_t *usage)
{
	const json_t *q = m->req;
	json_t *r = json_pack("{s:s,s:s,s:I,s:s,s:b,s:n,s:n,s:O*,s:O*,s:s,s:o,s:b,s:n,s:{s:n,s:n},s:b,s:O*,s:O*}",
			      "id", m->id, "object", "response", "created_at", (json_int_t)m->created,
			      "status", status, "background", 0, "error", "incomplete_details",
			      "instructions", json_object_get(q, "instructions"), "max_output_tokens",
			      json_object_get(q, "max_output_tokens"), "model", m->model, "output", output,
			      "parallel_tool_calls", !json_is_false(json_object_get(q, "parallel_tool_calls")),
			      "previous_response_id", "reasoning", "effort", "summary", "store", 0,
			      "temperature", json_object_get(q, "temperature"), "top_p", json_object_get(q, "top_p"));

	json_object_set_new(r, "text", json_object_get(q, "text") ? json_deep_copy(json_object_get(q, "text"))
								  : json_pack("{s:{s:s}}", "format", "type", "text"));
	json_object_set_new(r, "tools", json_object_get(q, "tools") ? json_deep_copy(json_object_get(q, "tools"))
								    : json_array());
	json_object_set_new(r, "tool_choice", json_object_get(q, "tool_choice")
						      ? json_deep_copy(json_object_get(q, "tool_choice"))
						      : json_string("auto"));
	json_object_set_new(r, "truncation", json_string("disabled"));
	json_object_set_new(r, "metadata", json_is_object(json_object_get(q, "metadata"))
						   ? json_deep_copy(json_object_get(q, "metadata")) : json_object());
	json_object_set_new(r, "usage", usage ? usage : json_null());
	if (finish && strcmp(status, "incomplete") == 0)
		json_object_set_new(r, "incomplete_details",
				    json_pack("{s:s}", "reason", strcmp(finish, "length") == 0 ? "max_output_tokens"
												: "content_filter"));
	return r;
}

/* A finish reason -> the response's status. */
static const char *status_of(const char *finish)
{
	return finish && (strcmp(finish, "length") == 0 || strcmp(finish, "content_filter") == 0) ? "incomplete"
												    : "completed";
}

static json_t *message_item(const char *id, const char *status, const char *text)
{
	json_t *content = text ? json_pack("[{s:s,s:s,s:[]}]", "type", "output_text", "text", text, "annotations")
			       : json_array();

	return json_pack("{s:s,s:s,s:s,s:s,s:o}", "id", id, "type", "message", "status", status, "role",
			 "assistant", "content", content);
}

static json_t *call_item(const char *id, const char *status, const char *call_id, const char *name,
			 const char *args)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "id", id, "type", "function_call", "status", status,
			 "call_id", call_id, "name", name, "arguments", args);
}

json_t *xl_openai_to_resp(const json_t *chat, const struct xl_resp_meta *m)
{
	const json_t *c = json_array_get(json_object_get(chat, "choices"), 0), *u = json_object_get(chat, "usage");
	const json_t *msg = json_object_get(c, "message"), *tc;
	const char *finish = json_string_value(json_object_get(c, "finish_reason"));
	const char *text = json_string_value(json_object_get(msg, "content"));
	struct xl_usage usage = { json_integer_value(json_object_get(u, "prompt_tokens")),
				  json_integer_value(json_object_get(u, "completion_tokens")), 1 };
	json_t *output = json_array();
	char id[160];
	size_t i;

	if (text && *text) {
		snprintf(id, sizeof(id), "msg_%s", m->id + 5);
		json_array_append_new(output, message_item(id, "completed", text));
	}
	json_array_foreach(json_object_get(msg, "tool_calls"), i, tc) {
		const json_t *fn = json_object_get(tc, "function");
		const char *call_id = json_string_value(json_object_get(tc, "id"));

		snprintf(id, sizeof(id), "fc_%s_%zu", m->id + 5, i);
		json_array_append_new(output, call_item(id, "completed", call_id ? call_id : id,
							json_string_value(json_object_get(fn, "name")) ?: "",
							json_string_value(json_object_get(fn, "arguments")) ?: "{}"));
	}
	return response_of(m, status_of(finish), finish, output, usage_of(&usage));
}

/* ---- streams ------------------------------------------------------------------------ */

static void emit(struct xl_resp_stream *s, const char *type, json_t *ev)
{
	char *data;

	json_object_set_new(ev, "type", json_string(type));
	json_object_set_new(ev, "sequence_number", json_integer(s->seq++));
	data = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	if (!data)
		abort(); /* out of memory: as xalloc */
	s->out(s->arg, "event: ", 7);
	s->out(s->arg, type, strlen(type));
	s->out(s->arg, "\ndata: ", 7);
	s->out(s->arg, data, strlen(data));
	s->out(s->arg, "\n\n", 2);
	free(data);
}

/* The output items so far, as the final response holds them. */
static json_t *output_of(const struct xl_resp_stream *s, const char *status)
{
	json_t *out = json_array();

	for (int i = 0; i < s->nitems; i++) {
		const struct xl_resp_item *it = &s->items[i];

		json_array_append_new(out, it->is_call ? call_item(it->id, status, it->call_id, it->name,
								    it->text ? it->text : "")
						       : message_item(it->id, status, it->text ? it->text : ""));
	}
	return out;
}

static void start(struct xl_resp_stream *s)
{
	json_t *r;

	if (s->started)
		return;
	s->started = 1;
	r = response_of(&s->meta, "in_progress", NULL, json_array(), NULL);
	emit(s, "response.created", json_pack("{s:O}", "response", r));
	emit(s, "response.in_progress", json_pack("{s:o}", "response", r));
}

/* Closes the open item: its .done events. */
static void close_item(struct xl_resp_stream *s)
{
	struct xl_resp_item *it = s->open >= 0 ? &s->items[s->open] : NULL;
	const char *t;

	if (!it)
		return;
	t = it->text ? it->text : "";
	if (it->is_call) {
		emit(s, "response.function_call_arguments.done",
		     json_pack("{s:s,s:i,s:s}", "item_id", it->id, "output_index", s->open, "arguments", t));
		emit(s, "response.output_item.done", json_pack("{s:i,s:o}", "output_index", s->open, "item",
							       call_item(it->id, "completed", it->call_id, it->name, t)));
	} else {
		emit(s, "response.output_text.done", json_pack("{s:s,s:i,s:i,s:s,s:[]}", "item_id", it->id,
							       "output_index", s->open, "content_index", 0,
							       "text", t, "logprobs"));
		emit(s, "response.content_part.done",
		     json_pack("{s:s,s:i,s:i,s:{s:s,s:s,s:[]}}", "item_id", it->id, "output_index", s->open,
			       "content_index", 0, "part", "type", "output_text", "text", t, "annotations"));
		emit(s, "response.output_item.done",
		     json_pack("{s:i,s:o}", "output_index", s->open, "item", message_item(it->id, "completed", t)));
	}
	s->open = -1;
}

/* A new output item (the previous one closed). NULL when XL_RESP_ITEMS_MAX items exist:
 * further text or calls are dropped from the stream (the usage still counts them). */
static struct xl_resp_item *open_item(struct xl_resp_stream *s, int is_call, const char *call_id,
				      const char *name)
{
	struct xl_resp_item *it;

	close_item(s);
	if (s->nitems >= XL_RESP_ITEMS_MAX)
		return NULL;
	it = &s->items[s->nitems];
	memset(it, 0, sizeof(*it));
	it->is_call = is_call;
	snprintf(it->id, sizeof(it->id), "%s_%s_%d", is_call ? "fc" : "msg", s->meta.id + 5, s->nitems);
	snprintf(it->call_id, sizeof(it->call_id), "%s", call_id ? call_id : it->id);
	snprintf(it->name, sizeof(it->name), "%s", name ? name : "");
	s->open = s->nitems++;
	if (is_call) {
		emit(s, "response.output_item.added",
		     json_pack("{s:i,s:o}", "output_index", s->open, "item",
			       call_item(it->id, "in_progress", it->call_id, it->name, "")));
	} else {
		emit(s, "response.output_item.added", json_pack("{s:i,s:o}", "output_index", s->open, "item",
								message_item(it->id, "in_progress", NULL)));
		emit(s, "response.content_part.added",
		     json_pack("{s:s,s:i,s:i,s:{s:s,s:s,s:[]}}", "item_id", it->id, "output_index", s->open,
			       "content_index", 0, "part", "type", "output_text", "text", "", "annotations"));
	}
	return it;
}

static void chunk_text(struct xl_resp_stream *s, const char *text)
{
	struct xl_resp_item *it = s->open >= 0 && !s->items[s->open].is_call ? &s->items[s->open]
									     : open_item(s, 0, NULL, NULL);

	if (!it)
		return;
	xl_append_text(&it->text, &it->len, text);
	emit(s, "response.output_text.delta", json_pack("{s:s,s:i,s:i,s:s,s:[]}", "item_id", it->id, "output_index",
							s->open, "content_index", 0, "delta", text, "logprobs"));
}

/* One tool-call delta: a call with an id opens a function_call item. */
static void chunk_tool(struct xl_resp_stream *s, const json_t *tc)
{
	const json_t *fn = json_object_get(tc, "function");
	const char *id = json_string_value(json_object_get(tc, "id"));
	const char *args = json_string_value(json_object_get(fn, "arguments"));
	struct xl_resp_item *it = s->open >= 0 && s->items[s->open].is_call ? &s->items[s->open] : NULL;

	if (id || !it)
		it = open_item(s, 1, id, json_string_value(json_object_get(fn, "name")));
	if (!it || !args || !*args)
		return;
	xl_append_text(&it->text, &it->len, args);
	emit(s, "response.function_call_arguments.delta",
	     json_pack("{s:s,s:i,s:s}", "item_id", it->id, "output_index", s->open, "delta", args));
}

void xl_resp_stream_init(struct xl_resp_stream *s, const struct xl_resp_meta *m, xl_bytes_fn out, void *arg)
{
	memset(s, 0, sizeof(*s));
	s->meta = *m;
	s->open = -1;
	s->out = out;
	s->arg = arg;
}

void xl_resp_stream_chunk(struct xl_resp_stream *s, const json_t *chunk)
{
	const json_t *c = json_array_get(json_object_get(chunk, "choices"), 0), *d, *tc;
	const json_t *usage = json_object_get(chunk, "usage");
	const char *text, *fr;
	size_t i;

	if (s->ended)
		return;
	start(s);
	if (json_is_object(usage)) {
		s->usage.prompt = json_integer_value(json_object_get(usage, "prompt_tokens"));
		s->usage.completion = json_integer_value(json_object_get(usage, "completion_tokens"));
		s->usage.have = 1;
	}
	if (!c)
		return;
	d = json_object_get(c, "delta");
	if ((text = json_string_value(json_object_get(d, "content"))) && *text)
		chunk_text(s, text);
	json_array_foreach(json_object_get(d, "tool_calls"), i, tc)
		chunk_tool(s, tc);
	if ((fr = json_string_value(json_object_get(c, "finish_reason"))))
		snprintf(s->finish, sizeof(s->finish), "%s", fr);
}

void xl_resp_stream_end(struct xl_resp_stream *s)
{
	const char *status = status_of(s->finish);
	json_t *r;

	if (s->ended)
		return;
	start(s);
	close_item(s);
	s->ended = 1;
	r = response_of(&s->meta, status, s->finish, output_of(s, "completed"), usage_of(&s->usage));
	emit(s, strcmp(status, "completed") == 0 ? "response.completed" : "response.incomplete",
	     json_pack("{s:o}", "response", r));
}

void xl_resp_stream_error(struct xl_resp_stream *s, const struct xl_error *e)
{
	s->ended = 1;
	emit(s, "error", json_pack("{s:s,s:s,s:n}", "code", e->code ? e->code : e->type, "message", e->message,
				   "param"));
}

void xl_resp_stream_free(struct xl_resp_stream *s)
{
	for (int i = 0; i < s->nitems; i++)
		free(s->items[i].text);
	s->nitems = 0;
}
