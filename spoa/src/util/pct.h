/*
 * util/pct: percent-encoding as RFC 3986 has it (every byte but the unreserved
 * A-Z a-z 0-9 - _ . ~ is written %XX) and its reverse. One implementation for the
 * adapter route the agent writes (pipeline/adapter.c), model ids in request paths
 * (pipeline/stages.c), and anything else that links this library.
 */
#ifndef JR_UTIL_PCT_H
#define JR_UTIL_PCT_H

#include <stddef.h>

/* The value of a hexadecimal digit, or -1. */
int pct_hex_value(int c);

/* Encodes s[0..n) into out (cap bytes, NUL-terminated). Returns the length, or -1 when it
 * does not fit (out is then unspecified). */
int pct_encode(const char *s, size_t n, char *out, size_t cap);

/* Decodes s[0..n) into out (cap bytes, NUL-terminated). Returns the length, or -1 for a
 * malformed escape, a NUL byte (%00) or a result that does not fit. */
int pct_decode(const char *s, size_t n, char *out, size_t cap);

#endif /* JR_UTIL_PCT_H */
