/*
 * xlate_gemini: OpenAI chat <-> Google Gemini generateContent / streamGenerateContent
 * (?alt=sse: one GenerateContentResponse per SSE event, the stream ends when the
 * connection does) and embedContent / batchEmbedContents.
 *
 * Roles: system/developer -> systemInstruction; assistant -> "model"; tool results ->
 * functionResponse parts of a user turn, named after the assistant's call of that id.
 * Gemini gives function calls whole (no ids): ids "call_<n>" are made up in order.
 */
#include "provider.h"
#include "route.h"
#include "xlate_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *text_block(const json_t *text)
{
	return json_pack("{s:O}", "text", text);
}

/* Inline bytes for a data URL, a file reference for any other URL. */
static json_t *image_block(const char *url, struct xl_error *e)
{
	char mime[64];
	const char *b64;

	if (!url) {
		xl_fail(e, 400, "invalid_request_error", "invalid_value", "An image_url part has no url.");
		return NULL;
	}
	if (xl_data_url(url, mime, sizeof(mime), &b64) == 0)
		return json_pack("{s:{s:s,s:s}}", "inlineData", "mimeType", mime, "data", b64);
	return json_pack("{s:{s:s}}", "fileData", "fileUri", url);
}

static const struct xl_blocks blocks = { "parts", text_block, image_block };

/* The function name of the assistant's tool call with this id. */
static const char *call_name(const json_t *messages, const char *id)
{
	size_t i, k;
	const json_t *m, *tc;

	json_array_foreach(messages, i, m) {
		json_array_foreach(json_object_get(m, "tool_calls"), k, tc) {
			const char *tid = json_string_value(json_object_get(tc, "id"));
			if (tid && id && strcmp(tid, id) == 0)
				return json_string_value(json_object_get(json_object_get(tc, "function"), "name"));
		}
	}
	return NULL;
}

static json_t *gen_config(const json_t *req)
{
	json_t *g = json_object(), *v;
	json_int_t max = xl_max_tokens(req);
	const json_t *rf = json_object_get(req, "response_format");
	const char *rft = json_string_value(json_object_get(rf, "type"));

	xl_copy(g, "temperature", req, "temperature");
	xl_copy(g, "topP", req, "top_p");
	xl_copy(g, "candidateCount", req, "n");
	xl_copy(g, "seed", req, "seed");
	xl_copy(g, "presencePenalty", req, "presence_penalty");
	xl_copy(g, "frequencyPenalty", req, "frequency_penalty");
	if (max > 0)
		json_object_set_new(g, "maxOutputTokens", json_integer(max));
	if ((v = xl_stop_array(req)))
		json_object_set_new(g, "stopSequences", v);
	if (rft && (strcmp(rft, "json_object") == 0 || strcmp(rft, "json_schema") == 0))
		json_object_set_new(g, "responseMimeType", json_string("application/json"));
	return g;
}

static int on_tool_call(void *arg, const json_t *call, const json_t *fn, json_t *args,
			struct xl_error *e)
{
	(void)call;
	(void)e;
	xl_push_grouped(((struct xl_turns *)arg)->msgs, "model", "parts",
			json_pack("{s:{s:O,s:o}}", "functionCall", "name", json_object_get(fn, "name"),
				  "args", args));
	return 0;
}

static int on_tool_result(void *arg, const json_t *msg, const char *text, struct xl_error *e)
{
	struct xl_turns *c = arg;
	const char *name = call_name(c->messages, json_string_value(json_object_get(msg, "tool_call_id")));
	json_t *resp = json_loads(text, 0, NULL);
	(void)e;

	if (!json_is_object(resp)) {
		json_decref(resp);
		resp = json_pack("{s:s}", "content", text);
	}
	xl_push_grouped(c->msgs, "user", "parts",
			json_pack("{s:{s:s,s:o}}", "functionResponse", "name", name ? name : "tool", "response", resp));
	return 0;
}

static const struct xl_walk walk = { xl_turns_system, xl_turns_user, xl_turns_assistant, on_tool_call,
				     on_tool_result };

