/*
 * oidc: discovery and JWKS fetching on the control loop, and the published key table the
 * workers read (see oidc.h).
 */
#include "oidc/oidc.h"

#include "authz/ident.h"
#include "state/state.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- pure parsing ------------------------------------------------------------------- */

int oidc_parse_discovery(const char *doc, size_t len, const char *iss, char *jwks_uri, size_t cap,
			 char *err, size_t errlen)
{
	json_error_t e;
	json_t *j = json_loadb(doc, len, JSON_REJECT_DUPLICATES, &e);
	const char *got, *uri;
	int rc = -1;

	if (!json_is_object(j)) {
		snprintf(err, errlen, "the discovery document is not a JSON object");
	} else if (!(got = json_string_value(json_object_get(j, "issuer"))) || strcmp(got, iss) != 0) {
		/* OpenID Connect Discovery 1.0, 4.3: must be identical to the issuer we know. */
		snprintf(err, errlen, "the discovery document names another issuer");
	} else if (!(uri = json_string_value(json_object_get(j, "jwks_uri"))) || strlen(uri) >= cap ||
		   (strncmp(uri, "https://", 8) != 0 && strncmp(uri, "http://", 7) != 0)) {
		snprintf(err, errlen, "the discovery document has no usable jwks_uri");
	} else {
		snprintf(jwks_uri, cap, "%s", uri);
		rc = 0;
	}
	json_decref(j);
	return rc;
}

int oidc_parse_jwks(const char *doc, size_t len, struct jwt_key *out, int max)
{
	json_error_t e;
	json_t *j = json_loadb(doc, len, JSON_REJECT_DUPLICATES, &e);
	const json_t *keys = json_object_get(j, "keys"), *k;
	size_t i;
	int n = 0;

	if (!json_is_array(keys)) {
		json_decref(j);
		return -1;
	}
	json_array_foreach(keys, i, k) {
		char err[128];
		if (n == max)
			break;
		/* oct keys never come from a JWKS: a published secret is no secret. */
		if (json_is_string(json_object_get(k, "kty")) &&
		    strcmp(json_string_value(json_object_get(k, "kty")), "oct") == 0)
			continue;
		if (jwk_parse(k, &out[n], err, sizeof(err)) == 0)
			n++;
	}
	json_decref(j);
	return n;
}

/* ---- the published table (workers read) --------------------------------------------- */

struct published {
	int64_t issuer_id; /* 0 = free */
	uint64_t gen;
	int n;
	struct jwt_key keys[OIDC_KEYS_MAX];
};

static pthread_rwlock_t pub_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct published pub[OIDC_ISSUERS_MAX];
static uint64_t pub_gen;

static struct published *pub_find(int64_t issuer_id)
{
	for (int i = 0; i < OIDC_ISSUERS_MAX; i++)
		if (pub[i].issuer_id == issuer_id)
			return &pub[i];
	return NULL;
}

size_t oidc_keys_begin(int64_t issuer_id, struct jwt_key *out, size_t n, size_t max, uint64_t *gen)
{
	const struct published *p;

	pthread_rwlock_rdlock(&pub_lock);
	p = pub_find(issuer_id);
	*gen = p ? p->gen : 0;
	for (int i = 0; p && i < p->n && n < max; i++)
		out[n++] = p->keys[i];
	return n;
}

void oidc_keys_end(void)
{
	pthread_rwlock_unlock(&pub_lock);
}

uint64_t oidc_generation(int64_t issuer_id)
{
	const struct published *p;
	uint64_t g;

	pthread_rwlock_rdlock(&pub_lock);
	p = pub_find(issuer_id);
	g = p ? p->gen : 0;
	pthread_rwlock_unlock(&pub_lock);
	return g;
}

