#include "redis/fleet.h"

#include "redis/scripts.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETRY_US 1000000LL   /* reconnect and retry after a failure at most this often */
#define ARG_FIELD 32         /* one numeric argument */
#define KEY_PREFIX "jr:"

/* One connection on one event loop (a worker's, or the control thread's). */
struct rconn {
	redisAsyncContext *ac;
	struct event_base *base;
	int up;
	int64_t retry_at_us;
};

static pthread_mutex_t cfg_mu = PTHREAD_MUTEX_INITIALIZER;
static char r_host[256];
static int r_port;
static _Atomic int r_configured;
static _Atomic unsigned r_timeout_ms = 25, r_lease_ms = 660000;
static char sha_admit[41], sha_settle[41];

static _Atomic int64_t fail_until_us;
static _Atomic int in_fallback;
static _Atomic int conns_up;
static struct {
	_Atomic uint64_t admits, errors, timeouts, late, settles, settle_lost, connects, disconnects;
} st;

static __thread struct rconn *w_conn; /* this worker's */
static struct rconn ctl_conn;         /* the control thread's */
static struct event_base *ctl_base;
static struct event *ctl_tick; /* reconnects and pings Redis every second */

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void bump(_Atomic uint64_t *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

int fleet_algo_supported(enum lim_algo a)
{
	return a == LIM_TOKEN_BUCKET || a == LIM_LEAKY_BUCKET || a == LIM_SLIDING_WINDOW ||
	       a == LIM_CONCURRENCY || a == LIM_PERIOD_DAY || a == LIM_PERIOD_MONTH;
}

int fleet_configured(void)
{
	return atomic_load(&r_configured);
}

int fleet_usable(void)
{
	return fleet_configured() && now_us() >= atomic_load(&fail_until_us) && atomic_load(&conns_up) > 0;
}

static void sha1_hex(const char *s, char out[41])
{
	unsigned char d[SHA_DIGEST_LENGTH];

	SHA1((const unsigned char *)s, strlen(s), d);
	for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

void fleet_configure(const char *addr, unsigned timeout_ms, unsigned lease_ms)
{
	const char *colon = addr ? strrchr(addr, ':') : NULL;

	atomic_store(&r_timeout_ms, timeout_ms ? timeout_ms : 25);
	atomic_store(&r_lease_ms, lease_ms);
	if (atomic_load(&r_configured))
		return; /* the address applies at restart (config: restart-only) */
	if (!addr || !addr[0] || !colon || colon == addr || (size_t)(colon - addr) >= sizeof(r_host))
		return;
	pthread_mutex_lock(&cfg_mu);
	memcpy(r_host, addr, (size_t)(colon - addr));
	r_host[colon - addr] = '\0';
	r_port = atoi(colon + 1);
	sha1_hex(FLEET_ADMIT_LUA, sha_admit);
	sha1_hex(FLEET_SETTLE_LUA, sha_settle);
	pthread_mutex_unlock(&cfg_mu);
	if (r_port > 0 && r_port < 65536)
		atomic_store(&r_configured, 1);
	else
		log_event(LOG_ERROR, "limits_redis_bad_address", LOG_FIELDS(LOG_S("addr", addr)),
			  "limits: redis = %s: expected host:port; limits stay per node", addr);
}

/* A failure: local limits (amounts / fleet_size) for the next second. */
static void mark_failure(const char *why)
{
	atomic_store(&fail_until_us, now_us() + RETRY_US);
	if (!atomic_exchange(&in_fallback, 1))
		log_event(LOG_WARN, "redis_down", LOG_FIELDS(LOG_S("why", why)),
			  "limits: Redis %s: enforcing limits locally (each amount divided by "
			  "fleet_size) until it answers again", why);
}

static void mark_success(void)
{
	if (atomic_load(&in_fallback) && now_us() >= atomic_load(&fail_until_us) &&
	    atomic_exchange(&in_fallback, 0))
		log_event(LOG_INFO, "redis_up", LOG_NO_FIELDS,
			  "limits: Redis answers again: fleet-wide limits restored");
}

/* ---- connections --------------------------------------------------------------------- */

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct rconn *rc = ac->data;

	if (status != REDIS_OK) {
		/* hiredis frees the context after this callback */
		rc->ac = NULL;
		rc->retry_at_us = now_us() + RETRY_US;
		mark_failure("is unreachable");
		return;
	}
	rc->up = 1;
	atomic_fetch_add(&conns_up, 1);
	bump(&st.connects);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct rconn *rc = ac->data;

	(void)status;
	if (rc->up) {
		rc->up = 0;
		atomic_fetch_sub(&conns_up, 1);
	}
	rc->ac = NULL;
	rc->retry_at_us = now_us() + RETRY_US;
	bump(&st.disconnects);
	if (status != REDIS_OK)
		mark_failure("closed the connection");
}

static void script_loaded(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;

	(void)ac;
	(void)priv;
	if (reply && reply->type == REDIS_REPLY_ERROR)
		log_event(LOG_ERROR, "limits_redis_script_refused",
			  LOG_FIELDS(LOG_S("error", reply->str)),
			  "limits: Redis refused a script: %s", reply->str);
}

/* Starts connecting when down and the retry time has come. Returns whether commands can
 * be queued now (connected, or connecting: hiredis sends them once connected). */
static int rconn_ensure(struct rconn *rc)
{
	if (rc->ac)
		return 1;
	if (now_us() < rc->retry_at_us)
		return 0;
	rc->ac = redisAsyncConnect(r_host, r_port);
	if (!rc->ac || rc->ac->err) {
		if (rc->ac)
			redisAsyncFree(rc->ac);
		rc->ac = NULL;
		rc->retry_at_us = now_us() + RETRY_US;
		mark_failure("is unreachable");
		return 0;
	}
	rc->ac->data = rc;
	redisLibeventAttach(rc->ac, rc->base);
	redisAsyncSetConnectCallback(rc->ac, on_connect);
	redisAsyncSetDisconnectCallback(rc->ac, on_disconnect);
	/* Every new connection loads the scripts first (a restarted Redis has none);
	 * commands on one connection run in order, so EVALSHA after this finds them. */
	redisAsyncCommand(rc->ac, script_loaded, NULL, "SCRIPT LOAD %s", FLEET_ADMIT_LUA);
	redisAsyncCommand(rc->ac, script_loaded, NULL, "SCRIPT LOAD %s", FLEET_SETTLE_LUA);
	return 1;
}

static void rconn_close(struct rconn *rc)
{
	if (rc->ac) {
		redisAsyncContext *ac = rc->ac;
		rc->ac = NULL;
		if (rc->up) {
			rc->up = 0;
			atomic_fetch_sub(&conns_up, 1);
		}
		redisAsyncFree(ac); /* pending callbacks run with a NULL reply; then on_disconnect */
	}
}

/* ---- arguments ------------------------------------------------------------------------ */

struct argv {
	const char **v;
	size_t *len;
	char *buf;
	int n, cap;
	size_t used, bufcap;
};

static void argv_init(struct argv *a, int cap, size_t bufcap)
{
	a->v = xcalloc((size_t)cap, sizeof(*a->v));
	a->len = xcalloc((size_t)cap, sizeof(*a->len));
	a->buf = xmalloc(bufcap);
	a->n = 0;
	a->cap = cap;
	a->used = 0;
	a->bufcap = bufcap;
}

static void argv_free(struct argv *a)
{
	free(a->v);
	free(a->len);
	free(a->buf);
}

static void argv_add(struct argv *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void argv_add(struct argv *a, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (a->n >= a->cap || a->used >= a->bufcap)
		return;
	va_start(ap, fmt);
	n = vsnprintf(a->buf + a->used, a->bufcap - a->used, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= a->bufcap - a->used)
		return;
	/* Pointers are fixed up at the end (the buffer does not move: sized up front). */
	a->v[a->n] = a->buf + a->used;
	a->len[a->n++] = (size_t)n;
	a->used += (size_t)n + 1;
}

/* How long a counter key must outlive its last use. */
static int64_t key_ttl_ms(const struct lim_params *p)
{
	int64_t win_ms = p->window_us / 1000, cap = p->burst > 0 ? p->burst : p->amount;
	int64_t refill = p->amount > 0 ? win_ms * (cap / p->amount + 1) : win_ms;

	return 2 * (refill > win_ms ? refill : win_ms) + 1000;
}

/* ---- admission (worker loop) -------------------------------------------------------- */

struct op {
	fleet_done_fn done;
	void *arg;
	struct lim_item *items; /* the caller's, until done ran */
	struct lim_item *copy;  /* ours, for undoing a late admission */
	size_t n;
	struct event *timer;
	struct rconn *rc;
	int finished;
	char id[64];
};

static void send_settle(struct rconn *rc, const struct lim_item *items, const int64_t *delta,
			size_t n, const char *id);

static void op_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct op *o = arg;

	(void)fd;
	(void)what;
	if (o->finished)
		return;
	o->finished = 1;
	bump(&st.timeouts);
	mark_failure("is too slow (redis_timeout_ms)");
	o->done(o->arg, -1);
}

static int parse_admit(const redisReply *r, struct lim_item *items, size_t n)
{
	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 1 + 5 * n)
		return -1;
	for (size_t i = 0; i < r->elements; i++)
		if (r->element[i]->type != REDIS_REPLY_INTEGER)
			return -1;
	for (size_t i = 0; i < n; i++) {
		struct lim_result *res = &items[i].res;
		res->admit = (int)r->element[1 + 5 * i]->integer;
		res->limit = r->element[2 + 5 * i]->integer;
		res->remaining = r->element[3 + 5 * i]->integer;
		res->reset_us = r->element[4 + 5 * i]->integer * 1000;
		res->retry_us = r->element[5 + 5 * i]->integer * 1000;
	}
	return r->element[0]->integer == 1;
}

