/*
 * Fuzz target: a byte stream from HAProxy through the whole SPOP decode path, as the
 * agent reads it: length prefix (max 16380, HAProxy's default proposal), frame header,
 * then by type HELLO / DISCONNECT parsing or every message and every argument of a
 * NOTIFY. The stream may hold several frames; decoding stops at the first error, as the
 * agent would (it sends a DISCONNECT and closes).
 *
 * Besides sanitizer reports, these properties trap:
 *   - every pointer the codec returns lies inside the frame it came from;
 *   - a message's argument cursor yields exactly nargs items, then the end;
 *   - every decoded value, re-encoded with the writer, decodes back to itself;
 *   - an AGENT-HELLO answering a parsed HELLO always encodes and decodes back.
 */
#include "spop/spop.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FUZZ_MAX_FRAME 16380u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		__builtin_trap();
}

/* [p, p + n) lies inside [lo, hi). */
static void check_inside(const uint8_t *p, size_t n, const uint8_t *lo, const uint8_t *hi)
{
	check(n == 0 || (p >= lo && p <= hi && n <= (size_t)(hi - p)));
}

static int data_eq(const struct spop_data *a, const struct spop_data *b)
{
	if (a->type != b->type)
		return 0;
	switch (a->type) {
	case SPOP_DATA_NULL:
		return 1;
	case SPOP_DATA_BOOL:
		return a->u.boolean == b->u.boolean;
	case SPOP_DATA_INT32:
		return a->u.i32 == b->u.i32;
	case SPOP_DATA_UINT32:
		return a->u.u32 == b->u.u32;
	case SPOP_DATA_INT64:
		return a->u.i64 == b->u.i64;
	case SPOP_DATA_UINT64:
		return a->u.u64 == b->u.u64;
	case SPOP_DATA_IPV4:
		return memcmp(a->u.ipv4, b->u.ipv4, 4) == 0;
	case SPOP_DATA_IPV6:
		return memcmp(a->u.ipv6, b->u.ipv6, 16) == 0;
	case SPOP_DATA_STRING:
	case SPOP_DATA_BINARY:
		return a->u.str.len == b->u.str.len &&
		       (a->u.str.len == 0 || memcmp(a->u.str.ptr, b->u.str.ptr, a->u.str.len) == 0);
	}
	return 0;
}

/* A decoded value fits in its frame, so it fits in a frame-sized scratch buffer. */
static void check_reencode(const struct spop_data *d)
{
	static uint8_t buf[FUZZ_MAX_FRAME + 16];
	struct spop_writer w;
	struct spop_reader r;
	struct spop_data back;
	int n;

	spop_writer_init(&w, buf, sizeof(buf));
	spop_put_data(&w, d);
	check(!w.overflow);
	spop_reader_init(&r, buf, w.len);
	n = spop_data_decode(&r, &back);
	check(n > 0 && (size_t)n == w.len && r.p == r.end);
	check(data_eq(d, &back));
}

static void check_kv(const struct spop_kv *kv, const uint8_t *lo, const uint8_t *hi)
{
	check_inside(kv->name, kv->name_len, lo, hi);
	if (kv->value.type == SPOP_DATA_STRING || kv->value.type == SPOP_DATA_BINARY)
		check_inside(kv->value.u.str.ptr, kv->value.u.str.len, lo, hi);
	check_reencode(&kv->value);
}

static void walk_args(struct spop_msg *m, const uint8_t *lo, const uint8_t *hi)
{
	struct spop_kv kv;
	unsigned n = 0;
	int ret;

	while ((ret = spop_kv_next(&m->args, &kv)) > 0) {
		check_kv(&kv, lo, hi);
		n++;
	}
	check(ret == 0 && n == m->nargs);
}

static void walk_notify(const struct spop_frame *f, const uint8_t *lo, const uint8_t *hi)
{
	struct spop_reader r;
	struct spop_msg m;

	spop_reader_init(&r, f->payload, f->payload_len);
	while (spop_msg_next(&r, &m) > 0) {
		check_inside(m.name, m.name_len, lo, hi);
		check_inside(m.args.p, (size_t)(m.args.end - m.args.p), lo, hi);
		walk_args(&m, lo, hi);
	}
}

static void answer_hello(const struct spop_hello *h)
{
	uint8_t buf[128];
	struct spop_frame f;
	struct spop_hello back;
	uint32_t len;
	int n = spop_agent_hello_encode(buf, sizeof(buf), h->max_frame_size, "pipelining");

	check(n > 0);
	check(spop_frame_length(buf, (size_t)n, SPOP_FRAME_HARD_MAX, &len) == 4);
	check(len + 4 == (uint32_t)n);
	check(spop_frame_decode(buf + 4, len, &f) == 0);
	check(f.type == SPOP_FRAME_AGENT_HELLO && f.flags == SPOP_FLAG_FIN);
	check(spop_hello_parse(f.payload, f.payload_len, &back) == 0);
	check(back.has_max_frame_size && back.max_frame_size == h->max_frame_size);
	check(back.has_capabilities && back.cap_pipelining);
}

static void walk_hello(const struct spop_frame *f, const uint8_t *lo, const uint8_t *hi)
{
	struct spop_hello h;

	if (spop_hello_parse(f->payload, f->payload_len, &h) != 0)
		return;
	check_inside(h.engine_id, h.engine_id_len, lo, hi);
	answer_hello(&h);
}

static void walk_disconnect(const struct spop_frame *f, const uint8_t *lo, const uint8_t *hi)
{
	struct spop_disconnect d;
	uint8_t buf[512];
	char msg[256];
	size_t n;

	if (spop_disconnect_parse(f->payload, f->payload_len, &d) != 0)
		return;
	check(d.message != NULL);
	check(d.message_len == 0 || (d.message >= lo && d.message_len <= (size_t)(hi - d.message)));
	/* echo it back the way the agent would, truncated to what HAProxy accepts */
	n = d.message_len < sizeof(msg) - 1 ? d.message_len : sizeof(msg) - 1;
	memcpy(msg, d.message, n);
	msg[n] = '\0';
	check(spop_agent_disconnect_encode(buf, sizeof(buf), d.status_code, msg) > 0);
	(void)spop_status_str((int)d.status_code);
}

/* One frame body; returns 0 to go on with the next frame, -1 to stop. */
static int walk_frame(const uint8_t *body, uint32_t len)
{
	struct spop_frame f;
	const uint8_t *hi = body + len;

	if (spop_frame_decode(body, len, &f) != 0)
		return -1;
	check_inside(f.payload, f.payload_len, body, hi);
	check(f.payload + f.payload_len == hi);
	switch (f.type) {
	case SPOP_FRAME_HAPROXY_HELLO:
		walk_hello(&f, body, hi);
		break;
	case SPOP_FRAME_HAPROXY_DISCONNECT:
		walk_disconnect(&f, body, hi);
		return -1;
	case SPOP_FRAME_NOTIFY:
		walk_notify(&f, body, hi);
		break;
	default:
		break; /* unknown or agent-side types: skipped, as HAProxy allows */
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;
	uint32_t len;

	while (spop_frame_length(data + off, size - off, FUZZ_MAX_FRAME, &len) == 4) {
		check(len >= SPOP_FRAME_MIN_LEN && len <= FUZZ_MAX_FRAME);
		if (len > size - off - 4)
			break; /* the agent would wait for more bytes */
		if (walk_frame(data + off + 4, len) != 0)
			break;
		off += 4 + (size_t)len;
	}
	return 0;
}
