/*
 * Fuzz target: the adapter's SSE parser (and NDJSON splitter) and the stream translators
 * behind them, on arbitrary bytes. The first byte picks the provider family whose
 * translator gets the events (Ollama: NDJSON lines). Properties checked besides memory safety: feeding the input whole or in two
 * pieces (cut where the second byte says) yields the same events, and the translated
 * output of the whole input is the same both ways.
 */
#include "sse.h"
#include "provider.h"
#include "xlate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct acc {
	uint64_t hash;
	size_t events;
	struct xl_stream xs;
};

static void mix(struct acc *a, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		a->hash = (a->hash ^ b[i]) * 1099511628211ull;
}

static void on_chunk(void *arg, json_t *chunk)
{
	struct acc *a = arg;
	char *s = json_dumps(chunk, JSON_COMPACT | JSON_SORT_KEYS);

	if (s) {
		mix(a, s, strlen(s));
		free(s);
	}
}

static int on_event(void *arg, const char *event, const char *d, size_t len)
{
	struct acc *a = arg;

	if (strlen(event) > SSE_EVENT_MAX || len > SSE_DATA_MAX || d[len] != '\0')
		__builtin_trap();
	a->events++;
	mix(a, event, strlen(event) + 1);
	mix(a, d, len);
	xl_stream_sse(&a->xs, event, d, len);
	return 0;
}

static int on_line(void *arg, const char *line, size_t len)
{
	struct acc *a = arg;

	if (len == 0 || len > SSE_DATA_MAX + 16 || memchr(line, '\n', len))
		__builtin_trap();
	a->events++;
	mix(a, line, len);
	xl_stream_ollama(&a->xs, line, len);
	return 0;
}

static void run(const uint8_t *data, size_t size, size_t cut, int family, struct acc *a)
{
	static const struct xl_meta meta = { "id", "model", 1 };
	struct sse_parser p;

	memset(a, 0, sizeof(*a));
	xl_stream_init(&a->xs, (enum xl_provider)family, &meta, 1, on_chunk, a);
	if (family == XL_OLLAMA) {
		struct nd_parser nd;
		nd_init(&nd, on_line, a);
		nd_feed(&nd, (const char *)data, cut);
		nd_feed(&nd, (const char *)data + cut, size - cut);
		nd_finish(&nd);
		if (!a->xs.failed)
			xl_stream_end(&a->xs);
		nd_free(&nd);
		return;
	}
	sse_init(&p, on_event, a);
	sse_feed(&p, (const char *)data, cut);
	sse_feed(&p, (const char *)data + cut, size - cut);
	sse_finish(&p);
	if (!a->xs.failed)
		xl_stream_end(&a->xs);
	sse_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int families[] = { XL_OPENAI, XL_ANTHROPIC, XL_GEMINI, XL_COHERE, XL_OLLAMA };
	struct acc whole, split;
	int family;
	size_t cut;

	if (size < 2)
		return 0;
	family = families[data[0] % 5];
	cut = data[1] % (size - 1);
	data += 2;
	size -= 2;
	run(data, size, size, family, &whole);
	run(data, size, cut < size ? cut : size, family, &split);
	if (whole.hash != split.hash || whole.events != split.events)
		__builtin_trap();
	return 0;
}
