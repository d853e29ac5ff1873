/*
 * server: the HTTP side of jairouter-adapter (evhttp): the routes (POST requests from
 * HAProxy, GET /metrics, GET /health), the listening socket, and the drain on SIGTERM.
 * One libevent loop serves it and the upstream driver.
 */
#ifndef JR_AD_SERVER_H
#define JR_AD_SERVER_H

#include "adconfig.h"
#include "admetrics.h"
#include "report.h"

struct event_base;
struct evhttp;
struct evhttp_bound_socket;
struct event;
struct drv;
struct job;

struct ad_server {
	const struct ad_config *cfg;
	struct event_base *base;
	struct drv *drv;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	struct event *sigs[2], *drain_timer;
	struct ad_reporter rep;
	struct ad_metrics m;
	struct job *jobs;   /* in flight */
	int draining;       /* SIGTERM: no new connections; the loop ends when jobs end */
};

/* Sets up the loop, the driver, the listener (printing "LISTENING <port>" on stdout)
 * and the signals. 0, or -1 after logging why (srv_free cleans up either way). */
int srv_init(struct ad_server *s, const struct ad_config *cfg);
/* Runs the loop until drained. */
void srv_run(struct ad_server *s);
void srv_free(struct ad_server *s);

/* A job ended: when draining and it was the last, the loop stops shortly. */
void srv_job_gone(struct ad_server *s);

#endif