/* Replaces an issuer's key set (n == 0 and keys == NULL: removes it). Takes the keys. */
static void publish(int64_t issuer_id, struct jwt_key *keys, int n)
{
	struct published *p;

	pthread_rwlock_wrlock(&pub_lock);
	p = pub_find(issuer_id);
	if (!p && keys)
		p = pub_find(0);
	if (p) {
		for (int i = 0; i < p->n; i++)
			jwt_key_free(&p->keys[i]);
		p->n = 0;
		p->issuer_id = keys ? issuer_id : 0;
		p->gen = ++pub_gen;
		for (int i = 0; keys && i < n; i++)
			p->keys[p->n++] = keys[i];
	}
	pthread_rwlock_unlock(&pub_lock);
	if (!p)
		for (int i = 0; keys && i < n; i++)
			jwt_key_free(&keys[i]);
}

/* ---- refresh requests from workers ------------------------------------------------- */

static pthread_mutex_t want_mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t wanted[OIDC_ISSUERS_MAX];
static int nwanted;
static struct event *wake_ev;

void oidc_want_refresh(int64_t issuer_id)
{
	int dup = 0;

	pthread_mutex_lock(&want_mu);
	for (int i = 0; i < nwanted; i++)
		dup |= wanted[i] == issuer_id;
	if (!dup && nwanted < OIDC_ISSUERS_MAX)
		wanted[nwanted++] = issuer_id;
	pthread_mutex_unlock(&want_mu);
	if (!dup && wake_ev)
		event_active(wake_ev, 0, 0);
}

/* ---- the fetcher (control thread) --------------------------------------------------- */

enum { ST_DISCOVERY, ST_JWKS };

struct iss_state {
	int64_t id; /* 0 = free */
	char iss[JWT_STR_MAX];
	char url[IDENT_URL_MAX];
	char jwks_uri[IDENT_URL_MAX];
	int64_t next_at, last_forced;
	unsigned failures;
	int busy, seen;
};

struct xfer {
	CURL *easy;
	struct oidc_introspection *q; /* an introspection, else a key fetch */
	struct curl_slist *headers;
	int64_t issuer_id;
	int stage;
	char *body;
	size_t len;
	int too_big;
	char errbuf[CURL_ERROR_SIZE];
};

static struct {
	struct event_base *base;
	struct oidc_opts o;
	CURLM *multi;
	struct event *tick, *curl_timer;
	struct iss_state iss[OIDC_ISSUERS_MAX];
} f;

static _Atomic uint64_t n_fetches, n_failures, n_sets;
/* Transfers in flight (one per issuer at most), so that a stop can end them. */
static struct xfer *active[OIDC_ISSUERS_MAX + OIDC_INTROSPECT_MAX];

static void track(struct xfer *x, int add)
{
	for (int i = 0; i < OIDC_ISSUERS_MAX + OIDC_INTROSPECT_MAX; i++)
		if (active[i] == (add ? NULL : x)) {
			active[i] = add ? x : NULL;
			return;
		}
}

static int64_t now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec;
}

static struct iss_state *state_of(int64_t id)
{
	for (int i = 0; i < OIDC_ISSUERS_MAX; i++)
		if (f.iss[i].id == id)
			return &f.iss[i];
	return NULL;
}

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = sz * n;

	if (x->len + len > OIDC_BODY_MAX) {
		x->too_big = 1;
		return 0; /* aborts the transfer */
	}
	x->body = xrealloc(x->body, x->len + len + 1);
	memcpy(x->body + x->len, p, len);
	x->len += len;
	x->body[x->len] = '\0';
	return len;
}

static void start_fetch(struct iss_state *st, int stage)
{
	struct xfer *x = xcalloc(1, sizeof(*x));

	x->issuer_id = st->id;
	x->stage = stage;
	x->easy = curl_easy_init();
	if (!x->easy) {
		free(x);
		return;
	}
	curl_easy_setopt(x->easy, CURLOPT_URL, stage == ST_DISCOVERY ? st->url : st->jwks_uri);
	curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, (long)OIDC_TIMEOUT_MS);
	curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(x->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
	curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(x->easy, CURLOPT_USERAGENT, "jairouter-spoa");
	st->busy = 1;
	track(x, 1);
	atomic_fetch_add(&n_fetches, 1);
	curl_multi_add_handle(f.multi, x->easy);
}

