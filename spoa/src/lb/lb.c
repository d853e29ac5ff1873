#include "lb/lb.h"

#include "lb/conf.h"
#include "lb/stats.h"
#include "report/report.h"
#include "state/policy.h"
#include "state/routing.h"
#include "state/state.h"
#include "util/log.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STALE_POLLS 8          /* a table older than this many intervals is not trusted */
#define STALE_MIN_MS 2000
#define POLL_TIMEOUT_MIN_MS 1000

/* ---- the live table ---------------------------------------------------------------- */

static pthread_rwlock_t live_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct lb_table *live;   /* swapped by the control thread under the write lock */
static _Atomic int64_t live_ok_ms; /* when the last poll succeeded */
static _Atomic unsigned stale_ms = STALE_MIN_MS;

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static lb_clock_fn clock_fn = mono_ms;

void lb_set_clock(lb_clock_fn fn)
{
	clock_fn = fn ? fn : mono_ms;
}

int64_t lb_now_ms(void)
{
	return clock_fn();
}

struct lb_table *lb_live(void)
{
	return live;
}

/* Breaker thresholds come from the catalogue (sql/005_routing.sql). */
static void apply_breakers(struct lb_table *t)
{
	const struct state *s = store_read_begin();
	const struct lb_conf *c = state_lb(s);

	for (size_t i = 0; i < t->nbe; i++)
		lb_conf_breaker(c, t->be[i].name, &t->be[i].brc);
	store_read_end();
}

void lb_publish(struct lb_table *fresh, int64_t now_ms)
{
	struct lb_table *old;

	apply_breakers(fresh);
	pthread_rwlock_wrlock(&live_lock);
	old = live;
	lb_table_carry(fresh, old, now_ms);
	live = fresh;
	pthread_rwlock_unlock(&live_lock);
	atomic_store(&live_ok_ms, now_ms);
	lb_table_free(old);
}

/* ---- counters ---------------------------------------------------------------------- */

static _Atomic uint64_t sel_by_strategy[LB_S__COUNT];
static _Atomic uint64_t fallbacks[LB_W__COUNT], refusals[LB_W__COUNT];
static _Atomic uint64_t polls_ok, polls_failed;
static uint64_t transitions[3]; /* control thread: entries into closed, open, half_open */

/* Decisions per model that served (the fallback's or member's name when one did): a fixed
 * open-addressing table, filled lock-free by the workers. Slots are claimed by the name's
 * 64-bit hash; beyond MODEL_SLOTS names (or 16 probes), counts go to model="(other)". */
#define MODEL_SLOTS 1024
#define MODEL_PROBES 16
static struct model_slot {
	_Atomic uint64_t hash;
	_Atomic int ready;
	char name[ST_MODEL_MAX];
	_Atomic uint64_t n;
} model_sel[MODEL_SLOTS];
static _Atomic uint64_t model_other;

static void count_model(const char *name)
{
	uint64_t h = hmap_hash_bytes(name, strlen(name)) | 1;

	for (unsigned i = 0; i < MODEL_PROBES; i++) {
		struct model_slot *sl = &model_sel[(h + i) & (MODEL_SLOTS - 1)];
		uint64_t cur = atomic_load(&sl->hash), zero = 0;
		if (cur == 0 && atomic_compare_exchange_strong(&sl->hash, &zero, h)) {
			snprintf(sl->name, sizeof(sl->name), "%s", name);
			atomic_store(&sl->ready, 1);
			cur = h;
		} else if (cur == 0) {
			cur = zero; /* another worker claimed it meanwhile */
		}
		if (cur == h) {
			atomic_fetch_add_explicit(&sl->n, 1, memory_order_relaxed);
			return;
		}
	}
	atomic_fetch_add_explicit(&model_other, 1, memory_order_relaxed);
}

/* The label value, with '"' and '\' escaped as Prometheus wants. */
static void put_label(struct evbuffer *out, const char *v)
{
	for (; *v; v++) {
		if (*v == '"' || *v == '\\')
			evbuffer_add(out, "\\", 1);
		evbuffer_add(out, v, 1);
	}
}

/* ---- polling ----------------------------------------------------------------------- */

static struct {
	struct event_base *base;
	struct lb_stats *stats;
	struct event *timer;
	unsigned poll_ms;
	char addr[256];
	int failing; /* log a failure once per streak */
} svc;

