/*
 * endpoints: the adapter part of the in-memory catalogue (sql/008_adapter.sql): the
 * provider endpoint of each model backend that may detour through jairouter-adapter,
 * each tenant's masking switch and policy, and the (tenant, model) pairs whose answers
 * are cached (sql/018_cache.sql).
 *
 * One `struct adapter_data` lives inside each `struct state` (state_adapter()) and
 * follows its locking, as state/policy.h does: readers hold the store's read lock,
 * the loader writes under the write lock or into a state being built. Pointers
 * returned here are valid only under that lock.
 */
#ifndef JR_ENDPOINTS_H
#define JR_ENDPOINTS_H

#include <stddef.h>
#include <stdint.h>

#include "state/state.h"

#define EP_URL_MAX 512
#define EP_SHORT_MAX 48
#define EP_MASK_MAX 2048 /* sql/008: masking_policy is at most 2000 bytes */

struct st_endpoint {
	int64_t id;
	char backend[ST_NAME_MAX];
	char base_url[EP_URL_MAX]; /* "" = the provider's public default */
	char region[EP_SHORT_MAX];
	char api_version[EP_SHORT_MAX];
	int meter;                 /* meter streamed usage through the adapter */
};

struct st_masking {
	int64_t tenant_id;
	int enabled;               /* settings.masking = true */
	char policy[EP_MASK_MAX];  /* "" = the built-in defaults */
};

/* A tenant's response cache for one model (sql/018_cache.sql, docs/cache.md). */
struct st_cache {
	int64_t id, tenant_id, model_id;
	int64_t ttl_s, max_entry_bytes;
	int shared;                /* scope 'shared': one entry for every tenant */
	double hit_price_factor;   /* a hit's price is the original's times this */
};

struct adapter_data;

struct adapter_data *adapter_data_new(void);
void adapter_data_free(struct adapter_data *a);

/* Upserts by id; strings are truncated to their fields. */
void adapter_put_endpoint(struct adapter_data *a, const struct st_endpoint *e);
void adapter_del_endpoint(struct adapter_data *a, int64_t id);
const struct st_endpoint *adapter_find_endpoint(const struct adapter_data *a, const char *backend);

/* Tenants without masking are not stored. */
void adapter_put_masking(struct adapter_data *a, const struct st_masking *m);
void adapter_del_masking(struct adapter_data *a, int64_t tenant_id);
const struct st_masking *adapter_find_masking(const struct adapter_data *a, int64_t tenant_id);

/* Upserts by id; del by id. */
void adapter_put_cache(struct adapter_data *a, const struct st_cache *c);
void adapter_del_cache(struct adapter_data *a, int64_t id);
const struct st_cache *adapter_find_cache(const struct adapter_data *a, int64_t tenant_id, int64_t model_id);

/* The adapter part of a state (state.c). */
struct adapter_data *state_adapter(const struct state *s);

#endif
