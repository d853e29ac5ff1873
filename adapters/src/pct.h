/*
 * pct: percent-encoding and decoding, the one implementation the adapter uses for URL
 * parts (model names in provider paths), the SigV4 canonical path, the route header's
 * values and the usage report's values. Pure: bytes in, bytes out, bounded buffers.
 */
#ifndef JR_AD_PCT_H
#define JR_AD_PCT_H

#include <stddef.h>

/* The bytes kept as they are; every other byte becomes %XX (upper-case hex). */
enum pct_keep {
	PCT_UNRESERVED,       /* RFC 3986 unreserved: A-Z a-z 0-9 - _ . ~ */
	PCT_UNRESERVED_SLASH, /* the same and '/' (a path, segment by segment) */
	PCT_PRINTABLE,        /* printable ASCII but space and '%' (a value on a spaced line) */
};

/* Encodes s[0..n) into out (cap bytes with the NUL). Returns the length, or -1 when it
 * does not fit. */
int pct_encode(const char *s, size_t n, enum pct_keep keep, char *out, size_t cap);

/* Decodes s[0..n) into out (cap bytes with the NUL). -1 when a %XX is malformed, the
 * result holds a NUL byte or does not fit. */
int pct_decode(const char *s, size_t n, char *out, size_t cap);

#endif
