/*
 * Unit tests for lb/: every strategy (distribution, determinism, weights, stability when
 * servers change), the circuit breaker over an injected clock, the server table built
 * from `show stat` CSV (health states, 429 saturation, probes, carry-over, slow start),
 * the routing configuration's precedence, and the route decision with fallbacks.
 */
#include "lb/breaker.h"
#include "lb/conf.h"
#include "lb/lb.h"
#include "lb/strategy.h"
#include "lb/table.h"
#include "pipeline/pipeline.h"
#include "report/report.h"
#include "state/policy.h"
#include "state/state.h"

#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define NAME_HASH(i) (0x1234567ull * (uint64_t)((i) + 1) * 0x9e3779b97f4a7c15ull)

static void cands(struct lb_cand *c, size_t n, const double *w, int64_t *swrr)
{
	memset(c, 0, n * sizeof(*c));
	for (size_t i = 0; i < n; i++) {
		c[i].idx = (uint32_t)i;
		c[i].weight = w ? w[i] : 1.0;
		c[i].name_hash = NAME_HASH(i);
		c[i].swrr = swrr ? &swrr[i] : NULL;
	}
}

static void test_random_follows_weights(void)
{
	struct lb_rng r;
	struct lb_pick_ctx pc = { &r, 0, 0, 0 };
	double w[3] = { 1, 2, 3 };
	struct lb_cand c[3];
	unsigned hits[3] = { 0 };
	const unsigned N = 60000;

	lb_rng_seed(&r, 42);
	cands(c, 3, w, NULL);
	for (unsigned i = 0; i < N; i++)
		hits[lb_strategy_ops(LB_S_RANDOM)->pick(c, 3, &pc)]++;
	for (int i = 0; i < 3; i++)
		CHECK(fabs(hits[i] / (double)N - w[i] / 6.0) < 0.02);
}

/* nginx's smooth weighted round robin: weights 5,1,1 give a a b a c a a, every cycle. */
static void test_round_robin_smooth_and_deterministic(void)
{
	struct lb_rng r;
	struct lb_pick_ctx pc = { &r, 0, 0, 0 };
	double w[3] = { 5, 1, 1 };
	int64_t cur[3] = { 0 };
	struct lb_cand c[3];
	const char *want = "aabacaa";
	char got[8];

	lb_rng_seed(&r, 1);
	cands(c, 3, w, cur);
	for (int cycle = 0; cycle < 3; cycle++) {
		for (int i = 0; i < 7; i++)
			got[i] = (char)('a' + lb_strategy_ops(LB_S_ROUND_ROBIN)->pick(c, 3, &pc));
		got[7] = '\0';
		CHECK_EQ_STR(got, want);
	}
	/* Equal weights: strict rotation. */
	memset(cur, 0, sizeof(cur));
	cands(c, 3, NULL, cur);
	for (int i = 0; i < 9; i++)
		CHECK_EQ_INT(lb_strategy_ops(LB_S_ROUND_ROBIN)->pick(c, 3, &pc), i % 3);
}

static void test_least_conn_weighted_and_spread(void)
{
	struct lb_rng r;
	struct lb_pick_ctx pc = { &r, 0, 0, 0 };
	double w[3] = { 1, 1, 4 };
	struct lb_cand c[3];
	unsigned hits[3] = { 0 };

	lb_rng_seed(&r, 7);
	cands(c, 3, w, NULL);
	c[0].load = 2;
	c[1].load = 1;
	c[2].load = 5; /* (5+1)/4 = 1.5 < (1+1)/1 = 2 */
	CHECK_EQ_INT(lb_strategy_ops(LB_S_LEAST_CONN)->pick(c, 3, &pc), 2);
	c[2].load = 9; /* 2.5: server 1 (2) wins */
	CHECK_EQ_INT(lb_strategy_ops(LB_S_LEAST_CONN)->pick(c, 3, &pc), 1);
	/* Ties are shared, not always the first. */
	cands(c, 3, NULL, NULL);
	for (int i = 0; i < 3000; i++)
		hits[lb_strategy_ops(LB_S_LEAST_CONN)->pick(c, 3, &pc)]++;
	for (int i = 0; i < 3; i++)
		CHECK(hits[i] > 800);
}

static size_t hash_pick(struct lb_cand *c, size_t n, uint64_t key, double bound)
{
	struct lb_rng r;
	struct lb_pick_ctx pc = { &r, key, 1, bound };

	lb_rng_seed(&r, 3);
	return lb_strategy_ops(LB_S_HASH)->pick(c, n, &pc);
}

/* The same key always lands on the same server; removing a server moves only its own
 * keys; adding one takes keys only for itself. */
