/* objects: see objects.h. */
#include "state/objects.h"

#include "json/jscan.h"
#include "util/hmap.h"
#include "util/xalloc.h"

#include <stdlib.h>
#include <string.h>

struct objects {
	struct hmap by_key, by_id; /* every entry is in by_key; rows from PostgreSQL in by_id */
	struct hmap by_tenant;     /* struct tenant_list: each tenant's files and batches */
};

/* The files and batches of one tenant, for the lists (responses are never listed). */
struct tenant_list {
	int64_t tenant;
	size_t n, cap;
	struct st_object **v;
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

static int eq_tenant(const void *item, const void *key)
{
	return ((const struct tenant_list *)item)->tenant == *(const int64_t *)key;
}

static void index_add(struct objects *o, struct st_object *e)
{
	uint64_t h = hmap_hash_u64((uint64_t)e->tenant_id);
	struct tenant_list *l;

	if (e->kind == OBJ_RESPONSE)
		return;
	if (!(l = hmap_find(&o->by_tenant, h, eq_tenant, &e->tenant_id))) {
		l = xcalloc(1, sizeof(*l));
		l->tenant = e->tenant_id;
		hmap_insert(&o->by_tenant, h, l);
	}
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = e;
}

static void free_list(void *item, void *arg)
{
	struct tenant_list *l = item;

	(void)arg;
	free(l->v);
	free(l);
}

static void index_del(struct objects *o, const struct st_object *e)
{
	uint64_t h = hmap_hash_u64((uint64_t)e->tenant_id);
	struct tenant_list *l = e->kind == OBJ_RESPONSE ? NULL : hmap_find(&o->by_tenant, h, eq_tenant, &e->tenant_id);

	for (size_t i = 0; l && i < l->n; i++)
		if (l->v[i] == e) {
			l->v[i] = l->v[--l->n];
			break;
		}
	if (l && !l->n) {
		hmap_remove(&o->by_tenant, h, eq_tenant, &e->tenant_id);
		free_list(l, NULL);
	}
}

struct objects *objects_new(void)
{
	struct objects *o = xcalloc(1, sizeof(*o));

	hmap_init(&o->by_key);
	hmap_init(&o->by_id);
	hmap_init(&o->by_tenant);
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
	hmap_each(&o->by_tenant, free_list, NULL);
	hmap_clear(&o->by_key);
	hmap_clear(&o->by_id);
	hmap_clear(&o->by_tenant);
	free(o);
}

static void unlink_entry(struct objects *o, struct st_object *e)
{
	struct obj_key k = { e->kind, e->object_id, strlen(e->object_id) };

	hmap_remove(&o->by_key, key_hash(k.kind, k.id, k.len), eq_key, &k);
	if (e->id)
		hmap_remove(&o->by_id, hmap_hash_u64((uint64_t)e->id), eq_id, &e->id);
	index_del(o, e);
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
		if (old->tenant_id == e->tenant_id && old->key_id)
			e->key_id = old->key_id; /* the creator, not a later request's key */
		unlink_entry(o, old);
	}
	if (e->id)
		objects_del(o, e->id);
	hmap_insert(&o->by_key, key_hash(k.kind, k.id, k.len), e);
	if (e->id)
		hmap_insert(&o->by_id, hmap_hash_u64((uint64_t)e->id), e);
	index_add(o, e);
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

void objects_each_of_tenant(const struct objects *o, int64_t tenant,
			    void (*fn)(const struct st_object *obj, void *arg), void *arg)
{
	const struct tenant_list *l = hmap_find(&o->by_tenant, hmap_hash_u64((uint64_t)tenant), eq_tenant, &tenant);

	for (size_t i = 0; l && i < l->n; i++)
		fn(l->v[i], arg);
}

int obj_set_json(struct st_object *obj, const char *json, size_t len)
{
	static const char *const keys[] = { "created_at", "purpose", "deleted" };
	struct jscan_member m[3];
	size_t n;

	if (len > OBJ_JSON_MAX || jscan_members(json, len, JSCAN_DEFAULT_DEPTH, keys, 3, m) != JSCAN_OK)
		return -1;
	obj->deleted = m[2].count && m[2].len == 4 && memcmp(json + m[2].offset, "true", 4) == 0;
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
