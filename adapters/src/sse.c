/* sse: see sse.h. */
#include "sse.h"

#include <stdlib.h>
#include <string.h>

#define SSE_LINE_MAX (SSE_DATA_MAX + 16) /* "data: " + the largest data */

void sse_init(struct sse_parser *p, sse_event_fn fn, void *arg)
{
	memset(p, 0, sizeof(*p));
	p->fn = fn;
	p->arg = arg;
}

void sse_free(struct sse_parser *p)
{
	free(p->line);
	free(p->data);
	p->line = p->data = NULL;
	p->line_cap = p->data_cap = 0;
}

/* Grows *buf so that it holds need bytes plus a NUL, never past max. */
static int reserve(char **buf, size_t *cap, size_t need, size_t max)
{
	size_t n = *cap ? *cap : 256;
	char *q;

	if (need > max)
		return -1;
	if (need + 1 <= *cap)
		return 0;
	while (n < need + 1)
		n *= 2;
	if (n > max + 1)
		n = max + 1;
	q = realloc(*buf, n);
	if (!q)
		return -1;
	*buf = q;
	*cap = n;
	return 0;
}

static int dispatch(struct sse_parser *p)
{
	int rc = 0;

	if (p->has_data)
		rc = p->fn(p->arg, p->event[0] ? p->event : "message", p->data, p->data_len);
	p->event[0] = '\0';
	p->data_len = 0;
	p->has_data = 0;
	return rc;
}

/* One complete line, without its end. Returns 0, SSE_TOO_LONG or SSE_STOPPED. */
static int line(struct sse_parser *p, const char *s, size_t n)
{
	const char *colon, *v;
	size_t fl, vl;

	if (n == 0)
		return dispatch(p) ? SSE_STOPPED : 0;
	if (s[0] == ':')
		return 0;
	colon = memchr(s, ':', n);
	fl = colon ? (size_t)(colon - s) : n;
	v = colon ? colon + 1 : s + n;
	vl = colon ? n - fl - 1 : 0;
	if (vl && *v == ' ')
		v++, vl--;
	if (fl == 4 && memcmp(s, "data", 4) == 0) {
		size_t need = p->data_len + (p->has_data ? 1 : 0) + vl;
		if (reserve(&p->data, &p->data_cap, need, SSE_DATA_MAX) < 0)
			return SSE_TOO_LONG;
		if (p->has_data)
			p->data[p->data_len++] = '\n';
		memcpy(p->data + p->data_len, v, vl);
		p->data_len += vl;
		p->data[p->data_len] = '\0';
		p->has_data = 1;
	} else if (fl == 5 && memcmp(s, "event", 5) == 0) {
		if (vl > SSE_EVENT_MAX)
			vl = SSE_EVENT_MAX; /* longer names are no event we know */
		memcpy(p->event, v, vl);
		p->event[vl] = '\0';
	}
	return 0;
}

/* Appends s[0..k) to the line being gathered (line_len unchanged). 0, or -1 when the
 * line would be too long (the parser then fails). */
static int keep(struct sse_parser *p, const char *s, size_t k)
{
	if (reserve(&p->line, &p->line_cap, p->line_len + k, SSE_LINE_MAX) < 0) {
		p->failed = 1;
		return -1;
	}
	memcpy(p->line + p->line_len, s, k);
	return 0;
}

enum sse_status sse_feed(struct sse_parser *p, const char *buf, size_t len)
{
	size_t i = 0;

	if (p->failed)
		return SSE_TOO_LONG;
	while (i < len) {
		const char *s = buf + i;
		size_t n = len - i, k = 0;
		int rc;

		if (p->last_cr && *s == '\n') {
			p->last_cr = 0;
			i++;
			continue;
		}
		while (k < n && s[k] != '\n' && s[k] != '\r')
			k++;
		p->last_cr = k < n && s[k] == '\r';
		if (k == n) { /* no line end yet: keep the piece */
			if (keep(p, s, k) < 0)
				return SSE_TOO_LONG;
			p->line_len += k;
			return SSE_OK;
		}
		if (p->line_len && keep(p, s, k) < 0)
			return SSE_TOO_LONG;
		rc = p->line_len ? line(p, p->line, p->line_len + k) : line(p, s, k);
		p->line_len = 0;
		if (rc) {
			p->failed = 1;
			return (enum sse_status)rc;
		}
		i += k + 1;
	}
	return SSE_OK;
}

enum sse_status sse_finish(struct sse_parser *p)
{
	int rc = 0;

	if (p->failed)
		return SSE_TOO_LONG;
	if (p->line_len) {
		rc = line(p, p->line, p->line_len);
		p->line_len = 0;
	}
	if (!rc && dispatch(p))
		rc = SSE_STOPPED;
	return (enum sse_status)rc;
}

/* ---- NDJSON ------------------------------------------------------------------------- */

void nd_init(struct nd_parser *p, nd_line_fn fn, void *arg)
{
	memset(p, 0, sizeof(*p));
	p->fn = fn;
	p->arg = arg;
}

void nd_free(struct nd_parser *p)
{
	free(p->line);
	p->line = NULL;
	p->len = p->cap = 0;
}

static int nd_line(struct nd_parser *p, const char *s, size_t n)
{
	if (n && s[n - 1] == '\r')
		n--;
	if (!n)
		return 0;
	return p->fn(p->arg, s, n) ? SSE_STOPPED : 0;
}

enum sse_status nd_feed(struct nd_parser *p, const char *buf, size_t len)
{
	if (p->failed)
		return SSE_TOO_LONG;
	while (len) {
		const char *nl = memchr(buf, '\n', len);
		size_t k = nl ? (size_t)(nl - buf) : len;
		int rc;
		if (reserve(&p->line, &p->cap, p->len + k, SSE_LINE_MAX) < 0) {
			p->failed = 1;
			return SSE_TOO_LONG;
		}
		memcpy(p->line + p->len, buf, k);
		p->len += k;
		if (!nl)
			return SSE_OK;
		p->line[p->len] = '\0';
		rc = nd_line(p, p->line, p->len);
		p->len = 0;
		if (rc) {
			p->failed = 1;
			return (enum sse_status)rc;
		}
		buf += k + 1;
		len -= k + 1;
	}
	return SSE_OK;
}

enum sse_status nd_finish(struct nd_parser *p)
{
	int rc;

	if (p->failed)
		return SSE_TOO_LONG;
	if (p->line)
		p->line[p->len] = '\0';
	rc = p->len ? nd_line(p, p->line, p->len) : 0;
	p->len = 0;
	return (enum sse_status)rc;
}
