/*
 * Unit tests for the SPOP codec. The byte vectors are the captures from a real HAProxy
 * 2.6.12 in research/spoe.md §1.4 and §1.10; a test that builds a frame compares it with
 * the capture byte for byte.
 */
#include "spop/spop.h"

#include "testlib.h"

#include <stdint.h>

/* A string literal as (bytes, length): lets a vector mix "\x.." escapes and text. */
#define BYTES(s) ((const uint8_t *)(s)), (sizeof(s) - 1)

/* ---- captured vectors (research/spoe.md §1.10) ------------------------------------ */

static const char hello_check[] =
	"\x00\x00\x00\x4e" "\x01" "\x00\x00\x00\x01" "\x00" "\x00"
	"\x12" "supported-versions" "\x08\x03" "2.0"
	"\x0e" "max-frame-size" "\x03\xfc\xf0\x06"
	"\x0c" "capabilities" "\x08\x00"
	"\x0b" "healthcheck" "\x11";

static const char notify[] =
	"\x00\x00\x00\x6f" "\x03" "\x00\x00\x00\x01" "\x00" "\x01"
	"\x07" "req-msg" "\x09"
	"\x02" "ip" "\x06" "\x7f\x00\x00\x01"
	"\x04" "port" "\x04" "\xfe\xd5\x0f"
	"\x06" "method" "\x08\x03" "GET"
	"\x04" "path" "\x08\x08" "/v1/chat"
	"\x01" "n" "\x04" "\xff\xf0\xfe\xfe\xfe\xfe\xfe\xfe\xfe\x0e"
	"\x03" "big" "\x04" "\xfc\x03"
	"\x01" "b" "\x11"
	"\x02" "v6" "\x07" "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"
	"\x03" "hdr" "\x08\x02" "hi";

static const char ack[] =
	"\x00\x00\x00\x2d" "\x67" "\x00\x00\x00\x01" "\x00" "\x01"
	"\x01\x03\x02\x05" "route" "\x08\x04" "be_b"
	"\x01\x03\x02\x05" "score" "\x02\x2a"
	"\x01\x03\x02\x07" "allowed" "\x11";

static const char agent_hello[] =
	"\x00\x00\x00\x40" "\x65" "\x00\x00\x00\x01" "\x00" "\x00"
	"\x07" "version" "\x08\x03" "2.0"
	"\x0e" "max-frame-size" "\x03\xfc\xf0\x06"
	"\x0c" "capabilities" "\x08\x0a" "pipelining";

static const char disconnect[] =
	"\x00\x00\x00\x3a" "\x02" "\x00\x00\x00\x01" "\x00" "\x00"
	"\x0b" "status-code" "\x03\x0a"
	"\x07" "message" "\x08\x1b" "fragmentation not supported";

/* ---- helpers ------------------------------------------------------------------------ */

static int bytes_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

static int name_is(const struct spop_kv *kv, const char *lit)
{
	return spop_name_eq(kv->name, kv->name_len, lit);
}

static int str_is(const struct spop_data *d, const char *lit)
{
	return d->type == SPOP_DATA_STRING && spop_name_eq(d->u.str.ptr, d->u.str.len, lit);
}

/* Length prefix and frame header of a captured frame; checks them on the way. */
static int decode_capture(const uint8_t *buf, size_t n, struct spop_frame *f)
{
	uint32_t len = 0;

	if (spop_frame_length(buf, n, 16380, &len) != 4 || len != n - 4)
		return -1;
	return spop_frame_decode(buf + 4, len, f);
}

/* Decodes one varint that must use all n bytes; returns the value or fails the test. */
static uint64_t dec_all(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	CHECK_EQ_INT(spop_varint_decode(p, n, &v), n);
	return v;
}

static int roundtrip(uint64_t v, int want_len)
{
	uint8_t buf[SPOP_VARINT_MAX_LEN];
	uint64_t back = 0;
	int n = spop_varint_encode(v, buf, sizeof(buf));

	if (n != want_len && want_len != 0)
		return 0;
	return n > 0 && spop_varint_decode(buf, (size_t)n, &back) == n && back == v;
}

/* ---- varints ------------------------------------------------------------------------ */

static void test_varint_examples(void)
{
	static const struct {
		uint64_t v;
		const char *enc;
		size_t len;
	} ex[] = {
		{ 42, "\x2a", 1 },
		{ 300, "\xfc\x03", 2 },
		{ 3014, "\xf6\xad\x00", 3 },
		{ 16380, "\xfc\xf0\x06", 3 },
		{ 34382, "\xfe\xd5\x0f", 3 },
		{ 15087, "\xff\x9f\x06", 3 },
		{ UINT64_MAX, "\xff\xf0\xfe\xfe\xfe\xfe\xfe\xfe\xfe\x0e", 10 },
	};
	uint8_t buf[SPOP_VARINT_MAX_LEN];

	for (size_t i = 0; i < sizeof(ex) / sizeof(ex[0]); i++) {
		int n = spop_varint_encode(ex[i].v, buf, sizeof(buf));
		CHECK_EQ_INT(n, ex[i].len);
		CHECK(n > 0 && memcmp(buf, ex[i].enc, ex[i].len) == 0);
		CHECK(dec_all((const uint8_t *)ex[i].enc, ex[i].len) == ex[i].v);
	}
	/* INT64 -1 is the uint64 image, no zig-zag. */
	CHECK((int64_t)dec_all(BYTES("\xff\xf0\xfe\xfe\xfe\xfe\xfe\xfe\xfe\x0e")) == -1);
}

static void test_varint_boundaries(void)
{
	/* first value of each encoded length, 2..10 bytes (spoe.md §1.4 ranges) */
	static const uint64_t first[] = {
		240, 2288, 264432, 33818864, 4328786160ull, 554084600048ull,
		70922828777712ull, 9078122083518704ull, 1161999626690365680ull,
	};

	CHECK(roundtrip(0, 1));
	CHECK(roundtrip(239, 1));
	for (size_t i = 0; i < sizeof(first) / sizeof(first[0]); i++) {
		CHECK(roundtrip(first[i] - 1, (int)i + 1));
		CHECK(roundtrip(first[i], (int)i + 2));
		CHECK(roundtrip(first[i] + 1, (int)i + 2));
	}
	CHECK(roundtrip(UINT64_MAX, 10));
	CHECK(roundtrip(UINT64_MAX - 1, 10));
	CHECK(roundtrip((uint64_t)INT64_MAX, 10));
	CHECK(roundtrip((uint64_t)INT64_MAX + 1, 10));
	CHECK(roundtrip(UINT32_MAX, 0));
}

static void test_varint_sweep(void)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;
	int bad = 0;

	for (uint64_t v = 0; v < 300000; v++)
		bad += !roundtrip(v, 0);
	for (int i = 0; i < 200000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		bad += !roundtrip(x >> (i % 64), 0);
	}
	CHECK_EQ_INT(bad, 0);
}

