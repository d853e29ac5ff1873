/* endpoints: see endpoints.h. */
#include "state/endpoints.h"

#include "util/hmap.h"
#include "util/xalloc.h"

#include <stdlib.h>
#include <string.h>

struct adapter_data {
	struct hmap ep_by_id, ep_by_backend, mask_by_tenant;
	struct hmap cache_by_id, cache_by_pair;
};

static int eq_ep_id(const void *item, const void *key)
{
	return ((const struct st_endpoint *)item)->id == *(const int64_t *)key;
}

static int eq_ep_backend(const void *item, const void *key)
{
	return strcmp(((const struct st_endpoint *)item)->backend, key) == 0;
}

static int eq_mask_tenant(const void *item, const void *key)
{
	return ((const struct st_masking *)item)->tenant_id == *(const int64_t *)key;
}

struct adapter_data *adapter_data_new(void)
{
	struct adapter_data *a = xcalloc(1, sizeof(*a));

	hmap_init(&a->ep_by_id);
	hmap_init(&a->ep_by_backend);
	hmap_init(&a->mask_by_tenant);
	hmap_init(&a->cache_by_id);
	hmap_init(&a->cache_by_pair);
	return a;
}

static void free_item(void *item, void *arg)
{
	(void)arg;
	free(item);
}

void adapter_data_free(struct adapter_data *a)
{
	if (!a)
		return;
	hmap_each(&a->ep_by_id, free_item, NULL);
	hmap_each(&a->mask_by_tenant, free_item, NULL);
	hmap_each(&a->cache_by_id, free_item, NULL);
	hmap_clear(&a->cache_by_id);
	hmap_clear(&a->cache_by_pair);
	hmap_clear(&a->ep_by_id);
	hmap_clear(&a->ep_by_backend);
	hmap_clear(&a->mask_by_tenant);
	free(a);
}

void adapter_del_endpoint(struct adapter_data *a, int64_t id)
{
	struct st_endpoint *e = hmap_remove(&a->ep_by_id, hmap_hash_u64((uint64_t)id), eq_ep_id, &id);

	if (!e)
		return;
	hmap_remove(&a->ep_by_backend, hmap_hash_bytes(e->backend, strlen(e->backend)), eq_ep_id, &id);
	free(e);
}

void adapter_put_endpoint(struct adapter_data *a, const struct st_endpoint *src)
{
	struct st_endpoint *e = xcalloc(1, sizeof(*e));

	*e = *src;
	e->backend[sizeof(e->backend) - 1] = '\0';
	e->base_url[sizeof(e->base_url) - 1] = '\0';
	e->region[sizeof(e->region) - 1] = '\0';
	e->api_version[sizeof(e->api_version) - 1] = '\0';
	adapter_del_endpoint(a, e->id);
	hmap_insert(&a->ep_by_id, hmap_hash_u64((uint64_t)e->id), e);
	hmap_insert(&a->ep_by_backend, hmap_hash_bytes(e->backend, strlen(e->backend)), e);
}

const struct st_endpoint *adapter_find_endpoint(const struct adapter_data *a, const char *backend)
{
	return hmap_find(&a->ep_by_backend, hmap_hash_bytes(backend, strlen(backend)), eq_ep_backend, backend);
}

void adapter_del_masking(struct adapter_data *a, int64_t tenant_id)
{
	free(hmap_remove(&a->mask_by_tenant, hmap_hash_u64((uint64_t)tenant_id), eq_mask_tenant, &tenant_id));
}

void adapter_put_masking(struct adapter_data *a, const struct st_masking *src)
{
	struct st_masking *m;

	adapter_del_masking(a, src->tenant_id);
	if (!src->enabled)
		return;
	m = xcalloc(1, sizeof(*m));
	*m = *src;
	m->policy[sizeof(m->policy) - 1] = '\0';
	hmap_insert(&a->mask_by_tenant, hmap_hash_u64((uint64_t)m->tenant_id), m);
}

const struct st_masking *adapter_find_masking(const struct adapter_data *a, int64_t tenant_id)
{
	return hmap_find(&a->mask_by_tenant, hmap_hash_u64((uint64_t)tenant_id), eq_mask_tenant, &tenant_id);
}

/* ---- response cache policies ------------------------------------------------------ */

struct pair {
	int64_t tenant_id, model_id;
};

static int eq_cache_id(const void *item, const void *key)
{
	return ((const struct st_cache *)item)->id == *(const int64_t *)key;
}

static int eq_cache_pair(const void *item, const void *key)
{
	const struct st_cache *c = item;
	const struct pair *p = key;

	return c->tenant_id == p->tenant_id && c->model_id == p->model_id;
}

static uint64_t pair_hash(int64_t tenant_id, int64_t model_id)
{
	return hmap_hash_u64((uint64_t)tenant_id * 0x9e3779b97f4a7c15ull ^ (uint64_t)model_id);
}

void adapter_del_cache(struct adapter_data *a, int64_t id)
{
	struct st_cache *c = hmap_remove(&a->cache_by_id, hmap_hash_u64((uint64_t)id), eq_cache_id, &id);

	if (!c)
		return;
	hmap_remove(&a->cache_by_pair, pair_hash(c->tenant_id, c->model_id), eq_cache_id, &id);
	free(c);
}

void adapter_put_cache(struct adapter_data *a, const struct st_cache *src)
{
	struct st_cache *c = xcalloc(1, sizeof(*c));

	*c = *src;
	adapter_del_cache(a, c->id);
	hmap_insert(&a->cache_by_id, hmap_hash_u64((uint64_t)c->id), c);
	hmap_insert(&a->cache_by_pair, pair_hash(c->tenant_id, c->model_id), c);
}

const struct st_cache *adapter_find_cache(const struct adapter_data *a, int64_t tenant_id, int64_t model_id)
{
	struct pair p = { tenant_id, model_id };

	return hmap_find(&a->cache_by_pair, pair_hash(tenant_id, model_id), eq_cache_pair, &p);
}
