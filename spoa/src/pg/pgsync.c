/*
 * pgsync: one libpq connection on the control thread's event loop, driven by a single
 * state machine (enum ps_phase):
 *
 *   DOWN --retry timer--> CONNECTING --PQconnectPoll OK--> LISTEN --> LOAD --> READY
 *   READY --NOTIFY--> FETCH --> READY        READY --resync timer--> LOAD --> READY
 *   any phase --error, timeout, lost connection--> DOWN (back-off 100 ms, doubling)
 *
 * One query is in flight at a time. Every wake-up on the socket reads what arrived
 * (PQconsumeInput), collects notifications (PQnotifies), then takes results while
 * PQisBusy() says they are complete.
 *
 * Full load: BEGIN REPEATABLE READ, then the three tables in single-row mode (memory
 * stays flat however many keys there are) into a fresh state, COMMIT, store_replace().
 * Changes during a load are not lost: LISTEN precedes every load, notifications that
 * arrive during the load are queued and fetched after the swap (the load's snapshot may
 * predate them). Notifications queued before a load starts are dropped when it starts:
 * PostgreSQL delivers a notification only after its transaction committed, so the
 * load's snapshot already contains the change. When the queue overflows (a bulk change
 * of more than PS_PENDING_MAX rows), one more full load replaces the fetches.
 *
 * Incremental change: "api_keys:U:42" queues (api_keys, 42). Queued ids of one table
 * are fetched together (WHERE id = ANY($1)), applied under store_write_begin(); an id
 * that no longer exists is deleted from the store.
 *
 * The query timeout is an inactivity timeout: it is re-armed whenever the server sends
 * something, so a large full load that keeps streaming rows is not cut, while a server
 * that stops answering is. On expiry the connection is dropped (PQfinish) and
 * re-established; the store keeps serving meanwhile.
 */
#include "pg/pgsync.h"

#include "pg/rows.h"
#include "state/state.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <errno.h>
#include <event2/event.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PS_CHANNEL "jairouter_changes"
#define PS_APP_NAME "jairouter-spoa"
#define PS_BACKOFF_MIN_MS 100u
#define PS_PENDING_MAX 1024  /* queued changes before falling back to a full load */
#define PS_BATCH_MAX 256     /* ids per fetch query */
#define PS_RESULTS_PER_WAKE 4096 /* single-row results handled before yielding the loop */

enum ps_phase {
	PH_DOWN,       /* no connection; the retry timer is armed */
	PH_CONNECTING, /* PQconnectPoll in progress */
	PH_LISTEN,     /* LISTEN sent */
	PH_LOAD,       /* full load; step in load_step */
	PH_FETCH,      /* fetching a batch of changed rows */
	PH_READY,      /* connected, nothing in flight */
};

struct ps_change {
	const struct ps_table *table;
	int64_t id;
};

struct pgsync {
	struct event_base *base;
	char *conninfo;
	unsigned resync_ms, timeout_ms, retry_max_ms;

	PGconn *conn;
	enum ps_phase phase;
	struct event *io; /* on PQsocket(conn), which may change across connects */
	evutil_socket_t io_fd;
	short io_what;
	struct event *retry_timer, *timeout_timer, *resync_timer;
	unsigned backoff_ms;
	int query_failed; /* the query in flight returned an error result */

	struct state *loading; /* the full load being built */
	int load_step;
	struct timespec load_start;
	int reload_wanted;

	struct ps_change pending[PS_PENDING_MAX];
	size_t npending;
	const struct ps_table *batch_table;
	int64_t batch_ids[PS_BATCH_MAX];
	unsigned char batch_seen[PS_BATCH_MAX];
	size_t nbatch;

	struct pgsync_stats st;
};

static void ps_io_cb(evutil_socket_t fd, short what, void *arg);
static void ps_next_job(struct pgsync *ps);

/* One result row as text columns (util/row.h) for the readers of pg/rows.c. NULL reads as
 * "" (libpq's text for it). The caller has checked the column count. */
static void row_of(const PGresult *r, int i, struct row *out)
{
	out->n = PQnfields(r) < ROW_COLS_MAX ? PQnfields(r) : ROW_COLS_MAX;
	for (int c = 0; c < out->n; c++) {
		out->v[c] = PQgetvalue(r, i, c);
		out->len[c] = (size_t)PQgetlength(r, i, c);
	}
}

