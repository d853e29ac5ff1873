/* The adapter's WebSocket frame reader (wsframe.h): framing rules, fragments with control
 * frames between them, masking, limits, and bytes cut anywhere. */
#include "testlib.h"

#include "wsframe.h"

#include <stdlib.h>

struct got {
	uint8_t fwd[4096];
	size_t fwd_len;
	int n;
	int op[8];
	char text[8][256];
};

static void fwd(void *arg, const uint8_t *p, size_t n)
{
	struct got *g = arg;

	if (g->fwd_len + n <= sizeof(g->fwd))
		memcpy(g->fwd + g->fwd_len, p, n);
	g->fwd_len += n;
}

static void msg(void *arg, enum ws_opcode op, const uint8_t *p, size_t n)
{
	struct got *g = arg;

	if (g->n < 8) {
		g->op[g->n] = op;
		snprintf(g->text[g->n], sizeof(g->text[0]), "%.*s", (int)n, (const char *)p);
	}
	g->n++;
}

/* Appends one frame (masked with key when not NULL). Returns the new length. */
static size_t put_frame(uint8_t *out, size_t at, int fin, int op, const char *payload, size_t n, const uint8_t *key)
{
	uint8_t *p = out + at;
	size_t h = 2;

	p[0] = (uint8_t)((fin ? 0x80 : 0) | op);
	if (n < 126) {
		p[1] = (uint8_t)n;
	} else {
		p[1] = 126;
		p[2] = (uint8_t)(n >> 8);
		p[3] = (uint8_t)n;
		h = 4;
	}
	if (key) {
		p[1] |= 0x80;
		memcpy(p + h, key, 4);
		h += 4;
	}
	for (size_t i = 0; i < n; i++)
		p[h + i] = (uint8_t)(key ? payload[i] ^ key[i & 3] : payload[i]);
	return at + h + n;
}

/* A text message in two fragments with a ping between them, then a close: the server's
 * way of sending (unmasked). */
static size_t sample(uint8_t *buf)
{
	size_t n = put_frame(buf, 0, 0, WS_TEXT, "{\"type\":\"resp", 13, NULL);
	n = put_frame(buf, n, 1, WS_PING, "hi", 2, NULL);
	n = put_frame(buf, n, 1, WS_CONT, "onse.done\"}", 11, NULL);
	return put_frame(buf, n, 1, WS_CLOSE, "\x03\xe8", 2, NULL);
}

static void fragments_and_control_frames(void)
{
	uint8_t buf[256];
	size_t n = sample(buf);
	struct got g = { 0 };
	const struct ws_sink sink = { fwd, msg, &g };
	struct ws_reader r;

	ws_reader_init(&r, 0, 1024);
	CHECK_EQ_INT(ws_feed(&r, buf, n, &sink), 0);
	CHECK_EQ_INT(g.n, 3);
	CHECK_EQ_INT(g.op[0], WS_PING);
	CHECK_EQ_STR(g.text[0], "hi");
	CHECK_EQ_INT(g.op[1], WS_TEXT);
	CHECK_EQ_STR(g.text[1], "{\"type\":\"response.done\"}");
	CHECK_EQ_INT(g.op[2], WS_CLOSE);
	CHECK_EQ_INT(g.fwd_len, n);
	CHECK(memcmp(g.fwd, buf, n) == 0);
	CHECK(ws_at_boundary(&r));
	ws_reader_free(&r);
}

/* Cut at every byte, fed in two pieces: the same messages, every byte forwarded once. */
static void split_anywhere(void)
{
	uint8_t buf[256];
	size_t n = sample(buf);

	for (size_t cut = 0; cut <= n; cut++) {
		struct got g = { 0 };
		const struct ws_sink sink = { fwd, msg, &g };
		struct ws_reader r;
		ws_reader_init(&r, 0, 1024);
		CHECK_EQ_INT(ws_feed(&r, buf, cut, &sink), 0);
		CHECK_EQ_INT(ws_feed(&r, buf + cut, n - cut, &sink), 0);
		CHECK_EQ_INT(g.n, 3);
		CHECK_EQ_STR(g.text[1], "{\"type\":\"response.done\"}");
		CHECK_EQ_INT(g.fwd_len, n);
		CHECK(memcmp(g.fwd, buf, n) == 0);
		ws_reader_free(&r);
	}
}

static void masked_client_frames(void)
{
	static const uint8_t key[4] = { 0x37, 0xfa, 0x21, 0x3d };
	uint8_t buf[512], big[300];
	size_t n;
	struct got g = { 0 };
	const struct ws_sink sink = { fwd, msg, &g };
	struct ws_reader r;

	memset(big, 'a', sizeof(big));
	n = put_frame(buf, 0, 1, WS_TEXT, "Hello", 5, key);
	n = put_frame(buf, n, 1, WS_BINARY, (const char *)big, sizeof(big), key);
	ws_reader_init(&r, 1, 1024);
	CHECK_EQ_INT(ws_feed(&r, buf, n, &sink), 0);
	CHECK_EQ_INT(g.n, 1); /* binary messages are forwarded, not handed over */
	CHECK_EQ_STR(g.text[0], "Hello");
	CHECK_EQ_INT(g.fwd_len, n);
	ws_reader_free(&r);
	/* An unmasked frame from a client: 1002, nothing of it forwarded. */
	memset(&g, 0, sizeof(g));
	ws_reader_init(&r, 1, 0);
	n = put_frame(buf, 0, 1, WS_TEXT, "x", 1, NULL);
	CHECK_EQ_INT(ws_feed(&r, buf, n, &sink), WS_PROTOCOL_ERROR);
	CHECK_EQ_INT(g.fwd_len, 0);
	CHECK(ws_at_boundary(&r));
	CHECK_EQ_INT(ws_feed(&r, buf, n, &sink), WS_PROTOCOL_ERROR); /* stays stopped */
	ws_reader_free(&r);
}

