#include "config/config.h"

#include "util/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum opt_kind { OPT_STR, OPT_UINT, OPT_ONERROR, OPT_LOGLEVEL };

struct opt {
	const char *name;
	enum opt_kind kind;
	size_t offset;
	size_t size;       /* OPT_STR: buffer size */
	unsigned min, max; /* OPT_UINT: accepted range */
	int restart;       /* applies only at restart */
};

#define F(field) offsetof(struct jr_config, field), sizeof(((struct jr_config *)0)->field)

static const struct opt opts[] = {
	{ "listen", OPT_STR, F(listen), 0, 0, 1 },
	{ "agent_id", OPT_STR, F(agent_id), 0, 0, 1 },
	{ "metrics_listen", OPT_STR, F(metrics_listen), 0, 0, 1 },
	{ "admin_api_listen", OPT_STR, F(admin_api_listen), 0, 0, 1 },
	{ "admin_api_rate", OPT_UINT, F(admin_api_rate), 0, 1000000, 0 },
	{ "workers", OPT_UINT, F(workers), 0, 256, 1 },
	{ "database", OPT_STR, F(database), 0, 0, 0 },
	{ "deadline_ms", OPT_UINT, F(deadline_ms), 1, 60000, 0 },
	{ "on_error", OPT_ONERROR, F(on_error_allow), 0, 0, 0 },
	{ "resync_interval_ms", OPT_UINT, F(resync_interval_ms), 1000, 86400000, 0 },
	{ "max_connections", OPT_UINT, F(max_connections), 1, 1000000, 0 },
	{ "max_inflight_per_conn", OPT_UINT, F(max_inflight_per_conn), 1, 4096, 0 },
	{ "hello_timeout_ms", OPT_UINT, F(hello_timeout_ms), 10, 600000, 0 },
	{ "idle_timeout_ms", OPT_UINT, F(idle_timeout_ms), 100, 86400000, 0 },
	{ "drain_timeout_ms", OPT_UINT, F(drain_timeout_ms), 0, 600000, 0 },
	{ "log_level", OPT_LOGLEVEL, F(log_level), 0, 0, 0 },
	{ "master_key_file", OPT_STR, F(master_key_file), 0, 0, 0 },
	/* brute-force protection (abuse/abuse.h, docs/identity.md) */
	{ "abuse_max_failures", OPT_UINT, F(abuse_max_failures), 0, 1000000, 0 },
	{ "abuse_slow_after", OPT_UINT, F(abuse_slow_after), 0, 1000000, 0 },
	{ "abuse_window_s", OPT_UINT, F(abuse_window_s), 1, 86400, 0 },
	{ "abuse_block_s", OPT_UINT, F(abuse_block_s), 1, 86400, 0 },
	{ "audit_database", OPT_UINT, F(audit_database), 0, 1, 1 },
	{ "oidc_refresh_s", OPT_UINT, F(oidc_refresh_s), 10, 86400, 1 },
	{ "oidc_min_refresh_s", OPT_UINT, F(oidc_min_refresh_s), 1, 3600, 1 },
	{ "report_listen", OPT_STR, F(report_listen), 0, 0, 1 },
	{ "haproxy_stats_socket", OPT_STR, F(haproxy_stats_socket), 0, 0, 0 },
	{ "lb_poll_ms", OPT_UINT, F(lb_poll_ms), 50, 10000, 0 },
	{ "redis", OPT_STR, F(redis), 0, 0, 1 },
	{ "redis_timeout_ms", OPT_UINT, F(redis_timeout_ms), 1, 10000, 0 },
	{ "fleet_size", OPT_UINT, F(fleet_size), 1, 10000, 0 },
	{ "limits_max_states", OPT_UINT, F(limits_max_states), 16, 100000000, 1 },
	{ "limits_max_inflight", OPT_UINT, F(limits_max_inflight), 16, 10000000, 1 },
	{ "limits_lease_ms", OPT_UINT, F(limits_lease_ms), 1000, 86400000, 0 },
	{ "limits_default_max_tokens", OPT_UINT, F(limits_default_max_tokens), 0, 10000000, 0 },
	{ "limits_bytes_per_token", OPT_UINT, F(limits_bytes_per_token), 1, 64, 0 },
	{ "usage_flush_ms", OPT_UINT, F(usage_flush_ms), 100, 3600000, 1 },
	{ "usage_max_rows", OPT_UINT, F(usage_max_rows), 16, 10000000, 1 },
	{ "usage_wait_ms", OPT_UINT, F(usage_wait_ms), 0, 600000, 0 },
	{ "files_model", OPT_STR, F(files_model), 0, 0, 0 },
	{ "files_max_bytes", OPT_UINT, F(files_max_bytes), 1, 4294967295u, 0 },
	{ "access_log", OPT_STR, F(access_log), 0, 0, 1 },
	{ "access_log_max_kb", OPT_UINT, F(access_log_max_kb), 64, 1048576, 1 },
	{ "metrics_max_tenants", OPT_UINT, F(metrics_max_tenants), 0, 10000, 1 },
	{ "metrics_max_models", OPT_UINT, F(metrics_max_models), 0, 10000, 1 },
	{ "trace_otlp_url", OPT_STR, F(trace_otlp_url), 0, 0, 1 },
	{ "trace_service", OPT_STR, F(trace_service), 0, 0, 1 },
	{ "trace_queue_max", OPT_UINT, F(trace_queue_max), 16, 1000000, 1 },
	{ "trace_batch_max", OPT_UINT, F(trace_batch_max), 1, 10000, 1 },
	{ "trace_flush_ms", OPT_UINT, F(trace_flush_ms), 10, 60000, 1 },
};

