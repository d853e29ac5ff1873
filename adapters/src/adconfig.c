/* adconfig: see adconfig.h. */
#include "adconfig.h"

#include "util/log.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum opt_kind { OPT_TEXT, OPT_SIZE, OPT_LONG, OPT_LOG_LEVEL };

static const struct opt {
	const char *name;
	enum opt_kind kind;
	size_t off, cap; /* cap: OPT_TEXT only */
	long min, max;
} opts[] = {
#define TEXT(n, m) { n, OPT_TEXT, offsetof(struct ad_config, m), sizeof(((struct ad_config *)0)->m), 0, 0 }
#define NUM(n, k, m, lo, hi) { n, k, offsetof(struct ad_config, m), 0, lo, hi }
	TEXT("--listen", listen),
	TEXT("--report", report),
	TEXT("--cache-redis", cache_redis),
	NUM("--max-body", OPT_SIZE, max_body, 1024, 1L << 30),
	NUM("--max-response", OPT_SIZE, max_response, 1024, 1L << 30),
	NUM("--max-pending", OPT_SIZE, max_pending, 1024, 1L << 30),
	NUM("--cache-max-bytes", OPT_SIZE, cache_max_bytes, 0, 1L << 34),
	NUM("--max-inflight", OPT_LONG, max_inflight, 1, 1000000),
	NUM("--connect-timeout-ms", OPT_LONG, connect_timeout_ms, 1, 600000),
	NUM("--idle-timeout-s", OPT_LONG, idle_timeout_s, 1, 86400),
	NUM("--drain-timeout-s", OPT_LONG, drain_timeout_s, 0, 3600),
	NUM("--cache-redis-timeout-ms", OPT_LONG, cache_redis_timeout_ms, 1, 10000),
	NUM("--log-level", OPT_LOG_LEVEL, log_level, 0, 0),
	TEXT("--realtime-listen", realtime_listen),
	NUM("--realtime-max-message", OPT_SIZE, realtime_max_message, 1024, 1L << 30),
	NUM("--realtime-max-sessions", OPT_LONG, realtime_max_sessions, 1, 1000000),
	NUM("--realtime-max-session-s", OPT_LONG, realtime_max_session_s, 1, 86400),
#undef TEXT
#undef NUM
};

void adcfg_defaults(struct ad_config *c)
{
	*c = (struct ad_config){ "127.0.0.1:8090", "", "", 4u << 20, 16u << 20, 256u << 10, 64u << 20, 1024, 10000,
				 300, 5, 50, "", 4u << 20, 1024, 600, (int)log_get_level() };
}

void adcfg_usage(FILE *f)
{
	fprintf(f, "usage: jairouter-adapter [--listen HOST:PORT] [--report HOST:PORT] [--max-body BYTES]\n"
		   "       [--max-response BYTES] [--max-pending BYTES] [--max-inflight N]\n"
		   "       [--cache-max-bytes BYTES] [--cache-redis HOST:PORT] [--cache-redis-timeout-ms MS]\n"
		   "       [--connect-timeout-ms MS] [--idle-timeout-s S] [--drain-timeout-s S]\n"
		   "       [--log-level error|warn|info|debug]\n"
		   "       [--realtime-listen HOST:PORT] [--realtime-max-message BYTES]\n"
		   "       [--realtime-max-sessions N] [--realtime-max-session-s S]\n");
}

static int set_number(const struct opt *o, const char *v, void *dst, char *err, size_t cap)
{
	char *end;
	long n = strtol(v, &end, 10);

	if (!*v || *end || n < o->min || n > o->max) {
		snprintf(err, cap, "%s: expected a number from %ld to %ld", v, o->min, o->max);
		return -1;
	}
	if (o->kind == OPT_SIZE)
		*(size_t *)dst = (size_t)n;
	else
		*(long *)dst = n;
	return 0;
}

static int set_opt(const struct opt *o, const char *v, struct ad_config *c, char *err, size_t cap)
{
	void *dst = (char *)c + o->off;

	switch (o->kind) {
	case OPT_TEXT:
		snprintf(dst, o->cap, "%s", v);
		return 0;
	case OPT_LOG_LEVEL:
		if ((*(int *)dst = log_level_parse(v)) < 0) {
			snprintf(err, cap, "--log-level %s: expected error, warn, info or debug", v);
			return -1;
		}
		return 0;
	default:
		return set_number(o, v, dst, err, cap);
	}
}

int adcfg_parse(int argc, char **argv, struct ad_config *c, char *err, size_t cap)
{
	for (int i = 1; i < argc; i += 2) {
		const struct opt *o = NULL;
		for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]) && !o; k++)
			if (strcmp(argv[i], opts[k].name) == 0)
				o = &opts[k];
		if (!o || i + 1 >= argc) {
			snprintf(err, cap, "%s: unknown option or missing value", argv[i]);
			return -1;
		}
		if (set_opt(o, argv[i + 1], c, err, cap) < 0)
			return -1;
	}
	return 0;
}
