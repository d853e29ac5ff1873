/*
 * Unit tests for report/: the end-of-request line format, the subscriber fan-out and
 * the datagram listener (a real UDP socket on loopback, read by a real event loop).
 */
#include "report/report.h"

#include "testlib.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static const char HAPROXY_LINE[] =
	"id=6f1c2a ts=1764300000 ci=127.0.0.1 cp=50000 be=be_mock srv=mock1 tq=0 tw=0 tc=1 tr=12 "
	"ta=15 st=200 bytes=512 tsc=---- v=allow tenant=acme key=jr-0123abcd model=gpt-x "
	"spoe_ms=0 spoe_err=- m=POST p=/v1/chat/completions end=1\n";

static void test_parse_haproxy_line(void)
{
	struct jr_report r;
	size_t n = 0;
	const char *v;

	CHECK_EQ_INT(report_parse(HAPROXY_LINE, strlen(HAPROXY_LINE), &r), 0);
	CHECK_EQ_INT(r.truncated, 0);
	CHECK_EQ_INT(r.adapter, 0);
	CHECK_EQ_INT(r.status, 200);
	CHECK_EQ_INT(r.tc_ms, 1);
	CHECK_EQ_INT(r.tr_ms, 12);
	CHECK_EQ_INT(r.ta_ms, 15);
	CHECK_EQ_INT(r.bytes, 512);
	CHECK_EQ_STR(r.tsc, "----");
	v = report_get(&r, "tenant", &n);
	CHECK(v && n == 4 && memcmp(v, "acme", 4) == 0);
	CHECK(report_is(&r, "srv", "mock1"));
	CHECK(report_is(&r, "p", "/v1/chat/completions"));
	/* "-" is absent, like a missing key */
	CHECK(report_get(&r, "spoe_err", NULL) == NULL);
	CHECK(report_get(&r, "nope", NULL) == NULL);
	CHECK_EQ_INT(report_get_int(&r, "spoe_err", -7), -7);
	CHECK_EQ_INT(report_client_aborted(&r), 0);
}

static void test_parse_edges(void)
{
	struct jr_report r;
	const char *cut = "id=1 st=502 tsc=SH-- tr=-1 tenant=acme";
	const char *noid = "st=200 end=1";
	const char *junk = "   \x01\x02 === =x id==y end=1";
	const char *adapter = "src=adapter id=abc pt=12 ct=34 est=1";
	const char *abort = "id=2 st=200 tsc=CD-- end=1";
	const char *bad = "id=3 st=20x0 ta=99999999999999999999 end=1";

	CHECK_EQ_INT(report_parse(cut, strlen(cut), &r), 0);
	CHECK_EQ_INT(r.truncated, 1); /* no end marker */
	CHECK_EQ_INT(r.status, 502);
	CHECK_EQ_INT(r.tr_ms, -1);
	CHECK_EQ_INT(report_parse(noid, strlen(noid), &r), -1);
	/* Tokens whose key is not [a-z0-9_]+ are skipped; "id==y" has id "=y". */
	CHECK_EQ_INT(report_parse(junk, strlen(junk), &r), 0);
	CHECK(report_is(&r, "id", "=y"));
	CHECK_EQ_INT(r.truncated, 0);
	CHECK_EQ_INT(report_parse(adapter, strlen(adapter), &r), 0);
	CHECK_EQ_INT(r.adapter, 1);
	CHECK_EQ_INT(r.truncated, 0);
	CHECK_EQ_INT(report_get_int(&r, "pt", -1), 12);
	CHECK_EQ_INT(report_get_int(&r, "ct", -1), 34);
	CHECK_EQ_INT(report_parse(abort, strlen(abort), &r), 0);
	CHECK_EQ_INT(report_client_aborted(&r), 1);
	CHECK_EQ_INT(report_parse(bad, strlen(bad), &r), 0);
	CHECK_EQ_INT(r.status, -1);
	CHECK_EQ_INT(r.ta_ms, -1);
	CHECK_EQ_INT(report_parse("", 0, &r), -1);
}

