#include "usage/usage.h"

#include "util/hmap.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RETRY_MS 1000
#define QUERY_TIMEOUT_S 10

/* One statement per batch: applied once per (agent, seq) thanks to usage_batches. */
#define FLUSH_SQL                                                                                  \
	"WITH b AS (INSERT INTO jairouter.usage_batches (agent, seq) VALUES ($1, $2) "             \
	"ON CONFLICT DO NOTHING RETURNING 1) "                                                     \
	"INSERT INTO jairouter.usage_daily AS u (day, tenant_id, key_id, model_id, requests, "     \
	"prompt_tokens, completion_tokens, estimated_requests, cost) "                             \
	"SELECT x.d, x.t, x.k, x.m, x.r, x.pt, x.ct, x.e, x.c::numeric / 1000000 FROM "            \
	"unnest($3::date[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], " \
	"$9::bigint[], $10::bigint[], $11::bigint[]) AS x(d, t, k, m, r, pt, ct, e, c) "            \
	"WHERE EXISTS (SELECT 1 FROM b) "                                                          \
	"ON CONFLICT (day, tenant_id, key_id, model_id) DO UPDATE SET "                            \
	"requests = u.requests + EXCLUDED.requests, "                                              \
	"prompt_tokens = u.prompt_tokens + EXCLUDED.prompt_tokens, "                               \
	"completion_tokens = u.completion_tokens + EXCLUDED.completion_tokens, "                   \
	"estimated_requests = u.estimated_requests + EXCLUDED.estimated_requests, "                \
	"cost = u.cost + EXCLUDED.cost, updated_at = now()"

/* This month's usage (UTC), for the local quota and budget counters. */
#define SEED_SQL                                                                                   \
	"SELECT extract(epoch FROM day)::bigint, tenant_id, key_id, model_id, "                    \
	"prompt_tokens + completion_tokens, ceil(cost * 1000000)::bigint FROM jairouter.usage_daily " \
	"WHERE day >= date_trunc('month', now() AT TIME ZONE 'UTC')::date"
#define SEED_TRIES 3

struct row {
	int64_t day, tenant_id, key_id, model_id;
	int64_t requests, pt, ct, estimated, cost_micro;
};

struct batch {
	int64_t seq;
	struct row *rows;
	size_t n;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct hmap agg;     /* struct row, keyed by (day, tenant, key, model) */
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
	_Atomic int64_t last_flush_unix;
	_Atomic int db_up;
} st;

/* The writer (control thread only). */
static struct {
	struct event_base *base;
	char *conninfo;
	PGconn *conn;
	int connecting, busy, failed;
	int seeding;                 /* the query in flight is the seed query */
	struct usage_seed_row *seed; /* rows collected so far */
	size_t nseed, seed_cap;
	time_t busy_since;
	struct event *io, *flush_timer;
	evutil_socket_t io_fd;
	short io_what;
	int64_t retry_at;
	unsigned flush_ms;
} w;

static int row_eq(const void *item, const void *key)
{
	const struct row *a = item, *b = key;

	return a->day == b->day && a->tenant_id == b->tenant_id && a->key_id == b->key_id &&
	       a->model_id == b->model_id;
}

static uint64_t row_hash(const struct row *r)
{
	int64_t k[4] = { r->day, r->tenant_id, r->key_id, r->model_id };

	return hmap_hash_bytes(k, sizeof(k));
}

static void merge(struct row *dst, const struct row *src)
{
	dst->requests += src->requests;
	dst->pt += src->pt;
	dst->ct += src->ct;
	dst->estimated += src->estimated;
	dst->cost_micro += src->cost_micro;
}

/* Adds under mu. Returns 0, or -1 when the row is new and the buffer is full. */
static int add_row_locked(const struct row *r)
{
	uint64_t h = row_hash(r);
	struct row *e = hmap_find(&agg, h, row_eq, r);

	if (e) {
		merge(e, r);
		return 0;
	}
	if (agg.count + inflight.n >= max_rows)
		return -1;
	e = xmalloc(sizeof(*e));
	*e = *r;
	hmap_insert(&agg, h, e);
	return 0;
}

