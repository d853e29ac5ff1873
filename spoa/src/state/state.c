#include "state/state.h"

#include "authz/ident.h"
#include "state/policy.h"
#include "state/endpoints.h"
#include "state/objects.h"
#include "state/routing.h"
#include "limit/defs.h"
#include "util/hmap.h"
#include "util/xalloc.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct state {
	struct hmap tenants_by_id;
	struct hmap keys_by_id;
	struct hmap keys_by_hash;
	struct hmap models_by_id;
	struct hmap models_by_name;
	struct hmap aliases_by_id;
	struct hmap aliases_by_name;
	struct policy *policy; /* tenant policy (state/policy.h) */
	struct ident *ident;   /* issuers, revocations, roles (authz/ident.h) */
	struct adapter_data *adapter; /* endpoints and masking (state/endpoints.h) */
	struct objects *objects; /* owners of stored API objects (state/objects.h) */
	struct lb_conf *lb;    /* routing (lb/conf.h) */
	struct limdefs *limits; /* limit definitions (limit/defs.h) */
};

struct name_key {
	const char *name;
	size_t len;
};

static int eq_tenant_id(const void *item, const void *key)
{
	return ((const struct st_tenant *)item)->id == *(const int64_t *)key;
}

static int eq_key_id(const void *item, const void *key)
{
	return ((const struct st_key *)item)->id == *(const int64_t *)key;
}

/* Constant time over the digest: the bucket was chosen by a hash of the digest, so a
 * timing side channel could at most reveal digest bits, and even that is closed here. */
static int eq_key_hash(const void *item, const void *key)
{
	return CRYPTO_memcmp(((const struct st_key *)item)->hash, key, ST_HASH_LEN) == 0;
}

static int eq_model_id(const void *item, const void *key)
{
	return ((const struct st_model *)item)->id == *(const int64_t *)key;
}

static int eq_model_name(const void *item, const void *key)
{
	const struct st_model *m = item;
	const struct name_key *k = key;

	return strlen(m->name) == k->len && memcmp(m->name, k->name, k->len) == 0;
}

static int eq_alias_id(const void *item, const void *key)
{
	return ((const struct st_alias *)item)->id == *(const int64_t *)key;
}