static int refused(const uint8_t *buf, size_t n, int masked, size_t max)
{
	struct got g = { 0 };
	const struct ws_sink sink = { fwd, msg, &g };
	struct ws_reader r;
	int rc;

	ws_reader_init(&r, masked, max);
	rc = ws_feed(&r, buf, n, &sink);
	ws_reader_free(&r);
	return rc;
}

static void protocol_errors(void)
{
	uint8_t buf[512];
	char big[200];
	size_t n;

	memset(big, 'b', sizeof(big));
	buf[0] = 0xC1, buf[1] = 0x00; /* RSV1: no extension was negotiated */
	CHECK_EQ_INT(refused(buf, 2, 0, 0), WS_PROTOCOL_ERROR);
	buf[0] = 0x83, buf[1] = 0x00; /* reserved opcode */
	CHECK_EQ_INT(refused(buf, 2, 0, 0), WS_PROTOCOL_ERROR);
	n = put_frame(buf, 0, 0, WS_PING, "x", 1, NULL); /* fragmented control frame */
	CHECK_EQ_INT(refused(buf, n, 0, 0), WS_PROTOCOL_ERROR);
	n = put_frame(buf, 0, 1, WS_PING, big, 126, NULL); /* control payload > 125 */
	CHECK_EQ_INT(refused(buf, n, 0, 0), WS_PROTOCOL_ERROR);
	n = put_frame(buf, 0, 1, WS_CONT, "x", 1, NULL); /* continuation outside a message */
	CHECK_EQ_INT(refused(buf, n, 0, 0), WS_PROTOCOL_ERROR);
	n = put_frame(buf, 0, 0, WS_TEXT, "a", 1, NULL); /* a new message before the end */
	n = put_frame(buf, n, 1, WS_TEXT, "b", 1, NULL);
	CHECK_EQ_INT(refused(buf, n, 0, 0), WS_PROTOCOL_ERROR);
	buf[0] = 0x81, buf[1] = 126, buf[2] = 0, buf[3] = 5; /* a length not in its shortest form */
	CHECK_EQ_INT(refused(buf, 4, 0, 0), WS_PROTOCOL_ERROR);
	buf[0] = 0x82, buf[1] = 127; /* a 64-bit length with its top bit set */
	memset(buf + 2, 0xff, 8);
	CHECK_EQ_INT(refused(buf, 10, 0, 0), WS_PROTOCOL_ERROR);
}

/* max_message bounds the whole message, fragments included: 1009 at the frame that
 * would pass it, before any of that frame is forwarded. */
static void message_limit(void)
{
	uint8_t buf[512];
	char big[200];
	size_t n, first;
	struct got g = { 0 };
	const struct ws_sink sink = { fwd, msg, &g };
	struct ws_reader r;

	memset(big, 'c', sizeof(big));
	first = put_frame(buf, 0, 0, WS_TEXT, big, 100, NULL);
	n = put_frame(buf, first, 1, WS_CONT, big, 101, NULL);
	ws_reader_init(&r, 0, 200);
	CHECK_EQ_INT(ws_feed(&r, buf, n, &sink), WS_TOO_BIG);
	CHECK_EQ_INT(g.fwd_len, first);
	CHECK(ws_at_boundary(&r));
	ws_reader_free(&r);
	memset(&g, 0, sizeof(g));
	n = put_frame(buf, first, 1, WS_CONT, big, 100, NULL); /* exactly at the limit */
	ws_reader_init(&r, 0, 200);
	CHECK_EQ_INT(ws_feed(&r, buf, n, &sink), 0);
	CHECK_EQ_INT(g.n, 1);
	CHECK_EQ_INT(strlen(g.text[0]), 200);
	ws_reader_free(&r);
}

static void close_frames(void)
{
	static const uint8_t key[4] = { 1, 2, 3, 4 };
	uint8_t f[8];

	CHECK_EQ_INT(ws_close_frame(f, 1009, NULL), 4);
	CHECK(f[0] == 0x88 && f[1] == 0x02 && f[2] == 0x03 && f[3] == 0xf1);
	CHECK_EQ_INT(ws_close_frame(f, 1001, key), 8);
	CHECK(f[1] == 0x82 && memcmp(f + 2, key, 4) == 0);
	CHECK(((f[6] ^ key[0]) << 8 | (f[7] ^ key[1])) == 1001);
}

int main(void)
{
	RUN(fragments_and_control_frames);
	RUN(split_anywhere);
	RUN(masked_client_frames);
	RUN(protocol_errors);
	RUN(message_limit);
	RUN(close_frames);
	TEST_END();
}
