/*
 * lb/table: the server table, one per HAProxy stats poll, and the choice of a server in
 * it.
 *
 * A table is built by the control thread from HAProxy's `show stat` CSV (backends named
 * be_* and their servers: health, weight, current sessions and queue, connection error
 * counters). What the agent learns itself lives in each server's `struct lb_dyn`: its own
 * selections since the last poll, latency EWMAs, breaker, 429 saturation, slow start. A
 * new table inherits the dyn state of the servers it shares with the old one
 * (lb_table_carry), so nothing is lost across polls and a server added at run time starts
 * fresh, in slow start.
 *
 * Threads: workers choose (lb_table_choose) under the caller's read lock and touch only
 * the atomics of lb_dyn (and the round-robin weights, under the backend's mutex). The
 * control thread swaps tables under the write lock and alone feeds outcomes and ticks
 * (lb_table_report, lb_table_tick), on the live table, without the lock: the fields it
 * writes that workers read are atomics.
 */
#ifndef JR_LB_TABLE_H
#define JR_LB_TABLE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "lb/breaker.h"
#include "lb/strategy.h"
#include "util/hmap.h"

#define LB_NAME_MAX 64      /* HAProxy proxy and server names (longer ones are skipped) */
#define LB_SERVERS_MAX 512  /* servers per backend the agent balances over; beyond: skipped */
#define LB_BACKENDS_MAX 4096
#define LB_STATS_MAX (8u << 20) /* bytes of `show stat` output accepted */

enum lb_health {
	LB_H_UP = 0,  /* UP, "UP n/m" (going down), "no check" */
	LB_H_DOWN,    /* DOWN, "DOWN n/m" (coming back) */
	LB_H_MAINT,   /* maintenance (set server state maint, or via a tracked server) */
	LB_H_DRAIN,   /* drain: finishes what it has, takes nothing new */
	LB_H_NOLB,    /* stopping */
	LB_H__COUNT
};

const char *lb_health_name(enum lb_health h);
/* HAProxy's status column ("UP 1/3", "no check", "MAINT (via b/s)"...). */
enum lb_health lb_health_parse(const char *status);

/* Why no server of a backend could take a request (also the fallback reason classes). */
enum lb_why {
	LB_W_NONE = 0,
	LB_W_DOWN,      /* every server is down, in maintenance, draining or weight 0 */
	LB_W_OPEN,      /* the rest have an open breaker (or no probe token left) */
	LB_W_SATURATED, /* the rest answered 429 and their retry-after has not passed */
	LB_W__COUNT
};

const char *lb_why_name(enum lb_why w);
int lb_why_parse(const char *name, size_t len); /* -1 when unknown */

/* What the agent knows of a server beyond HAProxy's figures. Atomics: read by workers. */
struct lb_dyn {
	_Atomic int64_t inflight;     /* chosen by the agent and not reported finished yet */
	_Atomic int64_t since_poll;   /* selections since the last poll */
	_Atomic uint64_t selected;    /* selections, ever (metrics) */
	_Atomic int64_t ttfb_us;      /* peak EWMA of time to first byte (%Tr); 0 unknown */
	_Atomic int64_t total_us;     /* EWMA of total time (%Ta); 0 unknown */
	_Atomic int br_state;         /* enum lb_br_state, published by the control thread */
	_Atomic int br_tokens;        /* half-open: probes that may still be sent */
	_Atomic int64_t sat_until_ms; /* 429: not chosen before this time */
	_Atomic int64_t up_since_ms;  /* slow start from here; 0: warm */
	int64_t swrr;                 /* round robin current weight (backend's rr_lock) */
	/* Control thread only. */
	struct lb_breaker br;
	int64_t ewma_at_ms;
	uint64_t opened, reported_ok, reported_fail;
};