static int eq_alias_name(const void *item, const void *key)
{
	const struct st_alias *a = item;
	const struct name_key *k = key;

	return strlen(a->alias) == k->len && memcmp(a->alias, k->name, k->len) == 0;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

struct state *state_new(void)
{
	struct state *s = xcalloc(1, sizeof(*s));

	hmap_init(&s->tenants_by_id);
	hmap_init(&s->keys_by_id);
	hmap_init(&s->keys_by_hash);
	hmap_init(&s->models_by_id);
	hmap_init(&s->models_by_name);
	hmap_init(&s->aliases_by_id);
	hmap_init(&s->aliases_by_name);
	s->policy = policy_new();
	s->ident = ident_new();
	s->adapter = adapter_data_new();
	s->objects = objects_new();
	s->lb = lb_conf_new();
	s->limits = limdefs_new();
	return s;
}

static void free_item(void *item, void *arg)
{
	(void)arg;
	free(item);
}

void state_free(struct state *s)
{
	if (!s)
		return;
	/* Each item is in exactly one *_by_id map: free through those. */
	hmap_each(&s->tenants_by_id, free_item, NULL);
	hmap_each(&s->keys_by_id, free_item, NULL);
	hmap_each(&s->models_by_id, free_item, NULL);
	hmap_each(&s->aliases_by_id, free_item, NULL);
	hmap_clear(&s->tenants_by_id);
	hmap_clear(&s->keys_by_id);
	hmap_clear(&s->keys_by_hash);
	hmap_clear(&s->models_by_id);
	hmap_clear(&s->models_by_name);
	hmap_clear(&s->aliases_by_id);
	hmap_clear(&s->aliases_by_name);
	policy_free(s->policy);
	ident_free(s->ident);
	adapter_data_free(s->adapter);
	objects_free(s->objects);
	lb_conf_free(s->lb);
	limdefs_free(s->limits);
	free(s);
}

void state_put_tenant(struct state *s, const struct st_tenant *t)
{
	struct st_tenant *n;

	state_del_tenant(s, t->id);
	n = xmalloc(sizeof(*n));
	n->id = t->id;
	n->status = t->status;
	copy_str(n->name, sizeof(n->name), t->name);
	copy_str(n->labels, sizeof(n->labels), t->labels);
	hmap_insert(&s->tenants_by_id, hmap_hash_u64((uint64_t)n->id), n);
}

void state_del_tenant(struct state *s, int64_t id)
{
	free(hmap_remove(&s->tenants_by_id, hmap_hash_u64((uint64_t)id), eq_tenant_id, &id));
}

void state_put_key(struct state *s, const struct st_key *k)
{
	struct st_key *n;

	state_del_key(s, k->id);
	n = xmalloc(sizeof(*n));
	*n = *k;
	n->prefix[sizeof(n->prefix) - 1] = '\0';
	hmap_insert(&s->keys_by_id, hmap_hash_u64((uint64_t)n->id), n);
	hmap_insert(&s->keys_by_hash, hmap_hash_bytes(n->hash, ST_HASH_LEN), n);
}

void state_del_key(struct state *s, int64_t id)
{
	struct st_key *k = hmap_remove(&s->keys_by_id, hmap_hash_u64((uint64_t)id), eq_key_id, &id);

	if (!k)
		return;
	hmap_remove(&s->keys_by_hash, hmap_hash_bytes(k->hash, ST_HASH_LEN), eq_key_hash, k->hash);
	free(k);
}

void state_put_model(struct state *s, const struct st_model *m)
{
	struct st_model *n;

	state_del_model(s, m->id);
	n = xmalloc(sizeof(*n));
	*n = *m;
	copy_str(n->name, sizeof(n->name), m->name);
	copy_str(n->backend, sizeof(n->backend), m->backend);
	copy_str(n->upstream, sizeof(n->upstream), m->upstream);
	copy_str(n->provider, sizeof(n->provider), m->provider);
	hmap_insert(&s->models_by_id, hmap_hash_u64((uint64_t)n->id), n);
	hmap_insert(&s->models_by_name, hmap_hash_bytes(n->name, strlen(n->name)), n);
}

void state_del_model(struct state *s, int64_t id)
{
	struct st_model *m = hmap_remove(&s->models_by_id, hmap_hash_u64((uint64_t)id), eq_model_id, &id);
	struct name_key k;

	if (!m)
		return;
	k.name = m->name;
	k.len = strlen(m->name);
	hmap_remove(&s->models_by_name, hmap_hash_bytes(k.name, k.len), eq_model_name, &k);
	free(m);
}

void state_put_alias(struct state *s, const struct st_alias *a)
{
	struct st_alias *n;

	state_del_alias(s, a->id);
	n = xmalloc(sizeof(*n));
	*n = *a;
	copy_str(n->alias, sizeof(n->alias), a->alias);
	hmap_insert(&s->aliases_by_id, hmap_hash_u64((uint64_t)n->id), n);
	hmap_insert(&s->aliases_by_name, hmap_hash_bytes(n->alias, strlen(n->alias)), n);
}

void state_del_alias(struct state *s, int64_t id)
{
	struct st_alias *a = hmap_remove(&s->aliases_by_id, hmap_hash_u64((uint64_t)id), eq_alias_id, &id);
	struct name_key k;

	if (!a)
		return;
	k.name = a->alias;
	k.len = strlen(a->alias);
	hmap_remove(&s->aliases_by_name, hmap_hash_bytes(k.name, k.len), eq_alias_name, &k);
	free(a);
}

const struct st_key *state_find_key(const struct state *s, const uint8_t hash[ST_HASH_LEN])
{
	return hmap_find(&s->keys_by_hash, hmap_hash_bytes(hash, ST_HASH_LEN), eq_key_hash, hash);
}

const struct st_tenant *state_find_tenant(const struct state *s, int64_t id)
{
	return hmap_find(&s->tenants_by_id, hmap_hash_u64((uint64_t)id), eq_tenant_id, &id);
}

const struct st_model *state_find_model(const struct state *s, const char *name, size_t len)
{
	struct name_key k = { name, len };

	return hmap_find(&s->models_by_name, hmap_hash_bytes(name, len), eq_model_name, &k);
}

struct policy *state_policy(const struct state *s)
{
	return s->policy;
}

struct ident *state_ident(const struct state *s)
{
	return s->ident;
}

struct adapter_data *state_adapter(const struct state *s)
{
	return s->adapter;
}

struct objects *state_objects(const struct state *s)
{
	return s->objects;
}

struct lb_conf *state_lb(const struct state *s)
{
	return s->lb;
}

const struct st_model *state_find_model_id(const struct state *s, int64_t id)
{
	return hmap_find(&s->models_by_id, hmap_hash_u64((uint64_t)id), eq_model_id, &id);
}

struct limdefs *state_limits(const struct state *s)
{
	return s->limits;
}

const struct st_model *state_resolve_model(const struct state *s, const char *name, size_t len)
{
	const struct st_model *m = state_find_model(s, name, len);
	struct name_key k = { name, len };
	const struct st_alias *a;

	if (m)
		return m;
	a = hmap_find(&s->aliases_by_name, hmap_hash_bytes(name, len), eq_alias_name, &k);
	if (!a)
		return NULL;
	return hmap_find(&s->models_by_id, hmap_hash_u64((uint64_t)a->model_id), eq_model_id, &a->model_id);
}

size_t state_count_tenants(const struct state *s)
{
	return s->tenants_by_id.count;
}

size_t state_count_keys(const struct state *s)
{
	return s->keys_by_id.count;
}

size_t state_count_models(const struct state *s)
{
	return s->models_by_id.count;
}

size_t state_count_aliases(const struct state *s)
{
	return s->aliases_by_id.count;
}

struct each_model_arg {
	void (*fn)(const struct st_model *, void *);
	void *arg;
};

static void each_model_cb(void *item, void *arg)
{
	struct each_model_arg *a = arg;

	a->fn(item, a->arg);
}

void state_each_model(const struct state *s, void (*fn)(const struct st_model *, void *), void *arg)
{
	struct each_model_arg a = { fn, arg };

	hmap_each(&s->models_by_id, each_model_cb, &a);
}

struct each_tenant_arg {
	void (*fn)(const struct st_tenant *, void *);
	void *arg;
};

static void each_tenant_cb(void *item, void *arg)
{
	struct each_tenant_arg *a = arg;

	a->fn(item, a->arg);
}

void state_each_tenant(const struct state *s, void (*fn)(const struct st_tenant *, void *), void *arg)
{
	struct each_tenant_arg a = { fn, arg };

	hmap_each(&s->tenants_by_id, each_tenant_cb, &a);
}

/* ---- store ----------------------------------------------------------------------- */

static pthread_rwlock_t store_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct state *store_cur;
static atomic_int store_is_ready;
static atomic_int store_db_is_online;

void store_init(void)
{
	pthread_rwlock_wrlock(&store_lock);
	if (!store_cur)
		store_cur = state_new();
	pthread_rwlock_unlock(&store_lock);
}

void store_destroy(void)
{
	pthread_rwlock_wrlock(&store_lock);
	state_free(store_cur);
	store_cur = NULL;
	atomic_store(&store_is_ready, 0);
	pthread_rwlock_unlock(&store_lock);
}

const struct state *store_read_begin(void)
{
	pthread_rwlock_rdlock(&store_lock);
	return store_cur;
}

void store_read_end(void)
{
	pthread_rwlock_unlock(&store_lock);
}

struct state *store_write_begin(void)
{
	pthread_rwlock_wrlock(&store_lock);
	return store_cur;
}

void store_write_end(void)
{
	pthread_rwlock_unlock(&store_lock);
}

void store_replace(struct state *fresh)
{
	struct state *old;

	pthread_rwlock_wrlock(&store_lock);
	old = store_cur;
	store_cur = fresh;
	atomic_store(&store_is_ready, 1);
	pthread_rwlock_unlock(&store_lock);
	state_free(old); /* outside the lock: freeing a large table takes a while */
}

int store_ready(void)
{
	return atomic_load(&store_is_ready);
}

void store_set_db_online(int online)
{
	atomic_store(&store_db_is_online, online);
}

int store_db_online(void)
{
	return atomic_load(&store_db_is_online);
}
