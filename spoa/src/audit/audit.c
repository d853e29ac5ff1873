/*
 * audit: JSON lines and the batched PostgreSQL writer (see audit.h).
 *
 * The writer (util/dbwriter.h) sends one queued batch per tick. A batch whose connection is
 * lost is kept and sent again after the reconnect, so a database restart loses nothing
 * that fits the queue; a batch the server rejects is logged and dropped.
 */
#include "audit/audit.h"

#include "util/dbwriter.h"
#include "util/json.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One batch, inserted once however often it is sent (sql/015_audit_batches.sql): $1 the
 * batch id, $2 the rows as a JSON array. */
#define INSERT_SQL "SELECT jairouter.record_security_audit($1, $2::json)"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char *queue[AUDIT_QUEUE_MAX]; /* ring of JSON objects (one row each) */
static size_t q_head, q_len;
static _Atomic uint64_t n_events, n_written, n_dropped;

static void put_field(struct jbuf *b, const char *name, const char *v)
{
	jbuf_printf(b, ",\"%s\":", name);
	if (!v || !v[0]) {
		jbuf_puts(b, "null");
		return;
	}
	jbuf_put_string(b, v, strnlen(v, AUDIT_STR_MAX));
}

static void fields(struct jbuf *b, const struct audit_event *e, const char *client)
{
	put_field(b, "event", e->event);
	put_field(b, "reason", e->reason);
	put_field(b, "client", client);
	put_field(b, "key_prefix", e->key_prefix);
	put_field(b, "issuer", e->issuer);
	put_field(b, "subject", e->subject);
	put_field(b, "jti", e->jti);
	put_field(b, "request_id", e->request_id);
	jbuf_printf(b, ",\"tenant_id\":%lld,\"status\":%d", (long long)e->tenant_id, e->status);
}

static const char *node_name = "";
static int64_t started_at; /* with the pid, tells this process' batch ids from earlier ones' */

static void emit_full(const struct audit_event *e, const char *client, const struct timespec *tsp);

/* ---- sampling (audit.h) -------------------------------------------------------------- */

#define SAMPLE_KINDS 4
#define SAMPLE_REASONS 6
#define SAMPLE_EXAMPLES 3

struct sample {
	char event[32];
	uint64_t full, counted;
	struct {
		char reason[48];
		uint64_t n;
	} reasons[SAMPLE_REASONS];
	size_t nreasons;
	uint64_t other_reasons;
	struct {
		char client[INET6_ADDRSTRLEN];
		char key_prefix[24];
	} ex[SAMPLE_EXAMPLES];
	size_t nex;
};

static pthread_mutex_t smu = PTHREAD_MUTEX_INITIALIZER;
static struct sample samples[SAMPLE_KINDS];
static size_t nsamples;
static int64_t window_start;
static _Atomic uint64_t n_sampled_out;

static void sample_count(struct sample *s, const struct audit_event *e, const char *client)
{
	const char *reason = e->reason ? e->reason : "";
	size_t i;

	s->counted++;
	for (i = 0; i < s->nreasons; i++)
		if (strcmp(s->reasons[i].reason, reason) == 0)
			break;
	if (i == s->nreasons && i < SAMPLE_REASONS) {
		snprintf(s->reasons[i].reason, sizeof(s->reasons[i].reason), "%s", reason);
		s->nreasons++;
	}
	if (i < s->nreasons)
		s->reasons[i].n++;
	else
		s->other_reasons++;
	if (s->nex < SAMPLE_EXAMPLES) {
		snprintf(s->ex[s->nex].client, sizeof(s->ex[0].client), "%s", client);
		snprintf(s->ex[s->nex].key_prefix, sizeof(s->ex[0].key_prefix), "%s",
			 e->key_prefix ? e->key_prefix : "");
		s->nex++;
	}
}

/* One event audit_summary (a line and a row): the counts per reason and the examples in
 * its reason, the first example's address and key prefix in its own fields. */
