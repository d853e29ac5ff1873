/*
 * spop: the SPOP 2.0 codec. See spop.h for the contracts and research/spoe.md §1 for the
 * wire facts (all test vectors come from captures of a real HAProxy 2.6.12).
 *
 * Decoding rules that hold everywhere in this file:
 *   - every length read from the wire is compared with the bytes that remain before it
 *     is used, so no decoder reads past (p, len);
 *   - inside a frame the body is complete, so a varint that "needs more input" is an
 *     invalid frame, not a reason to wait;
 *   - decoders that move a cursor work on a copy and commit it only on success, so a
 *     failed call leaves the caller's cursor where it was.
 */
#include "spop/spop.h"

#include <limits.h>
#include <string.h>

/* ---- status text ------------------------------------------------------------------- */

/* Texts are HAProxy's own (flt_spoe.c spoe_frm_err_reasons) so logs on both sides match. */
const char *spop_status_str(int status)
{
	static const char *const text[] = {
		[SPOP_ST_NORMAL] = "normal",
		[SPOP_ST_IO] = "I/O error",
		[SPOP_ST_TIMEOUT] = "a timeout occurred",
		[SPOP_ST_TOO_BIG] = "frame is too big",
		[SPOP_ST_INVALID] = "invalid frame received",
		[SPOP_ST_NO_VSN] = "version value not found",
		[SPOP_ST_NO_FRAME_SIZE] = "max-frame-size value not found",
		[SPOP_ST_NO_CAP] = "capabilities value not found",
		[SPOP_ST_BAD_VSN] = "unsupported version",
		[SPOP_ST_BAD_FRAME_SIZE] = "max-frame-size too big or too small",
		[SPOP_ST_FRAG_NOT_SUPPORTED] = "fragmentation not supported",
		[SPOP_ST_INTERLACED_FRAMES] = "invalid interlaced frames",
		[SPOP_ST_FRAMEID_NOTFOUND] = "frame-id not found",
		[SPOP_ST_RES] = "resource allocation error",
	};

	if (status >= 0 && (size_t)status < sizeof(text) / sizeof(text[0]))
		return text[status];
	if (status == SPOP_ST_UNKNOWN)
		return "an unknown error occurred";
	return "unassigned status code";
}

/* ---- varints ----------------------------------------------------------------------- */

/* HAProxy's encode_varint (intops.h): values below 240 take one byte; otherwise the first
 * byte carries 4 bits (ORed with 240) and each next byte 7 bits, high bit = "more".
 * Built in a scratch buffer first so a short buffer is never partially written. */
int spop_varint_encode(uint64_t v, uint8_t *buf, size_t cap)
{
	uint8_t tmp[SPOP_VARINT_MAX_LEN];
	size_t n = 0;

	if (v < 240) {
		tmp[n++] = (uint8_t)v;
	} else {
		tmp[n++] = (uint8_t)v | 240;
		v = (v - 240) >> 4;
		while (v >= 128) {
			tmp[n++] = (uint8_t)v | 128;
			v = (v - 128) >> 7;
		}
		tmp[n++] = (uint8_t)v;
	}
	if (n > cap)
		return -1;
	memcpy(buf, tmp, n);
	return (int)n;
}

/* HAProxy's decode_varint adds (not ORs) each byte, high bit included, shifted by 4, 11,
 * 18, ... 60. It has no length cap; this one stops at 10 bytes, so the shift never
 * exceeds 60, and rejects any byte whose shifted bits would fall off the top or whose
 * addition would wrap. Without wrap-around every accepted input is the unique (canonical)
 * encoding of its value, so re-encoding reproduces it. */
int spop_varint_decode(const uint8_t *p, size_t len, uint64_t *out)
{
	unsigned shift = 4;
	uint64_t v, add;

	if (len == 0)
		return 0;
	v = p[0];
	if (v < 240) {
		*out = v;
		return 1;
	}
	for (size_t i = 1; i < SPOP_VARINT_MAX_LEN; i++, shift += 7) {
		if (i >= len)
			return 0;
		add = (uint64_t)p[i] << shift;
		if ((add >> shift) != p[i] || add > UINT64_MAX - v)
			return -SPOP_ST_INVALID;
		v += add;
		if (p[i] < 128) {
			*out = v;
			return (int)i + 1;
		}
	}
	return -SPOP_ST_INVALID;
}