static void test_hash_stable_with_minimal_remapping(void)
{
	struct lb_cand c[5], d[4];
	unsigned before[1000], moved_other = 0, moved_to_new = 0, moved_total = 0;

	cands(c, 5, NULL, NULL);
	for (unsigned k = 0; k < 1000; k++) {
		before[k] = c[hash_pick(c, 5, 0xabcdef00ull + k, 1.25)].idx;
		CHECK_EQ_INT(c[hash_pick(c, 5, 0xabcdef00ull + k, 1.25)].idx, before[k]);
	}
	/* Remove server 2. */
	d[0] = c[0], d[1] = c[1], d[2] = c[3], d[3] = c[4];
	for (unsigned k = 0; k < 1000; k++) {
		unsigned now = d[hash_pick(d, 4, 0xabcdef00ull + k, 1.25)].idx;
		if (before[k] != 2 && now != before[k])
			moved_other++;
	}
	CHECK_EQ_INT(moved_other, 0);
	/* Back to 5 from the 4: only keys that now belong to server 2 move. */
	for (unsigned k = 0; k < 1000; k++) {
		unsigned from = d[hash_pick(d, 4, 0xabcdef00ull + k, 1.25)].idx;
		unsigned to = c[hash_pick(c, 5, 0xabcdef00ull + k, 1.25)].idx;
		if (from != to) {
			moved_total++;
			moved_to_new += to == 2;
		}
	}
	CHECK_EQ_INT(moved_total, moved_to_new);
	CHECK(moved_total > 100 && moved_total < 300); /* about a fifth */
}

static void test_hash_weights_and_bounded_load(void)
{
	double w[2] = { 1, 3 };
	struct lb_cand c[2];
	unsigned hits[2] = { 0 };
	size_t first;

	cands(c, 2, w, NULL);
	for (unsigned k = 0; k < 8000; k++)
		hits[c[hash_pick(c, 2, hmap_hash_u64(k), 1.25)].idx]++;
	CHECK(fabs(hits[1] / 8000.0 - 0.75) < 0.03);
	/* A key's first choice over its bound spills to the other server. */
	cands(c, 2, NULL, NULL);
	first = hash_pick(c, 2, 777, 1.25);
	c[first].load = 10;
	CHECK(hash_pick(c, 2, 777, 1.25) != first);
	/* Both over their bound: the first choice after all. */
	c[1 - first].load = 10;
	CHECK_EQ_INT(hash_pick(c, 2, 777, 1.25), first);
}

static void test_hash_without_key_uses_least_conn(void)
{
	struct lb_rng r;
	struct lb_pick_ctx pc = { &r, 0, 0, 1.25 };
	struct lb_cand c[3];

	lb_rng_seed(&r, 5);
	cands(c, 3, NULL, NULL);
	c[0].load = 3, c[1].load = 0, c[2].load = 3;
	CHECK_EQ_INT(lb_strategy_ops(LB_S_HASH)->pick(c, 3, &pc), 1);
}

static void test_latency_prefers_fast_servers(void)
{
	struct lb_rng r;
	struct lb_pick_ctx pc = { &r, 0, 0, 0 };
	struct lb_cand c[4];
	unsigned hits[4] = { 0 };

	lb_rng_seed(&r, 11);
	cands(c, 4, NULL, NULL);
	c[0].latency_ms = 400; /* slow */
	c[1].latency_ms = 20;
	c[2].latency_ms = 25;
	c[3].latency_ms = 0; /* not measured: costed at the mean (148 ms) */
	for (int i = 0; i < 10000; i++)
		hits[lb_strategy_ops(LB_S_LATENCY)->pick(c, 4, &pc)]++;
	CHECK_EQ_INT(hits[0], 0); /* always paired with a cheaper server */
	CHECK(hits[3] > 500 && hits[3] < hits[1]); /* tried, not flooded */
	/* Load counts: a fast server with a queue loses to a slower idle one. */
	cands(c, 2, NULL, NULL);
	c[0].latency_ms = 10, c[0].load = 20;
	c[1].latency_ms = 50, c[1].load = 0;
	CHECK_EQ_INT(lb_strategy_ops(LB_S_LATENCY)->pick(c, 2, &pc), 1);
}

static void test_strategy_names(void)
{
	for (int s = 0; s < LB_S__COUNT; s++) {
		const char *n = lb_strategy_name((enum lb_strategy)s);
		CHECK_EQ_INT(lb_strategy_parse(n, strlen(n)), s);
	}
	CHECK_EQ_INT(lb_strategy_parse("fastest", 7), -1);
	CHECK(lb_strategy_ops(LB_S_HAPROXY) == NULL);
}

/* ---- breaker -------------------------------------------------------------------------- */

