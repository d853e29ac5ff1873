/* admetrics: see admetrics.h. */
#include "admetrics.h"

#include "adcache.h"

#include <event2/buffer.h>
#include <stddef.h>
#include <string.h>

static const char *const client_names[CLIENT__COUNT] = { "openai", "anthropic", "responses" };

void adm_status(struct ad_metrics *m, int st)
{
	m->status[st >= 100 && st < 600 ? st / 100 : 0]++;
}

static void render_requests(const struct ad_metrics *m, struct evbuffer *b)
{
	evbuffer_add_printf(b, "# HELP jairouter_adapter_requests_total Requests by provider family and client API.\n"
			       "# TYPE jairouter_adapter_requests_total counter\n");
	for (int p = 0; p < XL__COUNT; p++)
		for (int c = 0; c < CLIENT__COUNT; c++)
			evbuffer_add_printf(b, "jairouter_adapter_requests_total{provider=\"%s\",client=\"%s\"} %llu\n",
					    xl_provider_name((enum xl_provider)p), client_names[c],
					    (unsigned long long)m->requests[p][c]);
	evbuffer_add_printf(b, "# HELP jairouter_adapter_responses_total Answers by status class.\n"
			       "# TYPE jairouter_adapter_responses_total counter\n");
	for (int s = 1; s < 6; s++)
		evbuffer_add_printf(b, "jairouter_adapter_responses_total{code=\"%dxx\"} %llu\n", s,
				    (unsigned long long)m->status[s]);
}

static void render_labelled(const struct ad_metrics *m, struct evbuffer *b)
{
	evbuffer_add_printf(b, "# HELP jairouter_adapter_upstream_errors_total Provider errors and failed transfers.\n"
			       "# TYPE jairouter_adapter_upstream_errors_total counter\n");
	for (int p = 0; p < XL__COUNT; p++)
		evbuffer_add_printf(b, "jairouter_adapter_upstream_errors_total{provider=\"%s\"} %llu\n",
				    xl_provider_name((enum xl_provider)p), (unsigned long long)m->upstream_errors[p]);
	evbuffer_add_printf(b, "# HELP jairouter_adapter_masked_items_total Items masked, by detector (never the values).\n"
			       "# TYPE jairouter_adapter_masked_items_total counter\n");
	for (int d = 0; d < MD__COUNT; d++)
		evbuffer_add_printf(b, "jairouter_adapter_masked_items_total{detector=\"%s\"} %llu\n",
				    mask_detector_name((enum mask_detector)d), (unsigned long long)m->masked[d]);
}

/* The single-value series, in their order on the page: a TYPE line when the name is new. */
static const struct scalar {
	const char *name, *type, *labels;
	size_t off;
} scalars[] = {
#define S(n, t, l, f) { n, t, l, offsetof(struct ad_metrics, f) }
	S("jairouter_adapter_masking_rejections_total", "counter", "", mask_rejects),
	S("jairouter_adapter_stream_errors_total", "counter", "", stream_errors),
	S("jairouter_adapter_client_aborts_total", "counter", "", client_aborts),
	S("jairouter_adapter_upstream_pauses_total", "counter", "", upstream_paused),
	S("jairouter_adapter_tokens_total", "counter", "{kind=\"prompt\"}", tokens_prompt),
	S("jairouter_adapter_tokens_total", "counter", "{kind=\"completion\"}", tokens_completion),
	S("jairouter_adapter_usage_estimated_total", "counter", "", usage_estimated),
	S("jairouter_adapter_reports_total", "counter", "{result=\"sent\"}", reports_sent),
	S("jairouter_adapter_reports_total", "counter", "{result=\"failed\"}", reports_failed),
	S("jairouter_adapter_refused_busy_total", "counter", "", refused_busy),
	S("jairouter_adapter_token_fetches_total", "counter", "{result=\"ok\"}", token_fetch_ok),
	S("jairouter_adapter_token_fetches_total", "counter", "{result=\"failed\"}", token_fetch_failed),
	S("jairouter_adapter_token_waits_total", "counter", "", token_waits),
	S("jairouter_adapter_realtime_sessions_total", "counter", "{result=\"opened\"}", rt_opened),
	S("jairouter_adapter_realtime_sessions_total", "counter", "{result=\"refused\"}", rt_refused),
	S("jairouter_adapter_realtime_sessions_total", "counter", "{result=\"upstream_refused\"}", rt_upstream_refused),
	S("jairouter_adapter_realtime_closed_total", "counter", "", rt_closed),
	S("jairouter_adapter_realtime_expired_total", "counter", "", rt_expired),
	S("jairouter_adapter_realtime_frames_refused_total", "counter", "{code=\"1009\"}", rt_too_big),
	S("jairouter_adapter_realtime_frames_refused_total", "counter", "{code=\"1002\"}", rt_protocol_errors),
	S("jairouter_adapter_realtime_responses_total", "counter", "", rt_responses),
	S("jairouter_adapter_realtime_tokens_total", "counter", "{kind=\"prompt\"}", rt_tokens_prompt),
	S("jairouter_adapter_realtime_tokens_total", "counter", "{kind=\"completion\"}", rt_tokens_completion),
#undef S
};

