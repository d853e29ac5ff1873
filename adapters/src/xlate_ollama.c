/*
 * xlate_ollama: OpenAI chat and embeddings <-> Ollama's native API (POST /api/chat,
 * POST /api/embed). Used when a model's provider kind is "ollama" and its endpoint's
 * api-version is "native" (otherwise Ollama's OpenAI-compatible /v1 is used as is).
 *
 * Messages keep their roles; image parts become the message's "images" (base64 without
 * the data URL prefix); tool calls carry their arguments as objects. Sampling
 * parameters go into "options" (num_predict for max_tokens). "stream" is always sent:
 * Ollama streams unless told not to. Its stream is NDJSON: one partial answer per line,
 * the last with done=true, done_reason and the counts (prompt_eval_count, eval_count).
 */
#include "provider.h"
#include "route.h"
#include "xlate_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A content's image_url parts as base64 strings appended to images (Ollama takes data
 * URLs only). 0, or -1 with e set. */
static int images_of(const json_t *content, json_t *images, struct xl_error *e)
{
	const json_t *part, *iu;
	const char *type, *url, *b64;
	char mime[64];
	size_t k;

	json_array_foreach(content, k, part) {
		type = json_string_value(json_object_get(part, "type"));
		if (!type || strcmp(type, "image_url") != 0)
			continue;
		iu = json_object_get(part, "image_url");
		url = json_is_string(iu) ? json_string_value(iu) : json_string_value(json_object_get(iu, "url"));
		if (!url || xl_data_url(url, mime, sizeof(mime), &b64) < 0) {
			xl_fail(e, 400, "invalid_request_error", "unsupported_content",
				"This model takes images as base64 data URLs only.");
			return -1;
		}
		json_array_append_new(images, json_string(b64));
	}
	return 0;
}

/* The tool calls with their arguments as objects appended to calls. 0, or -1 with e. */
static int calls_to_ollama(const json_t *m, json_t *calls, struct xl_error *e)
{
	const json_t *tc, *fn;
	json_t *args;
	size_t k;

	json_array_foreach(json_object_get(m, "tool_calls"), k, tc) {
		fn = json_object_get(tc, "function");
		if (!(args = xl_call_args(fn, k, e)))
			return -1;
		json_array_append_new(calls, json_pack("{s:{s:O,s:o}}", "function", "name", json_object_get(fn, "name"),
						       "arguments", args));
	}
	return 0;
}

static int convert_message(json_t *out, const json_t *m, size_t i, struct xl_error *e)
{
	const char *role = json_string_value(json_object_get(m, "role"));
	const json_t *content = json_object_get(m, "content");
	json_t *msg, *images = json_array(), *calls = json_array();
	char *text;
	int rc = -1;

	if (!role)
		xl_fail(e, 400, "invalid_request_error", "invalid_value", "messages[%zu] has no role.", i);
	if (role && images_of(content, images, e) == 0 && calls_to_ollama(m, calls, e) == 0) {
		text = xl_text_of(content);
		msg = json_pack("{s:s,s:s}", "role", strcmp(role, "developer") == 0 ? "system" : role, "content",
				text ? text : "");
		free(text);
		if (json_array_size(images))
			json_object_set(msg, "images", images);
		if (json_array_size(calls))
			json_object_set(msg, "tool_calls", calls);
		json_array_append_new(out, msg);
		rc = 0;
	}
	json_decref(images);
	json_decref(calls);
	return rc;
}

