/*
 * pg/writer: the asynchronous batch writer of util/dbwriter.h, on libpq.
 *
 * States: down --tick, retry time reached--> connecting --PQconnectPoll OK--> idle
 * --ops.next--> busy (one statement in flight) --last result--> idle. Any connection error
 * --> down, the statement in flight reported DBW_LOST.
 */
#include "util/dbwriter.h"

#include "util/log.h"
#include "util/xalloc.h"

#include <event2/event.h>
#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETRY_S 1
#define QUERY_TIMEOUT_S 10
#define MAX_COLS 16

struct dbw {
	struct event_base *base;
	struct dbw_ops ops;
	void *arg;
	char *conninfo;
	PGconn *conn, *sync;
	int connecting, busy, sync_failed;
	_Atomic int up;
	char *err; /* the first error of the statement in flight */
	time_t busy_since;
	int64_t retry_at;
	struct event *io, *tick;
	evutil_socket_t io_fd;
	short io_what;
};

static void io_cb(evutil_socket_t fd, short what, void *arg);

static void watch(struct dbw *w, short what)
{
	evutil_socket_t fd = PQsocket(w->conn);

	if (w->io && (w->io_fd != fd || w->io_what != what)) {
		event_free(w->io);
		w->io = NULL;
	}
	if (!w->io && fd >= 0) {
		w->io = event_new(w->base, fd, what | EV_PERSIST, io_cb, w);
		w->io_fd = fd;
		w->io_what = what;
		event_add(w->io, NULL);
	}
}

/* Closes the connection; a statement in flight is reported with status. */
static void close_conn(struct dbw *w, const char *why, enum dbw_status status)
{
	if (w->conn) {
		if (why && atomic_load(&w->up))
			log_event(LOG_WARN, "db_writer_down",
				  LOG_FIELDS(LOG_S("writer", w->ops.name), LOG_S("why", why),
					     LOG_S("error", PQerrorMessage(w->conn))),
				  "%s: PostgreSQL writer %s: %s; %s", w->ops.name, why,
				  PQerrorMessage(w->conn), w->ops.down_msg);
		PQfinish(w->conn);
	}
	if (w->io)
		event_free(w->io);
	w->io = NULL;
	w->conn = NULL;
	w->connecting = 0;
	w->retry_at = (int64_t)time(NULL) + RETRY_S;
	atomic_store(&w->up, 0);
	free(w->err);
	w->err = NULL;
	if (w->busy) {
		w->busy = 0;
		w->ops.done(w->arg, status, NULL);
	}
}

static void drop(struct dbw *w, const char *why)
{
	close_conn(w, why, DBW_LOST);
}

static void send_next(struct dbw *w)
{
	struct dbw_query q = { NULL, 0, NULL };
	int rc;

	if (!w->conn || w->connecting || w->busy || !w->ops.next(w->arg, &q))
		return;
	w->busy = 1;
	w->busy_since = time(NULL);
	if (!PQsendQueryParams(w->conn, q.sql, q.nparams, NULL, q.params, NULL, NULL, 0)) {
		drop(w, "could not send a statement");
		return;
	}
	rc = PQflush(w->conn);
	if (rc < 0)
		drop(w, "could not send a statement");
	else
		watch(w, rc == 1 ? EV_READ | EV_WRITE : EV_READ);
}

static void connect_step(struct dbw *w)
{
	switch (PQconnectPoll(w->conn)) {
	case PGRES_POLLING_READING: watch(w, EV_READ); break;
	case PGRES_POLLING_WRITING: watch(w, EV_WRITE); break;
	case PGRES_POLLING_OK:
		w->connecting = 0;
		PQsetnonblocking(w->conn, 1);
		watch(w, EV_READ);
		atomic_store(&w->up, 1);
		send_next(w);
		break;
	default: drop(w, "could not connect"); break;
	}
}

static void start_connect(struct dbw *w)
{
	const char *keys[] = { "dbname", w->ops.appname ? "application_name" : NULL, NULL };
	const char *vals[] = { w->conninfo, w->ops.appname, NULL };

	w->conn = PQconnectStartParams(keys, vals, 1);
	if (!w->conn || PQstatus(w->conn) == CONNECTION_BAD) {
		drop(w, "could not start connecting");
		return;
	}
	w->connecting = 1;
	connect_step(w);
}

static void result_rows(struct dbw *w, const PGresult *r)
{
	const char *vals[MAX_COLS];
	int n = PQntuples(r), nc = PQnfields(r);

	if (nc > MAX_COLS)
		nc = MAX_COLS;
	for (int i = 0; i < n; i++) {
		for (int c = 0; c < nc; c++)
			vals[c] = PQgetisnull(r, i, c) ? NULL : PQgetvalue(r, i, c);
		w->ops.row(w->arg, nc, vals);
	}
}

