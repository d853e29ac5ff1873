#include "lb/table.h"

#include "util/xalloc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EWMA_TAU_MS 10000.0  /* latency EWMA time constant */
#define IDLE_DECAY_MS 10000  /* an unmeasured server's estimate halves this often */
#define SLOW_START_FLOOR 0.1 /* weight fraction a server gets at the start of slow start */
#define ECON_DELTA_MAX 100   /* connection errors fed to a breaker per poll, at most */
#define SAT_MAX_S 300        /* longest 429 retry-after honoured */

static const char *const health_names[LB_H__COUNT] = { "up", "down", "maint", "drain", "nolb" };
static const char *const why_names[LB_W__COUNT] = { "none", "down", "circuit_open", "saturated" };

const char *lb_health_name(enum lb_health h)
{
	return (unsigned)h < LB_H__COUNT ? health_names[h] : "unknown";
}

enum lb_health lb_health_parse(const char *st)
{
	if (strncmp(st, "UP", 2) == 0 || strcmp(st, "no check") == 0)
		return LB_H_UP;
	if (strncmp(st, "MAINT", 5) == 0)
		return LB_H_MAINT;
	if (strncmp(st, "DRAIN", 5) == 0)
		return LB_H_DRAIN;
	if (strncmp(st, "NOLB", 4) == 0)
		return LB_H_NOLB;
	return LB_H_DOWN;
}

const char *lb_why_name(enum lb_why w)
{
	return (unsigned)w < LB_W__COUNT ? why_names[w] : "unknown";
}

int lb_why_parse(const char *name, size_t len)
{
	for (int i = 1; i < LB_W__COUNT; i++)
		if (strlen(why_names[i]) == len && memcmp(why_names[i], name, len) == 0)
			return i;
	return -1;
}

/* ---- parsing `show stat` ------------------------------------------------------------ */

enum col { C_PX, C_SV, C_SCUR, C_QCUR, C_ECON, C_STATUS, C_WEIGHT, C_TYPE, C__COUNT };
static const char *const col_names[C__COUNT] = { "pxname", "svname", "scur", "qcur",
						 "econ", "status", "weight", "type" };

#define FIELDS_MAX 128 /* columns looked at per line (2.6 has ~100) */
#define FIELD_MAX 128  /* bytes kept of one field */

/* Splits one CSV line into fields (HAProxy quotes a field holding a comma). Returns the
 * count; fields longer than FIELD_MAX are truncated (none we read can be). */
static int split_csv(const char *p, const char *end, char f[][FIELD_MAX], int max)
{
	int n = 0;

	while (n < max) {
		size_t k = 0;
		int quoted = p < end && *p == '"';
		if (quoted)
			p++;
		while (p < end) {
			if (quoted && *p == '"') {
				if (p + 1 < end && p[1] == '"') {
					p++;
				} else {
					quoted = 0;
					p++;
					continue;
				}
			} else if (!quoted && *p == ',') {
				break;
			}
			if (k + 1 < FIELD_MAX)
				f[n][k++] = *p;
			p++;
		}
		f[n++][k] = '\0';
		if (p >= end)
			break;
		p++; /* the comma */
	}
	return n;
}

static int header_columns(const char *p, const char *end, int idx[C__COUNT])
{
	static char f[FIELDS_MAX][FIELD_MAX];
	int n;

	if (end - p < 2 || p[0] != '#')
		return -1;
	p += p[1] == ' ' ? 2 : 1;
	n = split_csv(p, end, f, FIELDS_MAX);
	for (int c = 0; c < C__COUNT; c++) {
		idx[c] = -1;
		for (int i = 0; i < n; i++)
			if (strcmp(f[i], col_names[c]) == 0)
				idx[c] = i;
		if (idx[c] < 0)
			return -1;
	}
	return 0;
}

/* How many of the first max bytes of p (of n) are printable: the part of an unexpected
 * answer worth quoting in a log line. */
