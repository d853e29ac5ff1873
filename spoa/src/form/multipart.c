#include "form/multipart.h"

#include <string.h>

#define CRLF "\r\n"

/* ---- small lexical helpers --------------------------------------------------------- */

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* p[0..n) equals lit, ignoring ASCII case. */
static int ieq(const char *p, size_t n, const char *lit)
{
	size_t l = strlen(lit);

	if (n != l)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)p[i]) != lit[i])
			return 0;
	return 1;
}

static int is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* RFC 7230 tchar. */
static int is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* RFC 2046 bchars. */
static int is_bchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("'()+_,-./:=? ", c));
}

static const char *skip_ows(const char *p, const char *end)
{
	while (p < end && is_ows(*p))
		p++;
	return p;
}

static const char *skip_token(const char *p, const char *end)
{
	while (p < end && is_tchar((unsigned char)*p))
		p++;
	return p;
}

/* ---- header parameters ------------------------------------------------------------- */

struct param {
	const char *name, *value;
	size_t name_len, value_len;
};

/* Reads `; name=value` at *pp (value a token or a quoted string without escapes).
 * Returns 1 with a parameter, 0 at the end, -1 when malformed. */
static int next_param(const char **pp, const char *end, struct param *out)
{
	const char *p = skip_ows(*pp, end);

	if (p == end)
		return 0;
	if (*p++ != ';')
		return -1;
	p = skip_ows(p, end);
	out->name = p;
	p = skip_token(p, end);
	out->name_len = (size_t)(p - out->name);
	if (!out->name_len || p == end || *p++ != '=')
		return -1;
	if (p < end && *p == '"') {
		out->value = ++p;
		while (p < end && *p != '"' && *p != '\\')
			p++;
		if (p == end || *p != '"')
			return -1; /* unterminated, or an escape another parser may read otherwise */
		out->value_len = (size_t)(p++ - out->value);
	} else {
		out->value = p;
		p = skip_token(p, end);
		out->value_len = (size_t)(p - out->value);
		if (!out->value_len)
			return -1;
	}
	*pp = p;
	return 1;
}

/* ---- Content-Type ------------------------------------------------------------------ */

#define FORM_TYPE "multipart/form-data"

/* Skips the media type; NULL when it is not multipart/form-data. */
static const char *after_form_type(const char *ctype, size_t len)
{
	const char *p = skip_ows(ctype, ctype + len), *end = ctype + len, *t;

	t = skip_token(p, end);
	if (t < end && *t == '/')
		t = skip_token(t + 1, end);
	return ieq(p, (size_t)(t - p), FORM_TYPE) ? t : NULL;
}

int mp_is_form(const char *ctype, size_t len)
{
	return ctype && after_form_type(ctype, len) != NULL;
}

static int boundary_ok(const char *b, size_t n)
{
	if (n < 1 || n > MP_BOUNDARY_MAX || b[n - 1] == ' ')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!is_bchar((unsigned char)b[i]))
			return 0;
	return 1;
}

int mp_boundary(const char *ctype, size_t len, char out[MP_BOUNDARY_MAX + 1])
{
	const char *p = ctype ? after_form_type(ctype, len) : NULL, *end = ctype + len;
	struct param prm;
	int rc, found = -1;

	if (!p)
		return -1;
	while ((rc = next_param(&p, end, &prm)) > 0) {
		if (!ieq(prm.name, prm.name_len, "boundary"))
			continue;
		if (found >= 0 || !boundary_ok(prm.value, prm.value_len))
			return -1; /* two boundaries, or an invalid one */
		memcpy(out, prm.value, prm.value_len);
		out[prm.value_len] = '\0';
		found = (int)prm.value_len;
	}
	return rc < 0 ? -1 : found;
}

/* ---- one part's headers ------------------------------------------------------------ */

struct part {
	const char *name;
	size_t name_len;
	int has_disposition, is_file, has_cte;
};

/* Content-Disposition: form-data; name="x"[; filename="y"]. */
static int parse_disposition(const char *p, const char *end, struct part *pt)
{
	const char *t;
	struct param prm;
	int rc;

	if (pt->has_disposition)
		return -1;
	pt->has_disposition = 1;
	p = skip_ows(p, end);
	t = skip_token(p, end);
	if (!ieq(p, (size_t)(t - p), "form-data"))
		return -1;
	while ((rc = next_param(&t, end, &prm)) > 0) {
		if (ieq(prm.name, prm.name_len, "name")) {
			if (pt->name)
				return -1;
			pt->name = prm.value;
			pt->name_len = prm.value_len;
		} else if (ieq(prm.name, prm.name_len, "filename") ||
			   ieq(prm.name, prm.name_len, "filename*")) {
			pt->is_file = 1;
		} else if (ieq(prm.name, prm.name_len, "name*")) {
			return -1; /* RFC 2231 names: refused, not interpreted */
		}
	}
	return rc < 0 || !pt->name ? -1 : 0;
}

static int parse_header_line(const char *p, const char *end, struct part *pt)
{
	const char *colon = memchr(p, ':', (size_t)(end - p));

	if (!colon || colon == p || skip_token(p, colon) != colon)
		return -1; /* also refuses obsolete line folding (a line starting with a blank) */
	if (ieq(p, (size_t)(colon - p), "content-disposition"))
		return parse_disposition(colon + 1, end, pt);
	if (ieq(p, (size_t)(colon - p), "content-transfer-encoding"))
		pt->has_cte = 1;
	return 0;
}

