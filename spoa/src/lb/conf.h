/*
 * lb/conf: the routing part of the in-memory catalogue (sql/005_routing.sql): routing
 * policy rows (per model, backend, service type, or global) and fallback rows.
 *
 * One `struct lb_conf` lives inside each `struct state` (state_lb()) and follows its
 * locking: readers hold the store's read lock, the loader writes under the write lock or
 * into a state being built. Pointers returned here are valid only under that lock.
 */
#ifndef JR_LB_CONF_H
#define JR_LB_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "lb/breaker.h"
#include "lb/strategy.h"

#define LB_BACKEND_NAME_MAX 64
#define LB_FALLBACKS_MAX 8 /* alternatives per model (the SQL allows positions 1..8) */

enum lb_hash_key { LB_K_CLIENT_IP = 0, LB_K_TENANT, LB_K_API_KEY, LB_K_HEADER, LB_K__COUNT };

int lb_hash_key_parse(const char *name, size_t len); /* -1 when unknown */
const char *lb_hash_key_name(enum lb_hash_key k);

/* One routing_policies row; -1 (or < 0) in a field means "inherit". */
struct lb_policy_row {
	int64_t id;
	int64_t model_id;                   /* 0: not a model row */
	char backend[LB_BACKEND_NAME_MAX];  /* "": not a backend row */
	int service;                        /* enum pl_service; -1: not a service row */
	int strategy, hash_key;
	double hash_bound;
	int64_t slow_start_ms;
	int64_t br_consecutive, br_min_requests, br_window_s, br_open_ms, br_probes;
	double br_error_rate;
};

/* One model_fallbacks row. reasons: bit (1 << enum lb_why). */
struct lb_fallback_row {
	int64_t id, model_id, fallback_id;
	int position;
	uint32_t reasons;
};

/* A virtual model (virtual_models) and one of its members (virtual_model_members). */
#define LB_MEMBERS_MAX 16
struct lb_virtual_row {
	int64_t id, model_id;
	int64_t latency_budget_ms; /* <= 0: none */
};
struct lb_member_row {
	int64_t id, virtual_id, model_id;
	int position;
};

/* The effective strategy settings of a request. */
struct lb_eff {
	enum lb_strategy strategy;
	enum lb_hash_key hash_key;
	double bound;
	unsigned slow_start_ms;
};

struct lb_conf;

struct lb_conf *lb_conf_new(void);
void lb_conf_free(struct lb_conf *c);

/* Upserts by id; removing an absent id is not an error. */
void lb_conf_put_policy(struct lb_conf *c, const struct lb_policy_row *r);
void lb_conf_del_policy(struct lb_conf *c, int64_t id);
void lb_conf_put_fallback(struct lb_conf *c, const struct lb_fallback_row *r);
void lb_conf_del_fallback(struct lb_conf *c, int64_t id);

/* Built-in defaults: least_conn, client_ip key, bound 1.25, slow start 10 s. */
void lb_eff_default(struct lb_eff *e);

/* Resolves model row -> backend row -> service row -> global row -> built-in. */
void lb_conf_resolve(const struct lb_conf *c, int64_t model_id, const char *backend, int service,
		     struct lb_eff *out);

/* A backend's breaker thresholds: backend row -> global row -> built-in. */
void lb_conf_breaker(const struct lb_conf *c, const char *backend, struct lb_breaker_conf *out);

/* The fallback rows of a model in position order; returns how many (at most max). */
size_t lb_conf_fallbacks(const struct lb_conf *c, int64_t model_id, struct lb_fallback_row *out,
			 size_t max);

void lb_conf_put_virtual(struct lb_conf *c, const struct lb_virtual_row *r);
void lb_conf_del_virtual(struct lb_conf *c, int64_t id);
void lb_conf_put_member(struct lb_conf *c, const struct lb_member_row *r);
void lb_conf_del_member(struct lb_conf *c, int64_t id);
/* The virtual row of a model, NULL when the model is not virtual. */
const struct lb_virtual_row *lb_conf_virtual(const struct lb_conf *c, int64_t model_id);
/* The members of a virtual model in position order; returns how many (at most max). */
size_t lb_conf_members(const struct lb_conf *c, int64_t virtual_id, struct lb_member_row *out,
		       size_t max);

size_t lb_conf_count_policies(const struct lb_conf *c);
size_t lb_conf_count_fallbacks(const struct lb_conf *c);
size_t lb_conf_count_virtual(const struct lb_conf *c);

#endif /* JR_LB_CONF_H */