static size_t strcspn_n(const char *p, size_t n, size_t max)
{
	size_t i = 0;

	while (i < n && i < max && p[i] >= 0x20 && p[i] < 0x7f)
		i++;
	return i;
}

static struct lb_backend *backend_get(struct lb_table *t, const char *name)
{
	struct lb_backend *b;

	for (size_t i = t->nbe; i-- > 0;) /* rows of one backend are contiguous: last first */
		if (strcmp(t->be[i].name, name) == 0)
			return &t->be[i];
	if (t->nbe >= LB_BACKENDS_MAX)
		return NULL;
	if (t->nbe == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->be = xrealloc(t->be, t->cap * sizeof(*t->be));
	}
	b = &t->be[t->nbe++];
	memset(b, 0, sizeof(*b));
	snprintf(b->name, sizeof(b->name), "%s", name);
	lb_breaker_conf_default(&b->brc);
	return b;
}

#define COUNT_MAX 1000000000LL /* sessions or queue: anything larger is nonsense */

/* A non-negative decimal count, clamped to max (sums of counts must not overflow). */
static int64_t count_of(const char *v, int64_t max)
{
	long long n = strtoll(v, NULL, 10);

	return n < 0 ? 0 : n > max ? max : n;
}

static void server_add(struct lb_backend *b, char f[][FIELD_MAX], const int idx[C__COUNT])
{
	struct lb_server *s;

	if (b->n % 8 == 0)
		b->srv = xrealloc(b->srv, (b->n + 8) * sizeof(*b->srv));
	s = &b->srv[b->n++];
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", f[idx[C_SV]]);
	s->name_hash = hmap_hash_bytes(s->name, strlen(s->name));
	s->weight = (int)count_of(f[idx[C_WEIGHT]], 256); /* HAProxy weights are 0..256 */
	s->health = lb_health_parse(f[idx[C_STATUS]]);
	s->scur = count_of(f[idx[C_SCUR]], COUNT_MAX);
	s->qcur = count_of(f[idx[C_QCUR]], COUNT_MAX);
	s->econ = strtoull(f[idx[C_ECON]], NULL, 10);
	lb_breaker_init(&s->d.br);
}

static int name_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n < LB_NAME_MAX;
}

/* One data line: a server row of a be_* backend is added; anything else is skipped. */
static void parse_row(struct lb_table *t, const char *p, const char *end, const int idx[C__COUNT],
		      size_t *skipped)
{
	static __thread char f[FIELDS_MAX][FIELD_MAX];
	int n = split_csv(p, end, f, FIELDS_MAX);
	struct lb_backend *b;

	for (int c = 0; c < C__COUNT; c++)
		if (idx[c] >= n)
			return;
	if (strcmp(f[idx[C_TYPE]], "2") != 0 || strncmp(f[idx[C_PX]], "be_", 3) != 0)
		return;
	if (!name_ok(f[idx[C_PX]]) || !name_ok(f[idx[C_SV]]) ||
	    !(b = backend_get(t, f[idx[C_PX]])) || b->n >= LB_SERVERS_MAX) {
		(*skipped)++;
		return;
	}
	server_add(b, f, idx);
}

static void index_backends(struct lb_table *t)
{
	hmap_init(&t->by_name);
	for (size_t i = 0; i < t->nbe; i++) {
		pthread_mutex_init(&t->be[i].rr_lock, NULL);
		hmap_insert(&t->by_name, hmap_hash_bytes(t->be[i].name, strlen(t->be[i].name)), &t->be[i]);
	}
}

