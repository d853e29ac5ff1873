/*
 * admetrics: jairouter-adapter's counters (one thread: plain integers) and their
 * Prometheus text for GET /metrics. docs/adapter.md lists the series.
 */
#ifndef JR_AD_ADMETRICS_H
#define JR_AD_ADMETRICS_H

#include "mask.h"
#include "provider.h"

#include <stdint.h>

struct evbuffer;
struct ac_stats;

/* The API a client speaks. */
/* CLIENT_RESPONSES: a Responses API request translated to chat (xlate_responses.c). */
enum ad_client { CLIENT_OPENAI, CLIENT_ANTHROPIC, CLIENT_RESPONSES, CLIENT__COUNT };

struct ad_metrics {
	uint64_t requests[XL__COUNT][CLIENT__COUNT];
	uint64_t status[6]; /* by class: 1xx..5xx, [0] other */
	uint64_t upstream_errors[XL__COUNT];
	uint64_t stream_errors, client_aborts, upstream_paused;
	uint64_t masked[MD__COUNT], mask_rejects;
	uint64_t tokens_prompt, tokens_completion, usage_estimated;
	uint64_t reports_sent, reports_failed, refused_busy;
	uint64_t token_fetch_ok, token_fetch_failed, token_waits; /* access tokens (tokens.h) */
	uint64_t cache_bypass;     /* cached tenant and model, but the request may not be */
	/* Realtime sessions (realtime.h). */
	uint64_t rt_opened, rt_closed, rt_refused, rt_upstream_refused, rt_expired;
	uint64_t rt_too_big, rt_protocol_errors, rt_responses, rt_tokens_prompt, rt_tokens_completion;
	long inflight, rt_active;
};

/* Counts an answer's status by class. */
void adm_status(struct ad_metrics *m, int status);

/* Appends the exposition text to b. */
void adm_render(const struct ad_metrics *m, struct evbuffer *b);
/* The response cache's series (docs/cache.md). */
void adm_render_cache(const struct ac_stats *st, uint64_t bypass, struct evbuffer *b);

#endif
