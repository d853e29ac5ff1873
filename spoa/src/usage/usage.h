/*
 * usage: what admitted requests used, aggregated in memory per (UTC day, tenant, key,
 * model) and written to PostgreSQL (jairouter.usage_daily, sql/006) in batches.
 *
 * Writer: its own libpq connection, asynchronous on the control loop. Every
 * usage_flush_ms the aggregates are swapped out as one batch and sent as one statement
 * (arrays unnested server-side) that also records (agent id, batch number) in
 * jairouter.usage_batches: a batch re-sent after a lost acknowledgement is applied
 * once. While PostgreSQL is down batches stay in memory (merged) up to usage_max_rows
 * rows; usage for new rows beyond that is dropped and counted. A graceful stop writes
 * what is left synchronously; a crash loses what was aggregated since the last
 * acknowledged flush (at most one flush interval while PostgreSQL is up).
 */
#ifndef JR_USAGE_H
#define JR_USAGE_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evbuffer;

struct usage_rec {
	int64_t day;        /* Unix seconds of the UTC day's start */
	int64_t tenant_id, key_id, model_id;
	int64_t prompt_tokens, completion_tokens;
	int64_t cost_micro; /* micro-units of the catalogue's currency */
	int estimated;      /* the usage was estimated, not reported by the upstream */
};

/* Thread-safe. */
void usage_add(const struct usage_rec *r);

/* Before usage_start: the first thing the writer does once connected (before its first
 * batch, so this process' own usage is not in it) is to read this month's usage rows and
 * hand them to fn (limit/limiter.h, lim_local_seed), once. Three failed attempts give up
 * (logged); batches wait meanwhile. */
struct usage_seed_row {
	int64_t day; /* Unix seconds of the UTC day */
	int64_t tenant_id, key_id, model_id, tokens, cost_micro;
};
void usage_set_seed(void (*fn)(const struct usage_seed_row *rows, size_t n));

/* conninfo empty: aggregation only (nothing is written; counted as dropped at stop). */
int usage_start(struct event_base *base, const char *conninfo, unsigned flush_ms, size_t max_rows);
/* Graceful stop: one synchronous write of everything pending (bounded by a few
 * seconds), then closes. */
void usage_stop(void);

struct usage_stats {
	uint64_t requests, estimated, batches, batch_errors, rows_written, rows_dropped;
	size_t rows_pending;
	int64_t last_flush_unix;
	int db_up;
};
void usage_stats(struct usage_stats *out);
void usage_render_metrics(struct evbuffer *out, void *arg);

#endif /* JR_USAGE_H */