static void test_varint_truncated(void)
{
	uint64_t v = 7;

	CHECK_EQ_INT(spop_varint_decode((const uint8_t *)"", 0, &v), 0);
	CHECK_EQ_INT(spop_varint_decode(BYTES("\xfc"), &v), 0);
	CHECK_EQ_INT(spop_varint_decode(BYTES("\xf6\xad"), &v), 0);
	CHECK_EQ_INT(spop_varint_decode(BYTES("\xff\xf0\xfe\xfe\xfe\xfe\xfe\xfe\xfe"), &v), 0);
	CHECK(v == 7); /* untouched when nothing was decoded */
	/* extra bytes after the varint are not consumed */
	CHECK_EQ_INT(spop_varint_decode(BYTES("\xfc\x03\x99"), &v), 2);
	CHECK(v == 300);
}

static void test_varint_rejected(void)
{
	uint64_t v = 0;
	uint8_t buf[4];

	/* 11 bytes: ten continuation bytes then a terminator */
	CHECK_EQ_INT(spop_varint_decode(BYTES("\xf0\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00"),
					&v), -SPOP_ST_INVALID);
	/* ten bytes, the tenth still says "more": rejected without waiting for more */
	CHECK_EQ_INT(spop_varint_decode(BYTES("\xf0\x80\x80\x80\x80\x80\x80\x80\x80\x80"), &v),
		     -SPOP_ST_INVALID);
	/* tenth byte 0x10 << 60 loses a bit */
	CHECK_EQ_INT(spop_varint_decode(BYTES("\xf0\x80\x80\x80\x80\x80\x80\x80\x80\x10"), &v),
		     -SPOP_ST_INVALID);
	/* bits all fit but the sum wraps past 2^64 - 1 (UINT64_MAX ends in 0e) */
	CHECK_EQ_INT(spop_varint_decode(BYTES("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x0f"), &v),
		     -SPOP_ST_INVALID);
	CHECK_EQ_INT(spop_varint_decode(BYTES("\xff\xf0\xfe\xfe\xfe\xfe\xfe\xfe\xfe\x0f"), &v),
		     -SPOP_ST_INVALID);
	/* encoder: a short buffer fails and is left untouched */
	memset(buf, 0xaa, sizeof(buf));
	CHECK_EQ_INT(spop_varint_encode(300, buf, 1), -1);
	CHECK_EQ_INT(spop_varint_encode(5, buf, 0), -1);
	CHECK(buf[0] == 0xaa);
	CHECK_EQ_INT(spop_varint_encode(3014, buf, 3), 3);
}

/* ---- frame length and header -------------------------------------------------------- */

static void test_frame_length(void)
{
	uint32_t len = 123;

	CHECK_EQ_INT(spop_frame_length(BYTES(""), 16380, &len), 0);
	CHECK_EQ_INT(spop_frame_length(BYTES("\x00\x00\x00"), 16380, &len), 0);
	CHECK_EQ_INT(spop_frame_length(BYTES("\x00\x00\x00\x00"), 16380, &len), -SPOP_ST_INVALID);
	CHECK_EQ_INT(spop_frame_length(BYTES("\x00\x00\x00\x06"), 16380, &len), -SPOP_ST_INVALID);
	CHECK(len == 123);
	CHECK_EQ_INT(spop_frame_length(BYTES("\x00\x00\x00\x07"), 16380, &len), 4);
	CHECK(len == 7);
	CHECK_EQ_INT(spop_frame_length(BYTES("\x00\x00\x3f\xfc"), 16380, &len), 4);
	CHECK(len == 16380);
	CHECK_EQ_INT(spop_frame_length(BYTES("\x00\x00\x3f\xfd"), 16380, &len), -SPOP_ST_TOO_BIG);
	CHECK_EQ_INT(spop_frame_length(BYTES("\x80\x00\x00\x00"), 16380, &len), -SPOP_ST_TOO_BIG);
	CHECK_EQ_INT(spop_frame_length(BYTES("\xff\xff\xff\xff"), UINT32_MAX, &len),
		     -SPOP_ST_TOO_BIG);
	/* the hard cap holds even when the caller passes a larger maximum */
	CHECK_EQ_INT(spop_frame_length(BYTES("\x00\x10\x00\x01"), UINT32_MAX, &len),
		     -SPOP_ST_TOO_BIG);
	CHECK_EQ_INT(spop_frame_length(BYTES("\x00\x10\x00\x00"), UINT32_MAX, &len), 4);
	/* only the prefix is looked at: the body need not be buffered yet */
	CHECK_EQ_INT(spop_frame_length(BYTES("\x00\x00\x00\x4e\x01"), 16380, &len), 4);
}

static void test_frame_decode(void)
{
	struct spop_frame f;

	/* smallest frame: unknown type, flags kept as is */
	CHECK_EQ_INT(spop_frame_decode(BYTES("\x42\x80\x00\x00\x03\x00\x00"), &f), 0);
	CHECK_EQ_INT(f.type, 0x42);
	CHECK(f.flags == 0x80000003u);
	CHECK(f.stream_id == 0 && f.frame_id == 0 && f.payload_len == 0);
	/* 10-byte stream-id (UINT64_MAX) and 3-byte frame-id */
	CHECK_EQ_INT(spop_frame_decode(BYTES("\x03\x00\x00\x00\x01"
					      "\xff\xf0\xfe\xfe\xfe\xfe\xfe\xfe\xfe\x0e"
					      "\xfc\xf0\x06" "\x00"), &f), 0);
	CHECK(f.stream_id == UINT64_MAX && f.frame_id == 16380 && f.payload_len == 1);
	CHECK(f.payload && f.payload[0] == 0);
	/* errors */
	CHECK_EQ_INT(spop_frame_decode(BYTES("\x03\x00\x00\x00\x01\x00"), &f), -SPOP_ST_INVALID);
	CHECK_EQ_INT(spop_frame_decode(BYTES("\x03\x00\x00\x00\x01\xff\xf0"), &f),
		     -SPOP_ST_INVALID); /* sid truncated, no fid */
	CHECK_EQ_INT(spop_frame_decode(BYTES("\x03\x00\x00\x00\x01\x00\xfc"), &f),
		     -SPOP_ST_INVALID); /* fid truncated */
	CHECK_EQ_INT(spop_frame_decode(BYTES("\x03\x00\x00\x00\x01"
					      "\xf0\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00"
					      "\x00"), &f), -SPOP_ST_INVALID); /* 11-byte sid */
	CHECK_EQ_INT(spop_frame_decode(BYTES("\x03\x00\x00\x00\x01\x00"
					      "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x0f"), &f),
		     -SPOP_ST_INVALID); /* fid overflows */
}

/* ---- HELLO ---------------------------------------------------------------------------- */

static void test_hello_capture_fields(void)
{
	struct spop_frame f;
	struct spop_reader r;
	struct spop_kv kv;

	CHECK_EQ_INT(sizeof(hello_check) - 1, 82);
	CHECK_EQ_INT(decode_capture(BYTES(hello_check), &f), 0);
	CHECK_EQ_INT(f.type, SPOP_FRAME_HAPROXY_HELLO);
	CHECK(f.flags == SPOP_FLAG_FIN);
	CHECK(f.stream_id == 0 && f.frame_id == 0);
	CHECK_EQ_INT(f.payload_len, 71);

	spop_reader_init(&r, f.payload, f.payload_len);
	CHECK_EQ_INT(spop_kv_next(&r, &kv), 1);
	CHECK(name_is(&kv, "supported-versions") && str_is(&kv.value, "2.0"));
	CHECK_EQ_INT(spop_kv_next(&r, &kv), 1);
	CHECK(name_is(&kv, "max-frame-size"));
	CHECK(kv.value.type == SPOP_DATA_UINT32 && kv.value.u.u32 == 16380);
	CHECK_EQ_INT(spop_kv_next(&r, &kv), 1);
	CHECK(name_is(&kv, "capabilities") && str_is(&kv.value, ""));
	CHECK_EQ_INT(spop_kv_next(&r, &kv), 1);
	CHECK(name_is(&kv, "healthcheck"));
	CHECK(kv.value.type == SPOP_DATA_BOOL && kv.value.u.boolean == 1);
	CHECK_EQ_INT(spop_kv_next(&r, &kv), 0);
	CHECK_EQ_INT(spop_kv_next(&r, &kv), 0);
}