static void statement_over(struct dbw *w)
{
	char *err;

	if (PQstatus(w->conn) == CONNECTION_BAD) { /* the server ended the session */
		drop(w, "lost its connection");
		return;
	}
	err = w->err;
	w->err = NULL;
	w->busy = 0;
	w->ops.done(w->arg, err ? DBW_ERROR : DBW_OK, err);
	free(err);
}

static void read_results(struct dbw *w)
{
	PGresult *r;

	if (!PQconsumeInput(w->conn)) {
		drop(w, "lost its connection");
		return;
	}
	while (!PQisBusy(w->conn)) {
		if (!(r = PQgetResult(w->conn))) {
			statement_over(w);
			return;
		}
		if (PQresultStatus(r) == PGRES_TUPLES_OK && w->ops.row) {
			result_rows(w, r);
		} else if (PQresultStatus(r) != PGRES_COMMAND_OK &&
			   PQresultStatus(r) != PGRES_TUPLES_OK && !w->err) {
			const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
			w->err = xstrdup(m ? m : PQresultErrorMessage(r));
		}
		PQclear(r);
	}
}

static void io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dbw *w = arg;

	(void)fd;
	(void)what;
	if (!w->conn)
		return;
	if (w->connecting) {
		connect_step(w);
		return;
	}
	if (w->busy) {
		if (PQflush(w->conn) < 0) {
			drop(w, "could not send a statement");
			return;
		}
		read_results(w);
	} else if (!PQconsumeInput(w->conn)) {
		drop(w, "lost its connection");
		return;
	}
	if (w->conn)
		watch(w, w->busy && PQflush(w->conn) == 1 ? EV_READ | EV_WRITE : EV_READ);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dbw *w = arg;

	(void)fd;
	(void)what;
	if (w->ops.tick)
		w->ops.tick(w->arg);
	if (!w->conninfo)
		return;
	if (!w->conn) {
		if ((int64_t)time(NULL) >= w->retry_at)
			start_connect(w);
		return;
	}
	if (w->busy && time(NULL) - w->busy_since > QUERY_TIMEOUT_S)
		drop(w, "timed out");
	else
		send_next(w);
}

struct dbw *dbw_start(struct event_base *base, const char *conninfo, unsigned tick_ms,
		      const struct dbw_ops *ops, void *arg)
{
	struct dbw *w = xcalloc(1, sizeof(*w));
	struct timeval tv = { tick_ms / 1000, (tick_ms % 1000) * 1000 };

	w->base = base;
	w->ops = *ops;
	w->arg = arg;
	if (conninfo)
		w->conninfo = xstrdup(conninfo);
	w->tick = event_new(base, -1, EV_PERSIST, tick_cb, w);
	if (!w->tick) {
		dbw_free(w);
		return NULL;
	}
	event_add(w->tick, &tv);
	if (w->conninfo)
		start_connect(w);
	return w;
}

void dbw_kick(struct dbw *w)
{
	send_next(w);
}

int dbw_up(const struct dbw *w)
{
	return w && atomic_load(&w->up);
}

void dbw_halt(struct dbw *w)
{
	if (!w)
		return;
	if (w->tick)
		event_free(w->tick);
	w->tick = NULL;
	close_conn(w, NULL, DBW_STOP);
}

static int sync_connect(struct dbw *w)
{
	const char *keys[] = { "dbname", "connect_timeout",
			       w->ops.appname ? "application_name" : NULL, NULL };
	const char *vals[] = { w->conninfo, "3", w->ops.appname, NULL };

	if (w->sync)
		return 0;
	if (!w->conninfo || w->sync_failed)
		return -1;
	w->sync = PQconnectdbParams(keys, vals, 1);
	if (PQstatus(w->sync) != CONNECTION_OK) {
		log_event(LOG_ERROR, "db_writer_stop_failed",
			  LOG_FIELDS(LOG_S("writer", w->ops.name),
				     LOG_S("error", PQerrorMessage(w->sync))),
			  "%s: cannot write to PostgreSQL at stop: %s", w->ops.name,
			  PQerrorMessage(w->sync));
		PQfinish(w->sync);
		w->sync = NULL;
		w->sync_failed = 1;
		return -1;
	}
	PQclear(PQexec(w->sync, "SET statement_timeout = '5s'"));
	return 0;
}

int dbw_exec_sync(struct dbw *w, const struct dbw_query *q)
{
	PGresult *r;
	int ok;

	if (!w || sync_connect(w) < 0)
		return -2;
	r = PQexecParams(w->sync, q->sql, q->nparams, NULL, q->params, NULL, NULL, 0);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok)
		log_event(LOG_ERROR, "db_writer_final_write_failed",
			  LOG_FIELDS(LOG_S("writer", w->ops.name),
				     LOG_S("error", PQresultErrorMessage(r))),
			  "%s: final write failed: %s", w->ops.name, PQresultErrorMessage(r));
	PQclear(r);
	return ok ? 0 : -1;
}

void dbw_free(struct dbw *w)
{
	if (!w)
		return;
	dbw_halt(w);
	if (w->sync)
		PQfinish(w->sync);
	free(w->conninfo);
	free(w);
}
