/*
 * The shared batch writer (util/dbwriter.h, pg/writer.c) against a real database
 * (tests/pg/run.sh passes its connection string): statements sent and acknowledged, a
 * statement the server rejects, result rows, a connection killed under a statement that
 * is then sent again after the reconnect, and the blocking writes of a stop. Results are
 * compared by count (the reconnect waits for the writer's one-second retry).
 *
 *   test_dbwriter CONNINFO
 */
#include "util/dbwriter.h"
#include "util/log.h"

#include "../unit/testlib.h"

#include <event2/event.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#define APPNAME "jairouter-test-writer"
#define INSERT_SQL "INSERT INTO dbw_rows (v) SELECT unnest($1::int[])"

static const char *conninfo;
static struct event_base *base;

/* The user of the writer: statements to send, and what came back. */
static struct {
	const char *sql;      /* the next statement; NULL: nothing to send */
	const char *param;    /* its one parameter, or NULL for none */
	int sent, ok, errors, lost, stopped, rows;
	long long row_sum;
	int keep;             /* re-send after DBW_LOST, as the usage and audit writers do */
} u;

static int next(void *arg, struct dbw_query *q)
{
	(void)arg;
	if (!u.sql)
		return 0;
	q->sql = u.sql;
	q->nparams = u.param ? 1 : 0;
	q->params = u.param ? &u.param : NULL;
	u.sent++;
	return 1;
}

static void row(void *arg, int ncols, const char *const *vals)
{
	(void)arg;
	u.rows++;
	if (ncols == 1 && vals[0])
		u.row_sum += strtoll(vals[0], NULL, 10);
}

static void done(void *arg, enum dbw_status status, const char *err)
{
	(void)arg;
	u.ok += status == DBW_OK;
	u.errors += status == DBW_ERROR && err && err[0];
	u.lost += status == DBW_LOST;
	u.stopped += status == DBW_STOP;
	if (status != DBW_LOST || !u.keep)
		u.sql = NULL;
}

static const struct dbw_ops ops = {
	.name = "test",
	.appname = APPNAME,
	.down_msg = "retrying",
	.next = next,
	.row = row,
	.done = done,
};

/* One number from a statement of its own connection (-1 on error). */
static long long scalar(const char *sql)
{
	PGconn *c = PQconnectdb(conninfo);
	PGresult *r = PQexec(c, sql);
	long long v = -1;
	int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;

	if (ok && !PQgetisnull(r, 0, 0))
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	else if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fprintf(stderr, "  statement failed: %s", PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return v;
}

static int idle(void)
{
	return u.sql == NULL;
}

static int run_until(int (*pred)(void), int turns)
{
	for (int i = 0; i < turns && !pred(); i++)
		event_base_loop(base, EVLOOP_ONCE);
	return pred();
}

static void reset(const char *sql, const char *param)
{
	memset(&u, 0, sizeof(u));
	u.sql = sql;
	u.param = param;
}

/* A statement is sent at once after the connect and acknowledged once. */
static void test_statement_written(void)
{
	struct dbw *w;

	reset(INSERT_SQL, "{1,2,3}");
	w = dbw_start(base, conninfo, 20, &ops, NULL);
	CHECK(run_until(idle, 500));
	CHECK_EQ_INT(u.sent, 1);
	CHECK_EQ_INT(u.ok, 1);
	CHECK(dbw_up(w));
	CHECK_EQ_INT(scalar("SELECT sum(v) FROM dbw_rows"), 6);
	dbw_free(w);
}

/* A rejected statement is reported with the server's message; result rows reach row(). */
static void test_error_and_rows(void)
{
	struct dbw *w;

	reset("INSERT INTO dbw_missing VALUES (1)", NULL);
	w = dbw_start(base, conninfo, 20, &ops, NULL);
	CHECK(run_until(idle, 500));
	CHECK_EQ_INT(u.errors, 1);
	CHECK_EQ_INT(u.ok, 0);
	u.sql = "SELECT v FROM dbw_rows";
	CHECK(run_until(idle, 500));
	CHECK_EQ_INT(u.ok, 1);
	CHECK_EQ_INT(u.rows, 3);
	CHECK_EQ_INT(u.row_sum, 6);
	dbw_free(w);
}

static int sent_one(void)
{
	return u.sent >= 1;
}

static int written_again(void)
{
	return u.ok == 1;
}

/* The server ends the writer's connection under a statement: DBW_LOST, then the
 * statement is sent again on a new connection and written once. */
static void test_lost_connection(void)
{
	struct dbw *w;

	reset("SELECT pg_sleep(5)", NULL);
	u.keep = 1;
	w = dbw_start(base, conninfo, 20, &ops, NULL);
	CHECK(run_until(sent_one, 500));
	CHECK(scalar("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
		     "WHERE application_name = '" APPNAME "'") >= 1);
	u.sql = INSERT_SQL;
	u.param = "{10}";
	CHECK(run_until(written_again, 1000));
	CHECK_EQ_INT(u.lost, 1);
	CHECK_EQ_INT(u.sent, 2);
	CHECK_EQ_INT(scalar("SELECT sum(v) FROM dbw_rows"), 16);
	dbw_free(w);
}

/* The stop: a statement in flight gets DBW_STOP; the blocking writes follow. */
static void test_stop(void)
{
	struct dbw *w, *none;
	const char *p = "{100}";
	struct dbw_query q = { INSERT_SQL, 1, &p };
	struct dbw_query bad = { "INSERT INTO dbw_missing VALUES (1)", 0, NULL };

	reset("SELECT pg_sleep(5)", NULL);
	w = dbw_start(base, conninfo, 20, &ops, NULL);
	CHECK(run_until(sent_one, 500));
	dbw_halt(w);
	CHECK_EQ_INT(u.stopped, 1);
	CHECK_EQ_INT(dbw_exec_sync(w, &q), 0);
	CHECK_EQ_INT(dbw_exec_sync(w, &bad), -1);
	CHECK_EQ_INT(scalar("SELECT sum(v) FROM dbw_rows"), 116);
	dbw_free(w);
	none = dbw_start(base, "host=127.0.0.1 port=1 dbname=none", 20, &ops, NULL);
	dbw_halt(none);
	CHECK_EQ_INT(dbw_exec_sync(none, &q), -2);
	CHECK_EQ_INT(dbw_exec_sync(NULL, &q), -2);
	dbw_free(none);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: test_dbwriter CONNINFO\n");
		return 2;
	}
	conninfo = argv[1];
	log_set_level(LOG_ERROR);
	base = event_base_new();
	scalar("CREATE TABLE IF NOT EXISTS dbw_rows (v int)"); /* no row: -1 */
	if (scalar("SELECT count(*) FROM dbw_rows") != 0) {
		fprintf(stderr, "test_dbwriter: wants an empty database\n");
		return 2;
	}
	RUN(test_statement_written);
	RUN(test_error_and_rows);
	RUN(test_lost_connection);
	RUN(test_stop);
	event_base_free(base);
	TEST_END();
}
