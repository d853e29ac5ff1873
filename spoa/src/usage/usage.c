#include "usage/usage.h"

#include "util/dbwriter.h"
#include "util/hmap.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <inttypes.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One statement per batch, applied once per (agent, seq) (sql/010, usage_record). */
#define FLUSH_SQL                                                                                  \
	"SELECT jairouter.usage_record($1, $2, $3::bigint[], $4::bigint[], $5::bigint[], "         \
	"$6::bigint[], $7::text[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], "     \
	"$12::bigint[], $13::bigint[])"
#define FLUSH_ARRAYS 11
#define FLUSH_PARAMS (FLUSH_ARRAYS + 2)

/* This month's usage (UTC), for the local quota and budget counters. */
#define SEED_SQL                                                                                   \
	"SELECT extract(epoch FROM day)::bigint, tenant_id, key_id, model_id, "                    \
	"prompt_tokens + completion_tokens, ceil(cost * 1000000)::bigint FROM jairouter.usage_daily " \
	"WHERE day >= date_trunc('month', now() AT TIME ZONE 'UTC')::date"
#define SEED_TRIES 3

struct row {
	int64_t hour, tenant_id, key_id, model_id;
	int64_t requests, pt, ct, estimated, failed, cost_micro;
	char user[USAGE_USER_MAX + 1];
};

struct batch {
	int64_t seq;
	struct row *rows;
	size_t n;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct hmap agg;     /* struct row, keyed by (hour, tenant, key, model, user) */
static int agg_init;
static size_t max_rows = 100000;
static struct batch inflight; /* sent or to be re-sent; rows == NULL when none */
static int64_t next_seq = 1;
static char agent_id[96];
static void (*seed_fn)(const struct usage_seed_row *rows, size_t n);
static int seed_tries;

void usage_set_seed(void (*fn)(const struct usage_seed_row *rows, size_t n))
{
	seed_fn = fn;
}

static struct {
	_Atomic uint64_t requests, estimated, batches, batch_errors, rows_written, rows_dropped;
	_Atomic uint64_t users_folded;
	_Atomic int64_t last_flush_unix;
} st;

/* The writer (control thread only). */
static struct {
	struct dbw *pg;              /* NULL without a database */
	int seeding;                 /* the statement in flight is the seed query */
	struct usage_seed_row *seed; /* rows collected so far */
	size_t nseed, seed_cap;
	struct params *sent;         /* the parameters of the batch in flight */
} w;

static int row_eq(const void *item, const void *key)
{
	const struct row *a = item, *b = key;

	return a->hour == b->hour && a->tenant_id == b->tenant_id && a->key_id == b->key_id &&
	       a->model_id == b->model_id && strcmp(a->user, b->user) == 0;
}

static uint64_t row_hash(const struct row *r)
{
	int64_t k[4] = { r->hour, r->tenant_id, r->key_id, r->model_id };

	return hmap_hash_bytes(k, sizeof(k)) ^ hmap_hash_bytes(r->user, strlen(r->user));
}

static void merge(struct row *dst, const struct row *src)
{
	dst->requests += src->requests;
	dst->pt += src->pt;
	dst->ct += src->ct;
	dst->estimated += src->estimated;
	dst->failed += src->failed;
	dst->cost_micro += src->cost_micro;
}

/* Adds under mu. Returns 0, or -1 when the row is new and the buffer is full. A row
 * naming an end user may take only three quarters of the buffer: the last quarter is kept
 * for rows without one and for the "(other)" rows that named users fold into. */
static int add_row_locked(const struct row *r)
{
	uint64_t h = row_hash(r);
	struct row *e = hmap_find(&agg, h, row_eq, r);
	size_t cap = max_rows;

	if (e) {
		merge(e, r);
		return 0;
	}
	if (r->user[0] && strcmp(r->user, USAGE_USER_OTHER) != 0)
		cap -= max_rows / 4;
	if (agg.count + inflight.n >= cap)
		return -1;
	e = xmalloc(sizeof(*e));
	*e = *r;
	hmap_insert(&agg, h, e);
	return 0;
}

/* The length of the valid UTF-8 sequence at s (n bytes left), 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t need = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;

	if (s[0] >= 0xf5 || need == 0 || need > n)
		return 0;
	for (size_t i = 1; i < need; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
		return 0; /* overlong, surrogate or beyond U+10FFFF */
	return need;
}

size_t usage_user_clean(char *dst, const char *src, size_t len)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t i = 0, o = 0;

	while (src && i < len) {
		size_t n = s[i] < 0x80 ? 1 : utf8_len(s + i, len - i);
		if (o + (n ? n : 1) > USAGE_USER_MAX)
			break;
		if (n <= 1) {
			dst[o++] = n == 1 && s[i] >= 0x20 && s[i] != 0x7f ? (char)s[i] : '?';
			i++;
			continue;
		}
		memcpy(dst + o, s + i, n);
		o += n;
		i += n;
	}
	dst[o] = '\0';
	return o;
}

