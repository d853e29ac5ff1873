/*
 * bench_limits: the admission cost of the limits, measured in-process.
 *
 *   local  lim_local_admit() for a request facing three limits (a sliding window on
 *          requests, a token bucket on tokens, a concurrency limit, released at once),
 *          on 1 and on 2 threads (the counters share one mutex).
 *   redis  the admission Lua script of redis/fleet.c for the same three limits, over one
 *          connection: sequential round trips (latency), then 32 in flight (throughput).
 *
 * Built and run by scripts/bench-limits (which starts a throwaway redis-server).
 * Usage: bench_limits [REDIS_PORT]
 */
#include "limit/limiter.h"
#include "redis/scripts.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOCAL_N 1000000
#define REDIS_N 20000
#define PIPE 32

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void make_items(struct lim_item *it, int tenant)
{
	memset(it, 0, 3 * sizeof(*it));
	it[0].def.id = 1;
	it[0].def.dim = LD_REQUESTS;
	it[0].def.p.algo = LIM_SLIDING_WINDOW;
	it[0].def.p.amount = 1000000000;
	it[0].def.p.window_us = 60000000;
	it[0].cost = 1;
	it[1].def.id = 2;
	it[1].def.dim = LD_TOKENS;
	it[1].def.p.algo = LIM_TOKEN_BUCKET;
	it[1].def.p.amount = 1000000000000LL;
	it[1].def.p.window_us = 60000000;
	it[1].cost = 300;
	it[2].def.id = 3;
	it[2].def.dim = LD_CONCURRENT;
	it[2].def.p.algo = LIM_CONCURRENCY;
	it[2].def.p.amount = 1000;
	it[2].cost = 1;
	for (int i = 0; i < 3; i++)
		snprintf(it[i].key, sizeof(it[i].key), "%d:0:t%d", i + 1, tenant);
}

struct targ {
	int tenant, n, admitted;
};

static void *local_loop(void *arg)
{
	struct targ *a = arg;
	struct lim_item it[3];
	int64_t t = 1700000000LL * 1000000;

	make_items(it, a->tenant);
	for (int i = 0; i < a->n; i++) {
		t += 10;
		a->admitted += lim_local_admit(it, 3, t, 1);
		lim_local_release(&it[2], 1, 1);
	}
	return NULL;
}

static void bench_local(int threads)
{
	pthread_t th[2];
	struct targ a[2] = { { 1, LOCAL_N, 0 }, { 2, LOCAL_N, 0 } };
	double t0 = now_s(), dt;

	for (int i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, local_loop, &a[i]);
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	dt = now_s() - t0;
	printf("local  %d thread(s): %d admissions each in %.3f s: %.0f ns per admission "
	       "(3 limits + release), %.2f M admissions/s in total (admitted %d)\n",
	       threads, LOCAL_N, dt, dt * 1e9 / LOCAL_N, threads * LOCAL_N / dt / 1e6,
	       a[0].admitted);
}

static const char *argvv[64];
static size_t argl[64];
static char argbuf[64][128];

static int build_admit(const char *sha, const struct lim_item *it, int seq)
{
	int n = 0;

#define A(...) (snprintf(argbuf[n], sizeof(argbuf[n]), __VA_ARGS__), argvv[n] = argbuf[n], \
		argl[n] = strlen(argbuf[n]), n++)
	A("EVALSHA");
	A("%s", sha);
	A("3");
	for (int i = 0; i < 3; i++)
		A("jr:bench:%s", it[i].key);
	A("req-%d", seq);
	A("660000");
	A("3");
	for (int i = 0; i < 3; i++) {
		A("%d", (int)it[i].def.p.algo);
		A("%lld", (long long)it[i].def.p.amount);
		A("%lld", (long long)it[i].def.p.window_us);
		A("0");
		A("%lld", (long long)it[i].cost);
		A("0");
		A("120000");
	}
#undef A
	return n;
}

static void bench_redis(int port)
{
	redisContext *c = redisConnect("127.0.0.1", port);
	redisReply *r;
	struct lim_item it[3];
	char sha[64];
	double t0, dt;
	int ok = 0, n;

	if (!c || c->err) {
		printf("redis: cannot connect to 127.0.0.1:%d\n", port);
		return;
	}
	r = redisCommand(c, "SCRIPT LOAD %s", FLEET_ADMIT_LUA);
	if (!r || r->type != REDIS_REPLY_STRING) {
		printf("redis: SCRIPT LOAD failed\n");
		return;
	}
	snprintf(sha, sizeof(sha), "%s", r->str);
	freeReplyObject(r);
	make_items(it, 9);
	it[2].def.p.amount = 100000000; /* slots are not released here: never the bottleneck */
	t0 = now_s();
	for (int i = 0; i < REDIS_N; i++) {
		n = build_admit(sha, it, i);
		r = redisCommandArgv(c, n, argvv, argl);
		ok += r && r->type == REDIS_REPLY_ARRAY && r->element[0]->integer == 1;
		freeReplyObject(r);
	}
	dt = now_s() - t0;
	printf("redis  sequential: %d admissions in %.3f s: %.1f us per admission round trip "
	       "(3 limits, one EVALSHA; admitted %d)\n", REDIS_N, dt, dt * 1e6 / REDIS_N, ok);
	ok = 0;
	t0 = now_s();
	for (int i = 0; i < REDIS_N; i += PIPE) {
		for (int j = 0; j < PIPE; j++) {
			n = build_admit(sha, it, REDIS_N + i + j);
			redisAppendCommandArgv(c, n, argvv, argl);
		}
		for (int j = 0; j < PIPE; j++) {
			if (redisGetReply(c, (void **)&r) == REDIS_OK) {
				ok += r->type == REDIS_REPLY_ARRAY && r->element[0]->integer == 1;
				freeReplyObject(r);
			}
		}
	}
	dt = now_s() - t0;
	printf("redis  %d in flight: %d admissions in %.3f s: %.0f admissions/s on one "
	       "connection (admitted %d)\n", PIPE, REDIS_N, dt, REDIS_N / dt, ok);
	redisFree(c);
}

int main(int argc, char **argv)
{
	lim_local_init(1000000);
	bench_local(1);
	bench_local(2);
	lim_local_destroy();
	if (argc > 1)
		bench_redis(atoi(argv[1]));
	return 0;
}
