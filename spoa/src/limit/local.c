#include "limit/limiter.h"

#include "util/hmap.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OVERFLOW_SUFFIX ":~overflow"

struct entry {
	char key[LIM_KEY_MAX + sizeof(OVERFLOW_SUFFIX)];
	struct lim_def def; /* as charged: the sweep needs the window */
	struct lim_state st;
	int64_t touched_us;
	int64_t sc_tenant, sc_key, sc_model; /* whose counter (seeding) */
	int seeded, shared;                  /* seed applied; an overflow counter */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct hmap table;
static size_t max_states = 100000;
static int initialised;
static _Atomic uint64_t overflow_count;
static struct usage_seed_row *seed;  /* this month's recorded usage, once read */
static size_t nseed;
static int seed_ready;
static _Atomic int seed_pending;

void lim_local_init(size_t max)
{
	pthread_mutex_lock(&mu);
	if (!initialised) {
		hmap_init(&table);
		initialised = 1;
	}
	max_states = max ? max : 100000;
	pthread_mutex_unlock(&mu);
}

static void free_entry(void *item, void *arg)
{
	struct entry *e = item;

	(void)arg;
	lim_state_free(&e->st);
	free(e);
}

void lim_local_destroy(void)
{
	pthread_mutex_lock(&mu);
	if (initialised) {
		hmap_each(&table, free_entry, NULL);
		hmap_clear(&table);
		initialised = 0;
	}
	free(seed);
	seed = NULL;
	nseed = 0;
	seed_ready = 0;
	atomic_store(&seed_pending, 0);
	pthread_mutex_unlock(&mu);
}

static int entry_eq(const void *item, const void *key)
{
	return strcmp(((const struct entry *)item)->key, key) == 0;
}

struct lim_params lim_divided(const struct lim_params *p, int64_t divisor)
{
	struct lim_params d = *p;

	if (divisor > 1) {
		d.amount = p->amount / divisor > 0 ? p->amount / divisor : 1;
		if (p->burst > 0)
			d.burst = p->burst / divisor > 0 ? p->burst / divisor : 1;
		if (p->min_limit > 0)
			d.min_limit = p->min_limit / (int32_t)divisor > 0 ? p->min_limit / (int32_t)divisor : 1;
	}
	return d;
}

static int is_period(enum lim_algo a)
{
	return a == LIM_PERIOD_DAY || a == LIM_PERIOD_MONTH;
}

/* What the recorded usage already took from a period counter (0 for scopes the usage
 * rows cannot tell apart: user, ip, backend, server; and for shared overflow counters). */
static int64_t seed_sum(const struct entry *e)
{
	const struct lim_def *d = &e->def;
	int64_t start, end, sum = 0;

	if (!is_period(d->p.algo) || e->shared)
		return 0;
	if (d->scope != LS_TENANT && d->scope != LS_KEY && d->scope != LS_MODEL &&
	    d->scope != LS_TENANT_MODEL)
		return 0;
	if (d->scope == LS_KEY && !e->sc_key)
		return 0; /* a token's counter: its rows are not told apart from other tokens' */
	start = e->st.period_start_us / LIM_US_PER_S;
	end = lim_period_next(d->p.algo, e->st.period_start_us) / LIM_US_PER_S;
	for (size_t i = 0; i < nseed; i++) {
		const struct usage_seed_row *r = &seed[i];
		if (r->day < start || r->day >= end || (d->tenant_id && r->tenant_id != d->tenant_id) ||
		    (d->key_id && r->key_id != d->key_id) || (d->model_id && r->model_id != d->model_id))
			continue;
		if ((d->scope == LS_TENANT && r->tenant_id != e->sc_tenant) ||
		    (d->scope == LS_KEY && r->key_id != e->sc_key) ||
		    (d->scope == LS_MODEL && r->model_id != e->sc_model) ||
		    (d->scope == LS_TENANT_MODEL && (r->tenant_id != e->sc_tenant || r->model_id != e->sc_model)))
			continue;
		sum += d->dim == LD_BUDGET ? r->cost_micro : r->tokens;
	}
	return sum;
}

static void apply_seed(struct entry *e)
{
	if (e->seeded || !seed_ready)
		return;
	e->seeded = 1;
	e->st.used += seed_sum(e);
}

static void seed_one(void *item, void *arg)
{
	(void)arg;
	apply_seed(item);
}

void lim_local_seed_expect(void)
{
	atomic_store(&seed_pending, 1);
}

int lim_local_seed_pending(void)
{
	return atomic_load_explicit(&seed_pending, memory_order_relaxed);
}

void lim_local_seed(const struct usage_seed_row *rows, size_t n)
{
	pthread_mutex_lock(&mu);
	free(seed);
	seed = NULL;
	nseed = 0;
	if (n) {
		seed = xcalloc(n, sizeof(*seed));
		memcpy(seed, rows, n * sizeof(*seed));
		nseed = n;
	}
	seed_ready = 1;
	if (initialised)
		hmap_each(&table, seed_one, NULL);
	atomic_store(&seed_pending, 0);
	pthread_mutex_unlock(&mu);
}

/* The counter of an item (created on first use). NULL only when `create` is 0. */
static struct entry *find(const struct lim_item *it, const struct lim_params *p, int64_t now,
			  int create)
{
	uint64_t h = hmap_hash_bytes(it->key, strlen(it->key));
	struct entry *e = hmap_find(&table, h, entry_eq, it->key);
	char okey[sizeof(e->key)];

	if (e || !create)
		return e;
	if (table.count >= max_states) {
		/* Full: this definition's new scope values share one counter. */
		snprintf(okey, sizeof(okey), "%lld:%llx" OVERFLOW_SUFFIX, (long long)it->def.id,
			 (unsigned long long)it->def.version);
		h = hmap_hash_bytes(okey, strlen(okey));
		atomic_fetch_add_explicit(&overflow_count, 1, memory_order_relaxed);
		if ((e = hmap_find(&table, h, entry_eq, okey)))
			return e;
		e = xcalloc(1, sizeof(*e));
		memcpy(e->key, okey, sizeof(okey));
		e->shared = 1;
	} else {
		e = xcalloc(1, sizeof(*e));
		snprintf(e->key, sizeof(e->key), "%s", it->key);
	}
	e->def = it->def;
	e->sc_tenant = it->sc_tenant;
	e->sc_key = it->sc_key;
	e->sc_model = it->sc_model;
	lim_state_init(&e->st, p, now);
	apply_seed(e);
	hmap_insert(&table, h, e);
	return e;
}

int lim_local_admit(struct lim_item *items, size_t n, int64_t now, int64_t divisor)
{
	struct entry *e[LIM_MAX_PER_REQ];
	struct lim_params p[LIM_MAX_PER_REQ];
	int admit = 1;

	if (n > LIM_MAX_PER_REQ)
		n = LIM_MAX_PER_REQ;
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < n; i++) {
		p[i] = lim_divided(&items[i].def.p, divisor);
		e[i] = find(&items[i], &p[i], now, 1);
		e[i]->touched_us = now;
		if (!lim_check(&p[i], &e[i]->st, now, items[i].cost, &items[i].res))
			admit = 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (admit) {
			lim_charge(&p[i], &e[i]->st, now, items[i].cost);
			items[i].charged_at_us = now;
			items[i].remote = 0;
		} else if (items[i].res.admit) {
			/* Refused by another limit: this one stays as it was. */
			items[i].res.remaining += lim_is_concurrency(p[i].algo) ? 1 : items[i].cost;
		}
	}
	pthread_mutex_unlock(&mu);
	return admit;
}

