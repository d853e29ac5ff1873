/* adcache: see adcache.h. */
#include "adcache.h"

#include "util/xalloc.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define AC_KEY_VERSION "jr-cache-1"

struct ac_cache {
	size_t max_bytes, bytes, count;
	struct ac_entry **buckets;
	size_t nbuckets;               /* a power of two */
	struct ac_entry *head, *tail;  /* LRU: head most recent */
	struct ac_stats st;
};

struct ac_cache *ac_new(size_t max_bytes)
{
	struct ac_cache *c = xcalloc(1, sizeof(*c));

	c->max_bytes = max_bytes;
	c->nbuckets = 256;
	c->buckets = xcalloc(c->nbuckets, sizeof(*c->buckets));
	return c;
}

static void entry_free(struct ac_entry *e)
{
	free(e->body);
	free(e);
}

void ac_free(struct ac_cache *c)
{
	struct ac_entry *e, *next;

	if (!c)
		return;
	for (e = c->head; e; e = next) {
		next = e->lru_next;
		entry_free(e);
	}
	free(c->buckets);
	free(c);
}

/* ---- the key -------------------------------------------------------------------------- */

static void feed(EVP_MD_CTX *x, const void *p, size_t n)
{
	uint8_t len[8];

	for (int i = 0; i < 8; i++)
		len[i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
	if (EVP_DigestUpdate(x, len, sizeof(len)) != 1 || (n && EVP_DigestUpdate(x, p, n) != 1))
		abort();
}

void ac_key(const char *scope, const char *model, const char *path, const char *body, size_t body_len,
	    uint8_t out[AC_KEY_LEN])
{
	EVP_MD_CTX *x = EVP_MD_CTX_new();
	unsigned int n = 0;

	if (!x || EVP_DigestInit_ex(x, EVP_sha256(), NULL) != 1)
		abort(); /* out of memory: as xalloc */
	feed(x, AC_KEY_VERSION, strlen(AC_KEY_VERSION));
	feed(x, scope, strlen(scope));
	feed(x, model, strlen(model));
	feed(x, path, strlen(path));
	feed(x, body, body_len);
	if (EVP_DigestFinal_ex(x, out, &n) != 1 || n != AC_KEY_LEN)
		abort();
	EVP_MD_CTX_free(x);
}

char *ac_canonical(const char *body, size_t len, size_t *out_len)
{
	json_t *v = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	char *s = NULL;

	if (v && json_is_object(v))
		s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	json_decref(v);
	if (s)
		*out_len = strlen(s);
	return s;
}

/* ---- the table and the LRU list ------------------------------------------------------- */

static size_t bucket_of(const struct ac_cache *c, const uint8_t key[AC_KEY_LEN])
{
	uint64_t h;

	memcpy(&h, key, sizeof(h)); /* a SHA-256: any 8 bytes are uniform */
	return (size_t)h & (c->nbuckets - 1);
}

static size_t cost(const struct ac_entry *e)
{
	return e->len + AC_ENTRY_OVERHEAD;
}

static void lru_unlink(struct ac_cache *c, struct ac_entry *e)
{
	if (e->lru_prev)
		e->lru_prev->lru_next = e->lru_next;
	else
		c->head = e->lru_next;
	if (e->lru_next)
		e->lru_next->lru_prev = e->lru_prev;
	else
		c->tail = e->lru_prev;
	e->lru_prev = e->lru_next = NULL;
}

static void lru_push(struct ac_cache *c, struct ac_entry *e)
{
	e->lru_next = c->head;
	e->lru_prev = NULL;
	if (c->head)
		c->head->lru_prev = e;
	c->head = e;
	if (!c->tail)
		c->tail = e;
}

static struct ac_entry **find_slot(struct ac_cache *c, const uint8_t key[AC_KEY_LEN])
{
	struct ac_entry **p = &c->buckets[bucket_of(c, key)];

	while (*p && memcmp((*p)->key, key, AC_KEY_LEN) != 0)
		p = &(*p)->hnext;
	return p;
}

static void remove_entry(struct ac_cache *c, struct ac_entry *e)
{
	struct ac_entry **p = find_slot(c, e->key);

	*p = e->hnext;
	lru_unlink(c, e);
	c->bytes -= cost(e);
	c->count--;
	entry_free(e);
}

/* Doubles the bucket array when entries outnumber buckets (chains stay short). */
static void grow(struct ac_cache *c)
{
	struct ac_entry **old = c->buckets;
	size_t n = c->nbuckets;

	if (c->count < c->nbuckets)
		return;
	c->nbuckets *= 2;
	c->buckets = xcalloc(c->nbuckets, sizeof(*c->buckets));
	for (size_t i = 0; i < n; i++) {
		struct ac_entry *e = old[i], *next;
		for (; e; e = next) {
			size_t b = bucket_of(c, e->key);
			next = e->hnext;
			e->hnext = c->buckets[b];
			c->buckets[b] = e;
		}
	}
	free(old);
}

const struct ac_entry *ac_get(struct ac_cache *c, const uint8_t key[AC_KEY_LEN], int64_t now_us)
{
	struct ac_entry *e = *find_slot(c, key);

	if (e && e->expires_us <= now_us) {
		remove_entry(c, e);
		c->st.expired++;
		e = NULL;
	}
	if (!e) {
		c->st.misses++;
		return NULL;
	}
	lru_unlink(c, e);
	lru_push(c, e);
	c->st.hits++;
	return e;
}

int ac_put(struct ac_cache *c, const uint8_t key[AC_KEY_LEN], const char *body, size_t len, int stream,
	   int64_t prompt, int64_t completion, int usage_estimated, int64_t ttl_us, size_t max_entry,
	   int64_t now_us)
{
	struct ac_entry *e, *old;

	if (len > max_entry || len + AC_ENTRY_OVERHEAD > c->max_bytes) {
		c->st.too_large++;
		return -1;
	}
	if ((old = *find_slot(c, key)))
		remove_entry(c, old);
	while (c->tail && c->bytes + len + AC_ENTRY_OVERHEAD > c->max_bytes) {
		if (c->tail->expires_us <= now_us)
			c->st.expired++;
		else
			c->st.evictions++;
		remove_entry(c, c->tail);
	}
	e = xcalloc(1, sizeof(*e));
	memcpy(e->key, key, AC_KEY_LEN);
	e->expires_us = now_us + ttl_us;
	e->stream = stream;
	e->prompt = prompt;
	e->completion = completion;
	e->usage_estimated = usage_estimated;
	e->body = xmalloc(len ? len : 1);
	memcpy(e->body, body, len);
	e->len = len;
	grow(c);
	e->hnext = c->buckets[bucket_of(c, key)];
	c->buckets[bucket_of(c, key)] = e;
	lru_push(c, e);
	c->bytes += cost(e);
	c->count++;
	c->st.stores++;
	return 0;
}

void ac_note_too_large(struct ac_cache *c)
{
	c->st.too_large++;
}

void ac_stats(const struct ac_cache *c, struct ac_stats *out)
{
	*out = c->st;
	out->entries = c->count;
	out->bytes = c->bytes;
}
