/*
 * lb/conf: what the routing rows of the catalogue (state/routing.h) mean for the router:
 * the effective strategy settings of a request and a backend's breaker thresholds,
 * resolved from the policy rows by scope, and the names of the hash keys.
 *
 * The rows live in the `struct lb_conf` of a state (state_lb()); the functions here read
 * them under the same rules (the store's read lock, or a state being built).
 */
#ifndef JR_LB_CONF_H
#define JR_LB_CONF_H

#include <stddef.h>

#include "lb/breaker.h"
#include "lb/strategy.h"
#include "state/routing.h"

enum lb_hash_key { LB_K_CLIENT_IP = 0, LB_K_TENANT, LB_K_API_KEY, LB_K_HEADER, LB_K__COUNT };

int lb_hash_key_parse(const char *name, size_t len); /* -1 when unknown */
const char *lb_hash_key_name(enum lb_hash_key k);

/* The effective strategy settings of a request. */
struct lb_eff {
	enum lb_strategy strategy;
	enum lb_hash_key hash_key;
	double bound;
	unsigned slow_start_ms;
};

/* Built-in defaults: least_conn, client_ip key, bound 1.25, slow start 10 s. */
void lb_eff_default(struct lb_eff *e);

/* Resolves model row -> backend row -> service row -> global row -> built-in. */
void lb_conf_resolve(const struct lb_conf *c, int64_t model_id, const char *backend, int service,
		     struct lb_eff *out);

/* A backend's breaker thresholds: backend row -> global row -> built-in. */
void lb_conf_breaker(const struct lb_conf *c, const char *backend, struct lb_breaker_conf *out);

#endif /* JR_LB_CONF_H */