void usage_add(const struct usage_rec *u)
{
	struct row r = { u->hour ? u->hour : u->day, u->tenant_id, u->key_id, u->model_id, 1,
			 u->prompt_tokens, u->completion_tokens, u->estimated ? 1 : 0,
			 u->failed ? 1 : 0, u->cost_micro, "" };
	int rc;

	usage_user_clean(r.user, u->user, u->user ? u->user_len : 0);

	atomic_fetch_add(&st.requests, 1);
	if (u->estimated)
		atomic_fetch_add(&st.estimated, 1);
	pthread_mutex_lock(&mu);
	if (!agg_init) {
		hmap_init(&agg);
		agg_init = 1;
	}
	rc = add_row_locked(&r);
	if (rc < 0 && r.user[0]) { /* full: the tenant's "(other)" row keeps the usage */
		snprintf(r.user, sizeof(r.user), "%s", USAGE_USER_OTHER);
		rc = add_row_locked(&r);
		if (rc == 0)
			atomic_fetch_add(&st.users_folded, 1);
	}
	if (rc < 0)
		atomic_fetch_add(&st.rows_dropped, 1);
	pthread_mutex_unlock(&mu);
}

struct collect {
	struct row *rows;
	size_t n;
};

static void collect_one(void *item, void *arg)
{
	struct collect *c = arg;

	c->rows[c->n++] = *(struct row *)item;
	free(item);
}

/* Moves the aggregates into `inflight` as a new batch (when none is waiting). */
static void take_batch(void)
{
	struct collect c;

	pthread_mutex_lock(&mu);
	if (inflight.rows || !agg_init || agg.count == 0) {
		pthread_mutex_unlock(&mu);
		return;
	}
	c.rows = xcalloc(agg.count, sizeof(*c.rows));
	c.n = 0;
	hmap_each(&agg, collect_one, &c);
	hmap_clear(&agg);
	hmap_init(&agg);
	inflight.rows = c.rows;
	inflight.n = c.n;
	inflight.seq = next_seq++;
	pthread_mutex_unlock(&mu);
}

/* Text arrays for the statement's parameters. */
struct params {
	char seq[32];
	struct evbuffer *arr[FLUSH_ARRAYS];
	char *val[FLUSH_PARAMS];
};

/* An array element in double quotes ("...", with \ and " escaped): end users are text. */
static void add_quoted(struct evbuffer *b, const char *s)
{
	evbuffer_add(b, "\"", 1);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			evbuffer_add(b, "\\", 1);
		evbuffer_add(b, s, 1);
	}
	evbuffer_add(b, "\"", 1);
}

static void params_build(struct params *p, const struct batch *b)
{
	snprintf(p->seq, sizeof(p->seq), "%lld", (long long)b->seq);
	for (int i = 0; i < FLUSH_ARRAYS; i++) {
		p->arr[i] = evbuffer_new();
		evbuffer_add(p->arr[i], "{", 1);
	}
	for (size_t i = 0; i < b->n; i++) {
		const struct row *r = &b->rows[i];
		int64_t v[FLUSH_ARRAYS] = { r->hour, r->tenant_id, r->key_id, r->model_id, 0, r->requests,
					    r->pt, r->ct, r->estimated, r->failed, r->cost_micro };
		for (int k = 0; k < FLUSH_ARRAYS; k++) {
			if (i)
				evbuffer_add(p->arr[k], ",", 1);
			if (k == 4)
				add_quoted(p->arr[k], r->user);
			else
				evbuffer_add_printf(p->arr[k], "%lld", (long long)v[k]);
		}
	}
	p->val[0] = agent_id;
	p->val[1] = p->seq;
	for (int i = 0; i < FLUSH_ARRAYS; i++) {
		evbuffer_add(p->arr[i], "}", 2); /* with the NUL */
		p->val[i + 2] = (char *)evbuffer_pullup(p->arr[i], -1);
	}
}

static void params_free(struct params *p)
{
	for (int i = 0; i < FLUSH_ARRAYS; i++)
		evbuffer_free(p->arr[i]);
}

static void batch_done(void)
{
	pthread_mutex_lock(&mu);
	atomic_fetch_add(&st.rows_written, inflight.n);
	free(inflight.rows);
	inflight.rows = NULL;
	inflight.n = 0;
	pthread_mutex_unlock(&mu);
	atomic_fetch_add(&st.batches, 1);
	atomic_store(&st.last_flush_unix, (int64_t)time(NULL));
}

/* ---- the writer's callbacks (util/dbwriter.h) ----------------------------------------------- */

