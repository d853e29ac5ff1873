/*
 * xalloc: allocation that aborts on out-of-memory. The agent treats OOM as fatal rather
 * than carrying untested NULL paths through every caller (HAProxy restarts the agent's
 * connections; the process supervisor restarts the agent).
 */
#ifndef JR_XALLOC_H
#define JR_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif /* JR_XALLOC_H */