static void test_breaker_consecutive_failures(void)
{
	struct lb_breaker b;
	struct lb_breaker_conf c;
	int64_t t = 1000000;

	lb_breaker_conf_default(&c);
	c.consecutive = 3;
	c.error_rate = 0;
	c.open_ms = 2000;
	c.probes = 2;
	lb_breaker_init(&b);
	CHECK_EQ_INT(lb_breaker_record(&b, &c, 1, t), LB_BR_NONE);
	CHECK_EQ_INT(lb_breaker_record(&b, &c, 1, t), LB_BR_NONE);
	CHECK_EQ_INT(lb_breaker_record(&b, &c, 0, t), LB_BR_NONE); /* a success resets the run */
	CHECK_EQ_INT(lb_breaker_record(&b, &c, 1, t), LB_BR_NONE);
	CHECK_EQ_INT(lb_breaker_record(&b, &c, 1, t), LB_BR_NONE);
	CHECK_EQ_INT(lb_breaker_record(&b, &c, 1, t), LB_BR_OPENED);
	CHECK_EQ_INT(b.state, LB_BR_OPEN);
	/* Late answers while open change nothing; time does. */
	CHECK_EQ_INT(lb_breaker_record(&b, &c, 0, t + 10), LB_BR_NONE);
	CHECK_EQ_INT(lb_breaker_tick(&b, &c, t + 1999), LB_BR_NONE);
	CHECK_EQ_INT(lb_breaker_tick(&b, &c, t + 2000), LB_BR_HALF_OPENED);
	/* A failed probe opens it again, for another open_ms. */
	CHECK_EQ_INT(lb_breaker_record(&b, &c, 1, t + 2100), LB_BR_OPENED);
	CHECK_EQ_INT(lb_breaker_tick(&b, &c, t + 4000), LB_BR_NONE);
	CHECK_EQ_INT(lb_breaker_tick(&b, &c, t + 4100), LB_BR_HALF_OPENED);
	/* `probes` successes close it. */
	CHECK_EQ_INT(lb_breaker_record(&b, &c, 0, t + 4200), LB_BR_NONE);
	CHECK_EQ_INT(lb_breaker_record(&b, &c, 0, t + 4300), LB_BR_CLOSED_EV);
	CHECK_EQ_INT(b.state, LB_BR_CLOSED);
}

static void test_breaker_error_rate_window(void)
{
	struct lb_breaker b;
	struct lb_breaker_conf c;
	uint32_t ok, fail;
	int64_t t = 5000000;

	lb_breaker_conf_default(&c);
	c.consecutive = 0;
	c.error_rate = 0.5;
	c.min_requests = 10;
	c.window_s = 10;
	lb_breaker_init(&b);
	/* Alternating outcomes, one per 100 ms: the 10th outcome reaches min_requests with
	 * half of them failed. */
	for (int i = 0; i < 9; i++)
		CHECK_EQ_INT(lb_breaker_record(&b, &c, i % 2 == 0, t + i * 100), LB_BR_NONE);
	lb_breaker_window(&b, &c, t + 900, &ok, &fail);
	CHECK_EQ_INT(ok + fail, 9);
	CHECK_EQ_INT(lb_breaker_record(&b, &c, 1, t + 950), LB_BR_OPENED);
	/* Old outcomes leave the window: 9 failures spread over 20 s never trip it. */
	lb_breaker_init(&b);
	for (int i = 0; i < 9; i++) {
		CHECK_EQ_INT(lb_breaker_record(&b, &c, 1, t + i * 2500), LB_BR_NONE);
		CHECK_EQ_INT(lb_breaker_record(&b, &c, 0, t + i * 2500 + 1), LB_BR_NONE);
	}
	lb_breaker_window(&b, &c, t + 8 * 2500, &ok, &fail);
	CHECK(ok + fail < 10);
}

static void test_breaker_rearms_lost_probes(void)
{
	struct lb_breaker b;
	struct lb_breaker_conf c;

	lb_breaker_conf_default(&c);
	c.consecutive = 1;
	c.open_ms = 1000;
	lb_breaker_init(&b);
	CHECK_EQ_INT(lb_breaker_record(&b, &c, 1, 0), LB_BR_OPENED);
	CHECK_EQ_INT(lb_breaker_tick(&b, &c, 1000), LB_BR_HALF_OPENED);
	CHECK_EQ_INT(lb_breaker_tick(&b, &c, 1500), LB_BR_NONE);
	CHECK_EQ_INT(lb_breaker_tick(&b, &c, 2000), LB_BR_REARM);
}

/* ---- the server table ----------------------------------------------------------------- */

#define HDR "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,\n"
#define ROW(px, sv, scur, econ, status, weight)                                                 \
	px "," sv ",0,0," #scur ",0,,0,0,0,,0,," #econ ",0,0,0," status "," #weight ",1,0,0,0,0,0,,1,1,1,,0,,2,\n"

static const char CSV3[] = HDR
	ROW("be_pool", "s1", 0, 0, "UP", 1)
	ROW("be_pool", "s2", 0, 0, "UP 1/3", 1)
	ROW("be_pool", "s3", 0, 0, "no check", 1)
	ROW("be_down", "d1", 0, 0, "DOWN", 1)
	ROW("be_down", "d2", 0, 0, "MAINT", 1)
	ROW("be_down", "d3", 0, 0, "DRAIN", 1)
	ROW("be_down", "d4", 0, 0, "UP", 0)
	ROW("fe_x", "FRONTEND", 0, 0, "OPEN", 0)
	ROW("other", "o1", 0, 0, "UP", 1);

static struct lb_table *parse(const char *csv, int64_t now)
{
	char err[128];
	size_t skipped = 0;

