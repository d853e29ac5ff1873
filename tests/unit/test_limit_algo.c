/* Unit tests of the rate-limit algorithms (limit/algo.c) with an injected clock:
 * boundaries, bursts, refill, the warm-up curve, adaptive concurrency, periods. */
#include "limit/algo.h"
#include "limit/defs.h"
#include "limit/limiter.h"

#include "testlib.h"

#include <stdlib.h>
#include <string.h>

#define S LIM_US_PER_S
#define T0 (1700000000LL * S) /* 2023-11-14T22:13:20Z */

static struct lim_params params(enum lim_algo a, int64_t amount, int64_t window_us)
{
	struct lim_params p;

	memset(&p, 0, sizeof(p));
	p.algo = a;
	p.amount = amount;
	p.window_us = window_us;
	return p;
}

/* Admits cost at now and charges it when admitted (what a decision does). */
static int take(const struct lim_params *p, struct lim_state *s, int64_t now, int64_t cost,
		struct lim_result *r)
{
	struct lim_result tmp;

	if (!r)
		r = &tmp;
	if (!lim_check(p, s, now, cost, r))
		return 0;
	lim_charge(p, s, now, cost);
	return 1;
}

static int count_admitted(const struct lim_params *p, struct lim_state *s, int64_t now, int tries)
{
	int n = 0;

	for (int i = 0; i < tries; i++)
		n += take(p, s, now, 1, NULL);
	return n;
}

static void test_token_bucket_burst_and_refill(void)
{
	struct lim_params p = params(LIM_TOKEN_BUCKET, 10, 1 * S); /* 10/s, burst 10 */
	struct lim_state s;
	struct lim_result r;

	lim_state_init(&s, &p, T0);
	CHECK_EQ_INT(count_admitted(&p, &s, T0, 20), 10); /* the burst, then nothing */
	CHECK(!lim_check(&p, &s, T0, 1, &r));
	CHECK_EQ_INT(r.remaining, 0);
	CHECK_EQ_INT(r.retry_us, 100000); /* one token per 100 ms */
	CHECK(!lim_check(&p, &s, T0 + 99999, 1, &r));
	CHECK(take(&p, &s, T0 + 100000, 1, &r)); /* exactly at the boundary */
	CHECK(!lim_check(&p, &s, T0 + 100000, 1, &r));
	/* A long pause refills only up to the capacity. */
	CHECK_EQ_INT(count_admitted(&p, &s, T0 + 100 * S, 50), 10);
	lim_state_free(&s);
}

static void test_token_bucket_burst_param_and_cost(void)
{
	struct lim_params p = params(LIM_TOKEN_BUCKET, 60, 60 * S);
	struct lim_state s;
	struct lim_result r;

	p.burst = 5;
	lim_state_init(&s, &p, T0);
	CHECK_EQ_INT(count_admitted(&p, &s, T0, 10), 5);
	p.burst = 100;
	lim_state_init(&s, &p, T0);
	CHECK(!lim_check(&p, &s, T0, 101, &r)); /* larger than the capacity: never */
	CHECK_EQ_INT(r.retry_us, 0);
	CHECK(take(&p, &s, T0, 100, &r));
	CHECK_EQ_INT(r.remaining, 0);
	CHECK_EQ_INT(r.reset_us, 100 * S); /* 100 tokens at 1/s */
	lim_state_free(&s);
}

static void test_token_bucket_adjust(void)
{
	struct lim_params p = params(LIM_TOKEN_BUCKET, 1000, 60 * S);
	struct lim_state s;
	struct lim_result r;

	lim_state_init(&s, &p, T0);
	CHECK(take(&p, &s, T0, 800, &r)); /* reserved 800, used 100: refund 700 */
	lim_adjust(&p, &s, T0, -700, T0);
	CHECK(lim_check(&p, &s, T0, 900, &r));
	lim_adjust(&p, &s, T0, 1500, T0); /* used far more than reserved: a debt */
	CHECK(!lim_check(&p, &s, T0, 1, &r));
	CHECK(r.retry_us > 0);
	lim_state_free(&s);
}

