/*
 * json: the little JSON writing the agent needs (error bodies, logs, health). Output is
 * always bounded by the caller's buffer and always NUL-terminated.
 */
#ifndef JR_JSON_H
#define JR_JSON_H

#include <stddef.h>

/* Appends s[0..len) JSON-escaped (no quotes added) to buf, which holds *used bytes of
 * cap. Control characters become \u00XX; invalid UTF-8 bytes become U+FFFD so the
 * output is always valid JSON. Stops (without splitting an escape) when full.
 * Returns 0, or -1 if the input did not fit entirely. */
int json_escape(char *buf, size_t cap, size_t *used, const char *s, size_t len);

/* A growable JSON output buffer (always NUL-terminated; aborts on out-of-memory). */
struct jbuf {
	char *p;
	size_t len, cap;
};

void jbuf_put(struct jbuf *b, const char *s, size_t n);
void jbuf_puts(struct jbuf *b, const char *s);
void jbuf_printf(struct jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string, quotes included. */
void jbuf_put_string(struct jbuf *b, const char *s, size_t n);

#endif /* JR_JSON_H */
