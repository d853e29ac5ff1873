/* report: see report.h. */
#include "report.h"


#include "util/addr.h"
#include "util/pct.h"
#include "route.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int rep_open(struct ad_reporter *r, const char *hostport, char *err, size_t cap)
{
	r->fd = -1;
	if (!hostport[0])
		return 0;
	if (addr_resolve_numeric(hostport, SOCK_DGRAM, &r->addr, &r->addr_len) < 0) {
		snprintf(err, cap, "--report %s: expected a numeric HOST:PORT", hostport);
		return -1;
	}
	r->fd = socket(r->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (r->fd < 0) {
		snprintf(err, cap, "report socket: %s", strerror(errno));
		return -1;
	}
	return 0;
}

void rep_close(struct ad_reporter *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}

/* A value for the spaced line ("-" when it cannot be encoded). */
static const char *value(const char *v, char *out, size_t cap)
{
	return pct_encode(v, strlen(v), PCT_PRINTABLE, out, cap) < 0 ? "-" : out;
}

/* The sampled bit of the trace flags' last hex digit. */
static int sampled_flag(char c)
{
	return (c >= 'a' ? c - 'a' + 10 : c - '0') & 1;
}

int rep_send(const struct ad_reporter *r, const struct rep_line *l)
{
	char line[2048], id[384], model[RT_NAME_MAX * 3], tenant[RT_NAME_MAX * 3], rid[400];
	int n;

	if (r->fd < 0)
		return -1;
	n = snprintf(line, sizeof(line),
		     "src=adapter id=%s pt=%lld ct=%lld%s%s st=%d stream=%d model=%s tenant=%s provider=%s rid=%s",
		     value(l->id, id, sizeof(id)), (long long)l->prompt, (long long)l->completion,
		     l->estimated ? " est=1" : "", l->aborted ? " abort=1" : "", l->status, l->stream,
		     value(l->model, model, sizeof(model)), value(l->tenant, tenant, sizeof(tenant)), l->provider,
		     l->rid && l->rid[0] ? value(l->rid, rid, sizeof(rid)) : "-");
	if (n > 0 && (size_t)n < sizeof(line) && l->cache)
		n += snprintf(line + n, sizeof(line) - (size_t)n, " cache=%s", l->cache);
	if (n > 0 && (size_t)n < sizeof(line) && l->traceparent)
		n += snprintf(line + n, sizeof(line) - (size_t)n,
			      " trace=%.32s span=%s pspan=%.16s sampled=%d t0us=%lld xl_us=%lld fb_us=%lld tt_us=%lld",
			      l->traceparent + 3, l->call_span, l->traceparent + 36, sampled_flag(l->traceparent[54]),
			      (long long)l->t_start_us, (long long)l->translate_us, (long long)l->first_byte_us,
			      (long long)l->total_us);
	if (n < 0)
		return -1;
	if ((size_t)n >= sizeof(line))
		n = (int)sizeof(line) - 1;
	return sendto(r->fd, line, (size_t)n, 0, (const struct sockaddr *)&r->addr, r->addr_len) < 0 ? -1 : 0;
}