/* ---- frames ------------------------------------------------------------------------ */

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* The length is compared with HAProxy's own rule (the value excludes the 4-byte prefix,
 * spoe_recv_frame). SPOP_FRAME_HARD_MAX bounds max_frame too, so a caller that passes a
 * larger negotiated value still cannot be made to buffer more than 1 MiB. */
int spop_frame_length(const uint8_t *p, size_t avail, uint32_t max_frame, uint32_t *len)
{
	uint32_t n;

	if (avail < 4)
		return 0;
	n = get_be32(p);
	if (n < SPOP_FRAME_MIN_LEN)
		return -SPOP_ST_INVALID;
	if (n > max_frame || n > SPOP_FRAME_HARD_MAX)
		return -SPOP_ST_TOO_BIG;
	*len = n;
	return 4;
}

/* (NULL, 0) is a valid empty list; NULL + 0 is avoided because UBSan reports it. */
void spop_reader_init(struct spop_reader *r, const uint8_t *p, size_t len)
{
	r->p = p;
	r->end = len ? p + len : p;
}

static size_t rd_left(const struct spop_reader *r)
{
	return (size_t)(r->end - r->p);
}

/* One varint inside a complete buffer: running out of bytes is an invalid frame. */
static int rd_varint(struct spop_reader *r, uint64_t *v)
{
	int n = spop_varint_decode(r->p, rd_left(r), v);

	if (n == 0)
		return -SPOP_ST_INVALID;
	if (n > 0)
		r->p += n;
	return n;
}

/* A varint length followed by that many bytes (names, STRING, BINARY). No legal frame
 * holds more than SPOP_FRAME_HARD_MAX bytes, which also keeps byte counts inside int. */
static int rd_bytes(struct spop_reader *r, const uint8_t **ptr, size_t *len)
{
	struct spop_reader t = *r;
	uint64_t n;
	int ret = rd_varint(&t, &n);

	if (ret < 0)
		return ret;
	if (n > rd_left(&t) || n > SPOP_FRAME_HARD_MAX)
		return -SPOP_ST_INVALID;
	*ptr = t.p;
	*len = (size_t)n;
	t.p += n;
	ret = (int)(t.p - r->p);
	*r = t;
	return ret;
}

static int rd_fixed(struct spop_reader *r, uint8_t *dst, size_t n)
{
	if (n > rd_left(r))
		return -SPOP_ST_INVALID;
	memcpy(dst, r->p, n);
	r->p += n;
	return 0;
}

int spop_frame_decode(const uint8_t *body, size_t len, struct spop_frame *f)
{
	struct spop_reader r;

	if (len < SPOP_FRAME_MIN_LEN)
		return -SPOP_ST_INVALID;
	if (len > SPOP_FRAME_HARD_MAX)
		return -SPOP_ST_TOO_BIG;
	f->type = (enum spop_frame_type)body[0];
	f->flags = get_be32(body + 1);
	spop_reader_init(&r, body + 5, len - 5);
	if (rd_varint(&r, &f->stream_id) < 0 || rd_varint(&r, &f->frame_id) < 0)
		return -SPOP_ST_INVALID;
	f->payload = r.p;
	f->payload_len = rd_left(&r);
	return 0;
}

/* ---- typed data -------------------------------------------------------------------- */

#define SPOP_TYPE_MASK 0x0fu
#define SPOP_BOOL_TRUE 0x10u

/* Integers travel as the uint64 image of the value (INT64 -1 is ten bytes, no zig-zag).
 * 32-bit types must fit: INT32 as a sign-extended value (what HAProxy and spoa-example
 * emit), UINT32 as 0..2^32-1. */
static int int_from_wire(enum spop_data_type type, uint64_t v, struct spop_data *d)
{
	int64_t s = (int64_t)v;

	switch (type) {
	case SPOP_DATA_INT32:
		if (s < INT32_MIN || s > INT32_MAX)
			return -SPOP_ST_INVALID;
		d->u.i32 = (int32_t)s;
		return 0;
	case SPOP_DATA_UINT32:
		if (v > UINT32_MAX)
			return -SPOP_ST_INVALID;
		d->u.u32 = (uint32_t)v;
		return 0;
	case SPOP_DATA_INT64:
		d->u.i64 = s;
		return 0;
	default:
		d->u.u64 = v;
		return 0;
	}
}

