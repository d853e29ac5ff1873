#include "trace/trace.h"

#include "report/report.h"
#include "state/state.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <curl/curl.h>
#include <event2/buffer.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define EXPORT_TIMEOUT_MS 2000
#define MS_SLACK_NS (2 * 1000000LL)

/* ---- pure helpers ------------------------------------------------------------------ */

static int all_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static int all_zero(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != '0')
			return 0;
	return 1;
}

int trace_parse_context(const char *s, size_t len, char trace_id[33], char span_id[17], int *sampled)
{
	int flags;

	if (len != 55 || memcmp(s, "00-", 3) != 0 || s[35] != '-' || s[52] != '-' ||
	    !all_hex(s + 3, 32) || !all_hex(s + 36, 16) || !all_hex(s + 53, 2) ||
	    all_zero(s + 3, 32) || all_zero(s + 36, 16))
		return -1;
	memcpy(trace_id, s + 3, 32);
	trace_id[32] = '\0';
	memcpy(span_id, s + 36, 16);
	span_id[16] = '\0';
	flags = (s[54] >= 'a' ? s[54] - 'a' + 10 : s[54] - '0');
	*sampled = flags & 1;
	return 0;
}

void trace_attr_str(struct trace_span *sp, const char *key, const char *val, size_t len)
{
	struct trace_attr *a;

	if (sp->nattrs >= TRACE_ATTRS_MAX || !val || !len)
		return;
	a = &sp->attrs[sp->nattrs++];
	snprintf(a->key, sizeof(a->key), "%s", key);
	a->is_int = 0;
	snprintf(a->s, sizeof(a->s), "%.*s", (int)(len < sizeof(a->s) ? len : sizeof(a->s) - 1), val);
}

void trace_attr_int(struct trace_span *sp, const char *key, int64_t val)
{
	struct trace_attr *a;

	if (sp->nattrs >= TRACE_ATTRS_MAX)
		return;
	a = &sp->attrs[sp->nattrs++];
	snprintf(a->key, sizeof(a->key), "%s", key);
	a->is_int = 1;
	a->i = val;
}

