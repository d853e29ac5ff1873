/*
 * tokens: access tokens for providers whose credential is exchanged at a token endpoint
 * (Entra ID client credentials, Google service accounts: oauth.h). One cache per adapter
 * process, keyed by SHA-256 of the grant and the credential (never the credential
 * itself). A token is fetched on the adapter's own upstream driver, so the loop never
 * blocks; one fetch per credential at a time, the requests that need it meanwhile wait;
 * once three quarters of its life have passed, the next request starts a new fetch in
 * the background and still uses the current token until it is stale. Tokens are never
 * logged; they are wiped when replaced or freed.
 *
 * Bounds: TOK_ENTRIES credentials (at the limit the least recently used entry without a
 * fetch in flight is dropped; when every entry has one, 503 token_cache_full), a token
 * endpoint's answer of at most TOK_ANSWER_MAX bytes (more: the fetch fails).
 */
#ifndef JR_AD_TOKENS_H
#define JR_AD_TOKENS_H

#include "oauth.h"
#include "xlate.h"

#include <time.h>

#define TOK_ENTRIES 256
#define TOK_ANSWER_MAX 65536

struct drv;
struct ad_metrics;
struct tok_cache;
struct tok_entry;

/* A fetch ended for a waiting request: token (borrowed, valid during the call), or NULL
 * with e (502/503 with a Retry-After). Called once, unless tok_cancel came first. */
typedef void (*tok_ready_fn)(void *arg, const char *token, const struct xl_error *e);

/* A request waiting for a token (embedded in the job). */
struct tok_waiter {
	struct tok_waiter *prev, *next;
	struct tok_entry *entry; /* NULL when not waiting */
	tok_ready_fn ready;
	void *arg;
};

struct tok_cache *tok_new(struct drv *d, struct ad_metrics *m, long connect_timeout_ms);
/* Ends the fetches in flight (their waiters are not called) and wipes every token. */
void tok_free(struct tok_cache *c);

/* A token for (grant, secret) now. 0: *token set (borrowed until control returns to the
 * loop); 1: w waits (w->ready will be called); -1: e set (the credential cannot be used,
 * the cache is full, the fetch could not start). */
int tok_get(struct tok_cache *c, enum oa_grant g, const char *secret, time_t now, struct tok_waiter *w,
	    const char **token, struct xl_error *e);

/* w stops waiting (its request ended); nothing when it does not wait. */
void tok_cancel(struct tok_waiter *w);

#endif