static void op_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct op *o = priv;
	redisReply *r = reply;
	int admitted;

	(void)ac;
	if (r && r->type == REDIS_REPLY_ERROR) {
		log_event(LOG_WARN, "limits_redis_error", LOG_FIELDS(LOG_S("error", r->str)),
			  "limits: Redis error: %.200s", r->str);
	}
	if (o->finished) {
		/* Too late: the decision was made locally. Undo what Redis charged. */
		bump(&st.late);
		if (r && parse_admit(r, o->copy, o->n) == 1 && o->rc->ac) {
			int64_t delta[LIM_MAX_PER_REQ];
			for (size_t i = 0; i < o->n; i++)
				delta[i] = -o->copy[i].cost;
			send_settle(o->rc, o->copy, delta, o->n, o->id);
		}
	} else {
		o->finished = 1;
		admitted = parse_admit(r, o->items, o->n);
		if (admitted < 0) {
			bump(&st.errors);
			mark_failure(r ? "answered with an error" : "connection was lost");
		} else {
			bump(&st.admits);
			mark_success();
			for (size_t i = 0; i < o->n && admitted; i++)
				o->items[i].remote = 1;
		}
		o->done(o->arg, admitted);
	}
	event_free(o->timer);
	free(o->copy);
	free(o);
}

