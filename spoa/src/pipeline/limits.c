#include "pipeline/limits.h"

#include "config/config.h"
#include "limit/defs.h"
#include "limit/limiter.h"
#include "report/report.h"
#include "state/endpoints.h"
#include "state/state.h"
#include "usage/usage.h"
#include "util/hmap.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <inttypes.h>
#include <math.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ID_MAX 64        /* request ids are HAProxy uuids (36 characters) */
#define USER_MAX 256     /* longest end-user identifier hashed into a counter key */
#define SCOPE_MAX 160    /* a scope value: "tm<tenant>:<model>", "b<backend>", "u<tenant>:<hash>"... */
#define TICK_MS 100

/* ---- settings (written on the control thread, read by workers) ---------------------- */

static _Atomic unsigned s_fleet_size = 1, s_lease_ms = 660000, s_default_max_tokens = 256,
			s_bytes_per_token = 4, s_usage_wait_ms = 5000;
static size_t s_max_inflight = 65536;

static struct {
	_Atomic uint64_t admitted, refused_rate, refused_quota, fleet_decisions, local_decisions,
		fallback_decisions, untracked, evicted, expired, settled, unknown_reports,
		estimated, billed_from_line, handed_over, cache_hits, batches_charged;
} st;

static char process_tag[9] = "00000000";

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * LIM_US_PER_S + ts.tv_nsec / 1000;
}