static void test_hello_capture_parse(void)
{
	struct spop_frame f;
	struct spop_hello h;

	CHECK_EQ_INT(decode_capture(BYTES(hello_check), &f), 0);
	CHECK_EQ_INT(spop_hello_parse(f.payload, f.payload_len, &h), 0);
	CHECK(h.has_version && h.version_ok);
	CHECK(h.has_max_frame_size && h.max_frame_size == 16380);
	CHECK(h.has_capabilities && !h.cap_pipelining);
	CHECK(h.healthcheck);
	CHECK(h.engine_id == NULL && h.engine_id_len == 0);
}

/* Builds a HAPROXY-HELLO payload with the writer: items as HAProxy orders them. */
static size_t build_hello(uint8_t *buf, size_t cap, const char *vsn,
			  const struct spop_data *mfs, const char *caps, const char *engine)
{
	struct spop_writer w;
	struct spop_data v = spop_cstr(vsn);
	int n;

	spop_writer_init(&w, buf, cap);
	spop_frame_begin(&w, SPOP_FRAME_HAPROXY_HELLO, SPOP_FLAG_FIN, 0, 0);
	if (vsn)
		spop_put_kv(&w, "supported-versions", &v);
	if (mfs)
		spop_put_kv(&w, "max-frame-size", mfs);
	if (caps)
		spop_put_kv_string(&w, "capabilities", caps, strlen(caps));
	if (engine)
		spop_put_kv_string(&w, "engine-id", engine, strlen(engine));
	n = spop_frame_end(&w, 16380);
	return n < 0 ? 0 : (size_t)n;
}

static int parse_built(const uint8_t *buf, size_t n, struct spop_hello *h)
{
	struct spop_frame f;
	int ret = decode_capture(buf, n, &f);

	return ret < 0 ? ret : spop_hello_parse(f.payload, f.payload_len, h);
}

static void test_hello_normal(void)
{
	static const char uuid[] = "6e3f8d2a-51b1-4bd2-9a3f-0c1c2d3e4f50";
	struct spop_data mfs = spop_uint32(16380);
	struct spop_hello h;
	uint8_t buf[256];
	size_t n = build_hello(buf, sizeof(buf), "2.0", &mfs, "pipelining,async", uuid);

	CHECK(n > 0);
	CHECK_EQ_INT(parse_built(buf, n, &h), 0);
	CHECK(h.has_version && h.version_ok);
	CHECK(h.has_max_frame_size && h.max_frame_size == 16380);
	CHECK(h.has_capabilities && h.cap_pipelining && !h.healthcheck);
	CHECK(bytes_eq(h.engine_id, h.engine_id_len, (const uint8_t *)uuid, strlen(uuid)));

	/* nothing at all: every flag clear */
	n = build_hello(buf, sizeof(buf), NULL, NULL, NULL, NULL);
	CHECK_EQ_INT(parse_built(buf, n, &h), 0);
	CHECK(!h.has_version && !h.version_ok && !h.has_max_frame_size && !h.has_capabilities);
	CHECK(!h.cap_pipelining && !h.healthcheck && h.engine_id == NULL);
}

static int version_ok(const char *list)
{
	struct spop_data mfs = spop_uint32(16380);
	struct spop_hello h;
	uint8_t buf[256];
	size_t n = build_hello(buf, sizeof(buf), list, &mfs, "", NULL);

	return parse_built(buf, n, &h) == 0 && h.has_version && h.version_ok;
}

static void test_hello_versions(void)
{
	CHECK(version_ok("2.0"));
	CHECK(version_ok("1.0, 2.0"));
	CHECK(version_ok("1.0,2.0"));
	CHECK(version_ok("2.0 ,1.0"));
	CHECK(version_ok("  2.0  "));
	CHECK(version_ok(",,2.0,"));
	CHECK(!version_ok("1.0"));
	CHECK(!version_ok(""));
	CHECK(!version_ok("2.00"));
	CHECK(!version_ok("12.0"));
	CHECK(!version_ok("2.0.1"));
	CHECK(!version_ok("2"));
	CHECK(!version_ok("2.0x, 3.0"));
}

static void test_hello_version_not_string(void)
{
	struct spop_writer w;
	struct spop_hello h;
	uint8_t buf[128];
	int n;

	spop_writer_init(&w, buf, sizeof(buf));
	spop_frame_begin(&w, SPOP_FRAME_HAPROXY_HELLO, SPOP_FLAG_FIN, 0, 0);
	spop_put_kv_uint32(&w, "supported-versions", 2);
	n = spop_frame_end(&w, 16380);
	CHECK(n > 0);
	CHECK_EQ_INT(parse_built(buf, (size_t)n, &h), 0);
	CHECK(h.has_version && !h.version_ok);
}

/* max-frame-size as given, parsed: returns the size, or -1 if absent, -2 on error. */
static long long mfs_of(struct spop_data d)
{
	struct spop_hello h;
	uint8_t buf[256];
	size_t n = build_hello(buf, sizeof(buf), "2.0", &d, "", NULL);

	if (parse_built(buf, n, &h) != 0)
		return -2;
	return h.has_max_frame_size ? (long long)h.max_frame_size : -1;
}

static void test_hello_max_frame_size_types(void)
{
	struct spop_data d;

	CHECK_EQ_INT(mfs_of(spop_uint32(16380)), 16380);
	CHECK_EQ_INT(mfs_of(spop_int64(16380)), 16380);
	d = spop_int64(0);
	d.type = SPOP_DATA_UINT64;
	d.u.u64 = 1024;
	CHECK_EQ_INT(mfs_of(d), 1024);
	d.u.u64 = UINT32_MAX;
	CHECK_EQ_INT(mfs_of(d), UINT32_MAX);
	d.u.u64 = (uint64_t)UINT32_MAX + 1; /* out of range: present, size 0 */
	CHECK_EQ_INT(mfs_of(d), 0);
	d.type = SPOP_DATA_INT32;
	d.u.i32 = 4096;
	CHECK_EQ_INT(mfs_of(d), 4096);
	d.u.i32 = -1;
	CHECK_EQ_INT(mfs_of(d), 0);
	CHECK_EQ_INT(mfs_of(spop_int64(-16380)), 0);
	CHECK_EQ_INT(mfs_of(spop_int64((int64_t)1 << 40)), 0);
	CHECK_EQ_INT(mfs_of(spop_cstr("16380")), 0);
	CHECK_EQ_INT(mfs_of(spop_bool(1)), 0);
}