int fleet_admit(struct event_base *base, struct lim_item *items, size_t n, const char *request_id,
		fleet_done_fn done, void *arg)
{
	struct timeval tv;
	unsigned tmo = atomic_load(&r_timeout_ms);
	struct argv a;
	struct op *o;
	int64_t now = (int64_t)time(NULL);

	if (!fleet_configured() || !base || n == 0 || n > LIM_MAX_PER_REQ)
		return -1;
	if (!w_conn) {
		w_conn = xcalloc(1, sizeof(*w_conn));
		w_conn->base = base;
	}
	if (now_us() < atomic_load(&fail_until_us) && w_conn->up == 0)
		return -1;
	if (now_us() < atomic_load(&fail_until_us)) {
		/* In fallback: one request per second probes Redis for its return. */
		static __thread int64_t last_probe;
		if (now_us() - last_probe < RETRY_US)
			return -1;
		last_probe = now_us();
	}
	if (!rconn_ensure(w_conn))
		return -1;
	o = xcalloc(1, sizeof(*o));
	o->done = done;
	o->arg = arg;
	o->items = items;
	o->n = n;
	o->rc = w_conn;
	snprintf(o->id, sizeof(o->id), "%s", request_id && request_id[0] ? request_id : "-");
	argv_init(&a, 6 + (int)n * 8, 512 + n * (LIM_KEY_MAX + 8 * ARG_FIELD));
	argv_add(&a, "EVALSHA");
	argv_add(&a, "%s", sha_admit);
	argv_add(&a, "%zu", n);
	for (size_t i = 0; i < n; i++)
		argv_add(&a, KEY_PREFIX "%s", items[i].key);
	argv_add(&a, "%s", o->id);
	argv_add(&a, "%u", atomic_load(&r_lease_ms));
	argv_add(&a, "%zu", n);
	for (size_t i = 0; i < n; i++) {
		const struct lim_params *p = &items[i].def.p;
		int64_t pend = p->algo == LIM_PERIOD_DAY || p->algo == LIM_PERIOD_MONTH
				       ? lim_period_next(p->algo, now * LIM_US_PER_S) / LIM_US_PER_S : 0;
		items[i].slot = (int)i + 1;
		argv_add(&a, "%d", (int)p->algo);
		argv_add(&a, "%lld", (long long)p->amount);
		argv_add(&a, "%lld", (long long)p->window_us);
		argv_add(&a, "%lld", (long long)p->burst);
		argv_add(&a, "%lld", (long long)items[i].cost);
		argv_add(&a, "%lld", (long long)pend);
		argv_add(&a, "%lld", (long long)key_ttl_ms(p));
	}
	o->copy = xcalloc(n, sizeof(*o->copy));
	memcpy(o->copy, items, n * sizeof(*items));
	if (redisAsyncCommandArgv(w_conn->ac, op_reply, o, a.n, a.v, a.len) != REDIS_OK) {
		argv_free(&a);
		free(o->copy);
		free(o);
		mark_failure("refused a command");
		return -1;
	}
	argv_free(&a);
	o->timer = evtimer_new(base, op_timeout, o);
	tv.tv_sec = tmo / 1000;
	tv.tv_usec = (tmo % 1000) * 1000;
	evtimer_add(o->timer, &tv);
	return 0;
}