void trace_new_span_id(char out[17])
{
	uint8_t b[8];

	do {
		if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
			for (size_t i = 0; i < sizeof(b); i++)
				b[i] = (uint8_t)rand();
	} while (!(b[0] | b[1] | b[2] | b[3] | b[4] | b[5] | b[6] | b[7]));
	for (size_t i = 0; i < sizeof(b); i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

int64_t trace_now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* ---- spans from a report line ------------------------------------------------------ */

static int copy_hex(const struct jr_report *r, const char *key, char *out, size_t n)
{
	size_t len = 0;
	const char *v = report_get(r, key, &len);

	if (!v || len != n || !all_hex(v, n) || all_zero(v, n))
		return -1;
	memcpy(out, v, n);
	out[n] = '\0';
	return 0;
}

static void field_attr(struct trace_span *sp, const struct jr_report *r, const char *key,
		       const char *attr)
{
	size_t len = 0;
	const char *v = report_get(r, key, &len);

	trace_attr_str(sp, attr, v, len);
}

static int64_t clamp(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static void child(struct trace_span *c, const struct trace_span *parent, const char *name,
		  enum trace_kind kind, int64_t start_ns, int64_t end_ns)
{
	memset(c, 0, sizeof(*c));
	memcpy(c->trace_id, parent->trace_id, sizeof(c->trace_id));
	memcpy(c->parent_id, parent->span_id, sizeof(c->parent_id));
	trace_new_span_id(c->span_id);
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->kind = kind;
	c->start_ns = clamp(start_ns, parent->start_ns, parent->end_ns);
	c->end_ns = clamp(end_ns, c->start_ns, parent->end_ns);
}

static void usage_attrs(struct trace_span *sp, const struct jr_report *r)
{
	int64_t pt = report_get_int(r, "pt", -1), ct = report_get_int(r, "ct", -1);

	if (pt >= 0)
		trace_attr_int(sp, "gen_ai.usage.input_tokens", pt);
	if (ct >= 0)
		trace_attr_int(sp, "gen_ai.usage.output_tokens", ct);
}

/* The span the line itself describes: HAProxy's accept (plus handshake and idle time)
 * to the end of the transaction. */
static int line_span(const struct jr_report *r, struct trace_span *sp)
{
	int64_t t0 = report_get_int(r, "t0", -1), th = report_get_int(r, "th", 0),
		ti = report_get_int(r, "ti", 0);

	memset(sp, 0, sizeof(*sp));
	if (report_get_int(r, "sampled", 0) != 1 || t0 < 0 || r->ta_ms < 0 ||
	    copy_hex(r, "trace", sp->trace_id, 32) < 0 || copy_hex(r, "span", sp->span_id, 16) < 0)
		return -1;
	if (copy_hex(r, "pspan", sp->parent_id, 16) < 0)
		sp->parent_id[0] = '\0';
	sp->start_ns = (t0 + (th > 0 ? th : 0) + (ti > 0 ? ti : 0)) * 1000000;
	sp->end_ns = sp->start_ns + r->ta_ms * 1000000;
	sp->error = r->status >= 500 || r->status < 0;
	return 0;
}

/* The model server's call and the time before it (queue, connection), ending with the
 * parent: start is where the upstream part began. */
static size_t upstream_spans(const struct jr_report *r, const struct trace_span *parent,
			     int64_t start_ns, struct trace_span *out, size_t cap)
{
	size_t n = 0;
	int64_t tw = r->tw_ms > 0 ? r->tw_ms : 0, tc = r->tc_ms > 0 ? r->tc_ms : 0;
	char name[TRACE_NAME_MAX];
	size_t len = 0;
	const char *be = report_get(r, "be", &len);

	if (r->tc_ms < 0 || cap < 3)
		return 0; /* never reached a server */
	child(&out[n++], parent, "gateway.queue", TRACE_INTERNAL, start_ns, start_ns + tw * 1000000);
	child(&out[n++], parent, "gateway.connect", TRACE_INTERNAL, start_ns + tw * 1000000,
	      start_ns + (tw + tc) * 1000000);
	snprintf(name, sizeof(name), "model_server %.*s", (int)(len < 32 ? len : 32), be ? be : "");
	child(&out[n], parent, name, TRACE_CLIENT, start_ns + tw * 1000000, parent->end_ns);
	if (r->tr_ms >= 0)
		trace_attr_int(&out[n], "jairouter.time_to_first_byte_ms", tc + r->tr_ms);
	field_attr(&out[n], r, "srv", "server.address");
	usage_attrs(&out[n], r);
	out[n].error = parent->error;
	return n + 1;
}

/* The adapter's line (microsecond times from the request's arrival at the adapter): the
 * adapter's span, its translation, and the provider call, whose span id is the one the
 * adapter sent upstream (span=). */
static size_t adapter_spans(const struct jr_report *r, struct trace_span *out, size_t cap)
{
	struct trace_span *a = &out[0];
	int64_t t0 = report_get_int(r, "t0us", -1), xl = report_get_int(r, "xl_us", 0),
		tt = report_get_int(r, "tt_us", -1), fb = report_get_int(r, "fb_us", -1);
	size_t len = 0;
	const char *prov = report_get(r, "provider", &len);
	char call[17];

	memset(a, 0, sizeof(*a));
	if (cap < 3 || report_get_int(r, "sampled", 0) != 1 || t0 < 0 || tt < 0 ||
	    copy_hex(r, "trace", a->trace_id, 32) < 0 || copy_hex(r, "pspan", a->parent_id, 16) < 0 ||
	    copy_hex(r, "span", call, 16) < 0)
		return 0;
	trace_new_span_id(a->span_id);
	snprintf(a->name, sizeof(a->name), "jairouter.adapter");
	a->kind = TRACE_SERVER;
	a->start_ns = t0 * 1000;
	a->end_ns = (t0 + tt) * 1000;
	a->error = r->status >= 500 || r->status < 0;
	field_attr(a, r, "provider", "gen_ai.system");
	child(&out[1], a, "adapter.translate", TRACE_INTERNAL, a->start_ns, (t0 + xl) * 1000);
	child(&out[2], a, "", TRACE_CLIENT, (t0 + xl) * 1000, a->end_ns);
	memcpy(out[2].span_id, call, sizeof(call));
	snprintf(out[2].name, sizeof(out[2].name), "provider %.*s", (int)(len < 32 ? len : 32), prov ? prov : "");
	field_attr(&out[2], r, "provider", "gen_ai.system");
	field_attr(&out[2], r, "model", "gen_ai.request.model");
	if (fb >= 0)
		trace_attr_int(&out[2], "jairouter.time_to_first_byte_ms", (fb - xl) / 1000);
	trace_attr_int(&out[2], "http.response.status_code", r->status);
	usage_attrs(&out[2], r);
	out[2].error = a->error;
	return 3;
}

size_t trace_spans_from_report(const struct jr_report *r, struct trace_span *out, size_t cap)
{
	struct trace_span *g = &out[0];
	int64_t tq, spoe, up_start;
	size_t len = 0;
	const char *m;

	if (r->adapter)
		return adapter_spans(r, out, cap);
	if (cap < 1 || line_span(r, g) < 0)
		return 0;
	if (report_get(r, "hop", NULL)) {
		/* The rewrite detour: this line is the model server's call itself. Its own
		 * millisecond timers: kept strictly inside the gateway's widened span. */
		g->start_ns += MS_SLACK_NS / 2;
		g->end_ns = g->end_ns - MS_SLACK_NS / 2 > g->start_ns ? g->end_ns - MS_SLACK_NS / 2 : g->start_ns;
		snprintf(g->name, sizeof(g->name), "model_server %.*s", 32, "rewrite");
		g->kind = TRACE_CLIENT;
		field_attr(g, r, "be", "jairouter.backend");
		field_attr(g, r, "srv", "server.address");
		if (r->tc_ms >= 0 && r->tr_ms >= 0)
			trace_attr_int(g, "jairouter.time_to_first_byte_ms", r->tc_ms + r->tr_ms);
		trace_attr_int(g, "jairouter.queue_ms", r->tw_ms);
		usage_attrs(g, r);
		return 1;
	}
	m = report_get(r, "m", &len);
	snprintf(g->name, sizeof(g->name), "%.*s", (int)(len < 8 ? len : 8), m ? m : "HTTP");
	m = report_get(r, "p", &len);
	if (m)
		snprintf(g->name + strlen(g->name), sizeof(g->name) - strlen(g->name), " %.*s",
			 (int)(len < 32 ? len : 32), m);
	g->kind = TRACE_SERVER;
	/* HAProxy's timers count whole milliseconds: the gateway's span is widened by
	 * MS_SLACK_NS at each end so that spans measured with other clocks (the agent's
	 * decision, the detour's own line) fall within it. */
	g->start_ns -= MS_SLACK_NS;
	g->end_ns += MS_SLACK_NS;
	trace_attr_int(g, "http.response.status_code", r->status);
	field_attr(g, r, "p", "url.path");
	field_attr(g, r, "model", "gen_ai.request.model");
	field_attr(g, r, "model", "gen_ai.response.model");
	field_attr(g, r, "tenant", "jairouter.tenant");
	usage_attrs(g, r);
	tq = report_get_int(r, "tq", 0);
	spoe = report_get_int(r, "spoe_ms", 0);
	trace_attr_int(g, "jairouter.request_ms", tq);
	trace_attr_int(g, "jairouter.total_ms", r->ta_ms);
	if (report_is(r, "be", "jairouter_rewrite") || report_is(r, "be", "be_adapter"))
		return 1; /* the detour reports the upstream call (its own line, or the adapter) */
	up_start = g->start_ns + MS_SLACK_NS + ((tq > 0 ? tq : 0) + (spoe > 0 ? spoe : 0)) * 1000000;
	return 1 + upstream_spans(r, g, up_start, out + 1, cap - 1);
}

/* ---- OTLP/JSON ----------------------------------------------------------------------- */

static json_t *attr_json(const struct trace_attr *a)
{
	json_t *v = a->is_int ? json_pack("{s:s}", "intValue", "") : json_pack("{s:s}", "stringValue", a->s);
	char num[24];

	if (a->is_int) {
		/* OTLP/JSON: 64-bit integers are decimal strings. */
		snprintf(num, sizeof(num), "%lld", (long long)a->i);
		json_object_set_new(v, "intValue", json_string(num));
	}
	return json_pack("{s:s,s:o}", "key", a->key, "value", v);
}

static json_t *span_json(const struct trace_span *sp)
{
	char start[24], end[24];
	json_t *attrs = json_array(), *o;

	snprintf(start, sizeof(start), "%lld", (long long)sp->start_ns);
	snprintf(end, sizeof(end), "%lld", (long long)sp->end_ns);
	for (size_t i = 0; i < sp->nattrs; i++)
		json_array_append_new(attrs, attr_json(&sp->attrs[i]));
	o = json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:o,s:{s:i}}", "traceId", sp->trace_id, "spanId",
		      sp->span_id, "name", sp->name, "kind", (int)sp->kind, "startTimeUnixNano", start,
		      "endTimeUnixNano", end, "attributes", attrs, "status", "code", sp->error ? 2 : 0);
	if (sp->parent_id[0])
		json_object_set_new(o, "parentSpanId", json_string(sp->parent_id));
	return o;
}

char *trace_otlp_json(const struct trace_span *spans, size_t n, const char *service)
{
	json_t *arr = json_array(), *doc;
	char *out;

	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, span_json(&spans[i]));
	doc = json_pack("{s:[{s:{s:[{s:s,s:{s:s}}]},s:[{s:{s:s},s:o}]}]}", "resourceSpans", "resource",
			"attributes", "key", "service.name", "value", "stringValue", service, "scopeSpans",
			"scope", "name", "jairouter", "spans", arr);
	out = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	if (!out)
		abort();
	return out;
}