static void test_gcra_spacing_and_burst(void)
{
	struct lim_params p = params(LIM_LEAKY_BUCKET, 10, 1 * S); /* T = 100 ms */
	struct lim_state s;
	struct lim_result r;

	p.burst = 1; /* strict spacing */
	lim_state_init(&s, &p, T0);
	CHECK(take(&p, &s, T0, 1, &r));
	CHECK(!lim_check(&p, &s, T0 + 50000, 1, &r));
	CHECK_EQ_INT(r.retry_us, 50000);
	CHECK(take(&p, &s, T0 + 100000, 1, &r));
	CHECK(!take(&p, &s, T0 + 199999, 1, &r));
	CHECK(take(&p, &s, T0 + 200000, 1, &r));
	/* Default burst = amount: 10 at once, then one per 100 ms. */
	p.burst = 0;
	lim_state_init(&s, &p, T0);
	CHECK_EQ_INT(count_admitted(&p, &s, T0, 30), 10);
	CHECK_EQ_INT(count_admitted(&p, &s, T0 + 100000, 30), 1);
	CHECK_EQ_INT(count_admitted(&p, &s, T0 + 1100000, 30), 10);
	lim_state_free(&s);
}

static void test_gcra_long_run_rate(void)
{
	struct lim_params p = params(LIM_LEAKY_BUCKET, 100, 60 * S);
	struct lim_state s;
	int n = 0;

	lim_state_init(&s, &p, T0);
	/* A request every 10 ms for 10 minutes: 100 burst + 100 per minute. */
	for (int64_t t = 0; t < 600 * S; t += 10000)
		n += take(&p, &s, T0 + t, 1, NULL);
	CHECK(n >= 1099 && n <= 1100);
	lim_state_free(&s);
}

static void test_sliding_window_exact(void)
{
	struct lim_params p = params(LIM_SLIDING_WINDOW, 5, 60 * S);
	struct lim_state s;
	struct lim_result r;

	lim_state_init(&s, &p, T0);
	for (int i = 0; i < 5; i++)
		CHECK(take(&p, &s, T0 + i * 10 * S, 1, &r)); /* at 0, 10, 20, 30, 40 s */
	CHECK_EQ_INT(r.remaining, 0);
	CHECK(!lim_check(&p, &s, T0 + 59 * S, 1, &r));
	CHECK_EQ_INT(r.retry_us, 1 * S); /* the entry of t=0 leaves at t=60 s */
	CHECK(!lim_check(&p, &s, T0 + 60 * S - 1, 1, &r));
	CHECK(take(&p, &s, T0 + 60 * S, 1, &r)); /* (now - 60 s, now]: the t=0 entry is out */
	CHECK(!lim_check(&p, &s, T0 + 60 * S, 1, &r));
	/* No fixed-window reset: at t=61 s, 4 of the last minute's 5 are still inside. */
	CHECK(!lim_check(&p, &s, T0 + 61 * S, 1, &r));
	CHECK(take(&p, &s, T0 + 70 * S, 1, &r));
	lim_state_free(&s);
}

static void test_sliding_window_tokens_refund(void)
{
	struct lim_params p = params(LIM_SLIDING_WINDOW, 1000, 60 * S);
	struct lim_state s;
	struct lim_result r;

	lim_state_init(&s, &p, T0);
	CHECK(take(&p, &s, T0, 600, &r));
	CHECK(take(&p, &s, T0 + S, 300, &r));
	CHECK(!lim_check(&p, &s, T0 + 2 * S, 200, &r));
	CHECK_EQ_INT(r.retry_us, 58 * S); /* needs the 600 of t=0 gone */
	lim_adjust(&p, &s, T0 + 2 * S, -500, T0); /* the first request used 100 */
	CHECK(take(&p, &s, T0 + 2 * S, 200, &r));
	CHECK_EQ_INT(r.remaining, 1000 - 100 - 300 - 200);
	lim_adjust(&p, &s, T0 + 2 * S, 400, T0 + S); /* the second used 700: charged now */
	CHECK(lim_check(&p, &s, T0 + 2 * S, 0, &r));
	CHECK_EQ_INT(r.remaining, 0);
	lim_state_free(&s);
}

static void test_sliding_window_log_full_is_conservative(void)
{
	struct lim_params p = params(LIM_SLIDING_WINDOW, 100000, 60 * S);
	struct lim_state s;
	int64_t i;

	lim_state_init(&s, &p, T0);
	for (i = 0; i < 3 * LIM_LOG_CAP; i++)
		CHECK(take(&p, &s, T0 + i, 1, NULL));
	CHECK_EQ_INT(s.log->count, LIM_LOG_CAP);
	CHECK_EQ_INT(s.log->sum, 3 * LIM_LOG_CAP); /* merged, never lost */
	lim_state_free(&s);
}

