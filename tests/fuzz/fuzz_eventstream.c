/*
 * Fuzz target: the AWS event-stream decoder and the Bedrock stream translator on
 * arbitrary bytes. Properties besides memory safety: feeding in two pieces gives the
 * same messages as feeding whole; every message handed out re-encodes (es_encode) to
 * a message that decodes to the same headers and payload.
 */
#include "eventstream.h"
#include "provider.h"
#include "xlate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct acc {
	uint64_t hash;
	size_t n;
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
	(void)arg;
	(void)chunk;
}

static int same(void *arg, const struct es_message *m)
{
	const struct es_message *want = arg;

	if (m->payload_len != want->payload_len || memcmp(m->payload, want->payload, m->payload_len) ||
	    strcmp(m->event_type, want->event_type) || strcmp(m->message_type, want->message_type))
		__builtin_trap();
	return 0;
}

static int on_message(void *arg, const struct es_message *m)
{
	struct acc *a = arg;
	const char *names[] = { ":message-type", ":event-type" };
	const char *values[] = { m->message_type, m->event_type };
	static uint8_t buf[ES_MESSAGE_MAX];
	size_t n;

	a->n++;
	mix(a, m->message_type, strlen(m->message_type) + 1);
	mix(a, m->event_type, strlen(m->event_type) + 1);
	mix(a, m->payload, m->payload_len);
	n = es_encode(buf, sizeof(buf), names, values, 2, m->payload, m->payload_len);
	if (n) {
		struct es_decoder d;
		es_init(&d, same, (void *)m);
		if (es_feed(&d, buf, n) != ES_OK || es_finish(&d) != ES_OK)
			__builtin_trap();
		es_free(&d);
	}
	xl_stream_bedrock(&a->xs, m->message_type, m->event_type, m->exception_type,
			  (const char *)m->payload, m->payload_len);
	return 0;
}

static void run(const uint8_t *data, size_t size, size_t cut, struct acc *a)
{
	static const struct xl_meta meta = { "id", "model", 1 };
	struct es_decoder d;

	memset(a, 0, sizeof(*a));
	xl_stream_init(&a->xs, XL_BEDROCK, &meta, 1, on_chunk, a);
	es_init(&d, on_message, a);
	es_feed(&d, data, cut);
	es_feed(&d, data + cut, size - cut);
	es_finish(&d);
	es_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct acc whole, split;
	size_t cut;

	if (size < 1)
		return 0;
	cut = data[0] % size;
	data++;
	size--;
	run(data, size, size, &whole);
	run(data, size, cut < size ? cut : size, &split);
	if (whole.hash != split.hash || whole.n != split.n)
		__builtin_trap();
	return 0;
}
