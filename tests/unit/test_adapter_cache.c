/* The adapter's response cache (adapters/src/adcache.c): the canonical body and the key,
 * the store's bounds, LRU eviction and time to live, and the route's cache fields. */
#include "testlib.h"

#include "adcache.h"
#include "rcache.h"
#include "route.h"

#include <stdlib.h>

#define S 1000000 /* one second in microseconds */

static void canonical_form(void)
{
	const char *a = "{ \"model\": \"m\", \"messages\": [ {\"role\":\"user\", \"content\":\"hi\"} ],\n \"n\": 1 }";
	const char *b = "{\"n\":1,\"messages\":[{\"content\":\"hi\",\"role\":\"user\"}],\"model\":\"m\"}";
	size_t la = 0, lb = 0;
	char *ca = ac_canonical(a, strlen(a), &la), *cb = ac_canonical(b, strlen(b), &lb);

	CHECK(ca && cb);
	CHECK_EQ_STR(ca, "{\"messages\":[{\"content\":\"hi\",\"role\":\"user\"}],\"model\":\"m\",\"n\":1}");
	CHECK_EQ_STR(ca, cb);
	CHECK_EQ_INT((int)la, (int)strlen(ca));
	free(ca);
	free(cb);
	/* array order is significant */
	ca = ac_canonical("{\"a\":[1,2]}", 11, &la);
	cb = ac_canonical("{\"a\":[2,1]}", 11, &lb);
	CHECK(strcmp(ca, cb) != 0);
	free(ca);
	free(cb);
	/* not cached: a member twice, not an object, not JSON */
	CHECK(ac_canonical("{\"a\":1,\"a\":2}", 13, &la) == NULL);
	CHECK(ac_canonical("[1]", 3, &la) == NULL);
	CHECK(ac_canonical("{\"a\":", 5, &la) == NULL);
	CHECK(ac_canonical("", 0, &la) == NULL);
}

static void keys(void)
{
	uint8_t k1[AC_KEY_LEN], k2[AC_KEY_LEN];

	ac_key("acme", "gpt", "/v1/chat/completions", "{}", 2, k1);
	ac_key("acme", "gpt", "/v1/chat/completions", "{}", 2, k2);
	CHECK(memcmp(k1, k2, AC_KEY_LEN) == 0);
	ac_key("globex", "gpt", "/v1/chat/completions", "{}", 2, k2); /* another tenant */
	CHECK(memcmp(k1, k2, AC_KEY_LEN) != 0);
	ac_key("s.m1", "gpt", "/v1/chat/completions", "{}", 2, k2); /* the shared scope */
	CHECK(memcmp(k1, k2, AC_KEY_LEN) != 0);
	ac_key("acme", "gpt2", "/v1/chat/completions", "{}", 2, k2);
	CHECK(memcmp(k1, k2, AC_KEY_LEN) != 0);
	ac_key("acme", "gpt", "/v1/completions", "{}", 2, k2);
	CHECK(memcmp(k1, k2, AC_KEY_LEN) != 0);
	/* fields are length-prefixed: moving a byte from one to the next changes the key */
	ac_key("ab", "c", "/p", "{}", 2, k1);
	ac_key("a", "bc", "/p", "{}", 2, k2);
	CHECK(memcmp(k1, k2, AC_KEY_LEN) != 0);
}

static void key_of(int i, uint8_t k[AC_KEY_LEN])
{
	char body[32];

	snprintf(body, sizeof(body), "{\"i\":%d}", i);
	ac_key("t", "m", "/v1/embeddings", body, strlen(body), k);
}

