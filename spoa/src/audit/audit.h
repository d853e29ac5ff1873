/*
 * audit: the security audit trail of the request path: authentication failures, RBAC
 * denials and address lock-outs.
 *
 * Each event is written at once as one JSON line on stderr ("msg":"security audit", with
 * the fields below) and queued for PostgreSQL (table jairouter.security_audit). The
 * writer is a util/dbwriter.h batch writer on the control thread's event loop with its own
 * connection (a slow insert never delays pgsync): every AUDIT_FLUSH_MS one INSERT ...
 * SELECT FROM json_to_recordset($1) writes up to AUDIT_BATCH queued rows (parameterised;
 * one round trip per batch).
 *
 * Bounds: the queue holds AUDIT_QUEUE_MAX events. When PostgreSQL is down or slow and the
 * queue is full, new events are still logged as JSON lines but not queued, and counted as
 * dropped (metric jairouter_audit_dropped_total). A stop flushes what is queued, for at
 * most one second.
 *
 * Never a secret: callers pass key prefixes, issuers, subjects and token ids, never keys or
 * tokens; strings are truncated to AUDIT_STR_MAX and JSON-escaped.
 */
#ifndef JR_AUDIT_H
#define JR_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#define AUDIT_QUEUE_MAX 8192
#define AUDIT_BATCH 500
#define AUDIT_FLUSH_MS 1000
#define AUDIT_STR_MAX 256
/* Sampling: within each AUDIT_SAMPLE_S window, the first AUDIT_SAMPLE_FULL events of a
 * kind (auth_failure, lockout, permission_denied) are logged and queued one by one; the
 * rest are only counted, and at the end of the window one event 'audit_summary' (a
 * line and a row) gives their count per reason and a few examples. A flood of any size thus writes at most
 * AUDIT_SAMPLE_FULL + 1 lines and rows per kind and window (docs/identity.md). */
#define AUDIT_SAMPLE_S 10
#define AUDIT_SAMPLE_FULL 20

struct audit_event {
	const char *event;      /* auth_failure, permission_denied, lockout */
	const char *reason;     /* why, e.g. token_expired, bad_signature, service:chat */
	int family;             /* client address: 0 unknown, 4, 6 */
	uint8_t addr[16];
	const char *key_prefix; /* or NULL */
	const char *issuer;     /* or NULL */
	const char *subject;    /* or NULL */
	const char *jti;        /* or NULL */
	const char *request_id; /* or NULL */
	int64_t tenant_id;      /* 0 unknown */
	int status;             /* the HTTP status answered */
};

/* Logs the event and queues it for the database, or counts it for the window's summary
 * (thread-safe). */
void audit_emit(const struct audit_event *e);
/* Writes the summaries of a window that has ended by now_unix (the writer's tick calls
 * it; exposed for tests). force: the current window too (stop). */
void audit_sample_flush(int64_t now_unix, int force);

struct event_base;
/* Starts the database writer on the control loop (conninfo: libpq string; node: this
 * agent's name in the rows). Without it events are only logged. */
int audit_start(struct event_base *base, const char *conninfo, const char *node);
/* Flushes (bounded) and stops the writer. */
void audit_stop(void);

struct audit_stats {
	uint64_t events, written, dropped, queued;
	uint64_t sampled_out; /* counted in a summary instead of logged one by one */
};
void audit_stats(struct audit_stats *out);

/* Takes up to max queued events as the JSON array the writer sends (tests). Returns the
 * number taken; *json is malloc'd. */
size_t audit_take_batch(char **json, size_t max);

#endif /* JR_AUDIT_H */