static void seed_row(void *arg, int ncols, const char *const *v)
{
	struct usage_seed_row *s;

	(void)arg;
	if (!w.seeding || ncols != 6)
		return;
	if (w.nseed == w.seed_cap) {
		w.seed_cap = w.seed_cap ? 2 * w.seed_cap : 64;
		w.seed = xrealloc(w.seed, w.seed_cap * sizeof(*w.seed));
	}
	s = &w.seed[w.nseed++];
	s->day = strtoll(v[0] ? v[0] : "0", NULL, 10);
	s->tenant_id = strtoll(v[1] ? v[1] : "0", NULL, 10);
	s->key_id = strtoll(v[2] ? v[2] : "0", NULL, 10);
	s->model_id = strtoll(v[3] ? v[3] : "0", NULL, 10);
	s->tokens = strtoll(v[4] ? v[4] : "0", NULL, 10);
	s->cost_micro = strtoll(v[5] ? v[5] : "0", NULL, 10);
}

static void seed_done(int ok)
{
	w.seeding = 0;
	if (ok) {
		seed_fn(w.seed, w.nseed);
		log_event(LOG_INFO, "usage_seeded", LOG_FIELDS(LOG_I("rows", w.nseed)),
			  "usage: this month's recorded usage (%zu rows) "
			  "seeds the local quota and "
			  "budget counters", w.nseed);
		seed_fn = NULL;
	} else if (++seed_tries >= SEED_TRIES) {
		log_event(LOG_ERROR, "usage_seed_gave_up", LOG_FIELDS(LOG_I("tries", SEED_TRIES)),
			  "usage: could not read this month's usage %d times; local quotas and "
			  "budgets count from zero", SEED_TRIES);
		seed_fn(NULL, 0);
		seed_fn = NULL;
	}
	free(w.seed);
	w.seed = NULL;
	w.nseed = w.seed_cap = 0;
}

static int next_query(void *arg, struct dbw_query *q)
{
	(void)arg;
	if (seed_fn) {
		/* Before any batch: this process' own usage must not be in the seed. */
		w.seeding = 1;
		q->sql = SEED_SQL;
		q->nparams = 0;
		q->params = NULL;
		return 1;
	}
	take_batch();
	if (!inflight.rows)
		return 0;
	w.sent = xmalloc(sizeof(*w.sent));
	params_build(w.sent, &inflight);
	q->sql = FLUSH_SQL;
	q->nparams = FLUSH_PARAMS;
	q->params = (const char *const *)w.sent->val;
	return 1;
}

/* The batch in flight is written, or kept to be re-sent. */
static void query_done(void *arg, enum dbw_status status, const char *err)
{
	(void)arg;
	if (w.sent) {
		params_free(w.sent);
		free(w.sent);
		w.sent = NULL;
	}
	if (w.seeding) {
		if (status == DBW_ERROR)
			log_event(LOG_WARN, "usage_seed_failed", LOG_FIELDS(LOG_S("error", err)),
				  "usage: reading this month's usage failed: %s", err);
		if (status == DBW_STOP) {
			w.seeding = 0;
			free(w.seed);
			w.seed = NULL;
			w.nseed = w.seed_cap = 0;
		} else {
			seed_done(status == DBW_OK);
		}
		return;
	}
	if (status == DBW_OK)
		batch_done();
	else if (status == DBW_ERROR)
		log_event(LOG_WARN, "usage_write_failed", LOG_FIELDS(LOG_S("error", err)),
			  "usage: batch write failed: %s", err);
	if (status == DBW_ERROR || status == DBW_LOST)
		atomic_fetch_add(&st.batch_errors, 1);
}

static const struct dbw_ops writer_ops = {
	.name = "usage",
	.appname = "jairouter-usage",
	.down_msg = "usage is kept in memory (up to usage_max_rows rows) and written later",
	.next = next_query,
	.row = seed_row,
	.done = query_done,
};

