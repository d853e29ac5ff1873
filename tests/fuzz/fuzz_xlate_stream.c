/*
 * Fuzz target: the stream translators behind the provider table (SSE families, Ollama's
 * NDJSON lines, Bedrock's event-stream messages) and the Anthropic-client and Responses
 * API client streams after them, on arbitrary events; with bit 6 of byte 0, the OpenAI
 * family's Responses API passthrough. Byte 0 picks the family; then records of [kind][length]
 * [bytes]: kind picks the event name (SSE) or the message and event type (Bedrock).
 * Properties besides memory safety: every chunk the adapter makes itself is a
 * chat.completion.chunk with a choices array; the Anthropic-style and Responses API
 * outputs are sequences of "event: <name>\ndata: <JSON object>\n\n".
 */
#include "provider.h"
#include "xlate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct text {
	char *out;
	size_t len, cap;
};

struct acc {
	struct xl_stream xs;
	struct xl_msg_stream ms;
	struct xl_resp_stream rs;
	struct text msg, resp;
};

static void append(struct text *t, const char *p, size_t n)
{
	if (t->len + n + 1 > t->cap) {
		t->cap = (t->len + n + 1) * 2;
		if (!(t->out = realloc(t->out, t->cap)))
			abort();
	}
	memcpy(t->out + t->len, p, n);
	t->len += n;
	t->out[t->len] = '\0';
}

static void on_bytes(void *arg, const char *p, size_t n)
{
	append(&((struct acc *)arg)->msg, p, n);
}

static void on_resp_bytes(void *arg, const char *p, size_t n)
{
	append(&((struct acc *)arg)->resp, p, n);
}

static void on_chunk(void *arg, json_t *chunk)
{
	struct acc *a = arg;
	const char *object = json_string_value(json_object_get(chunk, "object"));

	if (!a->xs.passthrough &&
	    (!object || strcmp(object, "chat.completion.chunk") != 0 || !json_is_array(json_object_get(chunk, "choices"))))
		__builtin_trap();
	xl_msg_stream_chunk(&a->ms, chunk);
	xl_resp_stream_chunk(&a->rs, chunk);
}

/* "event: <name>\ndata: <JSON object>\n\n", again and again. */
static void check_events(const char *p)
{
	while (*p) {
		const char *nl = strchr(p, '\n'), *end;
		json_t *j;
		if (strncmp(p, "event: ", 7) != 0 || !nl || strncmp(nl + 1, "data: ", 6) != 0)
			__builtin_trap();
		if (!(end = strstr(nl + 7, "\n\n")))
			__builtin_trap();
		if (!(j = json_loadb(nl + 7, (size_t)(end - nl - 7), 0, NULL)) || !json_is_object(j))
			__builtin_trap();
		json_decref(j);
		p = end + 2;
	}
}

static void feed(struct acc *a, const struct provider *p, int kind, const char *d, size_t n)
{
	static const char *const sse_names[] = { "message_start", "content_block_start", "content_block_delta",
						  "content_block_stop", "message_delta", "message_stop", "error", "" };
	static const char *const es_names[] = { "messageStart", "contentBlockStart", "contentBlockDelta",
						"contentBlockStop", "messageStop", "metadata", "other", "" };
	struct prov_event ev = { kind & 8 ? "exception" : "event", es_names[kind & 7],
				 kind & 8 ? "throttlingException" : "", d, n };

	if (p->framing == PROV_SSE)
		xl_stream_sse(&a->xs, sse_names[kind & 7], d, n);
	else
		xl_stream_event(&a->xs, &ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct xl_meta meta = { "chatcmpl-x", "public", 1 };
	static struct acc a;
	const struct provider *p;
	int family;
	size_t i = 1;

	if (size < 1)
		return 0;
	family = data[0] % XL__COUNT;
	p = prov_get(family);
	memset(&a, 0, sizeof(a));
	xl_stream_init(&a.xs, (enum xl_provider)family, &meta, data[0] & 0x80, on_chunk, &a);
	xl_msg_stream_init(&a.ms, "public", on_bytes, &a);
	xl_resp_stream_init(&a.rs, &(struct xl_resp_meta){ "resp_x", "public", 1, NULL }, on_resp_bytes, &a);
	a.xs.responses = family == XL_OPENAI && (data[0] & 0x40);
	while (i + 2 <= size) {
		size_t n = data[i + 1] < size - i - 2 ? data[i + 1] : size - i - 2;
		char *d = malloc(n + 1);
		if (!d)
			abort();
		memcpy(d, data + i + 2, n);
		d[n] = '\0';
		feed(&a, p, data[i], d, n);
		free(d);
		i += 2 + n;
	}
	if (!a.xs.failed)
		xl_stream_end(&a.xs);
	if (a.xs.failed) {
		xl_msg_stream_error(&a.ms, &a.xs.err);
		xl_resp_stream_error(&a.rs, &a.xs.err);
	} else {
		xl_msg_stream_end(&a.ms);
		xl_resp_stream_end(&a.rs);
	}
	check_events(a.msg.out ? a.msg.out : "");
	check_events(a.resp.out ? a.resp.out : "");
	free(a.msg.out);
	free(a.resp.out);
	xl_resp_stream_free(&a.rs);
	return 0;
}
