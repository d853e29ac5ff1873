/*
 * util/dbwriter: an asynchronous PostgreSQL batch writer on the control loop, shared by
 * the usage writer (usage/) and the security-audit writer (audit/). Its users build their
 * statement's parameters as text values and never see libpq. The interface sits here,
 * below every module; its one implementation is pg/writer.c (libpq stays in pg/), so that
 * usage/ and audit/, which pg/'s readers reach through state/ and pipeline/, include no
 * header of pg/.
 *
 * One connection per writer, one statement in flight. Every tick_ms the writer calls
 * ops.tick, then, when connected and idle, ops.next for the statement to send (also at
 * once after a connect). A lost connection is retried at the first tick one second or
 * more later; a statement that waits more than 10 seconds drops the connection. Every
 * statement sent gets exactly one ops.done call, whatever happens to it; a statement's
 * parameters must stay valid until then. The bounded queue and the idempotence of a batch
 * re-sent after a lost acknowledgement belong to the users (their statements).
 *
 * Stop: dbw_halt closes the asynchronous connection (a statement in flight gets
 * DBW_STOP), dbw_exec_sync writes what is left on a blocking connection (connect timeout
 * 3 s, statement timeout 5 s), dbw_free releases the writer.
 */
#ifndef JR_UTIL_DBWRITER_H
#define JR_UTIL_DBWRITER_H

struct event_base;
struct dbw;

enum dbw_status {
	DBW_OK,    /* the statement succeeded */
	DBW_ERROR, /* the server rejected it (err says why) */
	DBW_LOST,  /* the connection was lost, or the statement timed out: send it again */
	DBW_STOP,  /* dbw_halt closed the connection while it was in flight */
};

struct dbw_query {
	const char *sql;
	int nparams;
	const char *const *params; /* text values; NULL for SQL NULL */
};

struct dbw_ops {
	const char *name;     /* in log lines: "usage", "audit" */
	const char *appname;  /* application_name, or NULL for the connection string's */
	const char *down_msg; /* logged after "PostgreSQL writer <why>: <error>; " */
	/* Connected and idle: 1 with *q set to send it, 0 for nothing to send. */
	int (*next)(void *arg, struct dbw_query *q);
	/* One row of the statement in flight's result (text values, NULL for SQL NULL). */
	void (*row)(void *arg, int ncols, const char *const *vals);
	void (*done)(void *arg, enum dbw_status status, const char *err);
	void (*tick)(void *arg); /* or NULL: at every tick, before anything else */
};

/* conninfo NULL: no database (the ticks still run). NULL on failure. */
struct dbw *dbw_start(struct event_base *base, const char *conninfo, unsigned tick_ms,
		      const struct dbw_ops *ops, void *arg);
/* Sends the next statement now (ops.next) when connected and idle, instead of at the next
 * tick. Safe inside ops.done. */
void dbw_kick(struct dbw *w);
/* Whether the asynchronous connection is up (thread-safe). */
int dbw_up(const struct dbw *w);
void dbw_halt(struct dbw *w);
/* 0 when written; -1 when the server rejected it (logged); -2 without a connection
 * (logged once). */
int dbw_exec_sync(struct dbw *w, const struct dbw_query *q);
void dbw_free(struct dbw *w);

#endif /* JR_UTIL_DBWRITER_H */
