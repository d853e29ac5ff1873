/*
 * redis/fleet: fleet-wide limits against a real redis-server started on a free loopback
 * port (no persistence): admissions charge and refuse with the limit's headers, a
 * concurrency slot comes back when settled, the counters show in the metrics, and a Redis
 * that went away makes admissions fall back (never wait) until it is back.
 * redis-server is a listed package (packages.txt): not being able to start it fails.
 */
#include "limit/limiter.h"
#include "redis/fleet.h"
#include "util/log.h"

#include "ports.h"
#include "testlib.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static struct event_base *base;
static pid_t redis_pid;
static int redis_port;
static int done_calls, last_admitted;

/* redis-server on a free port; 0 once it accepts connections, -1 when it cannot run. */
static int redis_start(void)
{
	char port[16];

	redis_port = fx_free_port();
	snprintf(port, sizeof(port), "%d", redis_port);
	redis_pid = fork();
	if (redis_pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
		       "--appendonly", "no", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) { /* up to 5 s for the server to listen */
		int st;
		if (fx_port_open(redis_port))
			return 0;
		if (waitpid(redis_pid, &st, WNOHANG) == redis_pid)
			return -1;
		usleep(10000);
	}
	return -1;
}

static void redis_stop(void)
{
	if (redis_pid > 0) {
		kill(redis_pid, SIGTERM);
		waitpid(redis_pid, NULL, 0);
		redis_pid = 0;
	}
}

static void on_done(void *arg, int admitted)
{
	(void)arg;
	done_calls++;
	last_admitted = admitted;
}

/* One admission of request ID, run to its answer on the loop: 1, 0, or -1 (fell back). */
static int admit_as(struct lim_item *items, size_t n, const char *id)
{
	int before = done_calls;

	if (fleet_admit(base, items, n, id, on_done, NULL) < 0)
		return -1;
	while (done_calls == before)
		event_base_loop(base, EVLOOP_ONCE);
	return last_admitted;
}

/* One admission of a new request. */
static int admit(struct lim_item *items, size_t n)
{
	static int seq;
	char id[32];

	snprintf(id, sizeof(id), "req-%d", ++seq);
	return admit_as(items, n, id);
}

static void item(struct lim_item *it, int64_t id, enum lim_dim dim, enum lim_algo a, int64_t amount,
		 const char *scope)
{
	memset(it, 0, sizeof(*it));
	it->def.id = id;
	it->def.dim = dim;
	it->def.p.algo = a;
	it->def.p.amount = amount;
	it->def.p.window_us = 60 * LIM_US_PER_S;
	it->cost = 1;
	snprintf(it->key, sizeof(it->key), "%lld:0:%s", (long long)id, scope);
}

static void test_window_admits_then_refuses(void)
{
	struct lim_item it;

	item(&it, 1, LD_REQUESTS, LIM_SLIDING_WINDOW, 2, "t1");
	CHECK_EQ_INT(admit(&it, 1), 1);
	CHECK(it.remote); /* charged in Redis: settled there */
	CHECK_EQ_INT(it.res.limit, 2);
	CHECK_EQ_INT(it.res.remaining, 1);
	CHECK_EQ_INT(admit(&it, 1), 1);
	CHECK_EQ_INT(it.res.remaining, 0);
	it.remote = 0;
	CHECK_EQ_INT(admit(&it, 1), 0);
	CHECK(!it.res.admit);
	CHECK(!it.remote);
	CHECK(it.res.retry_us > 0);
	CHECK(fleet_usable());
}

/* All or nothing: a refused item leaves the other uncharged. */
static void test_several_items_all_or_nothing(void)
{
	struct lim_item it[2];

	item(&it[0], 2, LD_REQUESTS, LIM_SLIDING_WINDOW, 10, "t2");
	item(&it[1], 3, LD_REQUESTS, LIM_SLIDING_WINDOW, 1, "t2");
	CHECK_EQ_INT(admit(it, 2), 1);
	CHECK_EQ_INT(admit(it, 2), 0);
	CHECK_EQ_INT(it[0].res.admit, 1);
	CHECK_EQ_INT(it[1].res.admit, 0);
	CHECK_EQ_INT(admit(&it[0], 1), 1);
	CHECK_EQ_INT(it[0].res.remaining, 8); /* 10 - the first and this one: the refusal took none */
}

