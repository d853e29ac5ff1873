/*
 * util/pct: percent-encoding as RFC 3986 has it (every byte outside a kept set is
 * written %XX) and its reverse. The one implementation for the agent (the adapter route
 * it writes, model ids in request paths) and the adapter (URL parts, the SigV4
 * canonical path, the route header's values, the usage report's values). Pure: bytes
 * in, bytes out, bounded buffers.
 */
#ifndef JR_UTIL_PCT_H
#define JR_UTIL_PCT_H

#include <stddef.h>

/* The value of a hexadecimal digit, or -1. */
int pct_hex_value(int c);

/* The bytes kept as they are; every other byte becomes %XX (upper-case hex). */
enum pct_keep {
	PCT_UNRESERVED,       /* RFC 3986 unreserved: A-Z a-z 0-9 - _ . ~ */
	PCT_UNRESERVED_SLASH, /* the same and '/' (a path, segment by segment) */
	PCT_PRINTABLE,        /* printable ASCII but space and '%' (a value on a spaced line) */
};

/* Encodes s[0..n) into out (cap bytes, NUL-terminated). Returns the length, or -1 when it
 * does not fit (out is then unspecified). */
int pct_encode(const char *s, size_t n, enum pct_keep keep, char *out, size_t cap);

/* Decodes s[0..n) into out (cap bytes, NUL-terminated). Returns the length, or -1 for a
 * malformed escape, a NUL byte (%00) or a result that does not fit. */
int pct_decode(const char *s, size_t n, char *out, size_t cap);

#endif /* JR_UTIL_PCT_H */
