/* rcache: see rcache.h. */
#include "rcache.h"

#include "util/log.h"
#include "util/xalloc.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETRY_US 1000000 /* a lost connection is tried again after this */
#define KEY_MAX (sizeof(RC_PREFIX) + 2 * AC_KEY_LEN)
#define HEADER_MAX 96
#define PENDING_MAX 4096 /* lookups awaiting Redis; more are misses at once */

struct rc_client {
	struct event_base *base;
	char host[128];
	int port;
	long timeout_ms;
	redisAsyncContext *ac;
	int up;
	int64_t retry_at_us;
	size_t pending;
	struct rc_stats st;
};

struct rc_get {
	struct rc_client *c;
	rc_found_fn fn;
	void *arg;
	struct event *timer;
	int done; /* fn ran, or the caller cancelled */
};

static int64_t mono_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

struct rc_client *rc_new(struct event_base *base, const char *hostport, long timeout_ms)
{
	const char *colon = strrchr(hostport, ':');
	struct rc_client *c;
	char *end;
	long port;

	if (!colon || colon == hostport || (size_t)(colon - hostport) >= sizeof(c->host))
		return NULL;
	port = strtol(colon + 1, &end, 10);
	if (*end || port < 1 || port > 65535)
		return NULL;
	c = xcalloc(1, sizeof(*c));
	c->base = base;
	snprintf(c->host, sizeof(c->host), "%.*s", (int)(colon - hostport), hostport);
	c->port = (int)port;
	c->timeout_ms = timeout_ms;
	return c;
}

static int ensure(struct rc_client *c);

void rc_connect(struct rc_client *c)
{
	ensure(c);
}

void rc_free(struct rc_client *c)
{
	if (!c)
		return;
	if (c->ac) {
		redisAsyncContext *ac = c->ac;
		c->ac = NULL;
		redisAsyncFree(ac); /* pending callbacks run with a NULL reply */
	}
	free(c);
}

/* ---- the connection ------------------------------------------------------------------- */

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct rc_client *c = ac->data;

	if (status != REDIS_OK) {
		c->ac = NULL; /* hiredis frees the context after this callback */
		c->retry_at_us = mono_us() + RETRY_US;
		c->st.down++;
		log_event(LOG_WARN, "cache_redis_down", LOG_FIELDS(LOG_S("host", c->host), LOG_I("port", c->port)),
			  "response cache: Redis %s:%d is unreachable; the shared tier is skipped", c->host,
			  c->port);
		return;
	}
	c->up = 1;
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct rc_client *c = ac->data;

	c->up = 0;
	c->ac = NULL;
	c->retry_at_us = mono_us() + RETRY_US;
	if (status != REDIS_OK)
		c->st.down++;
}

/* Whether commands can be queued now (connected, or connecting: hiredis sends them once
 * connected, and answers them with NULL when the connection fails). */
static int ensure(struct rc_client *c)
{
	if (c->ac)
		return 1;
	if (mono_us() < c->retry_at_us)
		return 0;
	c->ac = redisAsyncConnect(c->host, c->port);
	if (!c->ac || c->ac->err) {
		if (c->ac)
			redisAsyncFree(c->ac);
		c->ac = NULL;
		c->retry_at_us = mono_us() + RETRY_US;
		c->st.down++;
		return 0;
	}
	c->ac->data = c;
	redisLibeventAttach(c->ac, c->base);
	redisAsyncSetConnectCallback(c->ac, on_connect);
	redisAsyncSetDisconnectCallback(c->ac, on_disconnect);
	return 1;
}

static size_t make_key(const uint8_t key[AC_KEY_LEN], char out[KEY_MAX])
{
	size_t n = sizeof(RC_PREFIX) - 1;

	memcpy(out, RC_PREFIX, n);
	for (size_t i = 0; i < AC_KEY_LEN; i++)
		n += (size_t)snprintf(out + n, 3, "%02x", key[i]);
	return n;
}

/* ---- values --------------------------------------------------------------------------- */

char *rc_encode(const struct ac_entry *e, size_t *len)
{
	char head[HEADER_MAX], *v;
	int n = snprintf(head, sizeof(head), "jrc1 %d %" PRId64 " %" PRId64 " %d\n", e->stream ? 1 : 0, e->prompt,
			 e->completion, e->usage_estimated ? 1 : 0);

	v = xmalloc((size_t)n + e->len + 1);
	memcpy(v, head, (size_t)n);
	memcpy(v + n, e->body, e->len);
	*len = (size_t)n + e->len;
	return v;
}

int rc_decode(const char *v, size_t len, struct ac_entry *e)
{
	const char *nl = memchr(v, '\n', len < HEADER_MAX ? len : HEADER_MAX);
	char head[HEADER_MAX];
	long long pt, ct;
	int stream, est, used = 0;

	if (!nl)
		return -1;
	memcpy(head, v, (size_t)(nl - v));
	head[nl - v] = '\0';
	if (sscanf(head, "jrc1 %d %lld %lld %d%n", &stream, &pt, &ct, &est, &used) != 4 || head[used] ||
	    (stream != 0 && stream != 1) || (est != 0 && est != 1) || pt < 0 || ct < 0)
		return -1;
	memset(e, 0, sizeof(*e));
	e->stream = stream;
	e->prompt = pt;
	e->completion = ct;
	e->usage_estimated = est;
	e->body = (char *)nl + 1;
	e->len = len - (size_t)(nl + 1 - v);
	return 0;
}

