/*
 * pgsync: keeps the store (state/state.h) in step with PostgreSQL.
 *
 * Runs on the control thread's event base with libpq's asynchronous API only
 * (PQconnectStart/PQconnectPoll, PQsendQuery, PQconsumeInput, PQnotifies): it never
 * blocks the loop. Life cycle:
 *   connect -> LISTEN jairouter_changes -> full load -> store_replace() -> ready
 *   NOTIFY "<table>:<op>:<id>" -> fetch that one row -> apply under store_write_begin()
 *   every resync_interval -> full load again (safety net for missed notifications)
 *   connection lost -> keep the store as is (serve from memory), status DOWN,
 *                      reconnect with capped exponential back-off, full load on reconnect.
 * Every query has a timeout (a timer cancels it with PQcancel-free reset of the connection).
 */
#ifndef JR_PGSYNC_H
#define JR_PGSYNC_H

#include <stdint.h>

struct event_base;

enum pgsync_status {
	PGSYNC_CONNECTING = 0, /* never connected yet, or reconnecting */
	PGSYNC_UP = 1,         /* connected, listening, state loaded */
	PGSYNC_DOWN = 2,       /* connection lost or refused; retrying */
};

struct pgsync_opts {
	const char *conninfo;        /* libpq connection string or URI */
	unsigned resync_interval_ms; /* full reload period; 0 = 60000 */
	unsigned query_timeout_ms;   /* 0 = 5000; bounds connecting too. An inactivity
				      * timeout: re-armed whenever the server sends data, so
				      * a long full load that keeps streaming is not cut. */
	unsigned retry_max_ms;       /* back-off cap; 0 = 5000 */
};

struct pgsync_stats {
	enum pgsync_status status;
	uint64_t full_loads;         /* completed full loads */
	uint64_t notifications;      /* NOTIFY messages received */
	uint64_t errors;             /* failed connects/queries */
	int64_t last_load_unix;      /* end of the last successful full load; 0 = never */
};

struct pgsync;

/* Creates the synchroniser and starts connecting. Returns NULL only on bad options
 * (no base, no conninfo, or a conninfo that libpq cannot parse). The session's
 * application_name defaults to "jairouter-spoa" (fallback_application_name). */
struct pgsync *pgsync_start(struct event_base *base, const struct pgsync_opts *opts);

/* Applies new options (SIGHUP): a changed conninfo reconnects; intervals apply at once. */
void pgsync_reconfigure(struct pgsync *ps, const struct pgsync_opts *opts);

/* Asks for a full load as soon as nothing is in flight (e.g. after the master keys
 * changed, so that provider credentials are opened again). */
void pgsync_reload(struct pgsync *ps);

void pgsync_stats(const struct pgsync *ps, struct pgsync_stats *out);

/* Closes the connection and frees everything. Safe on NULL. */
void pgsync_stop(struct pgsync *ps);

#endif /* JR_PGSYNC_H */
