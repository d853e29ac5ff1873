/*
 * state/routing: the routing part of the in-memory catalogue (sql/005_routing.sql):
 * routing policy rows (per model, backend, service type, or global), fallback rows, and
 * virtual models with their members. It stores rows and answers lookups; what the rows
 * mean (the effective strategy, breaker thresholds) is the router's business (lb/conf.h).
 * The rows keep the `lb_` prefix of the router that reads them.
 *
 * One `struct lb_conf` lives inside each `struct state` (state_lb()) and follows its
 * locking: readers hold the store's read lock, the loader writes under the write lock or
 * into a state being built. Pointers returned here are valid only under that lock.
 */
#ifndef JR_STATE_ROUTING_H
#define JR_STATE_ROUTING_H

#include <stddef.h>
#include <stdint.h>

#define LB_BACKEND_NAME_MAX 64
#define LB_FALLBACKS_MAX 8 /* alternatives per model (the SQL allows positions 1..8) */

/* One routing_policies row; -1 (or < 0) in a field means "inherit". strategy is an
 * enum lb_strategy, hash_key an enum lb_hash_key (lb/strategy.h, lb/conf.h). */
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

struct lb_conf;

struct lb_conf *lb_conf_new(void);
void lb_conf_free(struct lb_conf *c);

/* Upserts by id; removing an absent id is not an error. */
void lb_conf_put_policy(struct lb_conf *c, const struct lb_policy_row *r);
void lb_conf_del_policy(struct lb_conf *c, int64_t id);
void lb_conf_put_fallback(struct lb_conf *c, const struct lb_fallback_row *r);
void lb_conf_del_fallback(struct lb_conf *c, int64_t id);

/* The policy rows that apply to a request, most specific first: the model's row, the
 * backend's, the service type's, the global one; absent rows are skipped (model_id 0,
 * backend NULL or "", service -1: none of that scope). Returns how many were stored. */
#define LB_POLICY_SCOPES 4
size_t lb_conf_policy_chain(const struct lb_conf *c, int64_t model_id, const char *backend,
			    int service, const struct lb_policy_row *out[LB_POLICY_SCOPES]);

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

#endif /* JR_STATE_ROUTING_H */
