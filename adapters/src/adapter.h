/*
 * adapter: the state one jairouter-adapter process shares between its modules (the
 * loop, the upstream driver, the options, the metrics, the report socket, the jobs in
 * flight). server.c owns it; a job points at it. Passed, never global.
 */
#ifndef JR_AD_ADAPTER_H
#define JR_AD_ADAPTER_H

#include "adconfig.h"
#include "admetrics.h"
#include "report.h"

struct event_base;
struct evhttp;
struct evhttp_bound_socket;
struct event;
struct drv;
struct job;
struct tok_cache;
struct ac_cache;
struct rc_client;
struct rt_hub;

struct ad_server {
	const struct ad_config *cfg;
	struct event_base *base;
	struct drv *drv;
	struct tok_cache *tokens;  /* access tokens of exchanged credentials (tokens.h) */
	struct ac_cache *cache;    /* the response cache (adcache.h, docs/cache.md) */
	struct rc_client *rcache;  /* its shared tier in Redis (rcache.h), NULL = none */
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	struct event *sigs[2], *drain_timer;
	struct ad_reporter rep;
	struct ad_metrics m;
	struct rt_hub *rt;  /* realtime sessions (realtime.h), NULL without --realtime-listen */
	struct job *jobs;   /* in flight */
	int draining;       /* SIGTERM: no new connections; the loop ends when jobs end */
};

#endif
