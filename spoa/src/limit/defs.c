#include "limit/defs.h"

#include "util/hmap.h"
#include "util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const scope_names[LS__COUNT] = {
	"tenant", "key", "user", "ip", "model", "tenant_model", "backend", "server",
};
static const char *const dim_names[LD__COUNT] = {
	"requests", "tokens", "concurrent", "quota", "budget",
};

const char *lim_scope_name(enum lim_scope s)
{
	return (unsigned)s < LS__COUNT ? scope_names[s] : "unknown";
}

const char *lim_dim_name(enum lim_dim d)
{
	return (unsigned)d < LD__COUNT ? dim_names[d] : "unknown";
}

static int parse_name(const char *s, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

int lim_scope_parse(const char *s, enum lim_scope *out)
{
	int i = parse_name(s, scope_names, LS__COUNT);

	if (i < 0)
		return -1;
	*out = (enum lim_scope)i;
	return 0;
}

int lim_dim_parse(const char *s, enum lim_dim *out)
{
	int i = parse_name(s, dim_names, LD__COUNT);

	if (i < 0)
		return -1;
	*out = (enum lim_dim)i;
	return 0;
}

/* Definitions are grouped by owner: the key they filter on, else the tenant, else
 * global. A request looks at three groups only, however many tenants exist. */
struct group {
	uint64_t owner;
	struct lim_def **v;
	size_t n, cap;
};

struct limdefs {
	struct hmap by_id;     /* struct lim_def */
	struct hmap by_owner;  /* struct group */
	size_t count;
};

static uint64_t owner_of(int64_t tenant_id, int64_t key_id)
{
	if (key_id)
		return 2ull << 56 | (uint64_t)key_id;
	if (tenant_id)
		return 1ull << 56 | (uint64_t)tenant_id;
	return 0;
}

static int def_eq(const void *item, const void *key)
{
	return ((const struct lim_def *)item)->id == *(const int64_t *)key;
}

static int group_eq(const void *item, const void *key)
{
	return ((const struct group *)item)->owner == *(const uint64_t *)key;
}

struct limdefs *limdefs_new(void)
{
	struct limdefs *d = xcalloc(1, sizeof(*d));

	hmap_init(&d->by_id);
	hmap_init(&d->by_owner);
	return d;
}

static void free_def(void *item, void *arg)
{
	(void)arg;
	free(item);
}

static void free_group(void *item, void *arg)
{
	struct group *g = item;

	(void)arg;
	free(g->v);
	free(g);
}

void limdefs_free(struct limdefs *d)
{
	if (!d)
		return;
	hmap_each(&d->by_id, free_def, NULL);
	hmap_each(&d->by_owner, free_group, NULL);
	hmap_clear(&d->by_id);
	hmap_clear(&d->by_owner);
	free(d);
}

size_t limdefs_count(const struct limdefs *d)
{
	return d->count;
}

void limdefs_del(struct limdefs *d, int64_t id)
{
	struct lim_def *def = hmap_remove(&d->by_id, hmap_hash_u64((uint64_t)id), def_eq, &id);
	uint64_t owner;
	struct group *g;

	if (!def)
		return;
	owner = owner_of(def->tenant_id, def->key_id);
	g = hmap_find(&d->by_owner, hmap_hash_u64(owner), group_eq, &owner);
	for (size_t i = 0; g && i < g->n; i++)
		if (g->v[i] == def) {
			g->v[i] = g->v[--g->n];
			break;
		}
	d->count--;
	free(def);
}

void limdefs_put(struct limdefs *d, const struct lim_def *src)
{
	struct lim_def *def = xmalloc(sizeof(*def));
	uint64_t owner = owner_of(src->tenant_id, src->key_id);
	struct group *g;

	limdefs_del(d, src->id);
	*def = *src;
	def->version = lim_def_digest(src);
	hmap_insert(&d->by_id, hmap_hash_u64((uint64_t)def->id), def);
	g = hmap_find(&d->by_owner, hmap_hash_u64(owner), group_eq, &owner);
	if (!g) {
		g = xcalloc(1, sizeof(*g));
		g->owner = owner;
		hmap_insert(&d->by_owner, hmap_hash_u64(owner), g);
	}
	if (g->n == g->cap) {
		g->cap = g->cap ? 2 * g->cap : 4;
		g->v = xrealloc(g->v, g->cap * sizeof(*g->v));
	}
	g->v[g->n++] = def;
	d->count++;
}

/* Key beats tenant + model beats tenant beats model beats global. */
static int specificity(const struct lim_def *def)
{
	return (def->key_id ? 8 : 0) + (def->tenant_id ? 2 : 0) + (def->model_id ? 1 : 0);
}

/* Definitions in one slot override each other. */
static int same_slot(const struct lim_def *a, const struct lim_def *b)
{
	if (a->scope != b->scope || a->dim != b->dim)
		return 0;
	if (a->dim == LD_QUOTA || a->dim == LD_BUDGET)
		return a->p.algo == b->p.algo; /* day or month */
	if (a->dim == LD_CONCURRENT)
		return 1;
	return a->p.window_us == b->p.window_us;
}

static int matches(const struct lim_def *def, int64_t tenant_id, int64_t key_id, int64_t model_id)
{
	return (!def->tenant_id || def->tenant_id == tenant_id) && (!def->key_id || def->key_id == key_id) &&
	       (!def->model_id || def->model_id == model_id);
}

static size_t consider(const struct lim_def *def, struct lim_def *out, size_t n, size_t cap)
{
	for (size_t i = 0; i < n; i++) {
		if (!same_slot(&out[i], def))
			continue;
		if (specificity(def) > specificity(&out[i]) ||
		    (specificity(def) == specificity(&out[i]) && def->id < out[i].id))
			out[i] = *def;
		return n;
	}
	if (n < cap)
		out[n++] = *def;
	return n;
}

size_t limdefs_select(const struct limdefs *d, int64_t tenant_id, int64_t key_id, int64_t model_id,
		      struct lim_def *out, size_t cap)
{
	uint64_t owners[3] = { 0, owner_of(tenant_id, 0), owner_of(0, key_id) };
	size_t n = 0;

	for (int o = 0; o < 3; o++) {
		const struct group *g;

		if ((o == 1 && !tenant_id) || (o == 2 && !key_id))
			continue;
		g = hmap_find(&d->by_owner, hmap_hash_u64(owners[o]), group_eq, &owners[o]);
		for (size_t i = 0; g && i < g->n; i++)
			if (matches(g->v[i], tenant_id, key_id, model_id))
				n = consider(g->v[i], out, n, cap);
	}
	return n;
}

const char *lim_def_invalid(const struct lim_def *def)
{
	const struct lim_params *p = &def->p;
	int period = p->algo == LIM_PERIOD_DAY || p->algo == LIM_PERIOD_MONTH;
	int conc = lim_is_concurrency(p->algo);

	if (p->amount <= 0)
		return "amount must be positive";
	if ((def->dim == LD_QUOTA || def->dim == LD_BUDGET) != period)
		return "quota and budget limits (only they) use the periods 'day' or 'month'";
	if ((def->dim == LD_CONCURRENT) != conc)
		return "concurrent limits (only they) use 'concurrency' or 'adaptive'";
	if (!period && !conc && p->window_us <= 0)
		return "rate limits need a positive window";
	if (p->algo == LIM_WARMUP && p->warmup_us <= 0)
		return "warm-up needs a positive warmup period";
	return NULL;
}

uint64_t lim_def_digest(const struct lim_def *def)
{
	struct {
		int64_t tenant_id, key_id, model_id;
		int32_t scope, dim, algo, cold;
		int64_t amount, window, burst, warmup, lat;
		int32_t min_limit, pad;
	} k;

	memset(&k, 0, sizeof(k));
	k.tenant_id = def->tenant_id;
	k.key_id = def->key_id;
	k.model_id = def->model_id;
	k.scope = def->scope;
	k.dim = def->dim;
	k.algo = def->p.algo;
	k.cold = def->p.cold_factor;
	k.amount = def->p.amount;
	k.window = def->p.window_us;
	k.burst = def->p.burst;
	k.warmup = def->p.warmup_us;
	k.lat = def->p.latency_target_us;
	k.min_limit = def->p.min_limit;
	return hmap_hash_bytes(&k, sizeof(k));
}

static int64_t num(const char *s)
{
	return strtoll(s, NULL, 10);
}

int limdefs_put_row(struct limdefs *d, const char *const v[LIMDEFS_ROW_COLS], char *err,
		    size_t errlen)
{
	struct lim_def def;
	const char *why;

	memset(&def, 0, sizeof(def));
	def.id = num(v[0]);
	def.tenant_id = num(v[1]);
	def.key_id = num(v[2]);
	def.model_id = num(v[3]);
	if (lim_scope_parse(v[4], &def.scope) < 0 || lim_dim_parse(v[5], &def.dim) < 0 ||
	    lim_algo_parse(v[6], &def.p.algo) < 0) {
		snprintf(err, errlen, "unknown scope, dimension or algorithm (%s, %s, %s)", v[4], v[5], v[6]);
		return -1;
	}
	def.p.amount = num(v[7]);
	def.p.window_us = num(v[8]) * 1000;
	def.p.burst = num(v[9]);
	def.p.warmup_us = num(v[10]) * 1000;
	def.p.cold_factor = (int32_t)num(v[11]);
	def.p.min_limit = (int32_t)num(v[12]);
	def.p.latency_target_us = num(v[13]) * 1000;
	if ((why = lim_def_invalid(&def))) {
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	limdefs_put(d, &def);
	return 0;
}