struct lb_table *lb_table_parse(const char *csv, size_t len, int64_t now_ms, size_t *skipped,
				char *err, size_t errlen)
{
	const char *p = csv, *end = csv + len, *nl;
	struct lb_table *t;
	int idx[C__COUNT];
	size_t skip = 0;

	nl = memchr(p, '\n', len);
	if (!nl || header_columns(p, nl, idx) < 0) {
		size_t shown = strcspn_n(csv, nl ? (size_t)(nl - csv) : len, 60);
		snprintf(err, errlen, "not a `show stat` CSV dump (it starts with \"%.*s\")", (int)shown, csv);
		return NULL;
	}
	t = xcalloc(1, sizeof(*t));
	t->built_ms = now_ms;
	for (p = nl + 1; p < end; p = nl + 1) {
		if (!(nl = memchr(p, '\n', (size_t)(end - p))))
			nl = end;
		if (nl > p)
			parse_row(t, p, nl, idx, &skip);
	}
	index_backends(t);
	if (skipped)
		*skipped = skip;
	return t;
}

void lb_table_free(struct lb_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nbe; i++) {
		pthread_mutex_destroy(&t->be[i].rr_lock);
		free(t->be[i].srv);
	}
	hmap_clear(&t->by_name);
	free(t->be);
	free(t);
}

static int eq_backend(const void *item, const void *key)
{
	return strcmp(((const struct lb_backend *)item)->name, key) == 0;
}

const struct lb_backend *lb_table_backend(const struct lb_table *t, const char *name)
{
	return hmap_find(&t->by_name, hmap_hash_bytes(name, strlen(name)), eq_backend, name);
}

static struct lb_server *server_find(const struct lb_backend *b, const char *name, size_t hint)
{
	if (hint < b->n && strcmp(b->srv[hint].name, name) == 0)
		return &b->srv[hint];
	for (size_t i = 0; i < b->n; i++)
		if (strcmp(b->srv[i].name, name) == 0)
			return &b->srv[i];
	return NULL;
}

/* ---- carrying the agent's knowledge over -------------------------------------------- */

static void dyn_copy(struct lb_dyn *to, const struct lb_dyn *from)
{
	atomic_store(&to->inflight, atomic_load(&from->inflight));
	atomic_store(&to->since_poll, 0);
	atomic_store(&to->selected, atomic_load(&from->selected));
	atomic_store(&to->ttfb_us, atomic_load(&from->ttfb_us));
	atomic_store(&to->total_us, atomic_load(&from->total_us));
	atomic_store(&to->br_state, atomic_load(&from->br_state));
	atomic_store(&to->br_tokens, atomic_load(&from->br_tokens));
	atomic_store(&to->sat_until_ms, atomic_load(&from->sat_until_ms));
	atomic_store(&to->up_since_ms, atomic_load(&from->up_since_ms));
	to->swrr = from->swrr;
	to->br = from->br;
	to->ewma_at_ms = from->ewma_at_ms;
	to->opened = from->opened;
	to->reported_ok = from->reported_ok;
	to->reported_fail = from->reported_fail;
}

static void publish_breaker(struct lb_server *s, const struct lb_breaker_conf *c, enum lb_br_event e,
			    int64_t now_ms)
{
	switch (e) {
	case LB_BR_OPENED:
		s->d.opened++;
		atomic_store(&s->d.br_tokens, 0);
		atomic_store(&s->d.br_state, LB_BR_OPEN);
		break;
	case LB_BR_HALF_OPENED:
	case LB_BR_REARM:
		atomic_store(&s->d.br_tokens, (int)(c->probes ? c->probes : 1));
		atomic_store(&s->d.br_state, LB_BR_HALF_OPEN);
		break;
	case LB_BR_CLOSED_EV:
		atomic_store(&s->d.br_state, LB_BR_CLOSED);
		atomic_store(&s->d.up_since_ms, now_ms); /* recovered: warm up again */
		break;
	case LB_BR_NONE:
		break;
	}
}