static void on_breaker(const struct lb_backend *b, const struct lb_server *s, enum lb_br_event e,
		       void *arg)
{
	(void)arg;
	if (e == LB_BR_HALF_OPENED) {
		transitions[LB_BR_HALF_OPEN]++;
		log_event(LOG_INFO, "breaker_half_open",
			  LOG_FIELDS(LOG_S("backend", b->name), LOG_S("server", s->name)),
			  "routing: %s/%s breaker half-open: probing", b->name, s->name);
	}
}

static void on_stats(const char *csv, size_t len, const char *err, void *arg)
{
	char why[160];
	struct lb_table *t;
	size_t skipped = 0;
	int64_t now = lb_now_ms();

	(void)arg;
	if (!err) {
		t = lb_table_parse(csv, len, now, &skipped, why, sizeof(why));
		if (!t)
			err = why;
	}
	if (err) {
		atomic_fetch_add(&polls_failed, 1);
		if (!svc.failing++)
			log_event(LOG_WARN, "stats_socket_down",
				  LOG_FIELDS(LOG_S("addr", svc.addr), LOG_S("error", err)),
				  "routing: HAProxy stats socket %s: %s "
				  "(HAProxy balances on its own "
				  "while this lasts)", svc.addr, err);
		return;
	}
	if (svc.failing)
		log_event(LOG_INFO, "stats_socket_up", LOG_FIELDS(LOG_S("addr", svc.addr)),
			  "routing: HAProxy stats socket %s answers again", svc.addr);
	svc.failing = 0;
	if (skipped)
		log_event(LOG_DEBUG, "stats_rows_over_limit", LOG_FIELDS(LOG_I("rows", skipped)),
			  "routing: %zu stats rows beyond the table limits ignored", skipped);
	atomic_fetch_add(&polls_ok, 1);
	lb_publish(t, now);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	/* Breaker time transitions run on the live table, without the lock: only this
	 * thread writes what they touch, and workers read atomics. */
	lb_table_tick(live, lb_now_ms(), on_breaker, NULL);
	if (svc.stats)
		lb_stats_poll(svc.stats);
}

static int setup(const struct lb_opts *o, char *err, size_t errlen)
{
	struct lb_stats *st = NULL;
	unsigned poll = o->poll_ms ? o->poll_ms : 250;
	unsigned timeout = poll * 4 > POLL_TIMEOUT_MIN_MS ? poll * 4 : POLL_TIMEOUT_MIN_MS;
	struct timeval tv = { poll / 1000, (poll % 1000) * 1000 };

	if (o->stats_socket && o->stats_socket[0] &&
	    !(st = lb_stats_new(svc.base, o->stats_socket, timeout, on_stats, NULL, err, errlen)))
		return -1;
	lb_stats_free(svc.stats);
	svc.stats = st;
	svc.poll_ms = poll;
	snprintf(svc.addr, sizeof(svc.addr), "%s", o->stats_socket ? o->stats_socket : "");
	atomic_store(&stale_ms, poll * STALE_POLLS > STALE_MIN_MS ? poll * STALE_POLLS : STALE_MIN_MS);
	event_del(svc.timer);
	event_add(svc.timer, &tv);
	return 0;
}

int lb_start(struct event_base *base, const struct lb_opts *o, char *err, size_t errlen)
{
	svc.base = base;
	svc.timer = event_new(base, -1, EV_PERSIST, on_tick, NULL);
	if (setup(o, err, errlen) < 0)
		return -1;
	report_subscribe(lb_on_report, NULL);
	if (svc.stats)
		log_event(LOG_INFO, "stats_socket_polling",
			  LOG_FIELDS(LOG_S("addr", svc.addr), LOG_I("poll_ms", svc.poll_ms)),
			  "routing: polling HAProxy's stats socket %s every %u ms", svc.addr,
			  svc.poll_ms);
	return 0;
}

int lb_reconfigure(const struct lb_opts *o, char *err, size_t errlen)
{
	return svc.base ? setup(o, err, errlen) : 0;
}

void lb_stop(void)
{
	lb_stats_free(svc.stats);
	svc.stats = NULL;
	if (svc.timer)
		event_free(svc.timer);
	svc.timer = NULL;
	pthread_rwlock_wrlock(&live_lock);
	lb_table_free(live);
	live = NULL;
	pthread_rwlock_unlock(&live_lock);
}

/* ---- reports ----------------------------------------------------------------------- */

