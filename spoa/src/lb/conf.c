#include "lb/conf.h"

#include <string.h>

static const char *const key_names[LB_K__COUNT] = { "client_ip", "tenant", "api_key", "header" };

int lb_hash_key_parse(const char *name, size_t len)
{
	for (int i = 0; i < LB_K__COUNT; i++)
		if (strlen(key_names[i]) == len && memcmp(key_names[i], name, len) == 0)
			return i;
	return -1;
}

const char *lb_hash_key_name(enum lb_hash_key k)
{
	return (unsigned)k < LB_K__COUNT ? key_names[k] : "unknown";
}

void lb_eff_default(struct lb_eff *e)
{
	e->strategy = LB_S_LEAST_CONN;
	e->hash_key = LB_K_CLIENT_IP;
	e->bound = 1.25;
	e->slow_start_ms = 10000;
}

/* Fills what e does not have yet (the `set` mask) from row r. */
static void inherit(struct lb_eff *e, unsigned *set, const struct lb_policy_row *r)
{
	if (!(*set & 1) && r->strategy >= 0) {
		e->strategy = (enum lb_strategy)r->strategy;
		*set |= 1;
	}
	if (!(*set & 2) && r->hash_key >= 0) {
		e->hash_key = (enum lb_hash_key)r->hash_key;
		*set |= 2;
	}
	if (!(*set & 4) && r->hash_bound >= 1) {
		e->bound = r->hash_bound;
		*set |= 4;
	}
	if (!(*set & 8) && r->slow_start_ms >= 0) {
		e->slow_start_ms = (unsigned)r->slow_start_ms;
		*set |= 8;
	}
}

void lb_conf_resolve(const struct lb_conf *c, int64_t model_id, const char *backend, int service,
		     struct lb_eff *out)
{
	const struct lb_policy_row *rows[LB_POLICY_SCOPES];
	size_t n = lb_conf_policy_chain(c, model_id, backend, service, rows);
	unsigned set = 0;

	lb_eff_default(out);
	for (size_t i = 0; i < n; i++)
		inherit(out, &set, rows[i]);
}

static void breaker_from(struct lb_breaker_conf *o, unsigned *set, const struct lb_policy_row *r)
{
	if (!(*set & 1) && r->br_consecutive >= 0)
		o->consecutive = (unsigned)r->br_consecutive, *set |= 1;
	if (!(*set & 2) && r->br_error_rate >= 0)
		o->error_rate = r->br_error_rate, *set |= 2;
	if (!(*set & 4) && r->br_min_requests >= 0)
		o->min_requests = (unsigned)r->br_min_requests, *set |= 4;
	if (!(*set & 8) && r->br_window_s >= 0)
		o->window_s = (unsigned)r->br_window_s, *set |= 8;
	if (!(*set & 16) && r->br_open_ms >= 0)
		o->open_ms = (unsigned)r->br_open_ms, *set |= 16;
	if (!(*set & 32) && r->br_probes >= 0)
		o->probes = (unsigned)r->br_probes, *set |= 32;
}

void lb_conf_breaker(const struct lb_conf *c, const char *backend, struct lb_breaker_conf *out)
{
	const struct lb_policy_row *rows[LB_POLICY_SCOPES];
	size_t n = lb_conf_policy_chain(c, 0, backend, -1, rows);
	unsigned set = 0;

	lb_breaker_conf_default(out);
	for (size_t i = 0; i < n; i++)
		breaker_from(out, &set, rows[i]);
}
