/*
 * limit/defs: the limit definitions loaded from jairouter.limits (sql/006), part of the
 * catalogue state (state_limits()): written by pgsync on the control thread, read by
 * the limits stage under the store's read lock.
 *
 * A definition has filters (tenant, key, model: 0 = any), a scope (what is counted
 * together: one counter per tenant, per key, per client IP...), a dimension (requests,
 * tokens, concurrent requests, a token quota, a money budget) and an algorithm with
 * its amount and window. A request is subject to every definition whose filters match,
 * except that among definitions of the same slot (scope, dimension, window or period)
 * only the most specific applies: key > tenant + model > tenant > model > global. So a
 * tenant row is the default for its keys and a key row overrides it.
 */
#ifndef JR_LIMIT_DEFS_H
#define JR_LIMIT_DEFS_H

#include <stddef.h>
#include <stdint.h>

#include "limit/algo.h"

#define LIM_MAX_PER_REQ 16 /* limits applied to one request; more are ignored (logged at load) */

enum lim_scope {
	LS_TENANT = 0,
	LS_KEY,
	LS_USER,         /* end user: header or JWT subject; the API key when absent */
	LS_IP,           /* client address */
	LS_MODEL,        /* the model, across tenants */
	LS_TENANT_MODEL, /* one counter per tenant and model */
	LS_BACKEND,      /* the model's backend (the server pool), across tenants */
	LS_SERVER,       /* the backend server the router chose (lb/), across tenants */
	LS__COUNT
};

enum lim_dim {
	LD_REQUESTS = 0,
	LD_TOKENS,     /* prompt + completion tokens per window */
	LD_CONCURRENT, /* requests in flight */
	LD_QUOTA,      /* tokens per day or month */
	LD_BUDGET,     /* money per day or month (micro-units of the catalogue's currency) */
	LD__COUNT
};

const char *lim_scope_name(enum lim_scope s);
const char *lim_dim_name(enum lim_dim d);
int lim_scope_parse(const char *s, enum lim_scope *out);
int lim_dim_parse(const char *s, enum lim_dim *out);

struct lim_def {
	int64_t id;
	int64_t tenant_id, key_id, model_id; /* filters; 0 = any */
	enum lim_scope scope;
	enum lim_dim dim;
	struct lim_params p;
	uint64_t version; /* digest of the parameters: a changed row starts fresh counters */
};

struct limdefs;

struct limdefs *limdefs_new(void);
void limdefs_free(struct limdefs *d);
/* Upsert by id; removing an absent id is not an error. */
void limdefs_put(struct limdefs *d, const struct lim_def *def);
void limdefs_del(struct limdefs *d, int64_t id);
size_t limdefs_count(const struct limdefs *d);

/* Copies the definitions that apply to a request of (tenant, key, model) into out
 * (most specific per slot), at most cap. Returns how many. */
size_t limdefs_select(const struct limdefs *d, int64_t tenant_id, int64_t key_id, int64_t model_id,
		      struct lim_def *out, size_t cap);

/* Checks that a definition is coherent (algorithm fits the dimension, amounts > 0).
 * Returns NULL, or why not. */
const char *lim_def_invalid(const struct lim_def *def);

uint64_t lim_def_digest(const struct lim_def *def);

/* The loader's query (pg/pgsync.c) and its row: id, tenant_id, key_id, model_id, scope,
 * dimension, algorithm, amount (budgets in micro-units), window_ms, burst, warmup_ms,
 * cold_factor, min_limit, latency_target_ms; NULL ids are 0. Disabled rows are not read
 * (a change to disabled deletes the definition). */
#define LIMDEFS_ROW_COLS 14
#define LIMITS_SQL                                                                          \
	"SELECT id, coalesce(tenant_id, 0), coalesce(key_id, 0), coalesce(model_id, 0), scope, " \
	"dimension, algorithm, ceil(amount * CASE WHEN dimension = 'budget' THEN 1000000 "   \
	"ELSE 1 END)::bigint, coalesce(window_ms, 0), coalesce(burst, 0), coalesce(warmup_ms, 0), " \
	"cold_factor, min_limit, latency_target_ms FROM jairouter.limits WHERE enabled"

/* Parses one row (text columns as above) and upserts it. 0, or -1 with a reason. */
int limdefs_put_row(struct limdefs *d, const char *const v[LIMDEFS_ROW_COLS], char *err,
		    size_t errlen);

#endif /* JR_LIMIT_DEFS_H */