static void fetch_failed(struct iss_state *st, const char *what, const char *why)
{
	unsigned backoff = 1u << (st->failures < 8 ? st->failures : 8);

	atomic_fetch_add(&n_failures, 1);
	st->failures++;
	if (backoff > f.o.refresh_s)
		backoff = f.o.refresh_s;
	st->next_at = now_s() + backoff;
	/* URLs are configuration, not secrets; the keys already published stay. */
	log_event(LOG_WARN, "oidc_fetch_failed",
		  LOG_FIELDS(LOG_I("issuer_id", st->id), LOG_S("what", what), LOG_S("error", why),
			     LOG_I("retry_s", backoff)),
		  "oidc: issuer %lld: %s failed (%s); keeping the keys already fetched, "
		  "retry in %u s",
		  (long long)st->id, what, why, backoff);
}

static void fetch_done(struct xfer *x, CURLcode rc)
{
	struct iss_state *st = state_of(x->issuer_id);
	long status = 0;
	char err[160], why[320];
	struct jwt_key keys[OIDC_KEYS_MAX];
	int n;

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	if (!st)
		return; /* the issuer went away meanwhile */
	st->busy = 0;
	if (rc != CURLE_OK || status != 200) {
		snprintf(why, sizeof(why), "%s", x->too_big ? "document larger than 1 MiB"
			 : rc != CURLE_OK ? (x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc)) : "HTTP status");
		if (rc == CURLE_OK)
			snprintf(why, sizeof(why), "HTTP %ld", status);
		fetch_failed(st, x->stage == ST_DISCOVERY ? "discovery" : "JWKS", why);
		return;
	}
	if (x->stage == ST_DISCOVERY) {
		if (oidc_parse_discovery(x->body ? x->body : "", x->len, st->iss, st->jwks_uri,
					 sizeof(st->jwks_uri), err, sizeof(err)) < 0) {
			fetch_failed(st, "discovery", err);
			return;
		}
		start_fetch(st, ST_JWKS);
		return;
	}
	n = oidc_parse_jwks(x->body ? x->body : "", x->len, keys, OIDC_KEYS_MAX);
	if (n <= 0) {
		fetch_failed(st, "JWKS", n < 0 ? "not a JWKS document" : "no usable signing key");
		return;
	}
	publish(st->id, keys, n);
	atomic_fetch_add(&n_sets, 1);
	if (st->failures)
		log_event(LOG_INFO, "oidc_keys_fetched",
			  LOG_FIELDS(LOG_I("issuer_id", st->id), LOG_I("keys", n)),
			  "oidc: issuer %lld: keys fetched again (%d)", (long long)st->id, n);
	st->failures = 0;
	st->next_at = now_s() + f.o.refresh_s;
}

/* ---- introspection (requests from workers) ------------------------------------------ */

static pthread_mutex_t iq_mu = PTHREAD_MUTEX_INITIALIZER;
static struct oidc_introspection *iq[OIDC_INTROSPECT_MAX];
static int niq, inflight_iq;
static struct event *iq_ev;

int oidc_introspect(struct oidc_introspection *q)
{
	int ok;

	pthread_mutex_lock(&iq_mu);
	ok = iq_ev && niq + inflight_iq < OIDC_INTROSPECT_MAX;
	if (ok)
		iq[niq++] = q;
	pthread_mutex_unlock(&iq_mu);
	if (!ok)
		return -1;
	event_active(iq_ev, 0, 0);
	return 0;
}

static void introspect_done(struct xfer *x, CURLcode rc)
{
	struct oidc_introspection *q = x->q;

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &q->status);
	q->failed = rc != CURLE_OK;
	if (q->failed)
		snprintf(q->err, sizeof(q->err), "%s", x->too_big ? "answer larger than 1 MiB"
			 : x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
	q->body = x->body;
	q->len = x->len;
	x->body = NULL;
	pthread_mutex_lock(&iq_mu);
	inflight_iq--;
	pthread_mutex_unlock(&iq_mu);
	event_active(q->done, 0, 0); /* the worker takes it from here */
}