	return lb_table_parse(csv, strlen(csv), now, &skipped, err, sizeof(err));
}

static struct lb_rng test_rng;

static int choose(struct lb_table *t, const char *be, enum lb_strategy s, int64_t now,
		  struct lb_choice *out)
{
	struct lb_choose_in in = { s, 0, 0, 1.25, 0, now, &test_rng };

	return lb_table_choose(t, be, &in, out);
}

static void test_table_parse_health(void)
{
	struct lb_table *t = parse(CSV3, 1000);
	const struct lb_backend *b;
	struct lb_choice c;

	CHECK(t != NULL);
	if (!t)
		return;
	CHECK_EQ_INT(t->nbe, 2); /* be_* only */
	b = lb_table_backend(t, "be_pool");
	CHECK(b && b->n == 3);
	CHECK_EQ_INT(lb_health_parse("UP 1/3"), LB_H_UP);
	CHECK_EQ_INT(lb_health_parse("DOWN 1/2"), LB_H_DOWN);
	CHECK_EQ_INT(lb_health_parse("MAINT (via be_x/s1)"), LB_H_MAINT);
	CHECK_EQ_INT(lb_health_parse("DRAIN"), LB_H_DRAIN);
	/* Down, maintenance, drain and weight 0 take nothing: the backend has no server. */
	CHECK_EQ_INT(choose(t, "be_down", LB_S_ROUND_ROBIN, 1000, &c), -1);
	CHECK_EQ_INT(c.why, LB_W_DOWN);
	CHECK(c.retry_after_s > 0);
	/* Unknown backend: HAProxy decides. */
	CHECK_EQ_INT(choose(t, "be_nope", LB_S_ROUND_ROBIN, 1000, &c), 0);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ_INT(choose(t, "be_pool", LB_S_ROUND_ROBIN, 1000, &c), 1);
		CHECK(c.server[0] == 's');
	}
	lb_table_free(t);
	CHECK(parse("garbage\n", 0) == NULL);
}

static void test_table_saturation_and_breaker(void)
{
	struct lb_table *t = parse(CSV3, 0);
	struct lb_breaker_conf bc;
	struct lb_choice c;
	int64_t now = 100000;
	unsigned hits = 0;

	lb_breaker_conf_default(&bc);
	bc.consecutive = 2;
	bc.open_ms = 1000;
	bc.probes = 1;
	lb_table_set_breaker(t, "be_pool", &bc);
	/* s1 answers 429 with retry-after 3: left alone for 3 s. */
	lb_table_report(t, "be_pool", "s1", LB_O_SATURATED, -1, -1, 3, now);
	for (int i = 0; i < 30; i++) {
		CHECK_EQ_INT(choose(t, "be_pool", LB_S_RANDOM, now + 2999, &c), 1);
		hits += strcmp(c.server, "s1") == 0;
	}
	CHECK_EQ_INT(hits, 0);
	/* s2 and s3 fail twice each: breakers open. */
	for (int i = 0; i < 2; i++) {
		lb_table_report(t, "be_pool", "s2", LB_O_FAILURE, 5, 5, 0, now);
		lb_table_report(t, "be_pool", "s3", LB_O_FAILURE, 5, 5, 0, now);
	}
	CHECK_EQ_INT(choose(t, "be_pool", LB_S_RANDOM, now + 10, &c), -1);
	CHECK_EQ_INT(c.why, LB_W_SATURATED); /* the soonest to come back */
	CHECK_EQ_INT(c.retry_after_s, 3);
	CHECK_EQ_INT(choose(t, "be_pool", LB_S_RANDOM, now + 3000, &c), 1);
	CHECK_EQ_INT(strcmp(c.server, "s1"), 0);
	/* After open_ms, one probe each; the rest still go to s1. */
	lb_table_tick(t, now + 1000, NULL, NULL);
	hits = 0;
	for (int i = 0; i < 20; i++) {
		CHECK_EQ_INT(choose(t, "be_pool", LB_S_ROUND_ROBIN, now + 3001, &c), 1);
		hits += c.probe;
	}
	CHECK_EQ_INT(hits, 2);
	/* The probe's success closes s2's breaker. */
	CHECK_EQ_INT(lb_table_report(t, "be_pool", "s2", LB_O_SUCCESS, 5, 5, 0, now + 3002), LB_BR_CLOSED_EV);
	lb_table_free(t);
}

static const char CSV_ONE[] = HDR ROW("be_pool", "s1", 0, 0, "UP", 1) ROW("be_pool", "s2", 0, 0, "UP", 1);
static const char CSV_TWO_BAD[] = HDR ROW("be_pool", "s1", 0, 0, "UP", 1) ROW("be_pool", "s2", 0, 7, "UP", 1)
	ROW("be_pool", "s3", 0, 0, "UP", 1);

/* A new table keeps what the agent learnt; a server added at run time warms up; HAProxy's
 * connection-error counter feeds the breaker. */
