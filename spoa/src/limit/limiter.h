/*
 * limit/limiter: counters for the limits that apply to one request, kept in this
 * process (local.c) or in Redis for the whole fleet (redis/fleet.c).
 *
 * One `struct lim_item` is one limit applied to one request: its definition, the
 * identity of its counter (definition id, version, and the scope's value, e.g. the
 * tenant id or the client address) and the cost charged.
 *
 * Local counters live in one table guarded by one mutex (a decision holds it for the
 * few hundred nanoseconds that checking and charging its limits take, so that a
 * request is charged on all its limits or on none). The table holds at most
 * `max_states` counters; past that, new scope values of a definition share one
 * overflow counter (stricter, never looser; counted in jairouter_limit_overflow_total).
 * Idle counters are swept by lim_local_sweep().
 */
#ifndef JR_LIMIT_LIMITER_H
#define JR_LIMIT_LIMITER_H

#include <stddef.h>
#include <stdint.h>

#include "limit/defs.h"
#include "usage/usage.h"

#define LIM_KEY_MAX 256 /* "<id>:<version>:<scope value>" */

struct lim_item {
	struct lim_def def;
	char key[LIM_KEY_MAX];
	int64_t cost;
	int64_t charged_at_us;  /* when it was charged (refunds of sliding logs) */
	int remote;             /* charged in Redis (1) or here (0) */
	int slot;               /* Redis: its position in the admission call (member names) */
	int64_t sc_tenant, sc_key, sc_model; /* the request's ids (seeding period counters) */
	struct lim_result res;
};

/* Local evaluation of items[0..n): every item is checked; when all admit, all are
 * charged. `divisor` (>= 1) divides every amount (the fleet fallback). Fills each
 * item's res. Returns 1 when admitted. */
int lim_local_admit(struct lim_item *items, size_t n, int64_t now_us, int64_t divisor);
/* Reconciliation of one admitted item: delta > 0 charges more, < 0 refunds. A positive
 * delta creates a counter that does not exist (a batch's usage charged before any request
 * of its scope: pipeline/limits.h, limits_charge_batch). */
void lim_local_adjust(const struct lim_item *it, int64_t now_us, int64_t delta, int64_t divisor);
/* A concurrency item's request ended (ok: feedback for adaptive limits). */
void lim_local_release(const struct lim_item *it, int ok, int64_t divisor);
/* Takes back the charges of an admitted request that a later check refused. */
void lim_local_undo(const struct lim_item *items, size_t n, int64_t now_us, int64_t divisor);

/* Removes counters idle for longer than they can matter. Returns how many. */
size_t lim_local_sweep(int64_t now_us);

void lim_local_init(size_t max_states);
void lim_local_destroy(void);

struct lim_local_stats {
	uint64_t states, overflow;
};
void lim_local_stats(struct lim_local_stats *out);

/* Usage already recorded in PostgreSQL this month (usage/usage.h reads it once at start):
 * local quota and budget counters of the tenant, key, model and tenant x model scopes
 * start from it, so that a restart does not reset them. Other scopes start at zero. */
void lim_local_seed(const struct usage_seed_row *rows, size_t n);
/* A seed is on its way: until lim_local_seed() runs (with rows, or with none when it gave
 * up), lim_local_seed_pending() is true and the limits stage answers requests that face a
 * local quota or budget with 503 gateway_not_ready rather than count them from zero. */
void lim_local_seed_expect(void);
int lim_local_seed_pending(void);

/* The fleet-wide store of counters (Redis: redis/fleet.h implements it as fleet_remote).
 * main hands it to the limits stage (limits_set_remote); without one every counter is
 * local. `admit` runs on the worker loop `base` and calls done exactly once: 1 all
 * admitted and charged, 0 refused, -1 unknown (fall back); it returns -1 when it cannot
 * start (fall back at once). `settle` corrects admitted items (control thread). */
typedef void (*lim_done_fn)(void *arg, int admitted);
struct event_base;
struct evbuffer;
struct lim_remote {
	void (*configure)(const char *addr, unsigned timeout_ms, unsigned lease_ms);
	int (*start)(struct event_base *control);
	void (*stop)(void);
	int (*configured)(void);
	int (*usable)(void);
	int (*algo_supported)(enum lim_algo a);
	int (*admit)(struct event_base *base, struct lim_item *items, size_t n, const char *request_id,
		     lim_done_fn done, void *arg);
	void (*settle)(const struct lim_item *items, const int64_t *delta, size_t n,
		       const char *request_id);
	void (*worker_exit)(void *arg);
	void (*render_metrics)(struct evbuffer *out);
};

/* The params of a definition as enforced with `divisor` (fleet fallback). */
struct lim_params lim_divided(const struct lim_params *p, int64_t divisor);

#endif /* JR_LIMIT_LIMITER_H */
