/*
 * traffic: per-tenant and per-model series for Prometheus (requests by status class,
 * refusals by reason and by limit scope and dimension, fallbacks, tokens, cost, time to
 * first byte and duration histograms).
 *
 * Cardinality is bounded: the first max_tenants tenant names and max_models model names
 * seen get a series of their own; later ones fold into the label value "other". Requests
 * without an identified tenant carry tenant="none", without a catalogue model
 * model="none". Labels are tenant and model names from the catalogue only: never a key,
 * a token or an end-user identifier. The fold is per process lifetime (a catalogue
 * reload does not free a slot).
 *
 * Callers: the report channel (traffic_on_report, a report/ subscriber), the decision's
 * end (traffic_decided, net/), the limits stage's observer (traffic_refused,
 * traffic_settled). Thread-safe (one mutex: the figures are small and each call holds
 * it for a few hundred nanoseconds).
 */
#ifndef JR_METRICS_TRAFFIC_H
#define JR_METRICS_TRAFFIC_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct jr_report;
struct usage_seed_row;

#define TRAFFIC_MAX_REASONS 48 /* distinct refusal reason codes */
#define TRAFFIC_MAX_SCOPES 8
#define TRAFFIC_MAX_DIMS 8
#define TRAFFIC_NBUCKETS 14

/* Sets the caps (defaults 100 tenants, 50 models); call before any other function. A
 * cap of 0 folds every name into "other". */
void traffic_configure(unsigned max_tenants, unsigned max_models);
/* Frees everything (at exit, and between unit tests). */
void traffic_reset(void);

/* A denied decision: reason is the refusal code (enum pl_reason) and name its text (a
 * static string). Allowed decisions are counted from the report. */
void traffic_denied(const char *tenant, const char *model, int reason, const char *name);
/* A limits refusal: the limit that refused (enum lim_scope, enum lim_dim, their names). */
void traffic_refused(const char *tenant, const char *model, int scope, const char *scope_name,
		     int dim, const char *dim_name);
/* The end of an admitted request, settled by the limits stage: tokens, cost in micro
 * units of the catalogue's currency, and whether the answer was streamed. */
void traffic_settled(const char *tenant, const char *model, int64_t prompt_tokens,
		     int64_t completion_tokens, int64_t cost_micro, int stream, int estimated);

/* This month's usage recorded in PostgreSQL (usage/usage.h seed rows, tenant ids
 * resolved in the catalogue): the start of the period figures. */
void traffic_seed(const struct usage_seed_row *rows, size_t n);

/* The end-of-request line of HAProxy (report/report.h subscriber; arg unused): status
 * class, fallback, time to first byte (%Tr) and duration (%Ta). Adapter and rewrite-hop
 * lines are ignored. */
void traffic_on_report(const struct jr_report *r, void *arg);

/* The series in the Prometheus text format (metrics_add_renderer; arg unused). */
void traffic_render_metrics(struct evbuffer *out, void *arg);

#endif /* JR_METRICS_TRAFFIC_H */