static void test_table_carry(void)
{
	struct lb_table *a = parse(CSV_ONE, 0), *b = parse(CSV_TWO_BAD, 0);
	const struct lb_backend *be;
	struct lb_breaker_conf bc;
	struct lb_choose_in in = { LB_S_RANDOM, 0, 0, 1.25, 10000, 50000, &test_rng };
	struct lb_choice c;
	unsigned hits3 = 0;

	lb_table_carry(a, NULL, 0);
	lb_breaker_conf_default(&bc);
	bc.consecutive = 5;
	lb_table_set_breaker(a, "be_pool", &bc);
	lb_table_report(a, "be_pool", "s1", LB_O_SUCCESS, 40, 90, 0, 1000);
	lb_table_set_breaker(b, "be_pool", &bc);
	lb_table_carry(b, a, 50000);
	be = lb_table_backend(b, "be_pool");
	CHECK_EQ_INT(atomic_load(&be->srv[0].d.ttfb_us), 40000);
	CHECK_EQ_INT(be->brc.consecutive, 5);
	CHECK_EQ_INT(atomic_load(&be->srv[1].d.br_state), LB_BR_OPEN); /* 7 refused connections */
	CHECK_EQ_INT(atomic_load(&be->srv[2].d.up_since_ms), 50000);   /* new: slow start */
	CHECK_EQ_INT(atomic_load(&be->srv[0].d.up_since_ms), 0);
	for (int i = 0; i < 2000; i++) {
		CHECK_EQ_INT(lb_table_choose(b, "be_pool", &in, &c), 1);
		hits3 += strcmp(c.server, "s3") == 0;
	}
	/* At the start of slow start s3 weighs 10 % of s1: about 1 request in 11. */
	CHECK(hits3 > 100 && hits3 < 300);
	lb_table_free(a);
	lb_table_free(b);
}

/* ---- routing configuration ---------------------------------------------------------- */

static struct lb_policy_row row(int64_t id)
{
	struct lb_policy_row r;

	memset(&r, 0, sizeof(r));
	r.id = id;
	r.service = -1;
	r.strategy = r.hash_key = -1;
	r.hash_bound = -1;
	r.slow_start_ms = r.br_consecutive = r.br_min_requests = r.br_window_s = -1;
	r.br_open_ms = r.br_probes = -1;
	r.br_error_rate = -1;
	return r;
}

static void test_conf_precedence(void)
{
	struct lb_conf *c = lb_conf_new();
	struct lb_policy_row g = row(1), m = row(2), b = row(3), s = row(4);
	struct lb_eff e;
	struct lb_breaker_conf bc;

	lb_conf_resolve(c, 7, "be_x", 1, &e);
	CHECK_EQ_INT(e.strategy, LB_S_LEAST_CONN);
	g.strategy = LB_S_RANDOM;
	g.slow_start_ms = 0;
	g.br_open_ms = 777;
	lb_conf_put_policy(c, &g);
	s.service = 1;
	s.strategy = LB_S_LATENCY;
	lb_conf_put_policy(c, &s);
	snprintf(b.backend, sizeof(b.backend), "be_x");
	b.hash_key = LB_K_HEADER;
	b.br_consecutive = 9;
	lb_conf_put_policy(c, &b);
	m.model_id = 7;
	m.strategy = LB_S_HASH;
	lb_conf_put_policy(c, &m);
	lb_conf_resolve(c, 7, "be_x", 1, &e);
	CHECK_EQ_INT(e.strategy, LB_S_HASH);   /* model */
	CHECK_EQ_INT(e.hash_key, LB_K_HEADER); /* backend */
	CHECK_EQ_INT(e.slow_start_ms, 0);      /* global */
	lb_conf_resolve(c, 8, "be_y", 1, &e);
	CHECK_EQ_INT(e.strategy, LB_S_LATENCY); /* service */
	lb_conf_resolve(c, 8, "be_y", 2, &e);
	CHECK_EQ_INT(e.strategy, LB_S_RANDOM);  /* global */
	lb_conf_breaker(c, "be_x", &bc);
	CHECK_EQ_INT(bc.consecutive, 9);
	CHECK_EQ_INT(bc.open_ms, 777);
	lb_conf_del_policy(c, 2);
	lb_conf_resolve(c, 7, "be_x", 1, &e);
	CHECK_EQ_INT(e.strategy, LB_S_LATENCY);
	CHECK_EQ_INT(lb_conf_count_policies(c), 3);
	lb_conf_free(c);
}

static void test_conf_fallback_order(void)
{
	struct lb_conf *c = lb_conf_new();
	struct lb_fallback_row f[3] = { { 1, 10, 30, 3, 2 }, { 2, 10, 20, 1, 2 }, { 3, 11, 40, 1, 2 } };
	struct lb_fallback_row out[4];

	for (int i = 0; i < 3; i++)
		lb_conf_put_fallback(c, &f[i]);
	CHECK_EQ_INT(lb_conf_fallbacks(c, 10, out, 4), 2);
	CHECK_EQ_INT(out[0].fallback_id, 20);
	CHECK_EQ_INT(out[1].fallback_id, 30);
	CHECK_EQ_INT(lb_conf_fallbacks(c, 10, out, 1), 1);
	CHECK_EQ_INT(out[0].fallback_id, 20);
	lb_conf_del_fallback(c, 2);
	CHECK_EQ_INT(lb_conf_fallbacks(c, 10, out, 4), 1);
	lb_conf_free(c);
}