void usage_add(const struct usage_rec *u)
{
	struct row r = { u->day, u->tenant_id, u->key_id, u->model_id, 1, u->prompt_tokens,
			 u->completion_tokens, u->estimated ? 1 : 0, u->cost_micro };

	atomic_fetch_add(&st.requests, 1);
	if (u->estimated)
		atomic_fetch_add(&st.estimated, 1);
	pthread_mutex_lock(&mu);
	if (!agg_init) {
		hmap_init(&agg);
		agg_init = 1;
	}
	if (add_row_locked(&r) < 0)
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
	struct evbuffer *arr[9];
	char *val[11];
};

static void params_build(struct params *p, const struct batch *b)
{
	snprintf(p->seq, sizeof(p->seq), "%lld", (long long)b->seq);
	for (int i = 0; i < 9; i++) {
		p->arr[i] = evbuffer_new();
		evbuffer_add(p->arr[i], "{", 1);
	}
	for (size_t i = 0; i < b->n; i++) {
		const struct row *r = &b->rows[i];
		time_t d = (time_t)r->day;
		struct tm tm;
		char day[16];
		int64_t v[8] = { r->tenant_id, r->key_id, r->model_id, r->requests, r->pt, r->ct,
				 r->estimated, r->cost_micro };
		gmtime_r(&d, &tm);
		strftime(day, sizeof(day), "%Y-%m-%d", &tm);
		evbuffer_add_printf(p->arr[0], "%s%s", i ? "," : "", day);
		for (int k = 0; k < 8; k++)
			evbuffer_add_printf(p->arr[k + 1], "%s%lld", i ? "," : "", (long long)v[k]);
	}
	p->val[0] = agent_id;
	p->val[1] = p->seq;
	for (int i = 0; i < 9; i++) {
		evbuffer_add(p->arr[i], "}", 2); /* with the NUL */
		p->val[i + 2] = (char *)evbuffer_pullup(p->arr[i], -1);
	}
}