static void carry_server(struct lb_server *s, const struct lb_server *o, const struct lb_breaker_conf *c,
			 int64_t now_ms)
{
	uint64_t delta;
	int64_t bound = s->scur + s->qcur + atomic_load(&o->d.since_poll);

	dyn_copy(&s->d, &o->d);
	/* The agent's own count only leaks upward (a lost report): HAProxy's figure plus
	 * what was chosen since the last poll bounds it. */
	if (atomic_load(&s->d.inflight) > bound)
		atomic_store(&s->d.inflight, bound);
	if (s->health == LB_H_UP && o->health != LB_H_UP)
		atomic_store(&s->d.up_since_ms, now_ms);
	/* Connection failures HAProxy retried elsewhere never show in a request's report. */
	delta = s->econ > o->econ ? s->econ - o->econ : 0;
	for (uint64_t i = 0; i < delta && i < ECON_DELTA_MAX; i++)
		publish_breaker(s, c, lb_breaker_record(&s->d.br, c, 1, now_ms), now_ms);
}

void lb_table_carry(struct lb_table *fresh, const struct lb_table *old, int64_t now_ms)
{
	for (size_t i = 0; i < fresh->nbe; i++) {
		struct lb_backend *b = &fresh->be[i];
		const struct lb_backend *ob = old ? lb_table_backend(old, b->name) : NULL;
		for (size_t j = 0; j < b->n; j++) {
			struct lb_server *s = &b->srv[j];
			const struct lb_server *o = ob ? server_find(ob, s->name, j) : NULL;
			if (o)
				carry_server(s, o, &b->brc, now_ms);
			else if (old && s->health == LB_H_UP)
				atomic_store(&s->d.up_since_ms, now_ms); /* added at run time */
		}
	}
}

void lb_table_set_breaker(struct lb_table *t, const char *backend, const struct lb_breaker_conf *c)
{
	struct lb_backend *b = (struct lb_backend *)lb_table_backend(t, backend);

	if (b)
		b->brc = *c;
}

/* ---- choosing ---------------------------------------------------------------------- */

struct tally {
	size_t down, open, sat;
	int64_t sat_min_ms, open_min_ms; /* soonest a saturated / open server comes back */
};

static double slow_start_factor(const struct lb_dyn *d, const struct lb_choose_in *in)
{
	int64_t since = atomic_load_explicit(&d->up_since_ms, memory_order_relaxed), age;

	if (!in->slow_start_ms || since <= 0)
		return 1.0;
	age = in->now_ms - since;
	if (age >= (int64_t)in->slow_start_ms)
		return 1.0;
	return fmax(SLOW_START_FLOOR, (double)(age > 0 ? age : 0) / in->slow_start_ms);
}

static void min_into(int64_t *m, int64_t v)
{
	if (*m == 0 || v < *m)
		*m = v;
}

/* Whether server s may take a request now; counts the reason when not. */
static int usable(struct lb_server *s, const struct lb_backend *b, const struct lb_choose_in *in,
		  struct tally *t)
{
	int64_t sat;
	int st;

	if (s->health != LB_H_UP || s->weight <= 0) {
		t->down++;
		return 0;
	}
	sat = atomic_load_explicit(&s->d.sat_until_ms, memory_order_relaxed);
	if (in->now_ms < sat) {
		t->sat++;
		min_into(&t->sat_min_ms, sat - in->now_ms);
		return 0;
	}
	st = atomic_load_explicit(&s->d.br_state, memory_order_acquire);
	if (st == LB_BR_OPEN ||
	    (st == LB_BR_HALF_OPEN && atomic_load_explicit(&s->d.br_tokens, memory_order_relaxed) <= 0)) {
		t->open++;
		min_into(&t->open_min_ms, b->brc.open_ms ? b->brc.open_ms : 1000);
		return 0;
	}
	return 1;
}

static int64_t load_of(const struct lb_server *s)
{
	int64_t own = atomic_load_explicit(&s->d.inflight, memory_order_relaxed);

	return own > s->scur + s->qcur ? own : s->scur + s->qcur;
}