static int rd_int(struct spop_reader *r, enum spop_data_type type, struct spop_data *d)
{
	uint64_t v;
	int ret = rd_varint(r, &v);

	return ret < 0 ? ret : int_from_wire(type, v, d);
}

/* Flag bits other than BOOL's are ignored, as HAProxy's spoe_decode_data does. */
static int rd_data_body(struct spop_reader *r, uint8_t type_byte, struct spop_data *d)
{
	d->type = (enum spop_data_type)(type_byte & SPOP_TYPE_MASK);
	switch (d->type) {
	case SPOP_DATA_NULL:
		return 0;
	case SPOP_DATA_BOOL:
		d->u.boolean = (type_byte & SPOP_BOOL_TRUE) != 0;
		return 0;
	case SPOP_DATA_INT32:
	case SPOP_DATA_UINT32:
	case SPOP_DATA_INT64:
	case SPOP_DATA_UINT64:
		return rd_int(r, d->type, d);
	case SPOP_DATA_IPV4:
		return rd_fixed(r, d->u.ipv4, sizeof(d->u.ipv4));
	case SPOP_DATA_IPV6:
		return rd_fixed(r, d->u.ipv6, sizeof(d->u.ipv6));
	case SPOP_DATA_STRING:
	case SPOP_DATA_BINARY: {
		int ret = rd_bytes(r, &d->u.str.ptr, &d->u.str.len);
		return ret < 0 ? ret : 0;
	}
	}
	return -SPOP_ST_INVALID;
}

int spop_data_decode(struct spop_reader *r, struct spop_data *d)
{
	struct spop_reader t = *r;
	int ret;

	if (t.p >= t.end)
		return -SPOP_ST_INVALID;
	t.p++;
	ret = rd_data_body(&t, r->p[0], d);
	if (ret < 0)
		return ret;
	ret = (int)(t.p - r->p);
	*r = t;
	return ret;
}

/* ---- lists ------------------------------------------------------------------------- */

int spop_kv_next(struct spop_reader *r, struct spop_kv *kv)
{
	struct spop_reader t = *r;
	int ret;

	if (t.p >= t.end)
		return 0;
	ret = rd_bytes(&t, &kv->name, &kv->name_len);
	if (ret < 0)
		return ret;
	ret = spop_data_decode(&t, &kv->value);
	if (ret < 0)
		return ret;
	*r = t;
	return 1;
}

/* Exactly n KV items must follow; fewer (the list ends early) is an invalid frame. */
static int skip_kvs(struct spop_reader *r, unsigned n)
{
	struct spop_kv kv;

	for (unsigned i = 0; i < n; i++) {
		int ret = spop_kv_next(r, &kv);
		if (ret <= 0)
			return ret < 0 ? ret : -SPOP_ST_INVALID;
	}
	return 0;
}

int spop_msg_next(struct spop_reader *r, struct spop_msg *m)
{
	struct spop_reader t = *r;
	int ret;

	if (t.p >= t.end)
		return 0;
	ret = rd_bytes(&t, &m->name, &m->name_len);
	if (ret < 0)
		return ret;
	if (t.p >= t.end)
		return -SPOP_ST_INVALID;
	m->nargs = *t.p++;
	m->args.p = t.p;
	ret = skip_kvs(&t, m->nargs);
	if (ret < 0)
		return ret;
	m->args.end = t.p;
	*r = t;
	return 1;
}

int spop_name_eq(const uint8_t *name, size_t name_len, const char *lit)
{
	size_t n = strlen(lit);

	return n == name_len && (n == 0 || memcmp(name, lit, n) == 0);
}

/* ---- HELLO and DISCONNECT ---------------------------------------------------------- */

static int is_blank(uint8_t c)
{
	return c == ' ' || c == '\t';
}

/* True when the comma-separated list s holds lit as one whole entry (blanks around
 * entries ignored). "pipelining-x" or "2.0.1" do not match. */
static int list_has(const uint8_t *s, size_t len, const char *lit)
{
	size_t i = 0;

	while (i <= len) {
		size_t b = i, e;
		while (i < len && s[i] != ',')
			i++;
		e = i++;
		while (b < e && is_blank(s[b]))
			b++;
		while (e > b && is_blank(s[e - 1]))
			e--;
		if (spop_name_eq(s + b, e - b, lit))
			return 1;
	}
	return 0;
}