static void params_free(struct params *p)
{
	for (int i = 0; i < 9; i++)
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

/* ---- the asynchronous connection -------------------------------------------------------- */

static void io_cb(evutil_socket_t fd, short what, void *arg);

static void watch(short what)
{
	evutil_socket_t fd = PQsocket(w.conn);

	if (w.io && (w.io_fd != fd || w.io_what != what)) {
		event_free(w.io);
		w.io = NULL;
	}
	if (!w.io && fd >= 0) {
		w.io = event_new(w.base, fd, what | EV_PERSIST, io_cb, NULL);
		w.io_fd = fd;
		w.io_what = what;
		event_add(w.io, NULL);
	}
}

static void seed_done(int ok);

static void drop(const char *why)
{
	if (w.conn) {
		if (atomic_load(&st.db_up))
			log_warn("usage: PostgreSQL writer %s: %s; usage is kept in memory (up to "
				 "usage_max_rows rows) and written later", why, PQerrorMessage(w.conn));
		PQfinish(w.conn);
	}
	if (w.io)
		event_free(w.io);
	w.io = NULL;
	w.conn = NULL;
	w.connecting = w.busy = 0;
	if (w.seeding)
		seed_done(0);
	w.retry_at = (int64_t)time(NULL) + RETRY_MS / 1000;
	atomic_store(&st.db_up, 0);
}

static void connect_step(void)
{
	switch (PQconnectPoll(w.conn)) {
	case PGRES_POLLING_READING: watch(EV_READ); break;
	case PGRES_POLLING_WRITING: watch(EV_WRITE); break;
	case PGRES_POLLING_OK:
		w.connecting = 0;
		PQsetnonblocking(w.conn, 1);
		watch(EV_READ);
		atomic_store(&st.db_up, 1);
		break;
	default: drop("could not connect"); break;
	}
}

static void start_connect(void)
{
	const char *keys[] = { "dbname", "application_name", NULL };
	const char *vals[] = { w.conninfo, "jairouter-usage", NULL };

	w.conn = PQconnectStartParams(keys, vals, 1);
	if (!w.conn || PQstatus(w.conn) == CONNECTION_BAD) {
		drop("could not start connecting");
		return;
	}
	w.connecting = 1;
	connect_step();
}

static void seed_rows(const PGresult *r)
{
	int n = PQntuples(r);

	if (PQnfields(r) != 6)
		return;
	if (w.nseed + (size_t)n > w.seed_cap) {
		w.seed_cap = w.nseed + (size_t)n;
		w.seed = xrealloc(w.seed, w.seed_cap * sizeof(*w.seed));
	}
	for (int i = 0; i < n; i++) {
		struct usage_seed_row *s = &w.seed[w.nseed++];
		s->day = strtoll(PQgetvalue(r, i, 0), NULL, 10);
		s->tenant_id = strtoll(PQgetvalue(r, i, 1), NULL, 10);
		s->key_id = strtoll(PQgetvalue(r, i, 2), NULL, 10);
		s->model_id = strtoll(PQgetvalue(r, i, 3), NULL, 10);
		s->tokens = strtoll(PQgetvalue(r, i, 4), NULL, 10);
		s->cost_micro = strtoll(PQgetvalue(r, i, 5), NULL, 10);
	}
}

static void seed_done(int ok)
{
	w.seeding = 0;
	if (ok) {
		seed_fn(w.seed, w.nseed);
		log_info("usage: this month's recorded usage (%zu rows) seeds the local quota and "
			 "budget counters", w.nseed);
		seed_fn = NULL;
	} else if (++seed_tries >= SEED_TRIES) {
		log_error("usage: could not read this month's usage %d times; local quotas and "
			  "budgets count from zero", SEED_TRIES);
		seed_fn(NULL, 0);
		seed_fn = NULL;
	}
	free(w.seed);
	w.seed = NULL;
	w.nseed = w.seed_cap = 0;
}

static void read_results(void)
{
	PGresult *r;

	if (!PQconsumeInput(w.conn)) {
		atomic_fetch_add(&st.batch_errors, 1);
		drop("lost its connection");
		return;
	}
	while (!PQisBusy(w.conn)) {
		if (!(r = PQgetResult(w.conn))) {
			/* The query is over: written, or kept to be re-sent. */
			w.busy = 0;
			if (w.seeding)
				seed_done(!w.failed);
			else if (w.failed)
				atomic_fetch_add(&st.batch_errors, 1);
			else
				batch_done();
			w.failed = 0;
			return;
		}
		if (w.seeding && PQresultStatus(r) == PGRES_TUPLES_OK)
			seed_rows(r);
		if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
			log_warn("usage: batch write failed: %s", PQresultErrorMessage(r));
			w.failed = 1;
		}
		PQclear(r);
	}
}

static void io_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (!w.conn)
		return;
	if (w.connecting)
		connect_step();
	else if (w.busy)
		read_results();
	else if (!PQconsumeInput(w.conn))
		drop("lost its connection");
	if (w.conn && !w.connecting && w.busy && PQflush(w.conn) == 1)
		watch(EV_READ | EV_WRITE);
	else if (w.conn && !w.connecting)
		watch(EV_READ);
}

static void send_batch(void)
{
	struct params p;
	int ok;

	params_build(&p, &inflight);
	ok = PQsendQueryParams(w.conn, FLUSH_SQL, 11, NULL, (const char *const *)p.val, NULL, NULL, 0);
	params_free(&p);
	if (!ok) {
		atomic_fetch_add(&st.batch_errors, 1);
		drop("could not send a batch");
		return;
	}
	w.busy = 1;
	w.busy_since = time(NULL);
	watch(PQflush(w.conn) == 1 ? EV_READ | EV_WRITE : EV_READ);
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (!w.conninfo)
		return;
	if (!w.conn) {
		if ((int64_t)time(NULL) >= w.retry_at)
			start_connect();
		return;
	}
	if (w.connecting)
		return;
	if (w.busy) {
		if (time(NULL) - w.busy_since > QUERY_TIMEOUT_S) {
			atomic_fetch_add(&st.batch_errors, 1);
			drop("timed out");
		}
		return;
	}
	if (seed_fn) {
		/* Before any batch: this process' own usage must not be in the seed. */
		if (!PQsendQueryParams(w.conn, SEED_SQL, 0, NULL, NULL, NULL, NULL, 0)) {
			drop("could not send the usage query");
			return;
		}
		w.seeding = w.busy = 1;
		w.busy_since = time(NULL);
		watch(PQflush(w.conn) == 1 ? EV_READ | EV_WRITE : EV_READ);
		return;
	}
	take_batch();
	if (inflight.rows)
		send_batch();
}