static void test_warmup_curve(void)
{
	struct lim_params p = params(LIM_WARMUP, 60, 1 * S); /* 60/s after 60 s of warm-up */
	struct lim_state s;
	int per_sec[70];

	p.warmup_us = 60 * S;
	p.cold_factor = 3;
	lim_state_init(&s, &p, T0);
	CHECK_EQ_INT(count_admitted(&p, &s, T0, 1000), 20); /* cold capacity: 60 / 3 */
	for (int sec = 1; sec < 70; sec++) {
		per_sec[sec] = 0;
		for (int ms = 0; ms < 1000; ms += 5)
			per_sec[sec] += take(&p, &s, T0 + sec * S + ms * 1000LL, 1, NULL);
	}
	/* Rate ~ 20/s at the start, ramping to 60/s at 60 s, then flat. */
	CHECK(per_sec[2] >= 19 && per_sec[2] <= 23);
	CHECK(per_sec[30] >= 38 && per_sec[30] <= 42);
	CHECK(per_sec[65] >= 59 && per_sec[65] <= 61);
	for (int sec = 3; sec < 60; sec++)
		CHECK(per_sec[sec] + 1 >= per_sec[sec - 1]); /* never decreasing (rounding aside) */
	lim_restart_warmup(&p, &s, T0 + 100 * S);
	CHECK_EQ_INT(count_admitted(&p, &s, T0 + 100 * S, 1000), 20);
	lim_state_free(&s);
}

static void test_concurrency(void)
{
	struct lim_params p = params(LIM_CONCURRENCY, 2, 0);
	struct lim_state s;
	struct lim_result r;

	lim_state_init(&s, &p, T0);
	CHECK(take(&p, &s, T0, 1, &r));
	CHECK_EQ_INT(r.remaining, 1);
	CHECK(take(&p, &s, T0, 1, &r));
	CHECK(!lim_check(&p, &s, T0, 1, &r));
	lim_release(&p, &s, 1);
	CHECK(take(&p, &s, T0, 1, &r));
	lim_release(&p, &s, 0);
	lim_release(&p, &s, 0);
	lim_release(&p, &s, 0); /* a spurious release never goes below zero */
	CHECK_EQ_INT(s.inflight, 0);
	lim_state_free(&s);
}

static void test_adaptive_aimd(void)
{
	struct lim_params p = params(LIM_ADAPTIVE, 20, 0);
	struct lim_state s;
	struct lim_result r;

	p.min_limit = 2;
	lim_state_init(&s, &p, T0);
	CHECK(lim_check(&p, &s, T0, 1, &r));
	CHECK_EQ_INT(r.limit, 20);
	for (int i = 0; i < 10; i++)
		lim_feedback(&p, &s, 0); /* 20 * 0.9^10 = 6.97 */
	CHECK(lim_check(&p, &s, T0, 1, &r));
	CHECK_EQ_INT(r.limit, 6);
	for (int i = 0; i < 100; i++)
		lim_feedback(&p, &s, 0);
	lim_check(&p, &s, T0, 1, &r);
	CHECK_EQ_INT(r.limit, 2); /* the floor */
	for (int i = 0; i < 2; i++)
		CHECK(take(&p, &s, T0, 1, &r));
	CHECK(!lim_check(&p, &s, T0, 1, &r));
	for (int i = 0; i < 1000; i++)
		lim_feedback(&p, &s, 1); /* additive: ~sqrt(2 * 1000) */
	lim_check(&p, &s, T0, 1, &r);
	CHECK(r.limit == 20);
	lim_state_free(&s);
}

static void test_periods(void)
{
	struct lim_params p = params(LIM_PERIOD_DAY, 1000, 0);
	struct lim_state s;
	struct lim_result r;
	int64_t day = lim_period_start(LIM_PERIOD_DAY, T0);

	CHECK_EQ_INT(day, 1699920000LL * S);                                  /* 2023-11-14 */
	CHECK_EQ_INT(lim_period_next(LIM_PERIOD_DAY, T0), 1700006400LL * S); /* 2023-11-15 */
	CHECK_EQ_INT(lim_period_start(LIM_PERIOD_MONTH, T0), 1698796800LL * S); /* 2023-11-01 */
	CHECK_EQ_INT(lim_period_next(LIM_PERIOD_MONTH, T0), 1701388800LL * S);  /* 2023-12-01 */
	CHECK_EQ_INT(lim_period_next(LIM_PERIOD_MONTH, 1702000000LL * S), 1704067200LL * S); /* Dec -> Jan */
	lim_state_init(&s, &p, T0);
	CHECK(take(&p, &s, T0, 999, &r));
	CHECK(take(&p, &s, T0, 1, &r));
	CHECK(!lim_check(&p, &s, T0, 1, &r));
	CHECK_EQ_INT(r.retry_us, 1700006400LL * S - T0);
	lim_adjust(&p, &s, T0, -10, T0);
	CHECK(take(&p, &s, T0, 10, &r));
	/* The next day starts empty; a refund for yesterday is not credited today. */
	CHECK(take(&p, &s, 1700006400LL * S, 1000, &r));
	lim_adjust(&p, &s, 1700006400LL * S, -500, T0);
	CHECK(!lim_check(&p, &s, 1700006400LL * S, 1, &r));
	/* Overdrawn (a batch settled past the amount): what costs nothing still passes. */
	lim_adjust(&p, &s, 1700006400LL * S, 300, 1700006400LL * S);
	CHECK(!lim_check(&p, &s, 1700006400LL * S, 1, &r));
	CHECK_EQ_INT(r.remaining, 0);
	CHECK(lim_check(&p, &s, 1700006400LL * S, 0, &r));
	CHECK_EQ_INT(r.remaining, 0);
	lim_state_free(&s);
}

