#include "metrics/traffic.h"

#include "report/report.h"
#include "limit/defs.h"
#include "state/state.h"
#include "usage/usage.h"
#include "util/xalloc.h"

#include <event2/buffer.h>
#include <jansson.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NAME_MAX_LEN 128
#define NCLASS 6 /* 1xx..5xx, then "none" (no status: the client or the gateway gave up) */

struct series {
	uint64_t requests[NCLASS];
	uint64_t fallbacks, streamed, estimated, prompt_tokens, completion_tokens;
	int64_t cost_micro;
	uint64_t denied[TRAFFIC_MAX_REASONS];
	uint64_t refused[TRAFFIC_MAX_SCOPES][TRAFFIC_MAX_DIMS];
	uint64_t ttfb[TRAFFIC_NBUCKETS + 1], dur[TRAFFIC_NBUCKETS + 1];
	double ttfb_sum, dur_sum;
};

/* A bounded list of names; index n (the cap) is "other". */
struct names {
	char (*v)[NAME_MAX_LEN];
	unsigned n, cap;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned cap_tenants = 100, cap_models = 50;
static struct names tenants, models;
static struct series **grid; /* (cap_tenants + 2) x (cap_models + 2), allocated lazily */
/* Usage in the current UTC day and month per tenant with series of its own (the budget
 * and quota forecasts compare it with the tenant's limits). */
struct period_use {
	int64_t day, month; /* the periods' starts (Unix seconds) */
	int64_t cost_day, cost_month, tokens_day, tokens_month;
};
static struct period_use *periods; /* cap_tenants entries, allocated lazily */
static const char *reason_names[TRAFFIC_MAX_REASONS];
static const char *scope_names[TRAFFIC_MAX_SCOPES], *dim_names[TRAFFIC_MAX_DIMS];

/* Seconds: 10 ms .. 5 min, the range of a model's answer (first byte to a long stream). */
static const double bucket_le[TRAFFIC_NBUCKETS] = {
	0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
};

void traffic_configure(unsigned max_tenants, unsigned max_models)
{
	pthread_mutex_lock(&mu);
	cap_tenants = max_tenants;
	cap_models = max_models;
	pthread_mutex_unlock(&mu);
}

void traffic_reset(void)
{
	pthread_mutex_lock(&mu);
	if (grid) {
		size_t n = (size_t)(cap_tenants + 2) * (cap_models + 2);
		for (size_t i = 0; i < n; i++)
			free(grid[i]);
		free(grid);
		grid = NULL;
	}
	free(tenants.v);
	free(models.v);
	free(periods);
	periods = NULL;
	memset(&tenants, 0, sizeof(tenants));
	memset(&models, 0, sizeof(models));
	memset(reason_names, 0, sizeof(reason_names));
	memset(scope_names, 0, sizeof(scope_names));
	memset(dim_names, 0, sizeof(dim_names));
	pthread_mutex_unlock(&mu);
}

/* Index of name in l: its own slot, cap ("other") when the list is full, cap + 1 for
 * "none" (empty name). The caller holds mu. */
static unsigned name_index(struct names *l, unsigned cap, const char *name)
{
	if (!name || !name[0])
		return cap + 1;
	for (unsigned i = 0; i < l->n; i++)
		if (strncmp(l->v[i], name, NAME_MAX_LEN - 1) == 0)
			return i;
	if (l->n >= cap)
		return cap;
	if (!l->v) {
		l->cap = cap;
		l->v = xcalloc(cap, NAME_MAX_LEN);
	}
	snprintf(l->v[l->n], NAME_MAX_LEN, "%s", name);
	return l->n++;
}

static const char *name_at(const struct names *l, unsigned cap, unsigned i)
{
	if (i == cap + 1)
		return "none";
	return i == cap ? "other" : l->v[i];
}

/* The series of (tenant, model), created on first use. The caller holds mu. */
static struct series *series_of(const char *tenant, const char *model)
{
	unsigned t = name_index(&tenants, cap_tenants, tenant);
	unsigned m = name_index(&models, cap_models, tenant && tenant[0] ? model : NULL);
	size_t i = (size_t)t * (cap_models + 2) + m;

