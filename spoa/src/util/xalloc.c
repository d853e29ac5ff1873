#include "util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *xalloc_check(void *p, size_t n)
{
	if (!p && n) {
		/* No allocation here (log_event's buffer grows): the line is written in place. */
		fprintf(stderr, "{\"level\":\"error\",\"event\":\"out_of_memory\","
			"\"msg\":\"out of memory (%zu bytes)\",\"bytes\":%zu}\n", n, n);
		abort();
	}
	return p;
}

void *xmalloc(size_t n)
{
	return xalloc_check(malloc(n), n);
}

void *xcalloc(size_t n, size_t size)
{
	return xalloc_check(calloc(n, size), n * size);
}

void *xrealloc(void *p, size_t n)
{
	return xalloc_check(realloc(p, n), n);
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *d = xmalloc(n + 1);

	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}
