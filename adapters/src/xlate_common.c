/* xlate_common: errors, usage, chunks and the helpers shared by the translators (the
 * bottom layer: it knows no provider; provider.c dispatches). */
#include "xlate_int.h"

#include "util/xalloc.h"

#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

void xl_fail(struct xl_error *e, int status, const char *type, const char *code, const char *fmt, ...)
{
	va_list ap;

	e->status = status;
	e->type = type;
	e->code = code;
	e->retry_after = 0;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
}

json_t *xl_error_json(const struct xl_error *e)
{
	return json_pack("{s:{s:s,s:s,s:n,s:s?}}", "error", "message", e->message, "type",
			 e->type ? e->type : "server_error", "param", "code", e->code);
}

json_t *xl_usage_json(const struct xl_usage *u)
{
	return json_pack("{s:I,s:I,s:I}", "prompt_tokens", (json_int_t)u->prompt,
			 "completion_tokens", (json_int_t)u->completion, "total_tokens",
			 (json_int_t)(u->prompt + u->completion));
}

json_t *xl_chunk_new(const struct xl_stream *s, json_t **delta)
{
	json_t *d = json_object();
	json_t *c = json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:n}]}", "id", s->id, "object",
			      "chat.completion.chunk", "created", (json_int_t)s->created, "model",
			      s->model, "choices", "index", 0, "delta", d, "finish_reason");
	*delta = d;
	return c;
}

void xl_stream_reset(struct xl_stream *s, const struct xl_meta *m, int include_usage,
		     xl_chunk_fn emit, void *arg)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->id, sizeof(s->id), "%s", m->id ? m->id : "chatcmpl-jairouter");
	snprintf(s->model, sizeof(s->model), "%s", m->model ? m->model : "");
	s->created = m->created;
	s->include_usage = include_usage;
	for (int i = 0; i < XL_BLOCKS_MAX; i++)
		s->tool_of_block[i] = -1;
	s->emit = emit;
	s->arg = arg;
}

json_t *xl_event_json(struct xl_stream *s, const char *data, size_t len)
{
	json_t *j = json_loadb(data, len, 0, NULL);

	if (!j) {
		xl_fail(&s->err, 502, "server_error", "bad_upstream_stream",
			"The model provider sent a stream event that is not JSON.");
		s->failed = 1;
	}
	return j;
}

/* Emits the role chunk once, before any content. */
void xl_stream_start(struct xl_stream *s)
{
	json_t *delta, *c;

	if (s->started)
		return;
	s->started = 1;
	c = xl_chunk_new(s, &delta);
	json_object_set_new(delta, "role", json_string("assistant"));
	json_object_set_new(delta, "content", json_string(""));
	s->emit(s->arg, c);
	json_decref(c);
}

void xl_stream_end(struct xl_stream *s)
{
	json_t *delta, *c;

	if (s->finished)
		return;
	s->finished = 1;
	if (!s->passthrough) {
		xl_stream_start(s);
		c = xl_chunk_new(s, &delta);
		json_object_set_new(json_array_get(json_object_get(c, "choices"), 0), "finish_reason",
				    json_string(s->finish[0] ? s->finish : "stop"));
		s->emit(s->arg, c);
		json_decref(c);
		if (s->include_usage) {
			c = json_pack("{s:s,s:s,s:I,s:s,s:[],s:o}", "id", s->id, "object",
				      "chat.completion.chunk", "created", (json_int_t)s->created,
				      "model", s->model, "choices", "usage", xl_usage_json(&s->usage));
			s->emit(s->arg, c);
			json_decref(c);
		}
	}
}

const char *xl_finish_from_anthropic(const char *r)
{
	if (!r)
		return "stop";
	if (strcmp(r, "max_tokens") == 0)
		return "length";
	if (strcmp(r, "tool_use") == 0)
		return "tool_calls";
	if (strcmp(r, "refusal") == 0)
		return "content_filter";
	return "stop"; /* end_turn, stop_sequence, pause_turn */
}

const char *xl_finish_to_anthropic(const char *f)
{
	if (!f)
		return "end_turn";
	if (strcmp(f, "length") == 0)
		return "max_tokens";
	if (strcmp(f, "tool_calls") == 0 || strcmp(f, "function_call") == 0)
		return "tool_use";
	if (strcmp(f, "content_filter") == 0)
		return "refusal";
	return "end_turn";
}

/* ---- helpers (xlate_int.h) ---------------------------------------------------------- */