static void test_parse_field_limit(void)
{
	char line[REPORT_MAX_FIELDS * 8 + 64];
	size_t used = 0;
	struct jr_report r;

	used += (size_t)snprintf(line + used, sizeof(line) - used, "id=x");
	for (int i = 0; i < REPORT_MAX_FIELDS + 5; i++)
		used += (size_t)snprintf(line + used, sizeof(line) - used, " k%d=%d", i, i);
	used += (size_t)snprintf(line + used, sizeof(line) - used, " end=1");
	CHECK_EQ_INT(report_parse(line, used, &r), 0);
	CHECK_EQ_INT((int)r.n, REPORT_MAX_FIELDS);
	CHECK_EQ_INT(r.truncated, 1);
}

struct seen {
	int calls;
	int last_status;
	char order[8];
};

static void sub_a(const struct jr_report *r, void *arg)
{
	struct seen *s = arg;
	s->order[s->calls++ % 7] = 'a';
	s->last_status = r->status;
}

static void sub_b(const struct jr_report *r, void *arg)
{
	struct seen *s = arg;
	(void)r;
	s->order[s->calls++ % 7] = 'b';
}

static void test_subscribers(void)
{
	struct seen s;
	struct jr_report r;
	int rc = 0;

	memset(&s, 0, sizeof(s));
	report_unsubscribe_all();
	CHECK_EQ_INT(report_subscribe(sub_a, &s), 0);
	CHECK_EQ_INT(report_subscribe(sub_b, &s), 0);
	CHECK_EQ_INT(report_parse(HAPROXY_LINE, strlen(HAPROXY_LINE), &r), 0);
	report_publish(&r);
	CHECK_EQ_INT(s.calls, 2);
	CHECK_EQ_STR(s.order, "ab");
	CHECK_EQ_INT(s.last_status, 200);
	for (int i = 2; i < REPORT_MAX_SUBSCRIBERS; i++)
		rc |= report_subscribe(sub_b, &s);
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(report_subscribe(sub_b, &s), -1); /* full */
	report_unsubscribe_all();
}

/* The listener on a real socket: datagrams in, parsed reports out, counters right. */
struct loop_seen {
	struct event_base *base;
	int lines;
	char last_id[32];
};

static void sub_loop(const struct jr_report *r, void *arg)
{
	struct loop_seen *s = arg;
	size_t n = 0;
	const char *id = report_get(r, "id", &n);

	s->lines++;
	if (id && n < sizeof(s->last_id)) {
		memcpy(s->last_id, id, n);
		s->last_id[n] = '\0';
	}
}

/* A report listener on a free loopback port, its address in *sin; NULL if none was found.
 * The listener needs the same port free for UDP and TCP: take a free UDP port, free it,
 * and try; the TCP port of that number may be busy (other suites run servers), so try
 * again with another, a bounded number of times. */
static struct report_listener *listen_on_free_port(struct event_base *base, struct sockaddr_in *sin)
{
	struct report_listener *l = NULL;
	char addr[64], err[256];

	for (int attempt = 0; attempt < 50 && !l; attempt++) {
		int fd = socket(AF_INET, SOCK_DGRAM, 0);
		socklen_t sl = sizeof(*sin);

		memset(sin, 0, sizeof(*sin));
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (bind(fd, (struct sockaddr *)sin, sizeof(*sin)) < 0 ||
		    getsockname(fd, (struct sockaddr *)sin, &sl) < 0) {
			close(fd);
			continue;
		}
		close(fd);
		snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sin->sin_port));
		l = report_listen(base, addr, err, sizeof(err));
	}
	return l;
}