static size_t build(struct lb_backend *b, const struct lb_choose_in *in, struct lb_cand *c,
		    struct tally *t)
{
	size_t n = 0;

	for (size_t i = 0; i < b->n; i++) {
		struct lb_server *s = &b->srv[i];
		if (!usable(s, b, in, t))
			continue;
		c[n].idx = (uint32_t)i;
		c[n].weight = s->weight * slow_start_factor(&s->d, in);
		c[n].name_hash = s->name_hash;
		c[n].load = (double)load_of(s);
		c[n].latency_ms = atomic_load_explicit(&s->d.ttfb_us, memory_order_relaxed) / 1000.0;
		c[n].swrr = &s->d.swrr;
		n++;
	}
	return n;
}

static int ceil_s(int64_t ms)
{
	int64_t s = (ms + 999) / 1000;

	return s < 1 ? 1 : s > 3600 ? 3600 : (int)s;
}

static int nothing_usable(const struct tally *t, struct lb_choice *out)
{
	if (t->sat) {
		out->why = LB_W_SATURATED;
		out->retry_after_s = ceil_s(t->sat_min_ms);
	} else if (t->open) {
		out->why = LB_W_OPEN;
		out->retry_after_s = ceil_s(t->open_min_ms);
	} else {
		out->why = LB_W_DOWN;
		out->retry_after_s = 5;
	}
	return -1;
}

static size_t pick(struct lb_backend *b, const struct lb_strategy_ops *ops, const struct lb_cand *c,
		   size_t n, const struct lb_pick_ctx *pc, enum lb_strategy s)
{
	size_t k;

	if (n == 1)
		return 0;
	if (s != LB_S_ROUND_ROBIN)
		return ops->pick(c, n, pc);
	pthread_mutex_lock(&b->rr_lock);
	k = ops->pick(c, n, pc);
	pthread_mutex_unlock(&b->rr_lock);
	return k;
}

/* A half-open server takes only as many requests as it has probe tokens. */
static int claim_probe(struct lb_server *s)
{
	int tok = atomic_load(&s->d.br_tokens);

	while (tok > 0)
		if (atomic_compare_exchange_weak(&s->d.br_tokens, &tok, tok - 1))
			return 1;
	return 0;
}

int lb_table_choose(struct lb_table *t, const char *backend, const struct lb_choose_in *in,
		    struct lb_choice *out)
{
	struct lb_backend *b = (struct lb_backend *)lb_table_backend(t, backend);
	const struct lb_strategy_ops *ops = lb_strategy_ops(in->strategy);
	struct lb_pick_ctx pc = { in->rng, in->key_hash, in->has_key, in->bound };
	struct lb_cand c[LB_SERVERS_MAX];
	struct tally tl = { 0, 0, 0, 0, 0 };
	size_t n;

	memset(out, 0, sizeof(*out));
	if (!b || !ops)
		return 0;
	n = build(b, in, c, &tl);
	out->usable = n;
	while (n > 0) {
		size_t k = pick(b, ops, c, n, &pc, in->strategy);
		struct lb_server *s = &b->srv[c[k].idx];
		int half = atomic_load(&s->d.br_state) == LB_BR_HALF_OPEN;
		if (half && !claim_probe(s)) {
			c[k] = c[--n]; /* another worker took the last token */
			tl.open++;
			min_into(&tl.open_min_ms, b->brc.open_ms ? b->brc.open_ms : 1000);
			continue;
		}
		out->probe = half;
		atomic_fetch_add_explicit(&s->d.inflight, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&s->d.since_poll, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&s->d.selected, 1, memory_order_relaxed);
		memcpy(out->server, s->name, sizeof(out->server));
		out->latency_ms = c[k].latency_ms;
		return 1;
	}
	return nothing_usable(&tl, out);
}

/* ---- feedback ---------------------------------------------------------------------- */

