/*
 * accesslog/: the JSON line built from HAProxy's end-of-request line and the settled
 * usage (field by field, read back with jansson), and the writer: lines reach the file
 * whole and in order, a full queue drops and counts.
 */
#include "accesslog/accesslog.h"
#include "report/report.h"
#include "util/json.h"

#include "testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LINE_OK                                                                                     \
	"id=5f0c ts=1796659200 ci=192.0.2.7 cp=40512 be=be_mock srv=s1 tq=0 tw=0 tc=1 tr=120 ta=125 " \
	"st=200 bytes=812 tsc=---- v=allow tenant=acme key=jr-1a2b3c4d model=gpt-4o spoe_ms=2 "      \
	"spoe_err=- m=POST p=/v1/chat/completions lb=be_mock ls=s1 fb=- ra=- pt=12 ct=30 "          \
	"acct=- ag=a1 ec=- trace=4bf92f3577b34da6a3ce929d0e0e4736 span=00f067aa0ba902b7 end=1"

#define LINE_REFUSED                                                                                \
	"id=77aa ts=1796659201 ci=2001:db8::1 cp=5000 be=fe_jairouter srv=<NOSRV> tq=0 tw=-1 tc=-1 "  \
	"tr=-1 ta=3 st=429 bytes=210 tsc=PR-- v=deny tenant=acme key=jr-1a2b3c4d model=gpt-4o "       \
	"spoe_ms=1 m=POST p=/v1/chat/completions ra=7 ec=rate_limit_exceeded end=1"

static json_t *format(const char *line, const struct alog_usage *u)
{
	struct jr_report rep;
	struct jbuf b = { 0 };
	json_error_t err;
	json_t *j;

	if (report_parse(line, strlen(line), &rep) != 0)
		return NULL;
	alog_format(&rep, u, &b);
	CHECK(b.len > 0 && b.p[b.len - 1] == '\n' && memchr(b.p, '\n', b.len - 1) == NULL);
	j = json_loads(b.p, 0, &err);
	if (!j)
		fprintf(stderr, "  not JSON: %s (%s)\n", b.p, err.text);
	free(b.p);
	return j;
}

static const char *s(json_t *j, const char *k)
{
	return json_string_value(json_object_get(j, k));
}

static long long n(json_t *j, const char *k)
{
	return (long long)json_integer_value(json_object_get(j, k));
}

static int is_null(json_t *j, const char *k)
{
	return json_is_null(json_object_get(j, k));
}