/* What a finished request says about the server that served it. A client that went
 * away says nothing; 429 is saturation; 5xx and server-side aborts or timeouts are
 * failures; every other answer (4xx included) shows a working server. */
static enum lb_outcome classify(const struct jr_report *r)
{
	if (r->status == 429)
		return LB_O_SATURATED;
	if (r->status >= 500 || r->tsc[0] == 'S' || r->tsc[0] == 's')
		return LB_O_FAILURE;
	if (report_client_aborted(r) || r->status < 100)
		return LB_O_IGNORE;
	return LB_O_SUCCESS;
}

static int copy_field(const struct jr_report *r, const char *key, char *dst, size_t cap)
{
	size_t len;
	const char *v = report_get(r, key, &len);

	if (!v || len == 0 || len >= cap)
		return -1;
	memcpy(dst, v, len);
	dst[len] = '\0';
	return 0;
}

void lb_release(const char *backend, const char *server)
{
	pthread_rwlock_rdlock(&live_lock);
	lb_table_release(live, backend, server);
	pthread_rwlock_unlock(&live_lock);
}

void lb_on_report(const struct jr_report *r, void *arg)
{
	char be[LB_NAME_MAX], srv[LB_NAME_MAX];
	enum lb_br_event e;

	(void)arg;
	/* The main frontend's line names the server the agent chose (lb=, ls=): that
	 * request has ended, whatever happened to it. */
	if (!r->adapter && live && copy_field(r, "lb", be, sizeof(be)) == 0 &&
	    copy_field(r, "ls", srv, sizeof(srv)) == 0)
		lb_table_release(live, be, srv);
	/* The main frontend's line of a request that took the rewrite detour names the
	 * detour; the detour's own line (hop=rewrite) names the real backend and server. */
	if (r->adapter || !live || copy_field(r, "be", be, sizeof(be)) < 0 ||
	    copy_field(r, "srv", srv, sizeof(srv)) < 0 || strncmp(be, "be_", 3) != 0)
		return;
	e = lb_table_report(live, be, srv, classify(r), r->tr_ms, r->ta_ms,
			    (int)report_get_int(r, "ra", 1), lb_now_ms());
	if (e == LB_BR_OPENED) {
		transitions[LB_BR_OPEN]++;
		log_event(LOG_WARN, "breaker_open",
			  LOG_FIELDS(LOG_S("backend", be), LOG_S("server", srv),
				     LOG_I("status", r->status), LOG_S("termination", r->tsc)),
			  "routing: %s/%s breaker open (status %d, termination %s)", be, srv,
			  r->status, r->tsc);
	} else if (e == LB_BR_CLOSED_EV) {
		transitions[LB_BR_CLOSED]++;
		log_event(LOG_INFO, "breaker_closed",
			  LOG_FIELDS(LOG_S("backend", be), LOG_S("server", srv)),
			  "routing: %s/%s breaker closed", be, srv);
	}
}

/* ---- the decision ------------------------------------------------------------------- */

static __thread struct lb_rng tl_rng;

static struct lb_rng *rng(void)
{
	if (!tl_rng.s) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		lb_rng_seed(&tl_rng, (uint64_t)ts.tv_nsec ^ ((uint64_t)(uintptr_t)&tl_rng << 17) ^
					     (uint64_t)ts.tv_sec);
	}
	return &tl_rng;
}

/* The affinity key of a request; 0 when it has none. */
static int key_of(const struct lb_request *q, enum lb_hash_key k, uint64_t *h)
{
	switch (k) {
	case LB_K_CLIENT_IP:
		if (!q->src_family || !q->src)
			return 0;
		*h = hmap_hash_bytes(q->src, q->src_family == 4 ? 4 : 16);
		return 1;
	case LB_K_TENANT:
		*h = hmap_hash_u64((uint64_t)q->tenant_id);
		return q->tenant_id != 0;
	case LB_K_API_KEY:
		*h = hmap_hash_u64((uint64_t)q->key_id);
		return q->key_id != 0;
	case LB_K_HEADER:
		if (!q->affinity || !q->affinity_len)
			return 0;
		*h = hmap_hash_bytes(q->affinity, q->affinity_len);
		return 1;
	case LB_K__COUNT:
		break;
	}
	return 0;
}

/* A model the request may be sent to, as the decision needs it. */
struct target {
	char model[ST_MODEL_MAX];
	char backend[ST_NAME_MAX];
	char upstream[ST_MODEL_MAX];
	uint32_t services, caps, reasons;
	struct lb_eff eff;
};