json_t *xl_ollama_request(const json_t *req, const char *model, struct xl_error *e)
{
	const json_t *messages = json_object_get(req, "messages"), *m, *rf = json_object_get(req, "response_format");
	json_t *msgs = json_array(), *opts = json_object(), *out, *v;
	json_int_t max = xl_max_tokens(req);
	const char *rft = json_string_value(json_object_get(rf, "type"));
	size_t i;

	if (!json_is_array(messages) || !json_array_size(messages)) {
		xl_fail(e, 400, "invalid_request_error", "invalid_value", "'messages' must be a non-empty array.");
		goto fail;
	}
	json_array_foreach(messages, i, m)
		if (convert_message(msgs, m, i, e) < 0)
			goto fail;
	xl_copy(opts, "temperature", req, "temperature");
	xl_copy(opts, "top_p", req, "top_p");
	xl_copy(opts, "seed", req, "seed");
	xl_copy(opts, "presence_penalty", req, "presence_penalty");
	xl_copy(opts, "frequency_penalty", req, "frequency_penalty");
	if (max > 0)
		json_object_set_new(opts, "num_predict", json_integer(max));
	if ((v = xl_stop_array(req)))
		json_object_set_new(opts, "stop", v);
	out = json_pack("{s:s,s:o,s:b}", "model", model, "messages", msgs, "stream",
			json_is_true(json_object_get(req, "stream")));
	if (json_object_size(opts))
		json_object_set_new(out, "options", opts);
	else
		json_decref(opts);
	xl_copy(out, "tools", req, "tools");
	if (rft && strcmp(rft, "json_object") == 0)
		json_object_set_new(out, "format", json_string("json"));
	else if (rft && strcmp(rft, "json_schema") == 0 &&
		 json_object_get(json_object_get(rf, "json_schema"), "schema"))
		json_object_set(out, "format", json_object_get(json_object_get(rf, "json_schema"), "schema"));
	return out;
fail:
	json_decref(msgs);
	json_decref(opts);
	return NULL;
}

static const char *finish_of(const char *r, int calls)
{
	if (calls)
		return "tool_calls";
	return r && strcmp(r, "length") == 0 ? "length" : "stop";
}

static void read_usage(const json_t *j, struct xl_usage *u)
{
	if (!json_is_integer(json_object_get(j, "eval_count")) &&
	    !json_is_integer(json_object_get(j, "prompt_eval_count")))
		return;
	u->prompt = json_integer_value(json_object_get(j, "prompt_eval_count"));
	u->completion = json_integer_value(json_object_get(j, "eval_count"));
	u->have = 1;
}

/* Tool calls of an Ollama message as OpenAI tool_calls (ids made up in order). */
static json_t *calls_of(const json_t *msg, int *n)
{
	json_t *out = json_array();
	const json_t *tc;
	size_t k;

	json_array_foreach(json_object_get(msg, "tool_calls"), k, tc) {
		const json_t *fn = json_object_get(tc, "function");
		char id[32], *args = xl_dump_object(json_object_get(fn, "arguments"));
		snprintf(id, sizeof(id), "call_%d", (*n)++);
		json_array_append_new(out, json_pack("{s:s,s:s,s:{s:O,s:s}}", "id", id, "type", "function",
						     "function", "name", json_object_get(fn, "name"),
						     "arguments", args ? args : "{}"));
		free(args);
	}
	return out;
}

json_t *xl_ollama_response(const json_t *resp, const struct xl_meta *m, struct xl_usage *u,
			   struct xl_error *e)
{
	const json_t *msg = json_object_get(resp, "message");
	json_t *out_msg, *calls;
	int n = 0;

	if (!json_is_object(msg)) {
		xl_fail(e, 502, "server_error", "bad_upstream_response", "The model provider's answer has no message.");
		return NULL;
	}
	calls = calls_of(msg, &n);
	out_msg = json_pack("{s:s,s:O}", "role", "assistant", "content",
			    json_object_get(msg, "content") ?: json_null());
	if (json_array_size(calls))
		json_object_set(out_msg, "tool_calls", calls);
	json_decref(calls);
	read_usage(resp, u);
	return json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:s}],s:o}", "id", m->id, "object",
			 "chat.completion", "created", (json_int_t)m->created, "model", m->model,
			 "choices", "index", 0, "message", out_msg, "finish_reason",
			 finish_of(json_string_value(json_object_get(resp, "done_reason")), n > 0),
			 "usage", xl_usage_json(u));
}