	if (!grid)
		grid = xcalloc((size_t)(cap_tenants + 2) * (cap_models + 2), sizeof(*grid));
	if (!grid[i])
		grid[i] = xcalloc(1, sizeof(*grid[i]));
	return grid[i];
}

void traffic_denied(const char *tenant, const char *model, int reason, const char *name)
{
	if (reason < 0 || reason >= TRAFFIC_MAX_REASONS)
		return;
	pthread_mutex_lock(&mu);
	reason_names[reason] = name;
	series_of(tenant, model)->denied[reason]++;
	pthread_mutex_unlock(&mu);
}

void traffic_refused(const char *tenant, const char *model, int scope, const char *scope_name,
		     int dim, const char *dim_name)
{
	if (scope < 0 || scope >= TRAFFIC_MAX_SCOPES || dim < 0 || dim >= TRAFFIC_MAX_DIMS)
		return;
	pthread_mutex_lock(&mu);
	scope_names[scope] = scope_name;
	dim_names[dim] = dim_name;
	series_of(tenant, model)->refused[scope][dim]++;
	pthread_mutex_unlock(&mu);
}

static int64_t month_start(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	return t - (int64_t)(tm.tm_mday - 1) * 86400 - t % 86400;
}

/* Adds usage at time t (Unix seconds) to tenant slot i's periods; older periods roll
 * over, usage of a past period (a seed row of an earlier day) counts only for the
 * month. The caller holds mu. */
static void period_add(unsigned i, int64_t t, int64_t now, int64_t tokens, int64_t cost)
{
	struct period_use *p;
	int64_t day = now - now % 86400, month = month_start(now);

	if (i >= cap_tenants)
		return; /* "other" and "none" have no limits of their own */
	if (!periods)
		periods = xcalloc(cap_tenants, sizeof(*periods));
	p = &periods[i];
	if (p->day != day) {
		p->day = day;
		p->cost_day = p->tokens_day = 0;
	}
	if (p->month != month) {
		p->month = month;
		p->cost_month = p->tokens_month = 0;
	}
	if (t >= month) {
		p->cost_month += cost;
		p->tokens_month += tokens;
	}
	if (t >= day) {
		p->cost_day += cost;
		p->tokens_day += tokens;
	}
}

void traffic_seed(const struct usage_seed_row *rows, size_t n)
{
	const struct state *st = store_read_begin();
	int64_t now = (int64_t)time(NULL);

	pthread_mutex_lock(&mu);
	for (size_t r = 0; st && r < n; r++) {
		const struct st_tenant *t = state_find_tenant(st, rows[r].tenant_id);
		if (t)
			period_add(name_index(&tenants, cap_tenants, t->name), rows[r].day, now,
				   rows[r].tokens, rows[r].cost_micro);
	}
	pthread_mutex_unlock(&mu);
	store_read_end();
}

void traffic_settled(const char *tenant, const char *model, int64_t prompt_tokens,
		     int64_t completion_tokens, int64_t cost_micro, int stream, int estimated)
{
	struct series *s;
	int64_t now = (int64_t)time(NULL);

	pthread_mutex_lock(&mu);
	s = series_of(tenant, model);
	period_add(name_index(&tenants, cap_tenants, tenant), now, now,
		   (prompt_tokens > 0 ? prompt_tokens : 0) + (completion_tokens > 0 ? completion_tokens : 0),
		   cost_micro > 0 ? cost_micro : 0);
	s->prompt_tokens += prompt_tokens > 0 ? (uint64_t)prompt_tokens : 0;
	s->completion_tokens += completion_tokens > 0 ? (uint64_t)completion_tokens : 0;
	s->cost_micro += cost_micro > 0 ? cost_micro : 0;
	s->streamed += stream != 0;
	s->estimated += estimated != 0;
	pthread_mutex_unlock(&mu);
}

static void observe(uint64_t *buckets, double *sum, int64_t ms)
{
	double sec = (double)ms / 1000.0;
	int b = 0;

	while (b < TRAFFIC_NBUCKETS && sec > bucket_le[b])
		b++;
	buckets[b]++;
	*sum += sec;
}

/* A report field copied as a NUL-terminated string ("" when absent). */
static void field(const struct jr_report *r, const char *key, char *out, size_t cap)
{
	size_t len = 0;
	const char *v = report_get(r, key, &len);

	if (!v || len >= cap)
		len = 0;
	if (len)
		memcpy(out, v, len);
	out[len] = '\0';
}

void traffic_on_report(const struct jr_report *r, void *arg)
{
	char tenant[NAME_MAX_LEN], model[NAME_MAX_LEN], fb[16];
	struct series *s;
	int cls;

	(void)arg;
	if (r->adapter || report_get(r, "hop", NULL))
		return; /* the adapter's usage line, the rewrite detour's line: not a request */
	field(r, "tenant", tenant, sizeof(tenant));
	field(r, "model", model, sizeof(model));
	field(r, "fb", fb, sizeof(fb));
	cls = r->status >= 100 && r->status < 600 ? r->status / 100 - 1 : NCLASS - 1;
	pthread_mutex_lock(&mu);
	s = series_of(tenant, model);
	s->requests[cls]++;
	if (fb[0] && strcmp(fb, "0") != 0)
		s->fallbacks++;
	if (r->tr_ms >= 0)
		observe(s->ttfb, &s->ttfb_sum, r->tr_ms);
	if (r->ta_ms >= 0)
		observe(s->dur, &s->dur_sum, r->ta_ms);
	pthread_mutex_unlock(&mu);
}

/* ---- rendering -------------------------------------------------------------------- */

/* A label value in the text format's escaping (backslash, double quote, newline). */
static void add_escaped(struct evbuffer *out, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			evbuffer_add_printf(out, "\\%c", *v);
		else if (*v == '\n')
			evbuffer_add(out, "\\n", 2);
		else
			evbuffer_add(out, v, 1);
	}
}