static int caps_pipelining(const char *caps)
{
	struct spop_data mfs = spop_uint32(16380);
	struct spop_hello h;
	uint8_t buf[256];
	size_t n = build_hello(buf, sizeof(buf), "2.0", &mfs, caps, NULL);

	return parse_built(buf, n, &h) == 0 && h.has_capabilities && h.cap_pipelining;
}

static void test_hello_capabilities(void)
{
	CHECK(caps_pipelining("pipelining"));
	CHECK(caps_pipelining("pipelining,async"));
	CHECK(caps_pipelining("async, pipelining"));
	CHECK(caps_pipelining(" pipelining "));
	CHECK(!caps_pipelining(""));
	CHECK(!caps_pipelining("async"));
	CHECK(!caps_pipelining("pipelining-x"));
	CHECK(!caps_pipelining("pipelinin"));
	CHECK(!caps_pipelining("xpipelining"));
	CHECK(!caps_pipelining("pipe lining"));
}

/* Names are compared whole: near misses are unknown items and skipped. */
static void test_hello_names_exact(void)
{
	struct spop_writer w;
	struct spop_hello h;
	uint8_t buf[256];
	int n;

	spop_writer_init(&w, buf, sizeof(buf));
	spop_frame_begin(&w, SPOP_FRAME_HAPROXY_HELLO, SPOP_FLAG_FIN, 0, 0);
	spop_put_kv_string(&w, "supported-version", "2.0", 3);
	spop_put_kv_string(&w, "supported-versionsX", "2.0", 3);
	spop_put_kv_uint32(&w, "max-frame", 1000);
	spop_put_kv_uint32(&w, "max-frame-size-", 1000);
	spop_put_kv_string(&w, "capability", "pipelining", 10);
	{
		struct spop_data t = spop_bool(1);
		spop_put_kv(&w, "healthcheckx", &t);
		spop_put_kv(&w, "", &t);
	}
	spop_put_kv_string(&w, "engine", "x", 1);
	n = spop_frame_end(&w, 16380);
	CHECK(n > 0);
	CHECK_EQ_INT(parse_built(buf, (size_t)n, &h), 0);
	CHECK(!h.has_version && !h.has_max_frame_size && !h.has_capabilities);
	CHECK(!h.healthcheck && h.engine_id == NULL);
}

/* Cut the captured HELLO payload at every length: cuts on an item boundary parse, all
 * other cuts fail with INVALID, and nothing reads past the cut (ASan watches). */
static void test_hello_truncated_everywhere(void)
{
	static const size_t item_end[] = { 0, 24, 43, 58, 71 };
	struct spop_frame f;
	struct spop_hello h;
	uint8_t copy[128];

	CHECK_EQ_INT(decode_capture(BYTES(hello_check), &f), 0);
	for (size_t cut = 0; cut <= f.payload_len; cut++) {
		int boundary = 0, ret;
		for (size_t i = 0; i < sizeof(item_end) / sizeof(item_end[0]); i++)
			boundary |= cut == item_end[i];
		/* an exact-size copy so ASan catches any over-read */
		memcpy(copy + sizeof(copy) - cut, f.payload, cut);
		ret = spop_hello_parse(copy + sizeof(copy) - cut, cut, &h);
		CHECK_EQ_INT(ret, boundary ? 0 : -SPOP_ST_INVALID);
	}
}

static void test_hello_errors(void)
{
	struct spop_hello h;

	/* name length past the end */
	CHECK_EQ_INT(spop_hello_parse(BYTES("\x05" "abc"), &h), -SPOP_ST_INVALID);
	/* value missing */
	CHECK_EQ_INT(spop_hello_parse(BYTES("\x03" "abc"), &h), -SPOP_ST_INVALID);
	/* bad type id */
	CHECK_EQ_INT(spop_hello_parse(BYTES("\x03" "abc" "\x0a"), &h), -SPOP_ST_INVALID);
	/* string length past the end */
	CHECK_EQ_INT(spop_hello_parse(BYTES("\x03" "abc" "\x08\x05" "2.0"), &h),
		     -SPOP_ST_INVALID);
	/* name length is a huge varint */
	CHECK_EQ_INT(spop_hello_parse(BYTES("\xff\xf0\xfe\xfe\xfe\xfe\xfe\xfe\xfe\x0e" "a"),
				      &h), -SPOP_ST_INVALID);
	/* empty payload is a valid empty list */
	CHECK_EQ_INT(spop_hello_parse(NULL, 0, &h), 0);
	CHECK(!h.has_version);
}

/* ---- NOTIFY --------------------------------------------------------------------------- */

static void test_notify_capture(void)
{
	static const uint8_t v6[16] = { [15] = 1 };
	struct spop_frame f;
	struct spop_reader r;
	struct spop_msg m;
	struct spop_kv kv;

	CHECK_EQ_INT(sizeof(notify) - 1, 0x6f + 4);
	CHECK_EQ_INT(decode_capture(BYTES(notify), &f), 0);
	CHECK_EQ_INT(f.type, SPOP_FRAME_NOTIFY);
	CHECK(f.flags == SPOP_FLAG_FIN && f.stream_id == 0 && f.frame_id == 1);

	spop_reader_init(&r, f.payload, f.payload_len);
	CHECK_EQ_INT(spop_msg_next(&r, &m), 1);
	CHECK(spop_name_eq(m.name, m.name_len, "req-msg"));
	CHECK_EQ_INT(m.nargs, 9);

	CHECK_EQ_INT(spop_kv_next(&m.args, &kv), 1);
	CHECK(name_is(&kv, "ip") && kv.value.type == SPOP_DATA_IPV4);
	CHECK(memcmp(kv.value.u.ipv4, "\x7f\x00\x00\x01", 4) == 0);
	CHECK_EQ_INT(spop_kv_next(&m.args, &kv), 1);
	CHECK(name_is(&kv, "port") && kv.value.type == SPOP_DATA_INT64);
	CHECK(kv.value.u.i64 == 34382);
	CHECK_EQ_INT(spop_kv_next(&m.args, &kv), 1);
	CHECK(name_is(&kv, "method") && str_is(&kv.value, "GET"));
	CHECK_EQ_INT(spop_kv_next(&m.args, &kv), 1);
	CHECK(name_is(&kv, "path") && str_is(&kv.value, "/v1/chat"));
	CHECK_EQ_INT(spop_kv_next(&m.args, &kv), 1);
	CHECK(name_is(&kv, "n") && kv.value.type == SPOP_DATA_INT64 && kv.value.u.i64 == -1);
	CHECK_EQ_INT(spop_kv_next(&m.args, &kv), 1);
	CHECK(name_is(&kv, "big") && kv.value.type == SPOP_DATA_INT64);
	CHECK(kv.value.u.i64 == 300);
	CHECK_EQ_INT(spop_kv_next(&m.args, &kv), 1);
	CHECK(name_is(&kv, "b") && kv.value.type == SPOP_DATA_BOOL && kv.value.u.boolean);
	CHECK_EQ_INT(spop_kv_next(&m.args, &kv), 1);
	CHECK(name_is(&kv, "v6") && kv.value.type == SPOP_DATA_IPV6);
	CHECK(memcmp(kv.value.u.ipv6, v6, 16) == 0);
	CHECK_EQ_INT(spop_kv_next(&m.args, &kv), 1);
	CHECK(name_is(&kv, "hdr") && str_is(&kv.value, "hi"));
	CHECK_EQ_INT(spop_kv_next(&m.args, &kv), 0);

	CHECK_EQ_INT(spop_msg_next(&r, &m), 0);
	CHECK(r.p == f.payload + f.payload_len);
}

