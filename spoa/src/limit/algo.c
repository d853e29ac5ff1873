#include "limit/algo.h"

#include "util/xalloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EPS 1e-9 /* float slack when comparing token counts */

static const char *const algo_names[LIM_ALGO__COUNT] = {
	[LIM_TOKEN_BUCKET] = "token_bucket",     [LIM_LEAKY_BUCKET] = "leaky_bucket",
	[LIM_SLIDING_WINDOW] = "sliding_window", [LIM_WARMUP] = "warmup",
	[LIM_CONCURRENCY] = "concurrency",       [LIM_ADAPTIVE] = "adaptive",
	[LIM_PERIOD_DAY] = "day",                [LIM_PERIOD_MONTH] = "month",
};

const char *lim_algo_name(enum lim_algo a)
{
	return (unsigned)a < LIM_ALGO__COUNT ? algo_names[a] : "unknown";
}

int lim_algo_parse(const char *s, enum lim_algo *out)
{
	for (int i = 0; i < LIM_ALGO__COUNT; i++)
		if (strcmp(s, algo_names[i]) == 0) {
			*out = (enum lim_algo)i;
			return 0;
		}
	return -1;
}

/* ---- calendar periods ---------------------------------------------------------------- */

int64_t lim_period_start(enum lim_algo a, int64_t t_us)
{
	time_t t = (time_t)(t_us / LIM_US_PER_S);
	struct tm tm;

	gmtime_r(&t, &tm);
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	if (a == LIM_PERIOD_MONTH)
		tm.tm_mday = 1;
	return (int64_t)timegm(&tm) * LIM_US_PER_S;
}

int64_t lim_period_next(enum lim_algo a, int64_t t_us)
{
	time_t t = (time_t)(lim_period_start(a, t_us) / LIM_US_PER_S);
	struct tm tm;

	gmtime_r(&t, &tm);
	if (a == LIM_PERIOD_MONTH)
		tm.tm_mon += 1; /* timegm normalises December + 1 */
	else
		tm.tm_mday += 1;
	return (int64_t)timegm(&tm) * LIM_US_PER_S;
}

/* ---- helpers --------------------------------------------------------------------------- */

static int64_t capacity(const struct lim_params *p)
{
	return p->burst > 0 ? p->burst : p->amount;
}

static double rate_per_us(const struct lim_params *p)
{
	return (double)p->amount / (double)(p->window_us > 0 ? p->window_us : 1);
}

static int64_t floor_nonneg(double v)
{
	return v <= 0 ? 0 : (int64_t)floor(v + EPS);
}

static int64_t ceil_us(double v)
{
	return v <= 0 ? 0 : (int64_t)ceil(v - EPS);
}

/* Warm-up: the fraction of the full rate at elapsed time x (0..1) and its integral. */
static double warm_fraction(const struct lim_params *p, double x)
{
	double c = p->cold_factor > 1 ? (double)p->cold_factor : 1.0, w = (double)p->warmup_us;

	if (w <= 0 || x >= w)
		return 1.0;
	if (x < 0)
		x = 0;
	return 1.0 / c + (1.0 - 1.0 / c) * x / w;
}

static double warm_integral(const struct lim_params *p, double x)
{
	double c = p->cold_factor > 1 ? (double)p->cold_factor : 1.0, w = (double)p->warmup_us;

	if (x <= 0)
		return 0;
	if (w <= 0)
		return x;
	if (x < w)
		return x / c + (1.0 - 1.0 / c) * x * x / (2 * w);
	return w / c + (1.0 - 1.0 / c) * w / 2 + (x - w);
}

static double bucket_cap(const struct lim_params *p, const struct lim_state *s, int64_t now)
{
	double cap = (double)capacity(p);

	return p->algo == LIM_WARMUP ? cap * warm_fraction(p, (double)(now - s->start_us)) : cap;
}

