/* objects: see objects.h. */
#include "state/objects.h"

#include "json/jscan.h"
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

static void free_object(struct st_object *e)
{
	free(e->json);
	free(e);
}

static void free_item(void *item, void *arg)
{
	(void)arg;
	free_object(item);
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
	free_object(e);
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
	e->json = src->json ? xstrdup(src->json) : NULL;
	e->object_id[sizeof(e->object_id) - 1] = '\0';
	e->purpose[sizeof(e->purpose) - 1] = '\0';
	k = (struct obj_key){ e->kind, e->object_id, strlen(e->object_id) };
	if ((old = hmap_find(&o->by_key, key_hash(k.kind, k.id, k.len), eq_key, &k))) {
		/* A newer state seen by this agent keeps the row it updates. */
		if (!e->id && old->id && old->tenant_id == e->tenant_id)
			e->id = old->id;
		unlink_entry(o, old);
	}
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

struct each_arg {
	void (*fn)(const struct st_object *obj, void *arg);
	void *arg;
};

static void each_one(void *item, void *arg)
{
	const struct each_arg *a = arg;

	a->fn(item, a->arg);
}

void objects_each(const struct objects *o, void (*fn)(const struct st_object *obj, void *arg), void *arg)
{
	struct each_arg a = { fn, arg };

	hmap_each(&o->by_key, each_one, &a);
}

int obj_set_json(struct st_object *obj, const char *json, size_t len)
{
	static const char *const keys[] = { "created_at", "purpose" };
	struct jscan_member m[2];
	size_t n;

	if (len > OBJ_JSON_MAX || jscan_members(json, len, JSCAN_DEFAULT_DEPTH, keys, 2, m) != JSCAN_OK)
		return -1;
	obj->created_at = m[0].count && m[0].is_integer ? m[0].integer : 0;
	obj->purpose[0] = '\0';
	if (m[1].count && m[1].type == JSCAN_STRING &&
	    jscan_string(json + m[1].offset, m[1].len, obj->purpose, sizeof(obj->purpose), &n) < 0)
		obj->purpose[0] = '\0';
	obj->json = xmalloc(len + 1);
	memcpy(obj->json, json, len);
	obj->json[len] = '\0';
	return 0;
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
