/*
 * Internal to net/: what server.c and conn.c share.
 */
#ifndef JR_NET_INT_H
#define JR_NET_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "metrics/metrics.h"
#include "net/server.h"

struct event_base;
struct event;
struct bufferevent;
struct server;

/* Settings readable by every worker and changed by SIGHUP. */
struct net_live {
	atomic_uint max_connections;
	atomic_uint max_inflight;
	atomic_uint hello_timeout_ms;
	atomic_uint idle_timeout_ms;
	atomic_uint deadline_ms;
	atomic_int on_error_allow;
};

struct conn;

struct worker {
	struct server *srv;
	unsigned index;
	pthread_t thread;
	struct event_base *base;
	struct event *wake;        /* activated by the control thread */
	pthread_mutex_t lock;      /* guards the hand-off queue and the drain flag */
	int *queue;                /* accepted fds waiting to be adopted */
	unsigned queue_len, queue_cap;
	int drain_requested;
	int draining;              /* worker-local copy */
	struct event *drain_timer;
	struct event *grace_timer;
	struct conn *conns;        /* doubly-linked list of this worker's connections */
	unsigned nconns;
	struct metrics_shard *metrics;
};

struct server {
	struct event_base *control;
	struct evconnlistener *listener;
	struct worker *workers;
	unsigned nworkers, next_worker;
	struct net_live live;
	atomic_long connections;
	atomic_uint workers_running;
	unsigned drain_deadline_ms;
	struct event *drain_check;
	void (*drain_done)(void *);
	void *drain_arg;
	struct server_exit_hooks exit_hooks; /* run on each worker as it exits */
};

/* conn.c */
void conn_adopt(struct worker *w, int fd);
struct conn *conn_next(const struct conn *c);
/* Starts draining one connection (DISCONNECT once idle) or closes it now when hard. */
void conn_drain(struct conn *c, int hard);
/* Called when the worker's last connection is gone during a drain. */
void worker_maybe_stop(struct worker *w);

#endif /* JR_NET_INT_H */
