/* tokens: see tokens.h. */
#include "tokens.h"

#include "admetrics.h"
#include "driver.h"
#include "oauth.h"

#include "util/log.h"
#include "util/xalloc.h"

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GOOGLE_SCOPE "https://www.googleapis.com/auth/cloud-platform"
#define RETRY_UNAVAILABLE 5  /* seconds: the token endpoint failed or could not be reached */
#define RETRY_REJECTED 30    /* seconds: the credential itself was refused */
#define WEB_TOKEN_MAX 16384  /* a web identity token file's largest accepted size */

struct tok_fetch;

struct tok_entry {
	int used;                       /* the slot holds a credential */
	unsigned char key[SHA256_DIGEST_LENGTH];
	char *token;                    /* NULL until the first fetch succeeded */
	time_t refresh_at, stale_at;
	uint64_t last_use;
	struct tok_fetch *fetch;        /* in flight, or NULL */
	struct tok_waiter *waiters;
};

struct tok_fetch {
	struct drv_xfer xfer;           /* first: the driver's callback */
	struct tok_cache *c;
	struct tok_entry *e;
	enum oa_grant grant;
	CURL *easy;
	struct curl_slist *hdrs;
	struct oa_request req;
	char answer[TOK_ANSWER_MAX];
	size_t len;
	int too_long;
	char curl_err[CURL_ERROR_SIZE];
};

struct tok_cache {
	struct drv *drv;
	struct ad_metrics *m;
	long connect_timeout_ms;
	uint64_t clock;                 /* use counter for the LRU choice */
	struct tok_entry entries[TOK_ENTRIES];
};

struct tok_cache *tok_new(struct drv *d, struct ad_metrics *m, long connect_timeout_ms)
{
	struct tok_cache *c = xcalloc(1, sizeof(*c));

	c->drv = d;
	c->m = m;
	c->connect_timeout_ms = connect_timeout_ms;
	return c;
}

static void drop_token(struct tok_entry *e)
{
	if (e->token) {
		explicit_bzero(e->token, strlen(e->token));
		free(e->token);
	}
	e->token = NULL;
}

static void fetch_free(struct tok_fetch *f)
{
	if (f->easy) {
		drv_remove(f->c->drv, f->easy);
		curl_easy_cleanup(f->easy);
	}
	curl_slist_free_all(f->hdrs);
	oa_request_free(&f->req);
	explicit_bzero(f->answer, f->len);
	free(f);
}

void tok_free(struct tok_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < TOK_ENTRIES; i++) {
		struct tok_entry *e = &c->entries[i];
		if (e->fetch)
			fetch_free(e->fetch);
		for (struct tok_waiter *w = e->waiters; w; w = w->next)
			w->entry = NULL;
		drop_token(e);
	}
	free(c);
}

void tok_cancel(struct tok_waiter *w)
{
	if (!w->entry)
		return;
	if (w->prev)
		w->prev->next = w->next;
	else
		w->entry->waiters = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->entry = NULL;
	w->prev = w->next = NULL;
}

/* ---- the cache's slots -------------------------------------------------------------- */

static void key_of(enum oa_grant g, const char *secret, unsigned char key[SHA256_DIGEST_LENGTH])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char tag = (unsigned char)g;

	if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 || EVP_DigestUpdate(md, &tag, 1) != 1 ||
	    EVP_DigestUpdate(md, secret, strlen(secret)) != 1 || EVP_DigestFinal_ex(md, key, NULL) != 1)
		abort(); /* out of memory: as xalloc */
	EVP_MD_CTX_free(md);
}

/* The entry of key, or a free slot for it, or the least recently used one without a
 * fetch or waiters (its token dropped); NULL when every slot is busy. */
static struct tok_entry *slot_for(struct tok_cache *c, const unsigned char *key)
{
	struct tok_entry *free_slot = NULL, *lru = NULL;

	for (size_t i = 0; i < TOK_ENTRIES; i++) {
		struct tok_entry *e = &c->entries[i];
		if (e->used && memcmp(e->key, key, sizeof(e->key)) == 0)
			return e;
		if (!e->used && !free_slot)
			free_slot = e;
		else if (e->used && !e->fetch && !e->waiters && (!lru || e->last_use < lru->last_use))
			lru = e;
	}
	if (!free_slot && (free_slot = lru))
		drop_token(free_slot);
	if (free_slot) {
		memset(free_slot, 0, sizeof(*free_slot));
		free_slot->used = 1;
		memcpy(free_slot->key, key, sizeof(free_slot->key));
	}
	return free_slot;
}