void lim_local_adjust(const struct lim_item *it, int64_t now, int64_t delta, int64_t divisor)
{
	struct lim_params p = lim_divided(&it->def.p, divisor);
	struct entry *e;

	pthread_mutex_lock(&mu);
	if ((e = find(it, &p, now, delta > 0)))
		lim_adjust(&p, &e->st, now, delta, it->charged_at_us);
	pthread_mutex_unlock(&mu);
}

void lim_local_release(const struct lim_item *it, int ok, int64_t divisor)
{
	struct lim_params p = lim_divided(&it->def.p, divisor);
	struct entry *e;

	pthread_mutex_lock(&mu);
	if ((e = find(it, &p, 0, 0)))
		lim_release(&p, &e->st, ok);
	pthread_mutex_unlock(&mu);
}

void lim_local_undo(const struct lim_item *items, size_t n, int64_t now, int64_t divisor)
{
	for (size_t i = 0; i < n; i++) {
		if (lim_is_concurrency(items[i].def.p.algo)) {
			struct lim_params p = lim_divided(&items[i].def.p, divisor);
			struct entry *e;
			pthread_mutex_lock(&mu);
			if ((e = find(&items[i], &p, now, 0)) && e->st.inflight > 0)
				e->st.inflight--; /* no adaptive feedback: nothing ran */
			pthread_mutex_unlock(&mu);
		} else {
			lim_local_adjust(&items[i], now, -items[i].cost, divisor);
		}
	}
}

/* How long an idle counter still matters. */
static int64_t keep_us(const struct entry *e, int64_t now)
{
	const struct lim_params *p = &e->def.p;

	if (e->st.inflight > 0)
		return INT64_MAX;
	if (p->algo == LIM_PERIOD_DAY || p->algo == LIM_PERIOD_MONTH)
		return lim_period_next(p->algo, e->st.period_start_us) - e->touched_us;
	if (p->algo == LIM_ADAPTIVE || p->algo == LIM_WARMUP)
		return INT64_MAX; /* their history is the point */
	(void)now;
	/* A bucket refills within burst/amount windows; a log empties within one window. */
	return 2 * (p->window_us > 0 ? p->window_us : LIM_US_PER_S) *
	       (p->burst > p->amount && p->amount > 0 ? p->burst / p->amount + 1 : 1);
}

struct sweep_arg {
	int64_t now;
	struct entry *dead[1024];
	size_t ndead;
};

static void sweep_one(void *item, void *arg)
{
	struct entry *e = item;
	struct sweep_arg *a = arg;

	if (a->ndead < sizeof(a->dead) / sizeof(a->dead[0]) && a->now - e->touched_us > keep_us(e, a->now))
		a->dead[a->ndead++] = e;
}

size_t lim_local_sweep(int64_t now)
{
	struct sweep_arg *a = xcalloc(1, sizeof(*a));
	size_t n;

	a->now = now;
	pthread_mutex_lock(&mu);
	if (initialised) {
		hmap_each(&table, sweep_one, a);
		for (size_t i = 0; i < a->ndead; i++) {
			struct entry *e = a->dead[i];
			hmap_remove(&table, hmap_hash_bytes(e->key, strlen(e->key)), entry_eq, e->key);
			free_entry(e, NULL);
		}
	}
	pthread_mutex_unlock(&mu);
	n = a->ndead;
	free(a);
	return n;
}

void lim_local_stats(struct lim_local_stats *out)
{
	pthread_mutex_lock(&mu);
	out->states = initialised ? table.count : 0;
	pthread_mutex_unlock(&mu);
	out->overflow = atomic_load_explicit(&overflow_count, memory_order_relaxed);
}
