/*
 * xlate_cohere: OpenAI chat <-> Cohere's chat v2 (POST /v2/chat), whose messages are
 * OpenAI's almost as they are, and OpenAI embeddings <-> Cohere's embed v2 (POST
 * /v2/embed, float vectors, input_type "search_document"): the entry prov_cohere.
 */
#include "provider.h"
#include "route.h"
#include "xlate_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int cohere_sse(struct xl_stream *s, const char *event, json_t *j)
{
	const char *type = json_string_value(json_object_get(j, "type"));
	const json_t *dm = json_object_get(json_object_get(j, "delta"), "message");
	json_int_t index = json_integer_value(json_object_get(j, "index"));

	(void)event;
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

/* ---- Cohere embed v2 ----------------------------------------------------------------- */

#define COHERE_EMBED_MAX 96 /* texts per request (Cohere's limit) */

json_t *xl_cohere_embed_request(const json_t *req, const char *model, struct xl_error *e)
{
	json_t *texts = xl_embed_texts(req, COHERE_EMBED_MAX, e), *out;

	if (!texts)
		return NULL;
	out = json_pack("{s:s,s:o,s:s,s:[s]}", "model", model, "texts", texts, "input_type", "search_document",
			"embedding_types", "float");
	xl_copy(out, "output_dimension", req, "dimensions");
	return out;
}

json_t *xl_cohere_embed_response(const json_t *resp, const char *model, struct xl_usage *u,
				 struct xl_error *e)
{
	const json_t *emb = json_object_get(resp, "embeddings");
	const json_t *billed = json_object_get(json_object_get(resp, "meta"), "billed_units");
	json_int_t tokens = json_integer_value(json_object_get(billed, "input_tokens"));

	u->prompt = tokens;
	u->completion = 0;
	u->have = json_is_integer(json_object_get(billed, "input_tokens"));
	/* v2 with embedding_types: {"float": [[...]]}; v1: [[...]] */
	return xl_embed_list(json_incref(json_is_object(emb) ? json_object_get(emb, "float") : (json_t *)emb), model,
			     tokens, e);
}

/* ---- the entry ----------------------------------------------------------------------- */

static json_t *cohere_build(const struct prov_call *c, struct up_request *u, struct xl_error *e)
{
	json_t *body;

	if (u->op == UP_EMBED) {
		u->stream = 0;
		if ((body = xl_cohere_embed_request(c->req, c->route->model, e)) && up_url(u, c->base, "/v2/embed") < 0)
			return xl_url_failed(body, e);
		return body;
	}
	if ((body = xl_cohere_request(c->req, c->route->model, e)) && up_url(u, c->base, "/v2/chat") < 0)
		return xl_url_failed(body, e);
	return body;
}

static json_t *cohere_answer(json_t *resp, const struct prov_answer *a, struct xl_usage *u,
			     struct xl_error *e)
{
	if (a->op == UP_EMBED)
		return xl_cohere_embed_response(resp, a->meta->model, u, e);
	return xl_cohere_response(resp, a->meta, u, e);
}

const struct provider prov_cohere = {
	.default_url = "https://api.cohere.com",
	.framing = PROV_SSE,
	.ops = PROV_OP(UP_CHAT) | PROV_OP(UP_EMBED),
	.auth_header = "Authorization",
	.auth_scheme = "Bearer ",
	.request = cohere_build,
	.response = cohere_answer,
	.sse = cohere_sse,
};