static void sample_write(const struct sample *s, int64_t start, int64_t end)
{
	struct jbuf reasons = { NULL, 0, 0 };
	struct audit_event e;
	struct timespec now;

	jbuf_printf(&reasons, "%s x%llu in %llds:", s->event, (unsigned long long)s->counted,
		    (long long)(end - start));
	for (size_t i = 0; i < s->nreasons; i++)
		jbuf_printf(&reasons, "%s %s %llu", i ? "," : "", s->reasons[i].reason,
			    (unsigned long long)s->reasons[i].n);
	if (s->other_reasons)
		jbuf_printf(&reasons, ", other %llu", (unsigned long long)s->other_reasons);
	for (size_t i = 0; i < s->nex; i++)
		jbuf_printf(&reasons, "%s %s %s", i ? "," : "; e.g.", s->ex[i].client,
			    s->ex[i].key_prefix[0] ? s->ex[i].key_prefix : "-");
	memset(&e, 0, sizeof(e));
	e.event = "audit_summary";
	e.reason = reasons.p;
	e.key_prefix = s->nex ? s->ex[0].key_prefix : NULL;
	clock_gettime(CLOCK_REALTIME, &now);
	emit_full(&e, s->nex ? s->ex[0].client : "", &now);
	free(reasons.p);
}

void audit_sample_flush(int64_t now, int force)
{
	struct sample done[SAMPLE_KINDS];
	size_t n = 0;
	int64_t start;

	pthread_mutex_lock(&smu);
	start = window_start;
	if (window_start && (force || now - window_start >= AUDIT_SAMPLE_S)) {
		for (size_t i = 0; i < nsamples; i++)
			if (samples[i].counted)
				done[n++] = samples[i];
		memset(samples, 0, sizeof(samples));
		nsamples = 0;
		window_start = 0;
	}
	pthread_mutex_unlock(&smu);
	for (size_t i = 0; i < n; i++)
		sample_write(&done[i], start, now);
}

/* Whether e is written in full (else it was counted for the summary). */
static int sample_admit(const struct audit_event *e, const char *client, int64_t now)
{
	struct sample *s = NULL;
	int full = 1;

	if (window_start && now - window_start >= AUDIT_SAMPLE_S)
		audit_sample_flush(now, 0);
	pthread_mutex_lock(&smu);
	if (!window_start)
		window_start = now;
	for (size_t i = 0; i < nsamples; i++)
		if (strcmp(samples[i].event, e->event) == 0)
			s = &samples[i];
	if (!s && nsamples < SAMPLE_KINDS) {
		s = &samples[nsamples++];
		snprintf(s->event, sizeof(s->event), "%s", e->event);
	}
	if (s && s->full >= AUDIT_SAMPLE_FULL) {
		sample_count(s, e, client);
		full = 0;
	} else if (s) {
		s->full++;
	}
	pthread_mutex_unlock(&smu);
	if (!full)
		atomic_fetch_add(&n_sampled_out, 1);
	return full;
}

void audit_emit(const struct audit_event *e)
{
	char client[INET6_ADDRSTRLEN] = "";
	struct timespec now;

	if (e->family == 4 || e->family == 6)
		inet_ntop(e->family == 4 ? AF_INET : AF_INET6, e->addr, client, sizeof(client));
	clock_gettime(CLOCK_REALTIME, &now);
	atomic_fetch_add(&n_events, 1);
	if (sample_admit(e, client, (int64_t)now.tv_sec))
		emit_full(e, client, &now);
}

static void emit_full(const struct audit_event *e, const char *client, const struct timespec *tsp)
{
	char ts[40];
	struct jbuf line = { NULL, 0, 0 }, row = { NULL, 0, 0 };
	struct timespec now = *tsp;
	struct tm tm;

	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	jbuf_printf(&line, "{\"ts\":\"%s.%03ldZ\",\"level\":\"info\",\"msg\":\"security audit\"", ts,
		    now.tv_nsec / 1000000);
	fields(&line, e, client);
	jbuf_puts(&line, "}\n");
	fputs(line.p, stderr); /* one call: stdio locks the stream, lines never mix */
	free(line.p);

	jbuf_printf(&row, "{\"at\":%lld.%03ld", (long long)now.tv_sec, now.tv_nsec / 1000000);
	put_field(&row, "node", node_name);
	fields(&row, e, client);
	jbuf_puts(&row, "}");
	pthread_mutex_lock(&mu);
	if (q_len < AUDIT_QUEUE_MAX) {
		queue[(q_head + q_len++) % AUDIT_QUEUE_MAX] = row.p;
		row.p = NULL;
	}
	pthread_mutex_unlock(&mu);
	if (row.p) {
		atomic_fetch_add(&n_dropped, 1);
		free(row.p);
	}
}

