/*
 * bench_lb: the cost of one server choice per strategy, with 2, 16 and 256 servers in
 * the backend, and of the whole route decision (catalogue lookup, policy resolution,
 * read lock, choice). Single thread, release build, a bounded loop per case; each choice
 * is followed by the release its report would bring, so in-flight counts stay flat.
 *
 *   scripts/bench-lb            (builds and runs it; docs/benchmarks.md has the method)
 */
#include "lb/lb.h"
#include "lb/strategy.h"
#include "lb/table.h"
#include "pipeline/pipeline.h"
#include "state/policy.h"
#include "state/state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* A `show stat` dump with one backend of n servers, all UP, weights 1..4. */
static char *csv_of(size_t n)
{
	size_t cap = 256 + n * 160, used = 0;
	char *p = malloc(cap);

	used += (size_t)snprintf(p + used, cap - used, "# pxname,svname,qcur,scur,econ,status,weight,type,\n");
	for (size_t i = 0; i < n; i++)
		used += (size_t)snprintf(p + used, cap - used, "be_bench,s%zu,0,%zu,0,UP,%zu,2,\n", i, i % 3,
					 1 + i % 4);
	return p;
}

static void bench_strategy(enum lb_strategy s, size_t n, unsigned iters)
{
	char *csv = csv_of(n), err[128];
	struct lb_table *t = lb_table_parse(csv, strlen(csv), 0, NULL, err, sizeof(err));
	struct lb_rng rng;
	struct lb_choice c;
	struct lb_choose_in in = { s, 0, 1, 1.25, 10000, 1000000, &rng };
	double t0, t1;
	unsigned ok = 0;

	lb_rng_seed(&rng, 12345);
	lb_table_carry(t, NULL, 0);
	/* Latency figures for the latency strategy. */
	for (size_t i = 0; i < n; i++)
		lb_table_report(t, "be_bench", t->be[0].srv[i].name, LB_O_SUCCESS, 5 + (int64_t)(i % 7), 50, 0, 1000);
	t0 = now_ns();
	for (unsigned i = 0; i < iters; i++) {
		in.key_hash = (uint64_t)i * 0x9e3779b97f4a7c15ull;
		ok += lb_table_choose(t, "be_bench", &in, &c) == 1;
		lb_table_release(t, "be_bench", c.server);
	}
	t1 = now_ns();
	printf("%-12s %4zu servers  %8.1f ns/choice  (%u choices)\n", lb_strategy_name(s), n,
	       (t1 - t0) / iters, ok);
	lb_table_free(t);
	free(csv);
}

/* The whole decision as the route stage makes it. */
static void bench_route(size_t n, unsigned iters)
{
	struct state *st = state_new();
	struct st_model m;
	struct lb_request q;
	struct lb_route r;
	char *csv = csv_of(n), err[128];
	double t0, t1;

	memset(&m, 0, sizeof(m));
	m.id = 1;
	snprintf(m.name, sizeof(m.name), "bench-model");
	snprintf(m.backend, sizeof(m.backend), "be_bench");
	m.services = 0xffffffffu;
	state_put_model(st, &m);
	store_replace(st);
	lb_publish(lb_table_parse(csv, strlen(csv), lb_now_ms(), NULL, err, sizeof(err)), lb_now_ms());
	/* A chat request as the route stage describes it (lb/lb.h). */
	memset(&q, 0, sizeof(q));
	q.model = "bench-model";
	q.backend = "be_bench";
	q.service = PL_SVC_CHAT;
	q.service_bit = policy_service_bit("chat", 4);
	t0 = now_ns();
	for (unsigned i = 0; i < iters; i++) {
		lb_route(&q, &r);
		lb_release("be_bench", r.server);
	}
	t1 = now_ns();
	printf("%-12s %4zu servers  %8.1f ns/decision (lb_route: catalogue, policy, lock, least_conn)\n",
	       "route", n, (t1 - t0) / iters);
	lb_stop();
	free(csv);
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = { 2, 16, 256 };
	unsigned base = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 2000000;

	store_init();
	for (size_t k = 0; k < 3; k++) {
		unsigned iters = sizes[k] == 256 ? base / 16 : base;
		for (int s = LB_S_RANDOM; s < LB_S__COUNT; s++)
			bench_strategy((enum lb_strategy)s, sizes[k], iters);
		bench_route(sizes[k], iters);
	}
	store_destroy();
	return 0;
}
