/*
 * metrics/ and admin/: counters summed across worker shards, the decision histogram, the
 * gauges and extra renderers in the text exposition; and the HTTP endpoint that serves
 * them (/metrics, /healthz, /readyz) on a free loopback port, answered by a real
 * libevent HTTP server to real socket requests.
 */
#include "admin/admin.h"
#include "metrics/metrics.h"

#include "evtext.h"
#include "ports.h"
#include "testlib.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static struct metrics_gauges gauges_now; /* what the endpoint reports */

static void extra(struct evbuffer *out, void *arg)
{
	evbuffer_add_printf(out, "jairouter_test_extra %d\n", *(const int *)arg);
}

/* The exposition as a NUL-terminated string (malloc'd). */
static char *render(const struct metrics_gauges *g)
{
	struct evbuffer *b = evbuffer_new();

	metrics_render(b, g);
	return evbuffer_text(b);
}

static void test_shards_sum_and_render(void)
{
	static int extra_value = 42;
	struct metrics_shard *a = metrics_shard_new(), *b = metrics_shard_new();
	struct metrics_gauges g = { .ready = 1, .db_status = 1, .tenants = 3, .workers = 2 };
	char *text;

	metrics_inc(a, MC_NOTIFY);
	metrics_inc(b, MC_NOTIFY);
	metrics_inc(b, MC_HELLO);
	metrics_observe_decision(a, 1, PL_R_OK, 100000);      /* 100 us */
	metrics_observe_decision(b, 0, PL_R_RATE_LIMITED, 2000000000ULL); /* 2 s: +Inf */
	CHECK_EQ_INT(metrics_add_renderer(extra, &extra_value), 0);
	text = render(&g);
	CHECK(strstr(text, "\njairouter_spop_notifies_total 2\n") != NULL);
	CHECK(strstr(text, "\njairouter_spop_hellos_total 1\n") != NULL);
	CHECK(strstr(text, "jairouter_decisions_total{outcome=\"allow\",reason=\"ok\"} 1\n") != NULL);
	CHECK(strstr(text, "jairouter_decisions_total{outcome=\"deny\",reason=\"rate_limited\"} 1\n") != NULL);
	/* The common denial stays visible at zero; other zero series are left out. */
	CHECK(strstr(text, "jairouter_decisions_total{outcome=\"deny\",reason=\"invalid_key\"} 0\n") != NULL);
	CHECK(strstr(text, "reason=\"quota_exceeded\"") == NULL);
	CHECK(strstr(text, "jairouter_decision_duration_seconds_bucket{le=\"+Inf\"} 2\n") != NULL);
	CHECK(strstr(text, "jairouter_decision_duration_seconds_count 2\n") != NULL);
	CHECK(strstr(text, "\njairouter_state_tenants 3\n") != NULL);
	CHECK(strstr(text, "\njairouter_database_up 1\n") != NULL);
	CHECK(strstr(text, "jairouter_database_status{state=\"up\"} 1\n") != NULL);
	CHECK(strstr(text, "\njairouter_test_extra 42\n") != NULL); /* the registered renderer */
	free(text);
}

static void gauges(struct metrics_gauges *g, void *arg)
{
	(void)arg;
	*g = gauges_now;
}

static struct event_base *base;

static void *loop_main(void *arg)
{
	(void)arg;
	event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

/* One HTTP/1.0 request; returns the status and copies the body into body. */
static int http(int port, const char *method, const char *path, char *body, size_t cap)
{
	char req[256], resp[65536];
	size_t got = 0;
	ssize_t n;
	int fd = fx_connect(port);

	if (fd < 0)
		return -1;
	snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", method, path);
	CHECK(write(fd, req, strlen(req)) == (ssize_t)strlen(req));
	while (got < sizeof(resp) - 1 && (n = read(fd, resp + got, sizeof(resp) - 1 - got)) > 0)
		got += (size_t)n;
	resp[got] = '\0';
	close(fd);
	return fx_http_answer(resp, body, cap);
}

static void test_endpoints(void)
{
	char err[128], body[65536], addr[32];
	int port = fx_free_port();
	struct admin *a;
	pthread_t th;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	base = event_base_new();
	CHECK(admin_start(base, "127.0.0.1", gauges, NULL, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "expected host:port") != NULL);
	a = admin_start(base, addr, gauges, NULL, err, sizeof(err));
	CHECK(a != NULL);
	if (!a)
		return;
	gauges_now = (struct metrics_gauges){ .ready = 1, .db_status = 1, .tenants = 2, .keys = 5,
					     .models = 1, .connections = 3, .workers = 2 };
	pthread_create(&th, NULL, loop_main, NULL);
	CHECK_EQ_INT(http(port, "GET", "/healthz", body, sizeof(body)), 200);
	CHECK(strstr(body, "\"status\":\"ok\"") != NULL);
	CHECK(strstr(body, "\"api_keys\":5") != NULL);
	CHECK(strstr(body, "\"limits\":\"local\"") != NULL);
	CHECK_EQ_INT(http(port, "GET", "/readyz", body, sizeof(body)), 200);
	CHECK_EQ_INT(http(port, "GET", "/metrics", body, sizeof(body)), 200);
	CHECK(strstr(body, "\njairouter_state_api_keys 5\n") != NULL);
	CHECK_EQ_INT(http(port, "POST", "/metrics", body, sizeof(body)), 405);
	CHECK_EQ_INT(http(port, "GET", "/nowhere", body, sizeof(body)), 404);
	/* The database is down: alive but degraded. Draining: not ready any more. */
	gauges_now.db_status = 2;
	CHECK_EQ_INT(http(port, "GET", "/healthz", body, sizeof(body)), 200);
	CHECK(strstr(body, "\"status\":\"degraded\"") != NULL);
	CHECK(strstr(body, "\"database\":\"down\"") != NULL);
	gauges_now.draining = 1;
	CHECK_EQ_INT(http(port, "GET", "/readyz", body, sizeof(body)), 503);
	CHECK(strstr(body, "\"status\":\"draining\"") != NULL);
	gauges_now = (struct metrics_gauges){ .ready = 0 };
	CHECK_EQ_INT(http(port, "GET", "/readyz", body, sizeof(body)), 503);
	CHECK(strstr(body, "\"status\":\"starting\"") != NULL);
	event_base_loopexit(base, NULL);
	pthread_join(th, NULL);
	admin_stop(a);
	event_base_free(base);
}

int main(void)
{
	evthread_use_pthreads();
	RUN(test_shards_sum_and_render);
	RUN(test_endpoints);
	metrics_free_all();
	TEST_END();
}