static void add_labels(struct evbuffer *out, const char *name, unsigned t, unsigned m)
{
	evbuffer_add_printf(out, "jairouter_%s{tenant=\"", name);
	add_escaped(out, name_at(&tenants, cap_tenants, t));
	evbuffer_add(out, "\",model=\"", 9);
	add_escaped(out, name_at(&models, cap_models, m));
	evbuffer_add(out, "\"", 1);
}

static void header(struct evbuffer *out, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(out, "# HELP jairouter_%s %s.\n# TYPE jairouter_%s %s\n", name, help, name,
			    type);
}

typedef void (*series_fn)(struct evbuffer *out, const char *name, const struct series *s,
			  unsigned t, unsigned m);

/* Calls fn for every series that exists; the caller holds mu. */
static void each(struct evbuffer *out, const char *name, series_fn fn)
{
	for (unsigned t = 0; grid && t < cap_tenants + 2; t++)
		for (unsigned m = 0; m < cap_models + 2; m++) {
			const struct series *s = grid[(size_t)t * (cap_models + 2) + m];
			if (s)
				fn(out, name, s, t, m);
		}
}

static void put_requests(struct evbuffer *out, const char *name, const struct series *s, unsigned t,
			 unsigned m)
{
	static const char *const cls[NCLASS] = { "1xx", "2xx", "3xx", "4xx", "5xx", "none" };

	for (int c = 0; c < NCLASS; c++)
		if (s->requests[c] || c == 1) {
			add_labels(out, name, t, m);
			evbuffer_add_printf(out, ",code=\"%s\"} %" PRIu64 "\n", cls[c], s->requests[c]);
		}
}

static void put_denied(struct evbuffer *out, const char *name, const struct series *s, unsigned t,
		       unsigned m)
{
	for (int r = 0; r < TRAFFIC_MAX_REASONS; r++)
		if (s->denied[r] && reason_names[r]) {
			add_labels(out, name, t, m);
			evbuffer_add_printf(out, ",reason=\"%s\"} %" PRIu64 "\n", reason_names[r], s->denied[r]);
		}
}

static void put_refused(struct evbuffer *out, const char *name, const struct series *s, unsigned t,
			unsigned m)
{
	for (int sc = 0; sc < TRAFFIC_MAX_SCOPES; sc++)
		for (int d = 0; d < TRAFFIC_MAX_DIMS; d++)
			if (s->refused[sc][d] && scope_names[sc] && dim_names[d]) {
				add_labels(out, name, t, m);
				evbuffer_add_printf(out, ",scope=\"%s\",dimension=\"%s\"} %" PRIu64 "\n",
						    scope_names[sc], dim_names[d], s->refused[sc][d]);
			}
}

#define PUT_FIELD(fname, expr, fmt)                                                          \
	static void fname(struct evbuffer *out, const char *name, const struct series *s,      \
			  unsigned t, unsigned m)                                              \
	{                                                                                      \
		add_labels(out, name, t, m);                                                   \
		evbuffer_add_printf(out, "} " fmt "\n", expr);                                  \
	}
PUT_FIELD(put_fallbacks, s->fallbacks, "%" PRIu64)
PUT_FIELD(put_streamed, s->streamed, "%" PRIu64)
PUT_FIELD(put_estimated, s->estimated, "%" PRIu64)
PUT_FIELD(put_prompt, s->prompt_tokens, "%" PRIu64)
PUT_FIELD(put_completion, s->completion_tokens, "%" PRIu64)
PUT_FIELD(put_cost, (double)s->cost_micro / 1e6, "%.6f")

