/*
 * lb/strategy: how one server is chosen among the usable servers of a backend. Each
 * strategy is a pure function over a candidate array (no clock, no globals, no locks):
 * the caller builds the candidates from the server table (lb/table.h) with the slow-start
 * weight, the in-flight estimate and the latency EWMA already worked out, and passes the
 * random source and any persistent per-server state. That makes every strategy unit-
 * testable and benchmarkable on its own.
 *
 * Strategies are a small vtable (lb_strategy_ops) looked up by enum or by name.
 */
#ifndef JR_LB_STRATEGY_H
#define JR_LB_STRATEGY_H

#include <stddef.h>
#include <stdint.h>

enum lb_strategy {
	LB_S_HAPROXY = 0, /* the agent names no server: the backend's own "balance" decides */
	LB_S_RANDOM,      /* weighted random */
	LB_S_ROUND_ROBIN, /* smooth weighted round robin (nginx's), deterministic */
	LB_S_LEAST_CONN,  /* fewest in-flight requests per unit of weight */
	LB_S_HASH,        /* weighted rendezvous hashing on a key, with bounded load */
	LB_S_LATENCY,     /* power of two choices over peak-EWMA latency x load */
	LB_S__COUNT
};

/* One usable server as a strategy sees it. */
struct lb_cand {
	uint32_t idx;       /* the server's index in its backend (what the caller maps back) */
	double weight;      /* effective weight > 0 (HAProxy weight x slow-start factor) */
	uint64_t name_hash; /* stable hash of the server name (rendezvous hashing) */
	double load;        /* in-flight requests: the larger of HAProxy's scur + qcur (up to
	                     * one poll old) and the agent's own count (lb/table.h) */
	double latency_ms;  /* peak EWMA of time to first byte; <= 0 when not measured yet */
	int64_t *swrr;      /* round robin: the server's persistent current weight */
};

/* xorshift64*: one per worker thread, never shared. */
struct lb_rng {
	uint64_t s;
};

void lb_rng_seed(struct lb_rng *r, uint64_t seed);
uint64_t lb_rng_next(struct lb_rng *r);

/* What a strategy gets besides the candidates. */
struct lb_pick_ctx {
	struct lb_rng *rng;
	uint64_t key_hash; /* hash strategy: the affinity key's hash */
	int has_key;       /* 0: the request carries no key (hash falls back to least_conn) */
	double bound;      /* hash strategy: bounded-load factor c (>= 1; 1.25 by default) */
};

struct lb_strategy_ops {
	const char *name;
	/* Returns an index into c[0..n-1]; n >= 1. Round robin mutates c[i].swrr, and its
	 * caller serialises calls per backend. */
	size_t (*pick)(const struct lb_cand *c, size_t n, const struct lb_pick_ctx *pc);
};

/* NULL for LB_S_HAPROXY and out-of-range values. */
const struct lb_strategy_ops *lb_strategy_ops(enum lb_strategy s);
const char *lb_strategy_name(enum lb_strategy s);
/* -1 when unknown. Accepts the names of docs/routing.md. */
int lb_strategy_parse(const char *name, size_t len);

/* Rendezvous score of a server for a key: weight / -ln(u), u uniform in (0, 1) from the
 * mix of both hashes. Exposed for the tests. */
double lb_rendezvous_score(uint64_t key_hash, uint64_t name_hash, double weight);

#endif /* JR_LB_STRATEGY_H */