/* ---- settling ---------------------------------------------------------------------------- */

static void settle_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	redisReply *r = reply;

	(void)ac;
	(void)priv;
	if (!r || r->type == REDIS_REPLY_ERROR)
		bump(&st.settle_lost);
}

static void send_settle(struct rconn *rc, const struct lim_item *items, const int64_t *delta,
			size_t n, const char *id)
{
	struct argv a;

	argv_init(&a, 6 + (int)n * 9, 512 + n * (LIM_KEY_MAX + 8 * ARG_FIELD));
	argv_add(&a, "EVALSHA");
	argv_add(&a, "%s", sha_settle);
	argv_add(&a, "%zu", n);
	for (size_t i = 0; i < n; i++)
		argv_add(&a, KEY_PREFIX "%s", items[i].key);
	argv_add(&a, "%s", id);
	argv_add(&a, "%zu", n);
	for (size_t i = 0; i < n; i++) {
		const struct lim_params *p = &items[i].def.p;
		argv_add(&a, "%d", (int)p->algo);
		argv_add(&a, "%lld", (long long)p->amount);
		argv_add(&a, "%lld", (long long)p->window_us);
		argv_add(&a, "%lld", (long long)p->burst);
		argv_add(&a, "%lld", (long long)delta[i]);
		argv_add(&a, "%d", items[i].slot);
		argv_add(&a, "%d", items[i].def.dim == LD_CONCURRENT ? 1 : 0);
	}
	bump(&st.settles);
	if (redisAsyncCommandArgv(rc->ac, settle_reply, NULL, a.n, a.v, a.len) != REDIS_OK)
		bump(&st.settle_lost);
	argv_free(&a);
}

