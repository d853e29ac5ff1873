/* objects: see objects.h. */
#include "state/objects.h"

#include "util/hmap.h"
#include "util/xalloc.h"

#include <stdlib.h>
#include <string.h>

struct objects {
	struct hmap by_key, by_id; /* every entry is in by_key; rows from PostgreSQL in by_id */
};

struct obj_key {
	enum obj_kind kind;
	const char *id;
	size_t len;
};

static const char *const kind_names[OBJ__COUNT] = { "response", "file", "batch" };

static uint64_t key_hash(enum obj_kind kind, const char *id, size_t len)
{
	return hmap_hash_bytes(id, len) ^ hmap_hash_u64((uint64_t)kind);
}

static int eq_key(const void *item, const void *key)
{
	const struct st_object *o = item;
	const struct obj_key *k = key;

	return o->kind == k->kind && strlen(o->object_id) == k->len && memcmp(o->object_id, k->id, k->len) == 0;
}

static int eq_id(const void *item, const void *key)
{
	return ((const struct st_object *)item)->id == *(const int64_t *)key;
}

struct objects *objects_new(void)
{
	struct objects *o = xcalloc(1, sizeof(*o));

	hmap_init(&o->by_key);
	hmap_init(&o->by_id);
	return o;
}

static void free_item(void *item, void *arg)
{
	(void)arg;
	free(item);
}

void objects_free(struct objects *o)
{
	if (!o)
		return;
	hmap_each(&o->by_key, free_item, NULL);
	hmap_clear(&o->by_key);
	hmap_clear(&o->by_id);
	free(o);
}

static void unlink_entry(struct objects *o, struct st_object *e)
{
	struct obj_key k = { e->kind, e->object_id, strlen(e->object_id) };

	hmap_remove(&o->by_key, key_hash(k.kind, k.id, k.len), eq_key, &k);
	if (e->id)
		hmap_remove(&o->by_id, hmap_hash_u64((uint64_t)e->id), eq_id, &e->id);
	free(e);
}

void objects_del(struct objects *o, int64_t id)
{
	struct st_object *e = hmap_find(&o->by_id, hmap_hash_u64((uint64_t)id), eq_id, &id);

	if (e)
		unlink_entry(o, e);
}

void objects_put(struct objects *o, const struct st_object *src)
{
	struct st_object *e = xcalloc(1, sizeof(*e)), *old;
	struct obj_key k;

	*e = *src;
	e->object_id[sizeof(e->object_id) - 1] = '\0';
	k = (struct obj_key){ e->kind, e->object_id, strlen(e->object_id) };
	if ((old = hmap_find(&o->by_key, key_hash(k.kind, k.id, k.len), eq_key, &k)))
		unlink_entry(o, old);
	if (e->id)
		objects_del(o, e->id);
	hmap_insert(&o->by_key, key_hash(k.kind, k.id, k.len), e);
	if (e->id)
		hmap_insert(&o->by_id, hmap_hash_u64((uint64_t)e->id), e);
}

const struct st_object *objects_find(const struct objects *o, enum obj_kind kind, const char *id, size_t len)
{
	struct obj_key k = { kind, id, len };

	return hmap_find(&o->by_key, key_hash(kind, id, len), eq_key, &k);
}

size_t objects_count(const struct objects *o)
{
	return o->by_key.count;
}

int obj_kind_of(const char *name)
{
	for (int i = 0; i < OBJ__COUNT; i++)
		if (strcmp(name, kind_names[i]) == 0)
			return i;
	return -1;
}

const char *obj_kind_name(enum obj_kind k)
{
	return (unsigned)k < OBJ__COUNT ? kind_names[k] : "?";
}

int obj_id_valid(const char *p, size_t len)
{
	if (!p || len == 0 || len >= OBJ_ID_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = p[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return 0;
	}
	return 1;
}