static void test_notify_multi_and_null(void)
{
	/* two messages: one with no args, one with a NULL arg, an unnamed arg and a BINARY */
	static const char p[] =
		"\x05" "first" "\x00"
		"\x08" "body-msg" "\x03"
		"\x03" "hdr" "\x00"
		"\x00" "\x08\x01" "x"
		"\x04" "body" "\x09\x03" "\x00\x01\x02";
	struct spop_reader r;
	struct spop_msg m;
	struct spop_kv kv;

	spop_reader_init(&r, BYTES(p));
	CHECK_EQ_INT(spop_msg_next(&r, &m), 1);
	CHECK(spop_name_eq(m.name, m.name_len, "first") && m.nargs == 0);
	CHECK_EQ_INT(spop_kv_next(&m.args, &kv), 0);
	CHECK_EQ_INT(spop_msg_next(&r, &m), 1);
	CHECK(spop_name_eq(m.name, m.name_len, "body-msg") && m.nargs == 3);
	CHECK_EQ_INT(spop_kv_next(&m.args, &kv), 1);
	CHECK(name_is(&kv, "hdr") && kv.value.type == SPOP_DATA_NULL);
	CHECK_EQ_INT(spop_kv_next(&m.args, &kv), 1);
	CHECK(kv.name_len == 0 && name_is(&kv, "") && str_is(&kv.value, "x"));
	CHECK_EQ_INT(spop_kv_next(&m.args, &kv), 1);
	CHECK(name_is(&kv, "body") && kv.value.type == SPOP_DATA_BINARY);
	CHECK(bytes_eq(kv.value.u.str.ptr, kv.value.u.str.len, BYTES("\x00\x01\x02")));
	CHECK_EQ_INT(spop_kv_next(&m.args, &kv), 0);
	CHECK_EQ_INT(spop_msg_next(&r, &m), 0);
}

static void test_notify_errors(void)
{
	struct spop_reader r;
	struct spop_msg m;
	const uint8_t *before;

	/* nargs says 2, one present */
	spop_reader_init(&r, BYTES("\x01" "m" "\x02" "\x01" "a" "\x00"));
	before = r.p;
	CHECK_EQ_INT(spop_msg_next(&r, &m), -SPOP_ST_INVALID);
	CHECK(r.p == before); /* cursor unchanged on error */
	/* nargs byte missing */
	spop_reader_init(&r, BYTES("\x01" "m"));
	CHECK_EQ_INT(spop_msg_next(&r, &m), -SPOP_ST_INVALID);
	/* message name past the end */
	spop_reader_init(&r, BYTES("\x09" "m" "\x00"));
	CHECK_EQ_INT(spop_msg_next(&r, &m), -SPOP_ST_INVALID);
	/* message name length truncated varint */
	spop_reader_init(&r, BYTES("\xfc"));
	CHECK_EQ_INT(spop_msg_next(&r, &m), -SPOP_ST_INVALID);
	/* arg with a bad type id */
	spop_reader_init(&r, BYTES("\x01" "m" "\x01" "\x01" "a" "\x0f"));
	CHECK_EQ_INT(spop_msg_next(&r, &m), -SPOP_ST_INVALID);
	/* arg string length past the end */
	spop_reader_init(&r, BYTES("\x01" "m" "\x01" "\x01" "a" "\x08\x04" "abc"));
	CHECK_EQ_INT(spop_msg_next(&r, &m), -SPOP_ST_INVALID);
	/* nargs 255 with nothing after it */
	spop_reader_init(&r, BYTES("\x01" "m" "\xff"));
	CHECK_EQ_INT(spop_msg_next(&r, &m), -SPOP_ST_INVALID);
}

/* Every proper prefix of the captured NOTIFY payload is malformed (one message). */
static void test_notify_truncated_everywhere(void)
{
	struct spop_frame f;
	uint8_t copy[160];
	int bad = 0;

	CHECK_EQ_INT(decode_capture(BYTES(notify), &f), 0);
	CHECK(f.payload_len <= sizeof(copy));
	for (size_t cut = 1; cut < f.payload_len; cut++) {
		struct spop_reader r;
		struct spop_msg m;
		memcpy(copy + sizeof(copy) - cut, f.payload, cut);
		spop_reader_init(&r, copy + sizeof(copy) - cut, cut);
		bad += spop_msg_next(&r, &m) != -SPOP_ST_INVALID;
	}
	CHECK_EQ_INT(bad, 0);
	/* and every truncated body fails at the frame or the payload level */
	for (size_t cut = 0; cut < sizeof(notify) - 1 - 4; cut++) {
		struct spop_frame g;
		struct spop_reader r;
		struct spop_msg m;
		int ret;
		memcpy(copy + sizeof(copy) - cut, notify + 4, cut);
		ret = spop_frame_decode(copy + sizeof(copy) - cut, cut, &g);
		if (ret == 0) {
			spop_reader_init(&r, g.payload, g.payload_len);
			ret = spop_msg_next(&r, &m);
			/* cut right after the header leaves an empty, valid list */
			if (cut == 7)
				ret = ret == 0 ? -SPOP_ST_INVALID : 0;
		}
		bad += ret != -SPOP_ST_INVALID;
	}
	CHECK_EQ_INT(bad, 0);
}

/* ---- typed data ------------------------------------------------------------------------- */

static int data_roundtrip(const struct spop_data *in, struct spop_data *out, size_t *used)
{
	struct spop_writer w;
	struct spop_reader r;
	static uint8_t buf[64];
	int n;

	spop_writer_init(&w, buf, sizeof(buf));
	spop_put_data(&w, in);
	if (w.overflow)
		return -100;
	spop_reader_init(&r, buf, w.len);
	n = spop_data_decode(&r, out);
	*used = w.len;
	return n == (int)w.len && r.p == r.end ? 0 : -1;
}