/* ---- the end of a fetch ------------------------------------------------------------- */

/* Hands the outcome to every waiter (detached first: a callback may end its request). */
static void wake(struct tok_entry *e, const char *token, const struct xl_error *err)
{
	struct tok_waiter *w = e->waiters, *next;

	e->waiters = NULL;
	for (; w; w = next) {
		next = w->next;
		w->entry = NULL;
		w->prev = w->next = NULL;
		w->ready(w->arg, token, err);
	}
}

/* The OAuth error code of a refusal ("invalid_client" ...): safe to show, unlike its
 * description, which may quote the client id. */
static void oauth_error_code(const struct tok_fetch *f, char *out, size_t cap)
{
	json_t *j = json_loadb(f->answer, f->len, 0, NULL);
	const char *code = json_string_value(json_object_get(j, "error"));
	size_t n = 0;

	out[0] = '\0';
	for (; code && code[n] && n + 1 < cap && (code[n] == '_' || (code[n] >= 'a' && code[n] <= 'z')); n++)
		out[n] = code[n];
	out[n] = '\0';
	json_decref(j);
}

static void fetch_failed(struct tok_fetch *f, CURLcode rc, long status, struct xl_error *err)
{
	char code[64];

	if (rc != CURLE_OK) {
		xl_fail(err, 503, "server_error", "upstream_token_unavailable",
			"The provider's token endpoint could not be reached (%s); retry later.",
			f->too_long ? "answer too large" : curl_easy_strerror(rc));
		err->retry_after = RETRY_UNAVAILABLE;
	} else if (status == 400 || status == 401 || status == 403) {
		oauth_error_code(f, code, sizeof(code));
		xl_fail(err, 502, "server_error", "upstream_credential_rejected",
			"The provider's token endpoint refused the gateway's credential (HTTP %ld%s%s).", status,
			code[0] ? ": " : "", code);
		err->retry_after = RETRY_REJECTED;
	} else if (status < 200 || status >= 300) {
		xl_fail(err, 503, "server_error", "upstream_token_unavailable",
			"The provider's token endpoint answered HTTP %ld; retry later.", status);
		err->retry_after = RETRY_UNAVAILABLE;
	}
}

static void on_fetch_done(struct drv_xfer *x, CURLcode rc)
{
	struct tok_fetch *f = (struct tok_fetch *)x;
	struct tok_cache *c = f->c;
	struct tok_entry *e = f->e;
	struct xl_error err = { 0 };
	char why[128] = "";
	char *token = NULL;
	long status = 0, expires_in;

	curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &status);
	fetch_failed(f, rc, status, &err);
	if (!err.status && (f->grant == OA_STS
				    ? oa_parse_sts(f->answer, f->len, time(NULL), &token, &expires_in, why, sizeof(why))
				    : oa_parse_token(f->answer, f->len, &token, &expires_in, why, sizeof(why))) < 0) {
		xl_fail(&err, 502, "server_error", "upstream_token_unavailable",
			"The provider's token endpoint gave an unusable answer (%s).", why);
		err.retry_after = RETRY_UNAVAILABLE;
	}
	e->fetch = NULL;
	fetch_free(f);
	if (err.status) {
		c->m->token_fetch_failed++;
		log_event(LOG_WARN, "access_token_fetch_failed",
			  LOG_FIELDS(LOG_S("error", err.message)),
			  "access token fetch failed: %s", err.message);
		wake(e, NULL, &err);
		return;
	}
	c->m->token_fetch_ok++;
	drop_token(e);
	e->token = token;
	oa_times(time(NULL), expires_in, &e->refresh_at, &e->stale_at);
	wake(e, e->token, NULL);
}

/* ---- starting a fetch --------------------------------------------------------------- */

static size_t on_answer(char *p, size_t size, size_t nmemb, void *arg)
{
	struct tok_fetch *f = arg;
	size_t n = size * nmemb;

	if (f->len + n > sizeof(f->answer)) {
		f->too_long = 1;
		return 0;
	}
	memcpy(f->answer + f->len, p, n);
	f->len += n;
	return n;
}

static void set_options(struct tok_fetch *f, CURL *h)
{
	const struct drv_post p = { f->req.url, f->hdrs, f->req.body, f->req.body_len, on_answer, f,
				    &f->xfer, f->curl_err, f->c->connect_timeout_ms };

	drv_post_options(h, &p);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
}

