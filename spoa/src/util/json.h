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

#endif /* JR_JSON_H */