/* ---- timers and the socket event -------------------------------------------------- */

static void timer_arm(struct event *ev, unsigned ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

	event_add(ev, &tv);
}

static double ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) * 1e3 + (double)(now.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Watches the connection's current socket for `what` (EV_READ and/or EV_WRITE).
 * While connecting, libpq may close a socket and open another (next host or address)
 * that can get the same number, which epoll would not report: `renew` registers the
 * event again in any case. */
static void ps_watch_fd(struct pgsync *ps, short what, int renew)
{
	evutil_socket_t fd = PQsocket(ps->conn);

	if (!renew && ps->io && fd == ps->io_fd && what == ps->io_what)
		return;
	if (ps->io)
		event_free(ps->io);
	ps->io = event_new(ps->base, fd, what | EV_PERSIST, ps_io_cb, ps);
	ps->io_fd = fd;
	ps->io_what = what;
	event_add(ps->io, NULL);
}

static void ps_watch(struct pgsync *ps, short what)
{
	ps_watch_fd(ps, what, 0);
}

/* First line of libpq's message for the connection: host and reason, never the
 * connection string or a password. */
static const char *ps_errmsg(const struct pgsync *ps, char *buf, size_t size)
{
	const char *m = ps->conn ? PQerrorMessage(ps->conn) : "";
	size_t n = strcspn(m, "\n");

	if (n >= size)
		n = size - 1;
	memcpy(buf, m, n);
	buf[n] = '\0';
	return n ? buf : "no detail";
}

/* ---- connection life cycle -------------------------------------------------------- */

/* Forgets the connection and whatever was in flight. The store is left as it is. */
static void ps_drop(struct pgsync *ps)
{
	if (ps->io)
		event_free(ps->io);
	ps->io = NULL;
	ps->io_fd = -1;
	if (ps->conn)
		PQfinish(ps->conn);
	ps->conn = NULL;
	state_free(ps->loading);
	ps->loading = NULL;
	ps->npending = 0; /* the next connection starts with a full load */
	ps->nbatch = 0;
	ps->reload_wanted = 0;
	ps->query_failed = 0;
	event_del(ps->timeout_timer);
	ps->phase = PH_DOWN;
}

static void ps_schedule_retry(struct pgsync *ps)
{
	timer_arm(ps->retry_timer, ps->backoff_ms);
	ps->backoff_ms *= 2;
	if (ps->backoff_ms > ps->retry_max_ms)
		ps->backoff_ms = ps->retry_max_ms;
}

/* Every failure ends here: log, count, drop the connection, retry after the back-off.
 * The detail is libpq's message for the connection unless `detail` is given. */
static void ps_fail_detail(struct pgsync *ps, const char *what, const char *detail)
{
	char buf[256];

	ps->st.errors++;
	detail = detail ? detail : ps_errmsg(ps, buf, sizeof(buf));
	log_event(LOG_WARN, "db_failed", LOG_FIELDS(LOG_S("what", what), LOG_S("error", detail),
						    LOG_I("retry_ms", ps->backoff_ms)),
		  "database: %s: %s; retrying in %u ms", what, detail, ps->backoff_ms);
	ps_drop(ps);
	ps->st.status = PGSYNC_DOWN;
	ps_schedule_retry(ps);
}

static void ps_fail(struct pgsync *ps, const char *what)
{
	ps_fail_detail(ps, what, NULL);
}

/* Server notices and asynchronous errors (e.g. "terminating connection due to
 * administrator command") go to the log instead of libpq's default stderr print. */
static void ps_notice(void *arg, const char *message)
{
	size_t n = strcspn(message, "\n");

	(void)arg;
	log_event(LOG_INFO, "db_notice", LOG_NO_FIELDS,
		  "database: server says: %.*s", (int)(n < 300 ? n : 300), message);
}

static void ps_connect(struct pgsync *ps)
{
	const char *const keys[] = { "fallback_application_name", "dbname", NULL };
	const char *const vals[] = { PS_APP_NAME, ps->conninfo, NULL };

	ps->conn = PQconnectStartParams(keys, vals, 1);
	if (!ps->conn) {
		log_event(LOG_ERROR, "db_connect_no_memory", LOG_NO_FIELDS,
			  "database: out of memory starting a connection");
		abort();
	}
	if (PQstatus(ps->conn) == CONNECTION_BAD) {
		ps_fail(ps, "cannot start connecting");
		return;
	}
	PQsetNoticeProcessor(ps->conn, ps_notice, NULL);
	ps->phase = PH_CONNECTING;
	timer_arm(ps->timeout_timer, ps->timeout_ms);
	ps_watch_fd(ps, EV_WRITE, 1); /* libpq: poll as if PGRES_POLLING_WRITING at first */
}

/* Sends what libpq has buffered; watches for writability until it is all out. */
static void ps_flush(struct pgsync *ps)
{
	int r = PQflush(ps->conn);

	if (r < 0)
		ps_fail(ps, "send failed");
	else
		ps_watch(ps, r ? EV_READ | EV_WRITE : EV_READ);
}

/* Sends one query (params: one text parameter, or NULL for none). */
static void ps_send(struct pgsync *ps, enum ps_phase phase, const char *sql, const char *param,
		    int single_row)
{
	int ok = param ? PQsendQueryParams(ps->conn, sql, 1, NULL, &param, NULL, NULL, 0)
		       : PQsendQuery(ps->conn, sql);

	if (!ok) {
		ps_fail(ps, "query not sent");
		return;
	}
	if (single_row)
		PQsetSingleRowMode(ps->conn);
	ps->phase = phase;
	ps->query_failed = 0;
	timer_arm(ps->timeout_timer, ps->timeout_ms);
	ps_flush(ps);
}

static void ps_connected(struct pgsync *ps)
{
	const char *host = PQhost(ps->conn), *port = PQport(ps->conn), *db = PQdb(ps->conn);

	log_event(LOG_INFO, "db_connected",
		  LOG_FIELDS(LOG_S("host", host), LOG_S("port", port), LOG_S("database", db)),
		  "database: connected to %s:%s/%s", host ? host : "", port ? port : "", db ? db : "");
	if (PQsetnonblocking(ps->conn, 1) != 0) {
		ps_fail(ps, "cannot make the connection non-blocking");
		return;
	}
	ps_send(ps, PH_LISTEN, "LISTEN " PS_CHANNEL, NULL, 0);
}

static void ps_connect_step(struct pgsync *ps)
{
	switch (PQconnectPoll(ps->conn)) {
	case PGRES_POLLING_READING: ps_watch_fd(ps, EV_READ, 1); break;
	case PGRES_POLLING_WRITING: ps_watch_fd(ps, EV_WRITE, 1); break;
	case PGRES_POLLING_OK: ps_connected(ps); break;
	default: ps_fail(ps, "connection failed"); break;
	}
}

/* ---- full load -------------------------------------------------------------------- */

static void ps_load_send_step(struct pgsync *ps)
{
	int step = ps->load_step;

	if (step == 0)
		ps_send(ps, PH_LOAD, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", NULL, 0);
	else if (step <= (int)ps_ntables)
		ps_send(ps, PH_LOAD, ps_tables[step - 1].select_all, NULL, 1);
	else
		ps_send(ps, PH_LOAD, "COMMIT", NULL, 0);
}

static void ps_load_start(struct pgsync *ps)
{
	/* Queued changes were committed before this load's snapshot: it contains them. */
	ps->npending = 0;
	ps->reload_wanted = 0;
	state_free(ps->loading);
	ps->loading = state_new();
	ps->load_step = 0;
	clock_gettime(CLOCK_MONOTONIC, &ps->load_start);
	ps_load_send_step(ps);
}

static void ps_load_finish(struct pgsync *ps)
{
	struct state *fresh = ps->loading;
	size_t nt = state_count_tenants(fresh), nk = state_count_keys(fresh);
	size_t nm = state_count_models(fresh);

	ps->loading = NULL;
	store_replace(fresh);
	ps->st.full_loads++;
	ps->st.last_load_unix = (int64_t)time(NULL);
	if (ps->st.status != PGSYNC_UP)
		log_event(LOG_INFO, "catalogue_loaded",
			  LOG_FIELDS(LOG_I("tenants", nt), LOG_I("keys", nk), LOG_I("models", nm),
				     LOG_I("ms", ms_since(&ps->load_start))),
			  "database: catalogue loaded (%zu tenants, %zu keys, %zu models) in %.1f ms",
			  nt, nk, nm, ms_since(&ps->load_start));
	else
		log_event(LOG_DEBUG, "catalogue_resynced",
			  LOG_FIELDS(LOG_I("tenants", nt), LOG_I("keys", nk), LOG_I("models", nm),
				     LOG_I("ms", ms_since(&ps->load_start))),
			  "database: resync (%zu tenants, %zu keys, %zu models) in %.1f ms",
			  nt, nk,
			  nm, ms_since(&ps->load_start));
	ps->st.status = PGSYNC_UP;
	ps->backoff_ms = PS_BACKOFF_MIN_MS;
	ps->phase = PH_READY;
}

/* A result with another column count than the reader expects (a schema this agent does
 * not know) fails the query rather than being misread. */
static int ps_shape_ok(struct pgsync *ps, const struct ps_table *t, const PGresult *r)
{
	if (PQnfields(r) == t->ncols)
		return 1;
	log_event(LOG_ERROR, "db_columns_mismatch",
		  LOG_FIELDS(LOG_S("table", t->name), LOG_I("expected", t->ncols),
			     LOG_I("got", PQnfields(r))),
		  "database: %s: expected %d columns, got %d", t->name, t->ncols, PQnfields(r));
	ps->query_failed = 1;
	return 0;
}

static void ps_load_rows(struct pgsync *ps, const PGresult *r)
{
	const struct ps_table *t = &ps_tables[ps->load_step - 1];
	struct row row;
	int64_t id;

	if (!ps_shape_ok(ps, t, r))
		return;
	for (int i = 0, n = PQntuples(r); i < n; i++) {
		row_of(r, i, &row);
		t->put(ps->loading, &row, &id);
	}
}

/* ---- incremental changes ---------------------------------------------------------- */

/* The first ps_tables entry at or after `from` reading table `name`. Several entries
 * may read one table (the catalogue and the tenant policy parts of a row). */
static const struct ps_table *ps_table_named(const char *name, size_t len, size_t from)
{
	for (size_t i = from; i < ps_ntables; i++)
		if (strlen(ps_tables[i].name) == len && memcmp(ps_tables[i].name, name, len) == 0)
			return &ps_tables[i];
	return NULL;
}

static void ps_queue(struct pgsync *ps, const struct ps_table *t, int64_t id)
{
	if (ps->reload_wanted)
		return; /* the full load that follows starts after this change committed */
	for (size_t i = 0; i < ps->npending; i++)
		if (ps->pending[i].table == t && ps->pending[i].id == id)
			return;
	if (ps->npending == PS_PENDING_MAX) {
		log_event(LOG_INFO, "db_changes_overflow",
			  LOG_FIELDS(LOG_I("max", PS_PENDING_MAX)),
			  "database: more than %d changes queued; reloading everything instead",
			  PS_PENDING_MAX);
		ps->npending = 0;
		ps->reload_wanted = 1;
		return;
	}
	ps->pending[ps->npending].table = t;
	ps->pending[ps->npending++].id = id;
}

/* Payload "<table>:<op>:<id>". TRUNCATE ("<table>:T:0") asks for a full load. Unknown
 * tables (from a newer schema) are ignored; a malformed payload is logged. */
static void ps_on_notify(struct pgsync *ps, const char *payload)
{
	const char *c1 = strchr(payload, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	const struct ps_table *t;
	char *end;
	long long id;

	ps->st.notifications++;
	if (!c2 || c2 != c1 + 2) {
		log_event(LOG_WARN, "db_notification_malformed", LOG_NO_FIELDS,
			  "database: malformed change notification ignored");
		return;
	}
	t = ps_table_named(payload, (size_t)(c1 - payload), 0);
	if (!t) {
		log_event(LOG_DEBUG, "db_notification_unknown_table", LOG_NO_FIELDS,
			  "database: change to an unknown table ignored");
		return;
	}
	if (c1[1] == 'T') {
		ps->reload_wanted = 1;
		return;
	}
	errno = 0;
	id = strtoll(c2 + 1, &end, 10);
	if (errno || *end || end == c2 + 1 || id <= 0) {
		log_event(LOG_WARN, "db_notification_malformed", LOG_NO_FIELDS,
			  "database: malformed change notification ignored");
		return;
	}
	for (; t; t = ps_table_named(t->name, strlen(t->name), (size_t)(t - ps_tables) + 1))
		ps_queue(ps, t, (int64_t)id);
}

static void ps_drain_notifies(struct pgsync *ps)
{
	PGnotify *n;

	while ((n = PQnotifies(ps->conn)) != NULL) {
		if (strcmp(n->relname, PS_CHANNEL) == 0)
			ps_on_notify(ps, n->extra);
		PQfreemem(n);
	}
}

/* Moves up to PS_BATCH_MAX queued ids of the first queued table into the batch. */
static void ps_take_batch(struct pgsync *ps)
{
	size_t keep = 0;

	ps->batch_table = ps->pending[0].table;
	ps->nbatch = 0;
	for (size_t i = 0; i < ps->npending; i++) {
		if (ps->pending[i].table == ps->batch_table && ps->nbatch < PS_BATCH_MAX) {
			ps->batch_seen[ps->nbatch] = 0;
			ps->batch_ids[ps->nbatch++] = ps->pending[i].id;
		} else {
			ps->pending[keep++] = ps->pending[i];
		}
	}
	ps->npending = keep;
}

static void ps_fetch_start(struct pgsync *ps)
{
	char arr[PS_BATCH_MAX * 21 + 3];
	size_t used = 0;

	ps_take_batch(ps);
	arr[used++] = '{';
	for (size_t i = 0; i < ps->nbatch; i++)
		used += (size_t)snprintf(arr + used, sizeof(arr) - used, "%s%lld", i ? "," : "",
					 (long long)ps->batch_ids[i]);
	arr[used++] = '}';
	arr[used] = '\0';
	ps_send(ps, PH_FETCH, ps->batch_table->select_ids, arr, 0);
}

static void ps_batch_mark(struct pgsync *ps, int64_t id)
{
	for (size_t i = 0; i < ps->nbatch; i++)
		if (ps->batch_ids[i] == id)
			ps->batch_seen[i] = 1;
}

static void ps_fetch_rows(struct pgsync *ps, const PGresult *r)
{
	const struct ps_table *t = ps->batch_table;
	struct state *s;
	struct row row;
	int64_t id;

	if (!ps_shape_ok(ps, t, r))
		return;
	s = store_write_begin();
	for (int i = 0, n = PQntuples(r); i < n; i++) {
		row_of(r, i, &row);
		if (t->put(s, &row, &id) == 0)
			ps_batch_mark(ps, id);
	}
	store_write_end();
}

/* Ids asked for and not returned were deleted (or their row is unusable). */
static void ps_fetch_finish(struct pgsync *ps)
{
	struct state *s = store_write_begin();

	for (size_t i = 0; i < ps->nbatch; i++)
		if (!ps->batch_seen[i])
			ps->batch_table->del(s, ps->batch_ids[i]);
	store_write_end();
	log_event(LOG_DEBUG, "db_changes_applied",
		  LOG_FIELDS(LOG_I("changes", ps->nbatch), LOG_S("table", ps->batch_table->name)),
		  "database: applied %zu change(s) to %s", ps->nbatch, ps->batch_table->name);
	ps->nbatch = 0;
	ps->phase = PH_READY;
}

/* ---- results ---------------------------------------------------------------------- */

static void ps_on_result(struct pgsync *ps, const PGresult *r)
{
	ExecStatusType st = PQresultStatus(r);

	if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		char msg[256];
		const char *m = PQresultErrorMessage(r);
		size_t n = strcspn(m, "\n");

		snprintf(msg, sizeof(msg), "%.*s", (int)(n < 200 ? n : 200), m);
		log_event(LOG_WARN, "db_query_failed",
			  LOG_FIELDS(LOG_S("error", msg[0] ? msg : PQresStatus(st))),
			  "database: query failed: %s", msg[0] ? msg : PQresStatus(st));
		ps->query_failed = 1;
		return;
	}
	if (ps->query_failed || st == PGRES_COMMAND_OK)
		return;
	if (ps->phase == PH_LOAD && ps->load_step >= 1 && ps->load_step <= (int)ps_ntables)
		ps_load_rows(ps, r);
	else if (ps->phase == PH_FETCH)
		ps_fetch_rows(ps, r);
}

/* The query in flight has returned all its results. */
static void ps_on_query_done(struct pgsync *ps)
{
	if (ps->query_failed) {
		ps_fail(ps, "query failed");
		return;
	}
	switch (ps->phase) {
	case PH_LISTEN: ps_load_start(ps); break;
	case PH_LOAD:
		if (++ps->load_step < (int)ps_ntables + 2) /* BEGIN, the tables, COMMIT */
			ps_load_send_step(ps);
		else
			ps_load_finish(ps);
		break;
	case PH_FETCH: ps_fetch_finish(ps); break;
	default: break;
	}
}

static int ps_in_query(const struct pgsync *ps)
{
	return ps->phase == PH_LISTEN || ps->phase == PH_LOAD || ps->phase == PH_FETCH;
}

/* Takes complete results. After PS_RESULTS_PER_WAKE of them it yields to the loop
 * (other events on the control thread) and comes back through an activated event. */
static void ps_read_results(struct pgsync *ps)
{
	int budget = PS_RESULTS_PER_WAKE;

	while (ps->conn && ps_in_query(ps) && !PQisBusy(ps->conn)) {
		PGresult *r;

		if (budget-- == 0) {
			event_active(ps->io, EV_READ, 0);
			return;
		}
		r = PQgetResult(ps->conn);
		if (!r) {
			ps_on_query_done(ps);
			continue;
		}
		ps_on_result(ps, r);
		PQclear(r);
	}
}

/* Chooses the next query once nothing is in flight: a full load when one is due, else
 * the queued changes. Idle, the connection only listens (no timeout). */
static void ps_next_job(struct pgsync *ps)
{
	if (ps->phase != PH_READY)
		return;
	if (ps->reload_wanted)
		ps_load_start(ps);
	else if (ps->npending)
		ps_fetch_start(ps);
	else
		event_del(ps->timeout_timer);
}

static void ps_conn_io(struct pgsync *ps, short what)
{
	if (what & EV_READ) {
		if (!PQconsumeInput(ps->conn)) {
			ps_fail(ps, "connection lost");
			return;
		}
		if (ps_in_query(ps))
			timer_arm(ps->timeout_timer, ps->timeout_ms); /* the server is alive */
		ps_drain_notifies(ps);
	}
	if (ps->io_what & EV_WRITE) {
		ps_flush(ps);
		if (!ps->conn)
			return;
	}
	ps_read_results(ps);
	if (!ps->conn)
		return;
	/* libpq parses what follows a result (a NOTIFY that arrived with it) only once the
	 * result has been taken: collect those now, or they would wait for the next byte
	 * on the socket. */
	ps_drain_notifies(ps);
	ps_next_job(ps);
}

static void ps_io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pgsync *ps = arg;

	(void)fd;
	if (ps->phase == PH_CONNECTING)
		ps_connect_step(ps);
	else if (ps->conn)
		ps_conn_io(ps, what);
}

/* ---- timers ----------------------------------------------------------------------- */

static void ps_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	ps_connect(arg);
}