/* Token bucket and warm-up: adds what flowed in since last_us. */
static void bucket_refill(const struct lim_params *p, struct lim_state *s, int64_t now)
{
	double in, cap = bucket_cap(p, s, now);

	if (now <= s->last_us)
		return;
	if (p->algo == LIM_WARMUP)
		in = rate_per_us(p) * (warm_integral(p, (double)(now - s->start_us)) -
				       warm_integral(p, (double)(s->last_us - s->start_us)));
	else
		in = rate_per_us(p) * (double)(now - s->last_us);
	s->level += in;
	if (s->level > cap)
		s->level = cap;
	s->last_us = now;
}

/* Time until `need` more tokens have flowed in from now (warm-up: at the current rate,
 * which only underestimates the wait while the rate still grows: a retry may be early). */
static double bucket_wait(const struct lim_params *p, const struct lim_state *s, int64_t now,
			  double need)
{
	double r = rate_per_us(p);

	if (p->algo == LIM_WARMUP)
		r *= warm_fraction(p, (double)(now - s->start_us));
	return need <= 0 ? 0 : need / r;
}

/* ---- sliding log ------------------------------------------------------------------------ */

static struct lim_log_entry *log_at(struct lim_log *l, uint32_t i)
{
	return &l->e[(l->head + i) % LIM_LOG_CAP];
}

static void log_expire(const struct lim_params *p, struct lim_log *l, int64_t now)
{
	while (l->count && log_at(l, 0)->t_us <= now - p->window_us) {
		l->sum -= log_at(l, 0)->cost;
		l->head = (l->head + 1) % LIM_LOG_CAP;
		l->count--;
	}
}

static void log_append(struct lim_log *l, int64_t now, int64_t cost)
{
	if (l->count && log_at(l, l->count - 1)->t_us == now) {
		log_at(l, l->count - 1)->cost += cost;
	} else {
		if (l->count == LIM_LOG_CAP) {
			/* Full: the oldest entry merges into the second oldest (expires later). */
			struct lim_log_entry *a = log_at(l, 0), *b = log_at(l, 1);
			b->cost += a->cost;
			l->head = (l->head + 1) % LIM_LOG_CAP;
			l->count--;
		}
		*log_at(l, l->count) = (struct lim_log_entry){ now, cost };
		l->count++;
	}
	l->sum += cost;
}

static int log_check(const struct lim_params *p, struct lim_log *l, int64_t now, int64_t cost,
		     struct lim_result *r)
{
	int64_t excess;

	log_expire(p, l, now);
	r->admit = l->sum + cost <= p->amount;
	r->remaining = r->admit ? p->amount - l->sum - cost : (p->amount > l->sum ? p->amount - l->sum : 0);
	/* Fully available once the newest entry (this request, if admitted) has expired. */
	r->reset_us = r->admit ? p->window_us
			       : l->count ? log_at(l, l->count - 1)->t_us + p->window_us - now : 0;
	r->retry_us = 0;
	if (!r->admit && cost <= p->amount) {
		/* The earliest time at which enough of the log has expired. */
		excess = l->sum + cost - p->amount;
		for (uint32_t i = 0; i < l->count; i++) {
			excess -= log_at(l, i)->cost;
			if (excess <= 0) {
				r->retry_us = log_at(l, i)->t_us + p->window_us - now;
				break;
			}
		}
	}
	return r->admit;
}

/* A refund comes off the entries charged at or after `at` (the request's own entry, or
 * the later one it was merged into). */
static void log_refund(const struct lim_params *p, struct lim_log *l, int64_t now, int64_t amount,
		       int64_t at)
{
	log_expire(p, l, now);
	for (uint32_t i = 0; i < l->count && amount > 0; i++) {
		struct lim_log_entry *e = log_at(l, i);
		int64_t take;

		if (e->t_us < at)
			continue;
		take = e->cost < amount ? e->cost : amount;
		e->cost -= take;
		l->sum -= take;
		amount -= take;
	}
}

/* ---- the algorithms ---------------------------------------------------------------------- */