json_t *xl_gemini_request(const json_t *req, struct xl_error *e)
{
	const json_t *messages = json_object_get(req, "messages"), *tools = json_object_get(req, "tools");
	json_t *contents = json_array(), *sys = json_array(), *out;
	const char *tc = json_string_value(json_object_get(req, "tool_choice"));
	size_t i;

	struct xl_turns c = { contents, sys, &blocks, "model", messages };

	if (xl_walk_messages(messages, &walk, &c, e) < 0)
		goto fail;
	out = json_pack("{s:o,s:o}", "contents", contents, "generationConfig", gen_config(req));
	if (json_array_size(sys))
		json_object_set_new(out, "systemInstruction", json_pack("{s:o}", "parts", sys));
	else
		json_decref(sys);
	if (json_array_size(tools)) {
		json_t *decls = json_array();
		const json_t *t;
		json_array_foreach(tools, i, t) {
			const json_t *fn = json_object_get(t, "function");
			json_t *d = json_pack("{s:O}", "name", json_object_get(fn, "name"));
			xl_copy(d, "description", fn, "description");
			xl_copy(d, "parameters", fn, "parameters");
			json_array_append_new(decls, d);
		}
		json_object_set_new(out, "tools", json_pack("[{s:o}]", "functionDeclarations", decls));
	}
	if (tc || json_is_object(json_object_get(req, "tool_choice"))) {
		const char *mode = !tc ? "ANY" : strcmp(tc, "none") == 0 ? "NONE"
					 : strcmp(tc, "required") == 0 ? "ANY" : "AUTO";
		json_t *fcc = json_pack("{s:s}", "mode", mode);
		if (!tc)
			json_object_set_new(fcc, "allowedFunctionNames",
					    json_pack("[O]", json_object_get(json_object_get(
								    json_object_get(req, "tool_choice"), "function"), "name")));
		json_object_set_new(out, "toolConfig", json_pack("{s:o}", "functionCallingConfig", fcc));
	}
	return out;
fail:
	json_decref(contents);
	json_decref(sys);
	return NULL;
}

static const char *finish_of(const char *r, int had_calls)
{
	if (had_calls)
		return "tool_calls";
	if (!r || strcmp(r, "STOP") == 0)
		return "stop";
	if (strcmp(r, "MAX_TOKENS") == 0)
		return "length";
	if (strcmp(r, "SAFETY") == 0 || strcmp(r, "RECITATION") == 0 || strcmp(r, "BLOCKLIST") == 0 ||
	    strcmp(r, "PROHIBITED_CONTENT") == 0 || strcmp(r, "SPII") == 0 ||
	    strcmp(r, "IMAGE_SAFETY") == 0)
		return "content_filter";
	return "stop";
}

static void read_usage(const json_t *resp, struct xl_usage *u)
{
	const json_t *um = json_object_get(resp, "usageMetadata");

	if (!json_is_object(um))
		return;
	u->prompt = json_integer_value(json_object_get(um, "promptTokenCount"));
	/* Thinking tokens are billed as output. */
	u->completion = json_integer_value(json_object_get(um, "candidatesTokenCount")) +
			json_integer_value(json_object_get(um, "thoughtsTokenCount"));
	u->have = 1;
}

/* One candidate's parts as an OpenAI message (thoughts left out); calls numbered from
 * *ncall on. */
static json_t *candidate_message(const json_t *c, size_t *ncall, int *had_calls)
{
	const json_t *parts = json_object_get(json_object_get(c, "content"), "parts"), *p;
	json_t *calls = json_array(), *msg;
	char *text = NULL, id[32], *args;
	size_t k, tl = 0;

	json_array_foreach(parts, k, p) {
		const char *t = json_string_value(json_object_get(p, "text"));
		const json_t *fc = json_object_get(p, "functionCall");
		if (json_is_true(json_object_get(p, "thought")))
			continue;
		if (t) {
			xl_append_text(&text, &tl, t);
		} else if (json_is_object(fc)) {
			args = xl_dump_object(json_object_get(fc, "args"));
			snprintf(id, sizeof(id), "call_%zu", (*ncall)++);
			json_array_append_new(calls, json_pack("{s:s,s:s,s:{s:O,s:s}}", "id", id, "type", "function",
							       "function", "name", json_object_get(fc, "name"),
							       "arguments", args ? args : "{}"));
			free(args);
		}
	}
	*had_calls = json_array_size(calls) > 0;
	msg = xl_assistant_message(text, calls);
	free(text);
	return msg;
}

