/*
 * trace: spans of sampled requests, exported over OTLP/HTTP (JSON encoding) to a
 * collector (docs/observability.md, "Tracing").
 *
 * HAProxy carries the W3C trace context (jairouter.cfg, "Tracing"): the trace id, the
 * gateway's span id, the client's span (the parent) and the sampled flag reach the agent
 * in the decision's `trace` argument and in the report lines (trace=, span=, pspan=,
 * sampled=). From them the agent makes:
 *   - the gateway's span (HAProxy's line: accept to end, kind SERVER), with children for
 *     the queue, the connection and the model server's call (kind CLIENT; from the
 *     rewrite detour's own line when the request took it);
 *   - the decision's span and one child per pipeline stage (trace_decision);
 *   - for a request the adapter served, from the adapter's line (trace=, span= the call's,
 *     pspan=, t0us=, xl_us=, fb_us=, tt_us=): the adapter's span, its translation and the
 *     provider call (kind CLIENT, the span id the provider received as its parent).
 *
 * Never on the request path: spans go into a bounded queue (trace_queue_max); a full
 * queue drops the span and counts it (jairouter_trace_spans_dropped_total). A dedicated
 * thread sends batches of up to trace_batch_max spans every trace_flush_ms (sooner when a
 * batch is full) with a blocking libcurl POST bounded by a 2 s timeout. Without
 * trace_otlp_url nothing is queued.
 */
#ifndef JR_TRACE_H
#define JR_TRACE_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct jr_report;

#define TRACE_ATTRS_MAX 12
#define TRACE_NAME_MAX 48

enum trace_kind { TRACE_INTERNAL = 1, TRACE_SERVER = 2, TRACE_CLIENT = 3 };

struct trace_attr {
	char key[40];
	int is_int;
	int64_t i;
	char s[96];
};

struct trace_span {
	char trace_id[33], span_id[17], parent_id[17]; /* lower-case hex; parent "" = root */
	char name[TRACE_NAME_MAX];
	enum trace_kind kind;
	int64_t start_ns, end_ns; /* Unix epoch, nanoseconds */
	int error;
	size_t nattrs;
	struct trace_attr attrs[TRACE_ATTRS_MAX];
};

/* A W3C trace context "00-<32 hex>-<16 hex>-<2 hex>": 0 with its parts, -1 when malformed
 * or all-zero ids. Pure. */
int trace_parse_context(const char *s, size_t len, char trace_id[33], char span_id[17], int *sampled);

/* Adds an attribute (ignored beyond TRACE_ATTRS_MAX or with an empty string value). */
void trace_attr_str(struct trace_span *sp, const char *key, const char *val, size_t len);
void trace_attr_int(struct trace_span *sp, const char *key, int64_t val);

/* A new random span id (16 hex digits). */
void trace_new_span_id(char out[17]);

/* The spans a report line describes (see above): fills out[0..cap), returns how many
 * (0 when the line is not sampled or has no trace). Pure but for the span ids drawn. */
size_t trace_spans_from_report(const struct jr_report *r, struct trace_span *out, size_t cap);

/* Renders spans as an OTLP ExportTraceServiceRequest (JSON). Returns a malloc'd string. */
char *trace_otlp_json(const struct trace_span *spans, size_t n, const char *service);

struct trace_opts {
	const char *url;        /* OTLP/HTTP traces endpoint, e.g. http://collector:4318/v1/traces */
	const char *service;    /* service.name */
	unsigned queue_max, batch_max, flush_ms;
};

/* The decision's span (child of the gateway's span named by ctx, the decision's `trace`
 * argument) and one child per stage that ran, ending at stage_end_ns[i]. Queued only
 * when ctx is valid and sampled. */
struct trace_decision_info {
	const char *ctx;
	size_t ctx_len;
	int64_t start_ns, end_ns;
	const char *const *stage_names;
	const int64_t *stage_end_ns;
	size_t nstages;
	const char *verdict, *reason, *model;
};
void trace_decision(const struct trace_decision_info *d);
/* The wall clock in nanoseconds (spans are in Unix time). */
int64_t trace_now_ns(void);

/* Starts the exporter thread (nothing when url is empty). 0, or -1. */
int trace_start(const struct trace_opts *o);
/* Sends what is queued (at most one batch) and stops the thread. */
void trace_stop(void);
int trace_enabled(void);
/* Queues a copy of sp; never blocks for I/O (a mutex held for a copy). */
void trace_submit(const struct trace_span *sp);
/* The report subscriber (report_subscribe): queues the line's spans. */
void trace_on_report(const struct jr_report *r, void *arg);
void trace_render_metrics(struct evbuffer *out, void *arg);

#endif /* JR_TRACE_H */