size_t audit_take_batch(char **json, size_t max)
{
	struct jbuf b = { NULL, 0, 0 };
	size_t n = 0;

	jbuf_puts(&b, "[");
	pthread_mutex_lock(&mu);
	while (q_len && n < max) {
		char *r = queue[q_head];
		q_head = (q_head + 1) % AUDIT_QUEUE_MAX;
		q_len--;
		if (n++)
			jbuf_puts(&b, ",");
		jbuf_puts(&b, r);
		free(r);
	}
	pthread_mutex_unlock(&mu);
	jbuf_puts(&b, "]");
	*json = b.p;
	return n;
}

void audit_stats(struct audit_stats *out)
{
	out->events = atomic_load(&n_events);
	out->written = atomic_load(&n_written);
	out->sampled_out = atomic_load(&n_sampled_out);
	out->dropped = atomic_load(&n_dropped);
	pthread_mutex_lock(&mu);
	out->queued = q_len;
	pthread_mutex_unlock(&mu);
}

/* ---- the database writer (control thread; util/dbwriter.h) --------------------------------- */

static struct {
	struct dbw *pg;
	char *batch; /* the JSON sent (kept until its INSERT succeeded) */
	size_t batch_n;
	char batch_id[160]; /* node, process, sequence: a resend of the batch keeps it */
	unsigned long long seq;
	const char *params[2];
} w;

/* Takes the next batch of queued rows, with a new batch id; 0 when none is queued. */
static size_t take_batch(void)
{
	w.batch_n = audit_take_batch(&w.batch, AUDIT_BATCH);
	if (w.batch_n)
		snprintf(w.batch_id, sizeof(w.batch_id), "%s:%ld:%lld:%llu", node_name,
			 (long)getpid(), (long long)started_at, ++w.seq);
	w.params[0] = w.batch_id;
	w.params[1] = w.batch;
	return w.batch_n;
}

static int next_query(void *arg, struct dbw_query *q)
{
	(void)arg;
	if (!w.batch && !take_batch()) {
		free(w.batch);
		w.batch = NULL;
		return 0;
	}
	q->sql = INSERT_SQL;
	q->nparams = 2;
	q->params = w.params;
	return 1;
}

static void forget_batch(void)
{
	free(w.batch);
	w.batch = NULL;
	w.batch_n = 0;
}

/* A lost or stopped batch is kept and sent again (after the reconnect, or at the stop). */
static void query_done(void *arg, enum dbw_status status, const char *err)
{
	(void)arg;
	if (status == DBW_OK) {
		atomic_fetch_add(&n_written, w.batch_n);
		forget_batch();
	} else if (status == DBW_ERROR) {
		/* A rejected batch (schema missing?) is logged and dropped: retrying the same
		 * rows would block the queue forever. */
		log_event(LOG_WARN, "audit_write_failed",
			  LOG_FIELDS(LOG_I("rows", w.batch_n), LOG_S("error", err)),
			  "audit: insert of %zu rows failed: %s", w.batch_n, err);
		atomic_fetch_add(&n_dropped, w.batch_n);
		forget_batch();
	}
}

static void tick(void *arg)
{
	(void)arg;
	audit_sample_flush((int64_t)time(NULL), 0);
}

static const struct dbw_ops writer_ops = {
	.name = "audit",
	.down_msg = "retrying",
	.next = next_query,
	.done = query_done,
	.tick = tick,
};

int audit_start(struct event_base *base, const char *conninfo, const char *node)
{
	node_name = xstrdup(node ? node : "");
	started_at = (int64_t)time(NULL);
	w.pg = dbw_start(base, conninfo ? conninfo : "", AUDIT_FLUSH_MS, &writer_ops, NULL);
	return w.pg ? 0 : -1;
}

void audit_stop(void)
{
	struct timespec start, now;
	struct dbw_query q = { INSERT_SQL, 2, w.params };
	int rc;

	audit_sample_flush((int64_t)time(NULL), 1);
	if (!w.pg)
		return;
	/* Bounded flush: blocking, at most one second, then whatever is left is lost (and was
	 * logged as JSON lines already). */
	clock_gettime(CLOCK_MONOTONIC, &start);
	dbw_halt(w.pg);
	while (1) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= 1)
			break;
		if (!w.batch)
			take_batch();
		if (!w.batch_n)
			break;
		rc = dbw_exec_sync(w.pg, &q);
		if (rc == -2)
			break;
		if (rc == 0)
			atomic_fetch_add(&n_written, w.batch_n);
		forget_batch(); /* written, or rejected (logged) */
	}
	forget_batch();
	dbw_free(w.pg);
	memset(&w, 0, sizeof(w));
}