/* Any of the four integer types, accepted when the value fits 0..2^32-1. */
static int data_to_u32(const struct spop_data *d, uint32_t *out)
{
	int64_t s;

	switch (d->type) {
	case SPOP_DATA_UINT32:
		*out = d->u.u32;
		return 1;
	case SPOP_DATA_INT32:
		s = d->u.i32;
		break;
	case SPOP_DATA_INT64:
		s = d->u.i64;
		break;
	case SPOP_DATA_UINT64:
		if (d->u.u64 > UINT32_MAX)
			return 0;
		*out = (uint32_t)d->u.u64;
		return 1;
	default:
		return 0;
	}
	if (s < 0 || s > (int64_t)UINT32_MAX)
		return 0;
	*out = (uint32_t)s;
	return 1;
}

static int is_string(const struct spop_data *d)
{
	return d->type == SPOP_DATA_STRING;
}

/* A present but unusable max-frame-size (wrong type, out of range) is reported as size 0
 * so the caller's [256, max] check answers status 9, not "not found" (6). A non-string
 * version likewise reads as present but not 2.0 (status 8). Capabilities, healthcheck and
 * engine-id of the wrong type are ignored: none of them is required. */
static void hello_item(struct spop_hello *h, const struct spop_kv *kv)
{
	const struct spop_data *d = &kv->value;

	if (spop_name_eq(kv->name, kv->name_len, "supported-versions")) {
		h->has_version = 1;
		h->version_ok = is_string(d) && list_has(d->u.str.ptr, d->u.str.len, "2.0");
	} else if (spop_name_eq(kv->name, kv->name_len, "max-frame-size")) {
		h->has_max_frame_size = 1;
		if (!data_to_u32(d, &h->max_frame_size))
			h->max_frame_size = 0;
	} else if (spop_name_eq(kv->name, kv->name_len, "capabilities") && is_string(d)) {
		h->has_capabilities = 1;
		h->cap_pipelining = list_has(d->u.str.ptr, d->u.str.len, "pipelining");
	} else if (spop_name_eq(kv->name, kv->name_len, "healthcheck") &&
		   d->type == SPOP_DATA_BOOL) {
		h->healthcheck = d->u.boolean;
	} else if (spop_name_eq(kv->name, kv->name_len, "engine-id") && is_string(d)) {
		h->engine_id = d->u.str.ptr;
		h->engine_id_len = d->u.str.len;
	}
}

int spop_hello_parse(const uint8_t *payload, size_t len, struct spop_hello *h)
{
	struct spop_reader r;
	struct spop_kv kv;
	int ret;

	memset(h, 0, sizeof(*h));
	spop_reader_init(&r, payload, len);
	while ((ret = spop_kv_next(&r, &kv)) > 0)
		hello_item(h, &kv);
	return ret;
}

/* A status-code that is not an integer in 0..2^32-1 is recorded as SPOP_ST_UNKNOWN: the
 * peer is leaving either way, the value only feeds logs. */
static void disconnect_item(struct spop_disconnect *d, const struct spop_kv *kv)
{
	if (spop_name_eq(kv->name, kv->name_len, "status-code")) {
		if (!data_to_u32(&kv->value, &d->status_code))
			d->status_code = SPOP_ST_UNKNOWN;
	} else if (spop_name_eq(kv->name, kv->name_len, "message") && is_string(&kv->value)) {
		d->message = kv->value.u.str.ptr;
		d->message_len = kv->value.u.str.len;
	}
}

/* message is never NULL on return (an empty literal when absent) so it can be printed. */
int spop_disconnect_parse(const uint8_t *payload, size_t len, struct spop_disconnect *d)
{
	struct spop_reader r;
	struct spop_kv kv;
	int ret;

	d->status_code = SPOP_ST_NORMAL;
	d->message = (const uint8_t *)"";
	d->message_len = 0;
	spop_reader_init(&r, payload, len);
	while ((ret = spop_kv_next(&r, &kv)) > 0)
		disconnect_item(d, &kv);
	return ret;
}

/* ---- encoding ---------------------------------------------------------------------- */