/* The file's content (a web identity token) without its trailing newline; NULL with why. */
static char *read_token_file(const char *path, char *why, size_t cap)
{
	FILE *fp = fopen(path, "re");
	char *buf = xcalloc(1, WEB_TOKEN_MAX + 1);
	size_t n = fp ? fread(buf, 1, WEB_TOKEN_MAX + 1, fp) : 0;

	if (fp)
		fclose(fp);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	if (n == 0 || n > WEB_TOKEN_MAX) {
		snprintf(why, cap, "the web identity token file %.80s is %s", path,
			 !fp ? "unreadable" : n ? "too large" : "empty");
		explicit_bzero(buf, WEB_TOKEN_MAX + 1);
		free(buf);
		return NULL;
	}
	return buf;
}

/* The token request of grant g: 0, or -1 with why. */
static int build_request(enum oa_grant g, const char *secret, time_t now, struct oa_request *r, char *why,
			 size_t cap)
{
	char *path, *web;
	int rc;

	if (g == OA_ENTRA)
		return oa_entra_request(secret, r, why, cap);
	if (g == OA_GOOGLE)
		return oa_google_request(secret, GOOGLE_SCOPE, now, r, why, cap);
	if (!(path = oa_sts_token_file(secret, why, cap)))
		return -1;
	web = read_token_file(path, why, cap);
	free(path);
	if (!web)
		return -1;
	rc = oa_sts_request(secret, web, r, why, cap);
	explicit_bzero(web, strlen(web));
	free(web);
	return rc;
}

static int start_fetch(struct tok_cache *c, struct tok_entry *e, enum oa_grant g, const char *secret,
		       time_t now, struct xl_error *err)
{
	struct tok_fetch *f = xcalloc(1, sizeof(*f));
	char why[160];
	int rc = build_request(g, secret, now, &f->req, why, sizeof(why));

	f->xfer.done = on_fetch_done;
	f->c = c;
	f->e = e;
	f->grant = g;
	if (rc < 0) {
		xl_fail(err, 502, "server_error", "upstream_credential_invalid",
			"The gateway's credential for this provider cannot be used: %s.", why);
		err->retry_after = RETRY_REJECTED;
		fetch_free(f);
		return -1;
	}
	f->hdrs = curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded");
	f->hdrs = curl_slist_append(f->hdrs, g == OA_STS ? "Accept: text/xml" : "Accept: application/json");
	f->hdrs = curl_slist_append(f->hdrs, "Expect:");
	if (!(f->easy = curl_easy_init()) || (set_options(f, f->easy), drv_add(c->drv, f->easy) < 0)) {
		xl_fail(err, 503, "server_error", "upstream_token_unavailable",
			"The adapter could not start fetching an access token; retry later.");
		err->retry_after = RETRY_UNAVAILABLE;
		fetch_free(f);
		return -1;
	}
	e->fetch = f;
	return 0;
}

int tok_get(struct tok_cache *c, enum oa_grant g, const char *secret, time_t now, struct tok_waiter *w,
	    const char **token, struct xl_error *err)
{
	unsigned char key[SHA256_DIGEST_LENGTH];
	struct tok_entry *e;

	key_of(g, secret ? secret : "", key);
	if (!(e = slot_for(c, key))) {
		xl_fail(err, 503, "server_error", "token_cache_full",
			"Every access-token slot of the adapter is fetching; retry later.");
		err->retry_after = 1;
		return -1;
	}
	e->last_use = ++c->clock;
	if (e->token && now < e->stale_at) {
		/* Fresh, or old enough to renew: the renewal runs while this one serves. */
		if (now >= e->refresh_at && !e->fetch && start_fetch(c, e, g, secret, now, err) < 0)
			log_event(LOG_WARN, "access_token_renewal_failed",
				  LOG_FIELDS(LOG_S("error", err->message)),
				  "access token renewal could not start: %s", err->message);
		*token = e->token;
		return 0;
	}
	if (!e->fetch && start_fetch(c, e, g, secret, now, err) < 0) {
		if (!e->token && !e->waiters)
			e->used = 0;
		return -1;
	}
	c->m->token_waits++;
	w->entry = e;
	w->prev = NULL;
	w->next = e->waiters;
	if (e->waiters)
		e->waiters->prev = w;
	e->waiters = w;
	return 1;
}
