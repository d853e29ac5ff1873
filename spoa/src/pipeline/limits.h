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
struct usage_seed_row;
void limits_set_remote(const struct lim_remote *r);

/* A completed batch billed for the first time by this agent (objects/batches.h, through
 * main.c): its tokens and cost (micro-units) are charged to the quota and budget limits
 * that apply to its tenant, key and model, as the settlement of a request charges them
 * (local counters, or Redis' for the fleet). Rate limits are not charged: a batch runs
 * in the provider's batch queue, outside the request rate. Control thread. */
void limits_charge_batch(int64_t tenant_id, int64_t key_id, int64_t model_id, int64_t tokens,
			 int64_t cost_micro);
/* Who hears about refusals and settled usage per tenant and model (metrics/traffic.h),
 * before limits_start; NULL fields are not called. Names are the catalogue's. */
struct limits_observer {
	void (*refused)(const char *tenant, const char *model, int scope, const char *scope_name,
			int dim, const char *dim_name);
	void (*settled)(const char *tenant, const char *model, int64_t prompt_tokens,
			int64_t completion_tokens, int64_t cost_micro, int stream, int estimated);
	/* This month's usage read from PostgreSQL at start (local limits only). */
	void (*seeded)(const struct usage_seed_row *rows, size_t n);
};
void limits_set_observer(const struct limits_observer *o);
/* The end of a request for the access log (accesslog/accesslog.h): called on the control
 * thread once per HAProxy end-of-request line, when the request's usage is final (a
 * stream waiting for the adapter's usage: when it comes, or at usage_wait_ms). billed: the
 * request's usage was recorded (admitted requests); refused ones come with billed = 0. */
struct jr_report;
struct limits_ended {
	int billed;
	int64_t prompt_tokens, completion_tokens, cost_micro;
	int estimated;
	const char *end_user, *issuer; /* "" when none */
};
typedef void (*limits_ended_fn)(const struct jr_report *rep, const struct limits_ended *e);
/* Before limits_start; NULL: none. */
void limits_set_ended(limits_ended_fn fn);
/* Applies the settings (start-up and SIGHUP). */
void limits_configure(const struct jr_config *cfg);
/* Subscribes to the report channel and starts the timers on the control loop. */
int limits_start(struct event_base *control, const struct jr_config *cfg);
/* Stops. Reservations pushed out of the table are settled as estimated; the others are
 * settled as estimated too, unless handed_over: then the requests are still in flight
 * and their report lines, read by the next process of this agent, bill them
 * (limits_acct), so billing them here would count them twice. Before the usage flush. */
void limits_stop(int handed_over);
/* Whether every limit can be decided: false while this month's usage, which local quota
 * and budget counters start from, is still being read (a second or less after start). */
int limits_ready(void);
/* Reservations held (requests admitted here whose report line has not come). */
size_t limits_reservations(void);

/* The accounting an admitted request's ACK carries (var `acct`, the report line's acct=):
 * "<process>.<tenant id>.<key id>.<model id>.<prompt estimate>.<completion estimate>",
 * process being this process' random tag (limits_process_tag). A report line of this
 * agent whose reservation no process here holds (decided by the process before a
 * restart) is billed from it. Returns the length, or 0 when the verdict admits nothing. */
#define LIMITS_ACCT_MAX 112
int limits_acct(const struct pl_ctx *ctx, char *buf, size_t cap);
/* 8 hexadecimal characters drawn at start-up (the first field of acct). */
const char *limits_process_tag(void);
/* Frees what the limits keep per worker (its Redis connection): a worker-exit hook
 * (net/server.h); arg unused. */
void limits_worker_exit(void *arg);

/* "local" (no Redis configured), "fleet" or "fleet-fallback" (Redis unusable). */
const char *limits_mode(void);
void limits_render_metrics(struct evbuffer *out, void *arg);

/* Token estimates for a request (exposed for tests). */
void limits_estimate(const struct pl_ctx *ctx, int64_t *prompt, int64_t *completion);

#endif /* JR_PIPELINE_LIMITS_H */