/* Whether fallback model m can take this request: active, serving the service type (and
 * streaming when asked), and usable by the caller. */
static int fallback_fits(const struct state *s, const struct lb_request *q, const struct st_model *m)
{
	int bit = q->service_bit;

	return m->status == ST_ACTIVE && bit >= 0 && bit < 32 && (m->services & (1u << bit)) &&
	       (!q->stream || (m->caps & ST_CAP_STREAMING)) &&
	       policy_model_usable(state_policy(s), q->tenant_id, q->key_id, m->id, m->name);
}

static void target_of(const struct state *s, const struct st_model *m, int service, struct target *t)
{
	snprintf(t->model, sizeof(t->model), "%s", m->name);
	snprintf(t->backend, sizeof(t->backend), "%s", m->backend);
	snprintf(t->upstream, sizeof(t->upstream), "%s", m->upstream);
	t->services = m->services;
	t->caps = m->caps;
	lb_conf_resolve(state_lb(s), m->id, m->backend, service, &t->eff);
}

/* The primary target and the usable fallbacks, copied out under the store's lock. */
static size_t targets(const struct lb_request *q, struct target *t, size_t max)
{
	const struct state *s = store_read_begin();
	const struct st_model *m = state_find_model(s, q->model, strlen(q->model));
	struct lb_fallback_row fb[LB_FALLBACKS_MAX];
	size_t n = 1, nfb;

	memset(&t[0], 0, sizeof(t[0]));
	snprintf(t[0].backend, sizeof(t[0].backend), "%s", q->backend);
	lb_conf_resolve(state_lb(s), m ? m->id : 0, q->backend, q->service, &t[0].eff);
	nfb = m ? lb_conf_fallbacks(state_lb(s), m->id, fb, LB_FALLBACKS_MAX) : 0;
	for (size_t i = 0; i < nfb && n < max; i++) {
		const struct st_model *f = state_find_model_id(s, fb[i].fallback_id);
		if (!f || !fallback_fits(s, q, f))
			continue;
		target_of(s, f, q->service, &t[n]);
		t[n++].reasons = fb[i].reasons;
	}
	store_read_end();
	return n;
}

/* 1: a server (or HAProxy's choice, server ""), -1: none usable. */
static int choose(const struct lb_request *q, const struct target *t, int64_t now,
		  struct lb_choice *c)
{
	struct lb_choose_in in = { t->eff.strategy, 0, 0, t->eff.bound, t->eff.slow_start_ms, now, rng() };
	int rc;

	memset(c, 0, sizeof(*c));
	if (t->eff.strategy == LB_S_HAPROXY)
		return 1;
	in.has_key = key_of(q, t->eff.hash_key, &in.key_hash);
	pthread_rwlock_rdlock(&live_lock);
	if (!live || now - atomic_load(&live_ok_ms) > (int64_t)atomic_load(&stale_ms))
		rc = 0; /* no fresh view of HAProxy: let it balance */
	else
		rc = lb_table_choose(live, t->backend, &in, c);
	pthread_rwlock_unlock(&live_lock);
	if (rc >= 0)
		atomic_fetch_add_explicit(&sel_by_strategy[rc ? t->eff.strategy : LB_S_HAPROXY], 1,
					  memory_order_relaxed);
	return rc == 0 ? 1 : rc;
}

/* ---- virtual models ---------------------------------------------------------------- */

#define EXPECTED_OUTPUT_TOKENS 256 /* cost estimate when the request sets no max_tokens */

/* What a request needs from a model. Tools and images are found by their JSON keys in
 * the body ("tools"/"functions", "image_url"/"input_image"); the text may also occur
 * inside a message, which only ever narrows the choice to more capable models. */
struct needs {
	uint32_t caps;
	int64_t prompt_tokens, max_tokens, out_tokens;
};

static int body_has(const struct lb_request *q, const char *lit)
{
	return q->body && memmem(q->body, q->body_len, lit, strlen(lit)) != NULL;
}