/* Parses the header block h[0..n) (lines separated by CRLF, no final empty line). */
static int parse_headers(const char *h, size_t n, struct part *pt)
{
	const char *p = h, *end = h + n;
	unsigned lines = 0;

	memset(pt, 0, sizeof(*pt));
	while (p < end) {
		const char *eol = memmem(p, (size_t)(end - p), CRLF, 2);
		if (!eol)
			eol = end;
		if (++lines > MP_HEADER_LINES_MAX || parse_header_line(p, eol, pt) < 0)
			return -1;
		p = eol == end ? end : eol + 2;
	}
	return pt->has_disposition ? 0 : -1;
}

/* ---- the body ------------------------------------------------------------------------ */

struct mp_scan {
	const char *b;
	size_t len;
	const char *boundary;
	size_t blen;
};

enum step { STEP_MORE = 0, STEP_PART = 1, STEP_LAST = 2, STEP_BAD = -1 };

/* What follows a delimiter ending at pos: "--" (the last one) or blanks and CRLF. Sets
 * *next to the first byte after it. */
static enum step after_delimiter(const struct mp_scan *s, size_t pos, size_t *next)
{
	if (s->len - pos < 2)
		return STEP_MORE;
	if (s->b[pos] == '-' && s->b[pos + 1] == '-') {
		*next = pos + 2;
		return STEP_LAST;
	}
	while (pos < s->len && is_ows(s->b[pos]))
		pos++;
	if (s->len - pos < 2)
		return STEP_MORE;
	if (memcmp(s->b + pos, CRLF, 2) != 0)
		return STEP_BAD;
	*next = pos + 2;
	return STEP_PART;
}

static int name_is(const struct part *pt, const char *lit)
{
	return pt->name_len == strlen(lit) && memcmp(pt->name, lit, pt->name_len) == 0;
}

static void record(struct mp_field *f, const struct part *pt, size_t off, size_t len)
{
	if (f->count++ == 0) {
		f->is_file = pt->is_file;
		f->offset = off;
		f->len = len;
	}
}

/* The part starting at *pos (after its opening delimiter line). On STEP_PART or
 * STEP_LAST the part was complete and is recorded; *pos moves past its end. */
static enum step read_part(const struct mp_scan *s, size_t *pos, struct mp_form *out)
{
	const char *b = s->b + *pos, *hend, *delim;
	size_t avail = s->len - *pos, cs, dl = 4 + s->blen, next = 0;
	struct part pt;
	char dbuf[4 + MP_BOUNDARY_MAX];
	enum step st;

	if (avail >= 2 && memcmp(b, CRLF, 2) == 0)
		return STEP_BAD; /* a part without headers has no name */
	hend = memmem(b, avail < MP_HEADERS_MAX + 4 ? avail : MP_HEADERS_MAX + 4, CRLF CRLF, 4);
	if (!hend)
		return avail < MP_HEADERS_MAX + 4 ? STEP_MORE : STEP_BAD;
	if (parse_headers(b, (size_t)(hend - b), &pt) < 0)
		return STEP_BAD;
	cs = (size_t)(hend + 4 - s->b);
	memcpy(dbuf, CRLF "--", 4);
	memcpy(dbuf + 4, s->boundary, s->blen);
	delim = memmem(s->b + cs, s->len - cs, dbuf, dl);
	if (!delim)
		return STEP_MORE;
	st = after_delimiter(s, (size_t)(delim - s->b) + dl, &next);
	if (st == STEP_MORE || st == STEP_BAD)
		return st;
	if (name_is(&pt, "model") || name_is(&pt, "stream") || name_is(&pt, "purpose") ||
	    name_is(&pt, "file")) {
		struct mp_field *f = name_is(&pt, "model") ? &out->model
				     : name_is(&pt, "stream") ? &out->stream
				     : name_is(&pt, "purpose") ? &out->purpose : &out->file;

		if (pt.has_cte)
			return STEP_BAD; /* an encoded value we would read differently */
		record(f, &pt, cs, (size_t)(delim - s->b) - cs);
	}
	out->parts++;
	out->consumed = next;
	*pos = next;
	return st;
}

int mp_parse(const char *body, size_t len, const char *boundary, size_t blen, struct mp_form *out)
{
	struct mp_scan s = { body, len, boundary, blen };
	size_t pos = 0, first = 2 + blen;
	enum step st;

	memset(out, 0, sizeof(*out));
	if (!boundary_ok(boundary, blen))
		return MP_MALFORMED;
	/* No preamble: the body starts with the first delimiter (or a prefix of it). */
	for (size_t i = 0; i < len && i < first; i++)
		if (body[i] != (i < 2 ? '-' : boundary[i - 2]))
			return MP_MALFORMED;
	if (len < first)
		return MP_OK;
	st = after_delimiter(&s, first, &pos);
	if (st == STEP_LAST)
		return MP_MALFORMED; /* a form without parts */
	while (st == STEP_PART)
		st = read_part(&s, &pos, out);
	if (st == STEP_BAD)
		return MP_MALFORMED;
	out->complete = st == STEP_LAST;
	return MP_OK;
}