/* No candidates: a blocked prompt (400) or a broken answer (502). */
static json_t *no_candidates(const json_t *resp, struct xl_error *e)
{
	const char *block = json_string_value(json_object_get(json_object_get(resp, "promptFeedback"), "blockReason"));

	if (block)
		xl_fail(e, 400, "invalid_request_error", "content_filter", "The model provider blocked the prompt (%s).",
			block);
	else
		xl_fail(e, 502, "server_error", "bad_upstream_response", "The model provider's answer has no candidates.");
	return NULL;
}

json_t *xl_gemini_response(const json_t *resp, const struct xl_meta *m, struct xl_usage *u,
			   struct xl_error *e)
{
	const json_t *cands = json_object_get(resp, "candidates"), *c, *index;
	json_t *choices, *msg;
	size_t i, ncall = 0;
	int calls;

	if (!json_is_array(cands) || !json_array_size(cands))
		return no_candidates(resp, e);
	choices = json_array();
	json_array_foreach(cands, i, c) {
		index = json_object_get(c, "index");
		msg = candidate_message(c, &ncall, &calls);
		json_array_append_new(choices, json_pack("{s:I,s:o,s:s}", "index",
							 json_is_integer(index) ? json_integer_value(index) : (json_int_t)i,
							 "message", msg, "finish_reason",
							 finish_of(json_string_value(json_object_get(c, "finishReason")), calls)));
	}
	read_usage(resp, u);
	return json_pack("{s:s,s:s,s:I,s:s,s:o,s:o}", "id",
			 json_string_value(json_object_get(resp, "responseId")) ?: m->id, "object", "chat.completion",
			 "created", (json_int_t)m->created, "model", m->model, "choices", choices, "usage",
			 xl_usage_json(u));
}

static int gemini_sse(struct xl_stream *s, const char *event, json_t *j)
{
	const json_t *c = json_array_get(json_object_get(j, "candidates"), 0), *p;
	const json_t *err = json_object_get(j, "error");
	const char *fr;
	size_t k;

	(void)event;
	if (json_is_object(err)) {
		xl_fail(&s->err, 502, "server_error", "upstream_error",
			"The model provider (gemini) failed during the stream: %.180s",
			json_string_value(json_object_get(err, "message")) ?: "no message");
		return -1;
	}
	read_usage(j, &s->usage);
	xl_stream_start(s);
	json_array_foreach(json_object_get(json_object_get(c, "content"), "parts"), k, p) {
		const char *t = json_string_value(json_object_get(p, "text"));
		const json_t *fc = json_object_get(p, "functionCall");
		if (json_is_true(json_object_get(p, "thought")))
			continue;
		if (t) {
			xl_emit_text(s, t, strlen(t));
		} else if (json_is_object(fc)) {
			char id[32], *args = xl_dump_object(json_object_get(fc, "args"));
			int idx = s->ntools++;
			snprintf(id, sizeof(id), "call_%d", idx);
			xl_emit_tool(s, idx, id, json_string_value(json_object_get(fc, "name")), args ? args : "{}");
			free(args);
		}
	}
	if ((fr = json_string_value(json_object_get(c, "finishReason"))))
		snprintf(s->finish, sizeof(s->finish), "%s", finish_of(fr, s->ntools > 0));
	return 0;
}

json_t *xl_gemini_embed_request(const json_t *req, const char *model, int *batch,
				struct xl_error *e)
{
	const json_t *input = json_object_get(req, "input"), *v;
	json_t *reqs;
	char name[160];
	size_t i;