#undef F

void config_defaults(struct jr_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->listen, sizeof(c->listen), "127.0.0.1:12345");
	snprintf(c->metrics_listen, sizeof(c->metrics_listen), "127.0.0.1:9180");
	snprintf(c->report_listen, sizeof(c->report_listen), "127.0.0.1:12346");
	c->deadline_ms = 150;
	c->admin_api_rate = 600;
	c->resync_interval_ms = 60000;
	c->max_connections = 4096;
	c->max_inflight_per_conn = 64;
	c->hello_timeout_ms = 5000;
	c->idle_timeout_ms = 300000;
	c->drain_timeout_ms = 5000;
	c->log_level = LOG_INFO;
	c->abuse_max_failures = 10;
	c->abuse_slow_after = 5;
	c->abuse_window_s = 60;
	c->abuse_block_s = 300;
	c->audit_database = 1;
	c->oidc_refresh_s = 300;
	c->oidc_min_refresh_s = 10;
	c->lb_poll_ms = 250;
	c->redis_timeout_ms = 25;
	c->fleet_size = 1;
	c->limits_max_states = 200000;
	c->limits_max_inflight = 65536;
	c->limits_lease_ms = 660000; /* HAProxy's longest timeout (10 min) plus a minute */
	c->limits_default_max_tokens = 256;
	c->limits_bytes_per_token = 4;
	c->usage_flush_ms = 1000;
	c->usage_max_rows = 100000;
	c->usage_wait_ms = 5000;
	c->files_max_bytes = 536870912; /* OpenAI's limit per file: 512 MB */
	c->access_log_max_kb = 4096;
	c->metrics_max_tenants = 100;
	c->metrics_max_models = 50;
	snprintf(c->trace_service, sizeof(c->trace_service), "jairouter");
	c->trace_queue_max = 8192;
	c->trace_batch_max = 512;
	c->trace_flush_ms = 1000;
}

static const struct opt *opt_find(const char *name)
{
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		if (strcmp(opts[i].name, name) == 0)
			return &opts[i];
	return NULL;
}

static int set_uint(const struct opt *o, const char *v, void *field)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || end == v || *end || !isdigit((unsigned char)*v) || n < o->min || n > o->max)
		return -1;
	*(unsigned *)field = (unsigned)n;
	return 0;
}

