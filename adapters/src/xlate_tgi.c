/*
 * xlate_tgi: OpenAI chat <-> Hugging Face Text Generation Inference's native API (POST
 * /generate, POST /generate_stream): the entry prov_tgi, used when a model's provider
 * kind is "huggingface" and its endpoint's api-version is "native" or
 * "native-<template>" (otherwise TGI's OpenAI-compatible /v1 is forwarded as it is).
 *
 * TGI's native API takes one prompt string: the conversation is rendered into "inputs"
 * by a chat template named by the api-version ("native" is ChatML; "native-chatml",
 * "native-llama3", "native-zephyr"). When the server knows the model's own template,
 * its /v1/chat/completions is the better path (no api-version: forwarded as it is).
 *
 * Requests: {"inputs", "parameters": {"max_new_tokens", "temperature", "do_sample",
 * "top_p", "top_k", "repetition_penalty", "frequency_penalty", "seed", "stop",
 * "grammar", "details": true}}; text messages only (images, tools and n > 1: 400).
 * Answers: {"generated_text", "details": {"finish_reason", "generated_tokens",
 * "prefill", "tokens"}}; its prompt tokens are the x-prompt-tokens response header
 * (prefill is empty unless decoder_input_details is asked for). Streams: SSE events
 * {"index", "token": {"id", "text", "logprob", "special"}, "generated_text", "details"},
 * the last with "details": {"finish_reason", "generated_tokens", "input_length"}.
 * Errors: {"error", "error_type"} (validation 422, generation 424, overloaded 429),
 * also as a stream event.
 */
#include "provider.h"
#include "route.h"
#include "xlate_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A chat template: each message is role_open ROLE role_close CONTENT turn_end, after
 * begin; the prompt ends with the assistant's opening (the generation prompt). */
struct tgi_template {
	const char *name;
	const char *begin, *role_open, *role_close, *turn_end;
};

static const struct tgi_template templates[] = {
	{ "chatml", "", "<|im_start|>", "\n", "<|im_end|>\n" },
	{ "llama3", "<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>\n\n", "<|eot_id|>" },
	{ "zephyr", "", "<|", "|>\n", "</s>\n" },
};

/* The template an api-version names: "native" -> ChatML, "native-<name>"; NULL when
 * unknown. */
static const struct tgi_template *template_of(const char *api_version)
{
	const char *name = "chatml";

	if (api_version && strncmp(api_version, "native-", 7) == 0)
		name = api_version + 7;
	for (size_t i = 0; i < sizeof(templates) / sizeof(templates[0]); i++)
		if (strcmp(templates[i].name, name) == 0)
			return &templates[i];
	return NULL;
}

static void append_turn(char **p, size_t *len, const struct tgi_template *t, const char *role, const char *text)
{
	xl_append_text(p, len, t->role_open);
	xl_append_text(p, len, role);
	xl_append_text(p, len, t->role_close);
	xl_append_text(p, len, text);
	xl_append_text(p, len, t->turn_end);
}

/* The role a message is rendered with, or NULL after a 400. */
static const char *role_of(const json_t *m, size_t i, struct xl_error *e)
{
	const char *role = json_string_value(json_object_get(m, "role"));
	const json_t *content = json_object_get(m, "content"), *part;
	size_t k;

	if (!role || (strcmp(role, "system") && strcmp(role, "developer") && strcmp(role, "user") &&
		      strcmp(role, "assistant")) || json_object_get(m, "tool_calls")) {
		xl_fail(e, 400, "invalid_request_error", "unsupported_by_provider",
			"messages[%zu]: this model (TGI's native API) takes system, user and assistant text messages only.", i);
		return NULL;
	}
	if (!json_is_string(content) && !json_is_array(content) && !(json_is_null(content) && role[0] == 'a')) {
		xl_fail(e, 400, "invalid_request_error", "invalid_value", "messages[%zu] has no content.", i);
		return NULL;
	}
	json_array_foreach(content, k, part) {
		const char *type = json_string_value(json_object_get(part, "type"));
		if (!type || strcmp(type, "text") != 0) {
			xl_fail(e, 400, "invalid_request_error", "unsupported_by_provider",
				"messages[%zu]: this model (TGI's native API) takes text content only.", i);
			return NULL;
		}
	}
	return strcmp(role, "developer") == 0 ? "system" : role;
}