static void start_introspection(struct oidc_introspection *q)
{
	struct xfer *x = xcalloc(1, sizeof(*x));

	x->q = q;
	x->easy = curl_easy_init();
	if (!x->easy) {
		q->failed = 1;
		snprintf(q->err, sizeof(q->err), "out of memory");
		free(x);
		pthread_mutex_lock(&iq_mu);
		inflight_iq--;
		pthread_mutex_unlock(&iq_mu);
		event_active(q->done, 0, 0);
		return;
	}
	x->headers = curl_slist_append(NULL, "Accept: application/json");
	curl_easy_setopt(x->easy, CURLOPT_URL, q->url);
	curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, (long)OIDC_TIMEOUT_MS);
	curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(x->easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
	curl_easy_setopt(x->easy, CURLOPT_USERNAME, q->user);
	curl_easy_setopt(x->easy, CURLOPT_PASSWORD, q->pass);
	curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, q->form);
	curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
	curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
	curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(x->easy, CURLOPT_USERAGENT, "jairouter-spoa");
	track(x, 1);
	curl_multi_add_handle(f.multi, x->easy);
}

static void on_introspect_wake(evutil_socket_t fd, short what, void *arg)
{
	struct oidc_introspection *take[OIDC_INTROSPECT_MAX];
	int n;

	(void)fd;
	(void)what;
	(void)arg;
	pthread_mutex_lock(&iq_mu);
	n = niq;
	memcpy(take, iq, sizeof(take[0]) * (size_t)n);
	niq = 0;
	inflight_iq += n;
	pthread_mutex_unlock(&iq_mu);
	for (int i = 0; i < n; i++)
		start_introspection(take[i]);
}

static void check_done(void)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(f.multi, &left))) {
		struct xfer *x = NULL;
		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		curl_multi_remove_handle(f.multi, m->easy_handle);
		track(x, 0);
		if (x->q)
			introspect_done(x, m->data.result);
		else
			fetch_done(x, m->data.result);
		curl_slist_free_all(x->headers);
		curl_easy_cleanup(x->easy);
		free(x->body);
		free(x);
	}
}

static void on_socket_event(evutil_socket_t fd, short what, void *arg)
{
	int running, flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);

	(void)arg;
	curl_multi_socket_action(f.multi, fd, flags, &running);
	check_done();
}

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct event *ev = socketp;
	short kind = EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);

	(void)easy;
	(void)userp;
	if (ev) {
		event_free(ev);
		curl_multi_assign(f.multi, s, NULL);
	}
	if (what == CURL_POLL_REMOVE)
		return 0;
	ev = event_new(f.base, s, kind, on_socket_event, NULL);
	event_add(ev, NULL);
	curl_multi_assign(f.multi, s, ev);
	return 0;
}

static void on_curl_timer(evutil_socket_t fd, short what, void *arg)
{
	int running;

	(void)fd;
	(void)what;
	(void)arg;
	curl_multi_socket_action(f.multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done();
}

static int on_timer(CURLM *multi, long ms, void *userp)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	(void)multi;
	(void)userp;
	if (ms < 0)
		evtimer_del(f.curl_timer);
	else
		evtimer_add(f.curl_timer, &tv);
	return 0;
}

