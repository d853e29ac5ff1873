/*
 * accesslog: the gateway's access log, one JSON object per request, written by the agent
 * (docs/observability.md, "Access log"). HAProxy's end-of-request line (report/report.h)
 * tells what HAProxy saw (status, timings, bytes, termination state, the agent's verdict);
 * the agent adds what only it knows when the request's usage is settled: tokens, cost, the
 * end user and the token issuer. So the line is written by the agent, once per HAProxy
 * line, when the usage is final (a stream whose usage the adapter meters waits for it, up
 * to usage_wait_ms). Operators' own HAProxy logs are untouched.
 *
 * Lines go to a file (appended; reopened on SIGHUP for rotation), to stdout ("-") or to
 * stderr ("stderr"), through a queue written by a thread of its own, so a slow disk or a
 * full pipe never blocks the agent's event loops. The queue is bounded (max_queue bytes):
 * at the limit new lines are dropped and counted (jairouter_access_log_dropped_total).
 * The writer holds at most one more queue's worth. A file path is opened non-blocking:
 * a FIFO without a reader is refused at start, and a pipe nobody reads is given up
 * (its lines counted lost, jairouter_access_log_lines_lost_total) when the agent stops
 * or the log is reopened, so neither hangs; a write error (disk full) loses the lines
 * of that write, counted the same way.
 */
#ifndef JR_ACCESSLOG_H
#define JR_ACCESSLOG_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct jbuf;
struct jr_report;

/* What the agent knows about a request beyond HAProxy's line. */
struct alog_usage {
	int known;                     /* usage was recorded for the request */
	int64_t prompt_tokens, completion_tokens;
	int64_t cost_micro;            /* micro-units of the catalogue's currency */
	int estimated;                 /* the usage was estimated, not reported upstream */
	const char *end_user;          /* NULL or "": none */
	const char *issuer;            /* a token's issuer; NULL or "": an API key */
};

/* Starts writing to target ("-" stdout, "stderr", else a file path). Returns 0, or -1
 * with a reason in err (the file cannot be opened). An empty target leaves it off. */
int alog_open(const char *target, size_t max_queue, char *err, size_t errlen);
int alog_enabled(void);
/* Queues the line of one request (u may be NULL: nothing known). Thread-safe. */
void alog_request(const struct jr_report *rep, const struct alog_usage *u);
/* The line alog_request writes, with its newline (pure: for tests). */
void alog_format(const struct jr_report *rep, const struct alog_usage *u, struct jbuf *out);
/* Reopens a file target (after log rotation), from the writer thread. */
void alog_reopen(void);
/* Writes what is queued, then stops. */
void alog_close(void);

struct alog_stats {
	uint64_t lines, dropped, write_errors, lost;
	size_t queued;
};
void alog_stats(struct alog_stats *out);
void alog_render_metrics(struct evbuffer *out, void *arg);

#endif /* JR_ACCESSLOG_H */