/* ---- the exporter -------------------------------------------------------------------- */

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	int running, stop;
	struct trace_span *q; /* ring of queue_max */
	size_t head, count;
	struct trace_opts o;
	char url[512], service[64];
} ex;

static atomic_uint_fast64_t n_queued, n_dropped, n_exported, n_failed, n_batches;

int trace_enabled(void)
{
	return ex.running;
}

void trace_submit(const struct trace_span *sp)
{
	if (!ex.running)
		return;
	pthread_mutex_lock(&ex.mu);
	if (ex.count >= ex.o.queue_max) {
		pthread_mutex_unlock(&ex.mu);
		atomic_fetch_add(&n_dropped, 1);
		return;
	}
	ex.q[(ex.head + ex.count++) % ex.o.queue_max] = *sp;
	if (ex.count >= ex.o.batch_max)
		pthread_cond_signal(&ex.cv);
	pthread_mutex_unlock(&ex.mu);
	atomic_fetch_add(&n_queued, 1);
}

/* Takes up to batch_max spans off the queue (caller holds the lock). */
static size_t take(struct trace_span *batch)
{
	size_t n = 0;

	while (ex.count && n < ex.o.batch_max) {
		batch[n++] = ex.q[ex.head];
		ex.head = (ex.head + 1) % ex.o.queue_max;
		ex.count--;
	}
	return n;
}

