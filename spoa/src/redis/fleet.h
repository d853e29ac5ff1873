/*
 * redis/fleet: limits shared by every agent of a fleet, kept in Redis.
 *
 * Admission: one EVALSHA per request carries all of its limits; the Lua script reads
 * Redis' clock, checks every limit and charges them only when all admit (atomic: Redis
 * runs one script at a time). It runs on the calling worker's event loop (hiredis async
 * with the libevent adapter, one connection per worker); the worker does not wait.
 * Reconciliation (release a concurrency slot, correct a token or money charge) runs
 * from the control thread on a connection of its own.
 *
 * Fallback: when Redis is unreachable, answers with an error, or is slower than
 * redis_timeout_ms, the caller enforces locally with every amount divided by
 * fleet_size (limit/limiter.h) until Redis answers again: a reconnection is tried every
 * second, and the first good answer ends the fallback. Counted, logged, and shown on
 * /healthz ("limits": "fleet-fallback").
 */
#ifndef JR_REDIS_FLEET_H
#define JR_REDIS_FLEET_H

#include <stddef.h>
#include <stdint.h>

#include "limit/limiter.h"

struct event_base;
struct evbuffer;

/* Whether an algorithm runs in Redis (warm-up and adaptive stay per node). */
int fleet_algo_supported(enum lim_algo a);

/* admitted: 1 all admitted (and charged), 0 refused (nothing charged), -1 Redis failed or
 * was too slow (nothing known: the caller falls back). Each item's res is filled when
 * admitted >= 0. Runs on the worker loop that called fleet_admit. */
typedef lim_done_fn fleet_done_fn;

/* Starts an admission on base, the calling worker's loop (its Redis connection is made
 * there on first use and closed by fleet_worker_exit). Returns 0 when started (done will
 * be called exactly once, possibly before a late Redis answer, which then only undoes its
 * charges), -1 when Redis is not usable now or base is NULL (fall back at once). items
 * must stay valid until done ran. */
int fleet_admit(struct event_base *base, struct lim_item *items, size_t n, const char *request_id,
		fleet_done_fn done, void *arg);

/* Control thread: corrections of an admitted request's items (delta per item; a
 * concurrency item is released whatever its delta). */
void fleet_settle(const struct lim_item *items, const int64_t *delta, size_t n,
		  const char *request_id);

int fleet_configured(void);
int fleet_usable(void);

void fleet_configure(const char *addr, unsigned timeout_ms, unsigned lease_ms);
int fleet_start(struct event_base *control);
/* Closes the calling worker's Redis connection: a worker-exit hook (net/server.h). */
void fleet_worker_exit(void *arg);
void fleet_stop(void);
void fleet_render_metrics(struct evbuffer *out);

/* All of the above as the limits stage's remote store (limit/limiter.h). */
extern const struct lim_remote fleet_remote;

#endif /* JR_REDIS_FLEET_H */