static struct lim_def mkdef(int64_t id, int64_t tenant, int64_t key, int64_t model, enum lim_scope sc,
			    enum lim_dim dim, int64_t amount)
{
	struct lim_def d;

	memset(&d, 0, sizeof(d));
	d.id = id;
	d.tenant_id = tenant;
	d.key_id = key;
	d.model_id = model;
	d.scope = sc;
	d.dim = dim;
	d.p = params(dim == LD_CONCURRENT ? LIM_CONCURRENCY : LIM_SLIDING_WINDOW, amount, 60 * S);
	return d;
}

static void test_defs_overrides(void)
{
	struct limdefs *d = limdefs_new();
	struct lim_def out[LIM_MAX_PER_REQ], x;
	size_t n;

	x = mkdef(1, 0, 0, 0, LS_TENANT, LD_REQUESTS, 100); /* global default */
	limdefs_put(d, &x);
	x = mkdef(2, 7, 0, 0, LS_TENANT, LD_REQUESTS, 50); /* tenant 7 */
	limdefs_put(d, &x);
	x = mkdef(3, 7, 70, 0, LS_TENANT, LD_REQUESTS, 500); /* key 70 of tenant 7 */
	limdefs_put(d, &x);
	x = mkdef(4, 7, 0, 9, LS_TENANT_MODEL, LD_TOKENS, 1000); /* model 9 for tenant 7 */
	limdefs_put(d, &x);
	x = mkdef(5, 7, 0, 0, LS_KEY, LD_CONCURRENT, 3);
	limdefs_put(d, &x);
	CHECK(lim_def_invalid(&x) == NULL);
	n = limdefs_select(d, 8, 80, 9, out, LIM_MAX_PER_REQ);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_INT(out[0].id, 1);
	n = limdefs_select(d, 7, 71, 1, out, LIM_MAX_PER_REQ);
	CHECK_EQ_INT(n, 2);
	CHECK_EQ_INT(out[0].id, 2); /* the tenant's row overrides the global one */
	CHECK_EQ_INT(out[1].id, 5);
	n = limdefs_select(d, 7, 70, 9, out, LIM_MAX_PER_REQ);
	CHECK_EQ_INT(n, 3);
	CHECK_EQ_INT(out[0].id, 3); /* the key's row overrides the tenant's */
	limdefs_del(d, 3);
	n = limdefs_select(d, 7, 70, 9, out, LIM_MAX_PER_REQ);
	CHECK_EQ_INT(out[0].id, 2);
	CHECK_EQ_INT(limdefs_count(d), 4);
	x = mkdef(6, 0, 0, 0, LS_KEY, LD_QUOTA, 10);
	CHECK(lim_def_invalid(&x) != NULL); /* a quota needs a period */
	limdefs_free(d);
}