static size_t discard(char *p, size_t size, size_t nmemb, void *arg)
{
	(void)p;
	(void)arg;
	return size * nmemb;
}

static void post(CURL *easy, const struct trace_span *batch, size_t n)
{
	char *body = trace_otlp_json(batch, n, ex.service);
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	long code = 0;
	CURLcode rc;

	curl_easy_setopt(easy, CURLOPT_URL, ex.url);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)EXPORT_TIMEOUT_MS);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard);
	rc = curl_easy_perform(easy);
	if (rc == CURLE_OK)
		curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
	if (rc == CURLE_OK && code >= 200 && code < 300) {
		atomic_fetch_add(&n_exported, n);
		atomic_fetch_add(&n_batches, 1);
	} else {
		const char *why = rc == CURLE_OK ? "answer" : curl_easy_strerror(rc);

		atomic_fetch_add(&n_failed, n);
		log_event(LOG_WARN, "trace_export_failed",
			  LOG_FIELDS(LOG_I("spans", n), LOG_S("error", why),
				     LOG_I("http_status", code)),
			  "trace: export of %zu span(s) failed (%s, HTTP %ld)", n, why, code);
	}
	curl_slist_free_all(h);
	free(body);
}

static void *exporter(void *arg)
{
	struct trace_span *batch = xcalloc(ex.o.batch_max, sizeof(*batch));
	CURL *easy = curl_easy_init();
	struct timespec until;
	size_t n;
	int stop;

	(void)arg;
	if (!easy)
		abort();
	for (;;) {
		pthread_mutex_lock(&ex.mu);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += ex.o.flush_ms / 1000;
		until.tv_nsec += (long)(ex.o.flush_ms % 1000) * 1000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		while (!ex.stop && ex.count < ex.o.batch_max &&
		       pthread_cond_timedwait(&ex.cv, &ex.mu, &until) == 0)
			;
		stop = ex.stop;
		n = take(batch);
		pthread_mutex_unlock(&ex.mu);
		if (n)
			post(easy, batch, n);
		if (stop)
			break;
	}
	curl_easy_cleanup(easy);
	free(batch);
	return NULL;
}

int trace_start(const struct trace_opts *o)
{
	if (!o->url || !o->url[0])
		return 0;
	pthread_mutex_init(&ex.mu, NULL);
	pthread_cond_init(&ex.cv, NULL);
	ex.o = *o;
	snprintf(ex.url, sizeof(ex.url), "%s", o->url);
	snprintf(ex.service, sizeof(ex.service), "%s", o->service && o->service[0] ? o->service : "jairouter");
	ex.q = xcalloc(o->queue_max, sizeof(*ex.q));
	ex.head = ex.count = 0;
	ex.stop = 0;
	if (pthread_create(&ex.thread, NULL, exporter, NULL) != 0) {
		free(ex.q);
		return -1;
	}
	ex.running = 1;
	return 0;
}

