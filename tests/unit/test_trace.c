#include "trace/trace.h"

#include "report/report.h"

#include "testlib.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

static void test_parse_context(void)
{
	char t[33], s[17];
	int sampled = -1;
	const char *ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

	CHECK_EQ_INT(trace_parse_context(ok, strlen(ok), t, s, &sampled), 0);
	CHECK_EQ_STR(t, "4bf92f3577b34da6a3ce929d0e0e4736");
	CHECK_EQ_STR(s, "00f067aa0ba902b7");
	CHECK_EQ_INT(sampled, 1);
	CHECK_EQ_INT(trace_parse_context("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", 55, t, s,
					 &sampled), 0);
	CHECK_EQ_INT(sampled, 0);
	/* all-zero ids, upper case, wrong version or length */
	CHECK_EQ_INT(trace_parse_context("00-00000000000000000000000000000000-00f067aa0ba902b7-01", 55, t, s,
					 &sampled), -1);
	CHECK_EQ_INT(trace_parse_context("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", 55, t, s,
					 &sampled), -1);
	CHECK_EQ_INT(trace_parse_context("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", 55, t, s,
					 &sampled), -1);
	CHECK_EQ_INT(trace_parse_context(ok, 54, t, s, &sampled), -1);
}

static size_t spans(const char *line, struct trace_span *out, size_t cap)
{
	struct jr_report r;

	CHECK_EQ_INT(report_parse(line, strlen(line), &r), 0);
	return trace_spans_from_report(&r, out, cap);
}

/* HAProxy's line: the gateway's span and, for a direct request, queue, connection and the
 * model server's call inside it; the rewrite detour's line: the call itself. */
static void test_spans_from_report(void)
{
	struct trace_span sp[4];
	const char *main_line = "id=r1 ts=1 tq=3 tw=1 tc=2 tr=40 ta=60 st=200 be=be_mock srv=m1 m=POST "
				"p=/v1/chat/completions model=gpt spoe_ms=1 pt=12 ct=7 t0=1700000000123 th=0 ti=5 "
				"trace=4bf92f3577b34da6a3ce929d0e0e4736 span=1111111111111111 pspan=00f067aa0ba902b7 "
				"sampled=1 end=1";
	size_t n = spans(main_line, sp, 4);

	CHECK_EQ_INT(n, 4);
	CHECK_EQ_STR(sp[0].name, "POST /v1/chat/completions");
	CHECK_EQ_INT(sp[0].kind, TRACE_SERVER);
	CHECK_EQ_STR(sp[0].parent_id, "00f067aa0ba902b7");
	/* widened by 2 ms at each end (millisecond timers) */
	CHECK_EQ_INT(sp[0].start_ns, 1700000000126LL * 1000000);
	CHECK_EQ_INT(sp[0].end_ns - sp[0].start_ns, 64LL * 1000000);
	for (size_t i = 1; i < n; i++) {
		CHECK_EQ_STR(sp[i].parent_id, "1111111111111111");
		CHECK(sp[i].start_ns >= sp[0].start_ns && sp[i].end_ns <= sp[0].end_ns);
		CHECK_EQ_INT(strlen(sp[i].span_id), 16);
	}
	CHECK_EQ_INT(sp[3].kind, TRACE_CLIENT);
	/* the call starts after the request, the decision and the queue: 3 + 1 + 1 ms */
	CHECK_EQ_INT(sp[3].start_ns - sp[0].start_ns, 7LL * 1000000);
	/* not sampled, or no trace: nothing */
	CHECK_EQ_INT(spans("id=r2 ta=5 st=200 t0=1 trace=4bf92f3577b34da6a3ce929d0e0e4736 "
			   "span=1111111111111111 sampled=0 end=1", sp, 4), 0);
	CHECK_EQ_INT(spans("id=r3 ta=5 st=200 t0=1 sampled=1 end=1", sp, 4), 0);
	/* the detour's line */
	n = spans("id=r4 hop=rewrite be=be_mock srv=m1 tw=0 tc=1 tr=9 ta=20 st=200 pt=3 ct=4 "
		  "t0=1700000000000 th=0 ti=0 trace=4bf92f3577b34da6a3ce929d0e0e4736 "
		  "span=2222222222222222 pspan=1111111111111111 sampled=1 end=1", sp, 4);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_INT(sp[0].kind, TRACE_CLIENT);
	CHECK_EQ_STR(sp[0].parent_id, "1111111111111111");
}

