#include "auth/apikey.h"
#include "util/b64.h"
#include "util/hmap.h"
#include "util/json.h"
#include "util/pct.h"

#include "testlib.h"

#include <stdint.h>
#include <stdlib.h>

static void test_json_escape(void)
{
	char buf[64];
	size_t used = 0;

	CHECK_EQ_INT(json_escape(buf, sizeof(buf), &used, "a\"b\\c\n\x01", 7), 0);
	CHECK_EQ_STR(buf, "a\\\"b\\\\c\\n\\u0001");
}

static void test_json_escape_utf8(void)
{
	char buf[64];
	size_t used = 0;

	/* Valid UTF-8 passes; a lone continuation byte and an overlong form become U+FFFD. */
	CHECK_EQ_INT(json_escape(buf, sizeof(buf), &used, "\xc3\xa9\x80\xc0\xaf", 5), 0);
	CHECK_EQ_STR(buf, "\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
}

static void test_json_escape_bounded(void)
{
	char buf[8];
	size_t used = 0;

	CHECK_EQ_INT(json_escape(buf, sizeof(buf), &used, "abcdef\"", 7), -1);
	CHECK(used < sizeof(buf));
	CHECK_EQ_STR(buf, "abcdef"); /* never half an escape */
}

static int eq_int(const void *item, const void *key)
{
	return *(const int *)item == *(const int *)key;
}

static void test_hmap(void)
{
	struct hmap m;
	int *vals = malloc(1000 * sizeof(int));

	hmap_init(&m);
	for (int i = 0; i < 1000; i++) {
		vals[i] = i;
		hmap_insert(&m, hmap_hash_u64((uint64_t)i), &vals[i]);
	}
	CHECK_EQ_INT(m.count, 1000);
	for (int i = 0; i < 1000; i++)
		CHECK(hmap_find(&m, hmap_hash_u64((uint64_t)i), eq_int, &i) == &vals[i]);
	for (int i = 0; i < 1000; i += 2)
		CHECK(hmap_remove(&m, hmap_hash_u64((uint64_t)i), eq_int, &i) == &vals[i]);
	CHECK_EQ_INT(m.count, 500);
	for (int i = 0; i < 1000; i++)
		CHECK((hmap_find(&m, hmap_hash_u64((uint64_t)i), eq_int, &i) != NULL) == (i % 2 == 1));
	hmap_clear(&m);
	free(vals);
}

static void test_credential_extraction(void)
{
	const char *tok;
	size_t len;

	CHECK_EQ_INT(auth_credential("Bearer  abc ", 12, NULL, 0, &tok, &len), 1);
	CHECK(len == 3 && memcmp(tok, "abc", 3) == 0);
	CHECK_EQ_INT(auth_credential("bearer xyz", 10, "other", 5, &tok, &len), 1);
	CHECK(len == 3 && memcmp(tok, "xyz", 3) == 0);
	CHECK_EQ_INT(auth_credential(NULL, 0, " key1 ", 6, &tok, &len), 1);
	CHECK(len == 4 && memcmp(tok, "key1", 4) == 0);
	CHECK_EQ_INT(auth_credential("Basic dXNlcjpwYXNz", 18, NULL, 0, &tok, &len), -1);
	CHECK_EQ_INT(auth_credential("Bearer ", 7, NULL, 0, &tok, &len), -1);
	CHECK_EQ_INT(auth_credential(NULL, 0, NULL, 0, &tok, &len), 0);
	CHECK_EQ_INT(auth_credential("  ", 2, NULL, 0, &tok, &len), 0);
	CHECK_EQ_INT(auth_credential(NULL, 0, "   ", 3, &tok, &len), 0);
}

static void test_credential_oversized(void)
{
	char *big = malloc(AUTH_CREDENTIAL_MAX + 10);
	const char *tok;
	size_t len;

	memset(big, 'a', AUTH_CREDENTIAL_MAX + 10);
	memcpy(big, "Bearer ", 7);
	CHECK_EQ_INT(auth_credential(big, AUTH_CREDENTIAL_MAX + 10, NULL, 0, &tok, &len), -1);
	CHECK_EQ_INT(auth_credential(NULL, 0, big, AUTH_CREDENTIAL_MAX + 1, &tok, &len), -1);
	free(big);
}

static void test_key_shape(void)
{
	const char *good = "jr-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

	CHECK(auth_key_wellformed(good, strlen(good)));
	CHECK(!auth_key_wellformed(good, strlen(good) - 1));
	CHECK(!auth_key_wellformed("sk-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 67));
	CHECK(!auth_key_wellformed("jr-0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", 67));
}

static void test_key_hash(void)
{
	uint8_t h[32];
	/* sha256("abc") */
	static const uint8_t want[32] = { 0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
					  0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
					  0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad };

	auth_key_hash("abc", 3, h);
	CHECK(memcmp(h, want, 32) == 0);
}

/* Percent-encoding (util/pct.h): unreserved bytes stay, the rest is %XX, and back. */
static void test_percent_encoding(void)
{
	char out[64];

	CHECK_EQ_INT(pct_encode("a b/c~\xc3\xa9", 8, PCT_UNRESERVED, out, sizeof(out)), 16);
	CHECK_EQ_STR(out, "a%20b%2Fc~%C3%A9");
	CHECK_EQ_INT(pct_encode("abc", 3, PCT_UNRESERVED, out, 3), -1); /* no room for the NUL */
	CHECK_EQ_INT(pct_encode("a/", 2, PCT_UNRESERVED, out, 4), -1);
	CHECK_EQ_INT(pct_decode("a%20b%2fc", 9, out, sizeof(out)), 5);
	CHECK_EQ_STR(out, "a b/c");
	CHECK_EQ_INT(pct_decode("a%2", 3, out, sizeof(out)), -1);  /* cut short */
	CHECK_EQ_INT(pct_decode("a%zz", 4, out, sizeof(out)), -1); /* not hex */
	CHECK_EQ_INT(pct_decode("a%00b", 5, out, sizeof(out)), -1); /* no NUL inside */
	CHECK_EQ_INT(pct_decode("abcd", 4, out, 4), -1);            /* too long */
	CHECK_EQ_INT(pct_hex_value('F'), 15);
	CHECK_EQ_INT(pct_hex_value('g'), -1);
}

/* Base64 digits (util/b64.h): each alphabet's 64 digits have their RFC 4648 values; the
 * other alphabet's two, the padding and any other byte are none. */
static void test_b64_digits(void)
{
	static const char std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	static const char url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

	for (int i = 0; i < 64; i++) {
		CHECK_EQ_INT(b64_digit(std[i], B64_STANDARD), i);
		CHECK_EQ_INT(b64_digit(url[i], B64_URL), i);
	}
	CHECK_EQ_INT(b64_digit('-', B64_STANDARD), -1);
	CHECK_EQ_INT(b64_digit('_', B64_STANDARD), -1);
	CHECK_EQ_INT(b64_digit('+', B64_URL), -1);
	CHECK_EQ_INT(b64_digit('/', B64_URL), -1);
	CHECK_EQ_INT(b64_digit('=', B64_STANDARD), -1);
	CHECK_EQ_INT(b64_digit('=', B64_URL), -1);
	CHECK_EQ_INT(b64_digit(0, B64_STANDARD), -1);
	CHECK_EQ_INT(b64_digit(0xc3, B64_URL), -1);
}

int main(void)
{
	RUN(test_json_escape);
	RUN(test_json_escape_utf8);
	RUN(test_json_escape_bounded);
	RUN(test_hmap);
	RUN(test_credential_extraction);
	RUN(test_credential_oversized);
	RUN(test_key_shape);
	RUN(test_key_hash);
	RUN(test_percent_encoding);
	RUN(test_b64_digits);
	TEST_END();
}