static void store_and_ttl(void)
{
	struct ac_cache *c = ac_new(1 << 20);
	uint8_t k[AC_KEY_LEN];
	const struct ac_entry *e;
	struct ac_stats st;

	key_of(1, k);
	CHECK(ac_get(c, k, 0) == NULL);
	CHECK_EQ_INT(ac_put(c, k, "data: x\n\n", 9, 1, 12, 3, 0, 2 * S, 4096, 10 * S), 0);
	e = ac_get(c, k, 11 * S);
	CHECK(e != NULL);
	CHECK_EQ_INT((int)e->len, 9);
	CHECK(memcmp(e->body, "data: x\n\n", 9) == 0);
	CHECK_EQ_INT(e->stream, 1);
	CHECK_EQ_INT((int)e->prompt, 12);
	CHECK_EQ_INT((int)e->completion, 3);
	/* replaced under the same key */
	CHECK_EQ_INT(ac_put(c, k, "{}", 2, 0, 1, 1, 1, 2 * S, 4096, 10 * S), 0);
	e = ac_get(c, k, 11 * S);
	CHECK(e && e->len == 2 && !e->stream && e->usage_estimated);
	/* expires ttl after the store: still there just before, gone at the end */
	CHECK(ac_get(c, k, 12 * S - 1) != NULL);
	CHECK(ac_get(c, k, 12 * S) == NULL);
	ac_stats(c, &st);
	CHECK_EQ_INT((int)st.hits, 3);
	CHECK_EQ_INT((int)st.misses, 2);
	CHECK_EQ_INT((int)st.stores, 2);
	CHECK_EQ_INT((int)st.expired, 1);
	CHECK_EQ_INT((int)st.entries, 0);
	CHECK_EQ_INT((int)st.bytes, 0);
	ac_free(c);
}

static void bounds_and_lru(void)
{
	/* room for exactly three entries of 100 bytes */
	struct ac_cache *c = ac_new(3 * (100 + AC_ENTRY_OVERHEAD));
	uint8_t k[5][AC_KEY_LEN];
	char body[200];
	struct ac_stats st;

	memset(body, 'x', sizeof(body));
	for (int i = 0; i < 5; i++)
		key_of(i, k[i]);
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(ac_put(c, k[i], body, 100, 0, 1, 1, 0, 60 * S, 4096, 0), 0);
	CHECK(ac_get(c, k[0], 1) != NULL); /* 0 is now the most recently used: 1 goes first */
	CHECK_EQ_INT(ac_put(c, k[3], body, 100, 0, 1, 1, 0, 60 * S, 4096, 2), 0);
	CHECK(ac_get(c, k[1], 3) == NULL);
	CHECK(ac_get(c, k[0], 3) != NULL);
	CHECK(ac_get(c, k[2], 3) != NULL);
	CHECK(ac_get(c, k[3], 3) != NULL);
	ac_stats(c, &st);
	CHECK_EQ_INT((int)st.evictions, 1);
	CHECK_EQ_INT((int)st.entries, 3);
	CHECK_EQ_INT((int)st.bytes, 3 * (100 + AC_ENTRY_OVERHEAD));
	/* an entry larger than its limit, or than the whole cache: not stored, nothing lost */
	CHECK_EQ_INT(ac_put(c, k[4], body, 101, 0, 1, 1, 0, 60 * S, 100, 4), -1);
	CHECK_EQ_INT(ac_put(c, k[4], body, 200, 0, 1, 1, 0, 60 * S, 1 << 20, 4), 0);
	ac_stats(c, &st);
	CHECK_EQ_INT((int)st.too_large, 1);
	CHECK(st.bytes <= 3 * (100 + AC_ENTRY_OVERHEAD));
	CHECK(ac_get(c, k[4], 5) != NULL);
	ac_note_too_large(c);
	ac_stats(c, &st);
	CHECK_EQ_INT((int)st.too_large, 2);
	ac_free(c);
	/* a cache of 0 bytes stores nothing */
	c = ac_new(0);
	CHECK_EQ_INT(ac_put(c, k[0], body, 1, 0, 1, 1, 0, S, 4096, 0), -1);
	ac_free(c);
}

/* Many entries: the table grows and every entry stays reachable. */
static void many_entries(void)
{
	struct ac_cache *c = ac_new(64u << 20);
	uint8_t k[AC_KEY_LEN];
	char body[16];
	int found = 0;

	for (int i = 0; i < 5000; i++) {
		key_of(i, k);
		snprintf(body, sizeof(body), "%d", i);
		ac_put(c, k, body, strlen(body), 0, i, 0, 0, 60 * S, 4096, 0);
	}
	for (int i = 0; i < 5000; i++) {
		const struct ac_entry *e;
		key_of(i, k);
		e = ac_get(c, k, 1);
		found += e && e->prompt == i;
	}
	CHECK_EQ_INT(found, 5000);
	ac_free(c);
}

