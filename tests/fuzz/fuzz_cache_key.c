/* The response cache's canonical body and store (adapters/src/adcache.c) on arbitrary
 * input: the canonical form of a body is a fixed point (canonicalising it again gives
 * the same bytes, hence the same key); then the input drives a small cache (puts of
 * sizes and lifetimes taken from the bytes, lookups at advancing times): it never holds
 * more than its bound, and what it returns is what was stored under that key. */
#include "adcache.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BOUND 4096

static void canonical_is_fixed_point(const uint8_t *data, size_t size)
{
	size_t n1 = 0, n2 = 0;
	char *c1 = ac_canonical((const char *)data, size, &n1), *c2;
	uint8_t k1[AC_KEY_LEN], k2[AC_KEY_LEN];

	if (!c1)
		return;
	c2 = ac_canonical(c1, n1, &n2);
	if (!c2 || n1 != n2 || memcmp(c1, c2, n1) != 0)
		abort();
	ac_key("t", "m", "/v1/chat/completions", c1, n1, k1);
	ac_key("t", "m", "/v1/chat/completions", c2, n2, k2);
	if (memcmp(k1, k2, AC_KEY_LEN) != 0)
		abort();
	free(c1);
	free(c2);
}

static void drive_store(const uint8_t *data, size_t size)
{
	struct ac_cache *c = ac_new(BOUND);
	char body[1024];
	int64_t now = 0;
	struct ac_stats st;

	memset(body, 0, sizeof(body));
	for (size_t i = 0; i + 3 <= size; i += 3) {
		uint8_t k[AC_KEY_LEN] = { data[i] & 15 }; /* 16 keys */
		size_t len = (size_t)data[i + 1] * 4;
		const struct ac_entry *e;

		now += data[i + 2] & 7;
		if (data[i] & 16) {
			memset(body, data[i], len < sizeof(body) ? len : sizeof(body));
			ac_put(c, k, body, len < sizeof(body) ? len : sizeof(body), 0, (int64_t)data[i], 0, 0,
			       1 + (data[i + 2] >> 3), 768, now);
		} else if ((e = ac_get(c, k, now))) {
			if (memcmp(e->key, k, AC_KEY_LEN) != 0 || e->expires_us <= now)
				abort();
			for (size_t b = 0; b < e->len; b++)
				if ((uint8_t)e->body[b] != (uint8_t)e->prompt)
					abort(); /* not what was stored under this key */
		}
		ac_stats(c, &st);
		if (st.bytes > BOUND)
			abort();
	}
	ac_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	canonical_is_fixed_point(data, size);
	drive_store(data, size);
	return 0;
}
