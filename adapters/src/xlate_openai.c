/*
 * xlate_openai: the OpenAI-compatible family (OpenAI, Azure OpenAI, vLLM, Ollama,
 * GPUStack, Xinference, LocalAI, DashScope, Hunyuan, Hugging Face TGI) and Cohere's
 * chat v2, whose messages are OpenAI's almost as they are.
 *
 * OpenAI-compatible requests keep every field the client sent (only "model" changes);
 * streamed ones that must be metered get stream_options.include_usage, and the extra
 * usage-only chunk this asks for is dropped again when the client did not want it.
 */
#include "xlate_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *xl_openai_request(const json_t *req, const char *model, int meter, int *added,
			  struct xl_error *e)
{
	json_t *out = json_deep_copy(req), *so;

	*added = 0;
	if (!out) {
		xl_fail(e, 500, "server_error", "gateway_error", "Out of memory.");
		return NULL;
	}
	json_object_set_new(out, "model", json_string(model));
	if (meter && json_is_true(json_object_get(req, "stream"))) {
		so = json_object_get(out, "stream_options");
		if (!json_is_object(so)) {
			so = json_object();
			json_object_set_new(out, "stream_options", so);
		}
		if (!json_is_true(json_object_get(so, "include_usage"))) {
			json_object_set_new(so, "include_usage", json_true());
			*added = 1;
		}
	}
	return out;
}

void xl_openai_response(json_t *resp, const struct xl_meta *m, struct xl_usage *u)
{
	const json_t *usage = json_object_get(resp, "usage");

	if (json_is_object(usage)) {
		u->prompt = json_integer_value(json_object_get(usage, "prompt_tokens"));
		u->completion = json_integer_value(json_object_get(usage, "completion_tokens"));
		u->have = 1;
	}
	if (m->model && json_is_string(json_object_get(resp, "model")))
		json_object_set_new(resp, "model", json_string(m->model));
}

/* A chunk from an OpenAI-compatible server: usage read, the public model name set,
 * the usage-only chunk dropped when we asked for it and the client did not. */
int xl_stream_openai(struct xl_stream *s, json_t *j);
int xl_stream_openai(struct xl_stream *s, json_t *j)
{
	const json_t *usage = json_object_get(j, "usage"), *choices = json_object_get(j, "choices"), *c;
	const json_t *err = json_object_get(j, "error");
	size_t i;

	if (json_is_object(err)) {
		xl_fail(&s->err, 502, "server_error", "upstream_error",
			"The model provider failed during the stream: %.180s",
			json_string_value(json_object_get(err, "message")) ?: "no message");
		return -1;
	}
	if (json_is_object(usage)) {
		s->usage.prompt = json_integer_value(json_object_get(usage, "prompt_tokens"));
		s->usage.completion = json_integer_value(json_object_get(usage, "completion_tokens"));
		s->usage.have = 1;
	}
	json_array_foreach(choices, i, c) {
		const json_t *d = json_object_get(c, "delta");
		const char *t = json_string_value(json_object_get(d, "content"));
		if (t)
			s->completion_chars += (int64_t)strlen(t);
	}
	if (s->strip_usage && json_is_object(usage)) {
		if (!json_array_size(choices))
			return 0; /* the usage-only chunk we asked for */
		json_object_del(j, "usage");
	}
	if (json_is_string(json_object_get(j, "model")))
		json_object_set_new(j, "model", json_string(s->model));
	s->emit(s->arg, j);
	return 0;
}

/* ---- Cohere chat v2 ------------------------------------------------------------------ */

json_t *xl_cohere_request(const json_t *req, const char *model, struct xl_error *e)
{
	const json_t *messages = json_object_get(req, "messages");
	json_t *out, *v;
	json_int_t max = xl_max_tokens(req);

	if (!json_is_array(messages) || !json_array_size(messages)) {
		xl_fail(e, 400, "invalid_request_error", "invalid_value",
			"'messages' must be a non-empty array.");
		return NULL;
	}
	out = json_pack("{s:s,s:O}", "model", model, "messages", messages);
	xl_copy(out, "stream", req, "stream");
	xl_copy(out, "temperature", req, "temperature");
	xl_copy(out, "p", req, "top_p");
	xl_copy(out, "seed", req, "seed");
	xl_copy(out, "frequency_penalty", req, "frequency_penalty");
	xl_copy(out, "presence_penalty", req, "presence_penalty");
	xl_copy(out, "tools", req, "tools");
	if (max > 0)
		json_object_set_new(out, "max_tokens", json_integer(max));
	if ((v = xl_stop_array(req)))
		json_object_set_new(out, "stop_sequences", v);
	if (json_is_string(json_object_get(req, "tool_choice"))) {
		const char *tc = json_string_value(json_object_get(req, "tool_choice"));
		if (strcmp(tc, "required") == 0)
			json_object_set_new(out, "tool_choice", json_string("REQUIRED"));
		else if (strcmp(tc, "none") == 0)
			json_object_set_new(out, "tool_choice", json_string("NONE"));
	}
	return out;
}

