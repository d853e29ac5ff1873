/*
 * A libevent buffer's contents as a NUL-terminated string, for tests that look at what a
 * renderer wrote.
 */
#ifndef JR_TEST_EVTEXT_H
#define JR_TEST_EVTEXT_H

#include <event2/buffer.h>
#include <stdlib.h>

/* Drains and frees B; returns its bytes as a malloc'd string the caller frees. */
static inline char *evbuffer_text(struct evbuffer *b)
{
	size_t n = evbuffer_get_length(b);
	char *s = malloc(n + 1);

	evbuffer_remove(b, s, n);
	s[n] = '\0';
	evbuffer_free(b);
	return s;
}

#endif
