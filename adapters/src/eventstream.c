/* eventstream: see eventstream.h. */
#include "eventstream.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

static uint32_t crc_table[256];
static int crc_ready;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
	crc_ready = 1;
}

uint32_t es_crc32(uint32_t crc, const uint8_t *p, size_t n)
{
	if (!crc_ready)
		crc_init();
	crc = ~crc;
	while (n--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* Network byte order through libc (ntohl/htonl), unaligned through memcpy. */
static uint32_t be32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return ntohl(v);
}

static void put_be32(uint8_t *p, uint32_t v)
{
	v = htonl(v);
	memcpy(p, &v, 4);
}

void es_init(struct es_decoder *d, es_message_fn fn, void *arg)
{
	memset(d, 0, sizeof(*d));
	d->fn = fn;
	d->arg = arg;
}

void es_free(struct es_decoder *d)
{
	free(d->buf);
	d->buf = NULL;
	d->len = d->cap = 0;
}

static void copy_name(char *dst, const uint8_t *v, size_t n)
{
	if (n >= ES_NAME_MAX)
		n = ES_NAME_MAX - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

/* The length of a header value of this type at h[*i] (a u16 length first for bytes
 * and strings, skipped); -1 when unknown or cut. */
static long value_len(uint8_t type, const uint8_t *h, size_t n, size_t *i)
{
	static const signed char fixed[10] = { 0, 0, 1, 2, 4, 8, -1, -1, 8, 16 };
	size_t vl;

	if (type > 9)
		return -1;
	if (fixed[type] >= 0) {
		vl = (size_t)fixed[type]; /* bool, byte, short, int, long, timestamp, uuid */
	} else {
		if (n - *i < 2)
			return -1;
		vl = (size_t)h[*i] << 8 | h[*i + 1]; /* bytes, string */
		*i += 2;
	}
	return n - *i < vl ? -1 : (long)vl;
}

/* A string header we keep: the message, event and exception types, the error code. */
static void keep_header(const uint8_t *name, size_t nl, const uint8_t *v, size_t vl, struct es_message *m)
{
#define IS(s) (nl == sizeof(s) - 1 && memcmp(name, s, nl) == 0)
	if (IS(":message-type"))
		copy_name(m->message_type, v, vl);
	else if (IS(":event-type"))
		copy_name(m->event_type, v, vl);
	else if (IS(":exception-type"))
		copy_name(m->exception_type, v, vl);
	else if (IS(":error-code"))
		copy_name(m->error_code, v, vl);
#undef IS
}

/* Parses the headers of a checked message. 0, or -1 when malformed. */
static int headers(const uint8_t *h, size_t n, struct es_message *m)
{
	size_t i = 0;

	while (i < n) {
		size_t nl = h[i++];
		const uint8_t *name;
		uint8_t type;
		long vl;

		if (nl == 0 || n - i < nl + 1)
			return -1;
		name = h + i;
		i += nl;
		type = h[i++];
		if ((vl = value_len(type, h, n, &i)) < 0)
			return -1;
		if (type == 7)
			keep_header(name, nl, h + i, (size_t)vl, m);
		i += (size_t)vl;
	}
	return 0;
}

/* Decodes complete messages at the start of d->buf; returns bytes consumed or <0. */
static long take(struct es_decoder *d)
{
	size_t off = 0;

	while (d->len - off >= ES_PRELUDE) {
		const uint8_t *p = d->buf + off;
		uint32_t total = be32(p), hl = be32(p + 4);
		struct es_message m;

		if (es_crc32(0, p, 8) != be32(p + 8))
			return ES_BAD;
		if (total < ES_MIN_MESSAGE || total > ES_MESSAGE_MAX)
			return total > ES_MESSAGE_MAX ? ES_TOO_LONG : ES_BAD;
		if (hl > total - ES_MIN_MESSAGE)
			return ES_BAD;
		if (d->len - off < total)
			break;
		if (es_crc32(0, p, total - 4) != be32(p + total - 4))
			return ES_BAD;
		memset(&m, 0, sizeof(m));
		if (headers(p + ES_PRELUDE, hl, &m) < 0)
			return ES_BAD;
		m.payload = p + ES_PRELUDE + hl;
		m.payload_len = total - ES_MIN_MESSAGE - hl;
		if (d->fn(d->arg, &m))
			return ES_STOPPED;
		off += total;
	}
	return (long)off;
}

enum es_status es_feed(struct es_decoder *d, const uint8_t *p, size_t n)
{
	long used;

	if (d->failed)
		return ES_BAD;
	while (n) {
		/* At most one message beyond what is buffered: the buffer never exceeds
		 * ES_MESSAGE_MAX + ES_PRELUDE. */
		size_t room = ES_MESSAGE_MAX + ES_PRELUDE - d->len, k = n < room ? n : room;
		if (d->len + k > d->cap) {
			size_t c = d->cap ? d->cap : 4096;
			uint8_t *q;
			while (c < d->len + k)
				c *= 2;
			q = realloc(d->buf, c);
			if (!q) {
				d->failed = 1;
				return ES_TOO_LONG;
			}
			d->buf = q;
			d->cap = c;
		}
		memcpy(d->buf + d->len, p, k);
		d->len += k;
		p += k;
		n -= k;
		used = take(d);
		if (used < 0) {
			d->failed = 1;
			return (enum es_status)used;
		}
		memmove(d->buf, d->buf + used, d->len - (size_t)used);
		d->len -= (size_t)used;
	}
	return ES_OK;
}

enum es_status es_finish(struct es_decoder *d)
{
	if (d->failed)
		return ES_BAD;
	return d->len ? ES_BAD : ES_OK;
}

size_t es_encode(uint8_t *out, size_t cap, const char *const *names, const char *const *values,
		 size_t nheaders, const uint8_t *payload, size_t payload_len)
{
	size_t hl = 0, total, i, o;

	for (i = 0; i < nheaders; i++) {
		size_t nl = strlen(names[i]), vl = strlen(values[i]);
		if (nl > 255 || vl > 65535)
			return 0;
		hl += 1 + nl + 1 + 2 + vl;
	}
	total = ES_MIN_MESSAGE + hl + payload_len;
	if (total > cap || total > ES_MESSAGE_MAX)
		return 0;
	put_be32(out, (uint32_t)total);
	put_be32(out + 4, (uint32_t)hl);
	put_be32(out + 8, es_crc32(0, out, 8));
	o = ES_PRELUDE;
	for (i = 0; i < nheaders; i++) {
		size_t nl = strlen(names[i]), vl = strlen(values[i]);
		out[o++] = (uint8_t)nl;
		memcpy(out + o, names[i], nl);
		o += nl;
		out[o++] = 7;
		out[o++] = (uint8_t)(vl >> 8);
		out[o++] = (uint8_t)vl;
		memcpy(out + o, values[i], vl);
		o += vl;
	}
	if (payload_len)
		memcpy(out + o, payload, payload_len);
	o += payload_len;
	put_be32(out + o, es_crc32(0, out, o));
	return o + 4;
}