static void put_histogram(struct evbuffer *out, const char *name, const uint64_t *b, double sum,
			  unsigned t, unsigned m)
{
	uint64_t cum = 0, total = 0;
	char full[96];

	for (int i = 0; i <= TRAFFIC_NBUCKETS; i++)
		total += b[i];
	if (!total)
		return; /* a pair never answered (refused, settled only): 17 lines saved */
	snprintf(full, sizeof(full), "%s_bucket", name);
	for (int i = 0; i <= TRAFFIC_NBUCKETS; i++) {
		cum += b[i];
		add_labels(out, full, t, m);
		if (i < TRAFFIC_NBUCKETS)
			evbuffer_add_printf(out, ",le=\"%g\"} %" PRIu64 "\n", bucket_le[i], cum);
		else
			evbuffer_add_printf(out, ",le=\"+Inf\"} %" PRIu64 "\n", cum);
	}
	snprintf(full, sizeof(full), "%s_sum", name);
	add_labels(out, full, t, m);
	evbuffer_add_printf(out, "} %.6f\n", sum);
	snprintf(full, sizeof(full), "%s_count", name);
	add_labels(out, full, t, m);
	evbuffer_add_printf(out, "} %" PRIu64 "\n", cum);
}

static void put_ttfb(struct evbuffer *out, const char *name, const struct series *s, unsigned t,
		     unsigned m)
{
	put_histogram(out, name, s->ttfb, s->ttfb_sum, t, m);
}

static void put_dur(struct evbuffer *out, const char *name, const struct series *s, unsigned t,
		    unsigned m)
{
	put_histogram(out, name, s->dur, s->dur_sum, t, m);
}

static const struct {
	const char *name, *type, *help;
	series_fn fn;
} families[] = {
	{ "tenant_requests_total", "counter", "Requests ended, by tenant, model and HTTP status class (code)", put_requests },
	{ "tenant_denied_total", "counter", "Requests the gateway refused, by refusal reason code", put_denied },
	{ "tenant_limit_refusals_total", "counter", "Requests refused by a rate limit, quota or budget, by the limit's scope and dimension", put_refused },
	{ "tenant_fallbacks_total", "counter", "Requests served by a fallback model", put_fallbacks },
	{ "tenant_streamed_requests_total", "counter", "Admitted requests answered as a stream", put_streamed },
	{ "tenant_estimated_usage_total", "counter", "Admitted requests whose usage was estimated, not reported by the upstream", put_estimated },
	{ "tenant_prompt_tokens_total", "counter", "Prompt (input) tokens used", put_prompt },
	{ "tenant_completion_tokens_total", "counter", "Completion (output) tokens used", put_completion },
	{ "tenant_cost_total", "counter", "Cost at the catalogue's prices, in units of the catalogue's currency", put_cost },
	{ "tenant_time_to_first_byte_seconds", "histogram", "Time until the upstream's response headers arrived (HAProxy %Tr)", put_ttfb },
	{ "tenant_request_duration_seconds", "histogram", "Total request time as HAProxy saw it (%Ta)", put_dur },
};

/* One jairouter_tenant_info series for a tenant with series of its own: its labels
 * (tenants.labels) as label_<name>. The caller holds mu. */