static void test_data_all_types(void)
{
	struct spop_data in, out;
	size_t used;

	in = (struct spop_data){ .type = SPOP_DATA_NULL };
	CHECK_EQ_INT(data_roundtrip(&in, &out, &used), 0);
	CHECK(out.type == SPOP_DATA_NULL && used == 1);
	in = spop_bool(1);
	CHECK_EQ_INT(data_roundtrip(&in, &out, &used), 0);
	CHECK(out.type == SPOP_DATA_BOOL && out.u.boolean == 1 && used == 1);
	in = spop_bool(0);
	CHECK_EQ_INT(data_roundtrip(&in, &out, &used), 0);
	CHECK(out.type == SPOP_DATA_BOOL && out.u.boolean == 0);
	in = (struct spop_data){ .type = SPOP_DATA_INT32, .u.i32 = INT32_MIN };
	CHECK_EQ_INT(data_roundtrip(&in, &out, &used), 0);
	CHECK(out.type == SPOP_DATA_INT32 && out.u.i32 == INT32_MIN && used == 11);
	in.u.i32 = INT32_MAX;
	CHECK_EQ_INT(data_roundtrip(&in, &out, &used), 0);
	CHECK(out.u.i32 == INT32_MAX);
	in = spop_uint32(UINT32_MAX);
	CHECK_EQ_INT(data_roundtrip(&in, &out, &used), 0);
	CHECK(out.type == SPOP_DATA_UINT32 && out.u.u32 == UINT32_MAX);
	in = spop_int64(INT64_MIN);
	CHECK_EQ_INT(data_roundtrip(&in, &out, &used), 0);
	CHECK(out.type == SPOP_DATA_INT64 && out.u.i64 == INT64_MIN);
	in = (struct spop_data){ .type = SPOP_DATA_UINT64, .u.u64 = UINT64_MAX };
	CHECK_EQ_INT(data_roundtrip(&in, &out, &used), 0);
	CHECK(out.type == SPOP_DATA_UINT64 && out.u.u64 == UINT64_MAX && used == 11);
	in = (struct spop_data){ .type = SPOP_DATA_IPV4, .u.ipv4 = { 10, 0, 0, 1 } };
	CHECK_EQ_INT(data_roundtrip(&in, &out, &used), 0);
	CHECK(out.type == SPOP_DATA_IPV4 && memcmp(out.u.ipv4, in.u.ipv4, 4) == 0 && used == 5);
	in = (struct spop_data){ .type = SPOP_DATA_IPV6, .u.ipv6 = { 0x20, 0x01, 0x0d, 0xb8 } };
	CHECK_EQ_INT(data_roundtrip(&in, &out, &used), 0);
	CHECK(out.type == SPOP_DATA_IPV6 && memcmp(out.u.ipv6, in.u.ipv6, 16) == 0);
	in = spop_cstr("hello");
	CHECK_EQ_INT(data_roundtrip(&in, &out, &used), 0);
	CHECK(str_is(&out, "hello") && used == 7);
	in = spop_cstr("");
	CHECK_EQ_INT(data_roundtrip(&in, &out, &used), 0);
	CHECK(str_is(&out, "") && used == 2);
	in = spop_str("a\0b", 3);
	in.type = SPOP_DATA_BINARY;
	CHECK_EQ_INT(data_roundtrip(&in, &out, &used), 0);
	CHECK(out.type == SPOP_DATA_BINARY && bytes_eq(out.u.str.ptr, out.u.str.len,
						       BYTES("a\0b")));
}

static int decode_one(const uint8_t *p, size_t n, struct spop_data *d)
{
	struct spop_reader r;

	spop_reader_init(&r, p, n);
	return spop_data_decode(&r, d);
}

static void test_data_wire_forms(void)
{
	struct spop_data d;

	CHECK_EQ_INT(decode_one(BYTES("\x11"), &d), 1);
	CHECK(d.type == SPOP_DATA_BOOL && d.u.boolean == 1);
	CHECK_EQ_INT(decode_one(BYTES("\x01"), &d), 1);
	CHECK(d.type == SPOP_DATA_BOOL && d.u.boolean == 0);
	/* flag bits on other types are ignored, as HAProxy does */
	CHECK_EQ_INT(decode_one(BYTES("\x28\x01" "z"), &d), 3);
	CHECK(str_is(&d, "z"));
	CHECK_EQ_INT(decode_one(BYTES("\x02\x2a"), &d), 2);
	CHECK(d.type == SPOP_DATA_INT32 && d.u.i32 == 42);
	CHECK_EQ_INT(decode_one(BYTES("\x04\xff\xf0\xfe\xfe\xfe\xfe\xfe\xfe\xfe\x0e"), &d), 11);
	CHECK(d.type == SPOP_DATA_INT64 && d.u.i64 == -1);
	CHECK_EQ_INT(decode_one(BYTES("\x02\xff\xf0\xfe\xfe\xfe\xfe\xfe\xfe\xfe\x0e"), &d), 11);
	CHECK(d.type == SPOP_DATA_INT32 && d.u.i32 == -1);
	CHECK_EQ_INT(decode_one(BYTES("\x03\xfc\xf0\x06"), &d), 4);
	CHECK(d.type == SPOP_DATA_UINT32 && d.u.u32 == 16380);
	CHECK_EQ_INT(decode_one(BYTES("\x05\x00"), &d), 2);
	CHECK(d.type == SPOP_DATA_UINT64 && d.u.u64 == 0);
	CHECK_EQ_INT(decode_one(BYTES("\x00" "tail"), &d), 1);
	CHECK(d.type == SPOP_DATA_NULL);
}

static void test_data_errors(void)
{
	struct spop_reader r;
	struct spop_data d;

	CHECK_EQ_INT(decode_one(NULL, 0, &d), -SPOP_ST_INVALID); /* never 0 */
	for (unsigned t = 10; t < 16; t++) {
		uint8_t b[2] = { (uint8_t)t, 0 };
		CHECK_EQ_INT(decode_one(b, 2, &d), -SPOP_ST_INVALID);
		b[0] |= 0x10;
		CHECK_EQ_INT(decode_one(b, 2, &d), -SPOP_ST_INVALID);
	}
	CHECK_EQ_INT(decode_one(BYTES("\x02"), &d), -SPOP_ST_INVALID);
	CHECK_EQ_INT(decode_one(BYTES("\x04\xfe\xd5"), &d), -SPOP_ST_INVALID);
	CHECK_EQ_INT(decode_one(BYTES("\x05\xf0\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00"), &d),
		     -SPOP_ST_INVALID);
	CHECK_EQ_INT(decode_one(BYTES("\x06\x7f\x00\x00"), &d), -SPOP_ST_INVALID);
	CHECK_EQ_INT(decode_one(BYTES("\x07\x00\x00\x00\x00\x00\x00\x00\x00"
				      "\x00\x00\x00\x00\x00\x00\x00"), &d), -SPOP_ST_INVALID);
	CHECK_EQ_INT(decode_one(BYTES("\x08"), &d), -SPOP_ST_INVALID);
	CHECK_EQ_INT(decode_one(BYTES("\x08\x04" "abc"), &d), -SPOP_ST_INVALID);
	CHECK_EQ_INT(decode_one(BYTES("\x09\xfc\x03" "abc"), &d), -SPOP_ST_INVALID);
	/* string length UINT64_MAX: checked against the remaining bytes, no wrap */
	CHECK_EQ_INT(decode_one(BYTES("\x08\xff\xf0\xfe\xfe\xfe\xfe\xfe\xfe\xfe\x0e" "x"), &d),
		     -SPOP_ST_INVALID);
	/* 32-bit types out of range: UINT32 2^32, INT32 2^31 and -2^31 - 1 */
	CHECK_EQ_INT(decode_one(BYTES("\x03\xf0\xf1\xfe\xfe\x7e"), &d), -SPOP_ST_INVALID);
	CHECK_EQ_INT(decode_one(BYTES("\x03\xf0\xf1\xfe\xfe\x3e"), &d), 6);
	CHECK(d.u.u32 == 2147483648u);
	CHECK_EQ_INT(decode_one(BYTES("\x02\xf0\xf1\xfe\xfe\x3e"), &d), -SPOP_ST_INVALID);
	CHECK_EQ_INT(decode_one(BYTES("\x02\xff\xf0\xfe\xfe\xbe\xfe\xfe\xfe\xfe\x0e"), &d),
		     -SPOP_ST_INVALID);
	/* the cursor does not move on error */
	spop_reader_init(&r, BYTES("\x08\x04" "abc"));
	CHECK(spop_data_decode(&r, &d) < 0 && r.end - r.p == 5);
}