static void test_local_all_or_nothing(void)
{
	struct lim_item it[2];

	lim_local_init(1000);
	memset(it, 0, sizeof(it));
	it[0].def = mkdef(1, 0, 0, 0, LS_TENANT, LD_REQUESTS, 10);
	it[1].def = mkdef(2, 0, 0, 0, LS_KEY, LD_REQUESTS, 2);
	snprintf(it[0].key, sizeof(it[0].key), "1:0:t1");
	snprintf(it[1].key, sizeof(it[1].key), "2:0:k1");
	it[0].cost = it[1].cost = 1;
	CHECK(lim_local_admit(it, 2, T0, 1));
	CHECK(lim_local_admit(it, 2, T0, 1));
	CHECK(!lim_local_admit(it, 2, T0, 1)); /* the key limit refuses ... */
	CHECK_EQ_INT(it[0].res.remaining, 8);  /* ... and the tenant was not charged */
	CHECK(!lim_local_admit(it, 2, T0, 1));
	CHECK_EQ_INT(it[0].res.remaining, 8);
	/* Fleet fallback: amounts divided by the fleet size. */
	snprintf(it[0].key, sizeof(it[0].key), "1:0:t2");
	CHECK_EQ_INT(lim_local_admit(&it[0], 1, T0, 4), 1);
	CHECK_EQ_INT(it[0].res.limit, 2);
	CHECK_EQ_INT(lim_local_admit(&it[0], 1, T0, 4), 1);
	CHECK_EQ_INT(lim_local_admit(&it[0], 1, T0, 4), 0);
	lim_local_undo(&it[0], 1, T0, 4);
	CHECK_EQ_INT(lim_local_admit(&it[0], 1, T0, 4), 1);
	CHECK(lim_local_sweep(T0 + 3600 * S) >= 3);
	lim_local_destroy();
}

static void test_local_overflow_shares_a_counter(void)
{
	struct lim_item it;
	struct lim_local_stats st;

	lim_local_init(2);
	memset(&it, 0, sizeof(it));
	it.def = mkdef(1, 0, 0, 0, LS_IP, LD_REQUESTS, 3);
	it.cost = 1;
	for (int i = 0; i < 6; i++) {
		snprintf(it.key, sizeof(it.key), "1:0:ip%d", i);
		CHECK_EQ_INT(lim_local_admit(&it, 1, T0, 1), i < 5); /* 2 own + 3 shared */
	}
	lim_local_stats(&st);
	CHECK_EQ_INT(st.states, 3);
	CHECK(st.overflow >= 4);
	lim_local_destroy();
}

static void test_local_seed_period_counters(void)
{
	struct usage_seed_row rows[] = {
		{ 1699920000, 7, 70, 9, 400, 0 },  /* today (2023-11-14), tenant 7 */
		{ 1699833600, 7, 71, 9, 300, 0 },  /* yesterday, tenant 7: counts for the month */
		{ 1699920000, 8, 80, 9, 5000, 0 }, /* another tenant */
	};
	struct lim_item day, month, other;

	lim_local_init(100);
	memset(&day, 0, sizeof(day));
	day.def = mkdef(1, 0, 0, 0, LS_TENANT, LD_QUOTA, 1000);
	day.def.p.algo = LIM_PERIOD_DAY;
	day.sc_tenant = 7;
	day.cost = 500;
	snprintf(day.key, sizeof(day.key), "1:0:t7:pday");
	month = day;
	month.def.id = 2;
	month.def.p.algo = LIM_PERIOD_MONTH;
	snprintf(month.key, sizeof(month.key), "2:0:t7:pmonth");
	/* A counter that exists before the seed arrives gets it too. */
	CHECK_EQ_INT(lim_local_admit(&day, 1, T0, 1), 1); /* 500 of 1000 */
	lim_local_seed(rows, 3);
	CHECK_EQ_INT(lim_local_admit(&day, 1, T0, 1), 0); /* 500 + 400 + 500 > 1000 */
	CHECK_EQ_INT(day.res.remaining, 100);
	CHECK_EQ_INT(lim_local_admit(&month, 1, T0, 1), 0); /* 700 + 500 > 1000 */
	CHECK_EQ_INT(month.res.remaining, 300);
	/* Scopes the usage rows cannot tell apart start at zero. */
	other = day;
	other.def.id = 3;
	other.def.scope = LS_IP;
	snprintf(other.key, sizeof(other.key), "3:0:i7f000001:pday");
	CHECK_EQ_INT(lim_local_admit(&other, 1, T0, 1), 1);
	CHECK_EQ_INT(other.res.remaining, 500);
	lim_local_destroy();
}

int main(void)
{
	RUN(test_token_bucket_burst_and_refill);
	RUN(test_token_bucket_burst_param_and_cost);
	RUN(test_token_bucket_adjust);
	RUN(test_gcra_spacing_and_burst);
	RUN(test_gcra_long_run_rate);
	RUN(test_sliding_window_exact);
	RUN(test_sliding_window_tokens_refund);
	RUN(test_sliding_window_log_full_is_conservative);
	RUN(test_warmup_curve);
	RUN(test_concurrency);
	RUN(test_adaptive_aimd);
	RUN(test_periods);
	RUN(test_defs_overrides);
	RUN(test_local_all_or_nothing);
	RUN(test_local_overflow_shares_a_counter);
	RUN(test_local_seed_period_counters);
	TEST_END();
}
