/*
 * Fuzz target: the adapter's WebSocket frame reader (wsframe.h) on arbitrary bytes. The
 * first byte picks the direction (masked or not) and the message limit; the second where
 * the rest is cut in two. Properties checked besides memory safety: the bytes forwarded
 * are a prefix of the input (a frame is passed on unchanged or not at all), a text
 * message handed over is never longer than the limit, and feeding the input whole or
 * in two pieces forwards the same bytes, hands over the same messages and ends the same.
 */
#include "wsframe.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct acc {
	const uint8_t *in;
	size_t in_len, fwd;
	size_t max;
	uint64_t hash;
	size_t messages;
};

static void forward(void *arg, const uint8_t *p, size_t n)
{
	struct acc *a = arg;

	if (a->fwd + n > a->in_len || memcmp(a->in + a->fwd, p, n) != 0)
		__builtin_trap();
	a->fwd += n;
}

static void message(void *arg, enum ws_opcode op, const uint8_t *p, size_t n)
{
	struct acc *a = arg;

	if ((op == WS_TEXT && a->max && n > a->max) || (op >= WS_CLOSE && n > WS_CONTROL_MAX))
		__builtin_trap();
	a->messages++;
	a->hash = (a->hash ^ (uint64_t)op) * 1099511628211ull;
	for (size_t i = 0; i < n; i++)
		a->hash = (a->hash ^ p[i]) * 1099511628211ull;
}

static int run(const uint8_t *in, size_t n, size_t cut, int masked, size_t max, struct acc *a)
{
	const struct ws_sink sink = { forward, message, a };
	struct ws_reader r;
	int rc;

	memset(a, 0, sizeof(*a));
	a->in = in;
	a->in_len = n;
	a->max = max;
	ws_reader_init(&r, masked, max);
	rc = ws_feed(&r, in, cut, &sink);
	if (rc == 0)
		rc = ws_feed(&r, in + cut, n - cut, &sink);
	ws_reader_free(&r);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t limits[4] = { 0, 16, 300, 70000 };
	struct acc whole, split;
	int masked, rc1, rc2;
	size_t max, cut;

	if (size < 2)
		return 0;
	masked = data[0] & 1;
	max = limits[(data[0] >> 1) & 3];
	cut = data[1] % (size - 1);
	data += 2, size -= 2;
	if (cut > size)
		cut = size;
	rc1 = run(data, size, size, masked, max, &whole);
	rc2 = run(data, size, cut, masked, max, &split);
	if (rc1 != rc2 || whole.fwd != split.fwd || whole.hash != split.hash || whole.messages != split.messages)
		__builtin_trap();
	return 0;
}