/* The writer holds one frame starting at offset 0. overflow is sticky and also flags
 * invalid input (unknown data type, bad scope), so such a frame can never be sent. */
void spop_writer_init(struct spop_writer *w, uint8_t *buf, size_t cap)
{
	w->buf = buf;
	w->cap = cap;
	w->len = 0;
	w->overflow = 0;
}

static void put_raw(struct spop_writer *w, const void *p, size_t n)
{
	if (w->overflow || n > w->cap - w->len) {
		w->overflow = 1;
		return;
	}
	if (n > 0)
		memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void put_u8(struct spop_writer *w, uint8_t b)
{
	put_raw(w, &b, 1);
}

static void put_varint(struct spop_writer *w, uint64_t v)
{
	uint8_t tmp[SPOP_VARINT_MAX_LEN];
	int n = spop_varint_encode(v, tmp, sizeof(tmp));

	put_raw(w, tmp, (size_t)n);
}

static void put_bytes(struct spop_writer *w, const void *p, size_t len)
{
	put_varint(w, len);
	put_raw(w, p, len);
}

static void put_name(struct spop_writer *w, const char *name)
{
	put_bytes(w, name, strlen(name));
}

/* Starts (or restarts) the writer's frame at offset 0; the length is patched at the end. */
void spop_frame_begin(struct spop_writer *w, enum spop_frame_type type, uint32_t flags,
		      uint64_t stream_id, uint64_t frame_id)
{
	uint8_t hdr[9];

	w->len = 0;
	w->overflow = 0;
	put_be32(hdr, 0);
	hdr[4] = (uint8_t)type;
	put_be32(hdr + 5, flags);
	put_raw(w, hdr, sizeof(hdr));
	put_varint(w, stream_id);
	put_varint(w, frame_id);
}

int spop_frame_end(struct spop_writer *w, uint32_t max_frame)
{
	size_t body;

	if (w->overflow || w->len < 4 + SPOP_FRAME_MIN_LEN)
		return -1;
	body = w->len - 4;
	if (body > max_frame || body > SPOP_FRAME_HARD_MAX)
		return -1;
	put_be32(w->buf, (uint32_t)body);
	return (int)w->len;
}

static void put_int(struct spop_writer *w, const struct spop_data *d)
{
	switch (d->type) {
	case SPOP_DATA_INT32:
		put_varint(w, (uint64_t)(int64_t)d->u.i32);
		break;
	case SPOP_DATA_UINT32:
		put_varint(w, d->u.u32);
		break;
	case SPOP_DATA_INT64:
		put_varint(w, (uint64_t)d->u.i64);
		break;
	default:
		put_varint(w, d->u.u64);
		break;
	}
}

/* A NULL d is written as the NULL type (HAProxy unsets the variable). */
void spop_put_data(struct spop_writer *w, const struct spop_data *d)
{
	if (!d) {
		put_u8(w, SPOP_DATA_NULL);
		return;
	}
	if ((unsigned)d->type > SPOP_DATA_BINARY) {
		w->overflow = 1;
		return;
	}
	if (d->type == SPOP_DATA_BOOL)
		put_u8(w, (uint8_t)(SPOP_DATA_BOOL | (d->u.boolean ? SPOP_BOOL_TRUE : 0)));
	else
		put_u8(w, (uint8_t)d->type);
	switch (d->type) {
	case SPOP_DATA_INT32:
	case SPOP_DATA_UINT32:
	case SPOP_DATA_INT64:
	case SPOP_DATA_UINT64:
		put_int(w, d);
		break;
	case SPOP_DATA_IPV4:
		put_raw(w, d->u.ipv4, sizeof(d->u.ipv4));
		break;
	case SPOP_DATA_IPV6:
		put_raw(w, d->u.ipv6, sizeof(d->u.ipv6));
		break;
	case SPOP_DATA_STRING:
	case SPOP_DATA_BINARY:
		put_bytes(w, d->u.str.ptr, d->u.str.len);
		break;
	default:
		break;
	}
}

void spop_put_kv(struct spop_writer *w, const char *name, const struct spop_data *d)
{
	put_name(w, name);
	spop_put_data(w, d);
}

void spop_put_kv_string(struct spop_writer *w, const char *name, const char *s, size_t len)
{
	struct spop_data d = spop_str(s, len);

	spop_put_kv(w, name, &d);
}

void spop_put_kv_uint32(struct spop_writer *w, const char *name, uint32_t v)
{
	struct spop_data d = spop_uint32(v);

	spop_put_kv(w, name, &d);
}

#define SPOP_ACT_SET_VAR 1u
#define SPOP_ACT_UNSET_VAR 2u

static void put_action_head(struct spop_writer *w, uint8_t action, uint8_t nargs,
			    enum spop_scope scope, const char *name)
{
	if ((unsigned)scope > SPOP_SCOPE_RES) {
		w->overflow = 1;
		return;
	}
	put_u8(w, action);
	put_u8(w, nargs);
	put_u8(w, (uint8_t)scope);
	put_name(w, name);
}

void spop_action_set_var(struct spop_writer *w, enum spop_scope scope, const char *name,
			 const struct spop_data *value)
{
	put_action_head(w, SPOP_ACT_SET_VAR, 3, scope, name);
	spop_put_data(w, value);
}

void spop_action_unset_var(struct spop_writer *w, enum spop_scope scope, const char *name)
{
	put_action_head(w, SPOP_ACT_UNSET_VAR, 2, scope, name);
}

/* ---- spop_data constructors -------------------------------------------------------- */

struct spop_data spop_str(const char *s, size_t len)
{
	struct spop_data d = { .type = SPOP_DATA_STRING };

	d.u.str.ptr = (const uint8_t *)s;
	d.u.str.len = s ? len : 0;
	return d;
}

struct spop_data spop_cstr(const char *s)
{
	return spop_str(s, s ? strlen(s) : 0);
}

struct spop_data spop_int64(int64_t v)
{
	struct spop_data d = { .type = SPOP_DATA_INT64 };

	d.u.i64 = v;
	return d;
}

struct spop_data spop_bool(int v)
{
	struct spop_data d = { .type = SPOP_DATA_BOOL };

	d.u.boolean = v != 0;
	return d;
}

struct spop_data spop_uint32(uint32_t v)
{
	struct spop_data d = { .type = SPOP_DATA_UINT32 };

	d.u.u32 = v;
	return d;
}

/* ---- whole agent frames ------------------------------------------------------------ */

int spop_agent_hello_encode(uint8_t *buf, size_t cap, uint32_t max_frame_size,
			    const char *capabilities)
{
	struct spop_writer w;
	const char *caps = capabilities ? capabilities : "";

	spop_writer_init(&w, buf, cap);
	spop_frame_begin(&w, SPOP_FRAME_AGENT_HELLO, SPOP_FLAG_FIN, 0, 0);
	spop_put_kv_string(&w, "version", "2.0", 3);
	spop_put_kv_uint32(&w, "max-frame-size", max_frame_size);
	spop_put_kv_string(&w, "capabilities", caps, strlen(caps));
	return spop_frame_end(&w, SPOP_FRAME_HARD_MAX);
}

#define SPOP_DISCONNECT_MSG_MAX 255u

/* HAProxy 2.6 rejects a DISCONNECT message over 255 bytes. The cut backs off (at most 3
 * bytes) so it does not split a UTF-8 sequence: s[n] is the first byte dropped, and a
 * continuation byte (10xxxxxx) there means its sequence started before the cut. */
static size_t message_cut(const char *s)
{
	size_t n = strnlen(s, SPOP_DISCONNECT_MSG_MAX + 1);

	if (n <= SPOP_DISCONNECT_MSG_MAX)
		return n;
	n = SPOP_DISCONNECT_MSG_MAX;
	for (int k = 0; k < 3 && n > 0 && ((uint8_t)s[n] & 0xc0) == 0x80; k++)
		n--;
	return n;
}

int spop_agent_disconnect_encode(uint8_t *buf, size_t cap, uint32_t status, const char *message)
{
	struct spop_writer w;
	const char *msg = message ? message : "";

	spop_writer_init(&w, buf, cap);
	spop_frame_begin(&w, SPOP_FRAME_AGENT_DISCONNECT, SPOP_FLAG_FIN, 0, 0);
	spop_put_kv_uint32(&w, "status-code", status);
	spop_put_kv_string(&w, "message", msg, message_cut(msg));
	return spop_frame_end(&w, SPOP_FRAME_HARD_MAX);
}