char *xl_tgi_prompt(const json_t *messages, const char *api_version, struct xl_error *e)
{
	const struct tgi_template *t = template_of(api_version);
	const json_t *m;
	char *out = NULL, *text;
	const char *role;
	size_t i, len = 0;

	if (!t) {
		xl_fail(e, 500, "server_error", "adapter_misconfigured",
			"The endpoint's api-version '%.40s' names no chat template (native, native-chatml, native-llama3, native-zephyr).",
			api_version ? api_version : "");
		return NULL;
	}
	if (!json_is_array(messages) || !json_array_size(messages)) {
		xl_fail(e, 400, "invalid_request_error", "invalid_value", "'messages' must be a non-empty array.");
		return NULL;
	}
	xl_append_text(&out, &len, t->begin);
	json_array_foreach(messages, i, m) {
		if (!(role = role_of(m, i, e))) {
			free(out);
			return NULL;
		}
		if (!(text = xl_text_of(json_object_get(m, "content"))))
			abort(); /* out of memory: as xalloc */
		append_turn(&out, &len, t, role, text);
		free(text);
	}
	xl_append_text(&out, &len, t->role_open);
	xl_append_text(&out, &len, "assistant");
	xl_append_text(&out, &len, t->role_close);
	return out;
}

/* response_format as TGI's grammar: {"type": "json", "value": schema}; NULL when none. */
static json_t *grammar_of(const json_t *req)
{
	const json_t *rf = json_object_get(req, "response_format");
	const char *type = json_string_value(json_object_get(rf, "type"));
	const json_t *schema = json_object_get(json_object_get(rf, "json_schema"), "schema");

	if (type && strcmp(type, "json_schema") == 0 && json_is_object(schema))
		return json_pack("{s:s,s:O}", "type", "json", "value", schema);
	if (type && strcmp(type, "json_object") == 0)
		return json_pack("{s:s,s:{s:s}}", "type", "json", "value", "type", "object");
	return NULL;
}

/* Sampling: TGI refuses temperature 0 and top_p 1 (both must be strictly inside their
 * range); OpenAI's temperature 0 is greedy decoding (do_sample false). */
static void sampling(json_t *params, const json_t *req)
{
	const json_t *temp = json_object_get(req, "temperature"), *top_p = json_object_get(req, "top_p");
	const json_t *top_k = json_object_get(req, "top_k"), *rp = json_object_get(req, "repetition_penalty");

	if (json_is_number(temp) && json_number_value(temp) > 0) {
		json_object_set(params, "temperature", (json_t *)temp);
		json_object_set_new(params, "do_sample", json_true());
	} else if (json_is_number(temp)) {
		json_object_set_new(params, "do_sample", json_false());
	}
	if (json_is_number(top_p) && json_number_value(top_p) > 0 && json_number_value(top_p) < 1)
		json_object_set(params, "top_p", (json_t *)top_p);
	if (json_is_integer(top_k) && json_integer_value(top_k) > 0)
		json_object_set(params, "top_k", (json_t *)top_k);
	if (json_is_number(rp) && json_number_value(rp) > 0)
		json_object_set(params, "repetition_penalty", (json_t *)rp);
	xl_copy(params, "frequency_penalty", req, "frequency_penalty");
	xl_copy(params, "seed", req, "seed");
}

json_t *xl_tgi_request(const json_t *req, const char *api_version, struct xl_error *e)
{
	const json_t *n = json_object_get(req, "n");
	json_t *params, *v;
	json_int_t max = xl_max_tokens(req);
	char *prompt;

	if (json_object_get(req, "tools") || (json_is_integer(n) && json_integer_value(n) > 1)) {
		xl_fail(e, 400, "invalid_request_error", "unsupported_by_provider",
			"This model (TGI's native API) takes neither tools nor n > 1 through the gateway.");
		return NULL;
	}
	if (!(prompt = xl_tgi_prompt(json_object_get(req, "messages"), api_version, e)))
		return NULL;
	params = json_pack("{s:b}", "details", 1);
	sampling(params, req);
	if (max > 0)
		json_object_set_new(params, "max_new_tokens", json_integer(max));
	if ((v = xl_stop_array(req)))
		json_object_set_new(params, "stop", v);
	if ((v = grammar_of(req)))
		json_object_set_new(params, "grammar", v);
	v = json_pack("{s:s,s:o}", "inputs", prompt, "parameters", params);
	free(prompt);
	return v;
}

/* TGI's finish reasons: length, eos_token, stop_sequence. */
static const char *finish_of(const char *r)
{
	return r && strcmp(r, "length") == 0 ? "length" : "stop";
}

/* A non-negative count from a header value; -1 when absent or not a number. */
static json_int_t header_count(const char *v)
{
	char *end;
	long long n;

	if (!v || !*v)
		return -1;
	n = strtoll(v, &end, 10);
	return *end || n < 0 ? -1 : (json_int_t)n;
}