void fleet_settle(const struct lim_item *items, const int64_t *delta, size_t n, const char *id)
{
	if (!fleet_configured() || n == 0 || !ctl_base)
		return;
	if (!rconn_ensure(&ctl_conn)) {
		bump(&st.settle_lost); /* concurrency leases still expire in Redis */
		return;
	}
	send_settle(&ctl_conn, items, delta, n, id);
}

static void ping_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	redisReply *r = reply;

	(void)ac;
	(void)priv;
	if (r && r->type == REDIS_REPLY_STATUS)
		mark_success();
	else if (r)
		mark_failure("answered PING with an error");
}

/* Every second on the control loop: a lost connection is re-established and a live one
 * pinged, so that the fallback starts and ends without waiting for traffic. */
static void ctl_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (rconn_ensure(&ctl_conn) && ctl_conn.up)
		redisAsyncCommand(ctl_conn.ac, ping_reply, NULL, "PING");
}

int fleet_start(struct event_base *control)
{
	struct timeval tv = { 1, 0 };

	if (!fleet_configured())
		return 0;
	ctl_base = control;
	ctl_conn.base = control;
	rconn_ensure(&ctl_conn);
	ctl_tick = event_new(control, -1, EV_PERSIST, ctl_tick_cb, NULL);
	event_add(ctl_tick, &tv);
	log_event(LOG_INFO, "limits_fleet_redis",
		  LOG_FIELDS(LOG_S("host", r_host), LOG_I("port", r_port),
			     LOG_I("timeout_ms", atomic_load(&r_timeout_ms))),
		  "limits: fleet-wide through Redis at %s:%d (timeout %u ms)", r_host, r_port,
		  atomic_load(&r_timeout_ms));
	return 0;
}

void fleet_worker_exit(void *arg)
{
	(void)arg;
	if (w_conn) {
		rconn_close(w_conn);
		free(w_conn);
		w_conn = NULL;
	}
}

void fleet_stop(void)
{
	if (ctl_tick)
		event_free(ctl_tick);
	ctl_tick = NULL;
	rconn_close(&ctl_conn);
	ctl_base = NULL;
}

void fleet_render_metrics(struct evbuffer *out)
{
	if (!fleet_configured())
		return;
	evbuffer_add_printf(out,
		"# HELP jairouter_redis_calls_total Redis calls of the limits by outcome.\n"
		"# TYPE jairouter_redis_calls_total counter\n"
		"jairouter_redis_calls_total{outcome=\"ok\"} %" PRIu64 "\n"
		"jairouter_redis_calls_total{outcome=\"error\"} %" PRIu64 "\n"
		"jairouter_redis_calls_total{outcome=\"timeout\"} %" PRIu64 "\n"
		"jairouter_redis_calls_total{outcome=\"late\"} %" PRIu64 "\n"
		"# HELP jairouter_redis_settles_total Settlements sent to Redis (and lost).\n"
		"# TYPE jairouter_redis_settles_total counter\n"
		"jairouter_redis_settles_total %" PRIu64 "\n"
		"jairouter_redis_settles_lost_total %" PRIu64 "\n"
		"# HELP jairouter_redis_connections Redis connections up.\n"
		"# TYPE jairouter_redis_connections gauge\njairouter_redis_connections %d\n",
		(uint64_t)st.admits, (uint64_t)st.errors, (uint64_t)st.timeouts, (uint64_t)st.late,
		(uint64_t)st.settles, (uint64_t)st.settle_lost, atomic_load(&conns_up));
}

const struct lim_remote fleet_remote = {
	.configure = fleet_configure,
	.start = fleet_start,
	.stop = fleet_stop,
	.configured = fleet_configured,
	.usable = fleet_usable,
	.algo_supported = fleet_algo_supported,
	.admit = fleet_admit,
	.settle = fleet_settle,
	.worker_exit = fleet_worker_exit,
	.render_metrics = fleet_render_metrics,
};