static void test_listener(void)
{
	struct event_base *base = event_base_new();
	struct loop_seen s;
	struct report_stats st;
	struct report_listener *l;
	struct sockaddr_in sin;
	char err[256];

	memset(&s, 0, sizeof(s));
	report_unsubscribe_all();
	report_subscribe(sub_loop, &s);
	CHECK(report_listen(base, "nonsense", err, sizeof(err)) == NULL);
	CHECK(strstr(err, "cannot parse") != NULL);
	l = listen_on_free_port(base, &sin);
	CHECK(l != NULL);
	if (l) {
		int out = socket(AF_INET, SOCK_DGRAM, 0);
		const char *msgs[] = { "id=r1 st=200 end=1", "no id here", "id=r2 st=500", HAPROXY_LINE };
		for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++)
			sendto(out, msgs[i], strlen(msgs[i]), 0, (struct sockaddr *)&sin, sizeof(sin));
		close(out);
		/* Loopback datagrams are queued synchronously: one non-blocking turn reads them. */
		event_base_loop(base, EVLOOP_NONBLOCK);
		report_listener_stats(l, &st);
		CHECK_EQ_INT((int)st.lines, 3);
		CHECK_EQ_INT((int)st.malformed, 1);
		CHECK_EQ_INT((int)st.truncated, 1);
		CHECK_EQ_INT(s.lines, 3);
		CHECK_EQ_STR(s.last_id, "6f1c2a");
		/* The stream transport on the same address: octet-counted frames, one split
		 * across two writes, then a framing error that closes the connection. */
		{
			int tcp = socket(AF_INET, SOCK_STREAM, 0);
			const char *a = "18 id=s1 st=201 end=1", *b1 = "18 id=s2 st", *b2 = "=202 end=1";
			CHECK(connect(tcp, (struct sockaddr *)&sin, sizeof(sin)) == 0);
			for (int turn = 0; turn < 5; turn++)
				event_base_loop(base, EVLOOP_NONBLOCK); /* accept */
			CHECK(write(tcp, a, strlen(a)) == (ssize_t)strlen(a));
			CHECK(write(tcp, b1, strlen(b1)) == (ssize_t)strlen(b1));
			for (int turn = 0; turn < 5; turn++)
				event_base_loop(base, EVLOOP_NONBLOCK);
			report_listener_stats(l, &st);
			CHECK_EQ_INT((int)st.lines, 4); /* s1 read, s2 incomplete */
			CHECK_EQ_STR(s.last_id, "s1");
			CHECK(write(tcp, b2, strlen(b2)) == (ssize_t)strlen(b2));
			for (int turn = 0; turn < 5; turn++)
				event_base_loop(base, EVLOOP_NONBLOCK);
			report_listener_stats(l, &st);
			CHECK_EQ_INT((int)st.lines, 5);
			CHECK_EQ_STR(s.last_id, "s2");
			CHECK(write(tcp, "x1 junk", 7) == 7);
			for (int turn = 0; turn < 5; turn++)
				event_base_loop(base, EVLOOP_NONBLOCK);
			report_listener_stats(l, &st);
			CHECK_EQ_INT((int)st.malformed, 2);
			{
				char c;
				/* the agent closed its end: EOF (0) for us */
				CHECK(read(tcp, &c, 1) == 0);
			}
			close(tcp);
		}
		report_listener_free(l);
	}
	/* A unix datagram socket, and its file removed on free. */
	{
		char path[64];
		snprintf(path, sizeof(path), "unix@/tmp/jr-report-test-%d.sock", (int)getpid());
		l = report_listen(base, path, err, sizeof(err));
		CHECK(l != NULL);
		CHECK(access(path + 5, F_OK) == 0);
		report_listener_free(l);
		CHECK(access(path + 5, F_OK) != 0);
	}
	report_unsubscribe_all();
	event_base_free(base);
}

/* Several agents and restarts: lines of another agent are not published; a line of
 * another process of this agent is published flagged; during a drain such lines go on to
 * the successor's datagram socket on the same address, and the hand-over half-closes the
 * ring connection. */
static int other_seen;

