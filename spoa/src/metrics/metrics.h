/*
 * metrics: Prometheus counters for the agent. Each worker thread owns a shard and bumps
 * it with relaxed atomics (no sharing of cache lines between workers on the hot path);
 * the scrape sums the shards. Labels are bounded: outcome and reason come from fixed
 * enums, never from request data.
 */
#ifndef JR_METRICS_H
#define JR_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "pipeline/pipeline.h"

struct evbuffer;

enum metrics_counter {
	MC_CONN_ACCEPTED,
	MC_CONN_REFUSED,      /* over max_connections */
	MC_CONN_CLOSED,
	MC_FRAMES_IN,
	MC_FRAMES_OUT,
	MC_HELLO,
	MC_HEALTHCHECK,
	MC_NOTIFY,
	MC_NOTIFY_ABORTED,
	MC_DISCONNECT_IN,
	MC_DISCONNECT_OUT,
	MC_PROTOCOL_ERRORS,
	MC_HELLO_TIMEOUTS,
	MC_IDLE_TIMEOUTS,
	MC_READ_PAUSES,       /* reading paused at max_inflight_per_conn */
	MC__COUNT
};

/* Decision latency buckets (upper bounds, seconds). */
#define METRICS_NBUCKETS 14

struct metrics_shard {
	_Atomic uint64_t counters[MC__COUNT];
	_Atomic uint64_t decisions[2][PL_R__COUNT]; /* [allow][reason] */
	_Atomic uint64_t buckets[METRICS_NBUCKETS + 1];
	_Atomic uint64_t latency_sum_ns;
	struct metrics_shard *next;
};

/* Process-wide figures the scrape reads from elsewhere (filled by the caller). */
struct metrics_gauges {
	int ready;
	int db_status;         /* enum pgsync_status */
	uint64_t db_full_loads, db_notifications, db_errors;
	int64_t db_last_load_unix;
	size_t tenants, keys, models;
	long connections;
	unsigned workers;
	int draining;
	const char *limits;    /* limits mode (pipeline/limits.h limits_mode), NULL: not shown */
};

/* Allocates a shard and links it into the registry (thread-safe; shards live until
 * metrics_free_all at exit). */
struct metrics_shard *metrics_shard_new(void);
void metrics_free_all(void);

static inline void metrics_inc(struct metrics_shard *s, enum metrics_counter c)
{
	atomic_fetch_add_explicit(&s->counters[c], 1, memory_order_relaxed);
}

void metrics_observe_decision(struct metrics_shard *s, int allow, enum pl_reason reason,
			      uint64_t elapsed_ns);

/* Modules with figures of their own (report listener, limits, routing...) add a renderer
 * at start-up; each appends complete "# HELP/# TYPE/series" blocks with the jairouter_
 * prefix. At most METRICS_MAX_RENDERERS; returns -1 beyond. Called on the control thread
 * during a scrape, after the built-in series. */
#define METRICS_MAX_RENDERERS 16
typedef void (*metrics_render_fn)(struct evbuffer *out, void *arg);
int metrics_add_renderer(metrics_render_fn fn, void *arg);

/* Appends the Prometheus text exposition to out. */
void metrics_render(struct evbuffer *out, const struct metrics_gauges *g);

#endif /* JR_METRICS_H */
