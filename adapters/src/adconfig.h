/*
 * adconfig: jairouter-adapter's command-line options, one table (name, range, where the
 * value goes), like the agent's config/ keys. docs/adapter.md lists them.
 */
#ifndef JR_AD_ADCONFIG_H
#define JR_AD_ADCONFIG_H

#include <stddef.h>
#include <stdio.h>

struct ad_config {
	char listen[128];          /* HOST:PORT (":0" lets the kernel choose) */
	char report[128];          /* the agent's report listener, "" = none */
	char cache_redis[128];     /* the response cache's shared tier, HOST:PORT, "" = none */
	size_t max_body, max_response, max_pending;
	size_t cache_max_bytes;    /* the response cache's bound (docs/cache.md); 0 = off */
	long max_inflight, connect_timeout_ms, idle_timeout_s, drain_timeout_s;
	long cache_redis_timeout_ms;
	/* Realtime sessions (realtime.h): their listener ("" = none), the largest server
	 * message, the most sessions at once, a session's longest life. */
	char realtime_listen[128];
	size_t realtime_max_message;
	long realtime_max_sessions, realtime_max_session_s;
	int log_level;             /* enum log_level */
};

void adcfg_defaults(struct ad_config *c);

/* Parses "--name value" pairs into c. 0, or -1 with a message in err. */
int adcfg_parse(int argc, char **argv, struct ad_config *c, char *err, size_t cap);

/* The usage text. */
void adcfg_usage(FILE *f);

#endif