static void needs_of(const struct lb_request *q, struct needs *n)
{
	memset(n, 0, sizeof(*n));
	if (q->stream)
		n->caps |= ST_CAP_STREAMING;
	if (body_has(q, "\"tools\"") || body_has(q, "\"functions\""))
		n->caps |= ST_CAP_TOOLS;
	if (body_has(q, "\"image_url\"") || body_has(q, "\"input_image\""))
		n->caps |= ST_CAP_VISION;
	/* About four bytes per token: the estimate the limits use too. */
	n->prompt_tokens = q->body ? (int64_t)(q->body_len + 3) / 4 : 0;
	if (q->max_tokens > 0)
		n->max_tokens = q->max_tokens;
	n->out_tokens = n->max_tokens ? n->max_tokens : EXPECTED_OUTPUT_TOKENS;
}

static int member_fits(const struct state *s, const struct lb_request *q, const struct st_model *m,
		       const struct needs *n)
{
	return fallback_fits(s, q, m) && (m->caps & n->caps) == n->caps &&
	       (m->context_length <= 0 || m->context_length >= n->prompt_tokens + n->max_tokens);
}

/* Expected price of the request on model m; unpriced models come last. */
static double cost_of(const struct st_model *m, const struct needs *n)
{
	if (m->price_in < 0 || m->price_out < 0)
		return 1e300;
	return m->price_in * (double)n->prompt_tokens + m->price_out * (double)n->out_tokens;
}

/* The members of virtual model v that cover the request, cheapest first (ties keep the
 * members' order). */
static size_t virtual_targets(const struct state *s, const struct lb_request *q,
			      const struct lb_virtual_row *v, const struct needs *n, struct target *t,
			      size_t max)
{
	struct lb_member_row mem[LB_MEMBERS_MAX];
	double cost[LB_MEMBERS_MAX + 1];
	size_t nm = lb_conf_members(state_lb(s), v->id, mem, LB_MEMBERS_MAX), k = 0;

	for (size_t i = 0; i < nm && k < max; i++) {
		const struct st_model *m = state_find_model_id(s, mem[i].model_id);
		size_t j;
		double c;
		if (!m || !member_fits(s, q, m, n))
			continue;
		c = cost_of(m, n);
		for (j = k; j > 0 && cost[j - 1] > c; j--) {
			t[j] = t[j - 1];
			cost[j] = cost[j - 1];
		}
		target_of(s, m, q->service, &t[j]);
		cost[j] = c;
		k++;
	}
	return k;
}

static void switch_to(struct lb_route *out, enum lb_route_kind kind, const struct target *t,
		      const struct lb_choice *c)
{
	out->kind = kind;
	out->strategy = t->eff.strategy;
	memcpy(out->server, c->server, sizeof(out->server));
	memcpy(out->model, t->model, sizeof(out->model));
	memcpy(out->backend, t->backend, sizeof(out->backend));
	memcpy(out->upstream, t->upstream, sizeof(out->upstream));
	out->services = t->services;
	out->caps = t->caps;
}

/* A virtual model: the cheapest covering member with a usable server, within the latency
 * budget when one is (else the cheapest available). 1 when this was a virtual model. */
static int route_virtual(const struct lb_request *q, struct lb_route *out, int64_t now)
{
	struct target t[LB_MEMBERS_MAX], spare;
	struct lb_choice c, spare_c;
	struct needs n;
	int64_t budget = 0;
	size_t k = 0;
	int have_spare = 0, first_why = 1;
	const struct state *s = store_read_begin();
	const struct st_model *m = NULL;
	const struct lb_virtual_row *v = NULL;

	if (lb_conf_count_virtual(state_lb(s))) /* most catalogues have none: skip the lookup */
		m = state_find_model(s, q->model, strlen(q->model));
	if (m)
		v = lb_conf_virtual(state_lb(s), m->id);
	if (v) {
		needs_of(q, &n);
		budget = v->latency_budget_ms;
		k = virtual_targets(s, q, v, &n, t, LB_MEMBERS_MAX);
	}
	store_read_end();
	if (!v)
		return 0;
	memset(out, 0, sizeof(*out));
	if (!k) {
		out->kind = LB_ROUTE_UNFIT;
		out->need_caps = n.caps;
		out->need_tokens = n.prompt_tokens + n.max_tokens;
		return 1;
	}
	for (size_t i = 0; i < k; i++) {
		if (choose(q, &t[i], now, &c) < 0) {
			if (first_why) {
				out->why = c.why;
				out->retry_after_s = c.retry_after_s;
				first_why = 0;
			}
			continue;
		}
		if (budget > 0 && c.latency_ms > (double)budget) {
			if (!have_spare) {
				spare = t[i];
				spare_c = c;
				have_spare = 1;
			} else if (c.server[0]) {
				lb_release(t[i].backend, c.server); /* not taken after all */
			}
			continue;
		}
		if (have_spare && spare_c.server[0])
			lb_release(spare.backend, spare_c.server);
		switch_to(out, LB_ROUTE_VIRTUAL, &t[i], &c);
		return 1;
	}
	if (have_spare)
		switch_to(out, LB_ROUTE_VIRTUAL, &spare, &spare_c);
	else
		out->kind = LB_ROUTE_NONE;
	return 1;
}

