/* upstream: see upstream.h. */
#include "upstream.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum up_op up_op_of(const char *path)
{
	if (strcmp(path, "/v1/chat/completions") == 0 || strcmp(path, "/v1/messages") == 0)
		return UP_CHAT;
	if (strcmp(path, "/v1/embeddings") == 0)
		return UP_EMBED;
	return UP_OTHER;
}

int up_add_header(struct up_request *u, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	if (u->nheaders >= UP_HEADERS_MAX)
		return -1;
	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	u->headers[u->nheaders++] = s;
	return 0;
}

int up_url(struct up_request *u, const char *base, const char *fmt, ...)
{
	size_t bl = strlen(base), cap = sizeof(u->url);
	va_list ap;
	int n;

	while (bl && base[bl - 1] == '/')
		bl--;
	if (bl >= cap)
		return -1;
	memcpy(u->url, base, bl);
	va_start(ap, fmt);
	n = vsnprintf(u->url + bl, cap - bl, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= cap - bl ? -1 : 0;
}

void up_free(struct up_request *u)
{
	for (size_t i = 0; i < u->nheaders; i++) {
		/* Headers may hold the credential. */
		explicit_bzero(u->headers[i], strlen(u->headers[i]));
		free(u->headers[i]);
	}
	u->nheaders = 0;
	free(u->body);
	u->body = NULL;
}