/* One line's message: its text and tool calls as chunks, then the end when done. */
static void stream_line(struct xl_stream *s, const json_t *j)
{
	const json_t *msg = json_object_get(j, "message"), *c, *fn;
	const char *t = json_string_value(json_object_get(msg, "content"));
	int n = s->ntools;
	json_t *calls = calls_of(msg, &n);
	size_t k;

	xl_stream_start(s);
	if (t && *t)
		xl_emit_text(s, t, strlen(t));
	json_array_foreach(calls, k, c) {
		fn = json_object_get(c, "function");
		xl_emit_tool(s, s->ntools++, json_string_value(json_object_get(c, "id")),
			     json_string_value(json_object_get(fn, "name")), json_string_value(json_object_get(fn, "arguments")));
	}
	json_decref(calls);
	if (json_is_true(json_object_get(j, "done"))) {
		read_usage(j, &s->usage);
		snprintf(s->finish, sizeof(s->finish), "%s",
			 finish_of(json_string_value(json_object_get(j, "done_reason")), s->ntools > 0));
		xl_stream_end(s);
	}
}

int xl_stream_ollama(struct xl_stream *s, const char *line, size_t len)
{
	const char *err;
	json_t *j;

	if (s->failed)
		return -1;
	if (!(j = json_loadb(line, len, 0, NULL))) {
		xl_fail(&s->err, 502, "server_error", "bad_upstream_stream",
			"The model provider sent a stream line that is not JSON.");
		s->failed = 1;
		return -1;
	}
	if ((err = json_string_value(json_object_get(j, "error")))) {
		xl_fail(&s->err, 502, "server_error", "upstream_error",
			"The model provider (ollama) failed during the stream: %.180s", err);
		json_decref(j);
		s->failed = 1;
		return -1;
	}
	stream_line(s, j);
	json_decref(j);
	return 0;
}

json_t *xl_ollama_embed_request(const json_t *req, const char *model, struct xl_error *e)
{
	const json_t *input = json_object_get(req, "input");

	if (!json_is_string(input) && !(json_is_array(input) && json_array_size(input))) {
		xl_fail(e, 400, "invalid_request_error", "invalid_value",
			"'input' must be a string or a non-empty array of strings.");
		return NULL;
	}
	return json_pack("{s:s,s:O}", "model", model, "input", input);
}

json_t *xl_ollama_embed_response(const json_t *resp, const char *model, struct xl_error *e)
{
	const json_t *embs = json_object_get(resp, "embeddings"), *em;
	json_t *data = json_array();
	json_int_t pt = json_integer_value(json_object_get(resp, "prompt_eval_count"));
	size_t i;

	if (!json_is_array(embs)) {
		xl_fail(e, 502, "server_error", "bad_upstream_response", "The model provider's answer has no embeddings.");
		json_decref(data);
		return NULL;
	}
	json_array_foreach(embs, i, em)
		json_array_append_new(data, json_pack("{s:s,s:I,s:O}", "object", "embedding", "index",
						      (json_int_t)i, "embedding", em));
	return json_pack("{s:s,s:o,s:s,s:{s:I,s:I}}", "object", "list", "data", data, "model", model,
			 "usage", "prompt_tokens", pt, "total_tokens", pt);
}

/* ---- the entry ----------------------------------------------------------------------- */

static json_t *ollama_build(const struct prov_call *c, struct up_request *u, struct xl_error *e)
{
	const char *path;
	json_t *body;

	if (u->op == UP_CHAT) {
		body = xl_ollama_request(c->req, c->route->model, e);
		path = "/api/chat";
	} else {
		u->stream = 0;
		body = xl_ollama_embed_request(c->req, c->route->model, e);
		path = "/api/embed";
	}
	if (body && up_url(u, c->base, "%s", path) < 0)
		return xl_url_failed(body, e);
	return body;
}

static json_t *ollama_answer(json_t *resp, const struct prov_answer *a, struct xl_usage *u,
			     struct xl_error *e)
{
	if (a->op == UP_EMBED)
		return xl_ollama_embed_response(resp, a->meta->model, e);
	return xl_ollama_response(resp, a->meta, u, e);
}

static int ollama_event(struct xl_stream *s, const struct prov_event *ev)
{
	return xl_stream_ollama(s, ev->data, ev->len);
}

const struct provider prov_ollama = {
	.default_url = "http://127.0.0.1:11434",
	.framing = PROV_NDJSON,
	.ops = PROV_OP(UP_CHAT) | PROV_OP(UP_EMBED),
	.auth_header = "Authorization",
	.auth_scheme = "Bearer ",
	.request = ollama_build,
	.response = ollama_answer,
	.event = ollama_event,
};