/* The issuers to watch, from the catalogue (read lock held by the caller). */
static void see_issuer(const struct id_issuer *is, void *arg)
{
	struct iss_state *st;

	(void)arg;
	if (!is->enabled || !is->discovery_url[0])
		return;
	if (!(st = state_of(is->id)) && (st = state_of(0))) {
		memset(st, 0, sizeof(*st));
		st->id = is->id;
	}
	if (!st) {
		log_event(LOG_WARN, "oidc_issuers_over_limit",
			  LOG_FIELDS(LOG_I("issuer_id", is->id), LOG_I("max", OIDC_ISSUERS_MAX)),
			  "oidc: more than %d OIDC issuers; issuer %lld is not fetched",
			  OIDC_ISSUERS_MAX,
			  (long long)is->id);
		return;
	}
	if (strcmp(st->url, is->discovery_url) != 0 || strcmp(st->iss, is->iss) != 0) {
		snprintf(st->url, sizeof(st->url), "%s", is->discovery_url);
		snprintf(st->iss, sizeof(st->iss), "%s", is->iss);
		st->next_at = 0; /* new or changed: fetch now */
	}
	st->seen = 1;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	int64_t now = now_s(), want[OIDC_ISSUERS_MAX];
	int nw;

	(void)fd;
	(void)what;
	(void)arg;
	for (int i = 0; i < OIDC_ISSUERS_MAX; i++)
		f.iss[i].seen = 0;
	if (store_ready()) {
		ident_each_issuer(state_ident(store_read_begin()), see_issuer, NULL);
		store_read_end();
	} else {
		for (int i = 0; i < OIDC_ISSUERS_MAX; i++)
			f.iss[i].seen = f.iss[i].id != 0; /* nothing loaded yet: keep what we have */
	}
	for (int i = 0; i < OIDC_ISSUERS_MAX; i++) {
		if (f.iss[i].id && !f.iss[i].seen && !f.iss[i].busy) {
			publish(f.iss[i].id, NULL, 0); /* removed, disabled or no longer OIDC */
			memset(&f.iss[i], 0, sizeof(f.iss[i]));
		}
	}
	pthread_mutex_lock(&want_mu);
	nw = nwanted;
	memcpy(want, wanted, sizeof(want[0]) * (size_t)nw);
	nwanted = 0;
	pthread_mutex_unlock(&want_mu);
	for (int i = 0; i < nw; i++) {
		struct iss_state *st = state_of(want[i]);
		if (st && now - st->last_forced >= (int64_t)f.o.min_refresh_s && st->next_at > now) {
			st->last_forced = now;
			st->next_at = now;
		}
	}
	for (int i = 0; i < OIDC_ISSUERS_MAX; i++)
		if (f.iss[i].id && !f.iss[i].busy && f.iss[i].next_at <= now)
			start_fetch(&f.iss[i], ST_DISCOVERY);
}

int oidc_start(struct event_base *base, const struct oidc_opts *o)
{
	struct timeval tv = { 1, 0 };

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		return -1;
	f.base = base;
	f.o = *o;
	f.multi = curl_multi_init();
	if (!f.multi)
		return -1;
	curl_multi_setopt(f.multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(f.multi, CURLMOPT_TIMERFUNCTION, on_timer);
	f.curl_timer = evtimer_new(base, on_curl_timer, NULL);
	f.tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
	wake_ev = event_new(base, -1, 0, on_tick, NULL);
	iq_ev = event_new(base, -1, 0, on_introspect_wake, NULL);
	event_add(f.tick, &tv);
	return 0;
}

void oidc_stop(void)
{
	if (!f.multi)
		return;
	pthread_mutex_lock(&iq_mu);
	event_free(iq_ev);
	iq_ev = NULL; /* queued requests are dropped: the workers have stopped */
	niq = 0;
	pthread_mutex_unlock(&iq_mu);
	for (int i = 0; i < OIDC_ISSUERS_MAX + OIDC_INTROSPECT_MAX; i++) {
		struct xfer *x = active[i];
		if (!x)
			continue;
		curl_slist_free_all(x->headers);
		curl_multi_remove_handle(f.multi, x->easy);
		curl_easy_cleanup(x->easy);
		free(x->body);
		free(x);
		active[i] = NULL;
	}
	curl_multi_cleanup(f.multi);
	event_free(f.tick);
	event_free(f.curl_timer);
	event_free(wake_ev);
	wake_ev = NULL;
	for (int i = 0; i < OIDC_ISSUERS_MAX; i++)
		if (pub[i].issuer_id)
			publish(pub[i].issuer_id, NULL, 0);
	curl_global_cleanup();
	memset(&f, 0, sizeof(f));
}

void oidc_stats(struct oidc_stats *out)
{
	out->fetches = atomic_load(&n_fetches);
	out->failures = atomic_load(&n_failures);
	out->key_sets = atomic_load(&n_sets);
}