/* ---- ACK, AGENT-HELLO, DISCONNECT ------------------------------------------------------- */

static int build_ack(uint8_t *buf, size_t cap, uint32_t max_frame)
{
	struct spop_writer w;
	struct spop_data route = spop_cstr("be_b");
	struct spop_data score = { .type = SPOP_DATA_INT32, .u.i32 = 42 };
	struct spop_data allowed = spop_bool(1);

	spop_writer_init(&w, buf, cap);
	spop_frame_begin(&w, SPOP_FRAME_ACK, SPOP_FLAG_FIN, 0, 1);
	spop_action_set_var(&w, SPOP_SCOPE_TXN, "route", &route);
	spop_action_set_var(&w, SPOP_SCOPE_TXN, "score", &score);
	spop_action_set_var(&w, SPOP_SCOPE_TXN, "allowed", &allowed);
	return spop_frame_end(&w, max_frame);
}

static void test_ack_capture(void)
{
	uint8_t buf[128];
	int n = build_ack(buf, sizeof(buf), 16380);

	CHECK_EQ_INT(n, sizeof(ack) - 1);
	CHECK(n > 0 && bytes_eq(buf, (size_t)n, BYTES(ack)));
}

/* Every buffer shorter than the frame fails, and no byte past cap is touched. */
static void test_writer_never_past_cap(void)
{
	uint8_t buf[128];
	int bad = 0;

	for (size_t cap = 0; cap < sizeof(ack) - 1; cap++) {
		memset(buf, 0xaa, sizeof(buf));
		bad += build_ack(buf, cap, 16380) != -1;
		for (size_t i = cap; i < sizeof(buf); i++)
			bad += buf[i] != 0xaa;
	}
	CHECK_EQ_INT(bad, 0);
	CHECK_EQ_INT(build_ack(buf, sizeof(ack) - 1, 16380), sizeof(ack) - 1);
}

static void test_writer_limits(void)
{
	struct spop_writer w;
	struct spop_data bad_type = { .type = (enum spop_data_type)12 };
	uint8_t buf[64];

	/* body is 45 bytes: max 45 passes, 44 fails */
	CHECK_EQ_INT(build_ack(buf, sizeof(buf), 45), 49);
	CHECK_EQ_INT(build_ack(buf, sizeof(buf), 44), -1);
	/* no begin: nothing to end */
	spop_writer_init(&w, buf, sizeof(buf));
	CHECK_EQ_INT(spop_frame_end(&w, 16380), -1);
	/* invalid input is sticky and fails the frame */
	spop_frame_begin(&w, SPOP_FRAME_ACK, SPOP_FLAG_FIN, 1, 1);
	spop_put_data(&w, &bad_type);
	CHECK(w.overflow);
	CHECK_EQ_INT(spop_frame_end(&w, 16380), -1);
	spop_frame_begin(&w, SPOP_FRAME_ACK, SPOP_FLAG_FIN, 1, 1);
	spop_action_unset_var(&w, (enum spop_scope)5, "x");
	CHECK_EQ_INT(spop_frame_end(&w, 16380), -1);
	/* begin restarts the frame: a valid empty ACK */
	spop_frame_begin(&w, SPOP_FRAME_ACK, SPOP_FLAG_FIN, 300, 2);
	CHECK_EQ_INT(spop_frame_end(&w, 16380), 12);
	CHECK(bytes_eq(buf, 12, BYTES("\x00\x00\x00\x08\x67\x00\x00\x00\x01\xfc\x03\x02")));
	/* a writer over no buffer at all */
	spop_writer_init(&w, NULL, 0);
	spop_frame_begin(&w, SPOP_FRAME_ACK, SPOP_FLAG_FIN, 0, 0);
	CHECK(w.overflow && w.len == 0);
	CHECK_EQ_INT(spop_frame_end(&w, 16380), -1);
}

static void test_unset_var_and_null(void)
{
	struct spop_writer w;
	struct spop_frame f;
	uint8_t buf[64];
	int n;

	spop_writer_init(&w, buf, sizeof(buf));
	spop_frame_begin(&w, SPOP_FRAME_ACK, SPOP_FLAG_FIN, 5, 7);
	spop_action_unset_var(&w, SPOP_SCOPE_SESS, "k");
	spop_action_set_var(&w, SPOP_SCOPE_RES, "v", NULL);
	n = spop_frame_end(&w, 16380);
	CHECK_EQ_INT(decode_capture(buf, (size_t)n, &f), 0);
	CHECK(f.type == SPOP_FRAME_ACK && f.stream_id == 5 && f.frame_id == 7);
	CHECK(bytes_eq(f.payload, f.payload_len,
		       BYTES("\x02\x02\x01\x01" "k" "\x01\x03\x04\x01" "v" "\x00")));
}

static void test_agent_hello_capture(void)
{
	uint8_t buf[128];
	int n = spop_agent_hello_encode(buf, sizeof(buf), 16380, "pipelining");
	struct spop_frame f;
	struct spop_reader r;
	struct spop_kv kv;

	CHECK_EQ_INT(n, 68);
	CHECK(n > 0 && bytes_eq(buf, (size_t)n, BYTES(agent_hello)));
	/* exact-size buffer works, one byte less fails */
	CHECK_EQ_INT(spop_agent_hello_encode(buf, 68, 16380, "pipelining"), 68);
	CHECK_EQ_INT(spop_agent_hello_encode(buf, 67, 16380, "pipelining"), -1);
	/* no capabilities: an empty string, still present */
	n = spop_agent_hello_encode(buf, sizeof(buf), 256, NULL);
	CHECK_EQ_INT(n, 68 - 10 - 1); /* no "pipelining"; 256 is a 2-byte varint */
	CHECK_EQ_INT(decode_capture(buf, (size_t)n, &f), 0);
	CHECK(f.type == SPOP_FRAME_AGENT_HELLO && f.flags == SPOP_FLAG_FIN);
	spop_reader_init(&r, f.payload, f.payload_len);
	CHECK_EQ_INT(spop_kv_next(&r, &kv), 1);
	CHECK(name_is(&kv, "version") && str_is(&kv.value, "2.0"));
	CHECK_EQ_INT(spop_kv_next(&r, &kv), 1);
	CHECK(name_is(&kv, "max-frame-size") && kv.value.u.u32 == 256);
	CHECK_EQ_INT(spop_kv_next(&r, &kv), 1);
	CHECK(name_is(&kv, "capabilities") && str_is(&kv.value, ""));
	CHECK_EQ_INT(spop_kv_next(&r, &kv), 0);
}

static void test_disconnect_capture(void)
{
	struct spop_frame f;
	struct spop_disconnect d;

	CHECK_EQ_INT(decode_capture(BYTES(disconnect), &f), 0);
	CHECK_EQ_INT(f.type, SPOP_FRAME_HAPROXY_DISCONNECT);
	CHECK(f.flags == SPOP_FLAG_FIN && f.stream_id == 0 && f.frame_id == 0);
	CHECK_EQ_INT(spop_disconnect_parse(f.payload, f.payload_len, &d), 0);
	CHECK_EQ_INT(d.status_code, SPOP_ST_FRAG_NOT_SUPPORTED);
	CHECK(spop_name_eq(d.message, d.message_len, "fragmentation not supported"));
	CHECK_EQ_STR(spop_status_str((int)d.status_code), "fragmentation not supported");
}