int usage_start(struct event_base *base, const char *conninfo, unsigned flush_ms, size_t maxr)
{
	unsigned char rnd[8];
	char host[64] = "agent";
	struct timeval tv;

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
	w.base = base;
	w.flush_ms = flush_ms;
	if (conninfo && conninfo[0])
		w.conninfo = strdup(conninfo);
	w.flush_timer = event_new(base, -1, EV_PERSIST, flush_cb, NULL);
	tv.tv_sec = flush_ms / 1000;
	tv.tv_usec = (flush_ms % 1000) * 1000;
	event_add(w.flush_timer, &tv);
	if (w.conninfo)
		start_connect();
	return 0;
}

static void free_row(void *item, void *arg)
{
	(void)arg;
	free(item);
}

/* Graceful stop: one blocking connection writes the waiting batch, then the rest. */
static int write_sync(PGconn *c, const struct batch *b)
{
	struct params p;
	PGresult *r;
	int ok;

	params_build(&p, b);
	r = PQexecParams(c, FLUSH_SQL, 11, NULL, (const char *const *)p.val, NULL, NULL, 0);
	params_free(&p);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		log_error("usage: final write failed: %s", PQresultErrorMessage(r));
	PQclear(r);
	return ok ? 0 : -1;
}

void usage_stop(void)
{
	const char *keys[] = { "dbname", "connect_timeout", "application_name", NULL };
	const char *vals[] = { w.conninfo, "3", "jairouter-usage", NULL };
	PGconn *c = NULL;
	size_t lost = 0;

	if (w.flush_timer)
		event_free(w.flush_timer);
	if (w.io)
		event_free(w.io);
	if (w.conn)
		PQfinish(w.conn); /* a batch in flight is re-sent below: applied at most once */
	w.conn = NULL;
	w.io = w.flush_timer = NULL;
	if (w.conninfo) {
		c = PQconnectdbParams(keys, vals, 1);
		if (PQstatus(c) != CONNECTION_OK) {
			log_error("usage: cannot write the last usage at stop: %s", PQerrorMessage(c));
			PQfinish(c);
			c = NULL;
		} else {
			PQclear(PQexec(c, "SET statement_timeout = '5s'"));
		}
	}
	for (int round = 0; round < 2; round++) {
		if (!inflight.rows)
			take_batch();
		if (!inflight.rows)
			break;
		if (c && write_sync(c, &inflight) == 0) {
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
		log_error("usage: %zu aggregated row(s) could not be written at stop", lost);
	else if (w.conninfo)
		log_info("usage: written to PostgreSQL at stop");
	atomic_fetch_add(&st.rows_dropped, lost);
	if (c)
		PQfinish(c);
	pthread_mutex_lock(&mu);
	if (agg_init) {
		hmap_each(&agg, free_row, NULL);
		hmap_clear(&agg);
		agg_init = 0;
	}
	pthread_mutex_unlock(&mu);
	free(w.conninfo);
	w.conninfo = NULL;
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
	o->last_flush_unix = atomic_load(&st.last_flush_unix);
	o->db_up = atomic_load(&st.db_up);
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
		"# HELP jairouter_usage_rows_pending Aggregated usage rows not yet written.\n"
		"# TYPE jairouter_usage_rows_pending gauge\njairouter_usage_rows_pending %zu\n"
		"# HELP jairouter_usage_last_flush_timestamp_seconds Last successful usage write.\n"
		"# TYPE jairouter_usage_last_flush_timestamp_seconds gauge\n"
		"jairouter_usage_last_flush_timestamp_seconds %" PRId64 "\n",
		s.requests, s.estimated, s.batches, s.batch_errors, s.rows_dropped, s.rows_pending,
		s.last_flush_unix);
}