/* The adapter's line: its span, the translation and the provider call (the span id the
 * provider received), within it. */
static void test_adapter_spans(void)
{
	struct trace_span sp[4];
	size_t n = spans("src=adapter id=r5 pt=3 ct=4 st=200 stream=0 model=claude tenant=t provider=anthropic "
			 "trace=4bf92f3577b34da6a3ce929d0e0e4736 span=3333333333333333 pspan=1111111111111111 "
			 "sampled=1 t0us=1700000000000000 xl_us=200 fb_us=1200 tt_us=5000", sp, 4);

	CHECK_EQ_INT(n, 3);
	CHECK_EQ_STR(sp[0].name, "jairouter.adapter");
	CHECK_EQ_STR(sp[0].parent_id, "1111111111111111");
	CHECK_EQ_INT(sp[0].end_ns - sp[0].start_ns, 5000LL * 1000);
	CHECK_EQ_STR(sp[1].parent_id, sp[0].span_id);
	CHECK_EQ_INT(sp[1].end_ns - sp[1].start_ns, 200LL * 1000);
	CHECK_EQ_STR(sp[2].span_id, "3333333333333333");
	CHECK_EQ_STR(sp[2].parent_id, sp[0].span_id);
	CHECK_EQ_INT(sp[2].kind, TRACE_CLIENT);
	CHECK_EQ_STR(sp[2].name, "provider anthropic");
	/* no trace fields: no span */
	CHECK_EQ_INT(spans("src=adapter id=r6 pt=3 ct=4 st=200", sp, 4), 0);
}

static void test_otlp_json(void)
{
	struct trace_span sp;
	char *j;

	memset(&sp, 0, sizeof(sp));
	strcpy(sp.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
	strcpy(sp.span_id, "1111111111111111");
	strcpy(sp.name, "x");
	sp.kind = TRACE_SERVER;
	sp.start_ns = 1;
	sp.end_ns = 2;
	trace_attr_int(&sp, "gen_ai.usage.input_tokens", 12);
	trace_attr_str(&sp, "gen_ai.request.model", "gpt", 3);
	j = trace_otlp_json(&sp, 1, "svc");
	CHECK(strstr(j, "\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\"") != NULL);
	CHECK(strstr(j, "{\"key\":\"gen_ai.usage.input_tokens\",\"value\":{\"intValue\":\"12\"}}") != NULL);
	CHECK(strstr(j, "\"startTimeUnixNano\":\"1\"") != NULL);
	CHECK(strstr(j, "\"parentSpanId\"") == NULL);
	CHECK(strstr(j, "\"stringValue\":\"svc\"") != NULL);
	free(j);
}

/* A full queue drops and counts; nothing blocks (the collector is unreachable and the
 * batch never fills, so nothing leaves the queue during the test). */
static void test_bounded_queue(void)
{
	struct trace_opts o = { "http://127.0.0.1:9/v1/traces", "t", 16, 1000, 60000 };
	struct trace_span sp;
	struct evbuffer *m = evbuffer_new();
	char text[4096];
	size_t n;

	memset(&sp, 0, sizeof(sp));
	CHECK_EQ_INT(trace_start(&o), 0);
	for (int i = 0; i < 20; i++)
		trace_submit(&sp);
	trace_render_metrics(m, NULL);
	n = evbuffer_remove(m, text, sizeof(text) - 1);
	text[n] = '\0';
	CHECK(strstr(text, "jairouter_trace_spans_dropped_total 4\n") != NULL);
	CHECK(strstr(text, "jairouter_trace_queue_spans 16\n") != NULL);
	trace_stop(); /* one attempt, refused: counted as failed */
	evbuffer_free(m);
}

int main(void)
{
	RUN(test_parse_context);
	RUN(test_spans_from_report);
	RUN(test_adapter_spans);
	RUN(test_otlp_json);
	RUN(test_bounded_queue);
	TEST_END();
}
