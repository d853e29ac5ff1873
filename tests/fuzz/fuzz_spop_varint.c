/*
 * Fuzz target: the varint codec.
 *
 * Properties that trap:
 *   1. decode(encode(x)) == x for every 64-bit x (x taken from the first 8 input bytes),
 *      and the encoder fails exactly when the buffer is shorter than the encoding.
 *   2. Whatever decode accepts re-encodes to the very same bytes. HAProxy's decoder adds
 *      bytes modulo 2^64, so with wrap-around several inputs share a value; ours rejects
 *      wrap-around and lost bits, and without them each value has one encoding (the first
 *      byte is fixed by v mod 16, each next byte by the remaining quotient mod 128, and
 *      whether a byte is the last is fixed by the quotient being below 128).
 *   3. decode never claims more than 10 bytes nor more than it was given; it returns 0
 *      only when the input is a proper prefix of a longer varint.
 */
#include "spop/spop.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		__builtin_trap();
}

static void check_encode_roundtrip(uint64_t x)
{
	uint8_t buf[SPOP_VARINT_MAX_LEN];
	uint64_t back = 0;
	int n = spop_varint_encode(x, buf, sizeof(buf));

	check(n >= 1 && n <= (int)SPOP_VARINT_MAX_LEN);
	check(spop_varint_decode(buf, (size_t)n, &back) == n && back == x);
	check(spop_varint_decode(buf, (size_t)n - 1, &back) == 0);
	for (size_t cap = 0; cap <= SPOP_VARINT_MAX_LEN; cap++) {
		uint8_t tmp[SPOP_VARINT_MAX_LEN];
		int m = spop_varint_encode(x, tmp, cap);
		check(cap < (size_t)n ? m == -1 : (m == n && memcmp(tmp, buf, (size_t)n) == 0));
	}
}

static void check_decode_canonical(const uint8_t *data, size_t size)
{
	uint8_t buf[SPOP_VARINT_MAX_LEN];
	uint64_t v = 0;
	int n = spop_varint_decode(data, size, &v);

	check(n == -SPOP_ST_INVALID || (n >= 0 && n <= (int)SPOP_VARINT_MAX_LEN));
	check(n < 0 || (size_t)n <= size);
	if (n == 0) {
		/* a proper prefix: short, and every byte after the first says "more" */
		check(size < SPOP_VARINT_MAX_LEN);
		for (size_t i = 1; i < size; i++)
			check(data[i] >= 128);
		check(size == 0 || data[0] >= 240);
		return;
	}
	if (n < 0)
		return;
	check(spop_varint_encode(v, buf, sizeof(buf)) == n);
	check(memcmp(buf, data, (size_t)n) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t x = 0;

	if (size > 0)
		memcpy(&x, data, size < sizeof(x) ? size : sizeof(x));
	check_encode_roundtrip(x);
	check_encode_roundtrip(x >> (size % 64));
	check_decode_canonical(data, size);
	return 0;
}