static void route_fields(void)
{
	struct ad_route r;
	char err[128];
	const char *h = "p=openai&m=gpt&t=acme&c=300&cmax=65536&cs=t3.m12";

	CHECK_EQ_INT(route_parse(h, strlen(h), &r, err, sizeof(err)), 0);
	CHECK_EQ_INT((int)r.cache_ttl_s, 300);
	CHECK_EQ_INT((int)r.cache_max, 65536);
	CHECK_EQ_STR(r.cache_scope, "t3.m12");
	CHECK_EQ_INT(route_parse("p=openai&m=gpt", 14, &r, err, sizeof(err)), 0);
	CHECK_EQ_INT((int)r.cache_ttl_s, 0);
	CHECK_EQ_STR(r.cache_scope, "");
	CHECK_EQ_INT(route_parse("p=openai&m=gpt&c=1x", 19, &r, err, sizeof(err)), -1);
	CHECK_EQ_INT(route_parse("p=openai&m=gpt&c=", 17, &r, err, sizeof(err)), -1);
	CHECK_EQ_INT(route_parse("p=openai&m=gpt&cmax=1234567890", 30, &r, err, sizeof(err)), -1);
}

/* The value stored in Redis: header and body round trip; malformed values refused. */
static void redis_values(void)
{
	struct ac_entry in = { .stream = 1, .prompt = 12, .completion = 345, .usage_estimated = 1,
			       .body = "data: {}\n\ndata: [DONE]\n\n", .len = 24 }, out;
	size_t len = 0;
	char *v = rc_encode(&in, &len);

	CHECK(len > in.len);
	CHECK(memcmp(v, "jrc1 1 12 345 1\n", 16) == 0);
	CHECK_EQ_INT(rc_decode(v, len, &out), 0);
	CHECK_EQ_INT(out.stream, 1);
	CHECK_EQ_INT((int)out.prompt, 12);
	CHECK_EQ_INT((int)out.completion, 345);
	CHECK_EQ_INT(out.usage_estimated, 1);
	CHECK_EQ_INT((int)out.len, 24);
	CHECK(memcmp(out.body, in.body, 24) == 0);
	free(v);
	in.len = 0; /* an empty body is still an entry */
	v = rc_encode(&in, &len);
	CHECK_EQ_INT(rc_decode(v, len, &out), 0);
	CHECK_EQ_INT((int)out.len, 0);
	free(v);
	CHECK_EQ_INT(rc_decode("jrc1 1 12 345 1", 15, &out), -1);     /* no header end */
	CHECK_EQ_INT(rc_decode("jrc2 1 1 1 0\nx", 14, &out), -1);      /* another version */
	CHECK_EQ_INT(rc_decode("jrc1 2 1 1 0\nx", 14, &out), -1);      /* not a flag */
	CHECK_EQ_INT(rc_decode("jrc1 0 -1 1 0\nx", 15, &out), -1);     /* negative usage */
	CHECK_EQ_INT(rc_decode("jrc1 0 1 1 0 junk\nx", 19, &out), -1); /* trailing fields */
	CHECK_EQ_INT(rc_decode("", 0, &out), -1);
	/* a client for a malformed address is refused */
	CHECK(rc_new(NULL, "localhost", 50) == NULL);
	CHECK(rc_new(NULL, ":6379", 50) == NULL);
	CHECK(rc_new(NULL, "127.0.0.1:0", 50) == NULL);
	CHECK(rc_new(NULL, "127.0.0.1:6379x", 50) == NULL);
}

int main(void)
{
	RUN(canonical_form);
	RUN(keys);
	RUN(store_and_ttl);
	RUN(bounds_and_lru);
	RUN(many_entries);
	RUN(route_fields);
	RUN(redis_values);
	TEST_END();
}