struct lb_server {
	char name[LB_NAME_MAX];
	uint64_t name_hash;
	int weight;
	enum lb_health health;
	int64_t scur, qcur;
	uint64_t econ;     /* cumulative connection errors (deltas feed the breaker) */
	struct lb_dyn d;
};

struct lb_backend {
	char name[LB_NAME_MAX];
	size_t n;
	struct lb_server *srv;
	pthread_mutex_t rr_lock;
	struct lb_breaker_conf brc; /* this backend's thresholds (lb_table_set_breaker) */
};

struct lb_table {
	struct hmap by_name;
	struct lb_backend *be;
	size_t nbe, cap;
	int64_t built_ms;
};

/* Parses `show stat` CSV (the header line names the columns). Returns a new table, or NULL
 * with a reason in err when the text is not a stats dump. Rows beyond the limits above
 * are skipped (counted in *skipped when not NULL). */
struct lb_table *lb_table_parse(const char *csv, size_t len, int64_t now_ms, size_t *skipped,
				char *err, size_t errlen);
void lb_table_free(struct lb_table *t);

const struct lb_backend *lb_table_backend(const struct lb_table *t, const char *name);

/* Moves the agent's own knowledge from old to fresh (control thread, under the write lock
 * or before publication). A server that is new (when old is not NULL) or came back UP starts
 * its slow start now. Connection-error deltas are fed to the breakers, with fresh's
 * thresholds (set them first: lb_table_set_breaker). */
void lb_table_carry(struct lb_table *fresh, const struct lb_table *old, int64_t now_ms);

/* Sets a backend's breaker thresholds (control thread). */
void lb_table_set_breaker(struct lb_table *t, const char *backend, const struct lb_breaker_conf *c);

struct lb_choose_in {
	enum lb_strategy strategy;
	uint64_t key_hash;
	int has_key;
	double bound;          /* hash: bounded-load factor */
	unsigned slow_start_ms; /* 0: no slow start */
	int64_t now_ms;
	struct lb_rng *rng;
};

struct lb_choice {
	char server[LB_NAME_MAX];
	int probe;             /* a half-open breaker's probe */
	enum lb_why why;       /* when nothing was usable */
	int retry_after_s;     /* when nothing was usable: a hint for the client */
	size_t usable;         /* servers that were candidates */
	double latency_ms;     /* the chosen server's time-to-first-byte EWMA; 0 unknown */
};

/* Chooses a server of `backend` (worker thread, under the read lock). Returns 1 with
 * out->server set, 0 when the backend is not in the table (HAProxy balances on its own),
 * -1 when no server may take the request (out->why, out->retry_after_s). */
int lb_table_choose(struct lb_table *t, const char *backend, const struct lb_choose_in *in,
		    struct lb_choice *out);

/* A request the agent sent to this server has finished (its report arrived), or was
 * refused after the choice: its in-flight count is given back (never below 0). Any
 * thread, under the read lock for workers. */
void lb_table_release(struct lb_table *t, const char *backend, const char *server);

/* Outcome classes of a finished request. */
enum lb_outcome { LB_O_SUCCESS = 0, LB_O_FAILURE, LB_O_SATURATED, LB_O_IGNORE };

/* Feeds one finished request to its server (control thread). ttfb_ms/total_ms < 0 when
 * unknown; retry_after_s for LB_O_SATURATED. Returns the breaker event (metrics). */
enum lb_br_event lb_table_report(struct lb_table *t, const char *backend, const char *server,
				 enum lb_outcome o, int64_t ttfb_ms, int64_t total_ms,
				 int retry_after_s, int64_t now_ms);

/* Time-driven breaker transitions and EWMA ageing (control thread). Calls ev(b, s, event,
 * arg) for each breaker transition when ev is not NULL. */
void lb_table_tick(struct lb_table *t, int64_t now_ms,
		   void (*ev)(const struct lb_backend *, const struct lb_server *, enum lb_br_event,
			      void *),
		   void *arg);

#endif /* JR_LB_TABLE_H */