void lb_table_release(struct lb_table *t, const char *backend, const char *server)
{
	const struct lb_backend *b = t ? lb_table_backend(t, backend) : NULL;
	struct lb_server *s = b ? server_find(b, server, 0) : NULL;
	int64_t v;

	if (!s)
		return;
	v = atomic_load(&s->d.inflight);
	while (v > 0 && !atomic_compare_exchange_weak(&s->d.inflight, &v, v - 1))
		;
}

static struct lb_server *server_of(struct lb_table *t, const char *backend, const char *server,
				   struct lb_backend **bp)
{
	struct lb_backend *b = (struct lb_backend *)lb_table_backend(t, backend);

	*bp = b;
	return b ? server_find(b, server, 0) : NULL;
}

static void ewma_update(struct lb_dyn *d, int64_t ttfb_ms, int64_t total_ms, int64_t now_ms)
{
	double w = d->ewma_at_ms ? exp(-(double)(now_ms - d->ewma_at_ms) / EWMA_TAU_MS) : 0.0;
	int64_t cur;

	if (w < 0 || w > 1)
		w = 0;
	if (ttfb_ms >= 0) {
		int64_t x = ttfb_ms * 1000;
		cur = atomic_load(&d->ttfb_us);
		/* Peak-sensitive: a slower sample is taken at once, a faster one is averaged in. */
		atomic_store(&d->ttfb_us, (!cur || x > cur) ? x : (int64_t)(cur * w + x * (1 - w)));
	}
	if (total_ms >= 0) {
		int64_t x = total_ms * 1000;
		cur = atomic_load(&d->total_us);
		atomic_store(&d->total_us, !cur ? x : (int64_t)(cur * w + x * (1 - w)));
	}
	d->ewma_at_ms = now_ms;
}

enum lb_br_event lb_table_report(struct lb_table *t, const char *backend, const char *server,
				 enum lb_outcome o, int64_t ttfb_ms, int64_t total_ms,
				 int retry_after_s, int64_t now_ms)
{
	struct lb_backend *b;
	struct lb_server *s = t ? server_of(t, backend, server, &b) : NULL;
	enum lb_br_event e;

	if (!s || o == LB_O_IGNORE)
		return LB_BR_NONE;
	if (o == LB_O_SATURATED) {
		int ra = retry_after_s < 1 ? 1 : retry_after_s > SAT_MAX_S ? SAT_MAX_S : retry_after_s;
		atomic_store(&s->d.sat_until_ms, now_ms + (int64_t)ra * 1000);
		return LB_BR_NONE;
	}
	if (o == LB_O_SUCCESS) {
		s->d.reported_ok++;
		ewma_update(&s->d, ttfb_ms, total_ms, now_ms);
	} else {
		s->d.reported_fail++;
	}
	e = lb_breaker_record(&s->d.br, &b->brc, o == LB_O_FAILURE, now_ms);
	publish_breaker(s, &b->brc, e, now_ms);
	return e;
}

void lb_table_tick(struct lb_table *t, int64_t now_ms,
		   void (*ev)(const struct lb_backend *, const struct lb_server *, enum lb_br_event,
			      void *),
		   void *arg)
{
	for (size_t i = 0; t && i < t->nbe; i++) {
		struct lb_backend *b = &t->be[i];
		for (size_t j = 0; j < b->n; j++) {
			struct lb_server *s = &b->srv[j];
			enum lb_br_event e = lb_breaker_tick(&s->d.br, &b->brc, now_ms);
			publish_breaker(s, &b->brc, e, now_ms);
			if (e != LB_BR_NONE && ev)
				ev(b, s, e, arg);
			/* A server nobody picks any more (it was slow) is retried eventually. */
			if (s->d.ewma_at_ms && now_ms - s->d.ewma_at_ms >= IDLE_DECAY_MS) {
				atomic_store(&s->d.ttfb_us, atomic_load(&s->d.ttfb_us) / 2);
				s->d.ewma_at_ms = now_ms;
			}
		}
	}
}