static const char *cohere_finish(const char *r)
{
	if (!r || strcmp(r, "COMPLETE") == 0 || strcmp(r, "STOP_SEQUENCE") == 0)
		return "stop";
	if (strcmp(r, "MAX_TOKENS") == 0)
		return "length";
	if (strcmp(r, "TOOL_CALL") == 0)
		return "tool_calls";
	return "stop";
}

static void cohere_usage(const json_t *usage, struct xl_usage *u)
{
	const json_t *t = json_object_get(usage, "tokens");

	if (!json_is_object(t))
		t = json_object_get(usage, "billed_units");
	if (!json_is_object(t))
		return;
	u->prompt = (int64_t)json_number_value(json_object_get(t, "input_tokens"));
	u->completion = (int64_t)json_number_value(json_object_get(t, "output_tokens"));
	u->have = 1;
}

json_t *xl_cohere_response(const json_t *resp, const struct xl_meta *m, struct xl_usage *u,
			   struct xl_error *e)
{
	const json_t *msg = json_object_get(resp, "message");
	json_t *out_msg;
	char *text;

	if (!json_is_object(msg)) {
		xl_fail(e, 502, "server_error", "bad_upstream_response",
			"The model provider's answer has no message.");
		return NULL;
	}
	text = xl_text_of(json_object_get(msg, "content"));
	out_msg = json_pack("{s:s,s:s}", "role", "assistant", "content", text ? text : "");
	free(text);
	if (json_array_size(json_object_get(msg, "tool_calls")))
		json_object_set(out_msg, "tool_calls", json_object_get(msg, "tool_calls"));
	cohere_usage(json_object_get(resp, "usage"), u);
	return json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:s}],s:o}", "id",
			 json_string_value(json_object_get(resp, "id")) ?: m->id, "object",
			 "chat.completion", "created", (json_int_t)m->created, "model", m->model,
			 "choices", "index", 0, "message", out_msg, "finish_reason",
			 cohere_finish(json_string_value(json_object_get(resp, "finish_reason"))),
			 "usage", xl_usage_json(u));
}

int xl_stream_cohere(struct xl_stream *s, const json_t *j);
int xl_stream_cohere(struct xl_stream *s, const json_t *j)
{
	const char *type = json_string_value(json_object_get(j, "type"));
	const json_t *dm = json_object_get(json_object_get(j, "delta"), "message");
	json_int_t index = json_integer_value(json_object_get(j, "index"));

	if (!type)
		return 0;
	if (strcmp(type, "message-start") == 0) {
		xl_stream_start(s);
	} else if (strcmp(type, "content-delta") == 0) {
		const char *t = json_string_value(json_object_get(json_object_get(dm, "content"), "text"));
		if (t)
			xl_emit_text(s, t, strlen(t));
	} else if (strcmp(type, "tool-call-start") == 0 || strcmp(type, "tool-call-delta") == 0) {
		const json_t *tc = json_object_get(dm, "tool_calls"), *fn = json_object_get(tc, "function");
		int start = type[10] == 's';
		xl_emit_tool(s, (int)index, start ? json_string_value(json_object_get(tc, "id")) : NULL,
			     start ? json_string_value(json_object_get(fn, "name")) : NULL,
			     json_string_value(json_object_get(fn, "arguments")) ?: "");
		if (start && index + 1 > s->ntools)
			s->ntools = (int)index + 1;
	} else if (strcmp(type, "message-end") == 0) {
		const json_t *d = json_object_get(j, "delta");
		snprintf(s->finish, sizeof(s->finish), "%s",
			 cohere_finish(json_string_value(json_object_get(d, "finish_reason"))));
		cohere_usage(json_object_get(d, "usage"), &s->usage);
		xl_stream_end(s);
	}
	return 0;
}
