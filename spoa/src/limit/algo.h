/*
 * limit/algo: the rate-limiting algorithms as pure functions over a state and an
 * injected clock (microseconds, any epoch; calendar periods use the Unix epoch).
 * Nothing here locks, allocates on the hot path (except a sliding log's first use) or
 * reads a clock: callers (limit/local.c, the unit tests) do.
 *
 * Every algorithm is split in check and charge, so that a request subject to several
 * limits is charged only when all of them admit it:
 *
 *   lim_check(p, s, now, cost, &r)   would `cost` be admitted now? fills r (headers)
 *   lim_charge(p, s, now, cost)      take it (after every check admitted)
 *   lim_adjust(p, s, now, delta, at) reconcile a charge made at time `at` with the
 *                                    real cost (delta > 0 charges more, < 0 refunds)
 *
 * Algorithms (docs/limits.md):
 *   token bucket    capacity `burst` (default `amount`), refilled at amount/window.
 *   leaky bucket    GCRA (the virtual-scheduling form of the leaky bucket): one
 *                   theoretical arrival time; bursts up to `burst` cost units.
 *   sliding window  exact sliding log: the sum of the costs admitted during the last
 *                   `window` must stay <= amount. The log keeps up to LIM_LOG_CAP
 *                   entries; beyond that the two oldest merge into the later time
 *                   (they then expire later: conservative, never over-admits).
 *   warm-up         a token bucket whose rate and capacity ramp linearly from
 *                   amount/cold_factor to amount over warmup after the state started
 *                   (agent start, a changed limit, or lim_restart_warmup()).
 *   concurrency     in-flight count < amount; released by lim_release().
 *   adaptive        concurrency whose ceiling follows upstream health (AIMD): each
 *                   good completion adds 1/ceiling, each slow or failed one
 *                   multiplies it by 0.9; bounded by [min_limit, amount].
 *   period          fixed calendar period (UTC day or month): quotas and budgets.
 */
#ifndef JR_LIMIT_ALGO_H
#define JR_LIMIT_ALGO_H

#include <stdint.h>

#define LIM_LOG_CAP 1024 /* sliding log entries per state (exact up to this many) */
#define LIM_US_PER_S 1000000LL

enum lim_algo {
	LIM_TOKEN_BUCKET = 0,
	LIM_LEAKY_BUCKET,   /* GCRA */
	LIM_SLIDING_WINDOW,
	LIM_WARMUP,
	LIM_CONCURRENCY,
	LIM_ADAPTIVE,
	LIM_PERIOD_DAY,
	LIM_PERIOD_MONTH,
	LIM_ALGO__COUNT
};

const char *lim_algo_name(enum lim_algo a);
int lim_algo_parse(const char *s, enum lim_algo *out); /* 0, or -1 when unknown */

struct lim_params {
	enum lim_algo algo;
	int64_t amount;       /* per window (rates), in flight (concurrency), per period */
	int64_t window_us;    /* rates: the window; ignored otherwise */
	int64_t burst;        /* token/leaky bucket capacity in cost units; 0 = amount */
	int64_t warmup_us;    /* warm-up: ramp duration */
	int32_t cold_factor;  /* warm-up: the starting rate is amount / cold_factor (>= 1) */
	int32_t min_limit;    /* adaptive: lowest ceiling (>= 1) */
	int64_t latency_target_us; /* adaptive: a completion slower than this is "slow" */
};

struct lim_log_entry {
	int64_t t_us;
	int64_t cost;
};

struct lim_log {
	uint32_t head, count; /* ring of LIM_LOG_CAP entries, oldest at head */
	int64_t sum;
	struct lim_log_entry e[LIM_LOG_CAP];
};

struct lim_state {
	int64_t start_us;  /* creation, for warm-up */
	int64_t last_us;   /* token bucket: time of `level` */
	double level;      /* token bucket: tokens available; GCRA: theoretical arrival time */
	int64_t inflight;  /* concurrency, adaptive */
	double ceiling;    /* adaptive: current concurrency ceiling */
	int64_t period_start_us; /* period: start of the current period */
	int64_t used;      /* period: cost used in it */
	struct lim_log *log; /* sliding window (allocated on first use, freed by lim_state_free) */
	int init;
};

/* What one limit says about one request (the x-ratelimit-* headers come from here). */
struct lim_result {
	int admit;
	int64_t limit;     /* the amount the headers announce */
	int64_t remaining; /* after this request, when admitted; now, when refused */
	int64_t reset_us;  /* until the limit is fully available again (or the period ends) */
	int64_t retry_us;  /* refused: when a retry may succeed (0 when it never can, e.g. cost > limit) */
};

void lim_state_init(struct lim_state *s, const struct lim_params *p, int64_t now_us);
void lim_state_free(struct lim_state *s);

int lim_check(const struct lim_params *p, struct lim_state *s, int64_t now_us, int64_t cost,
	      struct lim_result *r);
void lim_charge(const struct lim_params *p, struct lim_state *s, int64_t now_us, int64_t cost);
void lim_adjust(const struct lim_params *p, struct lim_state *s, int64_t now_us, int64_t delta,
		int64_t charged_at_us);

/* Concurrency and adaptive: one request ended. ok: it completed fast enough and without
 * an upstream error (adaptive feedback); latency_us < 0 when unknown. */
void lim_release(const struct lim_params *p, struct lim_state *s, int ok);
/* Adaptive: an upstream outcome (also used for requests this gateway did not admit). */
void lim_feedback(const struct lim_params *p, struct lim_state *s, int ok);

void lim_restart_warmup(const struct lim_params *p, struct lim_state *s, int64_t now_us);

/* Calendar periods (UTC): the start of the period holding t, and of the next one. */
int64_t lim_period_start(enum lim_algo a, int64_t t_us);
int64_t lim_period_next(enum lim_algo a, int64_t t_us);

/* True for algorithms whose charge is returned when the request ends. */
static inline int lim_is_concurrency(enum lim_algo a)
{
	return a == LIM_CONCURRENCY || a == LIM_ADAPTIVE;
}

#endif /* JR_LIMIT_ALGO_H */