static void ps_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pgsync *ps = arg;
	char detail[64];

	(void)fd;
	(void)what;
	snprintf(detail, sizeof(detail), "no answer within %u ms", ps->timeout_ms);
	ps_fail_detail(ps, ps->phase == PH_CONNECTING ? "connect timed out" : "query timed out",
		       detail);
}

static void ps_resync_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pgsync *ps = arg;

	(void)fd;
	(void)what;
	if (ps->phase == PH_DOWN || ps->phase == PH_CONNECTING || ps->phase == PH_LISTEN)
		return; /* a load follows the connection anyway */
	if (ps->phase != PH_LOAD)
		ps->reload_wanted = 1;
	ps_next_job(ps);
}

/* ---- public API ------------------------------------------------------------------- */

static int ps_conninfo_ok(const char *conninfo)
{
	char *err = NULL;
	PQconninfoOption *o;

	if (!conninfo || !conninfo[0])
		return 0;
	o = PQconninfoParse(conninfo, &err);
	PQfreemem(err); /* may quote the string, so it is not logged */
	if (!o)
		return 0;
	PQconninfoFree(o);
	return 1;
}

static void ps_set_opts(struct pgsync *ps, const struct pgsync_opts *o)
{
	ps->resync_ms = o->resync_interval_ms ? o->resync_interval_ms : 60000;
	ps->timeout_ms = o->query_timeout_ms ? o->query_timeout_ms : 5000;
	ps->retry_max_ms = o->retry_max_ms ? o->retry_max_ms : 5000;
	if (ps->retry_max_ms < PS_BACKOFF_MIN_MS)
		ps->retry_max_ms = PS_BACKOFF_MIN_MS;
	if (ps->backoff_ms > ps->retry_max_ms)
		ps->backoff_ms = ps->retry_max_ms;
	event_del(ps->resync_timer);
	timer_arm(ps->resync_timer, ps->resync_ms);
}