static void route_once(const struct lb_request *q, struct lb_route *out);

void lb_route(const struct lb_request *q, struct lb_route *out)
{
	route_once(q, out);
	if (out->kind == LB_ROUTE_PRIMARY)
		count_model(q->model);
	else if (out->kind == LB_ROUTE_FALLBACK || out->kind == LB_ROUTE_VIRTUAL)
		count_model(out->model);
}

static void route_once(const struct lb_request *q, struct lb_route *out)
{
	struct target t[1 + LB_FALLBACKS_MAX];
	struct lb_choice c;
	int64_t now = lb_now_ms();
	size_t n;

	if (route_virtual(q, out, now))
		return;
	n = targets(q, t, 1 + LB_FALLBACKS_MAX);
	memset(out, 0, sizeof(*out));
	out->strategy = t[0].eff.strategy;
	if (choose(q, &t[0], now, &c) > 0) {
		memcpy(out->server, c.server, sizeof(out->server));
		return;
	}
	out->why = c.why;
	out->retry_after_s = c.retry_after_s;
	for (size_t i = 1; i < n; i++) {
		if (!(t[i].reasons & (1u << out->why)) || choose(q, &t[i], now, &c) < 0)
			continue;
		switch_to(out, LB_ROUTE_FALLBACK, &t[i], &c);
		atomic_fetch_add_explicit(&fallbacks[out->why], 1, memory_order_relaxed);
		return;
	}
	out->kind = LB_ROUTE_NONE;
	atomic_fetch_add_explicit(&refusals[out->why], 1, memory_order_relaxed);
}

/* ---- metrics ----------------------------------------------------------------------- */

static void series_header(struct evbuffer *out, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(out, "# HELP jairouter_%s %s\n# TYPE jairouter_%s %s\n", name, help, name, type);
}

static int server_usable(const struct lb_server *s, int64_t now)
{
	return s->health == LB_H_UP && s->weight > 0 && atomic_load(&s->d.br_state) != LB_BR_OPEN &&
	       now >= atomic_load(&s->d.sat_until_ms);
}

typedef void (*server_fn)(struct evbuffer *out, const struct lb_backend *b, const struct lb_server *s,
			  int64_t now);

static void each_server(struct evbuffer *out, server_fn fn, int64_t now)
{
	for (size_t i = 0; live && i < live->nbe; i++)
		for (size_t j = 0; j < live->be[i].n; j++)
			fn(out, &live->be[i], &live->be[i].srv[j], now);
}

static void s_usable(struct evbuffer *out, const struct lb_backend *b, const struct lb_server *s, int64_t now)
{
	evbuffer_add_printf(out, "jairouter_lb_server_usable{backend=\"%s\",server=\"%s\",health=\"%s\"} %d\n",
			    b->name, s->name, lb_health_name(s->health), server_usable(s, now));
}

static void s_breaker(struct evbuffer *out, const struct lb_backend *b, const struct lb_server *s, int64_t now)
{
	(void)now;
	evbuffer_add_printf(out, "jairouter_lb_breaker_state{backend=\"%s\",server=\"%s\"} %d\n", b->name,
			    s->name, atomic_load(&s->d.br_state));
}

static void s_opened(struct evbuffer *out, const struct lb_backend *b, const struct lb_server *s, int64_t now)
{
	(void)now;
	evbuffer_add_printf(out, "jairouter_lb_breaker_opened_total{backend=\"%s\",server=\"%s\"} %" PRIu64 "\n",
			    b->name, s->name, s->d.opened);
}

static void s_selected(struct evbuffer *out, const struct lb_backend *b, const struct lb_server *s, int64_t now)
{
	(void)now;
	evbuffer_add_printf(out, "jairouter_lb_server_selections_total{backend=\"%s\",server=\"%s\"} %" PRIu64 "\n",
			    b->name, s->name, atomic_load(&s->d.selected));
}

