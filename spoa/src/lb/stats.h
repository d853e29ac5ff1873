/*
 * lb/stats: a client of HAProxy's runtime API (the "stats socket"), non-blocking on a
 * libevent base. One poll = one connection, the command `show stat -1 4 -1` (servers of
 * every proxy, CSV), the answer read to EOF (HAProxy closes a non-interactive CLI session
 * after answering), within a timeout and at most LB_STATS_MAX bytes.
 */
#ifndef JR_LB_STATS_H
#define JR_LB_STATS_H

#include <stddef.h>

struct event_base;
struct lb_stats;

/* Called once per poll: csv/len on success (err NULL), or err. */
typedef void (*lb_stats_fn)(const char *csv, size_t len, const char *err, void *arg);

/* addr: "/path" or "unix@/path" (unix socket) or "host:port" (TCP). NULL with a reason in
 * err when the address cannot be parsed. */
struct lb_stats *lb_stats_new(struct event_base *base, const char *addr, unsigned timeout_ms,
			      lb_stats_fn fn, void *arg, char *err, size_t errlen);
/* Starts a poll; returns 0, or -1 when the previous one is still running. */
int lb_stats_poll(struct lb_stats *s);
void lb_stats_free(struct lb_stats *s);

#endif /* JR_LB_STATS_H */