/* Applies one value. Returns 0 or -1 with a reason in err. */
static int opt_set(const struct opt *o, const char *v, struct jr_config *c, char *err, size_t errlen)
{
	void *field = (char *)c + o->offset;
	int lvl;

	switch (o->kind) {
	case OPT_STR:
		if (strlen(v) >= o->size)
			return snprintf(err, errlen, "value too long"), -1;
		strcpy(field, v);
		return 0;
	case OPT_UINT:
		if (set_uint(o, v, field) < 0)
			return snprintf(err, errlen, "expected an integer in [%u, %u]", o->min, o->max), -1;
		return 0;
	case OPT_ONERROR:
		if (strcmp(v, "deny") != 0 && strcmp(v, "allow") != 0)
			return snprintf(err, errlen, "expected deny or allow"), -1;
		*(int *)field = strcmp(v, "allow") == 0;
		return 0;
	case OPT_LOGLEVEL:
		if ((lvl = log_level_parse(v)) < 0)
			return snprintf(err, errlen, "expected error, warn, info or debug"), -1;
		*(int *)field = lvl;
		return 0;
	}
	return -1;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Splits "key = value" (value optionally double-quoted). Returns 0 or -1. */
static int split_line(char *line, char **key, char **val)
{
	char *eq = strchr(line, '=');
	size_t n;

	if (!eq)
		return -1;
	*eq = '\0';
	*key = trim(line);
	*val = trim(eq + 1);
	n = strlen(*val);
	if (n >= 2 && (*val)[0] == '"' && (*val)[n - 1] == '"') {
		(*val)[n - 1] = '\0';
		(*val)++;
	}
	return **key ? 0 : -1;
}

static int parse_line(char *line, struct jr_config *c, char *err, size_t errlen)
{
	char *key, *val, *hash = NULL, why[128];
	const struct opt *o;

	/* A '#' starts a comment unless it sits inside a quoted value. */
	for (char *p = line, q = 0; *p; p++) {
		if (*p == '"')
			q = !q;
		else if (*p == '#' && !q) {
			hash = p;
			break;
		}
	}
	if (hash)
		*hash = '\0';
	if (!*trim(line))
		return 0;
	if (split_line(line, &key, &val) < 0)
		return snprintf(err, errlen, "expected key = value"), -1;
	if (!(o = opt_find(key)))
		return snprintf(err, errlen, "unknown setting '%.64s'", key), -1;
	if (opt_set(o, val, c, why, sizeof(why)) < 0)
		return snprintf(err, errlen, "%s: %s", o->name, why), -1;
	return 0;
}

/* The default agent id: the listen address, unless its host is a wildcard (the same on
 * every host): then this host's name and the port. */
static void agent_id_default(struct jr_config *c)
{
	const char *colon = strrchr(c->listen, ':');
	size_t hl = colon ? (size_t)(colon - c->listen) : 0;
	char host[64] = "agent";

	if (!colon || hl == 0 || (hl == 7 && !memcmp(c->listen, "0.0.0.0", 7)) ||
	    (hl == 4 && !memcmp(c->listen, "[::]", 4)) || (hl == 2 && !memcmp(c->listen, "::", 2))) {
		gethostname(host, sizeof(host) - 1);
		snprintf(c->agent_id, sizeof(c->agent_id), "%.40s:%.16s", host, colon ? colon + 1 : c->listen);
	} else {
		snprintf(c->agent_id, sizeof(c->agent_id), "%.63s", c->listen);
	}
	for (char *p = c->agent_id; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("._:-", *p))
			*p = '_';
}

static int agent_id_check(struct jr_config *c)
{
	if (!c->agent_id[0])
		agent_id_default(c);
	for (const char *p = c->agent_id; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("._:-", *p))
			return -1;
	return 0;
}

int config_parse(const char *text, const char *name, struct jr_config *out, char *err, size_t errlen)
{
	struct jr_config c;
	const char *p = text;
	char line[2048], reason[256];
	int lineno = 0;

	config_defaults(&c);
	while (*p) {
		size_t n = strcspn(p, "\n");
		lineno++;
		if (n >= sizeof(line))
			return snprintf(err, errlen, "%s:%d: line too long", name, lineno), -1;
		memcpy(line, p, n);
		line[n] = '\0';
		p += n + (p[n] == '\n');
		if (parse_line(line, &c, reason, sizeof(reason)) < 0)
			return snprintf(err, errlen, "%s:%d: %s", name, lineno, reason), -1;
	}
	if (!c.database[0])
		return snprintf(err, errlen, "%s: 'database' is required", name), -1;
	if (agent_id_check(&c) < 0)
		return snprintf(err, errlen, "%s: agent_id: up to %d of A-Z a-z 0-9 . _ : - "
				"(it travels in HAProxy's space-separated report lines)", name,
				CONFIG_AGENT_ID_MAX - 1), -1;
	*out = c;
	return 0;
}

int config_load(const char *path, struct jr_config *out, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char *text;
	long size;
	int rc = -1;

	if (!f)
		return snprintf(err, errlen, "%s: %s", path, strerror(errno)), -1;
	if (fseek(f, 0, SEEK_END) < 0 || (size = ftell(f)) < 0 || size > (1 << 20) ||
	    fseek(f, 0, SEEK_SET) < 0) {
		snprintf(err, errlen, "%s: unreadable or larger than 1 MiB", path);
		fclose(f);
		return -1;
	}
	text = calloc(1, (size_t)size + 1);
	if (text && fread(text, 1, (size_t)size, f) == (size_t)size)
		rc = config_parse(text, path, out, err, errlen);
	else
		snprintf(err, errlen, "%s: read error", path);
	free(text);
	fclose(f);
	return rc;
}

void config_restart_diff(const struct jr_config *a, const struct jr_config *b, char *buf, size_t cap)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		const struct opt *o = &opts[i];
		if (!o->restart || memcmp((const char *)a + o->offset, (const char *)b + o->offset, o->size) == 0)
			continue;
		int n = snprintf(buf + used, cap - used, "%s%s", used ? ", " : "", o->name);
		if (n < 0 || (size_t)n >= cap - used)
			break;
		used += (size_t)n;
	}
}