static void s_latency(struct evbuffer *out, const struct lb_backend *b, const struct lb_server *s, int64_t now)
{
	(void)now;
	evbuffer_add_printf(out, "jairouter_lb_server_latency_ewma_seconds{backend=\"%s\",server=\"%s\",kind=\"ttfb\"} %.6f\n"
			    "jairouter_lb_server_latency_ewma_seconds{backend=\"%s\",server=\"%s\",kind=\"total\"} %.6f\n",
			    b->name, s->name, atomic_load(&s->d.ttfb_us) / 1e6, b->name, s->name,
			    atomic_load(&s->d.total_us) / 1e6);
}

static void render_reasons(struct evbuffer *out, const char *name, const char *help, _Atomic uint64_t *v)
{
	series_header(out, name, "counter", help);
	for (int w = 1; w < LB_W__COUNT; w++)
		evbuffer_add_printf(out, "jairouter_%s{reason=\"%s\"} %" PRIu64 "\n", name,
				    lb_why_name((enum lb_why)w), atomic_load(&v[w]));
}

void lb_render_metrics(struct evbuffer *out, void *arg)
{
	int64_t now = lb_now_ms();

	(void)arg;
	series_header(out, "lb_stats_polls_total", "counter", "HAProxy stats socket polls by result.");
	evbuffer_add_printf(out, "jairouter_lb_stats_polls_total{result=\"ok\"} %" PRIu64 "\n"
			    "jairouter_lb_stats_polls_total{result=\"error\"} %" PRIu64 "\n",
			    atomic_load(&polls_ok), atomic_load(&polls_failed));
	series_header(out, "lb_stats_age_seconds", "gauge", "Age of the server table (-1: none yet).");
	evbuffer_add_printf(out, "jairouter_lb_stats_age_seconds %.3f\n",
			    live ? (now - atomic_load(&live_ok_ms)) / 1000.0 : -1.0);
	series_header(out, "lb_selections_total", "counter", "Server choices by strategy (haproxy: left to HAProxy).");
	for (int s = 0; s < LB_S__COUNT; s++)
		evbuffer_add_printf(out, "jairouter_lb_selections_total{strategy=\"%s\"} %" PRIu64 "\n",
				    lb_strategy_name((enum lb_strategy)s), atomic_load(&sel_by_strategy[s]));
	render_reasons(out, "lb_fallbacks_total", "Requests served by a fallback model, by the primary's problem.", fallbacks);
	render_reasons(out, "lb_unavailable_total", "Requests refused with 503: no model of the chain could serve.", refusals);
	series_header(out, "lb_breaker_transitions_total", "counter", "Breaker state changes, by new state.");
	for (int s = 0; s < 3; s++)
		evbuffer_add_printf(out, "jairouter_lb_breaker_transitions_total{to=\"%s\"} %" PRIu64 "\n",
				    lb_breaker_state_name((enum lb_br_state)s), transitions[s]);
	series_header(out, "lb_model_selections_total", "counter", "Routed requests by the model that serves them.");
	for (unsigned i = 0; i < MODEL_SLOTS; i++)
		if (atomic_load(&model_sel[i].ready)) {
			evbuffer_add_printf(out, "jairouter_lb_model_selections_total{model=\"");
			put_label(out, model_sel[i].name);
			evbuffer_add_printf(out, "\"} %" PRIu64 "\n", atomic_load(&model_sel[i].n));
		}
	evbuffer_add_printf(out, "jairouter_lb_model_selections_total{model=\"(other)\"} %" PRIu64 "\n",
			    atomic_load(&model_other));
	series_header(out, "lb_server_usable", "gauge", "1 when the agent would send a request to the server (HAProxy health, weight, breaker, 429).");
	each_server(out, s_usable, now);
	series_header(out, "lb_breaker_state", "gauge", "Breaker state per server: 0 closed, 1 open, 2 half-open.");
	each_server(out, s_breaker, now);
	series_header(out, "lb_breaker_opened_total", "counter", "Times the server's breaker opened.");
	each_server(out, s_opened, now);
	series_header(out, "lb_server_selections_total", "counter", "Requests the agent sent to the server.");
	each_server(out, s_selected, now);
	series_header(out, "lb_server_latency_ewma_seconds", "gauge", "Latency EWMA per server (ttfb: peak EWMA of time to first byte).");
	each_server(out, s_latency, now);
}