/* ---- the route decision -------------------------------------------------------------- */

static int64_t fake_now = 1000000;

static int64_t fake_clock(void)
{
	return fake_now;
}

static const char CSV_ROUTE[] = HDR
	ROW("be_a", "a1", 0, 0, "DOWN", 1)
	ROW("be_a", "a2", 0, 0, "MAINT", 1)
	ROW("be_b", "b1", 0, 0, "UP", 1)
	ROW("be_c", "c1", 0, 0, "UP", 1);

static void add_model(struct state *s, int64_t id, const char *name, const char *be, uint32_t caps)
{
	struct st_model m;

	memset(&m, 0, sizeof(m));
	m.id = id;
	snprintf(m.name, sizeof(m.name), "%s", name);
	snprintf(m.backend, sizeof(m.backend), "%s", be);
	m.services = 0xffffffffu;
	m.caps = caps;
	state_put_model(s, &m);
}

/* A chat request of tenant 1 for model on backend be, as the route stage describes it. */
static void chat_request(struct lb_request *q, const char *model, const char *be)
{
	const char *svc = pl_service_name(PL_SVC_CHAT);

	memset(q, 0, sizeof(*q));
	q->model = model;
	q->backend = be;
	q->service = PL_SVC_CHAT;
	q->service_bit = policy_service_bit(svc, strlen(svc));
	q->tenant_id = 1;
}

static void route(const char *model, const char *be, int stream, struct lb_route *r)
{
	struct lb_request q;

	chat_request(&q, model, be);
	q.stream = stream;
	lb_route(&q, r);
}

static void test_route_fallback_chain(void)
{
	struct state *s = state_new();
	struct lb_fallback_row f1 = { 1, 1, 2, 1, 1u << LB_W_OPEN };  /* not for "down" */
	struct lb_fallback_row f2 = { 2, 1, 3, 2, 1u << LB_W_DOWN };
	struct lb_route r;

	lb_set_clock(fake_clock);
	add_model(s, 1, "primary", "be_a", ST_CAP_STREAMING);
	add_model(s, 2, "second", "be_b", ST_CAP_STREAMING);
	add_model(s, 3, "third", "be_c", 0); /* cannot stream */
	lb_conf_put_fallback(state_lb(s), &f1);
	lb_conf_put_fallback(state_lb(s), &f2);
	store_replace(s);
	lb_publish(parse(CSV_ROUTE, fake_now), fake_now);

	route("primary", "be_a", 0, &r);
	CHECK_EQ_INT(r.kind, LB_ROUTE_FALLBACK);
	CHECK_EQ_STR(r.model, "third"); /* "second" only covers an open breaker */
	CHECK_EQ_STR(r.backend, "be_c");
	CHECK_EQ_STR(r.server, "c1");
	CHECK_EQ_INT(r.why, LB_W_DOWN);
	/* A streamed request cannot go to "third": nothing left, 503 material. */
	route("primary", "be_a", 1, &r);
	CHECK_EQ_INT(r.kind, LB_ROUTE_NONE);
	CHECK_EQ_INT(r.why, LB_W_DOWN);
	CHECK(r.retry_after_s > 0);
	/* A healthy model routes to its own server. */
	route("second", "be_b", 1, &r);
	CHECK_EQ_INT(r.kind, LB_ROUTE_PRIMARY);
	CHECK_EQ_STR(r.server, "b1");
	/* A stale table is not trusted: HAProxy balances (no server named). */
	fake_now += 60000;
	route("second", "be_b", 1, &r);
	CHECK_EQ_INT(r.kind, LB_ROUTE_PRIMARY);
	CHECK_EQ_STR(r.server, "");
	lb_stop();
	lb_set_clock(NULL);
}

static void route_body(const char *model, const char *body, struct lb_route *r)
{
	struct lb_request q;

	chat_request(&q, model, "be_b");
	q.body = body;
	q.body_len = strlen(body);
	lb_route(&q, r);
}

static void put_priced(struct state *s, int64_t id, const char *name, const char *be, uint32_t caps,
		       int32_t ctx_len, double pin, double pout)
{
	struct st_model m;

	memset(&m, 0, sizeof(m));
	m.id = id;
	snprintf(m.name, sizeof(m.name), "%s", name);
	snprintf(m.backend, sizeof(m.backend), "%s", be);
	m.services = 0xffffffffu;
	m.caps = caps;
	m.context_length = ctx_len;
	m.price_in = pin;
	m.price_out = pout;
	state_put_model(s, &m);
}