static void sub_other(const struct jr_report *r, void *arg)
{
	struct loop_seen *s = arg;

	sub_loop(r, arg);
	if (r->other_process)
		other_seen++;
	(void)s;
}

static void turns(struct event_base *base)
{
	for (int t = 0; t < 5; t++)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

static void test_identity_and_handover(void)
{
	struct event_base *base = event_base_new();
	struct loop_seen s;
	struct report_stats st;
	struct report_listener *l = NULL;
	struct sockaddr_in sin;
	char buf[512];
	int one = 1, out, succ, tcp;

	memset(&s, 0, sizeof(s));
	report_unsubscribe_all();
	report_subscribe(sub_other, &s);
	report_set_identity("agent-a", "aaaaaaaa");
	l = listen_on_free_port(base, &sin);
	CHECK(l != NULL);
	if (!l) {
		event_base_free(base);
		return;
	}
	out = socket(AF_INET, SOCK_DGRAM, 0);
	{
		const char *msgs[] = { "id=f1 ag=agent-b acct=bbbbbbbb.1.2.3.4.5 end=1",
				       "id=o1 ag=agent-a acct=aaaaaaaa.1.2.3.4.5 end=1",
				       "id=p1 ag=agent-a acct=cccccccc.1.2.3.4.5 end=1", "id=n1 end=1" };
		for (size_t i = 0; i < 4; i++)
			sendto(out, msgs[i], strlen(msgs[i]), 0, (struct sockaddr *)&sin, sizeof(sin));
	}
	event_base_loop(base, EVLOOP_NONBLOCK);
	report_listener_stats(l, &st);
	CHECK_EQ_INT((int)st.foreign, 1);
	CHECK_EQ_INT((int)st.lines, 3);
	CHECK_EQ_INT(other_seen, 1);
	/* The ring connection, then the successor's socket (SO_REUSEPORT), then the drain. */
	tcp = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(connect(tcp, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	turns(base);
	succ = socket(AF_INET, SOCK_DGRAM, 0);
	setsockopt(succ, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	CHECK(bind(succ, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	report_listener_drain(l);
	CHECK_EQ_INT((int)report_listener_streams(l), 1);
	{
		const char *mine = "46 id=m1 ag=agent-a acct=aaaaaaaa.1.2.3.4.5 end=1";
		const char *next = "46 id=q1 ag=agent-a acct=dddddddd.1.2.3.4.5 end=1";
		CHECK(write(tcp, mine, strlen(mine)) == (ssize_t)strlen(mine));
		CHECK(write(tcp, next, strlen(next)) == (ssize_t)strlen(next));
	}
	turns(base);
	report_listener_stats(l, &st);
	CHECK_EQ_INT((int)st.lines, 4); /* m1 published */
	CHECK_EQ_STR(s.last_id, "m1");
	CHECK_EQ_INT((int)st.forwarded, 1);
	{
		struct timeval tv = { 1, 0 };
		ssize_t n;
		setsockopt(succ, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		n = recv(succ, buf, sizeof(buf) - 1, 0);
		CHECK(n > 0);
		buf[n > 0 ? n : 0] = '\0';
		CHECK(strstr(buf, "id=q1") != NULL);
		if (!strstr(buf, "id=q1"))
			fprintf(stderr, "  received %zd: %s\n", n, buf);
	}
	/* Hand-over: the agent half-closes; the peer (HAProxy) sees EOF and closes. */
	report_listener_handover(l);
	CHECK(read(tcp, buf, 1) == 0);
	close(tcp);
	turns(base);
	CHECK_EQ_INT((int)report_listener_streams(l), 0);
	close(out);
	close(succ);
	report_listener_free(l);
	report_unsubscribe_all();
	report_set_identity("", "");
	event_base_free(base);
}

int main(void)
{
	RUN(test_parse_haproxy_line);
	RUN(test_parse_edges);
	RUN(test_parse_field_limit);
	RUN(test_subscribers);
	RUN(test_listener);
	RUN(test_identity_and_handover);
	TEST_END();
}