	snprintf(name, sizeof(name), "models/%s", model);
	if (json_is_string(input)) {
		*batch = 0;
		return json_pack("{s:s,s:{s:[{s:O}]}}", "model", name, "content", "parts", "text", input);
	}
	if (!json_is_array(input) || !json_array_size(input)) {
		xl_fail(e, 400, "invalid_request_error", "invalid_value",
			"'input' must be a string or a non-empty array of strings.");
		return NULL;
	}
	*batch = 1;
	reqs = json_array();
	json_array_foreach(input, i, v) {
		if (!json_is_string(v)) {
			xl_fail(e, 400, "invalid_request_error", "invalid_value",
				"This model embeds text: 'input' must hold strings (token arrays are not supported).");
			json_decref(reqs);
			return NULL;
		}
		json_array_append_new(reqs, json_pack("{s:s,s:{s:[{s:O}]}}", "model", name, "content",
						      "parts", "text", v));
	}
	return json_pack("{s:o}", "requests", reqs);
}

json_t *xl_gemini_embed_response(const json_t *resp, const char *model, int batch,
				 struct xl_error *e)
{
	json_t *data = json_array();
	const json_t *embs = batch ? json_object_get(resp, "embeddings")
				   : json_pack("[O]", json_object_get(resp, "embedding")), *em;
	size_t i;

	json_array_foreach(embs, i, em) {
		const json_t *values = json_object_get(em, "values");
		if (!json_is_array(values)) {
			xl_fail(e, 502, "server_error", "bad_upstream_response",
				"The model provider's answer has no embedding values.");
			json_decref(data);
			if (!batch)
				json_decref((json_t *)embs);
			return NULL;
		}
		json_array_append_new(data, json_pack("{s:s,s:I,s:O}", "object", "embedding", "index",
						      (json_int_t)i, "embedding", values));
	}
	if (!batch)
		json_decref((json_t *)embs);
	/* Gemini does not count embedding tokens in its answer. */
	return json_pack("{s:s,s:o,s:s,s:{s:i,s:i}}", "object", "list", "data", data, "model", model,
			 "usage", "prompt_tokens", 0, "total_tokens", 0);
}

/* ---- the entry ----------------------------------------------------------------------- */

static json_t *gemini_build(const struct prov_call *c, struct up_request *u, struct xl_error *e)
{
	const char *verb;
	json_t *body;

	if (u->op == UP_CHAT) {
		body = xl_gemini_request(c->req, e);
		verb = u->stream ? "streamGenerateContent?alt=sse" : "generateContent";
	} else {
		u->stream = 0;
		body = xl_gemini_embed_request(c->req, c->route->model, &u->embed_batch, e);
		verb = u->embed_batch ? "batchEmbedContents" : "embedContent";
	}
	if (body && up_url(u, c->base, "/v1beta/models/%s:%s", c->model_enc, verb) < 0)
		return xl_url_failed(body, e);
	return body;
}

static json_t *gemini_answer(json_t *resp, const struct prov_answer *a, struct xl_usage *u,
			     struct xl_error *e)
{
	if (a->op == UP_EMBED)
		return xl_gemini_embed_response(resp, a->meta->model, a->embed_batch, e);
	return xl_gemini_response(resp, a->meta, u, e);
}

const struct provider prov_gemini = {
	.default_url = "https://generativelanguage.googleapis.com",
	.framing = PROV_SSE,
	.ops = PROV_OP(UP_CHAT) | PROV_OP(UP_EMBED),
	.auth_header = "x-goog-api-key",
	.request = gemini_build,
	.response = gemini_answer,
	.sse = gemini_sse,
};

/* ---- Gemini on Vertex AI ------------------------------------------------------------- */

/* The base URL names the project and the location:
 * https://LOCATION-aiplatform.googleapis.com/v1/projects/PROJECT/locations/LOCATION */
static json_t *vertex_build(const struct prov_call *c, struct up_request *u, struct xl_error *e)
{
	json_t *body = xl_gemini_request(c->req, e);

	if (body && up_url(u, c->base, "/publishers/google/models/%s:%s", c->model_enc,
			   u->stream ? "streamGenerateContent?alt=sse" : "generateContent") < 0)
		return xl_url_failed(body, e);
	return body;
}

static json_t *vertex_answer(json_t *resp, const struct prov_answer *a, struct xl_usage *u,
			     struct xl_error *e)
{
	return xl_gemini_response(resp, a->meta, u, e);
}

const struct provider prov_vertex_gemini = {
	XL_VERTEX_PROVIDER(vertex_build),
	.response = vertex_answer,
	.sse = gemini_sse,
};