/* One algorithm: how a state starts, whether a cost is admitted, how it is charged, and
 * how a charge made at `at` is reconciled. An entry of `algos` below; lim_check() and the
 * others only pick the entry. */
struct lim_ops {
	void (*init)(const struct lim_params *p, struct lim_state *s, int64_t now);
	int (*check)(const struct lim_params *p, struct lim_state *s, int64_t now, int64_t cost,
		     struct lim_result *r);
	void (*charge)(const struct lim_params *p, struct lim_state *s, int64_t now, int64_t cost);
	void (*adjust)(const struct lim_params *p, struct lim_state *s, int64_t now, int64_t delta,
		       int64_t at);
};

static void period_roll(const struct lim_params *p, struct lim_state *s, int64_t now)
{
	if (now >= lim_period_next(p->algo, s->period_start_us) || now < s->period_start_us) {
		s->period_start_us = lim_period_start(p->algo, now);
		s->used = 0;
	}
}

static int64_t adaptive_ceiling(const struct lim_params *p, const struct lim_state *s)
{
	int64_t c = (int64_t)floor(s->ceiling + EPS);
	int64_t lo = p->min_limit > 0 ? p->min_limit : 1;

	return c < lo ? lo : c > p->amount ? p->amount : c;
}

/* Token bucket and warm-up. */
static void bucket_init(const struct lim_params *p, struct lim_state *s, int64_t now)
{
	s->level = p->algo == LIM_WARMUP ? bucket_cap(p, s, now) : (double)capacity(p);
}

static int bucket_check(const struct lim_params *p, struct lim_state *s, int64_t now, int64_t cost,
			struct lim_result *r)
{
	double cap;

	bucket_refill(p, s, now);
	cap = bucket_cap(p, s, now);
	r->admit = s->level + EPS >= (double)cost;
	r->remaining = floor_nonneg(r->admit ? s->level - (double)cost : s->level);
	r->reset_us = ceil_us(bucket_wait(p, s, now, cap - (s->level - (r->admit ? (double)cost : 0))));
	if (!r->admit && (double)cost <= (double)capacity(p) + EPS)
		r->retry_us = ceil_us(bucket_wait(p, s, now, (double)cost - s->level));
	return r->admit;
}

static void bucket_charge(const struct lim_params *p, struct lim_state *s, int64_t now, int64_t cost)
{
	bucket_refill(p, s, now);
	s->level -= (double)cost;
}

static void bucket_adjust(const struct lim_params *p, struct lim_state *s, int64_t now, int64_t delta,
			  int64_t at)
{
	double cap;

	(void)at;
	bucket_refill(p, s, now);
	cap = bucket_cap(p, s, now);
	s->level -= (double)delta; /* more usage may leave a debt that later requests wait out */
	if (s->level > cap)
		s->level = cap;
}

/* Leaky bucket (GCRA): s->level is the theoretical arrival time. */
static double gcra_interval(const struct lim_params *p)
{
	return (double)p->window_us / (double)(p->amount > 0 ? p->amount : 1);
}

static void gcra_init(const struct lim_params *p, struct lim_state *s, int64_t now)
{
	(void)p;
	s->level = (double)now;
}

static int gcra_check(const struct lim_params *p, struct lim_state *s, int64_t now, int64_t cost,
		      struct lim_result *r)
{
	double T = gcra_interval(p), tau = (double)capacity(p) * T;
	double tat = s->level > (double)now ? s->level : (double)now;
	double new_tat = tat + (double)cost * T;

	r->admit = new_tat - (double)now <= tau + EPS;
	r->remaining = floor_nonneg((tau - ((r->admit ? new_tat : tat) - (double)now)) / T);
	r->reset_us = ceil_us((r->admit ? new_tat : tat) - (double)now);
	if (!r->admit && (double)cost <= (double)capacity(p) + EPS)
		r->retry_us = ceil_us(new_tat - tau - (double)now);
	return r->admit;
}

