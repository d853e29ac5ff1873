/*
 * state: the agent's in-memory copy of the PostgreSQL catalogue (tenants, API keys,
 * models). Every decision reads from here; nothing on the request path queries the
 * database.
 *
 * A `struct state` is one set of hash tables. The process has one live state, the
 * "store", guarded by a read-write lock: workers take the read lock for the few
 * hundred nanoseconds a lookup lasts and copy out what they need; the control thread
 * takes the write lock to apply one change (LISTEN/NOTIFY) or to swap in a freshly
 * loaded state (start-up and periodic resync). Pointers returned by the finders are
 * valid only while the lock is held.
 */
#ifndef JR_STATE_H
#define JR_STATE_H

#include <stddef.h>
#include <stdint.h>

#define ST_NAME_MAX 64      /* tenant names, HAProxy backend names */
#define ST_LABELS_MAX 1024  /* a tenant's labels as JSON text (metrics only) */
#define ST_MODEL_MAX 128    /* model names */
#define ST_PREFIX_MAX 16    /* key prefix kept for identification, e.g. "jr-AbCd1234" */
#define ST_HASH_LEN 32      /* SHA-256 of the full key */

enum st_status { ST_ACTIVE = 0, ST_DISABLED = 1, ST_REVOKED = 2 };

struct st_tenant {
	int64_t id;
	char name[ST_NAME_MAX];
	enum st_status status; /* ST_ACTIVE or ST_DISABLED */
	char labels[ST_LABELS_MAX]; /* tenants.labels as JSON text ("" or "{}": none) */
};

struct st_key {
	int64_t id;
	int64_t tenant_id;
	uint8_t hash[ST_HASH_LEN];
	char prefix[ST_PREFIX_MAX];
	enum st_status status; /* ST_ACTIVE, ST_DISABLED or ST_REVOKED */
	int64_t expires_at;    /* unix seconds; 0 = never */
};

/* Model capabilities (sql/003_catalogue.sql), bits of st_model.caps. */
#define ST_CAP_VISION 0x1u
#define ST_CAP_TOOLS 0x2u
#define ST_CAP_JSON_MODE 0x4u
#define ST_CAP_STREAMING 0x8u

#define ST_PROVIDER_MAX 24 /* provider kind, e.g. "vertex_anthropic" */

struct st_model {
	int64_t id;
	char name[ST_MODEL_MAX];
	char backend[ST_NAME_MAX];
	enum st_status status; /* ST_ACTIVE or ST_DISABLED */
	int64_t created;       /* unix seconds, for /v1/models */
	char upstream[ST_MODEL_MAX]; /* name the model server expects; "" = name */
	char provider[ST_PROVIDER_MAX];
	uint32_t services;     /* bit (1 << policy_service_bit(name)) per service type */
	uint32_t caps;         /* ST_CAP_* */
	int32_t context_length; /* tokens; 0 = unknown */
	double price_in, price_out; /* per million tokens; < 0 = not set */
};

/* Another name of a model (table model_aliases). */
struct st_alias {
	int64_t id;
	int64_t model_id;
	char alias[ST_MODEL_MAX];
};

struct state;

struct state *state_new(void);
void state_free(struct state *s);

/* Upserts by id (a changed name or hash re-indexes the entry). Strings are copied and
 * truncated to the field size. */
void state_put_tenant(struct state *s, const struct st_tenant *t);
void state_put_key(struct state *s, const struct st_key *k);
void state_put_model(struct state *s, const struct st_model *m);
/* Removing an absent id is not an error. */
void state_del_tenant(struct state *s, int64_t id);
void state_del_key(struct state *s, int64_t id);
void state_del_model(struct state *s, int64_t id);
/* Aliases are indexed by alias text; the model they name is looked up when resolving,
 * so an alias may arrive before its model (or outlive it until its own deletion). */
void state_put_alias(struct state *s, const struct st_alias *a);
void state_del_alias(struct state *s, int64_t id);

/* Lookups: NULL when absent. The key lookup compares digests in constant time. */
const struct st_key *state_find_key(const struct state *s, const uint8_t hash[ST_HASH_LEN]);
const struct st_tenant *state_find_tenant(const struct state *s, int64_t id);
const struct st_model *state_find_model(const struct state *s, const char *name, size_t len);
/* The model a client's name denotes: the model of that name, else the model an alias of
 * that name points to. NULL when neither exists. */
const struct st_model *state_resolve_model(const struct state *s, const char *name, size_t len);

/* The tenant-policy part of this state (state/policy.h); written only by whoever may
 * write the state. */
struct policy *state_policy(const struct state *s);
/* The identity part (authz/ident.h), under the same rules. */
struct ident *state_ident(const struct state *s);
/* The limit definitions of this state (limit/defs.h), written like the policy part. */
struct limdefs *state_limits(const struct state *s);

/* The routing part of this state (state/routing.h), under the same rules. */
struct lb_conf *state_lb(const struct state *s);

/* The model with this id, NULL when absent. */
const struct st_model *state_find_model_id(const struct state *s, int64_t id);

size_t state_count_tenants(const struct state *s);
size_t state_count_keys(const struct state *s);
size_t state_count_models(const struct state *s);
size_t state_count_aliases(const struct state *s);

/* Calls fn for every tenant (the tenant info metric). */
void state_each_tenant(const struct state *s, void (*fn)(const struct st_tenant *, void *),
		       void *arg);

/* Calls fn for every model (used by /v1/models-style listings and tests). */
void state_each_model(const struct state *s, void (*fn)(const struct st_model *, void *),
		      void *arg);

/* ---- the process-wide store ------------------------------------------------------- */

/* Starts empty and not ready. */
void store_init(void);
void store_destroy(void);

/* Read access for workers: store_read_begin() returns the live state (never NULL). */
const struct state *store_read_begin(void);
void store_read_end(void);

/* Write access for the control thread (incremental changes). */
struct state *store_write_begin(void);
void store_write_end(void);

/* Swaps in a complete state (takes ownership), frees the old one, marks the store ready. */
void store_replace(struct state *fresh);

/* True once a complete state has been loaded at least once. */
int store_ready(void);

/* Whether the database connection is currently up (set by the control thread from the
 * synchroniser's status). While it is down, an unknown credential may be one issued after
 * the last sync: decisions answer 503 instead of 401 for it. */
void store_set_db_online(int online);
int store_db_online(void);

#endif /* JR_STATE_H */
