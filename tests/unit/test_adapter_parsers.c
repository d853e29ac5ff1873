/* The adapter's byte-level parsers: SSE, the AWS event-stream framing, SigV4, and the
 * route header HAProxy passes on. */
#include "testlib.h"

#include "eventstream.h"
#include "util/pct.h"
#include "route.h"
#include "sigv4.h"
#include "sse.h"

#include <stdlib.h>

struct got {
	int n;
	char event[8][40];
	char data[8][256];
};

static int collect(void *arg, const char *event, const char *data, size_t len)
{
	struct got *g = arg;

	if (g->n < 8) {
		snprintf(g->event[g->n], sizeof(g->event[0]), "%s", event);
		snprintf(g->data[g->n], sizeof(g->data[0]), "%.*s", (int)len, data);
	}
	g->n++;
	return 0;
}

static void sse_events_and_lines(void)
{
	struct sse_parser p;
	struct got g = { 0 };
	const char *in = ": comment\r\nevent: message_start\r\ndata: {\"a\":1}\r\n\r\n"
			 "data: line1\ndata: line2\n\nid: 7\nretry: 10\ndata:nospace\r\r";

	sse_init(&p, collect, &g);
	CHECK_EQ_INT(sse_feed(&p, in, strlen(in)), SSE_OK);
	CHECK_EQ_INT(sse_finish(&p), SSE_OK);
	CHECK_EQ_INT(g.n, 3);
	CHECK_EQ_STR(g.event[0], "message_start");
	CHECK_EQ_STR(g.data[0], "{\"a\":1}");
	CHECK_EQ_STR(g.event[1], "message");
	CHECK_EQ_STR(g.data[1], "line1\nline2");
	CHECK_EQ_STR(g.data[2], "nospace");
	sse_free(&p);
}

/* The same stream cut at every byte gives the same events. */
static void sse_split_anywhere(void)
{
	const char *in = "event: a\r\ndata: one\r\n\r\nevent: b\ndata: two\n\n";
	size_t n = strlen(in);

	for (size_t cut = 0; cut <= n; cut++) {
		struct sse_parser p;
		struct got g = { 0 };
		sse_init(&p, collect, &g);
		sse_feed(&p, in, cut);
		sse_feed(&p, in + cut, n - cut);
		sse_finish(&p);
		CHECK_EQ_INT(g.n, 2);
		CHECK_EQ_STR(g.event[1], "b");
		CHECK_EQ_STR(g.data[1], "two");
		sse_free(&p);
	}
}

static void sse_unterminated_and_too_long(void)
{
	struct sse_parser p;
	struct got g = { 0 };
	char *big;

	sse_init(&p, collect, &g);
	sse_feed(&p, "data: last", 10);
	CHECK_EQ_INT(g.n, 0);
	CHECK_EQ_INT(sse_finish(&p), SSE_OK);
	CHECK_EQ_INT(g.n, 1);
	CHECK_EQ_STR(g.data[0], "last");
	sse_free(&p);

	big = malloc(SSE_DATA_MAX + 100);
	memset(big, 'x', SSE_DATA_MAX + 100);
	memcpy(big, "data: ", 6);
	sse_init(&p, collect, &g);
	CHECK_EQ_INT(sse_feed(&p, big, SSE_DATA_MAX + 100), SSE_TOO_LONG);
	CHECK_EQ_INT(sse_feed(&p, "\n\n", 2), SSE_TOO_LONG); /* stays failed */
	sse_free(&p);
	free(big);
}

struct esgot {
	int n;
	char type[4][64], event[4][64], payload[4][128];
};

static int es_collect(void *arg, const struct es_message *m)
{
	struct esgot *g = arg;

	if (g->n < 4) {
		snprintf(g->type[g->n], 64, "%s", m->message_type);
		snprintf(g->event[g->n], 64, "%s", m->event_type[0] ? m->event_type : m->exception_type);
		snprintf(g->payload[g->n], 128, "%.*s", (int)m->payload_len, (const char *)m->payload);
	}
	g->n++;
	return 0;
}

static size_t es_msg(uint8_t *buf, size_t cap, const char *mtype, const char *ename, const char *payload)
{
	const char *names[] = { ":message-type", mtype[0] == 'e' && mtype[1] == 'v' ? ":event-type" : ":exception-type",
				":content-type" };
	const char *values[] = { mtype, ename, "application/json" };

	return es_encode(buf, cap, names, values, 3, (const uint8_t *)payload, strlen(payload));
}

static void eventstream_roundtrip_and_splits(void)
{
	uint8_t buf[1024];
	size_t a = es_msg(buf, sizeof(buf), "event", "contentBlockDelta",
			  "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"Hi\"}}");
	size_t b = es_msg(buf + a, sizeof(buf) - a, "exception", "throttlingException", "{\"message\":\"slow down\"}");

	CHECK(a > 0 && b > 0);
	for (size_t cut = 0; cut <= a + b; cut++) {
		struct es_decoder d;
		struct esgot g = { 0 };
		es_init(&d, es_collect, &g);
		CHECK_EQ_INT(es_feed(&d, buf, cut), ES_OK);
		CHECK_EQ_INT(es_feed(&d, buf + cut, a + b - cut), ES_OK);
		CHECK_EQ_INT(es_finish(&d), ES_OK);
		CHECK_EQ_INT(g.n, 2);
		CHECK_EQ_STR(g.type[0], "event");
		CHECK_EQ_STR(g.event[0], "contentBlockDelta");
		CHECK_EQ_STR(g.payload[0], "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"Hi\"}}");
		CHECK_EQ_STR(g.type[1], "exception");
		CHECK_EQ_STR(g.event[1], "throttlingException");
		es_free(&d);
	}
}