static void put_info(const struct st_tenant *t, void *arg)
{
	struct evbuffer *out = arg;
	json_t *j, *v;
	const char *k;
	int own = 0;

	for (unsigned i = 0; i < tenants.n && !own; i++)
		own = strcmp(tenants.v[i], t->name) == 0;
	if (!own)
		return;
	evbuffer_add(out, "jairouter_tenant_info{tenant=\"", 30);
	add_escaped(out, t->name);
	evbuffer_add(out, "\"", 1);
	j = t->labels[0] ? json_loads(t->labels, 0, NULL) : NULL;
	json_object_foreach(j, k, v) {
		if (!json_is_string(v) || !k[0] || strlen(k) > 32 || strspn(k, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(k))
			continue; /* the schema allows only these names (sql/004) */
		evbuffer_add_printf(out, ",label_%s=\"", k); /* names: ^[a-z_][a-z0-9_]{0,31}$ (sql/004) */
		add_escaped(out, json_string_value(v));
		evbuffer_add(out, "\"", 1);
	}
	json_decref(j);
	evbuffer_add(out, "} 1\n", 4);
}

struct limit_arg {
	const struct state *st;
	struct evbuffer *out;
};

/* jairouter_tenant_limit: the tenant-wide quota and budget definitions of a tenant with
 * series of its own (no key or model filter). The caller holds mu. */
static void put_limits(const struct st_tenant *t, void *arg)
{
	struct limit_arg *a = arg;
	struct lim_def defs[LIM_MAX_PER_REQ];
	size_t n;
	unsigned i = 0;

	while (i < tenants.n && strcmp(tenants.v[i], t->name) != 0)
		i++;
	if (i == tenants.n)
		return;
	n = limdefs_select(state_limits(a->st), t->id, 0, 0, defs, LIM_MAX_PER_REQ);
	for (size_t k = 0; k < n; k++) {
		const struct lim_def *d = &defs[k];
		if (d->scope != LS_TENANT || d->key_id || d->model_id ||
		    (d->dim != LD_BUDGET && d->dim != LD_QUOTA) ||
		    (d->p.algo != LIM_PERIOD_DAY && d->p.algo != LIM_PERIOD_MONTH))
			continue;
		evbuffer_add(a->out, "jairouter_tenant_limit{tenant=\"", 31);
		add_escaped(a->out, t->name);
		evbuffer_add_printf(a->out, "\",dimension=\"%s\",period=\"%s\"} %.6f\n", lim_dim_name(d->dim),
				    d->p.algo == LIM_PERIOD_DAY ? "day" : "month",
				    d->dim == LD_BUDGET ? (double)d->p.amount / 1e6 : (double)d->p.amount);
	}
}

/* jairouter_tenant_period_{cost,tokens}. The caller holds mu. */
static void render_periods(struct evbuffer *out)
{
	int64_t now = (int64_t)time(NULL);

	header(out, "tenant_period_cost", "gauge", "Cost this node settled in the current UTC day or month, in units of the catalogue's currency");
	header(out, "tenant_period_tokens", "gauge", "Tokens this node settled in the current UTC day or month");
	for (unsigned i = 0; periods && i < tenants.n; i++) {
		period_add(i, now, now, 0, 0); /* rolls an idle tenant's periods over */
		for (int k = 0; k < 4; k++) {
			const struct period_use *p = &periods[i];
			int64_t v = k == 0 ? p->cost_day : k == 1 ? p->cost_month : k == 2 ? p->tokens_day : p->tokens_month;
			evbuffer_add_printf(out, "jairouter_tenant_period_%s{tenant=\"", k < 2 ? "cost" : "tokens");
			add_escaped(out, tenants.v[i]);
			evbuffer_add_printf(out, "\",period=\"%s\"} ", k % 2 ? "month" : "day");
			if (k < 2)
				evbuffer_add_printf(out, "%.6f\n", (double)v / 1e6);
			else
				evbuffer_add_printf(out, "%" PRId64 "\n", v);
		}
	}
}

void traffic_render_metrics(struct evbuffer *out, void *arg)
{
	const struct state *st;

	(void)arg;
	st = store_read_begin(); /* before mu, like traffic_seed: one lock order */
	pthread_mutex_lock(&mu);
	header(out, "tenant_info", "gauge", "1 per tenant with series of its own; its catalogue labels (tenants.labels) as label_<name>");
	if (st) /* NULL before store_init (unit tests) */
		state_each_tenant(st, put_info, out);
	header(out, "tenant_limit", "gauge", "A tenant's daily or monthly quota (tokens) or budget (currency units), tenant-wide definitions");
	if (st) {
		struct limit_arg la = { st, out };
		state_each_tenant(st, put_limits, &la);
	}
	render_periods(out);
	for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
		header(out, families[f].name, families[f].type, families[f].help);
		each(out, families[f].name, families[f].fn);
	}
	header(out, "tenant_series_cap", "gauge", "Tenants and models with series of their own before the rest fold into \"other\"");
	evbuffer_add_printf(out, "jairouter_tenant_series_cap{label=\"tenant\"} %u\n"
				 "jairouter_tenant_series_cap{label=\"model\"} %u\n",
			    cap_tenants, cap_models);
	header(out, "tenant_series_names", "gauge", "Distinct tenant and model names with series of their own");
	evbuffer_add_printf(out, "jairouter_tenant_series_names{label=\"tenant\"} %u\n"
				 "jairouter_tenant_series_names{label=\"model\"} %u\n",
			    tenants.n, models.n);
	pthread_mutex_unlock(&mu);
	store_read_end();
}