struct pgsync *pgsync_start(struct event_base *base, const struct pgsync_opts *opts)
{
	struct pgsync *ps;

	if (!base || !opts || !ps_conninfo_ok(opts->conninfo)) {
		log_event(LOG_ERROR, "db_conninfo_invalid", LOG_NO_FIELDS,
			  "database: the connection string is missing or cannot be parsed");
		return NULL;
	}
	ps = xcalloc(1, sizeof(*ps));
	ps->base = base;
	ps->conninfo = xstrdup(opts->conninfo);
	ps->io_fd = -1;
	ps->backoff_ms = PS_BACKOFF_MIN_MS;
	ps->retry_timer = evtimer_new(base, ps_retry_cb, ps);
	ps->timeout_timer = evtimer_new(base, ps_timeout_cb, ps);
	ps->resync_timer = event_new(base, -1, EV_PERSIST, ps_resync_cb, ps);
	ps->st.status = PGSYNC_CONNECTING;
	ps_set_opts(ps, opts);
	ps_connect(ps);
	return ps;
}

void pgsync_reconfigure(struct pgsync *ps, const struct pgsync_opts *opts)
{
	if (!ps || !opts)
		return;
	ps_set_opts(ps, opts);
	if (opts->conninfo && strcmp(opts->conninfo, ps->conninfo) == 0)
		return;
	if (!ps_conninfo_ok(opts->conninfo)) {
		log_event(LOG_ERROR, "db_conninfo_reload_invalid", LOG_NO_FIELDS,
			  "database: new connection string cannot be parsed; keeping the old one");
		return;
	}
	free(ps->conninfo);
	ps->conninfo = xstrdup(opts->conninfo);
	log_event(LOG_INFO, "db_conninfo_changed", LOG_NO_FIELDS,
		  "database: connection settings changed; reconnecting");
	ps_drop(ps);
	event_del(ps->retry_timer);
	if (ps->st.status == PGSYNC_UP)
		ps->st.status = PGSYNC_DOWN;
	ps->backoff_ms = PS_BACKOFF_MIN_MS;
	ps_connect(ps);
}

void pgsync_reload(struct pgsync *ps)
{
	if (!ps || ps->phase == PH_DOWN || ps->phase == PH_CONNECTING || ps->phase == PH_LISTEN)
		return; /* a full load follows the connection anyway */
	ps->reload_wanted = 1;
	ps_next_job(ps);
}

void pgsync_stats(const struct pgsync *ps, struct pgsync_stats *out)
{
	if (!ps) {
		memset(out, 0, sizeof(*out));
		out->status = PGSYNC_DOWN;
		return;
	}
	*out = ps->st;
}

void pgsync_stop(struct pgsync *ps)
{
	if (!ps)
		return;
	ps_drop(ps);
	event_free(ps->retry_timer);
	event_free(ps->timeout_timer);
	event_free(ps->resync_timer);
	free(ps->conninfo);
	free(ps);
}