/* A virtual model goes to the cheapest member that covers the request. */
static void test_route_virtual_model(void)
{
	struct state *s = state_new();
	struct lb_virtual_row v = { 1, 10, 0 };
	struct lb_member_row m1 = { 1, 1, 11, 1 }, m2 = { 2, 1, 12, 2 }, m3 = { 3, 1, 13, 3 };
	char big[5000];
	struct lb_route r;

	lb_set_clock(fake_clock);
	put_priced(s, 10, "auto", "be_b", ST_CAP_TOOLS | ST_CAP_VISION, 0, -1, -1);
	put_priced(s, 11, "rich", "be_b", ST_CAP_TOOLS | ST_CAP_STREAMING, 100000, 5, 15);
	put_priced(s, 12, "cheap", "be_c", ST_CAP_STREAMING, 1000, 0.1, 0.2);
	put_priced(s, 13, "offline", "be_a", ST_CAP_TOOLS | ST_CAP_VISION, 0, 0.01, 0.01);
	lb_conf_put_virtual(state_lb(s), &v);
	lb_conf_put_member(state_lb(s), &m1);
	lb_conf_put_member(state_lb(s), &m2);
	lb_conf_put_member(state_lb(s), &m3);
	store_replace(s);
	lb_publish(parse(CSV_ROUTE, fake_now), fake_now);

	route_body("auto", "{\"model\":\"auto\",\"messages\":[]}", &r);
	CHECK_EQ_INT(r.kind, LB_ROUTE_VIRTUAL);
	CHECK_EQ_STR(r.model, "cheap"); /* "offline" is cheaper but all its servers are down */
	CHECK_EQ_STR(r.server, "c1");
	route_body("auto", "{\"model\":\"auto\",\"tools\":[],\"messages\":[]}", &r);
	CHECK_EQ_STR(r.model, "rich");
	CHECK_EQ_STR(r.backend, "be_b");
	/* A prompt beyond cheap's 1000-token context. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	route_body("auto", big, &r);
	CHECK_EQ_STR(r.model, "rich");
	/* Images: only "offline" has vision, and it has no server. */
	route_body("auto", "{\"messages\":[{\"content\":[{\"type\":\"image_url\"}]}]}", &r);
	CHECK_EQ_INT(r.kind, LB_ROUTE_NONE);
	CHECK_EQ_INT(r.why, LB_W_DOWN);
	/* Images and more context than anyone has: nothing covers it. */
	lb_conf_del_member(state_lb(s), 3);
	route_body("auto", "{\"messages\":[{\"content\":[{\"type\":\"image_url\"}]}]}", &r);
	CHECK_EQ_INT(r.kind, LB_ROUTE_UNFIT);
	CHECK(r.need_caps & ST_CAP_VISION);
	/* A plain model is not affected. */
	route_body("cheap", "{}", &r);
	CHECK_EQ_INT(r.kind, LB_ROUTE_PRIMARY);
	lb_stop();
	lb_set_clock(NULL);
}

/* The report subscriber: 5xx and server aborts are failures, 4xx are not, 429 saturates. */
static void test_reports_feed_the_table(void)
{
	static const char *lines[] = {
		"id=1 be=be_b srv=b1 tr=3 ta=4 st=500 tsc=---- end=1",
		"id=2 be=be_b srv=b1 tr=3 ta=4 st=404 tsc=---- end=1",
		"id=3 be=be_b srv=b1 tr=3 ta=4 st=200 tsc=SD-- end=1",
		"id=4 be=jairouter_rewrite srv=rewrite tr=3 ta=4 st=500 tsc=---- end=1",
		"id=5 be=be_b srv=b1 tr=-1 ta=4 st=-1 tsc=CD-- end=1",
		"id=6 be=be_c srv=c1 tr=3 ta=4 st=429 ra=7 tsc=---- end=1",
		"id=7 be=be_b srv=b1 lb=be_b ls=b1 tr=3 ta=4 st=200 tsc=---- end=1",
	};
	struct jr_report rep;
	struct lb_table *t;
	const struct lb_backend *b;

	lb_set_clock(fake_clock);
	lb_publish(parse(CSV_ROUTE, fake_now), fake_now);
	/* Two requests sent to b1; one report names the agent's choice: one slot back. */
	atomic_store(&lb_table_backend(lb_live(), "be_b")->srv[0].d.inflight, 2);
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		CHECK_EQ_INT(report_parse(lines[i], strlen(lines[i]), &rep), 0);
		lb_on_report(&rep, NULL);
	}
	t = lb_live();
	b = lb_table_backend(t, "be_b");
	CHECK_EQ_INT(b->srv[0].d.reported_fail, 2);
	CHECK_EQ_INT(b->srv[0].d.reported_ok, 2);
	CHECK_EQ_INT(atomic_load(&b->srv[0].d.inflight), 1);
	b = lb_table_backend(t, "be_c");
	CHECK_EQ_INT(atomic_load(&b->srv[0].d.sat_until_ms), fake_now + 7000);
	lb_stop();
	lb_set_clock(NULL);
}

/* ---- the pipeline owns the in-flight slot --------------------------------------------- */

static int n_done, n_released;

static void on_done(struct pl_ctx *ctx, void *arg)
{
	(void)ctx;
	(void)arg;
	n_done++;
}

