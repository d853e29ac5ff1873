/*
 * rcache: the response cache's shared tier in Redis, for a fleet of adapters
 * (docs/cache.md). One asynchronous connection (hiredis with its libevent adapter) on the
 * adapter's loop; nothing waits on it: a lookup answers through a callback, a store is
 * sent and forgotten.
 *
 *   key    "<prefix>" + the entry's SHA-256 as hex (adcache.h's key)
 *   value  rc_encode: "jrc1 <stream> <prompt> <completion> <estimated>\n" + the body
 *   TTL    the policy's, set with the entry (SET ... PX)
 *
 * Failures never fail a request: a lookup that errs, finds Redis down or not yet
 * connected, or takes longer than the timeout is a miss (counted); a store that fails is
 * dropped (counted). A lost connection is retried at most once a second. At most 4096
 * lookups wait for Redis at a time; more are misses at once. Redis' own memory bound (maxmemory with
 * an eviction policy) bounds the shared tier; each value is at most the policy's
 * max_entry_bytes plus its header.
 */
#ifndef JR_AD_RCACHE_H
#define JR_AD_RCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "adcache.h"

struct event_base;
struct evbuffer;

#define RC_PREFIX "jairouter:cache:"

struct rc_stats {
	uint64_t hits, misses, errors, timeouts, stores, store_errors, down;
};

struct rc_client;

/* A client of the Redis at "host:port" (connected on first use), lookups given up after
 * timeout_ms. NULL when the address is malformed. */
struct rc_client *rc_new(struct event_base *base, const char *hostport, long timeout_ms);
/* Starts connecting (at start-up, so that the first requests find the connection). */
void rc_connect(struct rc_client *c);
void rc_free(struct rc_client *c);

/* The outcome of a lookup: the decoded entry (e.body valid during the call only), or
 * NULL for a miss, an error or a timeout. */
typedef void (*rc_found_fn)(void *arg, const struct ac_entry *e);

struct rc_get;

/* Starts a lookup of key; fn runs exactly once, later, unless rc_cancel comes first.
 * NULL when Redis cannot be asked now (fn is not called: a miss). */
struct rc_get *rc_lookup(struct rc_client *c, const uint8_t key[AC_KEY_LEN], rc_found_fn fn, void *arg);
/* The caller no longer wants the answer (its request went away). */
void rc_cancel(struct rc_get *g);

/* Stores an entry for ttl_ms (fire and forget). */
void rc_store(struct rc_client *c, const uint8_t key[AC_KEY_LEN], const struct ac_entry *e, int64_t ttl_ms);

/* The value format, pure: encode into a malloc'ed buffer (*len bytes); decode into e
 * (e->body points into v). Decode: 0, or -1 for a value that is not an entry. */
char *rc_encode(const struct ac_entry *e, size_t *len);
int rc_decode(const char *v, size_t len, struct ac_entry *e);

void rc_stats(const struct rc_client *c, struct rc_stats *out);
/* The Prometheus series (docs/cache.md). */
void rc_render(const struct rc_client *c, struct evbuffer *b);

#endif