int usage_start(struct event_base *base, const char *conninfo, unsigned flush_ms, size_t maxr)
{
	unsigned char rnd[8];
	char host[64] = "agent";

	pthread_mutex_lock(&mu);
	if (!agg_init) {
		hmap_init(&agg);
		agg_init = 1;
	}
	max_rows = maxr ? maxr : 100000;
	pthread_mutex_unlock(&mu);
	gethostname(host, sizeof(host) - 1);
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		memset(rnd, 0, sizeof(rnd));
	snprintf(agent_id, sizeof(agent_id), "%.40s:%d:%02x%02x%02x%02x%02x%02x%02x%02x", host,
		 (int)getpid(), rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	memset(&w, 0, sizeof(w));
	if (conninfo && conninfo[0]) {
		w.pg = dbw_start(base, conninfo, flush_ms, &writer_ops, NULL);
		if (!w.pg)
			return -1;
	}
	return 0;
}

static void free_row(void *item, void *arg)
{
	(void)arg;
	free(item);
}

/* Graceful stop: a blocking connection writes the waiting batch, then the rest. */
static int write_sync(const struct batch *b)
{
	struct params p;
	struct dbw_query q = { FLUSH_SQL, FLUSH_PARAMS, NULL };
	int rc;

	params_build(&p, b);
	q.params = (const char *const *)p.val;
	rc = dbw_exec_sync(w.pg, &q);
	params_free(&p);
	return rc;
}

void usage_stop(void)
{
	size_t lost = 0;

	dbw_halt(w.pg); /* a batch in flight is re-sent below: applied at most once */
	for (int round = 0; round < 2; round++) {
		if (!inflight.rows)
			take_batch();
		if (!inflight.rows)
			break;
		if (write_sync(&inflight) == 0) {
			batch_done();
		} else {
			lost += inflight.n;
			pthread_mutex_lock(&mu);
			free(inflight.rows);
			inflight.rows = NULL;
			inflight.n = 0;
			pthread_mutex_unlock(&mu);
		}
	}
	if (lost)
		log_event(LOG_ERROR, "usage_stop_rows_lost", LOG_FIELDS(LOG_I("rows", lost)),
			  "usage: %zu aggregated row(s) could not be written at stop", lost);
	else if (w.pg)
		log_event(LOG_INFO, "usage_stop_written", LOG_NO_FIELDS,
			  "usage: written to PostgreSQL at stop");
	atomic_fetch_add(&st.rows_dropped, lost);
	dbw_free(w.pg);
	w.pg = NULL;
	pthread_mutex_lock(&mu);
	if (agg_init) {
		hmap_each(&agg, free_row, NULL);
		hmap_clear(&agg);
		agg_init = 0;
	}
	pthread_mutex_unlock(&mu);
}

void usage_stats(struct usage_stats *o)
{
	pthread_mutex_lock(&mu);
	o->rows_pending = (agg_init ? agg.count : 0) + inflight.n;
	pthread_mutex_unlock(&mu);
	o->requests = atomic_load(&st.requests);
	o->estimated = atomic_load(&st.estimated);
	o->batches = atomic_load(&st.batches);
	o->batch_errors = atomic_load(&st.batch_errors);
	o->rows_written = atomic_load(&st.rows_written);
	o->rows_dropped = atomic_load(&st.rows_dropped);
	o->users_folded = atomic_load(&st.users_folded);
	o->last_flush_unix = atomic_load(&st.last_flush_unix);
	o->db_up = dbw_up(w.pg);
}

void usage_render_metrics(struct evbuffer *out, void *arg)
{
	struct usage_stats s;

	(void)arg;
	usage_stats(&s);
	evbuffer_add_printf(out,
		"# HELP jairouter_usage_requests_total Requests whose usage was recorded.\n"
		"# TYPE jairouter_usage_requests_total counter\njairouter_usage_requests_total %" PRIu64 "\n"
		"# HELP jairouter_usage_estimated_total Requests recorded with estimated usage.\n"
		"# TYPE jairouter_usage_estimated_total counter\njairouter_usage_estimated_total %" PRIu64 "\n"
		"# HELP jairouter_usage_batches_total Usage batches written to PostgreSQL.\n"
		"# TYPE jairouter_usage_batches_total counter\njairouter_usage_batches_total %" PRIu64 "\n"
		"# HELP jairouter_usage_batch_errors_total Usage batches that failed (kept and re-sent).\n"
		"# TYPE jairouter_usage_batch_errors_total counter\njairouter_usage_batch_errors_total %" PRIu64 "\n"
		"# HELP jairouter_usage_rows_dropped_total Usage rows lost (buffer full, or unwritable at stop).\n"
		"# TYPE jairouter_usage_rows_dropped_total counter\njairouter_usage_rows_dropped_total %" PRIu64 "\n"
		"# HELP jairouter_usage_users_folded_total Requests recorded under the end user "
		"\"(other)\" because the usage buffer was full.\n"
		"# TYPE jairouter_usage_users_folded_total counter\njairouter_usage_users_folded_total %" PRIu64 "\n"
		"# HELP jairouter_usage_rows_pending Aggregated usage rows not yet written.\n"
		"# TYPE jairouter_usage_rows_pending gauge\njairouter_usage_rows_pending %zu\n"
		"# HELP jairouter_usage_last_flush_timestamp_seconds Last successful usage write.\n"
		"# TYPE jairouter_usage_last_flush_timestamp_seconds gauge\n"
		"jairouter_usage_last_flush_timestamp_seconds %" PRId64 "\n",
		s.requests, s.estimated, s.batches, s.batch_errors, s.rows_dropped, s.users_folded,
		s.rows_pending,
		s.last_flush_unix);
}
