/*
 * usage: what admitted requests used, aggregated in memory per (UTC hour, tenant, key,
 * model, end user) and written to PostgreSQL in batches: jairouter.usage_daily (sql/006)
 * per day without the end user, jairouter.usage_hourly (sql/010) per hour with it, both by
 * one call of jairouter.usage_record. That function also folds a tenant's end users beyond
 * its daily cap into the reserved user "(other)" (docs/reports.md).
 *
 * Writer: a util/dbwriter.h batch writer (its own connection), asynchronous on the control
 * loop. Every
 * usage_flush_ms the aggregates are swapped out as one batch and sent as one statement
 * (arrays unnested server-side) that also records (agent id, batch number) in
 * jairouter.usage_batches: a batch re-sent after a lost acknowledgement is applied
 * once. While PostgreSQL is down batches stay in memory (merged) up to usage_max_rows
 * rows, of which rows naming an end user take at most three quarters: beyond that, a new
 * end user's usage is folded into the "(other)" row of its (hour, tenant, key, model), and
 * only usage that fits in no row is dropped (and counted). A graceful stop writes
 * what is left synchronously; a crash loses what was aggregated since the last
 * acknowledged flush (at most one flush interval while PostgreSQL is up).
 */
#ifndef JR_USAGE_H
#define JR_USAGE_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evbuffer;

#define USAGE_USER_MAX 128 /* bytes of an end-user id kept (longer ones are cut) */
#define USAGE_USER_OTHER "(other)"

struct usage_rec {
	int64_t day;        /* Unix seconds of the UTC day's start */
	int64_t tenant_id, key_id, model_id;
	int64_t prompt_tokens, completion_tokens;
	int64_t cost_micro; /* micro-units of the catalogue's currency */
	int estimated;      /* the usage was estimated, not reported by the upstream */
	int failed;         /* ended with a status >= 500 or without a response (not a client abort) */
	int64_t hour;       /* Unix seconds of the UTC hour's start; 0: the day's start */
	const char *user;   /* the end user (user_len bytes, copied); NULL or empty: none */
	size_t user_len;
};

/* Copies the end-user id src (len bytes) into dst as stored: at most USAGE_USER_MAX bytes,
 * cut at a character boundary, control characters and invalid UTF-8 replaced by '?'.
 * dst holds USAGE_USER_MAX + 1 bytes; returns the length. */
size_t usage_user_clean(char *dst, const char *src, size_t len);

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
	uint64_t users_folded; /* end users folded into "(other)" because the buffer was full */
	size_t rows_pending;
	int64_t last_flush_unix;
	int db_up;
};
void usage_stats(struct usage_stats *out);
void usage_render_metrics(struct evbuffer *out, void *arg);

#endif /* JR_USAGE_H */
