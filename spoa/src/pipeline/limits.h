/*
 * pipeline/limits: the `limits` decision stage and what settles a request when it ends.
 * The mechanism it applies lives in limit/ (definitions, algorithms, local counters, the
 * interface of the fleet's store); this is the pipeline's use of it, per request.
 *
 *   route -> limits: every limit that applies (limit/defs.h) is checked; the request is
 *            admitted only if all admit, and only then charged (requests: 1; tokens and
 *            quotas: an estimate of prompt + completion tokens; budgets: that estimate at
 *            the model's prices; concurrency: one slot). With Redis (redis/fleet.h) the
 *            check and charge run in one Lua script for the whole fleet; the stage is
 *            then asynchronous (PL_PENDING, resumed on the worker's loop).
 *            Refused: 429 rate_limit_exceeded, or insufficient_quota for a quota or a
 *            budget, with retry-after. Either way the x-ratelimit-* values go out.
 *
 *   report line (control thread) -> the reservation of that request id: concurrency
 *            slots released, token and money charges corrected to the real usage (from
 *            HAProxy's pt/ct, or the adapter's line for streams; otherwise the estimate,
 *            flagged est), usage added to the aggregates (usage/usage.h).
 *
 * Reservations live in a bounded table keyed by request id (limits_max_inflight). When
 * it is full the oldest reservation is settled as estimated (counted as evicted); a
 * reservation whose report never arrives is settled the same way after
 * limits_lease_ms, so a lost datagram never holds a slot forever.
 */
#ifndef JR_PIPELINE_LIMITS_H
#define JR_PIPELINE_LIMITS_H

#include "pipeline/pipeline.h"

struct event_base;
struct evbuffer;
struct jr_config;

enum pl_result pl_stage_limits(struct pl_ctx *ctx);

/* The fleet's store of counters (redis/fleet.h fleet_remote), before limits_start; without
 * one (NULL, the default) every limit is per node. */
struct lim_remote;
void limits_set_remote(const struct lim_remote *r);
/* Applies the settings (start-up and SIGHUP). */
void limits_configure(const struct jr_config *cfg);
/* Subscribes to the report channel and starts the timers on the control loop. */
int limits_start(struct event_base *control, const struct jr_config *cfg);
/* Settles every reservation as estimated (graceful stop, before the usage flush). */
void limits_stop(void);
/* Frees what the limits keep per worker (its Redis connection): a worker-exit hook
 * (net/server.h); arg unused. */
void limits_worker_exit(void *arg);

/* "local" (no Redis configured), "fleet" or "fleet-fallback" (Redis unusable). */
const char *limits_mode(void);
void limits_render_metrics(struct evbuffer *out, void *arg);

/* Token estimates for a request (exposed for tests). */
void limits_estimate(const struct pl_ctx *ctx, int64_t *prompt, int64_t *completion);

#endif /* JR_PIPELINE_LIMITS_H */
