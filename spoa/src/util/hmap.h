/*
 * hmap: a small chained hash map of item pointers. The caller supplies the hash of the
 * key and an equality callback, so one item can be indexed by several maps (a model by
 * id and by name). Items are not owned. Grows at load factor 1; never shrinks.
 */
#ifndef JR_HMAP_H
#define JR_HMAP_H

#include <stddef.h>
#include <stdint.h>

struct hmap_node;

struct hmap {
	struct hmap_node **slots;
	size_t nslots; /* power of two */
	size_t count;
};

/* eq(item, key) returns non-zero when item matches key. */
typedef int (*hmap_eq_fn)(const void *item, const void *key);

void hmap_init(struct hmap *m);
void hmap_clear(struct hmap *m); /* frees the nodes, not the items */

/* Inserts without checking for duplicates (callers remove first). */
void hmap_insert(struct hmap *m, uint64_t hash, void *item);
void *hmap_find(const struct hmap *m, uint64_t hash, hmap_eq_fn eq, const void *key);
/* Removes the first matching item and returns it, or NULL. */
void *hmap_remove(struct hmap *m, uint64_t hash, hmap_eq_fn eq, const void *key);
void hmap_each(const struct hmap *m, void (*fn)(void *item, void *arg), void *arg);

/* 64-bit FNV-1a followed by a final avalanche (murmur3 fmix64). */
uint64_t hmap_hash_bytes(const void *p, size_t len);
uint64_t hmap_hash_u64(uint64_t v);

#endif /* JR_HMAP_H */