/* An admitted request: HAProxy's fields, the trace id, and the agent's usage and cost. */
static void test_admitted_line(void)
{
	struct alog_usage u = { 1, 12, 30, 1250, 0, "alice@example.com", "" };
	json_t *j = format(LINE_OK, &u);

	CHECK(j != NULL);
	if (!j)
		return;
	CHECK_EQ_STR(s(j, "ts"), "2026-12-07T16:00:00Z");
	CHECK_EQ_STR(s(j, "request_id"), "5f0c");
	CHECK_EQ_STR(s(j, "trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
	CHECK_EQ_STR(s(j, "client_ip"), "192.0.2.7");
	CHECK_EQ_INT(n(j, "client_port"), 40512);
	CHECK_EQ_STR(s(j, "method"), "POST");
	CHECK_EQ_STR(s(j, "path"), "/v1/chat/completions");
	CHECK_EQ_STR(s(j, "tenant"), "acme");
	CHECK_EQ_STR(s(j, "key_prefix"), "jr-1a2b3c4d");
	CHECK(is_null(j, "issuer"));
	CHECK_EQ_STR(s(j, "end_user"), "alice@example.com");
	CHECK_EQ_STR(s(j, "model"), "gpt-4o");
	CHECK(is_null(j, "fallback_reason"));
	CHECK_EQ_STR(s(j, "backend"), "be_mock");
	CHECK_EQ_STR(s(j, "server"), "s1");
	CHECK_EQ_STR(s(j, "verdict"), "allow");
	CHECK_EQ_INT(n(j, "status"), 200);
	CHECK(is_null(j, "error_code"));
	CHECK_EQ_INT(n(j, "prompt_tokens"), 12);
	CHECK_EQ_INT(n(j, "completion_tokens"), 30);
	CHECK_EQ_INT(n(j, "total_tokens"), 42);
	CHECK(json_is_false(json_object_get(j, "usage_estimated")));
	CHECK(json_real_value(json_object_get(j, "cost")) > 0.00124 &&
	      json_real_value(json_object_get(j, "cost")) < 0.00126);
	CHECK_EQ_INT(n(j, "time_connect_ms"), 1);
	CHECK_EQ_INT(n(j, "time_response_ms"), 120);
	CHECK_EQ_INT(n(j, "time_total_ms"), 125);
	CHECK_EQ_INT(n(j, "time_decision_ms"), 2);
	CHECK_EQ_INT(n(j, "bytes_out"), 812);
	CHECK_EQ_STR(s(j, "termination"), "----");
	CHECK(json_is_false(json_object_get(j, "truncated")));
	json_decref(j);
}

/* A refusal: the error code and retry-after from the line, no usage, HAProxy's -1 timings
 * as null, a token's issuer. */
static void test_refused_line(void)
{
	struct alog_usage u = { 0, 0, 0, 0, 0, "", "https://idp.example" };
	json_t *j = format(LINE_REFUSED, &u);

	CHECK(j != NULL);
	if (!j)
		return;
	CHECK_EQ_STR(s(j, "verdict"), "deny");
	CHECK_EQ_INT(n(j, "status"), 429);
	CHECK_EQ_STR(s(j, "error_code"), "rate_limit_exceeded");
	CHECK_EQ_INT(n(j, "retry_after_s"), 7);
	CHECK_EQ_STR(s(j, "issuer"), "https://idp.example");
	CHECK(is_null(j, "end_user") && is_null(j, "trace_id"));
	CHECK(is_null(j, "prompt_tokens") && is_null(j, "cost") && is_null(j, "usage_estimated"));
	CHECK(is_null(j, "time_queue_ms") && is_null(j, "time_response_ms"));
	CHECK_EQ_STR(s(j, "backend"), "fe_jairouter");
	CHECK_EQ_STR(s(j, "server"), "<NOSRV>");
	CHECK_EQ_STR(s(j, "client_ip"), "2001:db8::1");
	json_decref(j);
}

/* A cut line (no end=1) is still logged, flagged; values needing escapes stay valid JSON;
 * the trace field gives trace_id; a malformed one gives null. */
static void test_truncated_and_escaped(void)
{
	struct alog_usage u = { 1, 1, 0, 0, 1, "o\"b\\x", NULL };
	json_t *j = format("id=1 p=/v1/x\"y trace=0af7651916cd43dd8448eb211c80319c st=200", &u);

	CHECK(j != NULL);
	if (!j)
		return;
	CHECK(json_is_true(json_object_get(j, "truncated")));
	CHECK_EQ_STR(s(j, "path"), "/v1/x\"y");
	CHECK_EQ_STR(s(j, "end_user"), "o\"b\\x");
	CHECK_EQ_STR(s(j, "trace_id"), "0af7651916cd43dd8448eb211c80319c");
	CHECK(json_is_true(json_object_get(j, "usage_estimated")));
	json_decref(j);
	j = format("id=2 trace=XYZ end=1", NULL);
	CHECK(j && is_null(j, "trace_id") && is_null(j, "tenant") && is_null(j, "end_user"));
	json_decref(j);
}

/* Lines written through the queue reach the file whole, in order. */
static void test_writer_file(void)
{
	char path[] = "/tmp/jr-alog-XXXXXX", err[256], buf[8192];
	struct jr_report rep;
	struct alog_stats st;
	size_t len;
	FILE *f;
	int fd = mkstemp(path), lines = 0;

	CHECK(fd >= 0);
	close(fd);
	CHECK_EQ_INT(alog_open(path, 1 << 20, err, sizeof(err)), 0);
	CHECK(alog_enabled());
	CHECK_EQ_INT(report_parse(LINE_OK, strlen(LINE_OK), &rep), 0);
	for (int i = 0; i < 3; i++)
		alog_request(&rep, NULL);
	alog_close();
	alog_stats(&st);
	CHECK_EQ_INT(st.lines, 3);
	f = fopen(path, "r");
	CHECK(f != NULL);
	while (f && fgets(buf, sizeof(buf), f)) {
		json_t *j = json_loads(buf, 0, NULL);
		len = strlen(buf);
		CHECK(j != NULL && len > 0 && buf[len - 1] == '\n');
		CHECK_EQ_STR(s(j, "request_id"), "5f0c");
		json_decref(j);
		lines++;
	}
	if (f)
		fclose(f);
	CHECK_EQ_INT(lines, 3);
	unlink(path);
}

/* A queue smaller than a line drops it and counts it; an unwritable target is refused. */
static void test_writer_bounds(void)
{
	char err[256] = "";
	struct jr_report rep;
	struct alog_stats before, after;

	alog_stats(&before);
	CHECK_EQ_INT(alog_open("/nonexistent-dir/access.log", 1024, err, sizeof(err)), -1);
	CHECK(strstr(err, "/nonexistent-dir/access.log") != NULL);
	CHECK(!alog_enabled());
	CHECK_EQ_INT(alog_open("stderr", 16, err, sizeof(err)), 0);
	CHECK_EQ_INT(report_parse(LINE_OK, strlen(LINE_OK), &rep), 0);
	alog_request(&rep, NULL);
	alog_request(&rep, NULL);
	alog_close();
	alog_stats(&after);
	CHECK_EQ_INT(after.dropped - before.dropped, 2);
	CHECK_EQ_INT(after.lines - before.lines, 0);
}

/* A FIFO nobody reads: refused at open without a reader (never a blocked open); with a
 * reader that takes nothing, the queue fills and drops, and the stop does not hang: the
 * lines the pipe did not take are counted lost, and every line is either read whole,
 * lost or dropped. */
static void test_writer_stalled_pipe(void)
{
	char dir[] = "/tmp/jr-alog-fifo-XXXXXX", path[64], err[256] = "", buf[65536];
	struct alog_stats before, after;
	struct jr_report rep;
	uint64_t queued, lost, dropped, read_lines = 0;
	ssize_t n;
	int rd;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/access.fifo", dir);
	CHECK_EQ_INT(mkfifo(path, 0600), 0);
	CHECK_EQ_INT(alog_open(path, 65536, err, sizeof(err)), -1);
	CHECK(strstr(err, "FIFO nobody reads") != NULL);
	CHECK(!alog_enabled());

	rd = open(path, O_RDONLY | O_NONBLOCK); /* a reader that reads nothing until the end */
	CHECK(rd >= 0);
	alog_stats(&before);
	CHECK_EQ_INT(alog_open(path, 65536, err, sizeof(err)), 0);
	CHECK_EQ_INT(report_parse(LINE_OK, strlen(LINE_OK), &rep), 0);
	/* Far more than the pipe (64 KiB) and the queue (64 KiB) hold. */
	for (int i = 0; i < 4000; i++)
		alog_request(&rep, NULL);
	alog_close(); /* returns: the stalled pipe is given up */
	alog_stats(&after);
	queued = after.lines - before.lines;
	lost = after.lost - before.lost;
	dropped = after.dropped - before.dropped;
	CHECK(dropped > 0);
	CHECK(lost > 0);
	CHECK_EQ_INT((long long)(queued + dropped), 4000);
	while ((n = read(rd, buf, sizeof(buf))) > 0)
		for (const char *p = buf; (p = memchr(p, '\n', (size_t)(buf + n - p))); p++)
			read_lines++;
	CHECK_EQ_INT((long long)(read_lines + lost), (long long)queued);
	close(rd);
	unlink(path);
	rmdir(dir);
}

/* A full disk (/dev/full: every write fails with ENOSPC): every queued line is counted
 * lost, nothing blocks. */
static void test_writer_disk_full(void)
{
	char err[256] = "";
	struct alog_stats before, after;
	struct jr_report rep;

	alog_stats(&before);
	CHECK_EQ_INT(alog_open("/dev/full", 1 << 20, err, sizeof(err)), 0);
	CHECK_EQ_INT(report_parse(LINE_OK, strlen(LINE_OK), &rep), 0);
	for (int i = 0; i < 100; i++)
		alog_request(&rep, NULL);
	alog_close();
	alog_stats(&after);
	CHECK_EQ_INT((long long)(after.lines - before.lines), 100);
	CHECK_EQ_INT((long long)(after.lost - before.lost), 100);
	CHECK(after.write_errors > before.write_errors);
}

int main(void)
{
	RUN(test_admitted_line);
	RUN(test_refused_line);
	RUN(test_truncated_and_escaped);
	RUN(test_writer_file);
	RUN(test_writer_bounds);
	RUN(test_writer_stalled_pipe);
	RUN(test_writer_disk_full);
	TEST_END();
}