char *xl_text_of(const json_t *content)
{
	size_t i, total = 0;
	const json_t *part;
	char *out;

	if (json_is_string(content))
		return strdup(json_string_value(content));
	if (!json_is_array(content))
		return strdup("");
	json_array_foreach(content, i, part) {
		const char *t = json_string_value(json_object_get(part, "text"));
		if (t)
			total += strlen(t) + 1;
	}
	out = malloc(total + 1);
	if (!out)
		return NULL;
	out[0] = '\0';
	total = 0;
	json_array_foreach(content, i, part) {
		const char *t = json_string_value(json_object_get(part, "text"));
		if (t) {
			size_t n = strlen(t);
			if (total)
				out[total++] = '\n';
			memcpy(out + total, t, n);
			total += n;
			out[total] = '\0';
		}
	}
	return out;
}

int xl_data_url(const char *url, char *mime, size_t mcap, const char **b64)
{
	const char *semi, *comma;
	size_t n;

	if (!url || strncmp(url, "data:", 5) != 0)
		return -1;
	semi = strchr(url + 5, ';');
	comma = strchr(url + 5, ',');
	if (!semi || !comma || semi > comma || strncmp(semi, ";base64,", 8) != 0)
		return -1;
	n = (size_t)(semi - (url + 5));
	if (n == 0 || n >= mcap)
		return -1;
	memcpy(mime, url + 5, n);
	mime[n] = '\0';
	*b64 = comma + 1;
	return 0;
}

void xl_copy(json_t *dst, const char *dkey, const json_t *src, const char *skey)
{
	json_t *v = json_object_get(src, skey);

	if (v && !json_is_null(v))
		json_object_set(dst, dkey, v);
}

json_int_t xl_max_tokens(const json_t *req)
{
	const json_t *v = json_object_get(req, "max_completion_tokens");

	if (!json_is_integer(v))
		v = json_object_get(req, "max_tokens");
	return json_is_integer(v) ? json_integer_value(v) : -1;
}

json_t *xl_stop_array(const json_t *req)
{
	const json_t *stop = json_object_get(req, "stop");

	if (json_is_string(stop))
		return json_pack("[O]", stop);
	if (json_is_array(stop) && json_array_size(stop))
		return json_deep_copy(stop);
	return NULL;
}

void xl_emit_text(struct xl_stream *s, const char *text, size_t len)
{
	json_t *delta, *c;

	if (!len)
		return;
	xl_stream_start(s);
	c = xl_chunk_new(s, &delta);
	json_object_set_new(delta, "content", json_stringn(text, len));
	s->completion_chars += (int64_t)len;
	s->emit(s->arg, c);
	json_decref(c);
}

void xl_emit_tool(struct xl_stream *s, int index, const char *id, const char *name, const char *args)
{
	json_t *delta, *c, *tc, *fn = json_object();

	xl_stream_start(s);
	c = xl_chunk_new(s, &delta);
	tc = json_pack("{s:i}", "index", index);
	if (id) {
		json_object_set_new(tc, "id", json_string(id));
		json_object_set_new(tc, "type", json_string("function"));
	}
	if (name)
		json_object_set_new(fn, "name", json_string(name));
	json_object_set_new(fn, "arguments", json_string(args ? args : ""));
	if (args)
		s->completion_chars += (int64_t)strlen(args);
	json_object_set_new(tc, "function", fn);
	json_object_set_new(delta, "tool_calls", json_pack("[o]", tc));
	s->emit(s->arg, c);
	json_decref(c);
}

