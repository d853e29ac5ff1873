/*
 * net/server: the SPOP server. The control thread accepts and hands each connection to
 * a worker thread (round robin); each worker runs its own event base and owns its
 * connections for their whole life (net/conn.c speaks SPOP on them).
 */
#ifndef JR_NET_SERVER_H
#define JR_NET_SERVER_H

#include <stddef.h>

#include "config/config.h"

struct event_base;
struct server;

/* What runs on each worker thread when its loop has ended, before its event base is
 * freed: every module that keeps per-worker state (a Redis connection, a token cache)
 * registers the function that frees it. main builds the list and passes it in. */
#define SERVER_EXIT_HOOKS_MAX 8
struct server_exit_hooks {
	size_t n;
	struct {
		void (*fn)(void *arg);
		void *arg;
	} h[SERVER_EXIT_HOOKS_MAX];
};

/* Appends a hook (they run in order). Returns 0, or -1 when the list is full. */
int server_exit_hooks_add(struct server_exit_hooks *l, void (*fn)(void *arg), void *arg);

/* Binds the listener on cfg->listen and starts cfg->workers workers (0 = one per CPU);
 * hooks (copied; NULL: none) run on each worker as it exits. Returns NULL with a message
 * in err on failure. */
struct server *server_start(struct event_base *control, const struct jr_config *cfg,
			    const struct server_exit_hooks *hooks, char *err, size_t errlen);

/* Applies the settings that may change at run time (limits, timeouts, error policy). */
void server_reconfigure(struct server *srv, const struct jr_config *cfg);

/* Graceful stop: closes the listener, lets every connection finish its in-flight
 * decisions, says AGENT-DISCONNECT and closes; whatever is left after deadline_ms is
 * closed hard. done(arg) runs on the control thread when all workers have stopped. */
void server_drain(struct server *srv, unsigned deadline_ms, void (*done)(void *), void *arg);

/* Joins the worker threads and frees everything (after drain completed). */
void server_free(struct server *srv);

long server_connections(const struct server *srv);
/* The bound TCP port (useful with "host:0"); 0 once the listener is closed. */
int server_port(const struct server *srv);
unsigned server_workers(const struct server *srv);

#endif /* JR_NET_SERVER_H */
