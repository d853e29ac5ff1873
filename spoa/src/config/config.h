/*
 * config: the agent's configuration file (`key = value` lines; see docs/design.md for
 * every key). Parsing is table-driven and all-or-nothing: config_load() fills *out only
 * when the whole file is valid, so a SIGHUP with a broken file keeps the old settings.
 */
#ifndef JR_CONFIG_H
#define JR_CONFIG_H

#include <stddef.h>

#define CONFIG_ADDR_MAX 256
#define CONFIG_DSN_MAX 1024
#define CONFIG_PATH_MAX 512
#define CONFIG_AGENT_ID_MAX 64

struct jr_config {
	char listen[CONFIG_ADDR_MAX];
	/* This agent's name in HAProxy's report lines (ag=): lines of other agents are
	 * ignored. Default: the listen address, or host name:port for a wildcard one, so
	 * that it stays the same across restarts of the same instance. */
	char agent_id[CONFIG_AGENT_ID_MAX];
	char metrics_listen[CONFIG_ADDR_MAX];
	char admin_api_listen[CONFIG_ADDR_MAX]; /* the administration API (api/api.h); empty: off */
	unsigned admin_api_rate;                /* its requests per minute per caller; 0: no limit */
	unsigned workers;
	char database[CONFIG_DSN_MAX];
	unsigned deadline_ms;
	int on_error_allow;
	unsigned resync_interval_ms;
	unsigned max_connections;
	unsigned max_inflight_per_conn;
	unsigned hello_timeout_ms;
	unsigned idle_timeout_ms;
	unsigned drain_timeout_ms;
	int log_level;
	char master_key_file[CONFIG_PATH_MAX]; /* provider credentials (cred/cred.h); empty: none */
	unsigned abuse_max_failures, abuse_slow_after, abuse_window_s, abuse_block_s; /* abuse/abuse.h */
	unsigned audit_database; /* 1: security audit rows to PostgreSQL too (audit/audit.h) */
	unsigned oidc_refresh_s, oidc_min_refresh_s; /* JWKS refreshes (oidc/oidc.h) */
	char report_listen[CONFIG_ADDR_MAX];   /* end-of-request lines (report/report.h); empty: off */
	char haproxy_stats_socket[CONFIG_PATH_MAX]; /* HAProxy runtime API (lb/); empty: off */
	unsigned lb_poll_ms;                   /* `show stat` poll interval */
	/* Limits and usage (docs/limits.md). */
	char redis[CONFIG_ADDR_MAX];     /* host:port of the fleet's Redis; empty: per-node limits */
	unsigned redis_timeout_ms;       /* a Redis answer slower than this: local fallback */
	unsigned fleet_size;             /* agents sharing the limits: the fallback divides by it */
	unsigned limits_max_states;      /* local counters (then per-definition overflow) */
	unsigned limits_max_inflight;    /* reservations of requests in flight */
	unsigned limits_lease_ms;        /* a reservation whose report never came expires */
	unsigned limits_default_max_tokens; /* completion estimate without max_tokens */
	unsigned limits_bytes_per_token; /* prompt estimate: body bytes per token */
	unsigned usage_flush_ms;         /* usage written to PostgreSQL this often */
	unsigned usage_max_rows;         /* aggregated rows held while PostgreSQL is down */
	char access_log[CONFIG_PATH_MAX]; /* access log target (accesslog/accesslog.h); empty: off */
	unsigned access_log_max_kb;       /* its queue's bound */
	unsigned usage_wait_ms;          /* a streamed request waits this long for the adapter's usage */
	/* Files and batches (docs/api.md, "Files and batches"). */
	char files_model[128];           /* the default model whose backend stores files; empty: none */
	unsigned files_max_bytes;        /* an upload's largest announced size (purpose other than batch) */
	unsigned metrics_max_tenants;    /* tenants with series of their own (metrics/traffic.h) */
	unsigned metrics_max_models;     /* models with series of their own */
	/* Tracing (trace/trace.h, docs/observability.md "Tracing"). */
	char trace_otlp_url[512];        /* OTLP/HTTP traces endpoint; empty: no export */
	char trace_service[64];          /* service.name of the spans */
	unsigned trace_queue_max;        /* spans waiting for export; beyond: dropped, counted */
	unsigned trace_batch_max;        /* spans per export request */
	unsigned trace_flush_ms;         /* a partial batch is sent after this */
};

void config_defaults(struct jr_config *c);

/* Reads path. Returns 0 and fills *out, or -1 with a message "file:line: reason" in err. */
int config_load(const char *path, struct jr_config *out, char *err, size_t errlen);

/* Parses the text of a config file (the part of config_load that does not touch files;
 * `name` is used in messages). */
int config_parse(const char *text, const char *name, struct jr_config *out, char *err,
		 size_t errlen);

/* Names of settings that differ between a and b but only apply at restart, joined by
 * ", " into buf (empty when none). */
void config_restart_diff(const struct jr_config *a, const struct jr_config *b, char *buf,
			 size_t cap);

#endif /* JR_CONFIG_H */