static void gcra_charge(const struct lim_params *p, struct lim_state *s, int64_t now, int64_t cost)
{
	if (s->level < (double)now)
		s->level = (double)now;
	s->level += (double)cost * gcra_interval(p);
}

static void gcra_adjust(const struct lim_params *p, struct lim_state *s, int64_t now, int64_t delta,
			int64_t at)
{
	(void)at;
	s->level += (double)delta * gcra_interval(p);
	if (s->level < (double)now)
		s->level = (double)now; /* an empty bucket holds no credit */
}

/* Sliding window: the exact log, allocated on first use. */
static struct lim_log *log_of(struct lim_state *s)
{
	if (!s->log)
		s->log = xcalloc(1, sizeof(*s->log));
	return s->log;
}

static int window_check(const struct lim_params *p, struct lim_state *s, int64_t now, int64_t cost,
			struct lim_result *r)
{
	return log_check(p, log_of(s), now, cost, r);
}

static void window_charge(const struct lim_params *p, struct lim_state *s, int64_t now, int64_t cost)
{
	log_expire(p, log_of(s), now);
	log_append(s->log, now, cost);
}

static void window_adjust(const struct lim_params *p, struct lim_state *s, int64_t now, int64_t delta,
			  int64_t at)
{
	if (delta > 0)
		window_charge(p, s, now, delta);
	else
		log_refund(p, log_of(s), now, -delta, at);
}

/* Concurrency and adaptive: returned by lim_release(), never adjusted. */
static void conc_init(const struct lim_params *p, struct lim_state *s, int64_t now)
{
	(void)now;
	if (p->algo == LIM_ADAPTIVE)
		s->ceiling = (double)p->amount;
}

static int conc_check(const struct lim_params *p, struct lim_state *s, int64_t now, int64_t cost,
		      struct lim_result *r)
{
	int64_t ceiling = p->algo == LIM_ADAPTIVE ? adaptive_ceiling(p, s) : p->amount;

	(void)now;
	(void)cost;
	r->limit = ceiling;
	r->admit = s->inflight < ceiling;
	r->remaining = r->admit ? ceiling - s->inflight - 1 : 0;
	r->retry_us = r->admit ? 0 : LIM_US_PER_S; /* unknown: when a request ends */
	return r->admit;
}

static void conc_charge(const struct lim_params *p, struct lim_state *s, int64_t now, int64_t cost)
{
	(void)p;
	(void)now;
	(void)cost;
	s->inflight++;
}

static void conc_adjust(const struct lim_params *p, struct lim_state *s, int64_t now, int64_t delta,
			int64_t at)
{
	(void)p;
	(void)s;
	(void)now;
	(void)delta;
	(void)at;
}

/* Calendar periods (quotas, budgets). */
static void period_init(const struct lim_params *p, struct lim_state *s, int64_t now)
{
	s->period_start_us = lim_period_start(p->algo, now);
}

static int period_check(const struct lim_params *p, struct lim_state *s, int64_t now, int64_t cost,
			struct lim_result *r)
{
	int64_t next;

	period_roll(p, s, now);
	next = lim_period_next(p->algo, s->period_start_us);
	/* What costs nothing passes even past the amount: a batch billed at completion can
	 * leave a period overdrawn, and its results must still be reachable. */
	r->admit = cost == 0 || s->used + cost <= p->amount;
	if (r->admit)
		r->remaining = p->amount > s->used + cost ? p->amount - s->used - cost : 0;
	else
		r->remaining = p->amount > s->used ? p->amount - s->used : 0;
	r->reset_us = next - now;
	r->retry_us = r->admit || cost > p->amount ? 0 : next - now;
	return r->admit;
}

static void period_charge(const struct lim_params *p, struct lim_state *s, int64_t now, int64_t cost)
{
	period_roll(p, s, now);
	s->used += cost;
}

