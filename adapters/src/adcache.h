/*
 * adcache: the response cache of one jairouter-adapter process (docs/cache.md). Pure: no
 * I/O; the clock is passed in. Entries are whole answers as the client received them (a
 * JSON body, or a stream's SSE bytes from the first event to `data: [DONE]`), with the
 * usage of the request that produced them, keyed by a SHA-256 (ac_key).
 *
 * Bounds: at most max_bytes in all (each entry counts its body plus AC_ENTRY_OVERHEAD).
 * A store that does not fit evicts the least recently used entries until it does; an
 * entry larger than its own limit or than max_bytes is not stored. An expired entry is
 * dropped when it is looked up, or when eviction reaches it.
 */
#ifndef JR_AD_ADCACHE_H
#define JR_AD_ADCACHE_H

#include <stddef.h>
#include <stdint.h>

#define AC_KEY_LEN 32
#define AC_ENTRY_OVERHEAD 128 /* bytes counted per entry beside its body */

struct ac_entry {
	uint8_t key[AC_KEY_LEN];
	int64_t expires_us;
	int stream;                 /* the body is an SSE stream */
	int64_t prompt, completion; /* the stored usage */
	int usage_estimated;
	char *body;
	size_t len;
	struct ac_entry *hnext;             /* bucket chain */
	struct ac_entry *lru_prev, *lru_next; /* most recently used first */
};

struct ac_stats {
	uint64_t hits, misses, stores, evictions, expired, too_large;
	uint64_t entries, bytes;
};

struct ac_cache;

/* A cache holding at most max_bytes (0: nothing is ever stored). */
struct ac_cache *ac_new(size_t max_bytes);
void ac_free(struct ac_cache *c);

/* The key of a request: SHA-256 over a version tag, the scope (the agent's: tenant and
 * model ids, or the model's id alone for a cache shared by tenants), the public model
 * name, the path and the canonical body, each length-prefixed so that no two inputs
 * collide by concatenation. */
void ac_key(const char *scope, const char *model, const char *path, const char *body, size_t body_len,
	    uint8_t out[AC_KEY_LEN]);

/* The canonical form of a JSON request body: no insignificant whitespace, object
 * members sorted by name, numbers and strings as jansson prints them. NULL when the body
 * is not a JSON object or has a member twice (such a request is not cached); otherwise a
 * malloc'ed string (*len bytes). */
char *ac_canonical(const char *body, size_t len, size_t *out_len);

/* The live entry for key, made the most recently used; NULL (a miss) when absent or
 * expired at now_us. Counts a hit or a miss. The entry stays valid until the next
 * ac_put or ac_free. */
const struct ac_entry *ac_get(struct ac_cache *c, const uint8_t key[AC_KEY_LEN], int64_t now_us);

/* Stores a copy of body under key (replacing an entry with the same key), expiring
 * ttl_us after now_us. 0, or -1 when it is larger than max_entry or than the cache
 * (counted as too_large; nothing changes). */
int ac_put(struct ac_cache *c, const uint8_t key[AC_KEY_LEN], const char *body, size_t len, int stream,
	   int64_t prompt, int64_t completion, int usage_estimated, int64_t ttl_us, size_t max_entry,
	   int64_t now_us);

/* Counts an answer that outgrew its limit while it was recorded (never offered to ac_put). */
void ac_note_too_large(struct ac_cache *c);

void ac_stats(const struct ac_cache *c, struct ac_stats *out);

#endif