/* Usage of an answer: completion from details.generated_tokens (else the
 * x-generated-tokens header), prompt from details.prefill when TGI filled it, else the
 * x-prompt-tokens header. Known only when both are. */
static void answer_usage(const json_t *details, const struct xl_tgi_headers *h, struct xl_usage *u)
{
	const json_t *gen = json_object_get(details, "generated_tokens");
	const json_t *prefill = json_object_get(details, "prefill");
	json_int_t prompt = -1, completion = json_is_integer(gen) ? json_integer_value(gen) : -1;

	if (json_is_array(prefill) && json_array_size(prefill))
		prompt = (json_int_t)json_array_size(prefill);
	if (prompt < 0)
		prompt = header_count(h->prompt_tokens);
	if (completion < 0)
		completion = header_count(h->generated_tokens);
	if (prompt < 0 || completion < 0)
		return;
	u->prompt = prompt;
	u->completion = completion;
	u->have = 1;
}

json_t *xl_tgi_response(const json_t *resp, const struct xl_meta *m, const struct xl_tgi_headers *h,
			struct xl_usage *u, struct xl_error *e)
{
	const json_t *text = json_object_get(resp, "generated_text");
	const json_t *details = json_object_get(resp, "details");

	if (!json_is_string(text)) {
		xl_fail(e, 502, "server_error", "bad_upstream_response", "The model provider's answer has no generated_text.");
		return NULL;
	}
	answer_usage(details, h, u);
	return json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:{s:s,s:O},s:s}],s:o}", "id", m->id, "object",
			 "chat.completion", "created", (json_int_t)m->created, "model", m->model, "choices",
			 "index", 0, "message", "role", "assistant", "content", text, "finish_reason",
			 finish_of(json_string_value(json_object_get(details, "finish_reason"))), "usage",
			 xl_usage_json(u));
}

/* One /generate_stream event: a token (special ones, as the end-of-sequence token, are
 * not text), and on the last the details (finish reason, counts). */
static int tgi_sse(struct xl_stream *s, const char *event, json_t *j)
{
	const json_t *token = json_object_get(j, "token"), *details = json_object_get(j, "details");
	const json_t *in = json_object_get(details, "input_length"), *gen = json_object_get(details, "generated_tokens");
	const char *t = json_string_value(json_object_get(token, "text"));

	(void)event;
	if (json_is_string(json_object_get(j, "error"))) {
		xl_fail(&s->err, 502, "server_error", "upstream_error",
			"The model provider (tgi) failed during the stream: %.40s: %.160s",
			json_string_value(json_object_get(j, "error_type")) ?: "error",
			json_string_value(json_object_get(j, "error")));
		return -1;
	}
	xl_stream_start(s);
	if (t && t[0] && !json_is_true(json_object_get(token, "special")))
		xl_emit_text(s, t, strlen(t));
	if (!json_is_object(details))
		return 0;
	snprintf(s->finish, sizeof(s->finish), "%s", finish_of(json_string_value(json_object_get(details, "finish_reason"))));
	if (json_is_integer(in) && json_is_integer(gen)) {
		s->usage.prompt = json_integer_value(in);
		s->usage.completion = json_integer_value(gen);
		s->usage.have = 1;
	}
	xl_stream_end(s);
	return 0;
}

/* ---- the entry ----------------------------------------------------------------------- */

static json_t *tgi_build(const struct prov_call *c, struct up_request *u, struct xl_error *e)
{
	json_t *body = xl_tgi_request(c->req, c->route->api_version, e);

	if (body && up_url(u, c->base, "%s", u->stream ? "/generate_stream" : "/generate") < 0)
		return xl_url_failed(body, e);
	return body;
}

static json_t *tgi_answer(json_t *resp, const struct prov_answer *a, struct xl_usage *u, struct xl_error *e)
{
	struct xl_tgi_headers h = { NULL, NULL };

	if (a->header) {
		h.prompt_tokens = a->header(a->header_arg, "x-prompt-tokens");
		h.generated_tokens = a->header(a->header_arg, "x-generated-tokens");
	}
	return xl_tgi_response(resp, a->meta, &h, u, e);
}

const struct provider prov_tgi = {
	.default_url = "",
	.framing = PROV_SSE,
	.ops = PROV_OP(UP_CHAT),
	.auth_header = "Authorization",
	.auth_scheme = "Bearer ",
	.request = tgi_build,
	.response = tgi_answer,
	.sse = tgi_sse,
};