static void bump(_Atomic uint64_t *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static const struct lim_remote *remote; /* the fleet's store; NULL: local only */

void limits_set_remote(const struct lim_remote *r)
{
	remote = r;
}

static int remote_on(void)
{
	return remote && remote->configured();
}

static int remote_algo(enum lim_algo a)
{
	return remote && remote->algo_supported(a);
}

void limits_configure(const struct jr_config *cfg)
{
	atomic_store(&s_fleet_size, cfg->fleet_size ? cfg->fleet_size : 1);
	atomic_store(&s_lease_ms, cfg->limits_lease_ms);
	atomic_store(&s_default_max_tokens, cfg->limits_default_max_tokens);
	atomic_store(&s_bytes_per_token, cfg->limits_bytes_per_token ? cfg->limits_bytes_per_token : 4);
	atomic_store(&s_usage_wait_ms, cfg->usage_wait_ms);
	if (remote)
		remote->configure(cfg->redis, cfg->redis_timeout_ms, cfg->limits_lease_ms);
}

const char *limits_mode(void)
{
	return !remote_on() ? "local" : remote->usable() ? "fleet" : "fleet-fallback";
}

/* Amounts are divided by the fleet size whenever Redis is configured but a limit is
 * enforced here (the fallback, and the per-node algorithms). */
static int64_t local_divisor(void)
{
	return remote_on() ? (int64_t)atomic_load(&s_fleet_size) : 1;
}

/* ---- reservations --------------------------------------------------------------------- */

struct resv {
	char id[ID_MAX];
	int64_t tenant_id, key_id, model_id;
	double price_in, price_out; /* per million tokens; < 0 unknown */
	int64_t est_prompt, est_completion;
	int stream;
	char tenant[ST_NAME_MAX], model[ST_MODEL_MAX]; /* for the observer's labels */
	int64_t expires_us;      /* lease */
	int64_t wait_until_us;   /* HAProxy's line came without usage: wait for the adapter's */
	int released;            /* concurrency slots already returned */
	int have_usage;          /* the adapter's line came first */
	int64_t pt, ct;
	int usage_estimated;
	int failed;              /* HAProxy's line: request_failed (usage_rec.failed) */
	double hit_factor;       /* the price factor of a response cache hit (docs/cache.md) */
	int cache_hit;           /* a report line said cache=hit */
	char user[USAGE_USER_MAX + 1]; /* the end user usage is recorded under ("": none) */
	char issuer[PL_END_USER_MAX];  /* a token's issuer ("": an API key), for the access log */
	const struct jr_report *rep;   /* HAProxy's line being handled now, else NULL */
	char *line;              /* a copy of HAProxy's line while settling waits for the adapter */
	size_t line_len;
	size_t n;
	struct lim_item *items;  /* the charges that need settling (not plain request counts) */
	struct resv *prev, *next; /* age order, oldest first */
};

static const struct limits_observer *observer;
static limits_ended_fn ended_fn;

void limits_set_observer(const struct limits_observer *o)
{
	observer = o;
}

void limits_set_ended(limits_ended_fn fn)
{
	ended_fn = fn;
}

static pthread_mutex_t rv_mu = PTHREAD_MUTEX_INITIALIZER;
static struct hmap rv_map;
static struct resv *rv_head, *rv_tail;
static struct resv *rv_evicted; /* pushed out by a worker; settled by the control thread */
static size_t rv_count;
static int rv_init;

static int rv_eq(const void *item, const void *key)
{
	return strcmp(((const struct resv *)item)->id, key) == 0;
}

static uint64_t rv_hash(const char *id)
{
	return hmap_hash_bytes(id, strlen(id));
}

static void rv_unlink(struct resv *r)
{
	hmap_remove(&rv_map, rv_hash(r->id), rv_eq, r->id);
	if (r->prev)
		r->prev->next = r->next;
	else
		rv_head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		rv_tail = r->prev;
	r->prev = r->next = NULL;
	rv_count--;
}

static void rv_free(struct resv *r)
{
	free(r->items);
	free(r->line);
	free(r);
}

static void settle(struct resv *r, int64_t pt, int64_t ct, int estimated, int ok, int64_t now);

/* Inserts (worker thread). A reservation pushed out (the table is full, or the same id
 * came twice) goes to rv_evicted: only the control thread settles and frees. */
static void rv_insert(struct resv *r)
{
	struct resv *old = NULL, *dup;

	pthread_mutex_lock(&rv_mu);
	if ((dup = hmap_find(&rv_map, rv_hash(r->id), rv_eq, r->id))) {
		rv_unlink(dup);
		old = dup;
	} else if (rv_count >= s_max_inflight && rv_head) {
		old = rv_head;
		rv_unlink(old);
		bump(&st.evicted);
	}
	if (old) {
		old->next = rv_evicted;
		rv_evicted = old;
	}
	hmap_insert(&rv_map, rv_hash(r->id), r);
	r->prev = rv_tail;
	if (rv_tail)
		rv_tail->next = r;
	else
		rv_head = r;
	rv_tail = r;
	rv_count++;
	pthread_mutex_unlock(&rv_mu);
}

/* Settles a reservation nobody will report on: the estimate is billed. */
static void settle_estimated(struct resv *r, int64_t now)
{
	if (r->have_usage)
		settle(r, r->pt, r->ct, r->usage_estimated, 1, now);
	else
		settle(r, r->est_prompt, r->est_completion, 1, 1, now);
	rv_free(r);
}

/* ---- estimates and items --------------------------------------------------------------- */

static int produces_completion(enum pl_service s)
{
	return s == PL_SVC_CHAT || s == PL_SVC_COMPLETIONS;
}

void limits_estimate(const struct pl_ctx *ctx, int64_t *prompt, int64_t *completion)
{
	int64_t bytes = ctx->in.body_len > 0 ? ctx->in.body_len : (int64_t)ctx->in.body.len;
	unsigned bpt = atomic_load(&s_bytes_per_token);

	*prompt = (bytes + bpt - 1) / bpt;
	if (*prompt < 1)
		*prompt = 1;
	*completion = 0;
	if (ctx->obj_use) {
		*prompt = 0; /* retrieving a stored response generates nothing */
		return;
	}
	if (produces_completion(ctx->service)) {
		if (ctx->json.max_tokens_type == JSCAN_NUMBER && ctx->json.max_tokens > 0)
			*completion = ctx->json.max_tokens;
		else
			*completion = atomic_load(&s_default_max_tokens);
	}
}

/* Micro-units of money for tokens at prices per million tokens (unknown price: 0). */
static int64_t money_micro(int64_t pt, int64_t ct, double pin, double pout)
{
	double v = (pin > 0 ? (double)pt * pin : 0) + (pout > 0 ? (double)ct * pout : 0);

	return (int64_t)ceil(v);
}

struct lim_req {
	struct pl_ctx *ctx;
	struct lim_item items[LIM_MAX_PER_REQ];
	size_t n;
	int64_t tenant_id, key_id, model_id;
	double price_in, price_out;
	double hit_factor;
	int64_t est_prompt, est_completion;
	char id[ID_MAX];
	int remote_n;          /* items[0..remote_n) go to Redis, the rest are local */
	int local_charged;     /* the local part was charged (to undo on a fleet refusal) */
};

static void hex(char *out, const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* The value that identifies a counter within its definition. */
static void scope_value(const struct lim_req *q, const struct lim_def *d, char *buf, size_t cap)
{
	const struct pl_ctx *ctx = q->ctx;
	char ip[33];

	switch (d->scope) {
	case LS_TENANT: snprintf(buf, cap, "t%lld", (long long)q->tenant_id); break;
	case LS_KEY:
		if (q->key_id)
			snprintf(buf, cap, "k%lld", (long long)q->key_id);
		else /* a token (no API key): its issuer and subject stand for the key */
			snprintf(buf, cap, "j%lld:%016llx", (long long)ctx->issuer_id,
				 (unsigned long long)hmap_hash_bytes(ctx->end_user, strlen(ctx->end_user)));
		break;
	case LS_USER:
		if (ctx->end_user[0]) /* a verified token's subject wins over a request header */
			snprintf(buf, cap, "u%lld:%016llx", (long long)q->tenant_id,
				 (unsigned long long)hmap_hash_bytes(ctx->end_user, strlen(ctx->end_user)));
		else if (ctx->in.user.ptr && ctx->in.user.len)
			snprintf(buf, cap, "u%lld:%016llx", (long long)q->tenant_id,
				 (unsigned long long)hmap_hash_bytes(ctx->in.user.ptr, ctx->in.user.len > USER_MAX
										    ? USER_MAX : ctx->in.user.len));
		else
			snprintf(buf, cap, "uk%lld", (long long)q->key_id); /* no user: the key is one */
		break;
	case LS_IP:
		hex(ip, ctx->in.src, ctx->in.src_family == 4 ? 4 : ctx->in.src_family == 6 ? 16 : 0);
		snprintf(buf, cap, "i%s", ip);
		break;
	case LS_MODEL: snprintf(buf, cap, "m%lld", (long long)q->model_id); break;
	case LS_TENANT_MODEL:
		snprintf(buf, cap, "tm%lld:%lld", (long long)q->tenant_id, (long long)q->model_id);
		break;
	case LS_BACKEND: snprintf(buf, cap, "b%s", ctx->out.backend); break;
	case LS_SERVER: snprintf(buf, cap, "s%s/%s", ctx->out.backend, ctx->out.server); break;
	default: snprintf(buf, cap, "?"); break;
	}
}

static int64_t item_cost(const struct lim_req *q, const struct lim_def *d)
{
	switch (d->dim) {
	case LD_TOKENS:
	case LD_QUOTA: return q->est_prompt + q->est_completion;
	case LD_BUDGET: return money_micro(q->est_prompt, q->est_completion, q->price_in, q->price_out);
	default: return 1;
	}
}

/* Period counters carry their period in the key, so that a new day starts a new one. */
static void build_item(struct lim_req *q, const struct lim_def *d, struct lim_item *it, int64_t now)
{
	char sv[SCOPE_MAX];

	memset(it, 0, sizeof(*it));
	it->def = *d;
	it->cost = item_cost(q, d);
	it->sc_tenant = q->tenant_id;
	it->sc_key = q->key_id;
	it->sc_model = q->model_id;
	scope_value(q, d, sv, sizeof(sv));
	if (d->p.algo == LIM_PERIOD_DAY || d->p.algo == LIM_PERIOD_MONTH)
		snprintf(it->key, sizeof(it->key), "%lld:%llx:%s:p%lld", (long long)d->id,
			 (unsigned long long)d->version, sv,
			 (long long)(lim_period_start(d->p.algo, now) / LIM_US_PER_S));
	else
		snprintf(it->key, sizeof(it->key), "%lld:%llx:%s", (long long)d->id,
			 (unsigned long long)d->version, sv);
}

/* ---- the verdict --------------------------------------------------------------------- */

static int is_money_or_quota(const struct lim_def *d)
{
	return d->dim == LD_QUOTA || d->dim == LD_BUDGET;
}

/* x-ratelimit-*: for requests and for tokens, the applied limit with the least left. */
static void set_headers(struct lim_req *q)
{
	struct pl_verdict *v = &q->ctx->out;
	int best[2] = { -1, -1 };

	for (size_t i = 0; i < q->n; i++) {
		const struct lim_item *it = &q->items[i];
		int slot = it->def.dim == LD_REQUESTS ? 0 : it->def.dim == LD_TOKENS ? 1 : -1;
		if (slot < 0 && it->def.dim == LD_QUOTA)
			slot = 1;
		if (slot < 0)
			continue;
		if (slot == 1 && best[1] >= 0 && q->items[best[1]].def.dim == LD_TOKENS &&
		    it->def.dim == LD_QUOTA)
			continue; /* a tokens-per-window limit is what the header means */
		if (best[slot] < 0 || it->res.remaining < q->items[best[slot]].res.remaining ||
		    (slot == 1 && q->items[best[slot]].def.dim == LD_QUOTA && it->def.dim == LD_TOKENS))
			best[slot] = (int)i;
	}
	for (int s = 0; s < 2; s++) {
		if (best[s] < 0)
			continue;
		v->rl[s].limit = q->items[best[s]].res.limit;
		v->rl[s].remaining = q->items[best[s]].res.remaining;
		v->rl[s].reset_ms = (q->items[best[s]].res.reset_us + 999) / 1000;
	}
}

static void fmt_window(char *buf, size_t cap, const struct lim_def *d)
{
	int64_t ms = d->p.window_us / 1000;

	if (d->p.algo == LIM_PERIOD_DAY || d->p.algo == LIM_PERIOD_MONTH)
		snprintf(buf, cap, "per %s", d->p.algo == LIM_PERIOD_DAY ? "day" : "month");
	else if (lim_is_concurrency(d->p.algo))
		snprintf(buf, cap, "in flight");
	else if (ms % 60000 == 0)
		snprintf(buf, cap, "per %lld min", (long long)(ms / 60000));
	else if (ms % 1000 == 0)
		snprintf(buf, cap, "per %lld s", (long long)(ms / 1000));
	else
		snprintf(buf, cap, "per %lld ms", (long long)ms);
}

static enum pl_result refuse(struct lim_req *q)
{
	struct pl_ctx *ctx = q->ctx;
	const struct lim_item *why = NULL;
	int64_t retry = 0;
	char win[32];

	for (size_t i = 0; i < q->n; i++) {
		const struct lim_item *it = &q->items[i];
		if (it->res.admit)
			continue;
		/* A quota or budget refusal is the one to report: retrying soon will not help. */
		if (!why || (is_money_or_quota(&it->def) && !is_money_or_quota(&why->def)))
			why = it;
		if (it->res.retry_us > retry)
			retry = it->res.retry_us;
	}
	/* The router's slot on the chosen server goes back when the decision ends. */
	ctx->out.backend[0] = ctx->out.upstream_model[0] = ctx->out.server[0] = '\0';
	if (!why) /* the fleet refused without saying which: cannot happen with our script */
		why = &q->items[0];
	fmt_window(win, sizeof(win), &why->def);
	if (observer && observer->refused)
		observer->refused(ctx->out.tenant, ctx->out.model, (int)why->def.scope,
				  lim_scope_name(why->def.scope), (int)why->def.dim, lim_dim_name(why->def.dim));
	if (is_money_or_quota(&why->def)) {
		bump(&st.refused_quota);
		pl_deny(ctx, 429, PL_R_QUOTA_EXCEEDED, "insufficient_quota", "insufficient_quota", NULL,
			"You exceeded your current %s (%s, %s scope): the limit is %lld%s %s. It "
			"renews at the start of the next %s (UTC).",
			why->def.dim == LD_BUDGET ? "budget" : "token quota", lim_dim_name(why->def.dim),
			lim_scope_name(why->def.scope),
			(long long)(why->def.dim == LD_BUDGET ? why->res.limit / 1000000 : why->res.limit),
			why->def.dim == LD_BUDGET ? " (currency units)" : " tokens", win,
			why->def.p.algo == LIM_PERIOD_DAY ? "day" : "month");
	} else {
		bump(&st.refused_rate);
		if (why->res.retry_us == 0 && !lim_is_concurrency(why->def.p.algo))
			pl_deny(ctx, 429, PL_R_RATE_LIMITED, "rate_limit_error", "rate_limit_exceeded",
				NULL, "This request needs %lld %s but the %s limit allows %lld %s: it can "
				"never be admitted. Reduce max_tokens or the prompt.",
				(long long)why->cost, lim_dim_name(why->def.dim), lim_scope_name(why->def.scope),
				(long long)why->res.limit, win);
		else
			pl_deny(ctx, 429, PL_R_RATE_LIMITED, "rate_limit_error", "rate_limit_exceeded",
				NULL, "Rate limit reached for %s (%s scope): limit %lld %s. Please try again "
				"in %.3gs.", lim_dim_name(why->def.dim), lim_scope_name(why->def.scope),
				(long long)why->res.limit, win, (double)(retry > 0 ? retry : LIM_US_PER_S) / 1e6);
	}
	ctx->out.retry_after = (int)((retry + LIM_US_PER_S - 1) / LIM_US_PER_S);
	if (ctx->out.retry_after < 1)
		ctx->out.retry_after = 1;
	return PL_DONE;
}

/* Keeps what the end of the request must settle. */
static void reserve(struct lim_req *q)
{
	struct resv *r;
	size_t k = 0;

	if (!q->id[0] || !rv_init) {
		bump(&st.untracked); /* no request id (or not started): no report can settle it */
		return;
	}
	r = xcalloc(1, sizeof(*r));
	snprintf(r->id, sizeof(r->id), "%s", q->id);
	r->tenant_id = q->tenant_id;
	r->key_id = q->key_id;
	r->model_id = q->model_id;
	r->price_in = q->price_in;
	r->price_out = q->price_out;
	r->hit_factor = q->hit_factor;
	r->est_prompt = q->est_prompt;
	r->est_completion = q->est_completion;
	/* A realtime session is metered like a stream: its usage comes in the adapter's line. */
	r->stream = q->ctx->in.stream || q->ctx->service == PL_SVC_REALTIME;
	snprintf(r->tenant, sizeof(r->tenant), "%s", q->ctx->out.tenant);
	snprintf(r->model, sizeof(r->model), "%s", q->ctx->out.model);
	if (q->ctx->end_user[0]) /* a verified token's subject wins over a request header */
		usage_user_clean(r->user, q->ctx->end_user, strlen(q->ctx->end_user));
	else
		usage_user_clean(r->user, q->ctx->in.user.ptr, q->ctx->in.user.ptr ? q->ctx->in.user.len : 0);
	if (q->ctx->end_user[0])
		snprintf(r->issuer, sizeof(r->issuer), "%s", q->ctx->issuer);
	r->expires_us = now_us() + (int64_t)atomic_load(&s_lease_ms) * 1000;
	for (size_t i = 0; i < q->n; i++)
		if (q->items[i].def.dim != LD_REQUESTS)
			k++;
	if (k) {
		r->items = xcalloc(k, sizeof(*r->items));
		for (size_t i = 0; i < q->n; i++)
			if (q->items[i].def.dim != LD_REQUESTS)
				r->items[r->n++] = q->items[i];
	}
	rv_insert(r);
}

static enum pl_result conclude(struct lim_req *q, int admitted)
{
	enum pl_result res = PL_NEXT;

	set_headers(q);
	if (!admitted) {
		res = refuse(q);
	} else {
		bump(&st.admitted);
		reserve(q);
	}
	free(q);
	return res;
}

/* ---- local and fleet evaluation -------------------------------------------------------- */

static int admit_local(struct lim_item *items, size_t n, int64_t divisor)
{
	return lim_local_admit(items, n, now_us(), divisor);
}

static void fleet_done(void *arg, int admitted)
{
	struct lim_req *q = arg;
	struct pl_ctx *ctx = q->ctx;
	size_t nlocal = q->n - (size_t)q->remote_n;

	if (admitted < 0) {
		/* Redis failed or was too slow: the remote part is decided here instead. */
		bump(&st.fallback_decisions);
		admitted = admit_local(q->items, (size_t)q->remote_n, local_divisor());
	} else {
		bump(&st.fleet_decisions);
	}
	if (!admitted && q->local_charged)
		lim_local_undo(q->items + q->remote_n, nlocal, now_us(), local_divisor());
	if (ctx->abandoned && admitted) {
		/* The deadline answered already (with the error verdict): nothing will run. */
		lim_local_undo(q->items + q->remote_n, nlocal, now_us(), local_divisor());
		admitted = 0;
	}
	if (ctx->abandoned) {
		/* The deadline's verdict went out (and settled the router's slot). */
		free(q);
		pl_resume(ctx, PL_DONE);
		return;
	}
	pl_resume(ctx, conclude(q, admitted));
}

static int remote_first(const void *a, const void *b)
{
	int ra = remote_algo(((const struct lim_item *)a)->def.p.algo);
	int rb = remote_algo(((const struct lim_item *)b)->def.p.algo);

	return rb - ra;
}

/* Resolves the model's id and prices and selects the applicable definitions. */
static void select_limits(struct lim_req *q, struct lim_def *defs, size_t *n)
{
	const struct state *s = store_read_begin();
	const struct st_model *m = state_find_model(s, q->ctx->out.model, strlen(q->ctx->out.model));
	const struct st_cache *cp;

	q->model_id = m ? m->id : 0;
	q->price_in = m ? m->price_in : -1;
	q->price_out = m ? m->price_out : -1;
	cp = m ? adapter_find_cache(state_adapter(s), q->tenant_id, m->id) : NULL;
	q->hit_factor = cp ? cp->hit_price_factor : 1;
	*n = limdefs_select(state_limits(s), q->tenant_id, q->key_id, q->model_id, defs, LIM_MAX_PER_REQ);
	store_read_end();
}

static int has_period(const struct lim_req *q)
{
	for (size_t i = 0; i < q->n; i++)
		if (q->items[i].def.p.algo == LIM_PERIOD_DAY || q->items[i].def.p.algo == LIM_PERIOD_MONTH)
			return 1;
	return 0;
}

enum pl_result pl_stage_limits(struct pl_ctx *ctx)
{
	struct lim_req *q;
	struct lim_def defs[LIM_MAX_PER_REQ];
	size_t n = 0;
	int64_t now = now_us();
	size_t nlocal;

	if (!ctx->out.allow || !ctx->out.backend[0])
		return PL_NEXT; /* nothing admitted by the earlier stages: nothing to limit */
	q = xcalloc(1, sizeof(*q));
	q->ctx = ctx;
	q->tenant_id = ctx->tenant_id;
	q->key_id = ctx->key_id;
	if (ctx->in.request_id.ptr && ctx->in.request_id.len && ctx->in.request_id.len < ID_MAX) {
		memcpy(q->id, ctx->in.request_id.ptr, ctx->in.request_id.len);
		q->id[ctx->in.request_id.len] = '\0';
	}
	limits_estimate(ctx, &q->est_prompt, &q->est_completion);
	select_limits(q, defs, &n);
	for (size_t i = 0; i < n; i++)
		build_item(q, &defs[i], &q->items[i], now);
	q->n = n;
	if (lim_local_seed_pending() && has_period(q)) {
		/* Starting: this month's usage is not read yet; counting from zero could hand
		 * out a quota twice. Normally milliseconds after start. */
		free(q);
		pl_deny(ctx, 503, PL_R_NOT_READY, "server_error", "gateway_not_ready", NULL,
			"The gateway is starting and has not loaded the usage its quotas and budgets "
			"count from. Please retry.");
		ctx->out.retry_after = 1;
		ctx->out.backend[0] = ctx->out.server[0] = '\0';
		return PL_DONE;
	}
	if (n == 0 || !remote_on()) {
		bump(&st.local_decisions);
		return conclude(q, n == 0 || admit_local(q->items, n, local_divisor()));
	}
	/* Fleet: Redis' items first; warm-up and adaptive limits are per node. */
	qsort(q->items, n, sizeof(q->items[0]), remote_first);
	while ((size_t)q->remote_n < n && remote_algo(q->items[q->remote_n].def.p.algo))
		q->remote_n++;
	nlocal = n - (size_t)q->remote_n;
	if (nlocal) {
		if (!admit_local(q->items + q->remote_n, nlocal, local_divisor())) {
			bump(&st.local_decisions);
			return conclude(q, 0);
		}
		q->local_charged = 1;
	}
	if (q->remote_n == 0) {
		bump(&st.local_decisions);
		return conclude(q, 1);
	}
	if (remote->admit(ctx->base, q->items, (size_t)q->remote_n, q->id, fleet_done, q) < 0) {
		int ok;
		bump(&st.fallback_decisions);
		ok = admit_local(q->items, (size_t)q->remote_n, local_divisor());
		if (!ok && q->local_charged)
			lim_local_undo(q->items + q->remote_n, nlocal, now_us(), local_divisor());
		return conclude(q, ok);
	}
	return PL_PENDING;
}

/* ---- settling (control thread) ------------------------------------------------------ */

static int64_t utc_day(int64_t t_us)
{
	return lim_period_start(LIM_PERIOD_DAY, t_us) / LIM_US_PER_S;
}

/* A failure of the model server or the path to it: a status of 500 or more, or no
 * response, unless the client went away first. */
static int request_failed(const struct jr_report *rep)
{
	return (rep->status >= 500 || rep->status < 0) && !report_client_aborted(rep);
}

static int64_t utc_hour(int64_t t_us)
{
	int64_t s = t_us / LIM_US_PER_S;

	return s - s % 3600;
}

/* ---- the two stores -------------------------------------------------------------------- */

/* Where an admitted item's counter lives: this process (limit/local.c) or Redis for the
 * fleet (redis/fleet.c); lim_item.remote indexes `stores`. Each entry settles a batch of
 * its own items, in their order. */
struct lim_store {
	/* The request ended with these token deltas: rate and quota items are reconciled;
	 * concurrency items give their slot back unless `released` already did (then only a
	 * token part is left). */
	void (*settle)(struct lim_item *items, const int64_t *delta, size_t n, int released, int ok,
		       const char *id, int64_t now);
	/* The response ended: concurrency items (only) give their slot back now. */
	void (*release)(struct lim_item *items, size_t n, int ok, const char *id);
};

static void local_settle(struct lim_item *items, const int64_t *delta, size_t n, int released, int ok,
			 const char *id, int64_t now)
{
	(void)id;
	for (size_t i = 0; i < n; i++) {
		if (!lim_is_concurrency(items[i].def.p.algo))
			lim_local_adjust(&items[i], now, delta[i], local_divisor());
		else if (!released)
			lim_local_release(&items[i], ok, local_divisor());
	}
}

static void local_release(struct lim_item *items, size_t n, int ok, const char *id)
{
	(void)id;
	for (size_t i = 0; i < n; i++)
		lim_local_release(&items[i], ok, local_divisor());
}

static void fleet_settle_items(struct lim_item *items, const int64_t *delta, size_t n, int released,
			       int ok, const char *id, int64_t now)
{
	(void)ok;
	(void)now;
	for (size_t i = 0; released && i < n; i++)
		if (lim_is_concurrency(items[i].def.p.algo))
			items[i].def.dim = LD_REQUESTS; /* the slot went back already */
	remote->settle(items, delta, n, id);
}

static void fleet_release_items(struct lim_item *items, size_t n, int ok, const char *id)
{
	int64_t zero[LIM_MAX_PER_REQ] = { 0 };

	(void)ok;
	remote->settle(items, zero, n, id);
}

static const struct lim_store local_store = { local_settle, local_release };
static const struct lim_store fleet_store = { fleet_settle_items, fleet_release_items };
static const struct lim_store *const stores[2] = { &local_store, &fleet_store };

typedef int (*item_filter)(const struct lim_item *it);

/* Hands r's items that `keep` selects (NULL: all) to their store, one batch per store in
 * their order: settled with their deltas, or released when delta is NULL. */
static void each_store(const struct resv *r, const int64_t *delta, item_filter keep, int ok, int64_t now)
{
	struct lim_item part[LIM_MAX_PER_REQ];
	int64_t pd[LIM_MAX_PER_REQ];

	for (int k = 0; k < 2; k++) {
		size_t n = 0;
		for (size_t i = 0; i < r->n && i < LIM_MAX_PER_REQ; i++)
			if ((r->items[i].remote != 0) == k && (!keep || keep(&r->items[i]))) {
				part[n] = r->items[i];
				pd[n++] = delta ? delta[i] : 0;
			}
		if (n && delta)
			stores[k]->settle(part, pd, n, r->released, ok, r->id, now);
		else if (n)
			stores[k]->release(part, n, ok, r->id);
	}
}

static int is_concurrency_item(const struct lim_item *it)
{
	return lim_is_concurrency(it->def.p.algo);
}

/* Tells the access log, with HAProxy's line: the one being handled, or the copy kept
 * while waiting for the adapter. Without a line (a lease that expired, a reservation
 * pushed out, a stop) there is nothing to log. */
static void emit_ended(const struct resv *r, const struct usage_rec *u)
{
	struct jr_report copy;
	const struct jr_report *rep = r->rep;
	struct limits_ended e = { 1, u->prompt_tokens, u->completion_tokens, u->cost_micro,
				  u->estimated, r->user, r->issuer };

	if (!ended_fn)
		return;
	if (!rep && r->line && report_parse(r->line, r->line_len, &copy) == 0)
		rep = &copy;
	if (rep)
		ended_fn(rep, &e);
}

static void settle(struct resv *r, int64_t pt, int64_t ct, int estimated, int ok, int64_t now)
{
	int64_t delta[LIM_MAX_PER_REQ];
	int64_t actual = pt + ct, money = money_micro(pt, ct, r->price_in, r->price_out);
	struct usage_rec u;

	/* A response cache hit: the stored usage, priced with the tenant's hit factor. */
	if (r->cache_hit) {
		money = (int64_t)ceil((double)money * r->hit_factor);
		bump(&st.cache_hits);
	}

	for (size_t i = 0; i < r->n && i < LIM_MAX_PER_REQ; i++) {
		const struct lim_item *it = &r->items[i];
		delta[i] = it->def.dim == LD_BUDGET ? money - it->cost
			   : it->def.dim == LD_TOKENS || it->def.dim == LD_QUOTA ? actual - it->cost : 0;
	}
	each_store(r, delta, NULL, ok, now);
	memset(&u, 0, sizeof(u));
	u.day = utc_day(now);
	u.hour = utc_hour(now);
	u.user = r->user;
	u.user_len = strlen(r->user);
	u.failed = r->failed;
	u.tenant_id = r->tenant_id;
	u.key_id = r->key_id;
	u.model_id = r->model_id;
	u.prompt_tokens = pt;
	u.completion_tokens = ct;
	u.cost_micro = money;
	u.estimated = estimated;
	usage_add(&u);
	emit_ended(r, &u);
	if (observer && observer->settled)
		observer->settled(r->tenant, r->model, pt, ct, money, r->stream, estimated);
	if (estimated)
		bump(&st.estimated);
	bump(&st.settled);
}

/* ---- a batch's usage (objects/batches.h) ----------------------------------------------- */

/* The scopes a batch has: it names a tenant, a key and a model, and no client address,
 * end user, backend or server (a batch without a key stands for no key's counter). */
static int batch_scope(const struct lim_def *d, int64_t key_id)
{
	switch (d->scope) {
	case LS_TENANT:
	case LS_MODEL:
	case LS_TENANT_MODEL: return 1;
	case LS_KEY:
	case LS_USER: return key_id > 0; /* no end user: the key is one, as for a request */
	default: return 0;
	}
}

void limits_charge_batch(int64_t tenant_id, int64_t key_id, int64_t model_id, int64_t tokens,
			 int64_t cost_micro)
{
	struct lim_def defs[LIM_MAX_PER_REQ];
	int64_t delta[LIM_MAX_PER_REQ];
	struct lim_req *q;
	struct resv *r;
	size_t n;
	int64_t now = now_us();

	if (!rv_init || tokens < 0 || cost_micro < 0)
		return;
	n = limdefs_select(state_limits(store_read_begin()), tenant_id, key_id, model_id, defs, LIM_MAX_PER_REQ);
	store_read_end();
	q = xcalloc(1, sizeof(*q));
	q->ctx = xcalloc(1, sizeof(*q->ctx)); /* no client address, end user or backend */
	q->tenant_id = tenant_id;
	q->key_id = key_id;
	q->model_id = model_id;
	r = xcalloc(1, sizeof(*r));
	r->items = xcalloc(LIM_MAX_PER_REQ, sizeof(*r->items));
	r->released = 1;
	snprintf(r->id, sizeof(r->id), "batch");
	for (size_t i = 0; i < n; i++) {
		struct lim_item *it = &r->items[r->n];

		if (!is_money_or_quota(&defs[i]) || !batch_scope(&defs[i], key_id))
			continue;
		build_item(q, &defs[i], it, now);
		it->cost = 0; /* nothing reserved: the settlement's delta is the whole usage */
		it->remote = remote_on() && remote_algo(it->def.p.algo) && remote->usable();
		delta[r->n++] = defs[i].dim == LD_BUDGET ? cost_micro : tokens;
	}
	if (r->n) {
		each_store(r, delta, NULL, 1, now);
		bump(&st.batches_charged);
	}
	free(r->items);
	free(r);
	free(q->ctx);
	free(q);
}

/* Returns the concurrency slots at once (the response has ended), tokens later. */
static void release_slots(struct resv *r, int ok)
{
	each_store(r, NULL, is_concurrency_item, ok, 0);
	r->released = 1;
}

/* An upstream outcome counts against adaptive limits when it was slow or a server error. */
static int outcome_ok(const struct jr_report *rep, const struct resv *r)
{
	int64_t target = 0;

	for (size_t i = 0; i < r->n; i++)
		if (r->items[i].def.p.algo == LIM_ADAPTIVE)
			target = r->items[i].def.p.latency_target_us / 1000;
	if (rep->status >= 500 || rep->status < 0)
		return 0;
	if (rep->status == 101) /* a realtime session: its length is the client's, not latency */
		return 1;
	if (target > 0 && rep->ta_ms > target)
		return 0;
	return 1;
}

/* ---- accounting carried by the request (limits_acct) ------------------------------- */

const char *limits_process_tag(void)
{
	return process_tag;
}

int limits_acct(const struct pl_ctx *ctx, char *buf, size_t cap)
{
	const struct st_model *m;
	int64_t ep, ec, model_id = 0;
	int n;

	if (!ctx->out.allow || ctx->out.respond || !ctx->out.backend[0] || !ctx->in.request_id.len)
		return 0;
	limits_estimate(ctx, &ep, &ec);
	m = state_find_model(store_read_begin(), ctx->out.model, strlen(ctx->out.model));
	if (m)
		model_id = m->id;
	store_read_end();
	n = snprintf(buf, cap, "%s.%lld.%lld.%lld.%lld.%lld", process_tag, (long long)ctx->tenant_id,
		     (long long)ctx->key_id, (long long)model_id, (long long)ep, (long long)ec);
	return n > 0 && (size_t)n < cap ? n : 0;
}

/* A line of this agent that no reservation here matches, decided by another process of
 * this agent (the one before a restart): its acct field bills it, as settle() would
 * have, at the model's current prices. Lines decided by this process whose reservation
 * is gone (expired, pushed out) were billed then and are not billed again. */
static int bill_from_line(const struct jr_report *rep, int64_t now, struct usage_rec *out)
{
	size_t len = 0;
	const char *a = report_get(rep, "acct", &len);
	char buf[LIMITS_ACCT_MAX], tag[9];
	long long tid, kid, mid, ep, ec;
	int64_t pt = report_get_int(rep, "pt", -1), ct = report_get_int(rep, "ct", -1);
	double pin = -1, pout = -1;
	const struct st_model *m;
	struct usage_rec u;

	if (!a || len >= sizeof(buf))
		return 0;
	memcpy(buf, a, len);
	buf[len] = '\0';
	if (sscanf(buf, "%8[0-9a-f].%lld.%lld.%lld.%lld.%lld", tag, &tid, &kid, &mid, &ep, &ec) != 6 ||
	    strcmp(tag, process_tag) == 0)
		return 0;
	memset(&u, 0, sizeof(u));
	if (pt >= 0) {
		u.prompt_tokens = pt;
		u.completion_tokens = ct >= 0 ? ct : 0;
		u.estimated = report_get_int(rep, "est", 0) != 0;
	} else if (rep->status >= 200 && rep->status < 300) {
		u.prompt_tokens = ep;
		u.completion_tokens = ec;
		u.estimated = 1;
	}
	if ((m = state_find_model_id(store_read_begin(), mid))) {
		pin = m->price_in;
		pout = m->price_out;
	}
	store_read_end();
	u.day = utc_day(now);
	u.hour = utc_hour(now);
	u.failed = request_failed(rep);
	u.tenant_id = tid;
	u.key_id = kid;
	u.model_id = mid;
	u.cost_micro = money_micro(u.prompt_tokens, u.completion_tokens, pin, pout);
	usage_add(&u);
	if (u.estimated)
		bump(&st.estimated);
	bump(&st.billed_from_line);
	*out = u;
	return 1;
}

/* A line without a reservation here: billed from its acct field when another process of
 * this agent decided it, and told to the access log either way. */
static void tell_unreserved(const struct jr_report *rep, int64_t now)
{
	struct usage_rec u;
	struct limits_ended e = { 0, 0, 0, 0, 0, "", "" };

	if (bill_from_line(rep, now, &u)) {
		e.billed = 1;
		e.prompt_tokens = u.prompt_tokens;
		e.completion_tokens = u.completion_tokens;
		e.cost_micro = u.cost_micro;
		e.estimated = u.estimated;
	}
	if (ended_fn)
		ended_fn(rep, &e);
}

/* The reservation of request id (rv_mu held). A line saying the answer came from the
 * response cache marks it: a hit is priced with the tenant's factor. */
static struct resv *find_locked(const char *id, const struct jr_report *rep)
{
	struct resv *r = hmap_find(&rv_map, rv_hash(id), rv_eq, id);

	if (r && report_is(rep, "cache", "hit"))
		r->cache_hit = 1;
	return r;
}

static void on_report(const struct jr_report *rep, void *arg)
{
	char id[ID_MAX];
	size_t len = 0;
	const char *v = report_get(rep, "id", &len);
	struct resv *r;
	int64_t now = now_us(), pt, ct;

	(void)arg;
	if (!v || len == 0 || len >= sizeof(id))
		return;
	memcpy(id, v, len);
	id[len] = '\0';
	pt = report_get_int(rep, "pt", -1);
	ct = report_get_int(rep, "ct", -1);
	/* The rewrite detour's line: the main frontend reports the request; this one only
	 * carries the usage its Lua filter read from a direct stream, if any. */
	if (report_get(rep, "hop", NULL) && pt < 0)
		return;
	if (rep->adapter || report_get(rep, "hop", NULL)) {
		/* The usage of a streamed response (the adapter's line, or the detour's):
		 * may come before or after HAProxy's line. */
		pthread_mutex_lock(&rv_mu);
		r = find_locked(id, rep);
		if (r && pt >= 0) {
			r->have_usage = 1;
			r->pt = pt;
			r->ct = ct >= 0 ? ct : 0;
			r->usage_estimated = report_get_int(rep, "est", 0) != 0;
			if (r->wait_until_us) {
				rv_unlink(r);
				pthread_mutex_unlock(&rv_mu);
				settle(r, r->pt, r->ct, r->usage_estimated, 1, now);
				rv_free(r);
				return;
			}
		}
		pthread_mutex_unlock(&rv_mu);
		if (!r)
			bump(&st.unknown_reports);
		return;
	}
	pthread_mutex_lock(&rv_mu);
	r = find_locked(id, rep);
	if (r && pt < 0 && !r->have_usage && r->stream &&
	    ((rep->status >= 200 && rep->status < 300) || rep->status == 101) &&
	    atomic_load(&s_usage_wait_ms) > 0) {
		/* A stream without usage in HAProxy's line: the adapter may still report it.
		 * The slots go back now; the tokens are settled by the adapter's line or, at
		 * the deadline, as estimated. */
		r->wait_until_us = now + (int64_t)atomic_load(&s_usage_wait_ms) * 1000;
		if (ended_fn) { /* the access log needs the line when the usage comes */
			r->line = xmalloc(rep->len ? rep->len : 1);
			memcpy(r->line, rep->line, rep->len);
			r->line_len = rep->len;
		}
		release_slots(r, outcome_ok(rep, r)); /* under the lock: r stays in the table */
		pthread_mutex_unlock(&rv_mu);
		return;
	}
	if (r)
		rv_unlink(r);
	pthread_mutex_unlock(&rv_mu);
	if (!r) {
		/* refused, answered by the gateway (no acct), or decided by another process */
		tell_unreserved(rep, now);
		return;
	}
	r->failed = request_failed(rep);
	r->rep = rep;
	if (pt >= 0)
		settle(r, pt, ct >= 0 ? ct : 0, report_get_int(rep, "est", 0) != 0, outcome_ok(rep, r), now);
	else if (r->have_usage)
		settle(r, r->pt, r->ct, r->usage_estimated, outcome_ok(rep, r), now);
	else if (rep->status < 200 || rep->status >= 300)
		settle(r, 0, 0, 0, outcome_ok(rep, r), now); /* no answer or an error: nothing used */
	else
		settle(r, r->est_prompt, r->est_completion, 1, outcome_ok(rep, r), now);
	rv_free(r);
}

/* ---- timers ------------------------------------------------------------------------------- */

static struct event *tick_ev;
static int64_t last_sweep_us;

/* Expired leases and streams whose adapter report did not come: settled as estimated. */
static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	int64_t now = now_us();
	struct resv *due[256];
	size_t n = 0;

	(void)fd;
	(void)what;
	(void)arg;
	pthread_mutex_lock(&rv_mu);
	while (rv_evicted && n < sizeof(due) / sizeof(due[0])) {
		due[n++] = rv_evicted;
		rv_evicted = rv_evicted->next;
	}
	for (struct resv *r = rv_head, *next; r && n < sizeof(due) / sizeof(due[0]); r = next) {
		next = r->next;
		if ((r->wait_until_us && now >= r->wait_until_us) || now >= r->expires_us) {
			if (now >= r->expires_us && !r->wait_until_us)
				bump(&st.expired);
			rv_unlink(r);
			due[n++] = r;
		}
	}
	pthread_mutex_unlock(&rv_mu);
	for (size_t i = 0; i < n; i++)
		settle_estimated(due[i], now);
	if (now - last_sweep_us > 10 * LIM_US_PER_S) {
		lim_local_sweep(now);
		last_sweep_us = now;
	}
}

/* This month's usage: the local counters, then the observer. */
static void seed_rows(const struct usage_seed_row *rows, size_t n)
{
	lim_local_seed(rows, n);
	if (observer && observer->seeded)
		observer->seeded(rows, n);
}

int limits_start(struct event_base *control, const struct jr_config *cfg)
{
	struct timeval tv = { 0, TICK_MS * 1000 };

	pthread_mutex_lock(&rv_mu);
	if (!rv_init) {
		hmap_init(&rv_map);
		rv_init = 1;
	}
	s_max_inflight = cfg->limits_max_inflight;
	pthread_mutex_unlock(&rv_mu);
	{
		unsigned char rnd[4] = { 0 };
		if (RAND_bytes(rnd, sizeof(rnd)) != 1)
			memset(rnd, 0, sizeof(rnd));
		snprintf(process_tag, sizeof(process_tag), "%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);
	}
	lim_local_init(cfg->limits_max_states);
	limits_configure(cfg);
	/* Without Redis, quota and budget counters live here: they start from what
	 * PostgreSQL recorded this month, so a restart does not reset them. */
	if (!remote_on() && cfg->database[0]) {
		lim_local_seed_expect();
		usage_set_seed(seed_rows);
	}
	if (report_subscribe(on_report, NULL) < 0)
		return -1;
	tick_ev = event_new(control, -1, EV_PERSIST, tick_cb, NULL);
	event_add(tick_ev, &tv);
	if (!cfg->report_listen[0])
		log_event(LOG_WARN, "limits_no_report_stream", LOG_NO_FIELDS,
			  "limits: no report_listen: concurrency slots and token reservations are "
			  "settled only when their lease expires (limits_lease_ms)");
	return remote ? remote->start(control) : 0;
}

void limits_worker_exit(void *arg)
{
	if (remote)
		remote->worker_exit(arg);
}

int limits_ready(void)
{
	return !lim_local_seed_pending();
}

size_t limits_reservations(void)
{
	size_t n;

	pthread_mutex_lock(&rv_mu);
	n = rv_count;
	pthread_mutex_unlock(&rv_mu);
	return n;
}

void limits_stop(int handed_over)
{
	int64_t now = now_us();
	struct resv *r;
	size_t left = 0;

	if (tick_ev) {
		event_free(tick_ev);
		tick_ev = NULL;
	}
	for (;;) {
		int evicted = 0;
		pthread_mutex_lock(&rv_mu);
		if ((r = rv_evicted)) {
			rv_evicted = r->next;
			evicted = 1;
		} else if ((r = rv_head)) {
			rv_unlink(r);
		}
		pthread_mutex_unlock(&rv_mu);
		if (!r)
			break;
		if (handed_over && !evicted) {
			left++;
			rv_free(r);
		} else {
			settle_estimated(r, now);
		}
	}
	if (left) {
		atomic_fetch_add(&st.handed_over, left);
		log_event(LOG_INFO, "limits_handover_inflight",
			  LOG_FIELDS(LOG_I("inflight", left)),
			  "limits: %zu request(s) still in flight; "
			  "their report lines bill them when "
			  "the next process of this agent reads them", left);
	}
	if (remote)
		remote->stop();
	pthread_mutex_lock(&rv_mu);
	if (rv_init) {
		hmap_clear(&rv_map);
		rv_init = 0;
	}
	pthread_mutex_unlock(&rv_mu);
	lim_local_destroy();
}

void limits_render_metrics(struct evbuffer *out, void *arg)
{
	struct lim_local_stats ls;
	size_t inflight;

	(void)arg;
	lim_local_stats(&ls);
	pthread_mutex_lock(&rv_mu);
	inflight = rv_count;
	pthread_mutex_unlock(&rv_mu);
#define C(name, help, v)                                                                      \
	evbuffer_add_printf(out, "# HELP jairouter_" name " " help "\n# TYPE jairouter_" name      \
				 " counter\njairouter_" name " %" PRIu64 "\n", (uint64_t)(v))
#define G(name, help, v)                                                                      \
	evbuffer_add_printf(out, "# HELP jairouter_" name " " help "\n# TYPE jairouter_" name      \
				 " gauge\njairouter_" name " %" PRIu64 "\n", (uint64_t)(v))
	C("limit_admitted_total", "Requests admitted by the limits stage.", atomic_load(&st.admitted));
	evbuffer_add_printf(out, "# HELP jairouter_limit_refused_total Requests refused with 429.\n"
			    "# TYPE jairouter_limit_refused_total counter\n"
			    "jairouter_limit_refused_total{kind=\"rate\"} %" PRIu64 "\n"
			    "jairouter_limit_refused_total{kind=\"quota\"} %" PRIu64 "\n",
			    (uint64_t)atomic_load(&st.refused_rate), (uint64_t)atomic_load(&st.refused_quota));
	evbuffer_add_printf(out, "# HELP jairouter_limit_decisions_total Limit decisions by where they were made.\n"
			    "# TYPE jairouter_limit_decisions_total counter\n"
			    "jairouter_limit_decisions_total{where=\"local\"} %" PRIu64 "\n"
			    "jairouter_limit_decisions_total{where=\"fleet\"} %" PRIu64 "\n"
			    "jairouter_limit_decisions_total{where=\"fallback\"} %" PRIu64 "\n",
			    (uint64_t)atomic_load(&st.local_decisions), (uint64_t)atomic_load(&st.fleet_decisions),
			    (uint64_t)atomic_load(&st.fallback_decisions));
	G("limit_reservations", "Requests in flight holding a reservation.", inflight);
	C("limit_reservations_evicted_total", "Reservations settled early because the table was full.",
	  atomic_load(&st.evicted));
	C("limit_reservations_expired_total", "Reservations whose report never came (lease expired).",
	  atomic_load(&st.expired));
	C("limit_untracked_total", "Admitted requests without a request id (not settled).",
	  atomic_load(&st.untracked));
	C("limit_settled_total", "Reservations settled.", atomic_load(&st.settled));
	C("limit_batches_charged_total", "Completed batches charged to quota and budget counters.",
	  atomic_load(&st.batches_charged));
	C("limit_estimated_total", "Requests billed with estimated usage.", atomic_load(&st.estimated));
	C("limit_unknown_reports_total", "Adapter usage lines for no known reservation.",
	  atomic_load(&st.unknown_reports));
	C("limit_billed_from_line_total", "Requests decided by an earlier process of this agent, billed from their report line.",
	  atomic_load(&st.billed_from_line));
	C("limit_cache_hits_total", "Requests answered from the response cache, billed with the hit price factor.",
	  atomic_load(&st.cache_hits));
	C("limit_handed_over_total", "Requests in flight at a graceful stop, left to their report line.",
	  atomic_load(&st.handed_over));
	G("limit_local_counters", "Local limit counters.", ls.states);
	C("limit_overflow_total", "Counters shared because the local table was full.", ls.overflow);
	G("limit_fleet_fallback", "1 while Redis is configured but unusable (local limits / fleet_size).",
	  remote_on() && !remote->usable());
#undef C
#undef G
	if (remote)
		remote->render_metrics(out);
}