static void period_adjust(const struct lim_params *p, struct lim_state *s, int64_t now, int64_t delta,
			  int64_t at)
{
	period_roll(p, s, now);
	if (at < s->period_start_us && delta < 0)
		return; /* the charge belonged to a period that is over */
	s->used += delta;
	if (s->used < 0)
		s->used = 0;
}

static void no_init(const struct lim_params *p, struct lim_state *s, int64_t now)
{
	(void)p;
	(void)s;
	(void)now;
}

static const struct lim_ops bucket = { bucket_init, bucket_check, bucket_charge, bucket_adjust };
static const struct lim_ops gcra = { gcra_init, gcra_check, gcra_charge, gcra_adjust };
static const struct lim_ops window = { no_init, window_check, window_charge, window_adjust };
static const struct lim_ops conc = { conc_init, conc_check, conc_charge, conc_adjust };
static const struct lim_ops period = { period_init, period_check, period_charge, period_adjust };

static const struct lim_ops *const algos[LIM_ALGO__COUNT] = {
	[LIM_TOKEN_BUCKET] = &bucket, [LIM_LEAKY_BUCKET] = &gcra, [LIM_SLIDING_WINDOW] = &window,
	[LIM_WARMUP] = &bucket,       [LIM_CONCURRENCY] = &conc,  [LIM_ADAPTIVE] = &conc,
	[LIM_PERIOD_DAY] = &period,   [LIM_PERIOD_MONTH] = &period,
};

/* NULL for a value outside the enum (a corrupt definition): never admits, never charges. */
static const struct lim_ops *ops_of(const struct lim_params *p)
{
	return (unsigned)p->algo < LIM_ALGO__COUNT ? algos[p->algo] : NULL;
}

/* ---- the interface ---------------------------------------------------------------------- */

void lim_state_init(struct lim_state *s, const struct lim_params *p, int64_t now_us)
{
	const struct lim_ops *o = ops_of(p);

	memset(s, 0, sizeof(*s));
	s->init = 1;
	s->start_us = s->last_us = now_us;
	if (o)
		o->init(p, s, now_us);
}

void lim_state_free(struct lim_state *s)
{
	free(s->log);
	s->log = NULL;
}

int lim_check(const struct lim_params *p, struct lim_state *s, int64_t now, int64_t cost,
	      struct lim_result *r)
{
	const struct lim_ops *o = ops_of(p);

	memset(r, 0, sizeof(*r));
	r->limit = p->amount;
	return o ? o->check(p, s, now, cost, r) : 0; /* an unknown algorithm never admits */
}

void lim_charge(const struct lim_params *p, struct lim_state *s, int64_t now, int64_t cost)
{
	const struct lim_ops *o = ops_of(p);

	if (o)
		o->charge(p, s, now, cost);
}

void lim_adjust(const struct lim_params *p, struct lim_state *s, int64_t now, int64_t delta,
		int64_t at)
{
	const struct lim_ops *o = ops_of(p);

	if (delta != 0 && o)
		o->adjust(p, s, now, delta, at);
}

void lim_feedback(const struct lim_params *p, struct lim_state *s, int ok)
{
	double lo = p->min_limit > 0 ? p->min_limit : 1, hi = (double)p->amount;

	if (p->algo != LIM_ADAPTIVE)
		return;
	if (ok)
		s->ceiling += 1.0 / (s->ceiling > 1 ? s->ceiling : 1);
	else
		s->ceiling *= 0.9;
	if (s->ceiling < lo)
		s->ceiling = lo;
	if (s->ceiling > hi)
		s->ceiling = hi;
}

void lim_release(const struct lim_params *p, struct lim_state *s, int ok)
{
	if (!lim_is_concurrency(p->algo))
		return;
	if (s->inflight > 0)
		s->inflight--;
	lim_feedback(p, s, ok);
}

void lim_restart_warmup(const struct lim_params *p, struct lim_state *s, int64_t now_us)
{
	s->start_us = now_us;
	s->last_us = now_us;
	s->level = bucket_cap(p, s, now_us); /* the cold capacity, refilled at the cold rate */
}
