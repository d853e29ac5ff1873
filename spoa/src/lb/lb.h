/*
 * lb: where each allowed request goes. The agent learns HAProxy's backends and servers
 * from its runtime API (lb/stats.c, polled a few times a second), learns how each server
 * answers from the end-of-request reports (report/report.h), and picks a server per
 * request with the model's strategy (lb/strategy.h), skipping servers that are down,
 * drained, in maintenance, behind an open breaker or saturated; when none is left it
 * walks the model's fallback chain (lb/conf.h). HAProxy executes the choice
 * (`use-server %[var(txn.jr.server)]`) and keeps its own balancing when no server is named.
 *
 *   control thread: stats poll -> table swap (write lock); reports -> breakers, EWMAs
 *   workers:        lb_route() under the read lock, a few hundred nanoseconds
 *
 * docs/routing.md is the operator's guide.
 */
#ifndef JR_LB_H
#define JR_LB_H

#include <stddef.h>
#include <stdint.h>

#include "lb/table.h"
#include "state/state.h"

struct event_base;
struct evbuffer;
struct jr_report;

struct lb_opts {
	const char *stats_socket; /* "/path", "unix@/path" or "host:port"; "" = no polling */
	unsigned poll_ms;         /* interval between `show stat` polls */
};

/* Starts polling on base (the control thread) and subscribes to the reports. Returns 0,
 * or -1 with a reason in err (an address that cannot be parsed). */
int lb_start(struct event_base *base, const struct lb_opts *o, char *err, size_t errlen);
int lb_reconfigure(const struct lb_opts *o, char *err, size_t errlen);
void lb_stop(void);
/* The routing series of /metrics (a metrics/ renderer; the caller registers it). */
void lb_render_metrics(struct evbuffer *out, void *arg);

/* What the router needs to know of one request; the caller fills it (the route stage of
 * pipeline/, the tests). Strings are borrowed for the call. */
struct lb_request {
	const char *model;       /* the resolved model, as the catalogue names it */
	const char *backend;     /* its backend */
	int service;             /* enum pl_service (per-service routing rows, lb/conf.h) */
	int service_bit;         /* policy_service_bit() of the service's name; -1: none */
	int stream;              /* the client asked for a stream */
	int64_t tenant_id;       /* the caller, for the models it may use (state/policy.h) */
	int64_t key_id;
	int src_family;          /* 0 unknown, 4, 6: the client address (hash on client_ip) */
	const uint8_t *src;
	const char *affinity;    /* the affinity header (hash on header); NULL: none */
	size_t affinity_len;
	const char *body;        /* the request body (virtual models: what it needs); NULL */
	size_t body_len;
	int64_t max_tokens;      /* the body's max_tokens; 0: not given */
};

/* The decision for one request (worker thread). */
enum lb_route_kind {
	LB_ROUTE_PRIMARY = 0, /* the model's own backend (server named, or HAProxy's choice) */
	LB_ROUTE_FALLBACK,    /* a model of the fallback chain: switch to it */
	LB_ROUTE_NONE,        /* nothing can serve: 503 */
	LB_ROUTE_VIRTUAL,     /* a virtual model: switch to the member chosen */
	LB_ROUTE_UNFIT,       /* a virtual model none of whose members covers the request: 400 */
};

struct lb_route {
	enum lb_route_kind kind;
	char server[LB_NAME_MAX];     /* "" when HAProxy chooses */
	enum lb_strategy strategy;
	enum lb_why why;              /* the primary's problem (fallback, none) */
	int retry_after_s;            /* none */
	/* fallback or virtual: the model switched to, as the catalogue has it */
	char model[ST_MODEL_MAX];
	char backend[ST_NAME_MAX];
	char upstream[ST_MODEL_MAX];
	uint32_t services, caps;
	/* unfit: what the request needed (ST_CAP_* bits, and tokens of context) */
	uint32_t need_caps;
	int64_t need_tokens;
};

/* When out->server is named, the request holds an in-flight slot on that server (counted
 * by least_conn, the concurrency bound and the metrics) until its end-of-request report
 * arrives; a caller that will not send the request there gives the slot back with
 * lb_release(), exactly once. */
void lb_route(const struct lb_request *req, struct lb_route *out);

/* Gives back the in-flight slot of a request that will never reach that server (worker
 * thread). In the agent one owner calls it: the pipeline, when the decision ends. */
void lb_release(const char *backend, const char *server);

/* Swaps in a table (control thread; takes ownership). Exposed for the tests, which feed
 * CSV without an HAProxy. */
void lb_publish(struct lb_table *fresh, int64_t now_ms);
/* The live table for the control thread (tests, reports); NULL before the first poll. */
struct lb_table *lb_live(void);
/* The report subscriber: feeds one end-of-request line to its server's breaker and
 * EWMAs (control thread; exposed for the tests). */
void lb_on_report(const struct jr_report *r, void *arg);

/* Monotonic milliseconds; tests replace the clock. */
typedef int64_t (*lb_clock_fn)(void);
void lb_set_clock(lb_clock_fn fn);
int64_t lb_now_ms(void);

#endif /* JR_LB_H */
