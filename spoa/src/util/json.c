#include "util/json.h"

#include "util/xalloc.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int put(char *buf, size_t cap, size_t *used, const char *s, size_t n)
{
	if (*used + n + 1 > cap)
		return -1;
	memcpy(buf + *used, s, n);
	*used += n;
	buf[*used] = '\0';
	return 0;
}

/* Length of a valid UTF-8 sequence starting at p (1..4), or 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *p, size_t avail)
{
	size_t n;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0)
		n = 2, cp = p[0] & 0x1f;
	else if ((p[0] & 0xf0) == 0xe0)
		n = 3, cp = p[0] & 0x0f;
	else if ((p[0] & 0xf8) == 0xf0)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (n > avail)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	/* Overlong forms, surrogates and out-of-range code points are invalid. */
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static int escape_byte(char *buf, size_t cap, size_t *used, unsigned char c)
{
	char tmp[8];

	switch (c) {
	case '"':
		return put(buf, cap, used, "\\\"", 2);
	case '\\':
		return put(buf, cap, used, "\\\\", 2);
	case '\n':
		return put(buf, cap, used, "\\n", 2);
	case '\r':
		return put(buf, cap, used, "\\r", 2);
	case '\t':
		return put(buf, cap, used, "\\t", 2);
	default:
		snprintf(tmp, sizeof(tmp), "\\u%04x", c);
		return put(buf, cap, used, tmp, 6);
	}
}

int json_escape(char *buf, size_t cap, size_t *used, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	if (cap == 0)
		return -1;
	buf[*used < cap ? *used : cap - 1] = '\0';
	while (i < len) {
		size_t n = utf8_seq_len(p + i, len - i);
		int rc;

		if (n == 0) {
			rc = put(buf, cap, used, "\xef\xbf\xbd", 3);
			n = 1;
		} else if (n == 1 && (p[i] < 0x20 || p[i] == '"' || p[i] == '\\' || p[i] == 0x7f)) {
			rc = escape_byte(buf, cap, used, p[i]);
		} else {
			rc = put(buf, cap, used, (const char *)p + i, n);
		}
		if (rc < 0)
			return -1;
		i += n;
	}
	return 0;
}

static void jbuf_reserve(struct jbuf *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap)
		return;
	b->cap = (b->len + extra + 1) * 2;
	b->p = xrealloc(b->p, b->cap);
}

void jbuf_put(struct jbuf *b, const char *s, size_t n)
{
	jbuf_reserve(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void jbuf_puts(struct jbuf *b, const char *s)
{
	jbuf_put(b, s, strlen(s));
}

void jbuf_printf(struct jbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	jbuf_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void jbuf_put_string(struct jbuf *b, const char *s, size_t n)
{
	/* Escaping at most multiplies the length by 6 (\u00XX). */
	jbuf_reserve(b, n * 6 + 2);
	b->p[b->len++] = '"';
	json_escape(b->p, b->cap, &b->len, s, n);
	jbuf_put(b, "\"", 1);
}