/* A decision retried for the same request (HAProxy asks another agent when the first
 * died before answering) returns the first admission's answer and charges nothing more;
 * another request, or the same id with other limits, is charged as usual. */
static void test_retried_request_charged_once(void)
{
	struct lim_item it, other;

	item(&it, 5, LD_REQUESTS, LIM_SLIDING_WINDOW, 3, "t5");
	CHECK_EQ_INT(admit_as(&it, 1, "retried-1"), 1);
	CHECK_EQ_INT(it.res.remaining, 2);
	CHECK_EQ_INT(admit_as(&it, 1, "retried-1"), 1);
	CHECK_EQ_INT(it.res.remaining, 2); /* the same answer: no second slot */
	CHECK_EQ_INT(admit(&it, 1), 1);
	CHECK_EQ_INT(it.res.remaining, 1);
	item(&other, 6, LD_REQUESTS, LIM_SLIDING_WINDOW, 3, "t6");
	CHECK_EQ_INT(admit_as(&other, 1, "retried-1"), 1);
	CHECK_EQ_INT(other.res.remaining, 2);
	CHECK_EQ_INT(admit(&it, 1), 1);
	CHECK_EQ_INT(it.res.remaining, 0);
	CHECK_EQ_INT(admit(&it, 1), 0);
	/* A refusal is not remembered: the same id is decided afresh. */
	CHECK_EQ_INT(admit_as(&it, 1, "refused-1"), 0);
	CHECK_EQ_INT(admit_as(&it, 1, "refused-1"), 0);
}

/* A concurrency slot: taken, full, given back by a settle (on the control connection,
 * which Redis orders independently: retried until it has arrived). */
static void test_concurrency_slot_comes_back(void)
{
	struct lim_item it;
	int64_t zero = 0;
	int ok = 0;

	item(&it, 4, LD_CONCURRENT, LIM_CONCURRENCY, 1, "k9");
	CHECK_EQ_INT(admit_as(&it, 1, "conc-1"), 1);
	CHECK_EQ_INT(admit(&it, 1), 0);
	it.slot = 1;
	fleet_settle(&it, &zero, 1, "conc-1");
	for (int i = 0; i < 200 && !ok; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		ok = admit(&it, 1) == 1;
		if (!ok)
			usleep(5000);
	}
	CHECK(ok);
}

static void test_metrics(void)
{
	struct evbuffer *b = evbuffer_new();
	char text[4096];
	int n;

	fleet_render_metrics(b);
	n = evbuffer_remove(b, text, sizeof(text) - 1);
	text[n > 0 ? n : 0] = '\0';
	CHECK(strstr(text, "jairouter_redis_calls_total{outcome=\"ok\"}") != NULL);
	CHECK(strstr(text, "jairouter_redis_calls_total{outcome=\"ok\"} 0\n") == NULL);
	CHECK(strstr(text, "jairouter_redis_connections 2\n") != NULL); /* worker + control */
	evbuffer_free(b);
}

/* Redis stops: the next admission does not get an answer and falls back (-1), and the
 * store reports itself unusable until Redis is back. */
static void test_redis_gone_falls_back(void)
{
	struct lim_item it;
	int r;

	redis_stop();
	item(&it, 5, LD_REQUESTS, LIM_SLIDING_WINDOW, 5, "t5");
	r = admit(&it, 1);
	CHECK_EQ_INT(r, -1);
	CHECK(!fleet_usable());
	CHECK_EQ_INT(admit(&it, 1), -1); /* in fallback: not even tried */
}

int main(void)
{
	log_set_level(LOG_ERROR);
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	if (redis_start() < 0) {
		fprintf(stderr, "redis-server did not start\n");
		return 1;
	}
	{
		char addr[32];
		snprintf(addr, sizeof(addr), "127.0.0.1:%d", redis_port);
		fleet_configure(addr, 2000, 60000);
	}
	CHECK_EQ_INT(fleet_start(base), 0);
	RUN(test_window_admits_then_refuses);
	RUN(test_several_items_all_or_nothing);
	RUN(test_retried_request_charged_once);
	RUN(test_concurrency_slot_comes_back);
	RUN(test_metrics);
	RUN(test_redis_gone_falls_back);
	fleet_worker_exit(NULL);
	fleet_stop();
	redis_stop();
	event_base_free(base);
	TEST_END();
}
