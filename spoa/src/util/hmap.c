#include "util/hmap.h"

#include "util/xalloc.h"

#include <stdlib.h>

struct hmap_node {
	struct hmap_node *next;
	uint64_t hash;
	void *item;
};

void hmap_init(struct hmap *m)
{
	m->nslots = 16;
	m->count = 0;
	m->slots = xcalloc(m->nslots, sizeof(*m->slots));
}

void hmap_clear(struct hmap *m)
{
	for (size_t i = 0; i < m->nslots; i++) {
		struct hmap_node *n = m->slots[i];
		while (n) {
			struct hmap_node *next = n->next;
			free(n);
			n = next;
		}
	}
	free(m->slots);
	m->slots = NULL;
	m->nslots = 0;
	m->count = 0;
}

static void hmap_grow(struct hmap *m)
{
	size_t nslots = m->nslots * 2;
	struct hmap_node **slots = xcalloc(nslots, sizeof(*slots));

	for (size_t i = 0; i < m->nslots; i++) {
		struct hmap_node *n = m->slots[i];
		while (n) {
			struct hmap_node *next = n->next;
			size_t j = n->hash & (nslots - 1);
			n->next = slots[j];
			slots[j] = n;
			n = next;
		}
	}
	free(m->slots);
	m->slots = slots;
	m->nslots = nslots;
}

void hmap_insert(struct hmap *m, uint64_t hash, void *item)
{
	struct hmap_node *n = xmalloc(sizeof(*n));
	size_t i;

	if (m->count >= m->nslots)
		hmap_grow(m);
	i = hash & (m->nslots - 1);
	n->hash = hash;
	n->item = item;
	n->next = m->slots[i];
	m->slots[i] = n;
	m->count++;
}

void *hmap_find(const struct hmap *m, uint64_t hash, hmap_eq_fn eq, const void *key)
{
	for (struct hmap_node *n = m->slots[hash & (m->nslots - 1)]; n; n = n->next)
		if (n->hash == hash && eq(n->item, key))
			return n->item;
	return NULL;
}

void *hmap_remove(struct hmap *m, uint64_t hash, hmap_eq_fn eq, const void *key)
{
	struct hmap_node **pp = &m->slots[hash & (m->nslots - 1)];

	for (; *pp; pp = &(*pp)->next) {
		struct hmap_node *n = *pp;
		if (n->hash == hash && eq(n->item, key)) {
			void *item = n->item;
			*pp = n->next;
			free(n);
			m->count--;
			return item;
		}
	}
	return NULL;
}

void hmap_each(const struct hmap *m, void (*fn)(void *item, void *arg), void *arg)
{
	for (size_t i = 0; i < m->nslots; i++)
		for (struct hmap_node *n = m->slots[i]; n; n = n->next)
			fn(n->item, arg);
}

uint64_t hmap_hash_u64(uint64_t v)
{
	v ^= v >> 33;
	v *= 0xff51afd7ed558ccdULL;
	v ^= v >> 33;
	v *= 0xc4ceb9fe1a85ec53ULL;
	v ^= v >> 33;
	return v;
}

uint64_t hmap_hash_bytes(const void *p, size_t len)
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return hmap_hash_u64(h);
}