void trace_stop(void)
{
	if (!ex.running)
		return;
	pthread_mutex_lock(&ex.mu);
	ex.stop = 1;
	pthread_cond_signal(&ex.cv);
	pthread_mutex_unlock(&ex.mu);
	pthread_join(ex.thread, NULL);
	ex.running = 0;
	free(ex.q);
	ex.q = NULL;
}

/* gen_ai.system: the provider kind of the line's model (the catalogue's). */
static void provider_attr(struct trace_span *sp, const struct jr_report *r)
{
	size_t len = 0;
	const char *m = report_get(r, "model", &len);
	const struct st_model *md;

	if (!m)
		return;
	md = state_find_model(store_read_begin(), m, len);
	if (md)
		trace_attr_str(sp, "gen_ai.system", md->provider, strlen(md->provider));
	store_read_end();
}

void trace_on_report(const struct jr_report *r, void *arg)
{
	struct trace_span spans[4];
	size_t n;

	(void)arg;
	if (!ex.running)
		return;
	n = trace_spans_from_report(r, spans, sizeof(spans) / sizeof(spans[0]));
	if (n && spans[0].kind == TRACE_SERVER)
		provider_attr(&spans[0], r);
	for (size_t i = 0; i < n; i++)
		trace_submit(&spans[i]);
}

void trace_render_metrics(struct evbuffer *out, void *arg)
{
	size_t depth = 0;

	(void)arg;
	if (ex.running) {
		pthread_mutex_lock(&ex.mu);
		depth = ex.count;
		pthread_mutex_unlock(&ex.mu);
	}
	evbuffer_add_printf(out,
		"# HELP jairouter_trace_spans_queued_total Spans of sampled requests queued for export.\n"
		"# TYPE jairouter_trace_spans_queued_total counter\n"
		"jairouter_trace_spans_queued_total %llu\n"
		"# HELP jairouter_trace_spans_dropped_total Spans dropped because the export queue was full.\n"
		"# TYPE jairouter_trace_spans_dropped_total counter\n"
		"jairouter_trace_spans_dropped_total %llu\n"
		"# HELP jairouter_trace_spans_exported_total Spans the collector accepted.\n"
		"# TYPE jairouter_trace_spans_exported_total counter\n"
		"jairouter_trace_spans_exported_total %llu\n"
		"# HELP jairouter_trace_spans_failed_total Spans whose export failed (collector down, refused, timeout).\n"
		"# TYPE jairouter_trace_spans_failed_total counter\n"
		"jairouter_trace_spans_failed_total %llu\n"
		"# HELP jairouter_trace_queue_spans Spans waiting for export.\n"
		"# TYPE jairouter_trace_queue_spans gauge\n"
		"jairouter_trace_queue_spans %zu\n",
		(unsigned long long)atomic_load(&n_queued), (unsigned long long)atomic_load(&n_dropped),
		(unsigned long long)atomic_load(&n_exported), (unsigned long long)atomic_load(&n_failed),
		depth);
}

/* ---- the decision ---------------------------------------------------------------------- */

void trace_decision(const struct trace_decision_info *d)
{
	struct trace_span sp, st;
	char trace_id[33], parent[17];
	int sampled = 0;
	int64_t prev;

	if (!ex.running || trace_parse_context(d->ctx, d->ctx_len, trace_id, parent, &sampled) < 0 ||
	    !sampled)
		return;
	memset(&sp, 0, sizeof(sp));
	memcpy(sp.trace_id, trace_id, sizeof(trace_id));
	memcpy(sp.parent_id, parent, sizeof(parent));
	trace_new_span_id(sp.span_id);
	snprintf(sp.name, sizeof(sp.name), "jairouter.decision");
	sp.kind = TRACE_INTERNAL;
	sp.start_ns = d->start_ns;
	sp.end_ns = d->end_ns > d->start_ns ? d->end_ns : d->start_ns;
	trace_attr_str(&sp, "jairouter.verdict", d->verdict, strlen(d->verdict));
	trace_attr_str(&sp, "jairouter.reason", d->reason, strlen(d->reason));
	if (d->model)
		trace_attr_str(&sp, "gen_ai.request.model", d->model, strlen(d->model));
	trace_attr_int(&sp, "jairouter.stages", (int64_t)d->nstages);
	trace_submit(&sp);
	prev = sp.start_ns;
	for (size_t i = 0; i < d->nstages; i++) {
		child(&st, &sp, d->stage_names[i], TRACE_INTERNAL, prev, d->stage_end_ns[i]);
		prev = st.end_ns;
		trace_submit(&st);
	}
}