void adm_render(const struct ad_metrics *m, struct evbuffer *b)
{
	const char *last = "";

	render_requests(m, b);
	render_labelled(m, b);
	for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++) {
		const struct scalar *s = &scalars[i];
		if (strcmp(last, s->name) != 0)
			evbuffer_add_printf(b, "# TYPE %s %s\n", s->name, s->type);
		last = s->name;
		evbuffer_add_printf(b, "%s%s %llu\n", s->name, s->labels,
				    (unsigned long long)*(const uint64_t *)((const char *)m + s->off));
	}
	evbuffer_add_printf(b, "# TYPE jairouter_adapter_inflight gauge\njairouter_adapter_inflight %ld\n",
			    m->inflight);
	evbuffer_add_printf(b, "# TYPE jairouter_adapter_realtime_active gauge\njairouter_adapter_realtime_active %ld\n",
			    m->rt_active);
}

void adm_render_cache(const struct ac_stats *st, uint64_t bypass, struct evbuffer *b)
{
	evbuffer_add_printf(b,
			    "# HELP jairouter_adapter_cache_requests_total Cacheable requests by outcome (bypass: the "
			    "request asked not to be stored or cannot be cached).\n"
			    "# TYPE jairouter_adapter_cache_requests_total counter\n"
			    "jairouter_adapter_cache_requests_total{result=\"hit\"} %llu\n"
			    "jairouter_adapter_cache_requests_total{result=\"miss\"} %llu\n"
			    "jairouter_adapter_cache_requests_total{result=\"bypass\"} %llu\n"
			    "# TYPE jairouter_adapter_cache_stores_total counter\n"
			    "jairouter_adapter_cache_stores_total %llu\n"
			    "# HELP jairouter_adapter_cache_dropped_total Entries dropped: evicted (least recently "
			    "used, for room), expired, or too large to store.\n"
			    "# TYPE jairouter_adapter_cache_dropped_total counter\n"
			    "jairouter_adapter_cache_dropped_total{reason=\"evicted\"} %llu\n"
			    "jairouter_adapter_cache_dropped_total{reason=\"expired\"} %llu\n"
			    "jairouter_adapter_cache_dropped_total{reason=\"too_large\"} %llu\n"
			    "# TYPE jairouter_adapter_cache_entries gauge\n"
			    "jairouter_adapter_cache_entries %llu\n"
			    "# TYPE jairouter_adapter_cache_bytes gauge\n"
			    "jairouter_adapter_cache_bytes %llu\n",
			    (unsigned long long)st->hits, (unsigned long long)st->misses, (unsigned long long)bypass,
			    (unsigned long long)st->stores, (unsigned long long)st->evictions,
			    (unsigned long long)st->expired, (unsigned long long)st->too_large,
			    (unsigned long long)st->entries, (unsigned long long)st->bytes);
}