static void test_disconnect_parse_edges(void)
{
	struct spop_disconnect d;

	/* empty: status 0, empty (not NULL) message */
	CHECK_EQ_INT(spop_disconnect_parse(NULL, 0, &d), 0);
	CHECK(d.status_code == 0 && d.message != NULL && d.message_len == 0);
	/* INT64 status accepted; unknown items skipped; non-string message ignored */
	CHECK_EQ_INT(spop_disconnect_parse(BYTES("\x0b" "status-code" "\x04\x02"
						 "\x03" "foo" "\x00"
						 "\x07" "message" "\x02\x01"), &d), 0);
	CHECK(d.status_code == 2 && d.message_len == 0);
	/* negative status is not a status */
	CHECK_EQ_INT(spop_disconnect_parse(BYTES("\x0b" "status-code" "\x04"
						 "\xff\xf0\xfe\xfe\xfe\xfe\xfe\xfe\xfe\x0e"), &d),
		     0);
	CHECK_EQ_INT(d.status_code, SPOP_ST_UNKNOWN);
	/* malformed */
	CHECK_EQ_INT(spop_disconnect_parse(BYTES("\x0b" "status-code" "\x03"), &d),
		     -SPOP_ST_INVALID);
	CHECK_EQ_INT(spop_disconnect_parse(BYTES("\x07" "message" "\x08\x10" "short"), &d),
		     -SPOP_ST_INVALID);
}

static int encode_and_parse_disconnect(const char *msg, uint32_t status,
				       struct spop_disconnect *d, uint8_t *buf, size_t cap)
{
	struct spop_frame f;
	int n = spop_agent_disconnect_encode(buf, cap, status, msg);

	if (n < 0 || decode_capture(buf, (size_t)n, &f) != 0)
		return -1;
	if (f.type != SPOP_FRAME_AGENT_DISCONNECT || f.flags != SPOP_FLAG_FIN)
		return -1;
	return spop_disconnect_parse(f.payload, f.payload_len, d);
}

/* Sends a message of n 'x' bytes with status 99; returns the length that arrives. */
static long long disconnect_msg_len(size_t n, struct spop_disconnect *d, uint8_t *buf,
				    size_t cap)
{
	char msg[512];

	memset(msg, 'x', n);
	msg[n] = '\0';
	if (encode_and_parse_disconnect(msg, 99, d, buf, cap) != 0)
		return -1;
	return (long long)d->message_len;
}

static void test_agent_disconnect(void)
{
	static const char expect[] =
		"\x00\x00\x00\x2d" "\x66" "\x00\x00\x00\x01" "\x00" "\x00"
		"\x0b" "status-code" "\x03\x04"
		"\x07" "message" "\x08\x0e" "invalid frame!";
	char long_msg[400];
	struct spop_disconnect d;
	uint8_t buf[512];
	int n = spop_agent_disconnect_encode(buf, sizeof(buf), 4, "invalid frame!");

	CHECK(n > 0 && bytes_eq(buf, (size_t)n, BYTES(expect)));
	CHECK_EQ_INT(spop_agent_disconnect_encode(buf, (size_t)n - 1, 4, "invalid frame!"), -1);

	/* 400, 256 and 255 bytes all arrive as 255 */
	CHECK_EQ_INT(disconnect_msg_len(400, &d, buf, sizeof(buf)), 255);
	CHECK(d.status_code == 99);
	CHECK_EQ_INT(disconnect_msg_len(256, &d, buf, sizeof(buf)), 255);
	CHECK_EQ_INT(disconnect_msg_len(255, &d, buf, sizeof(buf)), 255);
	CHECK_EQ_INT(disconnect_msg_len(254, &d, buf, sizeof(buf)), 254);
	/* a two-byte UTF-8 character straddling byte 255 is dropped whole */
	memset(long_msg, 'x', 254);
	memcpy(long_msg + 254, "\xc3\xa9" "tail", 7);
	CHECK_EQ_INT(encode_and_parse_disconnect(long_msg, 0, &d, buf, sizeof(buf)), 0);
	CHECK_EQ_INT(d.message_len, 254);
	/* NULL message is empty */
	CHECK_EQ_INT(encode_and_parse_disconnect(NULL, 1, &d, buf, sizeof(buf)), 0);
	CHECK(d.status_code == 1 && d.message_len == 0);
}

/* ---- names and status ------------------------------------------------------------------- */

static void test_name_eq(void)
{
	CHECK(spop_name_eq(BYTES("engine-id"), "engine-id"));
	CHECK(!spop_name_eq(BYTES("engine"), "engine-id"));
	CHECK(!spop_name_eq(BYTES("engine-id2"), "engine-id"));
	CHECK(!spop_name_eq(BYTES("Engine-id"), "engine-id"));
	CHECK(spop_name_eq(NULL, 0, ""));
	CHECK(!spop_name_eq(NULL, 0, "x"));
	CHECK(!spop_name_eq(BYTES("a\0"), "a"));
}

static void test_status_str(void)
{
	CHECK_EQ_STR(spop_status_str(SPOP_ST_NORMAL), "normal");
	CHECK_EQ_STR(spop_status_str(SPOP_ST_TOO_BIG), "frame is too big");
	CHECK_EQ_STR(spop_status_str(SPOP_ST_INVALID), "invalid frame received");
	CHECK_EQ_STR(spop_status_str(SPOP_ST_RES), "resource allocation error");
	CHECK_EQ_STR(spop_status_str(SPOP_ST_UNKNOWN), "an unknown error occurred");
	for (int s = -5; s < 200; s++)
		CHECK(spop_status_str(s) != NULL && spop_status_str(s)[0] != '\0');
}

int main(void)
{
	RUN(test_varint_examples);
	RUN(test_varint_boundaries);
	RUN(test_varint_sweep);
	RUN(test_varint_truncated);
	RUN(test_varint_rejected);
	RUN(test_frame_length);
	RUN(test_frame_decode);
	RUN(test_hello_capture_fields);
	RUN(test_hello_capture_parse);
	RUN(test_hello_normal);
	RUN(test_hello_versions);
	RUN(test_hello_version_not_string);
	RUN(test_hello_max_frame_size_types);
	RUN(test_hello_capabilities);
	RUN(test_hello_names_exact);
	RUN(test_hello_truncated_everywhere);
	RUN(test_hello_errors);
	RUN(test_notify_capture);
	RUN(test_notify_multi_and_null);
	RUN(test_notify_errors);
	RUN(test_notify_truncated_everywhere);
	RUN(test_data_all_types);
	RUN(test_data_wire_forms);
	RUN(test_data_errors);
	RUN(test_ack_capture);
	RUN(test_writer_never_past_cap);
	RUN(test_writer_limits);
	RUN(test_unset_var_and_null);
	RUN(test_agent_hello_capture);
	RUN(test_disconnect_capture);
	RUN(test_disconnect_parse_edges);
	RUN(test_agent_disconnect);
	RUN(test_name_eq);
	RUN(test_status_str);
	TEST_END();
}