json_t *xl_parse_args(const json_t *arguments)
{
	const char *a = json_string_value(arguments);
	json_t *j;

	if (json_is_object(arguments))
		return json_deep_copy(arguments);
	if (!a || !*a)
		return json_object();
	j = json_loads(a, 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

void xl_append_text(char **text, size_t *len, const char *t)
{
	size_t n = strlen(t);

	*text = xrealloc(*text, *len + n + 1);
	memcpy(*text + *len, t, n);
	*len += n;
	(*text)[*len] = '\0';
}

void xl_append_call(json_t *calls, const json_t *id, const json_t *name, const json_t *input)
{
	char *args = json_dumps(input, JSON_COMPACT);

	json_array_append_new(calls, json_pack("{s:O,s:s,s:{s:O,s:s}}", "id", id, "type", "function", "function",
					       "name", name, "arguments", args ? args : "{}"));
	free(args);
}

json_t *xl_assistant_message(const char *text, json_t *calls)
{
	json_t *msg = json_pack("{s:s}", "role", "assistant");

	json_object_set_new(msg, "content", text ? json_string(text) : json_null());
	if (json_array_size(calls))
		json_object_set(msg, "tool_calls", calls);
	json_decref(calls);
	return msg;
}

char *xl_dump_object(const json_t *v)
{
	return v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("{}");
}

void xl_push_grouped(json_t *list, const char *role, const char *key, json_t *item)
{
	json_t *last = json_array_get(list, json_array_size(list) - 1);
	const char *last_role = last ? json_string_value(json_object_get(last, "role")) : NULL;

	if (last_role && strcmp(last_role, role) == 0) {
		json_array_append_new(json_object_get(last, key), item);
		return;
	}
	json_array_append_new(list, json_pack("{s:s,s:[o]}", "role", role, key, item));
}

json_t *xl_call_args(const json_t *fn, size_t k, struct xl_error *e)
{
	json_t *args = xl_parse_args(json_object_get(fn, "arguments"));

	if (!args)
		xl_fail(e, 400, "invalid_request_error", "invalid_value",
			"The arguments of tool call %zu are not a JSON object.", k);
	return args;
}

/* An assistant message: its content, then each tool call. */
static int walk_assistant(const json_t *m, const struct xl_walk *w, void *arg, struct xl_error *e)
{
	const json_t *call, *fn;
	json_t *args;
	size_t k;

	if (w->assistant(arg, json_object_get(m, "content"), e) < 0)
		return -1;
	json_array_foreach(json_object_get(m, "tool_calls"), k, call) {
		fn = json_object_get(call, "function");
		if (!(args = xl_call_args(fn, k, e)) || w->tool_call(arg, call, fn, args, e) < 0)
			return -1;
	}
	return 0;
}

static int walk_message(const json_t *m, size_t i, const struct xl_walk *w, void *arg, struct xl_error *e)
{
	const char *role = json_string_value(json_object_get(m, "role"));
	char *t;
	int rc;

	if (!role) {
		xl_fail(e, 400, "invalid_request_error", "invalid_value", "messages[%zu] has no role.", i);
		return -1;
	}
	if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0 || strcmp(role, "tool") == 0) {
		t = xl_text_of(json_object_get(m, "content"));
		rc = role[0] == 't' ? w->tool_result(arg, m, t, e) : w->system(arg, t, e);
		free(t);
		return rc;
	}
	if (strcmp(role, "user") == 0)
		return w->user(arg, json_object_get(m, "content"), e);
	if (strcmp(role, "assistant") == 0)
		return walk_assistant(m, w, arg, e);
	xl_fail(e, 400, "invalid_request_error", "invalid_value", "messages[%zu] has an unknown role '%s'.", i, role);
	return -1;
}

int xl_walk_messages(const json_t *messages, const struct xl_walk *w, void *arg,
		     struct xl_error *e)
{
	const json_t *m;
	size_t i;

	if (!json_is_array(messages) || !json_array_size(messages)) {
		xl_fail(e, 400, "invalid_request_error", "invalid_value",
			"'messages' must be a non-empty array.");
		return -1;
	}
	json_array_foreach(messages, i, m)
		if (walk_message(m, i, w, arg, e) < 0)
			return -1;
	return 0;
}

int xl_push_content(json_t *list, const char *role, const json_t *content,
		    const struct xl_blocks *b, struct xl_error *e)
{
	size_t i;
	const json_t *part;

	if (json_is_string(content)) {
		if (json_string_length(content))
			xl_push_grouped(list, role, b->key, b->text(content));
		return 0;
	}
	if (!content || json_is_null(content))
		return 0;
	if (!json_is_array(content)) {
		xl_fail(e, 400, "invalid_request_error", "invalid_type",
			"A message's content must be a string or an array of parts.");
		return -1;
	}
	json_array_foreach(content, i, part) {
		const char *type = json_string_value(json_object_get(part, "type"));
		if (type && strcmp(type, "text") == 0) {
			xl_push_grouped(list, role, b->key, b->text(json_object_get(part, "text")));
		} else if (type && strcmp(type, "image_url") == 0) {
			const json_t *iu = json_object_get(part, "image_url");
			const char *url = json_is_string(iu) ? json_string_value(iu)
							      : json_string_value(json_object_get(iu, "url"));
			json_t *img = b->image(url, e);
			if (!img)
				return -1;
			xl_push_grouped(list, role, b->key, img);
		} else {
			xl_fail(e, 400, "invalid_request_error", "unsupported_content",
				"Content parts of type '%s' cannot be sent to this model.",
				type ? type : "(none)");
			return -1;
		}
	}
	return 0;
}

int xl_turns_system(void *arg, const char *text, struct xl_error *e)
{
	struct xl_turns *t = arg;
	json_t *s = json_string(text);

	(void)e;
	json_array_append_new(t->sys, t->b->text(s));
	json_decref(s);
	return 0;
}

int xl_turns_user(void *arg, const json_t *content, struct xl_error *e)
{
	struct xl_turns *t = arg;

	return xl_push_content(t->msgs, "user", content, t->b, e);
}

int xl_turns_assistant(void *arg, const json_t *content, struct xl_error *e)
{
	struct xl_turns *t = arg;

	return xl_push_content(t->msgs, t->assistant, content, t->b, e);
}

json_t *xl_url_failed(json_t *body, struct xl_error *e)
{
	json_decref(body);
	xl_fail(e, 500, "server_error", "adapter_misconfigured",
		"The upstream request could not be built (URL or headers too long).");
	return NULL;
}

/* ---- embeddings ---------------------------------------------------------------------- */

json_t *xl_embed_texts(const json_t *req, size_t max, struct xl_error *e)
{
	const json_t *input = json_object_get(req, "input"), *v;
	json_t *out = json_array();
	size_t i;

	if (json_is_string(input))
		json_array_append(out, (json_t *)input);
	json_array_foreach(input, i, v) {
		if (!json_is_string(v)) {
			json_decref(out);
			xl_fail(e, 400, "invalid_request_error", "invalid_value",
				"This model embeds text: 'input' must hold strings (token arrays are not supported).");
			return NULL;
		}
		json_array_append(out, (json_t *)v);
	}
	if (json_array_size(out) == 0 || json_array_size(out) > max) {
		json_decref(out);
		xl_fail(e, 400, "invalid_request_error", "invalid_value",
			"This model embeds 1 to %zu texts per request: 'input' must be a string or an array of them.", max);
		return NULL;
	}
	return out;
}

json_t *xl_embed_list(json_t *vectors, const char *model, int64_t prompt_tokens, struct xl_error *e)
{
	json_t *data = json_array(), *v;
	size_t i;

	json_array_foreach(vectors, i, v) {
		if (!json_is_array(v)) {
			json_decref(data);
			json_decref(vectors);
			xl_fail(e, 502, "server_error", "bad_upstream_response",
				"The model provider's answer has no embedding values.");
			return NULL;
		}
		json_array_append_new(data, json_pack("{s:s,s:I,s:O}", "object", "embedding", "index", (json_int_t)i,
						      "embedding", v));
	}
	if (!json_is_array(vectors) || json_array_size(data) == 0) {
		json_decref(data);
		json_decref(vectors);
		xl_fail(e, 502, "server_error", "bad_upstream_response", "The model provider's answer has no embeddings.");
		return NULL;
	}
	json_decref(vectors);
	return json_pack("{s:s,s:o,s:s,s:{s:I,s:I}}", "object", "list", "data", data, "model", model, "usage",
			 "prompt_tokens", (json_int_t)prompt_tokens, "total_tokens", (json_int_t)prompt_tokens);
}

void xl_embed_base64(json_t *list)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	json_t *item, *v;
	size_t i, k;

	json_array_foreach(json_object_get(list, "data"), i, item) {
		const json_t *vec = json_object_get(item, "embedding");
		size_t n = json_array_size(vec), len = 4 * n, o = 0;
		unsigned char *raw = malloc(len + 3);
		char *text = malloc(4 * ((len + 2) / 3) + 1);

		if (!raw || !text)
			abort(); /* out of memory: as xalloc */
		json_array_foreach(vec, k, v) {
			float f = (float)json_number_value(v);
			uint32_t bits;
			memcpy(&bits, &f, 4);
			for (int b = 0; b < 4; b++)
				raw[4 * k + (size_t)b] = (unsigned char)(bits >> (8 * b));
		}
		for (size_t p = 0; p < len; p += 3) {
			uint32_t w = (uint32_t)raw[p] << 16 | (p + 1 < len ? (uint32_t)raw[p + 1] << 8 : 0) |
				     (p + 2 < len ? raw[p + 2] : 0);
			text[o++] = b64[w >> 18 & 63];
			text[o++] = b64[w >> 12 & 63];
			text[o++] = p + 1 < len ? b64[w >> 6 & 63] : '=';
			text[o++] = p + 2 < len ? b64[w & 63] : '=';
		}
		text[o] = '\0';
		json_object_set_new(item, "embedding", json_string(text));
		free(raw);
		free(text);
	}
}