static void eventstream_rejects_corruption(void)
{
	uint8_t buf[512], bad[512];
	size_t n = es_msg(buf, sizeof(buf), "event", "messageStop", "{\"stopReason\":\"end_turn\"}");
	struct es_decoder d;
	struct esgot g = { 0 };

	/* Every single flipped byte is caught by a CRC or a length check. */
	for (size_t i = 0; i < n; i++) {
		memcpy(bad, buf, n);
		bad[i] ^= 0x40;
		memset(&g, 0, sizeof(g));
		es_init(&d, es_collect, &g);
		if (es_feed(&d, bad, n) == ES_OK)
			CHECK(es_finish(&d) != ES_OK && g.n == 0);
		else
			CHECK_EQ_INT(g.n, 0);
		es_free(&d);
	}
	/* A truncated message is an error at the end. */
	es_init(&d, es_collect, &g);
	CHECK_EQ_INT(es_feed(&d, buf, n - 1), ES_OK);
	CHECK_EQ_INT(es_finish(&d), ES_BAD);
	es_free(&d);
	/* A length beyond the limit is refused before anything is buffered. */
	memcpy(bad, buf, n);
	bad[0] = 0x7f;
	{
		uint32_t crc = es_crc32(0, bad, 8);
		bad[8] = (uint8_t)(crc >> 24), bad[9] = (uint8_t)(crc >> 16), bad[10] = (uint8_t)(crc >> 8), bad[11] = (uint8_t)crc;
	}
	es_init(&d, es_collect, &g);
	CHECK_EQ_INT(es_feed(&d, bad, n), ES_TOO_LONG);
	es_free(&d);
	/* zlib's check value for "123456789" */
	CHECK_EQ_INT(es_crc32(0, (const uint8_t *)"123456789", 9), 0xCBF43926u);
}

/* AWS's published SigV4 test suite, "get-vanilla". */
static void sigv4_aws_test_vector(void)
{
	struct sigv4_header hs[] = { { "x-amz-date", "20150830T123600Z" }, { "host", "example.amazonaws.com" } };
	struct sigv4_request r = { "GET", "/", "", hs, 2, "", 0, "us-east-1", "service", "AKIDEXAMPLE",
				   "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830T123600Z" };
	char out[SIGV4_AUTH_MAX];
	char date[17];

	CHECK_EQ_INT(sigv4_sign(&r, out, sizeof(out)), 0);
	CHECK_EQ_STR(out, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
			  "SignedHeaders=host;x-amz-date, "
			  "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
	sigv4_amz_date(1440938160, date);
	CHECK_EQ_STR(date, "20150830T123600Z");
	r.amz_date = "2015";
	CHECK_EQ_INT(sigv4_sign(&r, out, sizeof(out)), -1);
}

static void sigv4_encodes_paths_twice(void)
{
	char out[64];

	CHECK_EQ_INT(pct_encode("a:b/c d", 7, PCT_UNRESERVED_SLASH, out, sizeof(out)), 11);
	CHECK_EQ_STR(out, "a%3Ab/c%20d");
	CHECK_EQ_INT(pct_encode("%3A", 3, PCT_UNRESERVED_SLASH, out, sizeof(out)), 5);
	CHECK_EQ_STR(out, "%253A");
	CHECK_EQ_INT(pct_encode("abc", 3, PCT_UNRESERVED, out, 3), -1);
}

static void route_header(void)
{
	struct ad_route r;
	char err[128], enc[256];
	const char *h = "p=anthropic&u=http%3A%2F%2F127.0.0.1%3A9%2F&m=claude-3-5-haiku&pm=fast&mt=1"
			"&mask=%7B%22rules%22%3A%5B%5D%7D&t=acme&r=eu-west-1&av=2024-10-21&zz=ignored";

	CHECK_EQ_INT(route_parse(h, strlen(h), &r, err, sizeof(err)), 0);
	CHECK_EQ_STR(r.provider, "anthropic");
	CHECK_EQ_STR(r.base_url, "http://127.0.0.1:9/");
	CHECK_EQ_STR(r.model, "claude-3-5-haiku");
	CHECK_EQ_STR(r.public_model, "fast");
	CHECK_EQ_STR(r.mask, "{\"rules\":[]}");
	CHECK_EQ_STR(r.tenant, "acme");
	CHECK_EQ_STR(r.region, "eu-west-1");
	CHECK_EQ_STR(r.api_version, "2024-10-21");
	CHECK_EQ_INT(r.meter, 1);
	CHECK_EQ_INT(route_parse("p=nope&m=x", 10, &r, err, sizeof(err)), -1);
	CHECK_EQ_INT(route_parse("p=openai", 8, &r, err, sizeof(err)), -1);       /* no model */
	CHECK_EQ_INT(route_parse("p=openai&m=a%2", 14, &r, err, sizeof(err)), -1); /* bad escape */
	CHECK_EQ_INT(route_parse("p=openai&m=a%00", 15, &r, err, sizeof(err)), -1); /* NUL */
	CHECK_EQ_INT(pct_encode("a b/c", 5, PCT_UNRESERVED, enc, sizeof(enc)), 9);
	CHECK_EQ_STR(enc, "a%20b%2Fc");
}

int main(void)
{
	RUN(sse_events_and_lines);
	RUN(sse_split_anywhere);
	RUN(sse_unterminated_and_too_long);
	RUN(eventstream_roundtrip_and_splits);
	RUN(eventstream_rejects_corruption);
	RUN(sigv4_aws_test_vector);
	RUN(sigv4_encodes_paths_twice);
	RUN(route_header);
	TEST_END();
}