/* ---- lookups -------------------------------------------------------------------------- */

static void finish(struct rc_get *g, const struct ac_entry *e)
{
	if (g->done)
		return;
	g->done = 1;
	g->fn(g->arg, e);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct rc_get *g = arg;

	(void)fd, (void)what;
	if (!g->done)
		g->c->st.timeouts++;
	finish(g, NULL);
}

/* hiredis calls this once per command, with NULL when the connection went away. The
 * rc_get is freed here, whoever finished it. */
static void on_reply(redisAsyncContext *ac, void *r, void *priv)
{
	struct rc_get *g = priv;
	redisReply *reply = r;
	struct ac_entry e;

	(void)ac;
	event_free(g->timer);
	g->c->pending--;
	if (!g->done) {
		if (reply && reply->type == REDIS_REPLY_STRING && rc_decode(reply->str, reply->len, &e) == 0) {
			g->c->st.hits++;
			finish(g, &e);
		} else {
			if (reply && reply->type == REDIS_REPLY_NIL)
				g->c->st.misses++;
			else
				g->c->st.errors++;
			finish(g, NULL);
		}
	}
	free(g);
}

struct rc_get *rc_lookup(struct rc_client *c, const uint8_t key[AC_KEY_LEN], rc_found_fn fn, void *arg)
{
	struct timeval tv = { c->timeout_ms / 1000, (c->timeout_ms % 1000) * 1000 };
	char k[KEY_MAX];
	size_t kl = make_key(key, k);
	struct rc_get *g;

	/* Only on an established connection: a Redis that does not answer the connection
	 * (hiredis has no connect timeout) must not gather lookups. */
	if (!ensure(c) || !c->up || c->pending >= PENDING_MAX)
		return NULL;
	g = xcalloc(1, sizeof(*g));
	g->c = c;
	g->fn = fn;
	g->arg = arg;
	if (!(g->timer = evtimer_new(c->base, on_timeout, g)))
		abort(); /* out of memory: as xalloc */
	if (redisAsyncCommand(c->ac, on_reply, g, "GET %b", k, kl) != REDIS_OK) {
		event_free(g->timer);
		free(g);
		c->st.errors++;
		return NULL;
	}
	evtimer_add(g->timer, &tv);
	c->pending++;
	return g;
}

void rc_cancel(struct rc_get *g)
{
	if (g)
		g->done = 1;
}

/* ---- stores --------------------------------------------------------------------------- */

static void on_stored(redisAsyncContext *ac, void *r, void *priv)
{
	struct rc_client *c = ac->data;
	redisReply *reply = r;

	(void)priv;
	if (!c)
		return;
	if (reply && reply->type == REDIS_REPLY_STATUS)
		c->st.stores++;
	else
		c->st.store_errors++;
}

void rc_store(struct rc_client *c, const uint8_t key[AC_KEY_LEN], const struct ac_entry *e, int64_t ttl_ms)
{
	char k[KEY_MAX], ttl[24];
	size_t kl = make_key(key, k), vl = 0;
	char *v;

	if (!ensure(c) || !c->up) {
		c->st.store_errors++;
		return;
	}
	v = rc_encode(e, &vl);
	snprintf(ttl, sizeof(ttl), "%" PRId64, ttl_ms);
	if (redisAsyncCommand(c->ac, on_stored, NULL, "SET %b %b PX %s", k, kl, v, vl, ttl) != REDIS_OK)
		c->st.store_errors++;
	free(v);
}

void rc_stats(const struct rc_client *c, struct rc_stats *out)
{
	*out = c->st;
}

void rc_render(const struct rc_client *c, struct evbuffer *b)
{
	evbuffer_add_printf(b,
			    "# HELP jairouter_adapter_cache_redis_total The response cache's shared tier in Redis: "
			    "lookups by outcome, stores, and times Redis could not be reached.\n"
			    "# TYPE jairouter_adapter_cache_redis_total counter\n"
			    "jairouter_adapter_cache_redis_total{op=\"get\",result=\"hit\"} %" PRIu64 "\n"
			    "jairouter_adapter_cache_redis_total{op=\"get\",result=\"miss\"} %" PRIu64 "\n"
			    "jairouter_adapter_cache_redis_total{op=\"get\",result=\"error\"} %" PRIu64 "\n"
			    "jairouter_adapter_cache_redis_total{op=\"get\",result=\"timeout\"} %" PRIu64 "\n"
			    "jairouter_adapter_cache_redis_total{op=\"set\",result=\"ok\"} %" PRIu64 "\n"
			    "jairouter_adapter_cache_redis_total{op=\"set\",result=\"error\"} %" PRIu64 "\n"
			    "jairouter_adapter_cache_redis_total{op=\"connect\",result=\"down\"} %" PRIu64 "\n"
			    "# TYPE jairouter_adapter_cache_redis_up gauge\n"
			    "jairouter_adapter_cache_redis_up %d\n",
			    c->st.hits, c->st.misses, c->st.errors, c->st.timeouts, c->st.stores, c->st.store_errors,
			    c->st.down, c->up);
}