static void on_release(struct pl_ctx *ctx, void *arg)
{
	(void)ctx;
	(void)arg;
	n_released++;
}

static enum pl_result st_refuse(struct pl_ctx *ctx)
{
	return pl_deny(ctx, 429, PL_R_RATE_LIMITED, "rate_limit_error", NULL, NULL, "refused");
}

static enum pl_result st_detour(struct pl_ctx *ctx)
{
	ctx->out.server[0] = '\0'; /* as the adapter stage: another upstream takes it */
	snprintf(ctx->out.backend, sizeof(ctx->out.backend), "be_adapter");
	return PL_NEXT;
}

static enum pl_result st_wait(struct pl_ctx *ctx)
{
	(void)ctx;
	return PL_PENDING;
}

static struct lb_server *server_b1(void)
{
	return &lb_table_backend(lb_live(), "be_b")->srv[0];
}

/* Runs the real route stage, then `then` (NULL: nothing), for model "second" on be_b. */
static void decide(struct pl_ctx *ctx, enum pl_result (*then)(struct pl_ctx *))
{
	struct pl_policy pol = { 0, 0 };
	struct pl_stage stages[2];
	size_t n = 0;

	for (size_t i = 0; i < pl_default_nstages; i++)
		if (strcmp(pl_default_stages[i].name, "route") == 0)
			stages[n++] = pl_default_stages[i];
	if (then)
		stages[n++] = (struct pl_stage){ "then", then };
	pl_ctx_init(ctx, &pol);
	ctx->service = PL_SVC_CHAT;
	ctx->tenant_id = 1;
	snprintf(ctx->out.model, sizeof(ctx->out.model), "second");
	snprintf(ctx->out.backend, sizeof(ctx->out.backend), "be_b");
	n_done = n_released = 0;
	pl_start(ctx, stages, n, on_done, on_release, NULL);
}

/* The route stage takes a slot on b1; whatever ends the decision, the slot is given back
 * exactly once unless the verdict sends the request to b1 (five slots held elsewhere make
 * a second release visible). */
static void test_pipeline_settles_the_slot(void)
{
	struct state *s = state_new();
	struct pl_ctx ctx;

	lb_set_clock(fake_clock);
	add_model(s, 2, "second", "be_b", 0);
	store_replace(s);
	lb_publish(parse(CSV_ROUTE, fake_now), fake_now);
	atomic_store(&server_b1()->d.inflight, 5);
	decide(&ctx, NULL); /* allowed to b1: the slot stays until the report */
	CHECK(ctx.out.allow);
	CHECK_EQ_STR(ctx.out.server, "b1");
	CHECK_EQ_INT(atomic_load(&server_b1()->d.inflight), 6);
	pl_ctx_clear(&ctx);
	atomic_store(&server_b1()->d.inflight, 5);
	decide(&ctx, st_refuse); /* a later stage refuses */
	CHECK(!ctx.out.allow);
	CHECK_EQ_INT(atomic_load(&server_b1()->d.inflight), 5);
	pl_ctx_clear(&ctx);
	decide(&ctx, st_detour); /* allowed, but through another upstream */
	CHECK(ctx.out.allow);
	CHECK_EQ_INT(atomic_load(&server_b1()->d.inflight), 5);
	pl_ctx_clear(&ctx);
	decide(&ctx, st_wait); /* the deadline answers first, the late stage comes back */
	CHECK_EQ_INT(atomic_load(&server_b1()->d.inflight), 6);
	pl_abandon(&ctx);
	CHECK_EQ_INT(atomic_load(&server_b1()->d.inflight), 5);
	pl_resume(&ctx, PL_DONE);
	CHECK_EQ_INT(atomic_load(&server_b1()->d.inflight), 5);
	CHECK_EQ_INT(n_done, 1);
	CHECK_EQ_INT(n_released, 1);
	pl_ctx_clear(&ctx);
	lb_stop();
	lb_set_clock(NULL);
}

int main(void)
{
	lb_rng_seed(&test_rng, 99);
	store_init();
	RUN(test_random_follows_weights);
	RUN(test_round_robin_smooth_and_deterministic);
	RUN(test_least_conn_weighted_and_spread);
	RUN(test_hash_stable_with_minimal_remapping);
	RUN(test_hash_weights_and_bounded_load);
	RUN(test_hash_without_key_uses_least_conn);
	RUN(test_latency_prefers_fast_servers);
	RUN(test_strategy_names);
	RUN(test_breaker_consecutive_failures);
	RUN(test_breaker_error_rate_window);
	RUN(test_breaker_rearms_lost_probes);
	RUN(test_table_parse_health);
	RUN(test_table_saturation_and_breaker);
	RUN(test_table_carry);
	RUN(test_conf_precedence);
	RUN(test_conf_fallback_order);
	RUN(test_route_fallback_chain);
	RUN(test_reports_feed_the_table);
	RUN(test_route_virtual_model);
	RUN(test_pipeline_settles_the_slot);
	store_destroy();
	TEST_END();
}
