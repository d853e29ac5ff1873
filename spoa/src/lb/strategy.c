#include "lb/strategy.h"

#include <math.h>
#include <string.h>

void lb_rng_seed(struct lb_rng *r, uint64_t seed)
{
	r->s = seed ? seed : 0x9e3779b97f4a7c15ull; /* xorshift must not start at 0 */
}

uint64_t lb_rng_next(struct lb_rng *r)
{
	uint64_t x = r->s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	r->s = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* Uniform in [0, 1). */
static double rng_unit(struct lb_rng *r)
{
	return (double)(lb_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* murmur3's fmix64: spreads the bits of a combined key. */
static uint64_t mix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ull;
	k ^= k >> 33;
	return k;
}

/* ---- weighted random ----------------------------------------------------------------- */

static size_t pick_random(const struct lb_cand *c, size_t n, const struct lb_pick_ctx *pc)
{
	double total = 0, x;

	for (size_t i = 0; i < n; i++)
		total += c[i].weight;
	x = rng_unit(pc->rng) * total;
	for (size_t i = 0; i < n; i++) {
		if (x < c[i].weight)
			return i;
		x -= c[i].weight;
	}
	return n - 1; /* rounding at the very end of the range */
}

/* ---- smooth weighted round robin ------------------------------------------------------ */

/* Each pick adds every server's weight to its current value, takes the largest and
 * subtracts the total from it: over sum(weights) picks each server is chosen weight times,
 * spread out rather than in runs (a,a,a,b becomes a,b,a,a). Deterministic: the same
 * sequence of candidate sets yields the same choices. Weights are scaled to integers
 * (x1000) so that slow-start fractions still count. */
static size_t pick_swrr(const struct lb_cand *c, size_t n, const struct lb_pick_ctx *pc)
{
	int64_t total = 0, best_cur = INT64_MIN;
	size_t best = 0;

	(void)pc;
	for (size_t i = 0; i < n; i++) {
		int64_t w = (int64_t)llround(c[i].weight * 1000.0);
		if (w < 1)
			w = 1;
		total += w;
		*c[i].swrr += w;
		if (*c[i].swrr > best_cur) {
			best_cur = *c[i].swrr;
			best = i;
		}
	}
	*c[best].swrr -= total;
	return best;
}

/* ---- weighted least connections ------------------------------------------------------- */

/* The lowest (load + 1) / weight; ties are broken from a random starting point so that
 * equal servers share the traffic instead of the first one taking it all. */
static size_t pick_least_conn(const struct lb_cand *c, size_t n, const struct lb_pick_ctx *pc)
{
	size_t start = (size_t)(lb_rng_next(pc->rng) % n), best = start;
	double best_cost = (c[start].load + 1.0) / c[start].weight;

	for (size_t k = 1; k < n; k++) {
		size_t i = (start + k) % n;
		double cost = (c[i].load + 1.0) / c[i].weight;
		if (cost < best_cost) {
			best_cost = cost;
			best = i;
		}
	}
	return best;
}

/* ---- weighted rendezvous hashing with bounded load ------------------------------------ */

/* u in (0, 1) from both hashes: never 0 (log) nor 1 (division by zero). */
static double rendezvous_u(uint64_t key_hash, uint64_t name_hash)
{
	uint64_t h = mix64(key_hash ^ mix64(name_hash));

	return ((double)(h >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

double lb_rendezvous_score(uint64_t key_hash, uint64_t name_hash, double weight)
{
	return weight / -log(rendezvous_u(key_hash, name_hash));
}

/* Every server ranks the key by its score; the key goes to the best-ranked server whose
 * load stays within c times its weighted share of the total (+1 for this request), so a
 * hot key spills over to its second choice instead of overloading one server. Removing a
 * server moves only the keys it held; adding one takes only the keys it now ranks first
 * for (rendezvous hashing's minimal remapping). When every server is over its bound the
 * best-ranked one is used. A request without a key uses least connections. */
static size_t pick_hash(const struct lb_cand *c, size_t n, const struct lb_pick_ctx *pc)
{
	double total_w = 0, total_load = 1, bound = pc->bound >= 1.0 ? pc->bound : 1.25;
	double best_any = -1, best_ok = -1;
	size_t any = 0, ok = n;
	int equal = 1;

	if (!pc->has_key)
		return pick_least_conn(c, n, pc);
	for (size_t i = 0; i < n; i++) {
		total_w += c[i].weight;
		total_load += c[i].load;
	}
	for (size_t i = 0; i < n; i++)
		equal &= c[i].weight == c[0].weight;
	for (size_t i = 0; i < n; i++) {
		/* Equal weights rank by u alone (the score is monotonic in it): no log(). */
		double s = equal ? rendezvous_u(pc->key_hash, c[i].name_hash)
				 : lb_rendezvous_score(pc->key_hash, c[i].name_hash, c[i].weight);
		double cap = ceil(bound * total_load * c[i].weight / total_w);
		if (s > best_any) {
			best_any = s;
			any = i;
		}
		if (c[i].load + 1.0 <= cap && s > best_ok) {
			best_ok = s;
			ok = i;
		}
	}
	return ok < n ? ok : any;
}

/* ---- power of two choices over peak-EWMA latency -------------------------------------- */

/* Cost = latency x (load + 1) / weight: Finagle's peak-EWMA idea, the latency being a
 * peak-sensitive moving average (lb/table.c). Two distinct random candidates are compared
 * and the cheaper wins: near-best choices without herding onto one server. A server not
 * measured yet is costed at the mean of the measured ones, so it is tried but not flooded. */
static size_t pick_latency(const struct lb_cand *c, size_t n, const struct lb_pick_ctx *pc)
{
	double sum = 0, mean, ca, cb, la, lb;
	size_t known = 0, a, b;

	if (n == 1)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (c[i].latency_ms > 0) {
			sum += c[i].latency_ms;
			known++;
		}
	mean = known ? sum / (double)known : 1.0;
	a = (size_t)(lb_rng_next(pc->rng) % n);
	b = (size_t)(lb_rng_next(pc->rng) % (n - 1));
	if (b >= a)
		b++;
	la = c[a].latency_ms > 0 ? c[a].latency_ms : mean;
	lb = c[b].latency_ms > 0 ? c[b].latency_ms : mean;
	ca = la * (c[a].load + 1.0) / c[a].weight;
	cb = lb * (c[b].load + 1.0) / c[b].weight;
	return cb < ca ? b : a;
}

/* ---- the table --------------------------------------------------------------------- */

static const struct lb_strategy_ops ops[LB_S__COUNT] = {
	[LB_S_HAPROXY] = { "haproxy", NULL },
	[LB_S_RANDOM] = { "random", pick_random },
	[LB_S_ROUND_ROBIN] = { "round_robin", pick_swrr },
	[LB_S_LEAST_CONN] = { "least_conn", pick_least_conn },
	[LB_S_HASH] = { "hash", pick_hash },
	[LB_S_LATENCY] = { "latency", pick_latency },
};

const struct lb_strategy_ops *lb_strategy_ops(enum lb_strategy s)
{
	if ((unsigned)s >= LB_S__COUNT || !ops[s].pick)
		return NULL;
	return &ops[s];
}

const char *lb_strategy_name(enum lb_strategy s)
{
	return (unsigned)s < LB_S__COUNT ? ops[s].name : "unknown";
}

int lb_strategy_parse(const char *name, size_t len)
{
	for (int i = 0; i < LB_S__COUNT; i++)
		if (strlen(ops[i].name) == len && memcmp(ops[i].name, name, len) == 0)
			return i;
	return -1;
}
